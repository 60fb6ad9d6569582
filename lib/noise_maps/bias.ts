/**
 * The bias histogram: how noise images are classified, under the analysis noise and under raw
 * uniform noise side by side. The uniform bias is a finding about the network, kept as such.
 * @module
 */
import type { AnalysisResult } from "../../ffi/model.ts";
import type { Figure } from "../figures.ts";
import { Plot, plotSvg } from "../plots.ts";
import { type RunContext, saveFigure } from "./context.ts";

/** Bias histograms of the run. */
export interface Bias {
  /** Samples per class under raw uniform noise. */
  rawCounts: number[];
  rawSamples: number;
  /** Share per class under the analysis noise. */
  classShare: number[];
  figure: Figure;
}

/** Draws the bias under the analysis noise (`main`) beside the one under uniform noise. */
export async function biasHistograms(
  ctx: RunContext,
  main: AnalysisResult,
  uniform: AnalysisResult,
  noiseLabel: string,
): Promise<Bias> {
  const { names } = ctx;
  const classShare = Array.from(main.counts.data, (c) => c / main.samples);
  const rawCounts = Array.from(uniform.counts.data);
  const raw = uniform.samples;
  const rows = [
    ...rawCounts.map((c, i) => ({ cls: names[i], noise: "uniform", share: c / raw })),
    ...(ctx.stream.noise === "uniform"
      ? []
      : classShare.map((s, i) => ({ cls: names[i], noise: noiseLabel, share: s }))),
  ];
  const figure = await saveFigure(ctx, {
    name: "bias-histogram",
    title: "Bias histogram: how noise images are classified",
    caption:
      `Share of noise images assigned to each class: grey, ${raw.toLocaleString("en")} uniform ` +
      `noise images (every pixel independent in [0, 1])` +
      (ctx.stream.noise === "uniform"
        ? ". "
        : `; blue, ${main.samples.toLocaleString("en")} ${noiseLabel} images. Dashed: 10%. `) +
      `A network without bias would give every class 10%; a tall bar is the class the network ` +
      `falls back on when there is no signal. A well-trained net can call nearly all uniform ` +
      `noise one or two classes; noise with the data's pixel correlations reaches them all.`,
    svg: plotSvg({
      width: 680,
      height: 280,
      marginLeft: 50,
      marginBottom: 60,
      fx: { label: null, domain: names, tickRotate: names.some((n) => n.length > 2) ? -30 : 0 },
      x: { axis: null },
      y: { label: "share of samples", grid: true, tickFormat: "%" },
      color: { domain: ["uniform", noiseLabel], range: ["#aaa", "steelblue"] },
      marks: [
        Plot.barY(rows, { fx: "cls", x: "noise", y: "share", fill: "noise" }),
        Plot.ruleY([0.1], { stroke: "#999", strokeDasharray: "4 3" }),
        Plot.ruleY([0]),
      ],
    }),
  });
  return { rawCounts, rawSamples: raw, classShare, figure };
}
