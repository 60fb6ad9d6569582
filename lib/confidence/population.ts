/**
 * Step 1 of the confidence study: trains the planned LeNet-5 runs as native populations,
 * evaluates each model on the test set after every epoch it is a run for, and keeps those at or
 * above the accuracy threshold as checkpoints. A ledger records every finished population, so an
 * interrupted run resumes with the first unfinished one.
 * @module
 */
import { Population } from "../../ffi/confidence.ts";
import { nativeVersion } from "../../ffi/native.ts";
import type { Dataset } from "../../data/datasets.ts";
import { writeJsonAtomic } from "../files.ts";
import { ProgressBar } from "../progress.ts";
import { type Sidecar, sidecarPath } from "../checkpoint.ts";
import { planPopulations, type PopulationPlan, type Run, runId } from "./grid.ts";

/** The study keeps a model when its test accuracy is at least this. */
export const KEEP_ACCURACY = 0.6;
/** LeNet-5's parameter count (`lenet::offsets()`). */
const PARAMETERS = 44_426;

/** One trained run. */
export interface TrainedRun {
  id: string;
  run: Run;
  testAccuracy: number;
  kept: boolean;
  /** The checkpoint, for kept runs. */
  weights?: string;
}

/** What the ledger holds for each finished population. */
interface LedgerEntry {
  runs: TrainedRun[];
  /** Wall-clock seconds of its training and evaluation. */
  seconds: number;
  /** Members x epochs trained. */
  memberEpochs: number;
}

/** The population step's outcome. */
export interface PopulationResult {
  runs: TrainedRun[];
  trained: number;
  kept: number;
  /** Training and evaluation time summed over populations (resumed ones included). */
  seconds: number;
  memberEpochs: number;
}

function planKey(plan: PopulationPlan): string {
  return `s${plan.seed}-b${plan.batchSize}`;
}

/**
 * Trains every planned run not already in the ledger.
 * @param runs the runs to train
 * @param train the training set (pixels in [0, 1])
 * @param test the test set
 * @param modelsDir where checkpoints and `ledger.json` go
 * @returns every run's test accuracy and whether it was kept
 */
export async function trainPopulations(
  runs: Run[],
  train: Dataset,
  test: Dataset,
  modelsDir: string,
): Promise<PopulationResult> {
  await Deno.mkdir(modelsDir, { recursive: true });
  const ledgerPath = `${modelsDir}/ledger.json`;
  const ledger: Record<string, LedgerEntry> = await Deno.readTextFile(ledgerPath)
    .then(JSON.parse)
    .catch((e) => {
      if (e instanceof Deno.errors.NotFound) return {};
      throw new SyntaxError(`${ledgerPath}: unreadable (${e.message}); delete it to start over`);
    });
  const plans = planPopulations(runs);
  for (const [i, plan] of plans.entries()) {
    const key = planKey(plan);
    const wanted = plan.trajectories.flatMap((t) => [...t.snapshots.values()].map(runId));
    const done = new Set(ledger[key]?.runs.map((r) => r.id) ?? []);
    if (wanted.every((id) => done.has(id))) continue;
    const label =
      `population ${i + 1}/${plans.length} (seed ${plan.seed}, batch ${plan.batchSize}` +
      `, ${plan.trajectories.length} members)`;
    ledger[key] = await trainPlan(plan, train, test, modelsDir, label);
    await writeJsonAtomic(ledgerPath, ledger);
  }
  const wantedIds = new Set(runs.map(runId));
  const trained = Object.values(ledger).flatMap((e) => e.runs).filter((r) => wantedIds.has(r.id));
  const entries = plans.map((p) => ledger[planKey(p)]);
  return {
    runs: trained,
    trained: trained.length,
    kept: trained.filter((r) => r.kept).length,
    seconds: entries.reduce((s, e) => s + e.seconds, 0),
    memberEpochs: entries.reduce((s, e) => s + e.memberEpochs, 0),
  };
}

async function trainPlan(
  plan: PopulationPlan,
  train: Dataset,
  test: Dataset,
  modelsDir: string,
  label: string,
): Promise<LedgerEntry> {
  const start = performance.now();
  using pop = Population.create({
    seed: plan.seed,
    batchSize: plan.batchSize,
    members: plan.trajectories.map((t) => t.member),
  });
  const epochs = Math.max(...plan.trajectories.map((t) => t.epochs));
  const history = plan.trajectories.map(() => [] as Sidecar["history"]);
  const runs: TrainedRun[] = [];
  const bar = new ProgressBar(label);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const epochStart = performance.now();
    const fit = await pop.trainEpoch(
      train.images,
      train.labels,
      epoch,
      (d, t) => bar.update(epoch * (t + test.count) + d, epochs * (t + test.count)),
    );
    const scored = await pop.evaluate(
      test.images,
      test.labels,
      (d) =>
        bar.update(
          epoch * (train.count + test.count) + train.count + d,
          epochs * (train.count + test.count),
        ),
    );
    for (const [m, t] of plan.trajectories.entries()) {
      history[m].push({
        epoch,
        trainLoss: fit[m].loss,
        trainAccuracy: fit[m].accuracy,
        valLoss: scored[m].loss,
        valAccuracy: scored[m].accuracy,
        lr: t.member.lr,
        seconds: (performance.now() - epochStart) / 1000,
      });
      const run = t.snapshots.get(epoch + 1);
      if (!run) continue;
      const id = runId(run);
      const kept = scored[m].accuracy >= KEEP_ACCURACY;
      const weights = kept ? `${modelsDir}/${id}.safetensors` : undefined;
      if (weights) {
        pop.save(m, weights);
        await writeJsonAtomic(sidecarPath(weights), sidecar(run, history[m]));
      }
      runs.push({ id, run, testAccuracy: scored[m].accuracy, kept, weights });
    }
  }
  const kept = runs.filter((r) => r.kept).length;
  bar.done(`${kept} of ${runs.length} runs kept (test accuracy >= ${KEEP_ACCURACY})`);
  return {
    runs,
    seconds: (performance.now() - start) / 1000,
    memberEpochs: plan.trajectories.length * epochs,
  };
}

function sidecar(run: Run, history: Sidecar["history"]): Sidecar {
  const last = history[history.length - 1];
  return {
    model: "lenet5",
    dataset: "mnist",
    classes: 10,
    epoch: run.epochs - 1,
    epochs: run.epochs,
    seed: run.seed,
    normalisation: { mean: 0, std: 1 },
    trainAccuracy: last.trainAccuracy,
    testAccuracy: last.valAccuracy,
    history,
    options: { ...run },
    libraryVersion: nativeVersion(),
    parameters: PARAMETERS,
  };
}
