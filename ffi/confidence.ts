/**
 * The confidence study across the boundary (`native/src/abi/confidence.rs`): a population of
 * LeNet-5s trained side by side in native code (members share a seed, their initial weights and
 * shuffle, and a batch size, and each keeps its own optimiser, learning rate, weight decay and
 * initialisation), the labelled pairs of one checkpoint, and the meta-networks that predict a
 * classifier's confidence from its data flow.
 * @module
 */
import { arraySetCall, type NdArray, type ProgressCallback, withProgress } from "./arrays.ts";
import { call, callAsync, optionsJson, utf8 } from "./native.ts";
import { NativeHandle } from "./handle.ts";

/** The study's optimisers, as PyTorch defines them (SGD without momentum; Adam with L2). */
export type PopulationOptimizer = "sgd" | "adam";
/** The study's initialisations (`default` is PyTorch's own `reset_parameters`). */
export type PopulationInit = "xavier_uniform" | "normal" | "kaiming_uniform" | "default";

/** One member's hyperparameters. */
export interface PopulationMember {
  optimizer: PopulationOptimizer;
  lr: number;
  weightDecay: number;
  init: PopulationInit;
}

/** A population: the shared seed and batch size, and its members. */
export interface PopulationOptions {
  seed: number;
  batchSize: number;
  members: PopulationMember[];
}

/** One member's loss and accuracy (training means over an epoch, or on test images). */
export interface MemberMetrics {
  loss: number;
  accuracy: number;
}

/** The epoch value that asks `wna_population_run` to evaluate instead of train. */
const EVALUATE = 0xffff_ffff_ffff_ffffn;

/**
 * LeNet-5s trained together. Free it with `using` or `close()`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Population } from "./confidence.ts";
 * using pop = Population.create({
 *   seed: 0,
 *   batchSize: 2,
 *   members: [{ optimizer: "sgd", lr: 0.01, weightDecay: 0, init: "default" }],
 * });
 * const [m] = await pop.trainEpoch(new Float32Array(2 * 784), new Uint8Array([3, 4]), 0);
 * assert.ok(Number.isFinite(m.loss));
 * ```
 */
export class Population extends NativeHandle {
  /** Members, in the order given. */
  readonly size: number;

  private constructor(handle: bigint, size: number) {
    super(handle, "population");
    this.size = size;
  }

  /**
   * Initialises every member from the shared seed and its own init.
   * @param options seed, batch size, members
   * @returns the population
   */
  static create(options: PopulationOptions): Population {
    const json = optionsJson("population", options);
    const out = new BigUint64Array(1);
    call("wna_population_new", json, BigInt(json.length), out);
    return new Population(out[0], options.members.length);
  }

  async #run(
    images: Float32Array,
    labels: Uint8Array,
    epoch: bigint,
    onProgress?: ProgressCallback,
  ): Promise<MemberMetrics[]> {
    const out = new Float64Array(2 * this.size);
    const handle = this.handle;
    await withProgress((counters) =>
      callAsync(
        "wna_population_run",
        handle,
        images,
        BigInt(images.length),
        labels,
        BigInt(labels.length),
        epoch,
        counters,
        out,
        BigInt(out.length),
      ), onProgress);
    return Array.from({ length: this.size }, (_, i) => ({
      loss: out[2 * i],
      accuracy: out[2 * i + 1],
    }));
  }

  /**
   * Trains every member for one epoch.
   * @param images n x 784 pixels in [0, 1] (the study does not normalise)
   * @param labels n labels in 0..9
   * @param epoch 0-based: keys the shuffle
   * @param onProgress called with images done
   * @returns per member, the epoch's mean loss and training accuracy (NaN loss once diverged)
   */
  trainEpoch(
    images: Float32Array,
    labels: Uint8Array,
    epoch: number,
    onProgress?: ProgressCallback,
  ): Promise<MemberMetrics[]> {
    if (!Number.isInteger(epoch) || epoch < 0) {
      throw new RangeError(`population: epoch must be an integer >= 0, got ${epoch}`);
    }
    return this.#run(images, labels, BigInt(epoch), onProgress);
  }

  /**
   * Test loss and accuracy of every member.
   * @param images n x 784 pixels in [0, 1]
   * @param labels n labels
   * @param onProgress called with images done
   * @returns per member
   */
  evaluate(
    images: Float32Array,
    labels: Uint8Array,
    onProgress?: ProgressCallback,
  ): Promise<MemberMetrics[]> {
    return this.#run(images, labels, EVALUATE, onProgress);
  }

  /**
   * Writes one member's weights as a safetensors `state_dict` (atomically); the built-in `lenet5` loads it.
   * @param index the member
   * @param path the file
   */
  save(index: number, path: string): void {
    const p = utf8(path);
    call("wna_population_save", this.handle, BigInt(index), p, BigInt(p.length));
  }
}

