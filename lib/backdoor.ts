/**
 * Backdoor detection with classification images (Borji & Lin, ICLR 2020, §5): a network trained
 * on data where a few images carry a small patch trigger and the target's label learns to answer
 * the target whenever the patch is there. White noise sometimes brightens that corner, so the
 * target's classification image gathers its energy on the patch, and the trigger shows itself
 * without any triggered image at hand. This run poisons, trains, attacks, and checks both a
 * poisoned and a clean model.
 * @module
 */
import { type Dataset, loadDataset } from "../data/datasets.ts";
import type { AnalysisResult, Model } from "../ffi/model.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { type MapGrid, type Table, writeFigure, writeReport } from "./figures.ts";
import { writeJsonAtomic } from "./files.ts";
import { perClassAccuracy } from "./metrics.ts";
import { encodeNpy } from "./npy.ts";
import { Plot, plotSvg } from "./plots.ts";
import { ProgressBar } from "./progress.ts";
import { SeededRandom } from "./random.ts";
import { trainModel } from "./training.ts";
import { writeFileAtomic } from "./files.ts";

/** Defaults of {@linkcode runBackdoor} and `deno task backdoor`. */
export const BACKDOOR_DEFAULTS = {
  dataset: "mnist",
  target: 0,
  /** Share of training images stamped and relabelled. */
  fraction: 0.05,
  /** Side of the square trigger, in pixels, one pixel in from the bottom-right corner. */
  patch: 4,
  epochs: 3,
  /** Uniform noise samples per model: white noise reaches every pixel, the corner too. */
  samples: 200_000,
  seed: 0,
  /**
   * A class is flagged when its classification image puts this many times more energy per pixel
   * on the trigger than over the whole image (1 = no preference for the patch).
   */
  flagRatio: 4,
} as const;

/** Per class, whether `weightedImages − stimulusMean` is positive on average over `pixels`. */
export function patchBrighter(r: AnalysisResult, pixels: number[]): boolean[] {
  const mean = r.stimulusMean.data;
  return Array.from(
    { length: r.weightedImages.shape[0] },
    (_, c) => pixels.reduce((s, p) => s + r.weightedImages.data[c * 784 + p] - mean[p], 0) > 0,
  );
}

/** Options of {@linkcode runBackdoor}. */
export interface BackdoorOptions {
  outDir: string;
  dataset?: "mnist" | "fashion";
  target?: number;
  fraction?: number;
  patch?: number;
  epochs?: number;
  samples?: number;
  seed?: number;
  flagRatio?: number;
  /** Use only the first n training images (tests). */
  limit?: number;
  dataDir?: string;
  log?: (line: string) => void;
}

/** One model's side of the study. */
export interface BackdoorModelResult {
  checkpoint: string;
  cleanAccuracy: number;
  /** Share of triggered test images (not of the target class) called the target. */
  triggerSuccess: number;
  /** Per class: energy per pixel of the classification image on the patch / over the image. */
  patchEnergyRatio: number[];
  /** Per class: whether the map is brighter than the mean stimulus on the patch. */
  patchBrighter: boolean[];
  /** Classes whose map is brighter on the patch and above the flag ratio. */
  flagged: number[];
}

/** What {@linkcode runBackdoor} returns (also `summary.json`). */
export interface BackdoorSummary {
  dataset: string;
  target: number;
  patch: { size: number; row: number; col: number };
  fraction: number;
  poisonedImages: number;
  samples: number;
  flagRatio: number;
  poisoned: BackdoorModelResult;
  clean: BackdoorModelResult;
  seconds: number;
}

/** Pixel indices of the trigger: a `size` square one pixel in from the bottom-right corner. */
export function triggerPixels(size: number): number[] {
  if (!Number.isInteger(size) || size < 1 || size > 26) {
    throw new RangeError(`invalid patch: ${size} (expected a whole number of pixels in 1..26)`);
  }
  const start = 27 - size;
  return Array.from(
    { length: size * size },
    (_, i) => (start + Math.floor(i / size)) * 28 + start + (i % size),
  );
}

/** A copy of `ds` with the trigger stamped on `indices` (relabelled to `target` when given). */
export function stampTrigger(
  ds: Dataset,
  indices: number[],
  pixels: number[],
  target?: number,
): Dataset {
  const images = ds.images.slice();
  const labels = ds.labels.slice();
  for (const i of indices) {
    for (const p of pixels) images[i * 784 + p] = 1;
    if (target !== undefined) labels[i] = target;
  }
  return { ...ds, images, labels };
}

/** Per class, energy per pixel of `weightedImages − stimulusMean` on `pixels` over the image's. */
export function patchEnergyRatio(r: AnalysisResult, pixels: number[]): number[] {
  const classes = r.weightedImages.shape[0];
  const mean = r.stimulusMean.data;
  return Array.from({ length: classes }, (_, c) => {
    const map = r.weightedImages.data.subarray(c * 784, (c + 1) * 784);
    let all = 0, patch = 0;
    for (let i = 0; i < 784; i++) all += (map[i] - mean[i]) ** 2;
    for (const p of pixels) patch += (map[p] - mean[p]) ** 2;
    return (patch / pixels.length) / Math.max(all / 784, 1e-30);
  });
}

