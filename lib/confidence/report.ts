/**
 * The confidence study's figures and `report.html`: the population's test accuracies against the
 * 60% bar, the confidence ratio's distribution for right and wrong predictions, the baselines'
 * ROC curves, and the tables behind them.
 * @module
 */
import { type Figure, writeFigure, writeReport } from "../figures.ts";
import { Plot, plotSvg } from "../plots.ts";
import type { BaselineInputs, BaselineResult } from "./baselines.ts";
import { rocCurve } from "./baselines.ts";
import type { ConfidenceSummary } from "./types.ts";
import { KEEP_ACCURACY } from "./population.ts";
import { type MetaResult, type PairData, splitRows } from "./metanets.ts";
import { readNpy } from "../npy.ts";

function accuracyFigure(runs: { testAccuracy: number }[]): Figure {
  const rows = runs.map((r) => ({ accuracy: 100 * r.testAccuracy }));
  return {
    name: "population-accuracy",
    title: "Test accuracy of every trained LeNet-5",
    caption: `${runs.length} runs of the grid. The study keeps a model at ${
      100 * KEEP_ACCURACY
    }% or more (red line). Most of the others sit at chance: they diverged, or collapsed to one class.`,
    svg: plotSvg({
      width: 720,
      height: 260,
      x: { label: "test accuracy (%)", domain: [0, 100] },
      y: { label: "runs", grid: true },
      marks: [
        Plot.rectY(
          rows,
          Plot.binX(
            { y: "count" },
            { x: "accuracy", thresholds: 50, fill: "#4c78a8" } as Plot.BinXInputs<
              Plot.RectYOptions
            >,
          ),
        ),
        Plot.ruleX([100 * KEEP_ACCURACY], { stroke: "#d62728", strokeDasharray: "4,3" }),
        Plot.ruleY([0]),
      ],
    }),
  };
}

function ratioFigure(p: BaselineInputs): Figure {
  const rows = Array.from(p.ratio, (ratio, i) => ({
    ratio,
    prediction: p.correct[i] ? "right" : "wrong",
  }));
  return {
    name: "ratio-histogram",
    title: "The confidence ratio, for right and wrong predictions",
    caption:
      "The share of the noisy copies (x + N(0, 0.9^2), the same copies for every pair) that " +
      "keep the clean prediction. Right predictions mostly survive the noise; wrong ones spread " +
      "over the whole range, which is what makes the ratio worth predicting.",
    svg: plotSvg({
      width: 720,
      height: 260,
      x: { label: "confidence ratio", domain: [0, 1] },
      y: { label: "pairs", grid: true },
      color: { domain: ["right", "wrong"], range: ["#4c78a8", "#e45756"], legend: true },
      marks: [
        Plot.rectY(
          rows,
          Plot.binX(
            { y: "count" },
            { x: "ratio", fill: "prediction", thresholds: 40, domain: [0, 1] } as Plot.BinXInputs<
              Plot.RectYOptions
            >,
          ),
        ),
        Plot.ruleY([0]),
      ],
    }),
  };
}

/** Test predictions of one fit, with its test rows. */
interface Fit {
  name: string;
  predictions: Float32Array;
  rows: Uint32Array;
}

