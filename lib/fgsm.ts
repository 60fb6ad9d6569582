/**
 * Adversarial robustness: FGSM (Goodfellow et al., 2015) against several networks, every net
 * tested on every other net's adversarial images (the transfer matrix), plus saliency maps.
 * @module
 */
import { classNames, loadDataset } from "../data/datasets.ts";
import type { Model, ModelName } from "../ffi/model.ts";
import { loadCheckpoint, readSidecar } from "./checkpoint.ts";
import { type Figure, mapsSvg, type Table, writeFigure, writeReport } from "./figures.ts";
import { writeFileAtomic, writeJsonAtomic } from "./files.ts";
import { argmaxRows, perClassAccuracy } from "./metrics.ts";
import { encodeNpy } from "./npy.ts";
import { Plot, plotSvg } from "./plots.ts";
import { ProgressBar } from "./progress.ts";
import { trainModel } from "./training.ts";

/** The MNIST case-study nets, each trained twice with different seeds. */
export const CASE_STUDY_NETS: { label: string; model: ModelName; seedOffset: number }[] = [
  { label: "N1", model: "n1", seedOffset: 0 },
  { label: "N11", model: "n1", seedOffset: 1 },
  { label: "N2", model: "n2", seedOffset: 0 },
  { label: "N22", model: "n2", seedOffset: 1 },
  { label: "N3", model: "n3", seedOffset: 0 },
  { label: "N33", model: "n3", seedOffset: 1 },
];

/** The eps values of the case study: the default of `--eps`. */
export const DEFAULT_EPS = [0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 1];

/** Options of {@linkcode runFgsm}. */
export interface FgsmOptions {
  /** Checkpoints to attack; none: train (or reuse) the six case-study nets. */
  checkpoints?: string[];
  /** @default DEFAULT_EPS */
  eps?: number[];
  /** Dataset of the case-study nets. @default "mnist" */
  dataset?: string;
  /** Test images used (the first n). @default all 10,000 */
  testImages?: number;
  /** eps values drawn in the adversarial-example grid. @default [0.1, 0.3] */
  exampleEps?: number[];
  /** Test images shown in the example grid and the saliency maps. @default 8 */
  exampleImages?: number;
  /** Seed of the case-study nets' training. @default 0 */
  seed?: number;
  /** Epochs of each case-study net. @default 3 */
  epochs?: number;
  /** Limit the case-study nets' training set (quick runs). */
  trainLimit?: number;
  /** Where trained case-study nets are cached. @default "checkpoints/fgsm" */
  cacheDir?: string;
  outDir: string;
  dataDir?: string;
  device?: "cpu" | "cuda" | "auto";
  /** @default true */
  progress?: boolean;
  /** @default console.log */
  log?: (line: string) => void;
}

/** What {@linkcode runFgsm} writes to `summary.json`. */
export interface FgsmSummary {
  nets: { label: string; model: string; checkpoint: string }[];
  eps: number[];
  testImages: number;
  /** Clean accuracy of each net. */
  cleanAccuracy: Record<string, number>;
  /** White-box accuracy of each net at each eps (its own adversarial images). */
  accuracy: Record<string, number[]>;
  /** Per eps: rows attacked net, columns evaluated net, accuracies. */
  matrices: { eps: number; matrix: number[][] }[];
  seconds: number;
}

/** Accuracy of a model on images; the native side batches the forward passes. */
async function accuracy(model: Model, images: Float32Array, labels: Uint8Array, classes: number) {
  return perClassAccuracy(argmaxRows(await model.predict(images), classes), labels, classes)
    .accuracy;
}

async function predictions(model: Model, images: Float32Array, classes: number) {
  return Array.from(argmaxRows(await model.predict(images), classes));
}

function uniqueLabels(paths: string[]): string[] {
  const stem = (p: string) => {
    const parts = p.replace(/\.safetensors$/, "").split("/");
    const file = parts.pop()!;
    return ["best", "model"].includes(file) && parts.length ? parts.pop()! : file;
  };
  const labels = paths.map(stem);
  return labels.map((l, i) => labels.indexOf(l) === i ? l : `${l}#${i + 1}`);
}

/** The case-study net's training options: what {@linkcode caseStudyCheckpoint} needs. */
export type CaseStudyTraining = Pick<
  FgsmOptions,
  "epochs" | "trainLimit" | "cacheDir" | "dataDir" | "device" | "progress" | "log"
>;

/**
 * Trains (or reuses) one case-study net, cached under a folder that names every setting that
 * changes it, so that a quick run never stands in for a full one.
 * @returns the path of its best checkpoint
 */