/** Labelling settings of {@linkcode lenetPairs}; the native side holds the defaults. */
export interface PairOptions {
  /** First right and first wrong test images per digit. @default 10 */
  perDigit?: number;
  /** Noisy copies per image. @default 1000 */
  copies?: number;
  /** The copies' Gaussian noise. @default 0.9 */
  noiseStd?: number;
  /** The one seed of the copies, shared by every pair. @default 0 */
  noiseSeed?: number;
  /** The trust score's neighbour rank. @default 10 */
  trustK?: number;
}

/** One model's pairs: per selected test image, its labels, baselines and data flow. */
export interface ModelPairs {
  /** Index in the test set. */
  imageId: Int32Array;
  label: Int32Array;
  prediction: Int32Array;
  /** 1 where the clean prediction is right. */
  correct: Float32Array;
  /** Share of the noisy copies predicted as the clean image is. */
  ratio: Float32Array;
  maxSoftmax: Float32Array;
  trust: Float32Array;
  /** maxpool2 `[m, 256]`, fc1 `[m, 120]`, fc2 `[m, 84]`, fc3 `[m, 10]` (before activations). */
  flow: { pool2: NdArray; fc1: NdArray; fc2: NdArray; fc3: NdArray };
  /** The model's accuracy on the whole test set. */
  testAccuracy: number;
}

/** A pixel set with labels. */
interface LabelledImages {
  images: Float32Array;
  labels: Uint8Array;
}

/**
 * The confidence study's pairs of one saved LeNet-5 (`native/src/confidence/pairs.rs`).
 * @param weights a member's checkpoint
 * @param test the test set: images are picked from it in order
 * @param reference labelled training images for the trust score
 * @param options labelling settings
 * @param onProgress called with images labelled
 * @returns the pairs
 */
export async function lenetPairs(
  weights: string,
  test: LabelledImages,
  reference: LabelledImages,
  options: PairOptions = {},
  onProgress?: ProgressCallback,
): Promise<ModelPairs> {
  const json = optionsJson("pairs", { weights, ...options });
  const { arrays: a, summary } = await arraySetCall<{ testAccuracy: number }>(
    (counters, out) =>
      callAsync(
        "wna_lenet_pairs",
        json,
        BigInt(json.length),
        test.images,
        BigInt(test.images.length),
        test.labels,
        BigInt(test.labels.length),
        reference.images,
        BigInt(reference.images.length),
        reference.labels,
        BigInt(reference.labels.length),
        counters,
        out,
      ),
    onProgress,
  );
  const ints = (x: NdArray) => Int32Array.from(x.data);
  return {
    imageId: ints(a.imageId),
    label: ints(a.label),
    prediction: ints(a.prediction),
    correct: a.correct.data,
    ratio: a.ratio.data,
    maxSoftmax: a.maxSoftmax.data,
    trust: a.trust.data,
    flow: { pool2: a.pool2, fc1: a.fc1, fc2: a.fc2, fc3: a.fc3 },
    testAccuracy: summary.testAccuracy,
  };
}

/** The three meta-network bodies. */
export type MetaKind = "rnn" | "lstm" | "transformer";
/** What a meta-network predicts: the confidence ratio, or whether the prediction is right. */
export type MetaTask = "regression" | "classification";

/** A meta-network's settings; the native side holds every default. */
export interface MetaOptions {
  kind: MetaKind;
  task: MetaTask;
  /** Token width. @default 256 */
  width?: number;
  /** @default 4 */
  layers?: number;
  /** Transformer heads. @default 8 */
  heads?: number;
  /** Transformer feed-forward width. @default 2048 */
  feedForward?: number;
  /** @default 5 */
  epochs?: number;
  /** @default 128 */
  batchSize?: number;
  /** Adam's learning rate. @default 1e-3 (RNN, LSTM) or 1e-4 (Transformer) */
  lr?: number;
  /** Keys the initialisation and the shuffle. @default 0 */
  seed?: number;
}

/** Values per pair: maxpool2 (256), fc1 (120), fc2 (84) and fc3 (10) side by side. */
export const META_FEATURES = 470;

/**
 * Trains one meta-network on the training rows and predicts the test rows.
 * @param options kind, task and training settings
 * @param features n x 470 data flow, one row per pair
 * @param targets n ratios (regression) or 0/1 correctness (classification)
 * @param train row indices to train on
 * @param test row indices to predict
 * @param onProgress called with training rows done
 * @returns per test row, the predicted ratio or P(right)
 */
export async function fitMetaNet(
  options: MetaOptions,
  features: Float32Array,
  targets: Float32Array,
  train: Uint32Array,
  test: Uint32Array,
  onProgress?: ProgressCallback,
): Promise<Float32Array> {
  const json = optionsJson("metanet", options);
  const out = new Float32Array(test.length);
  await withProgress((counters) =>
    callAsync(
      "wna_metanet_fit",
      json,
      BigInt(json.length),
      features,
      BigInt(features.length),
      targets,
      BigInt(targets.length),
      train,
      BigInt(train.length),
      test,
      BigInt(test.length),
      counters,
      out,
      BigInt(out.length),
    ), onProgress);
  return out;
}
