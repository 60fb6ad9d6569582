/**
 * The confidence study's meta-networks (`native/src/metanet.rs`): an RNN, LSTM or Transformer
 * over the four data-flow tokens of a pair, trained natively.
 * @module
 */
import { type ProgressCallback, withProgress } from "./arrays.ts";
import { unwrap } from "./errors.ts";
import { errorBuffer, native, optionsJson } from "./native.ts";

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
  const err = errorBuffer();
  await withProgress(async (counters) =>
    unwrap(
      await native().wna_metanet_fit(
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
        err,
        BigInt(err.length),
      ),
      err,
    ), onProgress);
  return out;
}
