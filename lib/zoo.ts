/**
 * `deno task zoo`: the 19-network case study. Every net is trained on the first 1,000 MNIST
 * training images (10 epochs) and on all 60,000 (4 epochs), and its test accuracy is set beside
 * the study's. Finished runs are kept on disk, so an interrupted study resumes where it stopped.
 * @module
 */
import { type Dataset, loadDataset } from "../data/datasets.ts";
import { saveCheckpoint } from "./checkpoint.ts";
import { type Figure, type Table, writeFigure, writeReport } from "./figures.ts";
import { writeFileAtomic, writeJsonAtomic } from "./files.ts";
import { Plot, plotSvg } from "./plots.ts";
import { discardPartialRun, readStoredRun } from "./partial_run.ts";
import { round2, signed, type StudyEpoch, trainNet } from "./zoo/train_net.ts";
import { ZOO_NETS, ZOO_SCHEDULE, type ZooNet } from "./zoo/nets.ts";

/** The two training-set sizes of the study. */
export type ZooSize = "1k" | "60k";

/** Options of {@linkcode runZoo}. */
export interface ZooOptions {
  /** Net ids to run. @default all 19 */
  nets?: string[];
  /** @default 0 */
  seed?: number;
  /** @default "out/zoo" */
  outDir?: string;
  /** A few nets for 1 epoch on 500 and 2,000 images, 2,000 test images: for tests. */
  quick?: boolean;
  dataDir?: string;
  device?: "cpu" | "cuda" | "auto";
  /** @default console.log */
  log?: (line: string) => void;
}

/** One finished training run, as stored for resuming. */
export interface ZooRun {
  id: string;
  size: ZooSize;
  images: number;
  epochs: number;
  seed: number;
  parameters: number;
  accuracy: number;
  seconds: number;
  history: StudyEpoch[];
}

/** One net's line of `summary.json`. */
export interface ZooEntry {
  id: string;
  description: string;
  optimizer: string;
  lr: number;
  parameters: number;
  /** Test accuracy (%) after training on 1,000 and on 60,000 images; null until trained. */
  accuracy1k: number | null;
  accuracy60k: number | null;
  /** Training time of both runs, seconds. */
  seconds: number;
  reference1k: number;
  reference60k: number;
}

/** What {@linkcode runZoo} writes to `summary.json`. */
export interface ZooSummary {
  quick: boolean;
  seed: number;
  schedule: { images: Record<ZooSize, number>; epochs: Record<ZooSize, number>; batch: number };
  nets: ZooEntry[];
  /** Runs still to train (the study was interrupted, or is still running). */
  pending: string[];
}

/** The nets of `--quick`: an MLP with batch norm, a small CNN, and Adadelta with Mish. */
export const QUICK_NETS = ["2", "10.1", "13.1"];

function schedule(quick: boolean) {
  return quick
    ? { images: { "1k": 500, "60k": 2000 }, epochs: { "1k": 1, "60k": 1 }, testImages: 2000 }
    : {
      images: { "1k": ZOO_SCHEDULE.small.images, "60k": ZOO_SCHEDULE.full.images },
      epochs: { "1k": ZOO_SCHEDULE.small.epochs, "60k": ZOO_SCHEDULE.full.epochs },
      testImages: 10000,
    };
}

function pick(ids: string[] | undefined, quick: boolean): ZooNet[] {
  const wanted = ids ?? (quick ? QUICK_NETS : ZOO_NETS.map((n) => n.id));
  return wanted.map((id) => {
    const net = ZOO_NETS.find((n) => n.id === id);
    if (!net) {
      throw new RangeError(
        `invalid net: "${id}" (expected one of ${ZOO_NETS.map((n) => n.id).join(", ")})`,
      );
    }
    return net;
  });
}

/**
 * Runs (or resumes) the study and writes `summary.json`, `summary.csv`, the figures and
 * `report.html` under `outDir`.
 * @param options nets, seed, output folder, quick mode
 * @returns the summary
 */