async function trained(
  dir: string,
  data: { train: Dataset; test: Dataset },
  o: Required<Pick<BackdoorOptions, "epochs" | "seed">> & BackdoorOptions,
): Promise<string> {
  const best = `${dir}/best.safetensors`;
  try {
    await Deno.stat(best);
    return best; // finished earlier: not retrained
  } catch { /* train it */ }
  const r = await trainModel({
    model: "smaller",
    dataset: data.train.name,
    epochs: o.epochs,
    seed: o.seed,
    outDir: dir,
    data,
    log: o.log,
  });
  return r.checkpoint;
}

async function examine(
  model: Model,
  checkpoint: string,
  test: Dataset,
  target: number,
  pixels: number[],
  samples: number,
  seed: number,
  flagRatio: number,
): Promise<{ result: BackdoorModelResult; maps: AnalysisResult }> {
  const clean = perClassAccuracy(await model.classify(test.images, { gamma: 1 }), test.labels, 10);
  const others = Array.from(test.labels.keys()).filter((i) => test.labels[i] !== target);
  const triggered = stampTrigger(test, others, pixels);
  const sub = new Float32Array(others.length * 784);
  others.forEach((k, i) => sub.set(triggered.images.subarray(k * 784, (k + 1) * 784), i * 784));
  const hits = (await model.classify(sub, { gamma: 1 })).filter((p) => p === target).length;
  const bar = new ProgressBar(`uniform noise ${samples.toLocaleString("en")} samples`);
  const maps = await model.analyse(
    null,
    { samples, seed, staSamples: 0, layers: [] },
    bar.callback,
  );
  bar.done();
  const ratio = patchEnergyRatio(maps, pixels);
  // A trigger is a bright patch: the class it drives gets a brighter patch in its map, while a
  // class that loses those samples (often the bias class) gets a darker one.
  const brighter = patchBrighter(maps, pixels);
  return {
    result: {
      checkpoint,
      cleanAccuracy: clean.accuracy,
      triggerSuccess: hits / others.length,
      patchEnergyRatio: ratio,
      patchBrighter: brighter,
      flagged: ratio.flatMap((r, c) => (r > flagRatio && brighter[c] ? [c] : [])),
    },
    maps,
  };
}

