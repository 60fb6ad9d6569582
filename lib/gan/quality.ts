/**
 * A GAN's samples judged with numbers, all through one MNIST classifier:
 * - the Inception score (Salimans et al., 2016) with the classifier in Inception's place:
 *   exp(E_x KL(p(y|x) || p(y))), between 1 (one class, or no confident prediction) and the
 *   number of classes (confident predictions spread evenly over all classes);
 * - the histogram of predicted classes and its KL divergence to uniform (0 when every class is
 *   drawn equally often; large under mode collapse);
 * - the Frechet distance (FID's formula, Heusel et al., 2017) between the classifier's
 *   penultimate-layer features of the samples and of the test set.
 * @module
 */
import { frechetDistance } from "../../ffi/gan.ts";
import type { Model } from "../../ffi/model.ts";
import { penultimateLayer } from "../atlas.ts";

/** The quality of one set of images. */
export interface Quality {
  /** Over all the images as one split. */
  inceptionScore: number;
  /** Mean and std over 10 splits, as Inception scores are usually reported. */
  inceptionSplits: { mean: number; std: number };
  /** Images per predicted class. */
  histogram: number[];
  /** KL(histogram || uniform), in nats. */
  klToUniform: number;
  /** To the reference features; NaN when none were given. */
  frechet: number;
}

/** Row-wise softmax of n x k logits. */
export function softmaxRows(logits: Float32Array, k: number): Float64Array {
  const p = new Float64Array(logits.length);
  for (let r = 0; r < logits.length; r += k) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[r + j]);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += p[r + j] = Math.exp(logits[r + j] - max);
    for (let j = 0; j < k; j++) p[r + j] /= sum;
  }
  return p;
}

/** exp(mean KL(p(y|x) || p(y))) over rows `from`..`to` of n x k probabilities. */
export function inceptionScore(p: Float64Array, k: number, from = 0, to = p.length / k): number {
  const marginal = new Float64Array(k);
  for (let i = from; i < to; i++) for (let j = 0; j < k; j++) marginal[j] += p[i * k + j];
  for (let j = 0; j < k; j++) marginal[j] /= to - from;
  let kl = 0;
  for (let i = from; i < to; i++) {
    for (let j = 0; j < k; j++) {
      const q = p[i * k + j];
      if (q > 0) kl += q * (Math.log(q) - Math.log(marginal[j]));
    }
  }
  return Math.exp(kl / (to - from));
}

/** KL(counts || uniform) in nats. */
export function klToUniform(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  let kl = 0;
  for (const c of counts) if (c > 0) kl += (c / total) * Math.log((c / total) * counts.length);
  return kl;
}

/** Inception score over 10 equal splits: mean and std, as usually reported. */
function splitScores(p: Float64Array, k: number, splits = 10) {
  const n = p.length / k;
  const scores = Array.from(
    { length: splits },
    (_, s) =>
      inceptionScore(p, k, Math.floor((s * n) / splits), Math.floor(((s + 1) * n) / splits)),
  );
  const mean = scores.reduce((a, b) => a + b, 0) / splits;
  const std = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / splits);
  return { mean, std };
}

/** The classifier's penultimate-layer features of images, n x width. */
export async function features(
  classifier: Model,
  images: Float32Array,
): Promise<{ data: Float32Array; width: number }> {
  const layer = penultimateLayer(classifier);
  const data = await classifier.activations(images, layer.name);
  return { data, width: data.length / (images.length / 784) };
}

/**
 * Scores a set of images.
 * @param classifier an MNIST classifier
 * @param images n x 784 pixels
 * @param reference the test set's penultimate features, for the Frechet distance
 * @returns Inception score, class histogram, KL to uniform and Frechet distance
 */
export async function measureQuality(
  classifier: Model,
  images: Float32Array,
  reference?: { data: Float32Array; width: number },
): Promise<Quality & { predictions: Int32Array; confidence: Float32Array }> {
  const k = classifier.info().classes;
  const n = images.length / 784;
  const p = softmaxRows(await classifier.predict(images), k);
  const histogram = new Array(k).fill(0);
  const predictions = new Int32Array(n);
  const confidence = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (p[i * k + j] > p[i * k + best]) best = j;
    predictions[i] = best;
    confidence[i] = p[i * k + best];
    histogram[best]++;
  }
  let frechet = NaN;
  if (reference) {
    const own = await features(classifier, images);
    frechet = await frechetDistance(own.data, reference.data, reference.width);
  }
  return {
    inceptionScore: inceptionScore(p, k),
    inceptionSplits: splitScores(p, k),
    histogram,
    klToUniform: klToUniform(histogram),
    frechet,
    predictions,
    confidence,
  };
}
