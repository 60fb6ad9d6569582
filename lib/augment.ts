/**
 * `deno task augment`: the data-augmentation study T1-T9 on 1,000 MNIST training images. Two
 * zoo nets (1: SGD MLP; 2: Adam MLP with batch norm, the study's two) are trained without
 * augmentation and with each transform, over several seeds, and set beside the study's Table 1.
 * @module
 */
import { type Dataset, loadDataset } from "../data/datasets.ts";
import { augmentImages, type Transform } from "../ffi/augment.ts";
import { type Figure, mapsSvg, type Table, writeFigure, writeReport } from "./figures.ts";
import { writeJsonAtomic } from "./files.ts";
import { Plot, plotSvg } from "./plots.ts";
import { discardPartialRun, readStoredRun } from "./partial_run.ts";
import { round2, signed, trainNet } from "./zoo/train_net.ts";
import { ZOO_NETS, ZOO_SCHEDULE } from "./zoo/nets.ts";

/** A transform of the study: torchvision's, written as wna's. */
export interface StudyTransform {
  id: string;
  torchvision: string;
  transforms: Transform[];
  mixup?: boolean;
}

/** T0 (no augmentation) and T1-T9. */
export const AUGMENTATIONS: StudyTransform[] = [
  { id: "T0", torchvision: "none", transforms: [] },
  {
    id: "T1",
    torchvision: "ColorJitter(brightness=[0.4,1.6], contrast=[0.4,1.6])",
    transforms: [{ kind: "color_jitter", brightness: [0.4, 1.6], contrast: [0.4, 1.6] }],
  },
  {
    id: "T2",
    torchvision:
      "RandomAffine(degrees=20, translate=(0.1,0.2), scale=(0.8,1), shear=[-30,30,-30,30])",
    transforms: [{
      kind: "affine",
      degrees: 20,
      translate: [0.1, 0.2],
      scale: [0.8, 1],
      shear: [-30, 30, -30, 30],
    }],
  },
  {
    id: "T3",
    torchvision: "RandomAffine(degrees=20)",
    transforms: [{ kind: "affine", degrees: 20 }],
  },
  {
    id: "T4",
    torchvision: "RandomErasing(p=0.6, scale=(0.02,0.1), ratio=(0.3,0.5), value=0)",
    transforms: [{ kind: "erasing", p: 0.6, scale: [0.02, 0.1], ratio: [0.3, 0.5], value: 0 }],
  },
  {
    id: "T5",
    torchvision: "RandomPerspective(distortion_scale=0.5, p=0.5)",
    transforms: [{ kind: "perspective", p: 0.5, distortion: 0.5 }],
  },
  {
    id: "T6",
    torchvision: "RandomVerticalFlip(p=0.5)",
    transforms: [{ kind: "vertical_flip", p: 0.5 }],
  },
  {
    id: "T7",
    torchvision: "RandomAffine(degrees=0, shear=[-30,30,-5,5])",
    transforms: [{ kind: "affine", degrees: 0, shear: [-30, 30, -5, 5] }],
  },
  {
    id: "T8",
    torchvision:
      "RandomPerspective(distortion_scale=0.5, p=0.4) + RandomAffine(degrees=20, shear=[-20,20,-5,5])",
    transforms: [
      { kind: "perspective", p: 0.4, distortion: 0.5 },
      { kind: "affine", degrees: 20, shear: [-20, 20, -5, 5] },
    ],
  },
  {
    id: "T9",
    torchvision: "MixUp: one Beta(1,1) lambda per batch, the batch rolled by one, soft labels",
    transforms: [],
    mixup: true,
  },
];

/** The study's Table 1: accuracy (%) of nets 1 and 2, T0 derived from the improvements. */
export const AUGMENT_REFERENCE: Record<string, { net1: number; net2: number }> = {
  T1: { net1: 90.63, net2: 95.99 },
  T2: { net1: 88.23, net2: 96.62 },
  T3: { net1: 93.08, net2: 96.68 },
  T4: { net1: 89.92, net2: 95.44 },
  T5: { net1: 93.65, net2: 96.19 },
  T6: { net1: 87.73, net2: 93.49 },
  T7: { net1: 92.81, net2: 96.39 },
  T8: { net1: 94.40, net2: 96.77 },
  T9: { net1: 91.47, net2: 91.40 },
};
/** The study's baseline: T1's accuracy minus its improvement (+1.72 and +1.26). */
export const AUGMENT_REFERENCE_BASE = { net1: 88.91, net2: 94.73 };

