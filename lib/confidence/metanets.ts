/**
 * Step 5 of the confidence study: RNN, LSTM and Transformer meta-networks trained on the pairs'
 * data flow to predict the confidence ratio (regression) and correctness (classification),
 * seeds 1-5, on two splits: at random over pairs (the study's) and by model (a test model was
 * never seen in training), with the two baselines scored on the same test rows. Each fit is
 * stored as it finishes, so an interrupted run resumes.
 * @module
 */
import { fitMetaNet, META_FEATURES, type MetaKind, type MetaTask } from "../../ffi/confidence.ts";
import { readNpy, writeNpy } from "../npy.ts";
import { writeJsonAtomic } from "../files.ts";
import { ProgressBar } from "../progress.ts";
import { SeededRandom } from "../random.ts";
import { errorDetection, meanAbsoluteError, r2 } from "./scores.ts";

/** The two ways of holding out test pairs. */
export type SplitName = "pair" | "model";
/** The study's split: 64% train, 16% validation (not used: no early stopping), 20% test. */
const SPLIT = { train: 0.64, validation: 0.16 };

/** One row of `summary.json`'s `results`. */
export interface MetaResult {
  net: MetaKind | "max_softmax" | "trust_score";
  task: MetaTask;
  split: SplitName;
  /** The meta-network's seed; null for a baseline. */
  seed: number | null;
  r2?: number;
  mae?: number;
  accuracy?: number;
  auroc?: number;
  auprErrors?: number;
}

/** What `runMetaNets` trains. */
export interface MetaStudyOptions {
  kinds: MetaKind[];
  tasks: MetaTask[];
  seeds: number[];
  epochs: number;
  /** Keys both splits. */
  splitSeed: number;
  /** Token width, and the Transformer's feed-forward width (smaller for tests). */
  width?: number;
  feedForward?: number;
}

/** The pairs as the meta-networks, the baselines and the report read them. */
export interface PairData {
  features: Float32Array;
  ratio: Float32Array;
  correct: Float32Array;
  maxSoftmax: Float32Array;
  trust: Float32Array;
  modelId: Float32Array;
}

/**
 * Reads the pairs' fields, the data flow side by side as one `[n, 470]` matrix.
 * @param pairsDir where `labelPairs` wrote the `.npy` files
 * @returns the fields
 */
export async function readPairs(pairsDir: string): Promise<PairData> {
  const read = async (f: string) => (await readNpy(`${pairsDir}/${f}.npy`)).data;
  const layers = await Promise.all(["pool2", "fc1", "fc2", "fc3"].map(read));
  const n = layers[3].length / 10;
  const features = new Float32Array(n * META_FEATURES);
  for (let i = 0; i < n; i++) {
    let at = i * META_FEATURES;
    for (const l of layers) {
      const w = l.length / n;
      features.set(l.subarray(i * w, (i + 1) * w), at);
      at += w;
    }
  }
  return {
    features,
    ratio: await read("ratio"),
    correct: await read("correct"),
    maxSoftmax: await read("maxSoftmax"),
    trust: await read("trust"),
    modelId: await read("modelId"),
  };
}

/** Training and test rows of a split. */
export function splitRows(
  modelId: ArrayLike<number>,
  split: SplitName,
  seed: number,
): { train: Uint32Array; test: Uint32Array } {
  const n = modelId.length;
  const shuffled = <T>(items: T[]) => {
    const rng = new SeededRandom(seed, split === "pair" ? 0x5b11 : 0x5b12);
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(rng.uniform() * (i + 1));
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  };
  const cut = (count: number) => [
    Math.round(count * SPLIT.train),
    Math.round(count * (SPLIT.train + SPLIT.validation)),
  ];
  if (split === "pair") {
    const rows = shuffled(Array.from({ length: n }, (_, i) => i));
    const [a, b] = cut(n);
    return { train: Uint32Array.from(rows.slice(0, a)), test: Uint32Array.from(rows.slice(b)) };
  }
  const models = shuffled([...new Set(Array.from(modelId))].sort((x, y) => x - y));
  const [a, b] = cut(models.length);
  const trainModels = new Set(models.slice(0, a));
  const testModels = new Set(models.slice(b));
  const rows = Array.from({ length: n }, (_, i) => i);
  return {
    train: Uint32Array.from(rows.filter((i) => trainModels.has(modelId[i]))),
    test: Uint32Array.from(rows.filter((i) => testModels.has(modelId[i]))),
  };
}

const pick = (a: Float32Array, rows: Uint32Array) => Float32Array.from(rows, (i) => a[i]);

/** Scores of a classification prediction (P(right)) against the truth. */
function classificationScores(p: Float32Array, correct: Float32Array) {
  let right = 0;
  for (let i = 0; i < p.length; i++) right += Number((p[i] > 0.5) === (correct[i] > 0.5));
  return { accuracy: right / p.length, ...errorDetection(p, correct) };
}

/** A baseline on a split: a line fitted (regression) or a threshold chosen (classification) on
 * the training rows, scored on the test rows. */
