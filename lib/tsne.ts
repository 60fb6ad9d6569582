/**
 * `deno task tsne`: a t-SNE map of any `.npy` matrix (n x d, or n images), or by default of the
 * MNIST test set, with its trustworthiness, KL divergence and timing.
 * @module
 */
import { classNames, type DatasetName, loadDataset } from "../data/datasets.ts";
import { tsne, type TsneOptions, type TsneResult } from "../ffi/tsne.ts";
import { embeddingFigure } from "./embedding_figure.ts";
import { writeFigure, writeReport } from "./figures.ts";
import { writeJsonAtomic } from "./files.ts";
import { readNpy, writeNpy } from "./npy.ts";
import { ProgressBar } from "./progress.ts";

/** The defaults of a run, defined once (t-SNE's own live in `native/src/tsne.rs`). */
export const TSNE_DEFAULTS = {
  /** Test images embedded when no `--input` is given. */
  limit: 10_000,
  dataset: "mnist" as DatasetName,
  seed: 0,
} as const;

/** Options of {@linkcode runTsne}. */
export interface TsneRunOptions {
  /** A `.npy` matrix (n x d; more dimensions are flattened per row); none: a dataset's test set. */
  input?: string;
  /** A `.npy` of n class indices colouring the map; with no `input`, the test labels. */
  labels?: string;
  dataset?: DatasetName;
  limit?: number;
  dataDir?: string;
  outDir: string;
  tsne?: TsneOptions;
  progress?: boolean;
  log?: (line: string) => void;
}

/** `summary.json` of a run. */
export interface TsneSummary {
  input: string;
  n: number;
  dims: number;
  seconds: number;
  trustworthiness: number;
  klDivergence: number;
  /** Fraction of the variance the PCA kept (absent when no PCA ran). */
  pcaVariance?: number;
  options: TsneOptions;
}

async function loadInput(o: TsneRunOptions) {
  if (o.input) {
    const x = await readNpy(o.input);
    if (x.shape.length < 2 || x.shape[0] < 2) {
      throw new RangeError(
        `${o.input}: expected a matrix of n rows (n x d, or n x h x w), got shape (${
          x.shape.join(", ")
        })`,
      );
    }
    const n = x.shape[0];
    const labels = o.labels ? (await readNpy(o.labels)).data : undefined;
    if (labels && labels.length !== n) {
      throw new RangeError(`${o.labels}: ${labels.length} labels for ${n} rows of ${o.input}`);
    }
    return { data: x.data, n, dims: x.data.length / n, labels, names: undefined, name: o.input };
  }
  const dataset = o.dataset ?? TSNE_DEFAULTS.dataset;
  const limit = o.limit ?? TSNE_DEFAULTS.limit;
  const test = await loadDataset(dataset, "test", { dataDir: o.dataDir, limit });
  return {
    data: test.images,
    n: test.count,
    dims: 784,
    labels: test.labels,
    names: classNames(dataset),
    name: `${dataset} test images (${test.count})`,
  };
}

/**
 * Embeds the input, then writes `embedding.npy`, `embedding.svg/png`, `summary.json` and
 * `report.html` under `outDir`.
 * @param o input, output folder and t-SNE settings
 * @returns the summary
 */
export async function runTsne(o: TsneRunOptions): Promise<TsneSummary> {
  const log = o.log ?? console.log;
  const input = await loadInput(o);
  await Deno.mkdir(o.outDir, { recursive: true });
  log(`t-SNE of ${input.name}: ${input.n} x ${input.dims}`);
  const bar = o.progress === false ? undefined : new ProgressBar("t-SNE");
  const result: TsneResult = await tsne(input.data, input.dims, o.tsne ?? {}, bar?.callback);
  bar?.done(
    `${result.seconds.toFixed(1)} s, trustworthiness ${result.trustworthiness.toFixed(3)}`,
  );
  const pcaVariance = result.explainedVariance.length
    ? result.explainedVariance.reduce((a, b) => a + b, 0)
    : undefined;
  const summary: TsneSummary = {
    input: input.name,
    n: input.n,
    dims: input.dims,
    seconds: result.seconds,
    trustworthiness: result.trustworthiness,
    klDivergence: result.klDivergence,
    pcaVariance,
    options: o.tsne ?? {},
  };
  await writeNpy(`${o.outDir}/embedding.npy`, result.embedding);
  const pca = pcaVariance === undefined
    ? "no PCA (the input has few columns)"
    : `PCA to ${result.explainedVariance.length} dimensions first (${
      (100 * pcaVariance).toFixed(1)
    }% of the variance)`;
  const figure = embeddingFigure({
    name: "embedding",
    title: `t-SNE of ${input.name}`,
    caption:
      `Barnes-Hut t-SNE, ${pca}. Trustworthiness (k = 5) ${
        result.trustworthiness.toFixed(3)
      }: the share of each point's 5 nearest neighbours on the map that are true neighbours, ` +
      `penalised by how far down the true ranking the false ones sit (1 is perfect, 0.5 is a ` +
      `random map). ${result.seconds.toFixed(1)} s.`,
    embedding: result.embedding.data,
    labels: input.labels,
    classNames: input.names,
  });
  await writeFigure(o.outDir, figure);
  await writeJsonAtomic(`${o.outDir}/summary.json`, summary);
  await writeReport(
    `${o.outDir}/report.html`,
    `t-SNE of ${input.name}`,
    [
      `${input.n} points of ${input.dims} dimensions; KL divergence ${
        result.klDivergence.toFixed(3)
      } (exact, over all pairs). Arrays: <code>embedding.npy</code> (n x 2).`,
    ].join(" "),
    [{ heading: "Map", items: [figure] }],
  );
  log(`wrote ${o.outDir}/report.html`);
  return summary;
}
