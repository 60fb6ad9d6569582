/**
 * One epoch of a training run: train, validate, log, and checkpoint (the last epoch always, the
 * best by validation accuracy separately, the history beside them).
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import type { EpochOptions, Model } from "../../ffi/model.ts";
import { type EpochRecord, saveCheckpoint, type Sidecar } from "../checkpoint.ts";
import { ProgressBar } from "../progress.ts";
import { writeHistory } from "./history.ts";
import { runFiles } from "./start.ts";

/** What stays fixed over a run's epochs. */
export interface EpochPlan {
  model: Model;
  train: Dataset;
  val: Dataset;
  epochs: number;
  /** The schedule's settings, the same every epoch but `epoch`. */
  schedule: Omit<EpochOptions, "epoch">;
  lrMin: number;
  lrMax: number;
  /** The sidecar fields every checkpoint of the run shares. */
  base: Omit<
    Sidecar,
    | "libraryVersion"
    | "parameters"
    | "spec"
    | "epoch"
    | "trainAccuracy"
    | "valAccuracy"
    | "history"
    | "bestEpoch"
  >;
  outDir: string;
  progress: boolean;
  log: (line: string) => void;
}

/** The best epoch so far (0-based) and its validation accuracy. */
export interface Best {
  bestEpoch: number;
  bestAcc: number;
}

/** Runs epoch `epoch` (0-based), appends its record to `history`, returns the new best. */
export async function runEpoch(
  plan: EpochPlan,
  epoch: number,
  history: EpochRecord[],
  best: Best,
): Promise<Best> {
  const { model, train, val, epochs, lrMin, lrMax, base, outDir, log } = plan;
  let { bestEpoch, bestAcc } = best;
  const { last, best: bestPath, optState } = runFiles(outDir);
  const t0 = performance.now();
  const bar = plan.progress ? new ProgressBar(`epoch ${epoch + 1}/${epochs}`) : undefined;
  const lr = lrMin + 0.5 * (lrMax - lrMin) * (1 + Math.cos(Math.PI * epoch / epochs));
  const tr = await model.trainEpoch(
    train.images,
    train.labels,
    { ...plan.schedule, epoch },
    bar?.callback,
  );
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
    await saveCheckpoint(model, bestPath, { ...sidecar, bestEpoch });
  }
  model.saveOptimizer(optState);
  await saveCheckpoint(model, last, { ...sidecar, bestEpoch });
  await writeHistory(history, `${outDir}/history`);
  return { bestEpoch, bestAcc };
}