export async function caseStudyCheckpoint(
  net: (typeof CASE_STUDY_NETS)[number],
  o: CaseStudyTraining,
  dataset: string,
  seed: number,
): Promise<string> {
  const cacheDir = o.cacheDir ?? "checkpoints/fgsm";
  const limit = o.trainLimit ? `-n${o.trainLimit}` : "";
  const dir = `${cacheDir}/${dataset}-${net.label}-s${seed}-e${o.epochs ?? 3}${limit}`;
  const best = `${dir}/best.safetensors`;
  const cached = await readSidecar(best).then(() => true, () => false);
  if (!cached) {
    (o.log ?? console.log)(`training ${net.label} (${net.model}), a case-study net of FGSM`);
    await trainModel({
      model: net.model,
      dataset,
      epochs: o.epochs ?? 3,
      seed: seed + net.seedOffset,
      optimizer: net.model === "n2" ? "sgd" : "adam",
      lrMax: net.model === "n2" ? 0.05 : 1e-3,
      limit: o.trainLimit,
      outDir: dir,
      dataDir: o.dataDir,
      device: o.device,
      progress: o.progress,
      log: o.log,
    });
  }
  return best;
}

/** Trains (or reuses) the six case-study nets; returns their best checkpoints. */
async function caseStudyCheckpoints(o: FgsmOptions, dataset: string, seed: number) {
  const out: string[] = [];
  for (const net of CASE_STUDY_NETS) out.push(await caseStudyCheckpoint(net, o, dataset, seed));
  return out;
}

const fmtEps = (e: number) => String(e).replace(".", "p");

