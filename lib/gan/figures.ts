/**
 * The GAN report's charts: quality and losses per epoch, the class histogram of the samples,
 * and the latent histograms of the interpolated pairs.
 * @module
 */
import type { Figure } from "../figures.ts";
import { Plot, plotSvg, stackSvgs } from "../plots.ts";
import type { GanEpoch } from "./types.ts";

/** Integer epoch ticks, thinned to about ten. */
function epochTicks(history: GanEpoch[]): number[] {
  const step = Math.max(1, Math.ceil(history.length / 10));
  return history.map((e) => e.epoch).filter((e) => e === 1 || e % step === 0);
}

/**
 * Inception score, Frechet distance, KL to uniform and both losses against the epoch: one
 * panel each, stacked, since their scales differ by orders of magnitude.
 */
export function qualityFigure(
  history: GanEpoch[],
  real: { inceptionScore: number; frechetEvenOdd: number },
  best: number,
): Figure {
  const ticks = epochTicks(history);
  const panel = (
    label: string,
    series: { name: string; value: (e: GanEpoch) => number }[],
    reference?: number,
    last = false,
  ) => {
    const rows = series.flatMap((s) =>
      history.map((e) => ({ epoch: e.epoch, value: s.value(e), series: s.name }))
    );
    return plotSvg({
      width: 720,
      height: last ? 170 : 140,
      marginLeft: 60,
      marginBottom: last ? 36 : 16,
      x: { label: last ? "epoch" : null, ticks, tickFormat: last ? "d" : () => "" },
      y: { label, grid: true, zero: reference !== undefined || series.length > 1 },
      color: { domain: series.map((s) => s.name), range: ["#1f77b4", "#ff7f0e"] },
      marks: [
        Plot.line(rows, { x: "epoch", y: "value", stroke: "series" }),
        Plot.dot(rows, { x: "epoch", y: "value", fill: "series", r: 2 }),
        ...(reference === undefined
          ? []
          : [Plot.ruleY([reference], { stroke: "#d62728", strokeDasharray: "4,3" })]),
        Plot.ruleX([best], { stroke: "#999", strokeDasharray: "2,2" }),
        ...(series.length > 1
          ? [
            // The two losses end close together: one label above its point, one below.
            ...series.map((one, i) =>
              Plot.text(
                rows.filter((r) =>
                  r.series === one.name && r.epoch === history[history.length - 1]?.epoch
                ),
                {
                  x: "epoch",
                  y: "value",
                  text: "series",
                  fill: "series",
                  dx: 6,
                  dy: i === 0 ? -7 : 7,
                  textAnchor: "start",
                },
              )
            ),
          ]
          : []),
      ],
      marginRight: 110,
    });
  };
  return {
    name: "quality",
    title: "Sample quality and losses per epoch",
    caption: `Each point scores ${history[0]?.samples ?? 0} samples of that epoch's generator ` +
      `with the judging classifier. Red dashes: the real test set's Inception score (${
        real.inceptionScore.toFixed(2)
      }), and the Frechet distance between its even and odd images (${
        real.frechetEvenOdd.toFixed(2)
      }), the floor that sampling alone sets. Grey: epoch ${best}, the lowest Frechet distance, ` +
      "whose generator is kept.",
    svg: stackSvgs([
      panel(
        "Inception score ↑",
        [{ name: "IS", value: (e) => e.inceptionScore }],
        real.inceptionScore,
      ),
      panel("Frechet distance ↓", [{ name: "FID", value: (e) => e.frechet }], real.frechetEvenOdd),
      panel("KL to uniform ↓", [{ name: "KL", value: (e) => e.klToUniform }], 0),
      panel(
        "loss",
        [
          { name: "discriminator", value: (e) => e.discriminatorLoss },
          { name: "generator", value: (e) => e.generatorLoss },
        ],
        undefined,
        true,
      ),
    ]),
  };
}

/** Images per predicted class of the kept samples and of the test set. */
export function histogramFigure(
  samples: number[],
  real: number[],
  klSamples: number,
  klReal: number,
): Figure {
  const total = (h: number[]) => h.reduce((a, b) => a + b, 0);
  const rows = [
    ...samples.map((c, digit) => ({ digit, set: "generated", share: c / total(samples) })),
    ...real.map((c, digit) => ({ digit, set: "test set", share: c / total(real) })),
  ];
  return {
    name: "class-histogram",
    title: "Predicted classes of generated and real digits",
    caption: `The judging classifier's predicted class, as a share of each set; the dashed line ` +
      `is uniform (0.1). KL to uniform: generated ${klSamples.toFixed(3)} nats, test set ${
        klReal.toFixed(3)
      } nats. A collapsed GAN piles its samples on a few digits.`,
    svg: plotSvg({
      width: 640,
      height: 300,
      marginBottom: 40,
      fx: { label: "predicted digit" },
      x: { axis: null, domain: ["generated", "test set"] },
      y: { label: "share of images", grid: true },
      color: { domain: ["generated", "test set"], range: ["#1f77b4", "#aaa"], legend: true },
      marks: [
        Plot.barY(rows, { fx: "digit", x: "set", y: "share", fill: "set" }),
        Plot.ruleY([0.1], { stroke: "#d62728", strokeDasharray: "4,3" }),
        Plot.ruleY([0]),
      ],
    }),
  };
}

/** Histograms of each pair's two latent vectors, overlaid, one panel per pair. */
export function latentHistogramFigure(pairs: { z1: Float32Array; z2: Float32Array }[]): Figure {
  const rows = pairs.flatMap(({ z1, z2 }, pair) => [
    ...Array.from(z1, (value) => ({ pair: `pair ${pair + 1}`, vector: "z1", value })),
    ...Array.from(z2, (value) => ({ pair: `pair ${pair + 1}`, vector: "z2", value })),
  ]);
  const histogram = (vector: string) =>
    Plot.rectY(
      rows.filter((r) => r.vector === vector),
      Plot.binX({ y: "count" }, {
        x: "value",
        fx: "pair",
        fill: "vector",
        fillOpacity: 0.55,
        thresholds: 16,
        domain: [-4, 4],
      } as Plot.BinXInputs<Plot.RectYOptions>),
    );
  return {
    name: "latent-histograms",
    title: "The interpolated latent vectors",
    caption:
      `The ${
        pairs[0]?.z1.length ?? 0
      } values of z1 (blue) and z2 (orange) of each pair, drawn from N(0, 1): each end of a ` +
      "strip is an ordinary latent, not a hand-picked one.",
    svg: plotSvg({
      width: 900,
      height: 230,
      marginBottom: 40,
      fx: { label: null },
      x: { label: "value", domain: [-4, 4], ticks: 5 },
      y: { label: "count", grid: true },
      color: { domain: ["z1", "z2"], range: ["#1f77b4", "#ff7f0e"], legend: true },
      marks: [histogram("z1"), histogram("z2"), Plot.ruleY([0])],
    }),
  };
}
