/**
 * t-SNE with scikit-learn's defaults (Barnes-Hut, perplexity 30, early exaggeration 12,
 * learning rate `auto`, 1,000 iterations, PCA initialisation, PCA to 50 dimensions first) and
 * the trustworthiness of any embedding, computed natively (`native/src/tsne.rs`).
 * @module
 */
import { arraySetCall, type NdArray, type ProgressCallback } from "./arrays.ts";
import { callAsync, optionsJson } from "./native.ts";

/** The scalars of a run, as `TsneSummary` in `native/src/tsne.rs`. */
interface TsneSummary {
  klDivergence: number;
  trustworthiness: number | null;
}

/** Options of {@linkcode tsne}; the native side holds every default. */
export interface TsneOptions {
  /** @default 30 */
  perplexity?: number;
  /** @default 12 */
  earlyExaggeration?: number;
  /** @default max(n / earlyExaggeration / 4, 50), sklearn's "auto" */
  learningRate?: number;
  /** Total iterations, the first 250 exaggerated. @default 1000 */
  iterations?: number;
  /** Barnes-Hut's opening angle. @default 0.5 */
  theta?: number;
  /** @default "barnes-hut" */
  method?: "barnes-hut" | "exact";
  /** PCA to this many dimensions first when the input has more; 0: never. @default 50 */
  pcaDims?: number;
  /** @default "pca" */
  init?: "pca" | "random";
  /** Seeds the random start (the PCA start has no randomness). @default 0 */
  seed?: number;
  /** Neighbours for the result's trustworthiness; 0: skip it. @default 5 */
  trustNeighbours?: number;
}

/** An embedding and its quality. */
export interface TsneResult {
  /** n x 2. */
  embedding: NdArray;
  /** The KL divergence t-SNE minimised (Barnes-Hut's approximation of it in that mode). */
  klDivergence: number;
  /** Against the input as given (before PCA); NaN when `trustNeighbours` is 0. */
  trustworthiness: number;
  /** The PCA's fraction of variance per kept component; empty when no PCA ran. */
  explainedVariance: Float32Array;
  seconds: number;
}

/**
 * Embeds the rows of `data` in 2-D.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tsne } from "./tsne.ts";
 * const data = Float32Array.from({ length: 200 * 3 }, (_, i) => (i % 3) + Math.sin(i));
 * const { embedding } = await tsne(data, 3, { perplexity: 10, iterations: 300 });
 * assert.ok(embedding.shape[0] === 200);
 * ```
 * @param data n x `dims` values, row-major
 * @param dims columns per row
 * @param options t-SNE's settings
 * @param onProgress called with iterations done
 * @returns the embedding, its KL divergence and trustworthiness
 */
export async function tsne(
  data: Float32Array,
  dims: number,
  options: TsneOptions = {},
  onProgress?: ProgressCallback,
): Promise<TsneResult> {
  const opts = optionsJson("tsne", { dims, ...options });
  const t0 = performance.now();
  const { arrays, summary } = await arraySetCall<TsneSummary>(
    (counters, out) =>
      callAsync("wna_tsne", data, BigInt(data.length), opts, BigInt(opts.length), counters, out),
    onProgress,
  );
  const seconds = (performance.now() - t0) / 1000;
  return {
    embedding: arrays.embedding,
    klDivergence: summary.klDivergence,
    trustworthiness: summary.trustworthiness ?? NaN,
    explainedVariance: arrays.explainedVariance.data,
    seconds,
  };
}

/**
 * Trustworthiness (scikit-learn's definition, Venna and Kaski 2001) of an embedding: 1 when
 * every point's `k` nearest embedded neighbours are among its `k` nearest originals.
 * @param original n x `dims` values
 * @param dims columns of `original`
 * @param embedded n x `embeddedDims` values
 * @param embeddedDims columns of `embedded`
 * @param k neighbours @default 5
 * @returns a number in [0, 1] (about 0.5 for a random embedding)
 */
export async function trustworthiness(
  original: Float32Array,
  dims: number,
  embedded: Float32Array,
  embeddedDims: number,
  k = 5,
): Promise<number> {
  const out = new Float64Array(1);
  await callAsync(
    "wna_trustworthiness",
    original,
    BigInt(original.length),
    BigInt(dims),
    embedded,
    BigInt(embedded.length),
    BigInt(embeddedDims),
    BigInt(k),
    out,
  );
  return out[0];
}
