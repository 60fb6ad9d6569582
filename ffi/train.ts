/**
 * Training and evaluation across the boundary (`native/src/abi/train.rs`). `Model` exposes them
 * as `trainEpoch` and `evaluate`.
 * @module
 */
import { checkImages, type ProgressCallback, withProgress } from "./arrays.ts";
import { callAsync, complete, optionsJson } from "./native.ts";

/** The optimisers of one training epoch. */
export type OptimizerName = "adam" | "sgd" | "adadelta";

/** Defaults of {@linkcode EpochOptions}. */
export const EPOCH_DEFAULTS = {
  batchSize: 128,
  lrMax: 1e-3,
  lrMin: 1e-5,
  weightDecay: 1e-4,
  optimizer: "adam" as OptimizerName,
  /** SGD momentum. */
  momentum: 0.9,
  nesterov: false,
  seed: 0,
  mixup: false,
} as const;

/** Options of one training epoch (defaults: {@linkcode EPOCH_DEFAULTS}). */
export interface EpochOptions {
  batchSize?: number;
  lrMax?: number;
  lrMin?: number;
  weightDecay?: number;
  /** Steps of the whole run, where the cosine schedule ends. */
  totalSteps: number;
  /**
   * `adam` (decoupled weight decay, PyTorch's AdamW), `sgd` (with momentum) or `adadelta`
   * (rho 0.9, eps 1e-6; its usual learning rate is 1).
   */
  optimizer?: OptimizerName;
  /** SGD momentum. */
  momentum?: number;
  nesterov?: boolean;
  seed?: number;
  /** Epoch index, which keys the shuffle. */
  epoch: number;
  /**
   * MixUp: each batch mixed with itself rolled by one, one lambda ~ Beta(1, 1) per batch, the
   * loss mixed the same way.
   */
  mixup?: boolean;
}

/** Loss and accuracy of a pass over a dataset. */
export interface Metrics {
  loss: number;
  accuracy: number;
}

/**
 * Trains one epoch on shuffled mini-batches.
 * @param model the model's handle
 * @returns mean training loss and accuracy
 */
export async function trainEpoch(
  model: bigint,
  images: Float32Array,
  labels: Uint8Array,
  options: EpochOptions,
  onProgress?: ProgressCallback,
): Promise<Metrics> {
  checkImages(images);
  const opts = optionsJson("trainEpoch", complete(EPOCH_DEFAULTS, options));
  const metrics = new Float64Array(2);
  await withProgress((counters) =>
    callAsync(
      "wna_train_epoch",
      model,
      images,
      BigInt(images.length),
      labels,
      BigInt(labels.length),
      opts,
      BigInt(opts.length),
      counters,
      metrics,
    ), onProgress);
  return { loss: metrics[0], accuracy: metrics[1] };
}

/** Loss and accuracy in inference mode. */
export async function evaluate(
  model: bigint,
  images: Float32Array,
  labels: Uint8Array,
  onProgress?: ProgressCallback,
): Promise<Metrics> {
  checkImages(images);
  const metrics = new Float64Array(2);
  await withProgress((counters) =>
    callAsync(
      "wna_evaluate",
      model,
      images,
      BigInt(images.length),
      labels,
      BigInt(labels.length),
      counters,
      metrics,
    ), onProgress);
  return { loss: metrics[0], accuracy: metrics[1] };
}