export async function runZoo(options: ZooOptions = {}): Promise<ZooSummary> {
  const { seed = 0, outDir = "out/zoo", quick = false, log = console.log } = options;
  const nets = pick(options.nets, quick);
  const plan = schedule(quick);
  await Deno.mkdir(`${outDir}/runs`, { recursive: true });
  await Deno.mkdir(`${outDir}/checkpoints`, { recursive: true });

  // Data: the first 60,000 (or fewer) training images; the 1k runs use their first 1,000.
  const full = await loadDataset("mnist", "train", {
    dataDir: options.dataDir,
    limit: plan.images["60k"],
  });
  const test = await loadDataset("mnist", "test", {
    dataDir: options.dataDir,
    limit: plan.testImages,
  });
  const firstN = (n: number): Dataset => ({
    ...full,
    images: full.images.subarray(0, n * 784),
    labels: full.labels.subarray(0, n),
    count: n,
  });

  // Training: every net at both sizes, skipping runs already on disk.
  const runs = new Map<string, ZooRun>();
  // All 1k runs first (minutes), then the 60k runs from the smallest net up, so that an
  // interrupted study has as many rows as it can; the summary is rewritten after every run.
  const jobs = [
    ...nets.map((net) => ({ net, size: "1k" as const })),
    ...[...nets].sort((a, b) => forwardMacs(a) - forwardMacs(b)).map((net) => ({
      net,
      size: "60k" as const,
    })),
  ];
  const t0 = performance.now();
  let trained = 0;
  const summarise = () =>
    writeSummary({ nets, runs, plan, seed, quick, outDir, testCount: test.count, trained });
  for (const [k, { net, size }] of jobs.entries()) {
    const key = `${net.id}-${size}`;
    const want = { images: plan.images[size], epochs: plan.epochs[size], seed };
    const stored = await readStoredRun<ZooRun>(`${outDir}/runs/${key}.json`, want);
    if (stored) {
      runs.set(key, stored);
      log(`[${k + 1}/${jobs.length}] net ${net.id} on ${size}: done before, kept`);
      continue;
    }
    const { model, history, accuracy, seconds } = await trainNet({
      spec: net.spec,
      optimizer: net.optimizer,
      lr: net.lr,
      train: firstN(want.images),
      test,
      epochs: want.epochs,
      batchSize: ZOO_SCHEDULE.batchSize,
      seed,
      device: options.device,
      curveImages: ZOO_SCHEDULE.curveImages,
      label: `[${k + 1}/${jobs.length}] net ${net.id} on ${size}`,
      partialDir: `${outDir}/partial/${key}`,
    });
    try {
      const run: ZooRun = {
        id: net.id,
        size,
        ...want,
        parameters: model.info().parameters,
        accuracy,
        seconds,
        history,
      };
      await saveCheckpoint(model, `${outDir}/checkpoints/zoo-${key}.safetensors`, {
        model: net.spec.name,
        dataset: "mnist",
        classes: 10,
        epoch: want.epochs - 1,
        epochs: want.epochs,
        seed,
        normalisation: { mean: full.mean, std: full.std },
        testAccuracy: run.accuracy,
        history: [],
        options: { optimizer: net.optimizer, lr: net.lr, batchSize: ZOO_SCHEDULE.batchSize },
      });
      await writeJsonAtomic(`${outDir}/runs/${key}.json`, run);
      await discardPartialRun(`${outDir}/partial/${key}`);
      runs.set(key, run);
      trained++;
      await summarise();
      const elapsed = (performance.now() - t0) / 1000;
      log(
        `[${k + 1}/${jobs.length}] net ${net.id} on ${size}: ${
          (100 * run.accuracy).toFixed(2)
        }% in ${seconds.toFixed(0)} s (study so far ${(elapsed / 60).toFixed(1)} min)`,
      );
    } finally {
      model.close();
    }
  }

  return await summarise();
}

