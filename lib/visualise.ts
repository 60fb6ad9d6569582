/**
 * `deno task visualise`: what a trained net has learned, by the methods researchers set beside
 * white-noise analysis: attributions of test images (saliency, gradient x input, integrated
 * gradients, SmoothGrad) and activation maximisation of every class logit and conv channel,
 * with the class images compared to the white-noise classification images of the same net.
 * @module
 */
import { classNames, type DatasetName, loadDataset } from "../data/datasets.ts";
import { attribute, maximiseActivation, type Target } from "../ffi/attribution.ts";
import type { Model, NdArray } from "../ffi/model.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { type MapGrid, type Table, writeFigure, writeReport } from "./figures.ts";
import { writeJsonAtomic } from "./files.ts";
import { writeNpy } from "./npy.ts";
import { ProgressBar } from "./progress.ts";
import { signed } from "./zoo/train_net.ts";
import { activationAtlas, type Atlas, ATLAS_DEFAULTS } from "./atlas.ts";

/** The defaults of a run, defined once. */
export const VISUALISE_DEFAULTS = {
  /** Integrated-gradients steps of the figures, and of the completeness check. */
  igSteps: 50,
  completenessSteps: 200,
  completenessImages: 100,
  smoothSamples: 25,
  smoothSigma: 0.15,
  featureSteps: 256,
  /** Data-noise samples behind the classification images compared with the class images. */
  noiseSamples: 50_000,
  /** Test images behind the activation atlas (the pair atlas uses those of its two classes). */
  atlasImages: 10_000,
  seed: 0,
} as const;

/** Options of {@linkcode runVisualise}. */
export interface VisualiseOptions {
  checkpoint: string;
  outDir: string;
  dataDir?: string;
  seed?: number;
  featureSteps?: number;
  noiseSamples?: number;
  completenessImages?: number;
  atlasImages?: number;
  progress?: boolean;
  log?: (line: string) => void;
}

/** The numbers of a run (`summary.json`). */
export interface VisualiseSummary {
  checkpoint: string;
  dataset: string;
  seed: number;
  /** Largest |sum of IG attributions - (f(x) - f(baseline))| / |f(x) - f(baseline)|. */
  igCompletenessMaxError: number;
  igCompletenessSteps: number;
  /** Per unit: its value at the optimised image minus its best over the test set. */
  activationGainOverBestTestImage: Record<string, number[]>;
  /** Per class: Pearson correlation of the class logit's image and the classification image. */
  classImageVsNoiseMapCorrelation: number[];
  /** The activation atlas of the test images, and of one confusable pair of classes. */
  atlas: AtlasSummary;
  pairAtlas: AtlasSummary & { classes: string[] };
}

/** An atlas's numbers in `summary.json`. */
export type AtlasSummary = Pick<Atlas, "layer" | "purity" | "drivenCells" | "tsne"> & {
  cells: number;
};

/** The confusable pair of each dataset's class-filtered atlas. */
const ATLAS_PAIRS: Record<DatasetName, [number, number]> = {
  mnist: [4, 9],
  fashion: [6, 0], // shirt and T-shirt/top
};

function pearson(a: Float32Array, b: Float32Array): number {
  let ma = 0, mb = 0;
  for (let i = 0; i < a.length; i++) (ma += a[i]), (mb += b[i]);
  ma /= a.length;
  mb /= b.length;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb + 1e-30);
}

function bar(label: string, on: boolean) {
  const b = new ProgressBar(label);
  return on ? (d: number, t: number) => b.update(d, t) : undefined;
}

/** The first test image of each class. */
function onePerClass(labels: Uint8Array, classes: number): number[] {
  return Array.from({ length: classes }, (_, c) => labels.indexOf(c));
}

