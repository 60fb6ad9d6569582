/**
 * The confidence study's hyperparameter grid of LeNet-5 runs (8,192), the seeded subsets the
 * default run trains, and the plan that trains them: runs that differ only in their epoch count
 * are one trajectory (the learning rate is constant, so a 4-epoch run passes through the 1-, 2-
 * and 3-epoch models), and trajectories that share a seed and batch size are one population.
 * @module
 */
import type {
  PopulationInit,
  PopulationMember,
  PopulationOptimizer,
} from "../../ffi/confidence.ts";
import { SeededRandom } from "../random.ts";

/** The study's grid, axis by axis. */
export const GRID = {
  optimizer: ["sgd", "adam"] as PopulationOptimizer[],
  lr: [5e-3, 1e-2, 5e-2, 1e-1],
  weightDecay: [0, 0.05, 0.1, 0.2],
  epochs: [1, 2, 3, 4],
  seed: [0, 1, 2, 42],
  init: ["xavier_uniform", "normal", "kaiming_uniform", "default"] as PopulationInit[],
  batchSize: [32, 64, 128, 256],
};

/** One run of the grid: a member's hyperparameters plus its seed, batch size and epochs. */
export interface Run extends PopulationMember {
  seed: number;
  batchSize: number;
  epochs: number;
}

/** A run's stable name, used for its checkpoint file and in the ledger. */
export function runId(r: Run): string {
  return `${r.optimizer}-lr${r.lr}-wd${r.weightDecay}-${r.init}-s${r.seed}-b${r.batchSize}-e${r.epochs}`;
}

/** Every run of the grid, in a fixed order. */
export function gridRuns(): Run[] {
  const runs: Run[] = [];
  for (const optimizer of GRID.optimizer) {
    for (const lr of GRID.lr) {
      for (const weightDecay of GRID.weightDecay) {
        for (const init of GRID.init) {
          for (const seed of GRID.seed) {
            for (const batchSize of GRID.batchSize) {
              for (const epochs of GRID.epochs) {
                runs.push({ optimizer, lr, weightDecay, init, seed, batchSize, epochs });
              }
            }
          }
        }
      }
    }
  }
  return runs;
}

/** One member trained for `epochs`, giving a model after each epoch in `snapshots`. */
export interface Trajectory {
  member: PopulationMember;
  epochs: number;
  /** Epoch counts (1-based) whose model is a run of the plan, each with its run. */
  snapshots: Map<number, Run>;
}

/** Trajectories sharing a seed and batch size: one native population. */
export interface PopulationPlan {
  seed: number;
  batchSize: number;
  trajectories: Trajectory[];
}

/**
 * Groups runs into populations of trajectories.
 * @param runs any subset of the grid
 * @returns populations in a fixed order (seed, then batch size)
 */
export function planPopulations(runs: Run[]): PopulationPlan[] {
  const plans = new Map<string, PopulationPlan>();
  const trajectories = new Map<string, Trajectory>();
  for (const run of runs) {
    const planKey = `${run.seed}/${run.batchSize}`;
    let plan = plans.get(planKey);
    if (!plan) {
      plan = { seed: run.seed, batchSize: run.batchSize, trajectories: [] };
      plans.set(planKey, plan);
    }
    const { optimizer, lr, weightDecay, init } = run;
    const key = `${planKey}/${optimizer}/${lr}/${weightDecay}/${init}`;
    let t = trajectories.get(key);
    if (!t) {
      t = { member: { optimizer, lr, weightDecay, init }, epochs: 0, snapshots: new Map() };
      trajectories.set(key, t);
      plan.trajectories.push(t);
    }
    t.epochs = Math.max(t.epochs, run.epochs);
    t.snapshots.set(run.epochs, run);
  }
  return [...plans.values()].sort((a, b) => a.seed - b.seed || a.batchSize - b.batchSize);
}

/**
 * A seeded subset of the grid: `count` trajectories drawn without replacement, each with all
 * four of its epoch counts (four runs for the price of the longest).
 * @param count trajectories to draw
 * @param seed keys the draw
 * @returns the runs, in grid order
 */
export function sampleRuns(count: number, seed: number): Run[] {
  const all = gridRuns();
  const byTrajectory = new Map<string, Run[]>();
  for (const r of all) {
    const key = runId({ ...r, epochs: 0 });
    byTrajectory.set(key, [...(byTrajectory.get(key) ?? []), r]);
  }
  const keys = [...byTrajectory.keys()];
  const rng = new SeededRandom(seed, 0x9d1d);
  for (let i = keys.length - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [keys[i], keys[j]] = [keys[j], keys[i]];
  }
  const chosen = new Set(keys.slice(0, Math.min(count, keys.length)));
  return all.filter((r) => chosen.has(runId({ ...r, epochs: 0 })));
}