/** Writes the summary, CSV, figures and report of the runs finished so far. */
async function writeSummary(
  { nets, runs, plan, seed, quick, outDir, testCount, trained }: {
    nets: ZooNet[];
    runs: Map<string, ZooRun>;
    plan: ReturnType<typeof schedule>;
    seed: number;
    quick: boolean;
    outDir: string;
    testCount: number;
    trained: number;
  },
): Promise<ZooSummary> {
  // Numbers: one entry per net, ours beside the study's.
  const entries: ZooEntry[] = nets.map((net) => {
    const small = runs.get(`${net.id}-1k`);
    const big = runs.get(`${net.id}-60k`);
    return {
      id: net.id,
      description: net.description,
      optimizer: net.optimizer,
      lr: net.lr,
      parameters: (small ?? big)?.parameters ?? 0,
      accuracy1k: small ? round2(100 * small.accuracy) : null,
      accuracy60k: big ? round2(100 * big.accuracy) : null,
      seconds: Math.round((small?.seconds ?? 0) + (big?.seconds ?? 0)),
      reference1k: net.reference.accuracy1k,
      reference60k: net.reference.accuracy60k,
    };
  });
  const summary: ZooSummary = {
    quick,
    seed,
    schedule: { images: plan.images, epochs: plan.epochs, batch: ZOO_SCHEDULE.batchSize },
    nets: entries,
    pending: nets.flatMap((n) =>
      (["1k", "60k"] as const).filter((size) => !runs.has(`${n.id}-${size}`)).map((size) =>
        `${n.id}-${size}`
      )
    ),
  };
  await writeJsonAtomic(`${outDir}/summary.json`, summary);
  await writeFileAtomic(`${outDir}/summary.csv`, zooCsv(entries));

  // Figures and report.
  const bars = accuracyBars(entries);
  const curves = (["1k", "60k"] as const).map((size) =>
    learningCurves(
      nets.flatMap((n) => runs.get(`${n.id}-${size}`) ?? []),
      size,
      plan.images[size],
    )
  );
  for (const fig of [bars, ...curves]) await writeFigure(outDir, fig);
  await writeReport(
    `${outDir}/report.html`,
    "The 19-network MNIST case study",
    `Each net trained on the first ${plan.images["1k"]} and on ${
      plan.images["60k"]
    } MNIST training images (${plan.epochs["1k"]} and ${
      plan.epochs["60k"]
    } epochs, batch ${ZOO_SCHEDULE.batchSize}, constant learning rate, seed ${seed}); test accuracy on ${testCount} test images.${
      quick ? " <b>Quick run: a few nets, short schedules; not comparable with the study.</b>" : ""
    } ${trained} runs trained now, ${runs.size - trained} kept from before.${
      summary.pending.length ? ` <b>Still to train: ${summary.pending.join(", ")}.</b>` : ""
    }`,
    [
      { heading: "Test accuracy beside the study's", items: [comparisonTable(entries), bars] },
      {
        heading: "Learning curves",
        intro: "Training loss (over each epoch, dropout on) and the loss on the first " +
          `${ZOO_SCHEDULE.curveImages.toLocaleString("en")} test images after each epoch. ` +
          "The test set is only watched, never used to pick a model: the last epoch is reported.",
        items: curves,
      },
    ],
  );
  return summary;
}

/** Multiply-adds of one forward pass, to order the 60k runs from the cheapest. */
export function forwardMacs(net: ZooNet): number {
  let [c, h, w] = [1, 28, 28];
  let features = 0;
  let macs = 0;
  for (const l of net.spec.layers) {
    if (l.kind === "conv2d") {
      const pad = l.padding ?? 0;
      const stride = l.stride ?? 1;
      const oh = Math.floor((h + 2 * pad - l.kernel) / stride) + 1;
      const ow = Math.floor((w + 2 * pad - l.kernel) / stride) + 1;
      macs += l.out * c * l.kernel ** 2 * oh * ow;
      [c, h, w] = [l.out, oh, ow];
    } else if (l.kind === "max_pool" || l.kind === "avg_pool") {
      [h, w] = [Math.floor(h / l.size), Math.floor(w / l.size)];
    } else if (l.kind === "flatten") {
      features = c * h * w;
    } else if (l.kind === "linear") {
      macs += features * l.out;
      features = l.out;
    }
  }
  return macs;
}

const fmt = (x: number | null) => x === null ? "pending" : x.toFixed(2);
const diff = (x: number | null, ref: number) => x === null ? "" : signed(x - ref);

