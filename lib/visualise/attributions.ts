/**
 * Attributions of test images: four methods on one image per class, and integrated gradients'
 * completeness checked over many images at many steps.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import { attribute, type Target } from "../../ffi/attribution.ts";
import type { Model, NdArray } from "../../ffi/model.ts";
import { type MapGrid, writeFigure } from "../figures.ts";
import { writeNpy } from "../npy.ts";
import { ProgressBar } from "../progress.ts";
import { VISUALISE_DEFAULTS, type VisualiseOptions } from "./options.ts";

/** A progress callback drawing a bar labelled `label`, or none. */
export function bar(label: string, on: boolean) {
  const b = new ProgressBar(label);
  return on ? (d: number, t: number) => b.update(d, t) : undefined;
}

/** The first test image of each class. */
export function onePerClass(labels: Uint8Array, classes: number): number[] {
  return Array.from({ length: classes }, (_, c) => labels.indexOf(c));
}

/** Section 1: attributions of one test image per class, to its predicted class. */
export async function attributionsSection(
  model: Model,
  images: Float32Array,
  predicted: number[],
  names: string[],
  o: Required<Pick<VisualiseOptions, "outDir" | "seed">>,
) {
  const D = VISUALISE_DEFAULTS;
  const targets: Target[] = predicted.map((unit) => ({ layer: "logits", unit }));
  const methods = [
    ["saliency", { method: "saliency" }],
    ["gradient x input", { method: "gradient_x_input" }],
    ["IG, black", { method: "integrated_gradients", steps: D.igSteps }],
    ["SmoothGrad", { method: "smooth_grad", samples: D.smoothSamples, sigma: D.smoothSigma }],
  ] as const;
  const n = predicted.length;
  const tiles = new Float32Array(n * (methods.length + 1) * 784);
  const titles: string[] = [];
  const results: NdArray[] = [];
  for (const [, opts] of methods) {
    const r = await attribute(model, images, { ...opts, targets, seed: o.seed });
    results.push(r.attributions);
  }
  for (let i = 0; i < n; i++) {
    const row = i * (methods.length + 1);
    tiles.set(images.subarray(i * 784, (i + 1) * 784), row * 784);
    titles.push(`${names[predicted[i]]}`);
    methods.forEach(([label], m) => {
      tiles.set(results[m].data.subarray(i * 784, (i + 1) * 784), (row + m + 1) * 784);
      titles.push(label);
    });
  }
  for (const [m, [label]] of methods.entries()) {
    const stem = label.replace(/[^a-z]+/gi, "-").toLowerCase();
    await writeNpy(`${o.outDir}/attributions-${stem}.npy`, results[m]);
  }
  const grid: MapGrid = {
    kind: "maps",
    name: "attributions",
    title: "Attributions to the predicted class, one test image per class",
    caption:
      "Each row: the image (titled with the predicted class), then saliency (|gradient|), gradient x input, integrated " +
      `gradients (black baseline, ${D.igSteps} Gauss-Legendre steps) and SmoothGrad ` +
      `(${D.smoothSamples} copies, sigma ${D.smoothSigma}). Red: above the map's mean, blue: ` +
      "below.",
    maps: tiles,
    count: n * (methods.length + 1),
    height: 28,
    width: 28,
    titles,
    columns: methods.length + 1,
    keepRows: true,
    greyColumns: [0],
  };
  await writeFigure(o.outDir, grid);
  return grid;
}

/**
 * Integrated gradients at many steps on the first `m` test images, each to its label: the
 * largest relative gap between the attributions' sum and the change in the logit.
 * @returns that error and `m`; writes `ig-delta.npy`
 */
export async function completenessSection(
  model: Model,
  test: Dataset,
  images: number,
  outDir: string,
  progress: boolean,
): Promise<{ igError: number; m: number }> {
  const D = VISUALISE_DEFAULTS;
  const m = Math.min(images, test.labels.length);
  const ig = await attribute(
    model,
    test.images.subarray(0, m * 784),
    {
      method: "integrated_gradients",
      steps: D.completenessSteps,
      targets: Array.from(test.labels.subarray(0, m), (unit) => ({ layer: "logits", unit })),
    },
    bar(`integrated gradients, ${m} images x ${D.completenessSteps} steps`, progress),
  );
  let igError = 0;
  for (let i = 0; i < m; i++) {
    const change = ig.values.data[i] - ig.baselineValues!.data[i];
    igError = Math.max(igError, Math.abs(ig.delta!.data[i]) / Math.max(Math.abs(change), 1e-6));
  }
  await writeNpy(`${outDir}/ig-delta.npy`, ig.delta!);

  return { igError, m };
}
