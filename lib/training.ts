/**
 * The training loop: cosine-annealed Adam(W) (or SGD with momentum), a validation split,
 * early stopping, a checkpoint after every epoch and `resume`.
 * @module
 */
import { type Dataset, loadDataset } from "../data/datasets.ts";
import type { ModelName, OptimizerName } from "../ffi/model.ts";
import { EPOCH_DEFAULTS } from "../ffi/train.ts";
import { loadCheckpoint, saveCheckpoint, type Sidecar } from "./checkpoint.ts";
import { type Best, type EpochPlan, runEpoch } from "./training/epoch.ts";
import { runFiles, startRun } from "./training/start.ts";

/** Options of {@linkcode trainModel}. */
export interface TrainOptions {
  model: ModelName;
  dataset: string;
  /** @default 5 */
  epochs?: number;
  /** @default 128 */
  batchSize?: number;
  /** @default 2e-3 */
  lrMax?: number;
  /** @default 1e-5 */
  lrMin?: number;
  /** @default 1e-4 */
  weightDecay?: number;
  /** Epochs without a better validation accuracy before stopping. @default 3 */
  patience?: number;
  /** @default 0 */
  seed?: number;
  /** Fraction of the training set held out for validation. @default 0.1 */
  valFraction?: number;
  /** Use only the first n training images (quick runs and tests). */
  limit?: number;
  /** @default "adam" */
  optimizer?: OptimizerName;
  /** Folder for the checkpoint files. */
  outDir: string;
  /** Continue from the last checkpoint in `outDir`. @default false */
  resume?: boolean;
  dataDir?: string;
  blocks?: number[];
  /** Train and test sets to use instead of loading `dataset` (e.g. a poisoned copy). */
  data?: { train: Dataset; test: Dataset };
  device?: "cpu" | "cuda" | "auto";
  /** @default true */
  progress?: boolean;
  /** Print one line per epoch. @default console.log */
  log?: (line: string) => void;
}

/** What {@linkcode trainModel} returns. */
export interface TrainResult {
  /** The best checkpoint (by validation accuracy). */
  checkpoint: string;
  sidecar: Sidecar;
  testAccuracy: number;
}

/** Splits a dataset into train and validation parts with a seeded shuffle of image indices. */
export function splitValidation(ds: Dataset, fraction: number, seed: number): [Dataset, Dataset] {
  const n = ds.count;
  const order = Array.from({ length: n }, (_, i) => i);
  let s = (seed * 2654435761 + 12345) >>> 0;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const nVal = Math.round(n * fraction);
  const take = (idx: number[]): Dataset => {
    const images = new Float32Array(idx.length * 784);
    const labels = new Uint8Array(idx.length);
    idx.forEach((k, i) => {
      images.set(ds.images.subarray(k * 784, (k + 1) * 784), i * 784);
      labels[i] = ds.labels[k];
    });
    return { ...ds, images, labels, count: idx.length };
  };
  return [take(order.slice(nVal)), take(order.slice(0, nVal))];
}

/**
 * The default mini-batch of a model: 64 for `larger`, whose ResNet needs the extra updates to
 * reach its Fashion-MNIST floor in five epochs (91.22% at 128, 91.60% at 64), 128 otherwise.
 * @param model a model name
 * @returns the batch size `deno task train` uses when `--batch-size` is not given
 */
export function defaultBatchSize(model: string): number {
  return model === "larger" ? 64 : 128;
}

/** Refuses settings a run cannot use, naming them. */
function checkSettings(o: {
  epochs: number;
  batchSize: number;
  patience: number;
  lrMax: number;
  lrMin: number;
  valFraction: number;
}): void {
  const { epochs, batchSize, patience, lrMax, lrMin, valFraction } = o;
  for (const [k, v] of Object.entries({ epochs, batchSize, patience })) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`invalid ${k}: ${v} (expected a whole number >= 1)`);
    }
  }
  if (!(lrMax > 0) || !(lrMin >= 0) || lrMin > lrMax) {
    throw new RangeError(
      `invalid learning rates: lr-max ${lrMax}, lr-min ${lrMin} (need 0 <= lr-min <= lr-max, lr-max > 0)`,
    );
  }
  if (!(valFraction > 0 && valFraction < 1)) {
    throw new RangeError(`invalid val-fraction: ${valFraction} (expected 0 < f < 1)`);
  }
}