/** The CSV of the summary, one net per line. */
export function zooCsv(entries: ZooEntry[]): string {
  const cols: (keyof ZooEntry)[] = [
    "id",
    "description",
    "optimizer",
    "lr",
    "parameters",
    "accuracy1k",
    "accuracy60k",
    "reference1k",
    "reference60k",
    "seconds",
  ];
  const cell = (v: unknown) => {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [cols.join(","), ...entries.map((e) => cols.map((c) => cell(e[c])).join(","))].join(
    "\n",
  ) + "\n";
}

function comparisonTable(entries: ZooEntry[]): Table {
  const far = (x: number | null, ref: number) => x !== null && Math.abs(x - ref) > 2;
  const notes = (e: ZooEntry) =>
    [
      far(e.accuracy1k, e.reference1k) ? "1k differs by > 2 points" : "",
      far(e.accuracy60k, e.reference60k) ? "60k differs by > 2 points" : "",
      ZOO_NETS.find((n) => n.id === e.id)?.reference.note ?? "",
    ].filter(Boolean).join("; ");
  return {
    title: "Test accuracy (%), wna and the study",
    caption: "Difference = wna - study. Cells that differ by more than 2 points are flagged; " +
      "docs/zoo.md says why.",
    header: [
      "net",
      "description",
      "parameters",
      "wna 1k",
      "study 1k",
      "diff 1k",
      "wna 60k",
      "study 60k",
      "diff 60k",
      "seconds",
      "note",
    ],
    rows: entries.map((e) => [
      e.id,
      e.description,
      e.parameters.toLocaleString("en"),
      fmt(e.accuracy1k),
      e.reference1k.toFixed(2),
      diff(e.accuracy1k, e.reference1k),
      fmt(e.accuracy60k),
      e.reference60k.toFixed(2),
      diff(e.accuracy60k, e.reference60k),
      e.seconds,
      notes(e),
    ]),
  };
}

function accuracyBars(entries: ZooEntry[]): Figure {
  const rows = entries.flatMap((e) => [
    { net: e.id, series: "wna 1k", accuracy: e.accuracy1k },
    { net: e.id, series: "study 1k", accuracy: e.reference1k },
    { net: e.id, series: "wna 60k", accuracy: e.accuracy60k },
    { net: e.id, series: "study 60k", accuracy: e.reference60k },
  ]).filter((d): d is { net: string; series: string; accuracy: number } => d.accuracy !== null);
  const series = ["wna 1k", "study 1k", "wna 60k", "study 60k"];
  return {
    name: "accuracy",
    title: "Test accuracy per net",
    caption: "Grouped by net: wna (solid) and the study (light) after 1,000 and 60,000 " +
      "training images. The axis starts at 80%; lower bars are cut and labelled.",
    svg: plotSvg({
      width: 1000,
      height: 360,
      marginBottom: 40,
      fx: { label: "net", domain: entries.map((e) => e.id) },
      x: { axis: null, domain: series },
      y: { domain: [80, 100], grid: true, label: "test accuracy (%)" },
      color: {
        domain: series,
        range: ["#1f77b4", "#aec7e8", "#d62728", "#ff9896"],
        legend: true,
      },
      marks: [
        Plot.barY(rows, {
          fx: "net",
          x: "series",
          y1: 80,
          y2: (d) => Math.max(80, d.accuracy),
          fill: "series",
          clip: true,
        }),
        Plot.text(rows.filter((d) => d.accuracy < 80), {
          fx: "net",
          x: "series",
          y: 81,
          text: (d) => d.accuracy.toFixed(0),
          rotate: -90,
          textAnchor: "start",
          fontSize: 9,
        }),
        Plot.ruleY([80]),
      ],
    }),
  };
}

function learningCurves(runs: ZooRun[], size: ZooSize, images: number): Figure {
  const columns = 5;
  const rows = runs.flatMap((r, i) =>
    r.history.flatMap((h) => [
      { net: `net ${r.id}`, i, epoch: h.epoch, split: "train", loss: h.trainLoss },
      { net: `net ${r.id}`, i, epoch: h.epoch, split: "test", loss: h.testLoss },
    ])
  );
  const col = (d: { i: number }) => d.i % columns;
  const row = (d: { i: number }) => Math.floor(d.i / columns);
  return {
    name: `curves-${size}`,
    title: `Learning curves, ${images.toLocaleString("en")} training images`,
    caption: "Cross-entropy per epoch: training (blue) and test (orange). A test loss that " +
      "rises while the training loss falls is overfitting.",
    svg: plotSvg({
      width: 1000,
      height: 170 * Math.ceil(runs.length / columns),
      fx: { axis: null },
      fy: { axis: null },
      y: { type: "log", grid: true, label: "loss" },
      x: { label: "epoch", tickFormat: "d" },
      color: { domain: ["train", "test"], range: ["#1f77b4", "#ff7f0e"], legend: true },
      marks: [
        Plot.frame({ stroke: "#ddd" }),
        Plot.lineY(rows, {
          fx: col,
          fy: row,
          x: "epoch",
          y: "loss",
          stroke: "split",
          z: "split",
          marker: "dot",
        }),
        Plot.text(
          runs.map((r, i) => ({ i, net: `net ${r.id}` })),
          { fx: col, fy: row, text: "net", frameAnchor: "top-left", dx: 4, dy: 4 },
        ),
      ],
    }),
  };
}