function rocFigure(p: BaselineInputs, fits: Fit[]): Figure {
  const pick = (a: Float32Array, rows: Uint32Array) => Float32Array.from(rows, (i) => a[i]);
  const rows = fits[0]?.rows ?? Uint32Array.from(p.correct.keys());
  const errors = pick(p.correct, rows).map((c) => 1 - c);
  const scored = [
    { name: "max softmax", score: pick(p.maxSoftmax, rows).map((s) => -s) },
    { name: "trust score", score: pick(p.trust, rows).map((t) => -Math.log(t)) },
    ...fits.map((f) => ({ name: f.name.split(" ")[0], score: f.predictions.map((v) => -v) })),
  ];
  const names = scored.map((s) => s.name);
  const curves = scored.flatMap(({ name, score }) =>
    rocCurve(score, errors).map((pt) => ({ ...pt, baseline: name }))
  );
  return {
    name: "roc-errors",
    title: "Finding the classifier's errors: ROC curves",
    caption: "Each curve ranks the test pairs (split by pair, seed 1 for the meta-networks) by " +
      "how low the score is and counts errors found (true positive rate) against right " +
      "predictions flagged (false positive rate). The diagonal is chance.",
    svg: plotSvg({
      width: 560,
      height: 460,
      x: { label: "false positive rate", domain: [0, 1] },
      y: { label: "true positive rate (errors found)", domain: [0, 1], grid: true },
      color: {
        domain: names,
        range: ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#b279a2"],
        legend: true,
      },
      marks: [
        Plot.line([{ x: 0, y: 0 }, { x: 1, y: 1 }], {
          x: "x",
          y: "y",
          stroke: "#aaa",
          strokeDasharray: "3,3",
        }),
        Plot.line(curves, { x: "fpr", y: "tpr", stroke: "baseline", strokeWidth: 1.5 }),
      ],
    }),
  };
}

function scatterFigure(p: BaselineInputs, best: Fit & { r2: number }): Figure {
  const rows = Array.from(best.rows, (row, i) => ({
    truth: p.ratio[row],
    predicted: best.predictions[i],
  }));
  return {
    name: "ratio-predicted",
    title: `Predicted against true confidence ratio: ${best.name}`,
    caption: `The best regressor (r^2 ${best.r2.toFixed(3)}) on its ${rows.length} test pairs; ` +
      "the diagonal is a perfect prediction.",
    svg: plotSvg({
      width: 420,
      height: 400,
      x: { label: "true ratio", domain: [0, 1] },
      y: { label: "predicted ratio", grid: true },
      marks: [
        Plot.dot(rows, { x: "truth", y: "predicted", r: 1.5, fill: "#4c78a8", fillOpacity: 0.35 }),
        Plot.line([{ x: 0, y: 0 }, { x: 1, y: 1 }], { x: "x", y: "y", stroke: "#d62728" }),
      ],
    }),
  };
}

