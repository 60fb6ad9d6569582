/**
 * What an FGSM run draws and writes: the transfer matrices as CSV, JSON and `.npy`, their
 * heatmaps, accuracy against eps per attacked net, and the adversarial examples.
 * @module
 */
import type { Figure } from "../figures.ts";
import { mapsSvg } from "../figures.ts";
import { writeFileAtomic, writeJsonAtomic } from "../files.ts";
import { encodeNpy } from "../npy.ts";
import { Plot, plotSvg } from "../plots.ts";
import type { AdversarialExample, AttackResult } from "./attack.ts";

/** `0.1` as `0p1`, for file names. */
export const fmtEps = (e: number) => String(e).replace(".", "p");

/** Writes one CSV per eps, `matrices.json` and `matrices.npy` (`[eps, attacked, evaluated]`). */
export async function writeMatrices(
  outDir: string,
  matrices: AttackResult["matrices"],
  labels: string[],
): Promise<void> {
  for (const m of matrices) {
    const csv = [
      ["attacked\\evaluated", ...labels].join(","),
      ...m.matrix.map((row, a) => [labels[a], ...row.map((v) => v.toFixed(4))].join(",")),
    ].join("\n") + "\n";
    await writeFileAtomic(`${outDir}/matrix-eps${fmtEps(m.eps)}.csv`, csv);
  }
  await writeJsonAtomic(`${outDir}/matrices.json`, { labels, matrices });
  await writeFileAtomic(
    `${outDir}/matrices.npy`,
    encodeNpy(new Float32Array(matrices.flatMap((m) => m.matrix.flat())), [
      matrices.length,
      labels.length,
      labels.length,
    ]),
  );
}

/** A figure writer: writes each figure and hands it back. */
export type FigureSink = (f: Figure) => Promise<Figure>;

/** One heatmap per eps, and accuracy against eps with one panel per attacked net. */
export async function transferFigures(
  matrices: AttackResult["matrices"],
  labels: string[],
  fig: FigureSink,
): Promise<{ heatmaps: Figure[]; curves: Figure }> {
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
          width: 120 + 60 * labels.length,
          height: 80 + 40 * labels.length,
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
  const lines = labels.flatMap((_, a) =>
    labels.flatMap((evaluated, b) =>
      matrices.map((m) => ({
        col: a % 3,
        row: Math.floor(a / 3),
        evaluated,
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
      height: 160 * Math.ceil(labels.length / 3),
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

  return { heatmaps, curves };
}

/** Clean images, their FGSM perturbation and the adversarial images, per example eps. */
export async function exampleFigures(
  examples: AdversarialExample[],
  clean: Float32Array,
  cleanPred: number[],
  trueLabels: Uint8Array,
  names: readonly string[],
  attacked: string,
  fig: FigureSink,
): Promise<Figure[]> {
  const k = clean.length / 784;
  const exampleFigures: Figure[] = [];
  for (const ex of examples) {
    const perturbation = ex.adv.map((v, i) => v - clean[i]);
    const svg = [
      mapsSvg(clean, k, 28, 28, {
        grey: true,
        scale: 3,
        heading: "clean",
        titles: cleanPred.map((p, i) => `${names[p]} (true ${names[trueLabels[i]]})`),
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
        title: `Adversarial examples against ${attacked} at eps = ${ex.eps}`,
        caption:
          `Top: test images and ${attacked}'s answer. Middle: the FGSM perturbation eps·sign(gradient), clipped to [0, 1] (red +, blue −). Bottom: the adversarial image and the answer it now gets.`,
        svg: stackSvgs(svg),
      }),
    );
  }

  return exampleFigures;
}

/** Stacks SVG documents vertically into one. */
export function stackSvgs(svgs: string[]): string {
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
