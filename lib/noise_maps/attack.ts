/**
 * The targeted black-box attack: add `w ×` the (centred, peak-normalised) classification image
 * of a target class to test images and count how many turn into the target; beside it, a
 * random pattern of the same norm as the control.
 * @module
 */
import type { AnalysisResult } from "../../ffi/model.ts";
import { SeededRandom } from "../random.ts";
import type { Figure, Table } from "../figures.ts";
import { perClassAccuracy } from "../metrics.ts";
import { Plot, plotSvg } from "../plots.ts";
import { ProgressBar } from "../progress.ts";
import { pct, type RunContext, saveFigure, type Section } from "./context.ts";

/** One target at one weight. */
export interface AttackPoint {
  target: number;
  weight: number;
  /** Share of test images of other classes now called the target. */
  successRate: number;
  /** The same with a random pattern of the same L2 norm. */
  controlSuccessRate: number;
  /** Accuracy on all test images with the map added. */
  accuracy: number;
}

/**
 * The classification image proper, `map − mean stimulus` (what drives the class beyond what all
 * noise shares), scaled to a peak deviation of 1.
 */
export function attackPattern(map: Float32Array, stimulusMean: Float32Array): Float32Array {
  const diff = map.map((v, i) => v - stimulusMean[i]);
  let peak = 1e-12;
  for (const v of diff) peak = Math.max(peak, Math.abs(v));
  return diff.map((v) => v / peak);
}

/** Gaussian pixels rescaled to the L2 norm of `like`, from a seeded stream. */
export function controlPattern(like: Float32Array, seed: number, index: number): Float32Array {
  const rng = new SeededRandom(seed, index);
  const out = Float32Array.from(like, () => rng.normal());
  const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
  const k = norm(like) / Math.max(norm(out), 1e-12);
  return out.map((v) => v * k);
}

function successRate(pred: Uint32Array, labels: Uint8Array, target: number): number {
  let hit = 0, others = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === target) continue;
    others++;
    if (pred[i] === target) hit++;
  }
  return hit / Math.max(1, others);
}

/** Attacks every target with its classification image and with a control pattern. */
export async function attackSection(
  ctx: RunContext,
  maps: AnalysisResult,
  weights: readonly number[],
): Promise<{ attack: AttackPoint[]; section: Section }> {
  const { model, names, classes: C, evalImages, evalLabels } = ctx;
  const n = evalLabels.length;
  // Compute: one classify call per pattern runs every weight.
  const attack: AttackPoint[] = [];
  const bar = new ProgressBar("targeted attack");
  for (let target = 0; target < C; target++) {
    const pattern = attackPattern(
      maps.classImages.data.subarray(target * 784, (target + 1) * 784),
      maps.stimulusMean.data,
    );
    const control = controlPattern(pattern, ctx.stream.seed ?? 0, target);
    const opts = { gamma: 1, batchSize: ctx.stream.batchSize, weights: [...weights] };
    const hit = await model.classify(evalImages, { ...opts, pattern });
    const ctl = await model.classify(evalImages, { ...opts, pattern: control });
    weights.forEach((weight, k) => {
      const pred = hit.subarray(k * n, (k + 1) * n);
      attack.push({
        target,
        weight,
        successRate: successRate(pred, evalLabels, target),
        controlSuccessRate: successRate(ctl.subarray(k * n, (k + 1) * n), evalLabels, target),
        accuracy: perClassAccuracy(pred, evalLabels, C).accuracy,
      });
    });
    bar.update(target + 1, C);
  }
  bar.done();

  // Draw.
  const rows = attack.flatMap((a) => [
    { ...a, t: names[a.target], kind: "class image", rate: a.successRate },
    { ...a, t: names[a.target], kind: "random control", rate: a.controlSuccessRate },
  ]);
  const items: (Figure | Table)[] = [
    await saveFigure(ctx, {
      name: "attack",
      title: "Targeted attack: adding w × the target's classification image",
      caption: `Share of the ${n} test images not of the target class that the network assigns ` +
        `to the target after adding the target's classification image (its map minus the mean ` +
        `noise image), scaled to a peak of w pixel units (solid), or a random pattern of the same ` +
        `norm (dashed). One panel per target.`,
      svg: plotSvg({
        width: 680,
        height: 300,
        marginBottom: 40,
        fx: { label: null, domain: names },
        x: { label: "w", ticks: 2 },
        y: { label: "success rate", domain: [0, 1], grid: true, tickFormat: "%" },
        color: { domain: names },
        marks: [
          Plot.line(rows.filter((r) => r.kind === "class image"), {
            fx: "t",
            x: "weight",
            y: "rate",
            stroke: "t",
            strokeWidth: 2,
          }),
          Plot.line(rows.filter((r) => r.kind === "random control"), {
            fx: "t",
            x: "weight",
            y: "rate",
            stroke: "t",
            strokeDasharray: "3 3",
          }),
          Plot.frame({ stroke: "#ddd" }),
        ],
      }),
    }),
    {
      title: "Targeted success rate per target class and weight (class image / random control)",
      caption: "Rows: target class; columns: weight w.",
      header: ["target", ...weights.map((w) => `w=${w}`)],
      rows: names.map((name, t) => [
        name,
        ...weights.map((w) => {
          const a = attack.find((p) => p.target === t && p.weight === w)!;
          return `${pct(a.successRate)} / ${pct(a.controlSuccessRate)}`;
        }),
      ]),
    },
  ];
  return { attack, section: { heading: "Targeted black-box attack", items } };
}
