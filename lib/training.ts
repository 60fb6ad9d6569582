/**
 * The training loop: cosine-annealed Adam(W) (or SGD with momentum), a validation split,
 * early stopping, a checkpoint after every epoch and `resume`.
 * @module
 */
import { type Dataset, loadDataset } from "../data/datasets.ts";
import { Model, type ModelName, type OptimizerName } from "../ffi/model.ts";
import { EPOCH_DEFAULTS } from "../ffi/train.ts";
import {
  type EpochRecord,
  loadCheckpoint,
  readSidecar,
  saveCheckpoint,
  type Sidecar,
} from "./checkpoint.ts";
import { writeFileAtomic } from "./files.ts";
import { encodeNpz } from "./npy.ts";
import { Plot, plotSvg, svgToPng } from "./plots.ts";
import { ProgressBar } from "./progress.ts";

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

async function drawHistory(history: EpochRecord[], base: string): Promise<void> {
  const rows = history.flatMap((h) => [
    { epoch: h.epoch, split: "train", metric: "loss", value: h.trainLoss },
    { epoch: h.epoch, split: "validation", metric: "loss", value: h.valLoss },
    { epoch: h.epoch, split: "train", metric: "accuracy", value: h.trainAccuracy },
    { epoch: h.epoch, split: "validation", metric: "accuracy", value: h.valAccuracy },
  ]);
  const svg = plotSvg({
    title: "Training history",
    width: 720,
    height: 300,
    fy: { label: null },
    y: { grid: true, label: null },
    x: { label: "epoch", tickFormat: "d" },
    marginRight: 80,
    marks: [
      Plot.lineY(rows, {
        x: "epoch",
        y: "value",
        stroke: "split",
        z: "split",
        fy: "metric",
        marker: "circle",
      }),
      Plot.text(
        rows,
        Plot.selectLast({
          x: "epoch",
          y: "value",
          z: "split",
          fy: "metric",
          text: "split",
          fill: "split",
          dx: 6,
          textAnchor: "start",
        }),
      ),
    ],
  });
  await writeFileAtomic(`${base}.svg`, svg);
  await writeFileAtomic(`${base}.png`, await svgToPng(svg));
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
  // Data: a seeded validation split of the training set, and the test set.
  const full = options.data?.train ?? await loadDataset(dataset, "train", {
    dataDir: options.dataDir,
    limit: options.limit,
  });
  const test = options.data?.test ??
    await loadDataset(dataset, "test", { dataDir: options.dataDir });
  const [train, val] = splitValidation(full, valFraction, seed);
  await Deno.mkdir(outDir, { recursive: true });
  const last = `${outDir}/model.safetensors`;
  const best = `${outDir}/best.safetensors`;
  const optState = `${outDir}/optimizer.safetensors`;
  // Model: fresh, or the last checkpoint with its optimiser state.
  let model: Model;
  let history: EpochRecord[] = [];
  let bestEpoch = -1;
  let bestAcc = -1;
  if (resume) {
    const loaded = await loadCheckpoint(last, options.device).catch((cause) => {
      throw new Error(
        `resume: no usable checkpoint in ${outDir} (${cause.message}); run without --resume to start afresh`,
        { cause },
      );
    });
    model = loaded.model;
    model.loadOptimizer(optState);
    history = loaded.sidecar.history;
    const b = await readSidecar(best).catch(() => undefined);
    bestEpoch = b?.bestEpoch ?? -1;
    bestAcc = b?.valAccuracy ?? -1;
    log(`resuming ${name} on ${dataset} after epoch ${loaded.sidecar.epoch + 1}`);
  } else {
    model = Model.create(name, {
      seed,
      mean: full.mean,
      std: full.std,
      blocks: options.blocks,
      device: options.device,
    });
  }
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
    for (let epoch = history.length; epoch < epochs; epoch++) {
      if (epoch - bestEpoch > patience && bestEpoch >= 0) {
        log(`early stop: no better validation accuracy for ${patience} epochs`);
        break;
      }
      const t0 = performance.now();
      const bar = options.progress === false
        ? undefined
        : new ProgressBar(`epoch ${epoch + 1}/${epochs}`);
      const lr = lrMin + 0.5 * (lrMax - lrMin) * (1 + Math.cos(Math.PI * epoch / epochs));
      const tr = await model.trainEpoch(train.images, train.labels, {
        batchSize,
        lrMax,
        lrMin,
        weightDecay,
        totalSteps,
        optimizer,
        seed,
        epoch,
      }, bar?.callback);
      const va = await model.evaluate(val.images, val.labels);
      const record: EpochRecord = {
        epoch: epoch + 1,
        trainLoss: tr.loss,
        trainAccuracy: tr.accuracy,
        valLoss: va.loss,
        valAccuracy: va.accuracy,
        lr,
        seconds: (performance.now() - t0) / 1000,
      };
      history.push(record);
      bar?.done(
        `loss ${tr.loss.toFixed(4)}, train ${(100 * tr.accuracy).toFixed(2)}%, validation ${
          (100 * va.accuracy).toFixed(2)
        }%`,
      );
      if (!bar) {
        log(
          `epoch ${epoch + 1}/${epochs}: loss ${tr.loss.toFixed(4)}, train ${
            (100 * tr.accuracy).toFixed(2)
          }%, validation ${(100 * va.accuracy).toFixed(2)}%`,
        );
      }
      // Checkpoint every epoch (weights, optimiser, sidecar), best separately.
      const sidecar = {
        ...base,
        epoch,
        trainAccuracy: tr.accuracy,
        valAccuracy: va.accuracy,
        history,
      };
      if (va.accuracy > bestAcc) {
        bestAcc = va.accuracy;
        bestEpoch = epoch;
        await saveCheckpoint(model, best, { ...sidecar, bestEpoch });
      }
      model.saveOptimizer(optState);
      await saveCheckpoint(model, last, { ...sidecar, bestEpoch });
      await writeHistory(history, `${outDir}/history`);
    }
  } finally {
    model.close();
  }
  // Test accuracy of the best checkpoint, stored in its sidecar.
  const { model: bestModel, sidecar } = await loadCheckpoint(best, options.device);
  try {
    const te = await bestModel.evaluate(test.images, test.labels);
    sidecar.testAccuracy = te.accuracy;
    await saveCheckpoint(bestModel, best, sidecar);
    log(
      `test accuracy (best epoch ${sidecar.bestEpoch! + 1}): ${
        (100 * te.accuracy).toFixed(2)
      }% — checkpoint ${best}`,
    );
    return { checkpoint: best, sidecar, testAccuracy: te.accuracy };
  } finally {
    bestModel.close();
  }
}

async function writeHistory(history: EpochRecord[], base: string): Promise<void> {
  const col = (k: keyof EpochRecord) => ({
    data: Float64Array.from(history, (h) => h[k]),
    shape: [history.length],
  });
  await writeFileAtomic(
    `${base}.npz`,
    encodeNpz({
      epoch: col("epoch"),
      train_loss: col("trainLoss"),
      train_accuracy: col("trainAccuracy"),
      val_loss: col("valLoss"),
      val_accuracy: col("valAccuracy"),
      lr: col("lr"),
    }),
  );
  await drawHistory(history, base);
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
