/**
 * Activation atlases: of the test images, then of one confusable pair of classes alone.
 * @module
 */
import type { Dataset, DatasetName } from "../../data/datasets.ts";
import type { Model } from "../../ffi/model.ts";
import { activationAtlas, type Atlas, ATLAS_DEFAULTS } from "../atlas.ts";
import { writeFigure } from "../figures.ts";
import { writeNpy } from "../npy.ts";
import { bar } from "./attributions.ts";
import { type AtlasSummary, VISUALISE_DEFAULTS } from "./options.ts";

/** The confusable pair of each dataset's class-filtered atlas. */
const ATLAS_PAIRS: Record<DatasetName, [number, number]> = {
  mnist: [4, 9],
  fashion: [6, 0], // shirt and T-shirt/top
};

/** An atlas's numbers for `summary.json`. */
export const atlasSummary = (a: Atlas): AtlasSummary => ({
  layer: a.layer,
  cells: a.cells.length,
  purity: a.purity,
  drivenCells: a.drivenCells,
  tsne: a.tsne,
});

/** Builds and writes both atlases (figures, scatter plots and their images as `.npy`). */
export async function atlasSection(
  model: Model,
  test: Dataset,
  dataset: DatasetName,
  names: string[],
  o: {
    atlasImages?: number;
    featureSteps?: number;
    seed: number;
    outDir: string;
    progress: boolean;
    log: (line: string) => void;
  },
): Promise<{ atlas: Atlas; pairAtlas: Atlas; pairNames: string[] }> {
  const D = VISUALISE_DEFAULTS;
  const { seed, outDir, progress, log } = o;
  const options = o;
  const stage = (label: string) => bar(label, progress);
  const atlasN = Math.min(options.atlasImages ?? D.atlasImages, test.count);
  log("activation atlas …");
  const atlas = await activationAtlas(
    model,
    test.images.subarray(0, atlasN * 784),
    test.labels.subarray(0, atlasN),
    {
      name: "atlas",
      title: `Activation atlas of ${atlasN} test images`,
      classNames: names,
      featureSteps: options.featureSteps,
      seed,
      onProgress: stage,
    },
  );
  const pair = ATLAS_PAIRS[dataset];
  const pick = Array.from(test.labels.subarray(0, atlasN).keys()).filter((i) =>
    pair.includes(test.labels[i])
  );
  const pairImages = new Float32Array(pick.length * 784);
  pick.forEach((p, i) => pairImages.set(test.images.subarray(p * 784, (p + 1) * 784), i * 784));
  const pairNames = pair.map((c) => names[c]);
  const pairAtlas = await activationAtlas(
    model,
    pairImages,
    pick.map((p) => test.labels[p]),
    {
      name: "atlas-pair",
      title: `Activation atlas of ${pairNames.join(" and ")} only (${pick.length} images)`,
      classNames: names,
      grid: ATLAS_DEFAULTS.pairGrid,
      featureSteps: options.featureSteps,
      seed,
      onProgress: stage,
    },
  );
  for (const a of [atlas, pairAtlas]) {
    await writeFigure(outDir, a.figure);
    await writeFigure(outDir, a.scatter);
    await writeNpy(`${outDir}/${a.figure.name}-images.npy`, {
      data: a.images,
      shape: [a.cells.length, 28, 28],
    });
  }
  return { atlas, pairAtlas, pairNames };
}
