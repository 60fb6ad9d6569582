/**
 * The t-SNE maps of a GAN run: generated digits, their latents, and a classifier's activations on
 * FGSM images, each with its trustworthiness and the silhouette of its colouring.
 * @module
 */
import { generate } from "../../ffi/gan.ts";
import type { Model } from "../../ffi/model.ts";
import { tsne } from "../../ffi/tsne.ts";
import { penultimateLayer } from "../atlas.ts";
import { embeddingFigure } from "../embedding_figure.ts";
import type { Figure } from "../figures.ts";
import { argmaxRows } from "../metrics.ts";
import { silhouette } from "../silhouette.ts";
import { latents, STREAMS } from "./latents.ts";
import { measureQuality } from "./quality.ts";

/** One t-SNE map of the run. */
export interface TsneMap {
  name: string;
  n: number;
  seconds: number;
  trustworthiness: number;
  /** Silhouette of the map's colouring on the 2-D map (first 2,000 points). */
  silhouette: number;
  /** FGSM maps: N1's accuracy on the attacked images. */
  accuracy?: number;
  eps?: number;
  embedding: Float32Array;
  figure: Figure;
}

/**
 * The t-SNE maps of the case study: G(z) at each size in `sizes`, coloured by the judging
 * classifier's label; the latents z of the largest; and net N1's penultimate activations on
 * FGSM test images at each eps, coloured by the true label.
 */
export async function tsneMaps(o: {
  g: Model;
  classifier: Model;
  n1: Model;
  test: { images: Float32Array; labels: Uint8Array; count: number };
  seed: number;
  sizes: readonly number[];
  eps: readonly number[];
  fgsmImages: number;
  log: (line: string) => void;
}): Promise<TsneMap[]> {
  const maps: TsneMap[] = [];
  const map = async (
    name: string,
    title: string,
    data: Float32Array,
    labels: ArrayLike<number>,
    what: string,
    extra: Partial<TsneMap> = {},
  ) => {
    const n = labels.length;
    const r = await tsne(data, data.length / n, { seed: o.seed });
    const separation = silhouette(r.embedding.data, 2, labels);
    o.log(
      `t-SNE ${name}: ${n} points in ${r.seconds.toFixed(1)} s, trustworthiness ${
        r.trustworthiness.toFixed(3)
      }, silhouette ${separation.toFixed(3)}`,
    );
    maps.push({
      name,
      n,
      seconds: r.seconds,
      trustworthiness: r.trustworthiness,
      silhouette: separation,
      embedding: r.embedding.data,
      ...extra,
      figure: embeddingFigure({
        name: `tsne-${name}`,
        title,
        caption: `${what} Trustworthiness (k = 5) ${r.trustworthiness.toFixed(3)}; silhouette ` +
          `of the colouring on the map ${separation.toFixed(3)} (1: separate clusters, 0: ` +
          `overlapping). ${r.seconds.toFixed(1)} s.`,
        embedding: r.embedding.data,
        labels,
        size: 460,
      }),
    });
  };
  const largest = Math.max(...o.sizes);
  const z = latents(largest, o.seed, STREAMS.tsne);
  const images = await generate(o.g, z);
  const predicted = (await measureQuality(o.classifier, images)).predictions;
  for (const n of [...o.sizes].sort((a, b) => a - b)) {
    await map(
      `generated-${n}`,
      `${n} generated digits`,
      images.subarray(0, n * 784),
      predicted.subarray(0, n),
      `t-SNE of ${n} samples G(z) (pixels, PCA to 50 dimensions first), coloured by the judging ` +
        "classifier's label.",
    );
  }
  await map(
    "latents",
    `Their ${largest} latent vectors`,
    z,
    predicted,
    `t-SNE of the ${largest} latent vectors z behind the largest map, coloured by the label of ` +
      "G(z). z is isotropic Gaussian noise, so the map has no clusters and the colours mix: the " +
      "generator, not the latent space, sorts digits into classes.",
  );
  const n = Math.min(o.fgsmImages, o.test.count);
  const clean = o.test.images.subarray(0, n * 784);
  const truth = o.test.labels.subarray(0, n);
  const layer = penultimateLayer(o.n1).name;
  for (const eps of o.eps) {
    const attacked = await o.n1.fgsm(clean, truth, eps);
    const logits = await o.n1.predict(attacked);
    const hits = argmaxRows(logits, 10).reduce((a, p, i) => a + (p === truth[i] ? 1 : 0), 0);
    const accuracy = hits / n;
    await map(
      `fgsm-${eps}`,
      `N1 on FGSM images, eps ${eps}: accuracy ${(100 * accuracy).toFixed(1)}%`,
      await o.n1.activations(attacked, layer),
      truth,
      `t-SNE of net N1's penultimate activations (${layer}) on ${n} test images attacked by ` +
        `FGSM at eps ${eps} (N1's own gradients), coloured by the true digit. N1 classifies ` +
        `${(100 * accuracy).toFixed(1)}% of them correctly; as eps grows the class clusters ` +
        "dissolve.",
      { accuracy, eps },
    );
  }
  return maps;
}
