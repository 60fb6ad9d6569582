/**
 * Training one spec'd network for a fixed number of epochs at a constant learning rate, with
 * the test loss and accuracy after every epoch: the protocol of the zoo and augmentation
 * studies (no validation split and no early stopping; the last epoch's model is the result).
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import { Model, type OptimizerName } from "../../ffi/model.ts";
import type { NetSpec } from "../../ffi/spec.ts";
import { resumePartialRun, savePartialRun } from "../partial_run.ts";
import { ProgressBar } from "../progress.ts";

/** One epoch of a study run. */
export interface StudyEpoch {
  epoch: number;
  /** Mean training loss over the epoch, in training mode (dropout on). */
  trainLoss: number;
  trainAccuracy: number;
  /** On the curve's test images (all, or the first `curveImages`). */
  testLoss: number;
  testAccuracy: number;
}

/** Options of {@linkcode trainNet}. */
export interface TrainNetOptions {
  spec: NetSpec;
  optimizer: OptimizerName;
  lr: number;
  train: Dataset;
  test: Dataset;
  epochs: number;
  batchSize: number;
  seed: number;
  device?: "cpu" | "cuda" | "auto";
  /** New training images for each epoch (augmentation), `train.count` x 784. */
  augment?: (epoch: number) => Promise<Float32Array> | Float32Array;
  /** MixUp (Zhang et al., 2018) on every batch. @default false */
  mixup?: boolean;
  /**
   * Test images behind the per-epoch curve; the last epoch is also scored on the whole test
   * set. @default all
   */
  curveImages?: number;
  /** Progress bar label; none: no bar. */
  label?: string;
  /**
   * A folder for the weights, optimiser state and history after every epoch, so that an
   * interrupted run resumes from its last finished epoch (the study's nets 9.x take more than an
   * hour on two cores). The caller removes it with `discardPartialRun` (`lib/partial_run.ts`)
   * once the finished run is stored. None: no per-epoch state.
   */
  partialDir?: string;
}

/**
 * Trains a fresh network; the caller owns (and closes) the returned model.
 * @param options the spec, optimiser, data and schedule
 * @returns the model after the last epoch and the per-epoch history
 */
export async function trainNet(
  options: TrainNetOptions,
): Promise<{ model: Model; history: StudyEpoch[]; accuracy: number; seconds: number }> {
  const { spec, train, test, epochs, batchSize, seed } = options;
  const t0 = performance.now();
  const model = Model.create(spec, {
    seed,
    mean: train.mean,
    std: train.std,
    device: options.device,
  });
  try {
    const steps = Math.ceil(train.count / batchSize) * epochs;
    const n = Math.min(options.curveImages ?? test.count, test.count);
    const curve = { images: test.images.subarray(0, n * 784), labels: test.labels.subarray(0, n) };
    const settings = {
      spec: JSON.stringify(spec),
      optimizer: options.optimizer,
      lr: options.lr,
      images: train.count,
      epochs,
      batchSize,
      seed,
      mixup: options.mixup ?? false,
      augmented: options.augment !== undefined,
      curveImages: n,
    };
    // The file names of the state each epoch leaves in `partialDir`.
    const files = [{ model, weights: "weights.safetensors", optimizer: "optimizer.safetensors" }];
    const resumed = options.partialDir
      ? await resumePartialRun<StudyEpoch>(options.partialDir, files, settings)
      : undefined;
    const history: StudyEpoch[] = resumed?.history ?? [];
    const secondsBefore = resumed?.seconds ?? 0;
    for (let epoch = history.length; epoch < epochs; epoch++) {
      const bar = options.label
        ? new ProgressBar(`${options.label} epoch ${epoch + 1}/${epochs}`)
        : undefined;
      const images = options.augment ? await options.augment(epoch) : train.images;
      const tr = await model.trainEpoch(images, train.labels, {
        batchSize,
        lrMax: options.lr,
        lrMin: options.lr,
        weightDecay: 0,
        totalSteps: steps,
        optimizer: options.optimizer,
        seed,
        epoch,
        mixup: options.mixup,
      }, bar?.callback);
      const te = await model.evaluate(curve.images, curve.labels);
      history.push({
        epoch: epoch + 1,
        trainLoss: tr.loss,
        trainAccuracy: tr.accuracy,
        testLoss: te.loss,
        testAccuracy: te.accuracy,
      });
      bar?.done(
        `train loss ${tr.loss.toFixed(3)}, test loss ${te.loss.toFixed(3)}, test ${
          (100 * te.accuracy).toFixed(2)
        }%`,
      );
      if (options.partialDir) {
        await savePartialRun(options.partialDir, files, {
          settings,
          history,
          seconds: secondsBefore + (performance.now() - t0) / 1000,
        });
      }
    }
    const seconds = secondsBefore + (performance.now() - t0) / 1000;
    const final = n === test.count
      ? history[history.length - 1].testAccuracy
      : (await model.evaluate(test.images, test.labels)).accuracy;
    return { model, history, accuracy: final, seconds };
  } catch (e) {
    model.close();
    throw e;
  }
}

/** A percentage rounded to two decimals, as the study tables print it. */
export const round2 = (x: number): number => Math.round(100 * x) / 100;

/** A difference in points with its sign: "+1.25", "-0.40". */
export const signed = (x: number): string => `${x >= 0 ? "+" : ""}${x.toFixed(2)}`;
