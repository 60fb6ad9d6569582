/**
 * Activation maximisation of every class logit and conv channel in one batch, set beside the
 * net's white-noise classification images: each class's maximising image against the mean data
 * noise it called that class.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import { type FeatureVis, maximiseActivation, type Target } from "../../ffi/attribution.ts";
import type { LayerInfo, Model } from "../../ffi/model.ts";
import { type MapGrid, type Table, writeFigure } from "../figures.ts";
import { writeNpy } from "../npy.ts";
import { signed } from "../zoo/train_net.ts";
import { bar } from "./attributions.ts";
import { VISUALISE_DEFAULTS } from "./options.ts";

function pearson(a: Float32Array, b: Float32Array): number {
  let ma = 0, mb = 0;
  for (let i = 0; i < a.length; i++) (ma += a[i]), (mb += b[i]);
  ma /= a.length;
  mb /= b.length;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb + 1e-30);
}

/** What {@linkcode maximisationSection} computes. */
export interface Maximisation {
  convLayers: LayerInfo[];
  fv: FeatureVis;
  /** Per layer, each unit's optimised value minus its best over the test set. */
  gains: Record<string, number[]>;
}

/** Optimises one image per class logit and conv channel; writes `feature-images.npy`. */
export async function maximisationSection(
  model: Model,
  test: Dataset,
  classes: number,
  o: { featureSteps?: number; seed: number; outDir: string; progress: boolean },
): Promise<Maximisation> {
  const D = VISUALISE_DEFAULTS;
  const { seed, outDir, progress } = o;
  const C = classes;
  const convLayers = model.info().layers.filter((l) => l.kind === "conv");
  const targets: Target[] = [
    ...Array.from({ length: C }, (_, unit) => ({ layer: "logits", unit })),
    ...convLayers.flatMap((l) =>
      Array.from({ length: l.channels }, (_, unit) => ({ layer: l.name, unit }))
    ),
  ];
  const fv = await maximiseActivation(
    model,
    { targets, steps: o.featureSteps ?? D.featureSteps, seed },
    test.images,
    bar(`activation maximisation, ${targets.length} units`, progress),
  );
  await writeNpy(`${outDir}/feature-images.npy`, fv.images);
  const gains: Record<string, number[]> = {};
  targets.forEach((t, i) => {
    (gains[t.layer] ??= []).push(fv.values.data[i] - fv.referenceBest!.data[i]);
  });

  return { convLayers, fv, gains };
}

/**
 * The net's classification images under data noise, centred on the mean stimulus, and their
 * correlation with each class logit's maximising image; writes `classification-images.npy`.
 */
export async function noiseComparison(
  model: Model,
  train: Dataset,
  fv: FeatureVis,
  classes: number,
  o: { noiseSamples?: number; seed: number; outDir: string; progress: boolean },
): Promise<{ centred: Float32Array[]; correlation: number[] }> {
  const D = VISUALISE_DEFAULTS;
  const { seed, outDir, progress } = o;
  const C = classes;
  await model.fitDataNoise(train.images);
  const noise = await model.analyse(null, {
    noise: "data",
    samples: o.noiseSamples ?? D.noiseSamples,
    seed,
    layers: [],
  }, bar("classification images (data noise)", progress));
  await writeNpy(`${outDir}/classification-images.npy`, noise.classImages);
  // The maps as departures from the mean stimulus, as the noise-maps report draws them.
  const mean = noise.stimulusMean.data;
  const centred = Array.from({ length: C }, (_, c) => {
    const ci = noise.classImages.data.slice(c * 784, (c + 1) * 784);
    for (let p = 0; p < 784; p++) ci[p] -= mean[p];
    return ci;
  });
  const correlation = centred.map((ci, c) =>
    noise.counts.data[c] > 0 ? pearson(fv.images.data.subarray(c * 784, (c + 1) * 784), ci) : NaN
  );

  return { centred, correlation };
}

/** The class pairs grid, one grid per conv layer's channels, and the class table. */
export async function featureFigures(
  max: Maximisation,
  noise: { centred: Float32Array[]; correlation: number[] },
  names: string[],
  outDir: string,
): Promise<{ pairs: MapGrid; channelGrids: MapGrid[]; classTable: Table }> {
  const { convLayers, fv, gains } = max;
  const { centred, correlation } = noise;
  const C = names.length;
  const classPairs = new Float32Array(2 * C * 784);
  const pairTitles: string[] = [];
  for (let c = 0; c < C; c++) {
    classPairs.set(fv.images.data.subarray(c * 784, (c + 1) * 784), 2 * c * 784);
    classPairs.set(centred[c], (2 * c + 1) * 784);
    pairTitles.push(`${names[c]}: maximised`, `noise map r=${correlation[c].toFixed(2)}`);
  }
  const pairs: MapGrid = {
    kind: "maps",
    name: "class-images-vs-noise-maps",
    title: "Each class logit's maximising image beside its white-noise classification image",
    caption: "Left of each pair: the 28x28 image that maximises the class logit. Right: the " +
      "mean data noise the net called that class, minus the mean noise. Both red where " +
      "brighter than the map's mean, blue where darker. r: their Pearson correlation over " +
      "pixels.",
    maps: classPairs,
    count: 2 * C,
    height: 28,
    width: 28,
    titles: pairTitles,
    // Four pairs per row: five do not fit a 1000-pixel page with their captions.
    columns: 8,
    scale: 3,
    keepRows: true,
  };
  await writeFigure(outDir, pairs);
  const channelGrids: MapGrid[] = [];
  let offset = C;
  for (const l of convLayers) {
    const grid: MapGrid = {
      kind: "maps",
      name: `channels-${l.name}`,
      title: `Activation maximisation of every ${l.name} channel`,
      caption: `The image that maximises each ${l.name} channel's mean activation; under ` +
        "each, its value minus the best test image's.",
      maps: fv.images.data.slice(offset * 784, (offset + l.channels) * 784),
      count: l.channels,
      height: 28,
      width: 28,
      grey: true,
      titles: gains[l.name].map((g, c) => `${c}: ${signed(g)}`),
      columns: 16,
    };
    await writeFigure(outDir, grid);
    channelGrids.push(grid);
    offset += l.channels;
  }
  const classTable: Table = {
    title: "Class logits: optimised image against the best test image",
    caption: "A unit is driven when its optimised value exceeds the best of the test set.",
    header: ["class", "optimised", "best test image", "gain", "r with noise map"],
    rows: names.map((name, c) => [
      name,
      fv.values.data[c].toFixed(2),
      fv.referenceBest!.data[c].toFixed(2),
      gains.logits[c].toFixed(2),
      Number.isNaN(correlation[c]) ? "no samples" : correlation[c].toFixed(2),
    ]),
  };

  return { pairs, channelGrids, classTable };
}
