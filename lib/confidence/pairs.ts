/**
 * Steps 2 to 4 of the confidence study: for each labelled model, its pairs (picked test images,
 * confidence ratio, correctness, data flow and baselines) from native code, stored per model so
 * an interrupted run resumes, then gathered into one `.npy` per field, streamed model by model.
 * @module
 */
import { lenetPairs, type ModelPairs, type PairOptions } from "../../ffi/confidence.ts";
import type { Dataset } from "../../data/datasets.ts";
import { readNpy, writeNpy, writeNpyParts } from "../npy.ts";
import { writeJsonAtomic } from "../files.ts";
import { ProgressBar } from "../progress.ts";
import { SeededRandom } from "../random.ts";
import type { TrainedRun } from "./population.ts";

/** Every stored field, with its width (1 for a scalar per pair). */
export const PAIR_FIELDS = {
  modelId: 1,
  imageId: 1,
  label: 1,
  prediction: 1,
  correct: 1,
  ratio: 1,
  maxSoftmax: 1,
  trust: 1,
  pool2: 256,
  fc1: 120,
  fc2: 84,
  fc3: 10,
} as const;
/** A stored field's name. */
export type PairField = keyof typeof PAIR_FIELDS;
/** Fields stored as int32; the rest are float32. */
const INT_FIELDS = new Set<PairField>(["modelId", "imageId", "label", "prediction"]);

/** Training images per class the trust score measures distances to. */
export const TRUST_REFERENCE_PER_CLASS = 100;

/** The pair step's outcome. */
export interface PairsResult {
  /** The labelled models: `modelId` indexes this list. */
  models: { id: string; run: TrainedRun["run"]; testAccuracy: number }[];
  pairs: number;
  /** Where each field's `.npy` is. */
  files: Record<PairField, string>;
}

function modelFields(p: ModelPairs, modelId: number): Record<PairField, Float32Array | Int32Array> {
  return {
    modelId: new Int32Array(p.imageId.length).fill(modelId),
    imageId: p.imageId,
    label: p.label,
    prediction: p.prediction,
    correct: p.correct,
    ratio: p.ratio,
    maxSoftmax: p.maxSoftmax,
    trust: p.trust,
    pool2: p.flow.pool2.data,
    fc1: p.flow.fc1.data,
    fc2: p.flow.fc2.data,
    fc3: p.flow.fc3.data,
  };
}

/** The first `perClass` training images of each class, for the trust score. */
export function trustReference(train: Dataset, perClass = TRUST_REFERENCE_PER_CLASS) {
  const taken = new Array(10).fill(0);
  const picked: number[] = [];
  for (let i = 0; i < train.count && picked.length < 10 * perClass; i++) {
    if (taken[train.labels[i]] < perClass) {
      taken[train.labels[i]]++;
      picked.push(i);
    }
  }
  const images = new Float32Array(picked.length * 784);
  picked.forEach((i, j) => images.set(train.images.subarray(i * 784, (i + 1) * 784), j * 784));
  return { images, labels: Uint8Array.from(picked, (i) => train.labels[i]) };
}

/**
 * A seeded choice of kept runs to label (the study labelled a 10% sample of its pairs).
 * @param kept the kept runs
 * @param count how many, or all when larger
 * @param seed keys the choice
 * @returns runs sorted by id
 */
export function chooseModels(kept: TrainedRun[], count: number, seed: number): TrainedRun[] {
  const sorted = [...kept].sort((a, b) => a.id < b.id ? -1 : 1);
  const rng = new SeededRandom(seed, 0x9a1c);
  const keys = sorted.map((r) => ({ r, k: rng.uniform() }));
  const chosen = keys.sort((a, b) => a.k - b.k).slice(0, count).map((x) => x.r);
  return chosen.sort((a, b) => a.id < b.id ? -1 : 1);
}

/** One field of every model, read one model at a time. */
async function* fieldParts(runs: TrainedRun[], perModel: string, field: PairField) {
  for (const r of runs) {
    const { data } = await readNpy(`${perModel}/${r.id}/${field}.npy`);
    yield INT_FIELDS.has(field) ? Int32Array.from(data) : data;
  }
}

/**
 * Labels every chosen model's pairs and writes `<outDir>/<field>.npy`.
 * @param runs the models to label (kept runs with weights)
 * @param test the test set
 * @param train the training set (its first images per class are the trust score's reference)
 * @param outDir the pairs folder
 * @param options labelling settings
 * @returns the models, the pair count and the files
 */
export async function labelPairs(
  runs: TrainedRun[],
  test: Dataset,
  train: Dataset,
  outDir: string,
  options: PairOptions = {},
): Promise<PairsResult> {
  const perModel = `${outDir}/models`;
  await Deno.mkdir(perModel, { recursive: true });
  const reference = trustReference(train);
  const bar = new ProgressBar(`pairs of ${runs.length} models`);
  const counts: number[] = [];
  for (const [m, r] of runs.entries()) {
    const dir = `${perModel}/${r.id}`;
    const done = await Deno.stat(`${dir}/done`).then(() => true, () => false);
    if (!done) {
      if (!r.weights) throw new TypeError(`pairs: run ${r.id} has no checkpoint (was it kept?)`);
      const p = await lenetPairs(r.weights, test, reference, options);
      await Deno.mkdir(dir, { recursive: true });
      for (const [field, data] of Object.entries(modelFields(p, m))) {
        const width = PAIR_FIELDS[field as PairField];
        const shape = width === 1 ? [p.imageId.length] : [p.imageId.length, width];
        await writeNpy(`${dir}/${field}.npy`, { data, shape });
      }
      await Deno.writeTextFile(`${dir}/done`, "");
    }
    counts.push((await readNpy(`${dir}/imageId.npy`)).shape[0]);
    bar.update(m + 1, runs.length);
  }
  const pairs = counts.reduce((a, b) => a + b, 0);
  bar.done(`${pairs} pairs`);

  // Gather: one file per field, one model in memory at a time.
  const files = {} as Record<PairField, string>;
  for (const [field, width] of Object.entries(PAIR_FIELDS) as [PairField, number][]) {
    const path = `${outDir}/${field}.npy`;
    await writeNpyParts(
      path,
      width === 1 ? [pairs] : [pairs, width],
      fieldParts(runs, perModel, field),
    );
    files[field] = path;
  }
  const models = runs.map((r) => ({ id: r.id, run: r.run, testAccuracy: r.testAccuracy }));
  await writeJsonAtomic(`${outDir}/models.json`, models);
  return { models, pairs, files };
}
