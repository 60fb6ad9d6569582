/**
 * Signal in noise: test images faded into the analysis noise (`gamma·image + (1−gamma)·noise`),
 * accuracy per class along the way and the classification images at each gamma.
 * @module
 */
import type { Figure, MapGrid } from "../figures.ts";
import { perClassAccuracy } from "../metrics.ts";
import { Plot, plotSvg } from "../plots.ts";
import { ProgressBar } from "../progress.ts";
import { type RunContext, saveFigure, saveNpy, type Section } from "./context.ts";
import { writeJsonAtomic } from "../files.ts";

/** Accuracy at one gamma. */
export interface GammaPoint {
  gamma: number;
  accuracy: number;
  perClass: number[];
}

/** The gamma sweep and a figure of sample stimuli at `shownGamma`. */
export async function gammaSection(
  ctx: RunContext,
  gammas: readonly number[],
  shownGamma: number,
): Promise<{ gammaAccuracy: GammaPoint[]; section: Section }> {
  const { model, names, classes: C, evalImages, evalLabels } = ctx;
  const evalN = evalLabels.length;
  // Compute: the sweep (maps per gamma need the full analysis) and ten sample stimuli.
  const shown = Math.min(10, evalN);
  const sample = await model.analyse(evalImages.subarray(0, shown * 784), {
    ...ctx.stream,
    gamma: shownGamma,
    staSamples: 0,
    layers: [],
    keepStimuli: shown,
  });
  const gammaAccuracy: GammaPoint[] = [];
  const gammaMaps = new Float32Array(gammas.length * C * 784);
  const bar = new ProgressBar("gamma sweep");
  for (const [gi, g] of gammas.entries()) {
    const res = await model.analyse(evalImages, {
      ...ctx.stream,
      gamma: g,
      staSamples: 0,
      layers: [],
    });
    gammaAccuracy.push({ gamma: g, ...perClassAccuracy(res.predictions!.data, evalLabels, C) });
    gammaMaps.set(res.classImages.data, gi * C * 784);
    bar.update(gi + 1, gammas.length);
  }
  bar.done();
  await saveNpy(ctx, "gamma-sample-stimuli", sample.stimuli!);
  await saveNpy(ctx, "gamma-class-images", { data: gammaMaps, shape: [gammas.length, C, 28, 28] });
  await writeJsonAtomic(`${ctx.outDir}/gamma-accuracy.json`, gammaAccuracy);

  // Draw.
  const items: (Figure | MapGrid)[] = [];
  items.push(
    await saveFigure<MapGrid>(ctx, {
      kind: "maps",
      name: "gamma-sample-stimuli",
      title: `Sample stimuli at gamma = ${shownGamma}`,
      caption: `Top: clean test images; below: the same mixed with noise as ` +
        `gamma·image + (1−gamma)·noise, with the network's answer (✓ right, ✗ wrong).`,
      maps: new Float32Array([...evalImages.subarray(0, shown * 784), ...sample.stimuli!.data]),
      count: 2 * shown,
      height: 28,
      width: 28,
      grey: true,
      columns: shown,
      titles: [
        ...Array.from(evalLabels.subarray(0, shown), (l) => names[l]),
        ...Array.from(
          sample.predictions!.data,
          (p, i) => `${names[p]}${p === evalLabels[i] ? " ✓" : " ✗"}`,
        ),
      ],
    }),
  );
  const lines = gammaAccuracy.flatMap((g) =>
    g.perClass.map((a, c) => ({ g: g.gamma, a, c: names[c] }))
  );
  items.push(
    await saveFigure(ctx, {
      name: "gamma-accuracy",
      title: "Accuracy vs gamma (stimulus = gamma·image + (1−gamma)·noise)",
      caption: `Accuracy on ${evalN} test images as the image fades into noise; one line per ` +
        `class, black the mean. Classes that keep their accuracy at low gamma are the ones ` +
        `the network's bias favours.`,
      svg: plotSvg({
        width: 680,
        height: 320,
        marginRight: 100,
        x: { label: "gamma" },
        y: { label: "accuracy", domain: [0, 1], grid: true },
        color: { domain: names },
        marks: [
          Plot.line(lines, { x: "g", y: "a", stroke: "c" }),
          Plot.text(
            lines,
            Plot.selectLast({
              x: "g",
              y: "a",
              z: "c",
              text: "c",
              fill: "c",
              dx: 4,
              textAnchor: "start",
            }),
          ),
          Plot.line(gammaAccuracy, { x: "gamma", y: "accuracy", stroke: "black", strokeWidth: 2 }),
        ],
      }),
    }),
  );
  items.push(
    await saveFigure<MapGrid>(ctx, {
      kind: "maps",
      name: "gamma-class-images",
      title: "Classification images of the mixed stimuli, one row per gamma",
      caption: "Mean stimulus per predicted class at each gamma (rows from the first gamma of " +
        "the sweep). As gamma grows the maps turn from the noise bias into the class prototypes.",
      maps: gammaMaps,
      count: gammas.length * C,
      height: 28,
      width: 28,
      columns: C,
      scale: 2,
      titles: gammas.flatMap((g) => names.map((n) => `γ=${g.toFixed(1)} ${n}`)),
    }),
  );
  return { gammaAccuracy, section: { heading: "Signal in noise (gamma)", items } };
}