function baseline(
  net: "max_softmax" | "trust_score",
  score: Float32Array,
  d: PairData,
  split: SplitName,
  rows: { train: Uint32Array; test: Uint32Array },
): MetaResult[] {
  const [sTrain, sTest] = [pick(score, rows.train), pick(score, rows.test)];
  // Regression: least squares ratio = a + b * score.
  const yTrain = pick(d.ratio, rows.train), yTest = pick(d.ratio, rows.test);
  const mean = (v: Float32Array) => v.reduce((s, x) => s + x, 0) / v.length;
  const [mx, my] = [mean(sTrain), mean(yTrain)];
  let sxy = 0, sxx = 0;
  for (let i = 0; i < sTrain.length; i++) {
    sxy += (sTrain[i] - mx) * (yTrain[i] - my);
    sxx += (sTrain[i] - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const fitted = sTest.map((s) => my + slope * (s - mx));
  // Classification: the threshold with the best training accuracy.
  const cTrain = pick(d.correct, rows.train), cTest = pick(d.correct, rows.test);
  const order = Array.from(sTrain.keys()).sort((a, b) => sTrain[a] - sTrain[b]);
  let best = { threshold: -Infinity, right: cTrain.reduce((s, c) => s + c, 0) };
  let right = best.right;
  for (const i of order) {
    right += cTrain[i] ? -1 : 1; // pair i now falls below the threshold: called wrong
    if (right > best.right) best = { threshold: sTrain[i], right };
  }
  const p = sTest.map((s) => (s > best.threshold ? 1 : 0));
  const ranked = classificationScores(sTest, cTest);
  return [
    {
      net,
      task: "regression",
      split,
      seed: null,
      r2: r2(fitted, yTest),
      mae: meanAbsoluteError(fitted, yTest),
    },
    {
      net,
      task: "classification",
      split,
      seed: null,
      accuracy: classificationScores(p, cTest).accuracy,
      auroc: ranked.auroc,
      auprErrors: ranked.auprErrors,
    },
  ];
}

/**
 * The version of the meta-networks' training recipe (the native defaults a fit does not name),
 * raised whenever one changes so that older fits are not reused. 2: the Transformer's learning
 * rate went from 1e-3 to 1e-4.
 */
const RECIPE = 2;

/**
 * The folder of one setting's fits: a stored fit is reused only by a run with the same recipe,
 * epochs, widths and split.
 * @param outDir the meta-networks' folder
 * @param o the study's settings
 * @returns `<outDir>/r<recipe>-e<epochs>-w<width>-f<feedForward>-s<splitSeed>`
 */
export function fitDir(outDir: string, o: MetaStudyOptions): string {
  return `${outDir}/r${RECIPE}-e${o.epochs}-w${o.width ?? "default"}-f${
    o.feedForward ?? "default"
  }-s${o.splitSeed}`;
}

/**
 * Trains every meta-network of the plan (skipping fits already stored) and scores them and the
 * baselines.
 * @param d the pairs (`readPairs`)
 * @param outDir where fits are stored (`fitDir`: `results.json`, test predictions as `.npy`)
 * @param o kinds, tasks, seeds, epochs and split seed
 * @returns every result, baselines included
 */
export async function runMetaNets(
  d: PairData,
  outDir: string,
  o: MetaStudyOptions,
): Promise<MetaResult[]> {
  const dir = fitDir(outDir, o);
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/results.json`;
  const stored: Record<string, MetaResult> = await Deno.readTextFile(path)
    .then(JSON.parse, () => ({}));
  const results: MetaResult[] = [];
  const total = 2 * o.kinds.length * o.tasks.length * o.seeds.length;
  const bar = new ProgressBar(`meta-networks (${total} fits)`);
  let done = 0;
  // Seed by seed, so that an interrupted run has whole tables for its first seeds.
  const splits = (["pair", "model"] as const).map((split) => ({
    split,
    rows: splitRows(d.modelId, split, o.splitSeed),
  }));
  for (const { split, rows } of splits) {
    results.push(...baseline("max_softmax", d.maxSoftmax, d, split, rows));
    results.push(...baseline("trust_score", d.trust.map(Math.log), d, split, rows));
  }
  for (const seed of o.seeds) {
    for (const { split, rows } of splits) {
      for (const task of o.tasks) {
        const targets = task === "regression" ? d.ratio : d.correct;
        const truth = pick(targets, rows.test);
        for (const kind of o.kinds) {
          const key = `${kind}-${task}-${split}-${seed}`;
          if (!stored[key]) {
            const p = await fitMetaNet(
              { kind, task, seed, epochs: o.epochs, width: o.width, feedForward: o.feedForward },
              d.features,
              targets,
              rows.train,
              rows.test,
              (k, n) => bar.update(done + k / n, total),
            );
            await writeNpy(`${dir}/${key}.npy`, { data: p, shape: [p.length] });
            stored[key] = task === "regression"
              ? { net: kind, task, split, seed, r2: r2(p, truth), mae: meanAbsoluteError(p, truth) }
              : { net: kind, task, split, seed, ...classificationScores(p, truth) };
            await writeJsonAtomic(path, stored);
          }
          results.push(stored[key]);
          bar.update(++done, total);
        }
      }
    }
  }
  bar.done();
  return results;
}