/** Options of {@linkcode runAugment}. */
export interface AugmentOptions {
  /** Seeds per (transform, net). @default [0, 1, 2] */
  seeds?: number[];
  /** @default "out/augment" */
  outDir?: string;
  /** Net 1 only, one seed, 1 epoch on 500 images: for tests. */
  quick?: boolean;
  dataDir?: string;
  device?: "cpu" | "cuda" | "auto";
  /** @default console.log */
  log?: (line: string) => void;
}

/** One line of `summary.json`: a transform on a net, over the seeds. */
export interface AugmentEntry {
  transform: string;
  net: string;
  /** Mean test accuracy (%) over the seeds. */
  accuracy: number;
  /** Standard deviation over the seeds (percentage points). */
  spread: number;
  /** Mean accuracy minus that of the same net without augmentation. */
  improvement: number;
  perSeed: number[];
  reference?: { accuracy: number; improvement: number };
}

/** Trains every (transform, net, seed) not already on disk and writes the study's outputs. */
export async function runAugment(options: AugmentOptions = {}): Promise<AugmentEntry[]> {
  const { outDir = "out/augment", quick = false, log = console.log } = options;
  const seeds = quick ? [0] : options.seeds ?? [0, 1, 2];
  const nets = ZOO_NETS.filter((n) => (quick ? ["1"] : ["1", "2"]).includes(n.id));
  const images = quick ? 500 : ZOO_SCHEDULE.small.images;
  const epochs = quick ? 1 : ZOO_SCHEDULE.small.epochs;
  await Deno.mkdir(`${outDir}/runs`, { recursive: true });
  const train = await loadDataset("mnist", "train", { dataDir: options.dataDir, limit: images });
  const test = await loadDataset("mnist", "test", {
    dataDir: options.dataDir,
    limit: quick ? 1000 : undefined,
  });

  // Training: each transform, net and seed; finished runs are kept.
  const accuracy = new Map<string, number>();
  const total = AUGMENTATIONS.length * nets.length * seeds.length;
  let k = 0;
  for (const t of AUGMENTATIONS) {
    for (const net of nets) {
      for (const seed of seeds) {
        k++;
        const key = `${t.id}-net${net.id}-s${seed}`;
        const path = `${outDir}/runs/${key}.json`;
        const stored = await readStoredRun<{ accuracy: number }>(path, { images, epochs });
        if (stored) {
          accuracy.set(key, stored.accuracy);
          continue;
        }
        const run = await trainNet({
          spec: net.spec,
          optimizer: net.optimizer,
          lr: net.lr,
          train,
          test,
          epochs,
          batchSize: ZOO_SCHEDULE.batchSize,
          seed,
          device: options.device,
          curveImages: ZOO_SCHEDULE.curveImages,
          mixup: t.mixup,
          partialDir: `${outDir}/partial/${key}`,
          augment: t.transforms.length
            ? (epoch) => augmentImages(train.images, t.transforms, { seed, epoch })
            : undefined,
        });
        run.model.close();
        accuracy.set(key, run.accuracy);
        await writeJsonAtomic(path, { key, images, epochs, accuracy: run.accuracy });
        await discardPartialRun(`${outDir}/partial/${key}`);
        log(
          `[${k}/${total}] ${t.id} net ${net.id} seed ${seed}: ${(100 * run.accuracy).toFixed(2)}%`,
        );
      }
    }
  }

  // Numbers: mean and spread over seeds, improvement over the same net's T0.
  const entries: AugmentEntry[] = [];
  for (const net of nets) {
    const perSeed = (t: string) => seeds.map((s) => 100 * accuracy.get(`${t}-net${net.id}-s${s}`)!);
    const base = mean(perSeed("T0"));
    for (const t of AUGMENTATIONS) {
      const xs = perSeed(t.id);
      const ref = AUGMENT_REFERENCE[t.id];
      const refBase = net.id === "1" ? AUGMENT_REFERENCE_BASE.net1 : AUGMENT_REFERENCE_BASE.net2;
      const refAcc = ref ? (net.id === "1" ? ref.net1 : ref.net2) : undefined;
      entries.push({
        transform: t.id,
        net: net.id,
        accuracy: round2(mean(xs)),
        spread: round2(std(xs)),
        improvement: round2(mean(xs) - base),
        perSeed: xs.map(round2),
        ...(refAcc === undefined
          ? {}
          : { reference: { accuracy: refAcc, improvement: round2(refAcc - refBase) } }),
      });
    }
  }
  await writeJsonAtomic(`${outDir}/summary.json`, {
    quick,
    seeds,
    images,
    epochs,
    entries,
  });

  // Figures and report.
  const samples = await sampleGrid(train);
  const chart = improvementChart(entries);
  for (const fig of [samples, chart]) await writeFigure(outDir, fig);
  await writeReport(
    `${outDir}/report.html`,
    "Data augmentation on 1,000 MNIST images",
    `Zoo nets ${nets.map((n) => n.id).join(" and ")} trained on the first ${images} training ` +
      `images for ${epochs} epochs (batch ${ZOO_SCHEDULE.batchSize}), over seeds ` +
      `${seeds.join(", ")}; accuracy on ${test.count} test images. Each transform draws fresh ` +
      `parameters for every image in every epoch.${
        quick ? " <b>Quick run: not comparable with the study.</b>" : ""
      }`,
    [
      { heading: "The transforms", items: [samples] },
      { heading: "Accuracy beside the study's Table 1", items: [augmentTable(entries), chart] },
    ],
  );
  return entries;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => {
  const m = mean(xs);
  return xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

/** Ten training images, then ten draws of each transform applied to them. */
async function sampleGrid(train: Dataset): Promise<Figure> {
  const originals = train.images.subarray(0, 10 * 784);
  const rows: Float32Array[] = [originals];
  const titles: string[] = Array.from({ length: 10 }, (_, i) => (i === 0 ? "original" : ""));
  for (const t of AUGMENTATIONS.slice(1)) {
    rows.push(
      t.transforms.length
        ? await augmentImages(originals, t.transforms, { seed: 1 })
        : mixupPreview(originals),
    );
    titles.push(...Array.from({ length: 10 }, (_, i) => (i === 0 ? t.id : "")));
  }
  const all = new Float32Array(rows.length * 10 * 784);
  rows.forEach((r, i) => all.set(r, i * 10 * 784));
  return {
    name: "samples",
    title: "Ten training images under each transform",
    caption: "Row 1: the originals; then T1-T9, one seeded draw per image (T9 shows each image " +
      "mixed with the next at lambda 0.6, as one MixUp batch would).",
    svg: mapsSvg(all, rows.length * 10, 28, 28, { columns: 10, grey: true, titles, scale: 2 }),
  };
}

/** What MixUp feeds the net: each image mixed with the previous one (a rolled batch). */
function mixupPreview(images: Float32Array): Float32Array {
  const n = images.length / 784;
  const out = new Float32Array(images.length);
  const lambda = 0.6;
  for (let i = 0; i < n; i++) {
    const j = (i + n - 1) % n;
    for (let p = 0; p < 784; p++) {
      out[i * 784 + p] = lambda * images[i * 784 + p] + (1 - lambda) * images[j * 784 + p];
    }
  }
  return out;
}

function augmentTable(entries: AugmentEntry[]): Table {
  return {
    title: "Test accuracy (%) and improvement over no augmentation",
    caption: "Mean ± standard deviation over the seeds; the study reports one run. Difference " +
      "= wna - study.",
    header: [
      "transform",
      "net",
      "wna",
      "± sd",
      "wna impr.",
      "study",
      "study impr.",
      "diff",
      "per seed",
    ],
    rows: entries.map((e) => [
      e.transform,
      e.net,
      e.accuracy.toFixed(2),
      e.spread.toFixed(2),
      signed(e.improvement),
      e.reference?.accuracy.toFixed(2) ?? "",
      e.reference ? signed(e.reference.improvement) : "",
      e.reference ? signed(e.accuracy - e.reference.accuracy) : "",
      e.perSeed.map((x) => x.toFixed(2)).join(" "),
    ]),
  };
}

function improvementChart(entries: AugmentEntry[]): Figure {
  const rows = entries.filter((e) => e.transform !== "T0").flatMap((e) => [
    { t: e.transform, who: `wna net ${e.net}`, v: e.improvement, sd: e.spread },
    ...(e.reference
      ? [{ t: e.transform, who: `study net ${e.net}`, v: e.reference.improvement, sd: 0 }]
      : []),
  ]);
  return {
    name: "improvement",
    title: "Improvement over no augmentation (points)",
    caption: "Per transform: wna's mean over seeds (with ±1 sd) and the study's single run.",
    svg: plotSvg({
      width: 900,
      height: 320,
      fx: { label: "transform" },
      x: { axis: null },
      y: { grid: true, label: "improvement (points)" },
      color: { legend: true },
      marks: [
        Plot.barY(rows, { fx: "t", x: "who", y: "v", fill: "who" }),
        Plot.ruleX(rows.filter((r) => r.sd > 0), {
          fx: "t",
          x: "who",
          y1: (r) => r.v - r.sd,
          y2: (r) => r.v + r.sd,
        }),
        Plot.ruleY([0]),
      ],
    }),
  };
}
