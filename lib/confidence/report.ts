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
import type { ConfidenceSummary } from "../confidence.ts";
import { KEEP_ACCURACY } from "./population.ts";

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

function rocFigure(p: BaselineInputs): Figure {
  const errors = p.correct.map((c) => 1 - c);
  const curves = [
    { name: "max softmax", score: p.maxSoftmax.map((s) => -s) },
    { name: "trust score", score: p.trust.map((t) => -Math.log(t)) },
  ].flatMap(({ name, score }) => rocCurve(score, errors).map((pt) => ({ ...pt, baseline: name })));
  return {
    name: "roc-errors",
    title: "Finding the classifier's errors: ROC curves of the baselines",
    caption: "Each curve ranks the pairs by how low the score is and counts errors found (true " +
      "positive rate) against right predictions flagged (false positive rate). The diagonal is " +
      "chance. The meta-networks will be drawn here beside them.",
    svg: plotSvg({
      width: 420,
      height: 400,
      x: { label: "false positive rate", domain: [0, 1] },
      y: { label: "true positive rate (errors found)", domain: [0, 1], grid: true },
      color: {
        domain: ["max softmax", "trust score"],
        range: ["#4c78a8", "#f58518"],
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

const fmt = (x: number | null | undefined, digits = 3) =>
  x === null || x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits);

/**
 * Writes the figures (SVG and PNG) and `report.html` into `outDir`.
 * @param outDir the run folder
 * @param summary the run's summary
 * @param pairs the pair fields the figures read
 * @param baselines the baselines' scores
 */
export async function writeConfidenceReport(
  outDir: string,
  summary: ConfidenceSummary,
  pairs: BaselineInputs,
  baselines: BaselineResult[],
): Promise<void> {
  const figures = [accuracyFigure(summary.runs), ratioFigure(pairs), rocFigure(pairs)];
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
        heading: "Baselines",
        intro:
          "Scored on every pair. The meta-networks (step 5 of the study) are not trained yet; " +
          "these are the numbers they have to beat.",
        items: [
          figures[2],
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