/** Mean and standard deviation over seeds, one row per net, task and split. */
function resultsTable(results: MetaResult[]) {
  const groups = new Map<string, MetaResult[]>();
  for (const r of results) {
    const key = `${r.net}|${r.task}|${r.split}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const stat = (rs: MetaResult[], k: keyof MetaResult) => {
    const v = rs.map((r) => r[k] as number | undefined).filter((x): x is number => x !== undefined);
    if (v.length === 0) return "-";
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, v.length - 1));
    return v.length > 1 ? `${m.toFixed(3)} ± ${sd.toFixed(3)}` : m.toFixed(3);
  };
  const rows = [...groups.entries()]
    .sort(([a], [b]) => a < b ? -1 : 1)
    .map(([key, rs]) => {
      const [net, task, split] = key.split("|");
      return [
        net,
        task,
        split,
        rs.length,
        stat(rs, "r2"),
        stat(rs, "mae"),
        stat(rs, "accuracy"),
        stat(rs, "auroc"),
        stat(rs, "auprErrors"),
      ];
    });
  return {
    title: "Meta-networks and baselines on the test pairs",
    caption:
      "Mean ± standard deviation over the seeds (n). Split by pair: the study's random 64/16/20 " +
      "split over pairs. Split by model: the test pairs come from models never seen in training. " +
      "Baselines: a straight line fitted on the training pairs (regression), a threshold chosen " +
      "on them (accuracy); AUROC and AUPR need no fit.",
    header: ["net", "task", "split", "n", "r^2", "MAE", "accuracy", "AUROC", "AUPR errors"],
    rows,
  };
}

async function loadFits(
  metaDir: string,
  results: MetaResult[],
  modelId: Float32Array,
  splitSeed: number,
) {
  const rows = {
    pair: splitRows(modelId, "pair", splitSeed),
    model: splitRows(modelId, "model", splitSeed),
  };
  const fit = async (r: MetaResult): Promise<Fit> => ({
    name: `${r.net} (${r.split} split, seed ${r.seed})`,
    predictions: (await readNpy(`${metaDir}/${r.net}-${r.task}-${r.split}-${r.seed}.npy`)).data,
    rows: rows[r.split].test,
  });
  const nets = results.filter((r) => r.seed !== null);
  const classifiers = nets.filter((r) =>
    r.task === "classification" && r.split === "pair" && r.seed === 1
  );
  const regressors = nets.filter((r) => r.task === "regression");
  const best = regressors.reduce<MetaResult | undefined>(
    (b, r) => (!b || r.r2! > b.r2! ? r : b),
    undefined,
  );
  return {
    roc: await Promise.all(classifiers.map((r) => fit(r))),
    best: best ? { ...(await fit(best)), r2: best.r2! } : undefined,
  };
}

const fmt = (x: number | null | undefined, digits = 3) =>
  x === null || x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits);

/**
 * Writes the figures (SVG and PNG) and `report.html` into `outDir`.
 * @param outDir the run folder
 * @param metaDir the folder of the meta-networks' test predictions
 * @param summary the run's summary
 * @param pairs the pair fields the figures read (`readPairs`)
 * @param baselines the baselines' scores
 */
export async function writeConfidenceReport(
  outDir: string,
  metaDir: string,
  summary: ConfidenceSummary,
  pairs: PairData,
  baselines: BaselineResult[],
): Promise<void> {
  const fits = await loadFits(metaDir, summary.results, pairs.modelId, summary.settings.seed);
  const figures = [accuracyFigure(summary.runs), ratioFigure(pairs), rocFigure(pairs, fits.roc)];
  if (fits.best) figures.push(scatterFigure(pairs, fits.best));
  for (const f of figures) await writeFigure(outDir, f);
  const { wna, pytorch, ratio } = summary.populationSpeed;
  await writeReport(
    `${outDir}/report.html`,
    "Predicting a classifier's confidence from its data flow",
    `${summary.models.trained} LeNet-5 runs of the study's grid trained natively as populations; ` +
      `${summary.models.kept} kept (test accuracy >= ${100 * KEEP_ACCURACY}%), ` +
      `${summary.models.labelled} labelled: ${summary.pairs} model-image pairs, each with its ` +
      `confidence ratio over ${summary.settings.copies} noisy copies, its correctness and its data flow.`,
    [
      {
        heading: "The population",
        items: [
          figures[0],
          {
            title: "Training speed",
            caption: "wna: wall-clock time of the population runs, test evaluations included. " +
              "PyTorch: the study's loop, one model at a time on the same machine, one epoch timed " +
              "per batch size and extrapolated to every run's epochs.",
            header: ["", "models/hour", "member-epochs/hour", "ratio"],
            rows: [
              ["wna (populations)", fmt(wna.modelsPerHour, 0), fmt(wna.memberEpochsPerHour, 0), ""],
              [
                `PyTorch ${pytorch?.torch ?? "(not measured)"}, one by one`,
                fmt(pytorch?.modelsPerHour, 0),
                "",
                ratio === null ? "-" : `${ratio.toFixed(2)}x`,
              ],
            ],
          },
        ],
      },
      {
        heading: "The pairs",
        items: [figures[1]],
      },
      {
        heading: "Meta-networks",
        intro: "RNN, LSTM and Transformer over the four data-flow tokens, seeds 1-5, both tasks, " +
          "both splits, beside the classifier's own max-softmax probability and the trust score.",
        items: [resultsTable(summary.results), figures[2], ...figures.slice(3)],
      },
      {
        heading: "Baselines on every pair",
        items: [
          {
            title: "Baselines on every pair",
            caption: "Classification: AUROC of the score for right predictions, and average " +
              "precision of the negated score for errors. Regression: r^2 of a straight-line fit of " +
              "the confidence ratio on the score (the log of the trust score).",
            header: ["baseline", "task", "AUROC", "AUPR errors", "r^2"],
            rows: baselines.map((b) => [b.net, b.task, fmt(b.auroc), fmt(b.auprErrors), fmt(b.r2)]),
          },
        ],
      },
    ],
  );
}