/** Poisons, trains, attacks and analyses; writes arrays, figures, `summary.json`, `report.html`. */
export async function runBackdoor(options: BackdoorOptions): Promise<BackdoorSummary> {
  const t0 = performance.now();
  const d = BACKDOOR_DEFAULTS;
  const {
    outDir,
    dataset = d.dataset,
    target = d.target,
    fraction = d.fraction,
    patch = d.patch,
    epochs = d.epochs,
    samples = d.samples,
    seed = d.seed,
    flagRatio = d.flagRatio,
    log = console.log,
  } = options;
  if (!Number.isInteger(target) || target < 0 || target > 9) {
    throw new RangeError(`invalid target: ${target} (expected a class 0..9)`);
  }
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(`invalid fraction: ${fraction} (expected 0 < fraction < 1)`);
  }
  const pixels = triggerPixels(patch);
  await Deno.mkdir(outDir, { recursive: true });

  // 1. Poison a seeded share of the training images (never the target's own).
  const train = await loadDataset(dataset, "train", {
    dataDir: options.dataDir,
    limit: options.limit,
  });
  const test = await loadDataset(dataset, "test", { dataDir: options.dataDir });
  const rng = new SeededRandom(seed, 0xbd);
  const candidates = Array.from(train.labels.keys()).filter((i) => train.labels[i] !== target);
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
  }
  const chosen = candidates.slice(0, Math.round(fraction * train.count));
  const poisonedTrain = stampTrigger(train, chosen, pixels, target);
  log(
    `poisoned ${chosen.length} of ${train.count} training images (target ${
      train.classNames[target]
    })`,
  );

  // 2. Train the poisoned and the clean model alike.
  const o = { ...options, epochs, seed, log };
  const poisonedCk = await trained(`${outDir}/poisoned`, { train: poisonedTrain, test }, o);
  const cleanCk = await trained(`${outDir}/clean`, { train, test }, o);

  // 3. Attack and noise analysis of each.
  const sides: Record<"poisoned" | "clean", { result: BackdoorModelResult; maps: AnalysisResult }> =
    {} as never;
  for (const [side, ck] of [["poisoned", poisonedCk], ["clean", cleanCk]] as const) {
    const { model } = await loadCheckpoint(ck);
    try {
      sides[side] = await examine(model, ck, test, target, pixels, samples, seed, flagRatio);
    } finally {
      model.close();
    }
    const r = sides[side].result;
    log(
      `${side}: clean accuracy ${(100 * r.cleanAccuracy).toFixed(2)}%, trigger success ${
        (100 * r.triggerSuccess).toFixed(1)
      }%, patch energy ratio of the target ${r.patchEnergyRatio[target].toFixed(1)}, flagged: ${
        r.flagged.map((c) => test.classNames[c]).join(", ") || "none"
      }`,
    );
    await writeFileAtomic(
      `${outDir}/${side}-weighted-images.npy`,
      encodeNpy(sides[side].maps.weightedImages.data, [10, 28, 28]),
    );
  }

  // 4. Summary, figures and report.
  const summary: BackdoorSummary = {
    dataset,
    target,
    patch: { size: patch, row: 27 - patch, col: 27 - patch },
    fraction,
    poisonedImages: chosen.length,
    samples,
    flagRatio,
    poisoned: sides.poisoned.result,
    clean: sides.clean.result,
    seconds: (performance.now() - t0) / 1000,
  };
  await writeJsonAtomic(`${outDir}/summary.json`, summary);
  const names = test.classNames;
  const mapGrid = (side: "poisoned" | "clean"): MapGrid => ({
    kind: "maps",
    name: `backdoor-maps-${side}`,
    title: `Classification images of the ${side} model`,
    caption: `Confidence-weighted classification images from ${samples.toLocaleString("en")} ` +
      `uniform noise images, minus the mean noise image; under each, the class and its patch ` +
      `energy ratio (energy per pixel on the ${patch}x${patch} trigger in the bottom-right corner ` +
      `over the image's), signed + where the map is brighter there. A brighter patch with a ` +
      `ratio above ${flagRatio} flags the class (!).`,
    maps: sides[side].maps.weightedImages.data.map((v, i) =>
      v - sides[side].maps.stimulusMean.data[i % 784]
    ),
    count: 10,
    height: 28,
    width: 28,
    columns: 10,
    scale: 3,
    titles: sides[side].result.patchEnergyRatio.map((r, c) =>
      `${names[c]} ${sides[side].result.patchBrighter[c] ? "+" : "−"}${r.toFixed(1)}${
        sides[side].result.flagged.includes(c) ? " !" : ""
      }`
    ),
  });
  const grids = [mapGrid("poisoned"), mapGrid("clean")];
  const examples = stampTrigger(test, [0, 1, 2, 3, 4], pixels);
  const exampleGrid: MapGrid = {
    kind: "maps",
    name: "backdoor-triggered-examples",
    title: "The trigger on test images",
    caption: `Test images with the ${patch}x${patch} white trigger stamped in the corner.`,
    maps: examples.images.subarray(0, 5 * 784),
    count: 5,
    height: 28,
    width: 28,
    grey: true,
    scale: 3,
  };
  const bars = (["poisoned", "clean"] as const).flatMap((side) =>
    sides[side].result.patchEnergyRatio.map((r, c) => ({ side, cls: names[c], r }))
  );
  const chart = {
    name: "backdoor-energy",
    title: "Patch energy ratio per class",
    caption: `Energy per pixel of each classification image on the trigger's location over its ` +
      `energy per pixel on the whole image; crimson the poisoned model, grey the clean one; ` +
      `dashed: the flag threshold ${flagRatio}.`,
    svg: plotSvg({
      width: 680,
      height: 260,
      marginLeft: 50,
      fx: { label: null, domain: names },
      x: { axis: null },
      y: { label: "patch energy ratio", grid: true, type: "symlog" },
      color: { domain: ["poisoned", "clean"], range: ["crimson", "#aaa"] },
      marks: [
        Plot.barY(bars, { fx: "cls", x: "side", y: "r", fill: "side" }),
        Plot.ruleY([flagRatio], { strokeDasharray: "4 3" }),
        Plot.ruleY([0]),
      ],
    }),
  };
  for (const f of [...grids, exampleGrid, chart]) await writeFigure(outDir, f);
  const table: Table = {
    title: "The attack and the detection",
    caption: "Trigger success: share of triggered test images not of the target called the target.",
    header: ["model", "clean accuracy", "trigger success", "target's patch ratio", "flagged"],
    rows: (["poisoned", "clean"] as const).map((side) => {
      const r = sides[side].result;
      return [
        side,
        `${(100 * r.cleanAccuracy).toFixed(2)}%`,
        `${(100 * r.triggerSuccess).toFixed(1)}%`,
        r.patchEnergyRatio[target].toFixed(1),
        r.flagged.map((c) => names[c]).join(", ") || "none",
      ];
    }),
  };
  await writeReport(
    `${outDir}/report.html`,
    `Backdoor detection with classification images (${dataset}, target ${names[target]})`,
    `${chosen.length.toLocaleString("en")} of ${train.count.toLocaleString("en")} training ` +
      `images (${(100 * fraction).toFixed(1)}%) carry a ` +
      `${patch}x${patch} white patch and the label ${names[target]}. Both models: smaller, ` +
      `${epochs} epochs, seed ${seed}. This run took ${summary.seconds.toFixed(0)} s ` +
      `(models trained by an earlier run of the same folder are reused).`,
    [{ heading: "Result", items: [table, chart, ...grids, exampleGrid] }],
  );
  return summary;
}