/** Section 1: attributions of one test image per class, to its predicted class. */
async function attributionsSection(
  model: Model,
  images: Float32Array,
  predicted: number[],
  names: string[],
  o: Required<Pick<VisualiseOptions, "outDir" | "seed">>,
) {
  const D = VISUALISE_DEFAULTS;
  const targets: Target[] = predicted.map((unit) => ({ layer: "logits", unit }));
  const methods = [
    ["saliency", { method: "saliency" }],
    ["gradient x input", { method: "gradient_x_input" }],
    ["IG, black", { method: "integrated_gradients", steps: D.igSteps }],
    ["SmoothGrad", { method: "smooth_grad", samples: D.smoothSamples, sigma: D.smoothSigma }],
  ] as const;
  const n = predicted.length;
  const tiles = new Float32Array(n * (methods.length + 1) * 784);
  const titles: string[] = [];
  const results: NdArray[] = [];
  for (const [, opts] of methods) {
    const r = await attribute(model, images, { ...opts, targets, seed: o.seed });
    results.push(r.attributions);
  }
  for (let i = 0; i < n; i++) {
    const row = i * (methods.length + 1);
    tiles.set(images.subarray(i * 784, (i + 1) * 784), row * 784);
    titles.push(`${names[predicted[i]]}`);
    methods.forEach(([label], m) => {
      tiles.set(results[m].data.subarray(i * 784, (i + 1) * 784), (row + m + 1) * 784);
      titles.push(label);
    });
  }
  for (const [m, [label]] of methods.entries()) {
    const stem = label.replace(/[^a-z]+/gi, "-").toLowerCase();
    await writeNpy(`${o.outDir}/attributions-${stem}.npy`, results[m]);
  }
  const grid: MapGrid = {
    kind: "maps",
    name: "attributions",
    title: "Attributions to the predicted class, one test image per class",
    caption:
      "Each row: the image (titled with the predicted class), then saliency (|gradient|), gradient x input, integrated " +
      `gradients (black baseline, ${D.igSteps} Gauss-Legendre steps) and SmoothGrad ` +
      `(${D.smoothSamples} copies, sigma ${D.smoothSigma}). Red: above the map's mean, blue: ` +
      "below.",
    maps: tiles,
    count: n * (methods.length + 1),
    height: 28,
    width: 28,
    titles,
    columns: methods.length + 1,
    keepRows: true,
    greyColumns: [0],
  };
  await writeFigure(o.outDir, grid);
  return grid;
}

