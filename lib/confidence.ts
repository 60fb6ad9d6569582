/**
 * The confidence study's run: the population, the pairs, the meta-networks, then `summary.json`
 * and the report. Each step keeps what it finished, so a run resumes where it stopped.
 * @module
 */
import { loadDataset } from "../data/datasets.ts";
import type { MetaKind, MetaTask } from "../ffi/confidence.ts";
import { writeJsonAtomic } from "./files.ts";
import { gridRuns, type Run, sampleRuns } from "./confidence/grid.ts";
import { KEEP_ACCURACY, trainPopulations } from "./confidence/population.ts";
import { chooseModels, labelPairs } from "./confidence/pairs.ts";
import { peerSpeed } from "./confidence/peer_speed.ts";
import { scoreBaselines } from "./confidence/baselines.ts";
import { writeConfidenceReport } from "./confidence/report.ts";
import type { ConfidenceSummary } from "./confidence/types.ts";

export type { ConfidenceSummary } from "./confidence/types.ts";
import { fitDir, readPairs, runMetaNets } from "./confidence/metanets.ts";

/** Trajectories (4 runs each) the default run trains: about an hour on a 2-core machine. */
export const DEFAULT_TRAJECTORIES = 400;
/** Models whose pairs are labelled by default: about the study's 78,800 pairs. */
export const DEFAULT_LABELLED = 400;
/** Noisy copies per image (the study's). */
export const DEFAULT_COPIES = 1000;
/** Epochs of each meta-network. */
export const DEFAULT_META_EPOCHS = 5;
/** The meta-networks' seeds (the study's five). */
export const META_SEEDS = [1, 2, 3, 4, 5];

/** The test settings: one population of 2 trajectories (8 models), 2,000 images, 20 copies. */
const QUICK_RUNS: Run[] = [
  { optimizer: "sgd", lr: 0.1, weightDecay: 0, init: "default", seed: 0, batchSize: 32 },
  { optimizer: "adam", lr: 5e-3, weightDecay: 0, init: "xavier_uniform", seed: 0, batchSize: 32 },
].flatMap((r) => [1, 2, 3, 4].map((epochs) => ({ ...r, epochs }) as Run));
const QUICK_IMAGES = 2000;
const QUICK_COPIES = 20;
/** Quick meta-networks: one epoch, narrower tokens, so the tests take seconds. */
const QUICK_META = { epochs: 1, width: 64, feedForward: 128 };

/** What `runConfidence` does. */
export interface ConfidenceOptions {
  /** Small settings for tests. @default false */
  quick?: boolean;
  /** @default DEFAULT_TRAJECTORIES */
  trajectories?: number;
  /** Train the whole grid. @default false */
  full?: boolean;
  /** @default DEFAULT_LABELLED */
  label?: number;
  /** @default DEFAULT_COPIES, or 20 with quick */
  copies?: number;
  /** @default 0 */
  seed?: number;
  /** @default DEFAULT_META_EPOCHS, or 1 with quick */
  metaEpochs?: number;
  /** @default META_SEEDS */
  metaSeeds?: number[];
  /** Time PyTorch on a sample of the runs when its environment is installed. @default true */
  peer?: boolean;
  outDir: string;
  dataDir?: string;
}

/**
 * Runs the study's five steps and writes `summary.json`, the figures and `report.html`.
 * @param options settings
 * @returns the summary
 */
export async function runConfidence(options: ConfidenceOptions): Promise<ConfidenceSummary> {
  const { quick = false, seed = 0, outDir, dataDir } = options;
  const limit = quick ? QUICK_IMAGES : undefined;
  const train = await loadDataset("mnist", "train", { limit, dataDir });
  const test = await loadDataset("mnist", "test", { limit, dataDir });

  // 1. The population.
  const runs = quick
    ? QUICK_RUNS
    : options.full
    ? gridRuns()
    : sampleRuns(options.trajectories ?? DEFAULT_TRAJECTORIES, seed);
  console.log(`training ${runs.length} runs of LeNet-5 on ${train.count} images`);
  const population = await trainPopulations(runs, train, test, `${outDir}/models`);
  console.log(
    `kept ${population.kept} of ${population.trained} models (test accuracy >= ${KEEP_ACCURACY})`,
  );
  const wna = {
    modelsPerHour: population.trained / population.seconds * 3600,
    memberEpochsPerHour: population.memberEpochs / population.seconds * 3600,
    seconds: population.seconds,
  };
  const pytorch = options.peer === false
    ? undefined
    : await peerSpeed(runs, train, `${outDir}/peer`);

  // 2-4. The pairs.
  const copies = options.copies ?? (quick ? QUICK_COPIES : DEFAULT_COPIES);
  const kept = population.runs.filter((r) => r.kept);
  const chosen = chooseModels(kept, options.label ?? DEFAULT_LABELLED, seed);
  const pairs = await labelPairs(chosen, test, train, `${outDir}/pairs`, {
    copies,
    noiseSeed: seed,
  });

  const stored = await readPairs(`${outDir}/pairs`);
  const baselines = scoreBaselines(stored);

  // 5. The meta-networks.
  const metaEpochs = options.metaEpochs ?? (quick ? QUICK_META.epochs : DEFAULT_META_EPOCHS);
  const metaSeeds = options.metaSeeds ?? META_SEEDS;
  const study = {
    kinds: ["rnn", "lstm", "transformer"] as MetaKind[],
    tasks: ["regression", "classification"] as MetaTask[],
    seeds: metaSeeds,
    epochs: metaEpochs,
    splitSeed: seed,
    ...(quick ? { width: QUICK_META.width, feedForward: QUICK_META.feedForward } : {}),
  };
  const results = await runMetaNets(stored, `${outDir}/metanets`, study);

  const summary: ConfidenceSummary = {
    models: { trained: population.trained, kept: population.kept, labelled: chosen.length },
    pairs: pairs.pairs,
    populationSpeed: {
      wna,
      pytorch: pytorch ?? null,
      ratio: pytorch ? wna.modelsPerHour / pytorch.modelsPerHour : null,
    },
    settings: {
      runs: runs.length,
      trainImages: train.count,
      testImages: test.count,
      copies,
      seed,
      metaEpochs,
      metaSeeds,
    },
    baselines,
    results,
    runs: population.runs.map((r) => ({ id: r.id, testAccuracy: r.testAccuracy, kept: r.kept })),
  };
  await writeJsonAtomic(`${outDir}/summary.json`, summary);
  await writeConfidenceReport(
    outDir,
    fitDir(`${outDir}/metanets`, study),
    summary,
    stored,
    baselines,
  );
  return summary;
}
