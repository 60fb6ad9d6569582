/**
 * Where a training run starts: a fresh model, or the last checkpoint of its folder with its
 * optimiser state, its history and its best epoch so far.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import { Model, type ModelName } from "../../ffi/model.ts";
import { type EpochRecord, loadCheckpoint, readSidecar } from "../checkpoint.ts";

/** A run's files in its folder: the last epoch, the best one, and the optimiser state. */
export function runFiles(outDir: string): { last: string; best: string; optState: string } {
  return {
    last: `${outDir}/model.safetensors`,
    best: `${outDir}/best.safetensors`,
    optState: `${outDir}/optimizer.safetensors`,
  };
}

/** A run's starting point. */
export interface Start {
  model: Model;
  history: EpochRecord[];
  /** The best epoch so far (0-based) and its validation accuracy; -1 before the first. */
  bestEpoch: number;
  bestAcc: number;
}

/** Opens the model a run trains, resumed from `outDir` when `resume` is set. */
export async function startRun(o: {
  name: ModelName;
  dataset: string;
  outDir: string;
  resume: boolean;
  seed: number;
  full: Dataset;
  blocks?: number[];
  device?: "cpu" | "cuda" | "auto";
  log: (line: string) => void;
}): Promise<Start> {
  const { name, dataset, outDir, resume, seed, full, log } = o;
  const { last, best, optState } = runFiles(outDir);
  let model: Model;
  let history: EpochRecord[] = [];
  let bestEpoch = -1;
  let bestAcc = -1;
  if (resume) {
    const loaded = await loadCheckpoint(last, o.device).catch((cause) => {
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
      blocks: o.blocks,
      device: o.device,
    });
  }
  return { model, history, bestEpoch, bestAcc };
}