/** Runs the whole study and writes `outDir/{report.html,summary.json,matrix-eps*.csv,…}`. */
export async function runFgsm(o: FgsmOptions): Promise<FgsmSummary> {
  const t0 = performance.now();
  const log = o.log ?? console.log;
  const eps = o.eps ?? DEFAULT_EPS;
  if (eps.length === 0 || eps.some((e) => !(e >= 0 && e <= 1))) {
    throw new RangeError(`invalid --eps: each must be in [0, 1], got ${eps.join(",")}`);
  }
  const seed = o.seed ?? 0;
  let paths = o.checkpoints ?? [];
  let labels: string[];
  let dataset = o.dataset ?? "mnist";
  if (paths.length === 0) {
    paths = await caseStudyCheckpoints(o, dataset, seed);
    labels = CASE_STUDY_NETS.map((n) => n.label);
  } else {
    labels = uniqueLabels(paths);
    const datasets = new Set(
      await Promise.all(paths.map(async (p) => (await readSidecar(p)).dataset)),
    );
    if (datasets.size > 1) {
      throw new Error(
        `fgsm: the checkpoints were trained on different datasets (${
          [...datasets].join(", ")
        }); pass checkpoints of one dataset`,
      );
    }
    dataset = [...datasets][0];
  }
  const test = await loadDataset(dataset, "test", { dataDir: o.dataDir, limit: o.testImages });
  const names = classNames(dataset as "mnist" | "fashion");
  await Deno.mkdir(o.outDir, { recursive: true });

  const nets: { label: string; model: Model; kind: string; classes: number }[] = [];
  try {
    for (const [i, path] of paths.entries()) {
      const { model, sidecar } = await loadCheckpoint(path, o.device);
      nets.push({ label: labels[i], model, kind: sidecar.model, classes: sidecar.classes });
    }
    const bar = o.progress === false ? undefined : new ProgressBar("fgsm");
    const total = nets.length * eps.length;
    const matrices = eps.map((e) => ({ eps: e, matrix: nets.map(() => nets.map(() => 0)) }));
    const cleanAccuracy: Record<string, number> = {};
    for (const n of nets) {
      cleanAccuracy[n.label] = await accuracy(n.model, test.images, test.labels, n.classes);
    }
    // The example grid and saliency: the first few test images.
    const k = Math.min(o.exampleImages ?? 8, test.count);
    const exampleEps = (o.exampleEps ?? [0.1, 0.3]).filter((e) => eps.includes(e));
    const examples: { eps: number; adv: Float32Array; pred: number[] }[] = [];
    let done = 0;
    for (const [a, attacker] of nets.entries()) {
      for (const [ei, e] of eps.entries()) {
        // The native side computes the gradients in chunks, so memory stays at one chunk.
        const adv = await attacker.model.fgsm(test.images, test.labels, e);
        for (const [b, evaluator] of nets.entries()) {
          matrices[ei].matrix[a][b] = await accuracy(
            evaluator.model,
            adv,
            test.labels,
            evaluator.classes,
          );
        }
        if (a === 0 && exampleEps.includes(e)) {
          const sub = adv.slice(0, k * 784);
          examples.push({
            eps: e,
            adv: sub,
            pred: await predictions(attacker.model, sub, attacker.classes),
          });
        }
        bar?.update(++done, total);
      }
    }
    bar?.done(`${total} attacks`);
    const accuracyByNet: Record<string, number[]> = {};
    nets.forEach((n, a) => accuracyByNet[n.label] = matrices.map((m) => m.matrix[a][a]));

    // Arrays and tables.
    for (const m of matrices) {
      const csv = [
        ["attacked\\evaluated", ...labels].join(","),
        ...m.matrix.map((row, a) => [labels[a], ...row.map((v) => v.toFixed(4))].join(",")),
      ].join("\n") + "\n";
      await writeFileAtomic(`${o.outDir}/matrix-eps${fmtEps(m.eps)}.csv`, csv);
    }
    await writeJsonAtomic(`${o.outDir}/matrices.json`, { labels, matrices });
    await writeFileAtomic(
      `${o.outDir}/matrices.npy`,
      encodeNpy(new Float32Array(matrices.flatMap((m) => m.matrix.flat())), [
        eps.length,
        nets.length,
        nets.length,
      ]),
    );

    const figures: Figure[] = [];
    const fig = async (f: Figure) => {
      await writeFigure(o.outDir, f);
      figures.push(f);
      return f;
    };
    const heatmaps: Figure[] = [];
    for (const m of matrices) {
      const cells = m.matrix.flatMap((row, a) =>
        row.map((v, b) => ({ attacked: labels[a], evaluated: labels[b], v }))
      );
      heatmaps.push(
        await fig({
          name: `matrix-eps${fmtEps(m.eps)}`,
          title: `Transfer matrix at eps = ${m.eps}`,
          caption:
            "Accuracy of each evaluated net (columns) on the FGSM images made against each attacked net (rows). The diagonal is the white-box attack; off-diagonal cells show how well the attack transfers.",
          svg: plotSvg({
            width: 120 + 60 * nets.length,
            height: 80 + 40 * nets.length,
            marginLeft: 80,
            padding: 0,
            x: { label: "evaluated", domain: labels, axis: "top" },
            y: { label: "attacked", domain: labels },
            color: { scheme: "ylgnbu", domain: [0, 1] },
            marks: [
              Plot.cell(cells, { x: "evaluated", y: "attacked", fill: "v" }),
              Plot.text(cells, {
                x: "evaluated",
                y: "attacked",
                text: (d: { v: number }) => (100 * d.v).toFixed(1),
                fill: (d: { v: number }) => d.v > 0.6 ? "white" : "black",
                fontSize: 10,
              }),
            ],
          }),
        }),
      );
    }
    const lines = nets.flatMap((_, a) =>
      nets.flatMap((ev, b) =>
        matrices.map((m) => ({
          col: a % 3,
          row: Math.floor(a / 3),
          evaluated: ev.label,
          eps: m.eps,
          acc: m.matrix[a][b],
          whiteBox: a === b,
        }))
      )
    );
    const curves = await fig({
      name: "accuracy-vs-eps",
      title: "Accuracy vs eps, one panel per attacked net",
      caption:
        "Each panel attacks one net; its lines are the accuracies of every net on those adversarial images. The thick line is the attacked net itself (white box); the others measure transfer.",
      svg: plotSvg({
        width: 760,
        height: 160 * Math.ceil(nets.length / 3),
        marginRight: 50,
        x: { label: "eps" },
        y: { label: "accuracy", domain: [0, 1], grid: true },
        fx: { axis: null },
        fy: { axis: null },
        color: { domain: labels },
        marks: [
          Plot.line(lines, {
            x: "eps",
            y: "acc",
            stroke: "evaluated",
            strokeWidth: (d: { whiteBox: boolean }) => d.whiteBox ? 3 : 1,
            fx: "col",
            fy: "row",
            z: "evaluated",
          }),
          Plot.text(
            lines,
            Plot.selectLast({
              x: "eps",
              y: "acc",
              z: "evaluated",
              text: "evaluated",
              fill: "evaluated",
              fx: "col",
              fy: "row",
              dx: 3,
              textAnchor: "start",
              fontSize: 8,
            }),
          ),
          Plot.text(
            labels.map((l, a) => ({ l: `attack on ${l}`, col: a % 3, row: Math.floor(a / 3) })),
            { fx: "col", fy: "row", frameAnchor: "bottom-left", text: "l", dy: -4, dx: 4 },
          ),
        ],
      }),
    });

    // Adversarial examples: clean, perturbation, adversarial (with the attacked net's answer).
    const exampleFigures: Figure[] = [];
    const clean = test.images.slice(0, k * 784);
    const cleanPred = await predictions(nets[0].model, clean, nets[0].classes);
    for (const ex of examples) {
      const perturbation = ex.adv.map((v, i) => v - clean[i]);
      const svg = [
        mapsSvg(clean, k, 28, 28, {
          grey: true,
          scale: 3,
          heading: "clean",
          titles: cleanPred.map((p, i) => `${names[p]} (true ${names[test.labels[i]]})`),
        }),
        mapsSvg(perturbation, k, 28, 28, { scale: 3, heading: "perturbation", centre: false }),
        mapsSvg(ex.adv, k, 28, 28, {
          grey: true,
          scale: 3,
          heading: `adversarial, eps ${ex.eps}`,
          titles: ex.pred.map((p) => `→ ${names[p]}`),
        }),
      ];
      exampleFigures.push(
        await fig({
          name: `examples-eps${fmtEps(ex.eps)}`,
          title: `Adversarial examples against ${labels[0]} at eps = ${ex.eps}`,
          caption: `Top: test images and ${
            labels[0]
          }'s answer. Middle: the FGSM perturbation eps·sign(gradient), clipped to [0, 1] (red +, blue −). Bottom: the adversarial image and the answer it now gets.`,
          svg: stackSvgs(svg),
        }),
      );
    }

    // Saliency: vanilla gradient and gradient × input of the loss of the true label.
    const saliencyFigures: Figure[] = [];
    for (const n of nets) {
      const { gradients } = await n.model.inputGradients(clean, test.labels.subarray(0, k));
      const timesInput = gradients.map((g, i) => g * clean[i]);
      await writeFileAtomic(
        `${o.outDir}/saliency-${n.label}.npy`,
        encodeNpy(new Float32Array([...gradients, ...timesInput]), [2, k, 28, 28]),
      );
      saliencyFigures.push(
        await fig({
          name: `saliency-${n.label}`,
          title: `Saliency of ${n.label}`,
          caption:
            "Rows: the image; the gradient of the loss of its true label with respect to the pixels (red: brightening the pixel raises the loss); gradient × input. Each map is scaled by its own largest value.",
          svg: stackSvgs([
            mapsSvg(clean, k, 28, 28, { grey: true, scale: 3, heading: "image" }),
            mapsSvg(gradients, k, 28, 28, { scale: 3, heading: "gradient", centre: false }),
            mapsSvg(timesInput, k, 28, 28, {
              scale: 3,
              heading: "gradient × input",
              centre: false,
            }),
          ]),
        }),
      );
    }

    const summary: FgsmSummary = {
      nets: nets.map((n, i) => ({ label: n.label, model: n.kind, checkpoint: paths[i] })),
      eps,
      testImages: test.count,
      cleanAccuracy,
      accuracy: accuracyByNet,
      matrices,
      seconds: (performance.now() - t0) / 1000,
    };
    await writeJsonAtomic(`${o.outDir}/summary.json`, summary);
    const accuracyTable: Table = {
      title: "White-box accuracy per eps",
      caption: "Each net on its own FGSM images; eps 0 is the clean accuracy.",
      header: ["net", ...eps.map((e) => `eps ${e}`)],
      rows: nets.map((n) => [n.label, ...accuracyByNet[n.label].map((v) => (100 * v).toFixed(1))]),
    };
    await writeReport(
      `${o.outDir}/report.html`,
      `FGSM robustness on ${dataset}`,
      `Fast Gradient Sign Method (Goodfellow et al., 2015): x' = clip(x + eps·sign(∇ₓ loss), 0, 1) in pixel space, on ${test.count} test images, against ${nets.length} nets (${
        labels.join(", ")
      }). Every net is evaluated on every net's adversarial images. Took ${
        summary.seconds.toFixed(0)
      } s.`,
      [
        { heading: "Accuracy", items: [accuracyTable, curves] },
        { heading: "Transfer matrices", items: heatmaps },
        { heading: "Adversarial examples", items: exampleFigures },
        { heading: "Saliency", items: saliencyFigures },
      ],
    );
    log(`report: ${o.outDir}/report.html`);
    return summary;
  } finally {
    for (const n of nets) n.model.close();
  }
}

/** Stacks SVG documents vertically into one. */
function stackSvgs(svgs: string[]): string {
  let y = 0;
  let width = 0;
  const parts: string[] = [];
  for (const svg of svgs) {
    const w = Number(/width="([\d.]+)"/.exec(svg)?.[1] ?? 0);
    const h = Number(/height="([\d.]+)"/.exec(svg)?.[1] ?? 0);
    parts.push(svg.replace("<svg ", `<svg y="${y}" `));
    y += h;
    width = Math.max(width, w);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}">${
    parts.join("")
  }</svg>`;
}