/** Runs the whole study and writes `outDir/{report.html,summary.json,*.npy,*.svg,*.png}`. */
export async function runVisualise(options: VisualiseOptions): Promise<VisualiseSummary> {
  const D = VISUALISE_DEFAULTS;
  const seed = options.seed ?? D.seed;
  const progress = options.progress ?? true;
  const log = options.log ?? console.log;
  const outDir = options.outDir;
  await Deno.mkdir(outDir, { recursive: true });
  const { model, sidecar } = await loadCheckpoint(options.checkpoint);
  try {
    const dataset = sidecar.dataset as DatasetName;
    const names = sidecar.classNames ?? classNames(dataset);
    const C = sidecar.classes;
    const test = await loadDataset(dataset, "test", { dataDir: options.dataDir });
    const train = await loadDataset(dataset, "train", {
      dataDir: options.dataDir,
      limit: 10_000,
    });

    // 1. Attributions.
    log("attributions …");
    const picks = onePerClass(test.labels, C);
    const images = new Float32Array(picks.length * 784);
    picks.forEach((p, i) => images.set(test.images.subarray(p * 784, (p + 1) * 784), i * 784));
    const logits = await model.predict(images);
    const predicted = picks.map((_, i) => {
      const row = Array.from(logits.subarray(i * C, (i + 1) * C));
      return row.indexOf(Math.max(...row));
    });
    const attrGrid = await attributionsSection(model, images, predicted, names, { outDir, seed });

    // Completeness: IG at many steps on many images, each to its label.
    const m = Math.min(options.completenessImages ?? D.completenessImages, test.labels.length);
    const ig = await attribute(
      model,
      test.images.subarray(0, m * 784),
      {
        method: "integrated_gradients",
        steps: D.completenessSteps,
        targets: Array.from(test.labels.subarray(0, m), (unit) => ({ layer: "logits", unit })),
      },
      bar(`integrated gradients, ${m} images x ${D.completenessSteps} steps`, progress),
    );
    let igError = 0;
    for (let i = 0; i < m; i++) {
      const change = ig.values.data[i] - ig.baselineValues!.data[i];
      igError = Math.max(igError, Math.abs(ig.delta!.data[i]) / Math.max(Math.abs(change), 1e-6));
    }
    await writeNpy(`${outDir}/ig-delta.npy`, ig.delta!);

    // 2. Activation maximisation: every class logit and every conv channel, one batch.
    const convLayers = model.info().layers.filter((l) => l.kind === "conv");
    const targets: Target[] = [
      ...Array.from({ length: C }, (_, unit) => ({ layer: "logits", unit })),
      ...convLayers.flatMap((l) =>
        Array.from({ length: l.channels }, (_, unit) => ({ layer: l.name, unit }))
      ),
    ];
    const fv = await maximiseActivation(
      model,
      { targets, steps: options.featureSteps ?? D.featureSteps, seed },
      test.images,
      bar(`activation maximisation, ${targets.length} units`, progress),
    );
    await writeNpy(`${outDir}/feature-images.npy`, fv.images);
    const gains: Record<string, number[]> = {};
    targets.forEach((t, i) => {
      (gains[t.layer] ??= []).push(fv.values.data[i] - fv.referenceBest!.data[i]);
    });

    // The white-noise classification images of the same net, for comparison.
    await model.fitDataNoise(train.images);
    const noise = await model.analyse(null, {
      noise: "data",
      samples: options.noiseSamples ?? D.noiseSamples,
      seed,
      layers: [],
    }, bar("classification images (data noise)", progress));
    await writeNpy(`${outDir}/classification-images.npy`, noise.classImages);
    // The maps as departures from the mean stimulus, as the noise-maps report draws them.
    const mean = noise.stimulusMean.data;
    const centred = Array.from({ length: C }, (_, c) => {
      const ci = noise.classImages.data.slice(c * 784, (c + 1) * 784);
      for (let p = 0; p < 784; p++) ci[p] -= mean[p];
      return ci;
    });
    const correlation = centred.map((ci, c) =>
      noise.counts.data[c] > 0 ? pearson(fv.images.data.subarray(c * 784, (c + 1) * 784), ci) : NaN
    );

    // Figures.
    const classPairs = new Float32Array(2 * C * 784);
    const pairTitles: string[] = [];
    for (let c = 0; c < C; c++) {
      classPairs.set(fv.images.data.subarray(c * 784, (c + 1) * 784), 2 * c * 784);
      classPairs.set(centred[c], (2 * c + 1) * 784);
      pairTitles.push(`${names[c]}: maximised`, `noise map r=${correlation[c].toFixed(2)}`);
    }
    const pairs: MapGrid = {
      kind: "maps",
      name: "class-images-vs-noise-maps",
      title: "Each class logit's maximising image beside its white-noise classification image",
      caption: "Left of each pair: the 28x28 image that maximises the class logit. Right: the " +
        "mean data noise the net called that class, minus the mean noise. Both red where " +
        "brighter than the map's mean, blue where darker. r: their Pearson correlation over " +
        "pixels.",
      maps: classPairs,
      count: 2 * C,
      height: 28,
      width: 28,
      titles: pairTitles,
      // Four pairs per row: five do not fit a 1000-pixel page with their captions.
      columns: 8,
      scale: 3,
      keepRows: true,
    };
    await writeFigure(outDir, pairs);
    const channelGrids: MapGrid[] = [];
    let offset = C;
    for (const l of convLayers) {
      const grid: MapGrid = {
        kind: "maps",
        name: `channels-${l.name}`,
        title: `Activation maximisation of every ${l.name} channel`,
        caption: `The image that maximises each ${l.name} channel's mean activation; under ` +
          "each, its value minus the best test image's.",
        maps: fv.images.data.slice(offset * 784, (offset + l.channels) * 784),
        count: l.channels,
        height: 28,
        width: 28,
        grey: true,
        titles: gains[l.name].map((g, c) => `${c}: ${signed(g)}`),
        columns: 16,
      };
      await writeFigure(outDir, grid);
      channelGrids.push(grid);
      offset += l.channels;
    }
    const classTable: Table = {
      title: "Class logits: optimised image against the best test image",
      caption: "A unit is driven when its optimised value exceeds the best of the test set.",
      header: ["class", "optimised", "best test image", "gain", "r with noise map"],
      rows: names.map((name, c) => [
        name,
        fv.values.data[c].toFixed(2),
        fv.referenceBest!.data[c].toFixed(2),
        gains.logits[c].toFixed(2),
        Number.isNaN(correlation[c]) ? "no samples" : correlation[c].toFixed(2),
      ]),
    };

    // 3. Activation atlases: all test images, then one confusable pair.
    const stage = (label: string) => bar(label, progress);
    const atlasN = Math.min(options.atlasImages ?? D.atlasImages, test.count);
    log("activation atlas …");
    const atlas = await activationAtlas(
      model,
      test.images.subarray(0, atlasN * 784),
      test.labels.subarray(0, atlasN),
      {
        name: "atlas",
        title: `Activation atlas of ${atlasN} test images`,
        classNames: names,
        featureSteps: options.featureSteps,
        seed,
        onProgress: stage,
      },
    );
    const pair = ATLAS_PAIRS[dataset];
    const pick = Array.from(test.labels.subarray(0, atlasN).keys()).filter((i) =>
      pair.includes(test.labels[i])
    );
    const pairImages = new Float32Array(pick.length * 784);
    pick.forEach((p, i) => pairImages.set(test.images.subarray(p * 784, (p + 1) * 784), i * 784));
    const pairNames = pair.map((c) => names[c]);
    const pairAtlas = await activationAtlas(
      model,
      pairImages,
      pick.map((p) => test.labels[p]),
      {
        name: "atlas-pair",
        title: `Activation atlas of ${pairNames.join(" and ")} only (${pick.length} images)`,
        classNames: names,
        grid: ATLAS_DEFAULTS.pairGrid,
        featureSteps: options.featureSteps,
        seed,
        onProgress: stage,
      },
    );
    for (const a of [atlas, pairAtlas]) {
      await writeFigure(outDir, a.figure);
      await writeFigure(outDir, a.scatter);
      await writeNpy(`${outDir}/${a.figure.name}-images.npy`, {
        data: a.images,
        shape: [a.cells.length, 28, 28],
      });
    }
    const atlasSummary = (a: Atlas): AtlasSummary => ({
      layer: a.layer,
      cells: a.cells.length,
      purity: a.purity,
      drivenCells: a.drivenCells,
      tsne: a.tsne,
    });

    const summary: VisualiseSummary = {
      checkpoint: options.checkpoint,
      dataset,
      seed,
      igCompletenessMaxError: igError,
      igCompletenessSteps: D.completenessSteps,
      activationGainOverBestTestImage: gains,
      classImageVsNoiseMapCorrelation: correlation,
      atlas: atlasSummary(atlas),
      pairAtlas: { ...atlasSummary(pairAtlas), classes: pairNames },
    };
    await writeJsonAtomic(`${outDir}/summary.json`, summary);
    const driven = Object.values(gains).flat();
    await writeReport(
      `${outDir}/report.html`,
      `What ${sidecar.model} learned: attributions and feature visualisation`,
      `Checkpoint <code>${options.checkpoint}</code> (${dataset}). Integrated gradients are ` +
        `complete to ${(100 * igError).toFixed(2)}% at ${D.completenessSteps} steps over ${m} ` +
        `test images. ${driven.filter((g) => g > 0).length} of ${driven.length} units are ` +
        "driven past their best test image by their optimised image.",
      [
        { heading: "Attributions", items: [attrGrid] },
        {
          heading: "Activation maximisation",
          intro: "Decorrelated (1/f DCT) parameterisation, random jitter, rotation and scale " +
            "each step, total-variation and L2 penalties; all units optimised in one batch " +
            "(native/src/feature_vis.rs).",
          items: [pairs, classTable, ...channelGrids],
        },
        {
          heading: "Activation atlas",
          intro: `The ${atlas.layer} activations of the test images, mapped with t-SNE ` +
            `(trustworthiness ${atlas.tsne.trustworthiness.toFixed(3)}), averaged per cell and ` +
            `rendered by activation maximisation. The pair atlas repeats it for ${
              pairNames.join(" and ")
            } alone, the classes this kind of net confuses most; its cells show the shapes ` +
            "that sit between them.",
          items: [atlas.figure, atlas.scatter, pairAtlas.figure, pairAtlas.scatter],
        },
      ],
    );
    log(`report: ${outDir}/report.html`);
    return summary;
  } finally {
    model.close();
  }
}
