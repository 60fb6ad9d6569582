/**
 * Microstimulation: for each class, the unit of the last hidden layer that responds most
 * selectively to that class's test images is driven by `delta` stds (of its activation over
 * test images) while noise is shown. The sweep stops once the class wins half of the noise.
 * @module
 */
import type { LayerInfo } from "../../ffi/model.ts";
import type { Figure, Table } from "../figures.ts";
import { perClassAccuracy } from "../metrics.ts";
import { Plot, plotSvg } from "../plots.ts";
import { ProgressBar } from "../progress.ts";
import { pct, type RunContext, saveFigure, type Section, tally } from "./context.ts";

/** One point of a sweep. */
export interface StimulationPoint {
  delta: number;
  /** Share of noise samples per class while stimulated. */
  classShares: number[];
  testAccuracy: number;
}

/** The sweep of one class's unit. */
export interface Microstimulation {
  /** The class whose most selective unit is stimulated. */
  target: number;
  layer: string;
  channel: number;
  /** (mean on the class − mean on the other classes) / the unit's std over test images. */
  selectivity: number;
  sweep: StimulationPoint[];
  /** The first swept delta at which the target wins half of the noise, else null. */
  deltaHalf: number | null;
}

/** The layer stimulated: the last hidden one, where units are closest to a class vote. */
export function stimulationLayer(layers: LayerInfo[]): LayerInfo | undefined {
  return layers.filter((l) => l.name !== "logits").at(-1);
}

/**
 * Per class, the unit whose mean activation on that class's test images stands out most from
 * its mean on the other classes, in units of its std over all test images (also returned).
 * A class with no image among the test images used has no unit (`undefined`).
 */
async function selectiveUnits(
  ctx: RunContext,
  layer: LayerInfo,
): Promise<
  { units: ({ channel: number; selectivity: number } | undefined)[]; std: Float32Array }
> {
  const { model, classes: C, evalImages, evalLabels } = ctx;
  const all = await model.analyse(evalImages, {
    gamma: 1,
    staSamples: evalLabels.length,
    layers: [layer.name],
  });
  const channelStd = all.layers[layer.name].channelStd.data;
  const means: (Float32Array | undefined)[] = [];
  for (let c = 0; c < C; c++) {
    const idx = [...evalLabels.keys()].filter((i) => evalLabels[i] === c);
    if (idx.length === 0) {
      means.push(undefined);
      continue;
    }
    const images = new Float32Array(idx.length * 784);
    idx.forEach((k, i) => images.set(evalImages.subarray(k * 784, (k + 1) * 784), i * 784));
    const r = await model.analyse(images, {
      gamma: 1,
      staSamples: idx.length,
      layers: [layer.name],
    });
    means.push(r.layers[layer.name].channelMean.data);
  }
  const present = means.filter((m) => m !== undefined).length;
  const units = means.map((own, c) => {
    if (!own || present < 2) return undefined;
    let best = { channel: 0, selectivity: -Infinity };
    for (let k = 0; k < layer.channels; k++) {
      let others = 0;
      for (const [o, m] of means.entries()) if (o !== c && m) others += m[k] / (present - 1);
      const s = (own[k] - others) / Math.max(channelStd[k], 1e-6);
      if (s > best.selectivity) best = { channel: k, selectivity: s };
    }
    return best;
  });
  return { units, std: channelStd };
}

/** Sweeps each class's most selective unit. */
export async function microstimulationSection(
  ctx: RunContext,
  deltas: readonly number[],
  samples: number,
): Promise<{ microstimulation: Microstimulation[]; section: Section }> {
  const { model, names, classes: C, evalImages, evalLabels } = ctx;
  const layer = stimulationLayer(ctx.info.layers);
  if (!layer) {
    return {
      microstimulation: [],
      section: {
        heading: "Microstimulation",
        intro: `${ctx.info.model} has no hidden layer to stimulate.`,
        items: [],
      },
    };
  }
  // Compute.
  const { units, std } = await selectiveUnits(ctx, layer);
  const microstimulation: Microstimulation[] = [];
  const bar = new ProgressBar("microstimulation");
  for (const [target, unit] of units.entries()) {
    if (!unit) continue;
    const sweep: StimulationPoint[] = [];
    let deltaHalf: number | null = null;
    for (const delta of deltas) {
      model.setStimulation(layer.name, unit.channel, delta * std[unit.channel]);
      try {
        const noise = await model.classify(null, { ...ctx.stream, samples });
        const real = await model.classify(evalImages, {
          gamma: 1,
          batchSize: ctx.stream.batchSize,
        });
        sweep.push({
          delta,
          classShares: tally(noise, C).map((n) => n / samples),
          testAccuracy: perClassAccuracy(real, evalLabels, C).accuracy,
        });
      } finally {
        model.clearStimulation();
      }
      if (sweep.at(-1)!.classShares[target] >= 0.5) {
        deltaHalf = delta;
        break;
      }
    }
    microstimulation.push({ target, layer: layer.name, ...unit, sweep, deltaHalf });
    bar.update(target + 1, C);
  }
  bar.done();

  // Draw.
  const maxDelta = deltas.at(-1);
  const rows = microstimulation.flatMap((m) =>
    m.sweep.map((p) => ({
      t: names[m.target],
      delta: p.delta,
      share: p.classShares[m.target],
    }))
  );
  const items: (Figure | Table)[] = [
    await saveFigure(ctx, {
      name: "microstimulation",
      title: "Microstimulation: share of noise called the target while its unit is driven",
      caption: `For each class, the ${layer.name} unit most selective for it on real test ` +
        `images is shifted by delta × its std over test images while ${
          samples.toLocaleString(
            "en",
          )
        } noise images are shown; the curve is the share of them called that class. Dashed: half.`,
      svg: plotSvg({
        width: 680,
        height: 320,
        marginRight: 100,
        x: { label: "delta (std)", type: "symlog" },
        y: { label: "share called the target", domain: [0, 1], grid: true, tickFormat: "%" },
        color: { domain: names },
        marks: [
          Plot.ruleY([0.5], { stroke: "#999", strokeDasharray: "4 3" }),
          Plot.line(rows, { x: "delta", y: "share", stroke: "t", marker: "circle" }),
          Plot.text(
            rows,
            Plot.selectLast({
              x: "delta",
              y: "share",
              z: "t",
              text: "t",
              fill: "t",
              dx: 4,
              textAnchor: "start",
            }),
          ),
        ],
      }),
    }),
    {
      title: "Microstimulation per class",
      caption: `Selectivity: (mean activation on the class − mean on the others) / std over ` +
        `test images. Delta for half: the first swept delta at which the class wins at least half of ` +
        `the noise samples. Test accuracy on ${evalLabels.length} test images at that delta.`,
      header: [
        "class",
        "unit",
        "selectivity",
        "share at delta 0",
        "delta for half",
        "test accuracy",
      ],
      rows: microstimulation.map((m) => [
        names[m.target],
        `${m.layer}:${m.channel}`,
        m.selectivity.toFixed(2),
        pct(m.sweep[0].classShares[m.target]),
        m.deltaHalf === null ? `never up to ${maxDelta}` : String(m.deltaHalf),
        pct(m.sweep.at(-1)!.testAccuracy),
      ]),
    },
  ];
  const missing = units.flatMap((u, c) => u ? [] : [names[c]]);
  const intro = missing.length
    ? `Not stimulated: ${missing.join(", ")}, with no image among the ${evalLabels.length} ` +
      "test images used (raise --eval-images)."
    : undefined;
  return { microstimulation, section: { heading: "Microstimulation", intro, items } };
}