/**
 * Trains a model and writes checkpoints, the history (`.npz`, SVG, PNG) and the test accuracy.
 * @param options model, dataset, schedule, output folder
 * @returns the best checkpoint and its sidecar
 */
export async function trainModel(options: TrainOptions): Promise<TrainResult> {
  const {
    model: name,
    dataset,
    epochs = 5,
    batchSize = defaultBatchSize(name),
    lrMax = 2e-3,
    lrMin = EPOCH_DEFAULTS.lrMin,
    weightDecay = EPOCH_DEFAULTS.weightDecay,
    patience = 3,
    seed = 0,
    valFraction = 0.1,
    optimizer = "adam",
    outDir,
    resume = false,
    log = console.log,
  } = options;
  checkSettings({ epochs, batchSize, patience, lrMax, lrMin, valFraction });
  // Data: a seeded validation split of the training set, and the test set.
  const full = options.data?.train ?? await loadDataset(dataset, "train", {
    dataDir: options.dataDir,
    limit: options.limit,
  });
  const test = options.data?.test ??
    await loadDataset(dataset, "test", { dataDir: options.dataDir });
  const [train, val] = splitValidation(full, valFraction, seed);
  await Deno.mkdir(outDir, { recursive: true });
  const start = await startRun({
    name,
    dataset,
    outDir,
    resume,
    seed,
    full,
    log,
    blocks: options.blocks,
    device: options.device,
  });
  const { model, history } = start;
  let best: Best = start;
  try {
    const stepsPerEpoch = Math.floor(train.count / batchSize) +
      (train.count % batchSize >= 2 ? 1 : 0);
    const totalSteps = stepsPerEpoch * epochs;
    const base = {
      model: name,
      dataset,
      classes: 10,
      blocks: options.blocks,
      epochs,
      seed,
      normalisation: { mean: full.mean, std: full.std },
      options: {
        batchSize,
        lrMax,
        lrMin,
        weightDecay,
        patience,
        valFraction,
        optimizer,
        limit: options.limit ?? null,
      },
    };
    log(
      `training ${name} (${
        model.info().parameters.toLocaleString("en")
      } parameters) on ${dataset}: ${train.count} train, ${val.count} validation, ${test.count} test images`,
    );
    const plan: EpochPlan = {
      model,
      train,
      val,
      epochs,
      schedule: { batchSize, lrMax, lrMin, weightDecay, totalSteps, optimizer, seed },
      lrMin,
      lrMax,
      base,
      outDir,
      progress: options.progress !== false,
      log,
    };
    for (let epoch = history.length; epoch < epochs; epoch++) {
      if (epoch - best.bestEpoch > patience && best.bestEpoch >= 0) {
        log(`early stop: no better validation accuracy for ${patience} epochs`);
        break;
      }
      best = await runEpoch(plan, epoch, history, best);
    }
  } finally {
    model.close();
  }
  // Test accuracy of the best checkpoint, stored in its sidecar.
  const bestPath = runFiles(outDir).best;
  const { model: bestModel, sidecar } = await loadCheckpoint(bestPath, options.device);
  try {
    const te = await bestModel.evaluate(test.images, test.labels);
    sidecar.testAccuracy = te.accuracy;
    await saveCheckpoint(bestModel, bestPath, sidecar);
    log(
      `test accuracy (best epoch ${sidecar.bestEpoch! + 1}): ${
        (100 * te.accuracy).toFixed(2)
      }% — checkpoint ${bestPath}`,
    );
    return { checkpoint: bestPath, sidecar, testAccuracy: te.accuracy };
  } finally {
    bestModel.close();
  }
}

/**
 * The checkpoint a task analyses when the user names none: the best checkpoint of
 * `checkpoints/<dataset>-<model>-s<seed>`, trained there first when it does not exist yet.
 */
export async function defaultCheckpoint(options: Omit<TrainOptions, "outDir">): Promise<string> {
  const dir = `checkpoints/${options.dataset}-${options.model}-s${options.seed ?? 0}`;
  const checkpoint = `${dir}/best.safetensors`;
  try {
    await Deno.stat(checkpoint);
  } catch {
    console.log(
      `no checkpoint at ${checkpoint}: training ${options.model} on ${options.dataset} first`,
    );
    await trainModel({ ...options, outDir: dir });
  }
  return checkpoint;
}
