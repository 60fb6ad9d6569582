/**
 * The GAN run's figures, `summary.json` and `report.html`.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import { type Figure, type Table, writeFigure, writeReport } from "../figures.ts";
import { writeJsonAtomic } from "../files.ts";
import type { MapGrid } from "../map_grid.ts";
import type { Interpolation } from "./arrays.ts";
import { digitGrid } from "./digit_grid.ts";
import { histogramFigure, latentHistogramFigure, qualityFigure } from "./figures.ts";
import type { prepareJudge } from "./judge.ts";
import type { measureQuality } from "./quality.ts";
import { GAN_DEFAULTS, type GanSpecs, LATENT_DIM } from "./specs.ts";
import type { TsneMap } from "./tsne_maps.ts";
import type { GanEpoch, GanSummary } from "./types.ts";

/** What the report draws from: the run's settings, history and measurements. */
export interface GanResults {
  outDir: string;
  name: string;
  specs: GanSpecs;
  epochs: number;
  seed: number;
  qualitySamples: number;
  train: Dataset;
  judge: Awaited<ReturnType<typeof prepareJudge>>;
  history: GanEpoch[];
  bestEpoch: number;
  bestImages: Float32Array;
  bestQuality: Awaited<ReturnType<typeof measureQuality>>;
  interpolation: Interpolation;
  maps: TsneMap[];
  seconds: number;
}

/** The per-epoch table of losses, discriminator outputs and quality. */
function qualityTable(history: GanEpoch[], qualitySamples: number): Table {
  return {
    title: "Quality per epoch",
    caption: `Inception score (IS), Frechet distance (FID) in the classifier's penultimate ` +
      `features, and KL of the class histogram to uniform, over ${qualitySamples} samples; ` +
      "D(x) and D(G(z)): the discriminator's mean output on real and fake batches.",
    header: ["epoch", "D loss", "G loss", "D(x)", "D(G(z))", "IS", "FID", "KL", "s"],
    rows: history.map((e) => [
      e.epoch,
      e.discriminatorLoss.toFixed(3),
      e.generatorLoss.toFixed(3),
      e.dReal.toFixed(3),
      e.dFake.toFixed(3),
      e.inceptionScore.toFixed(2),
      e.frechet.toFixed(2),
      e.klToUniform.toFixed(3),
      e.seconds.toFixed(0),
    ]),
  };
}

/** `summary.json`: the kept epoch's scores beside the test set's, and the run's settings. */
function ganSummary(r: GanResults): GanSummary {
  const { name, specs, epochs, seed, train, judge, history, bestEpoch, bestQuality } = r;
  const { interpolation, maps, seconds } = r;
  const { realQuality, frechetEvenOdd } = judge;
  const best = history[bestEpoch - 1];
  return {
    inceptionScore: best.inceptionScore,
    inceptionScoreReal: realQuality.inceptionScore,
    fid: best.frechet,
    classHistogram: best.histogram,
    klToUniform: best.klToUniform,
    epochSeconds: history.reduce((a, e) => a + e.seconds, 0) / history.length,
    gan: name,
    generator: specs.generator,
    discriminator: specs.discriminator,
    epochs,
    seed,
    trainImages: train.count,
    classifier: { path: judge.path, testAccuracy: judge.accuracy },
    real: {
      inceptionScore: realQuality.inceptionScore,
      inceptionSplits: realQuality.inceptionSplits,
      histogram: realQuality.histogram,
      klToUniform: realQuality.klToUniform,
      frechetEvenOdd,
    },
    history,
    bestEpoch,
    best: { ...best, inceptionSplits: bestQuality.inceptionSplits },
    interpolation: {
      pairs: interpolation.pairs.length,
      steps: GAN_DEFAULTS.interpolationSteps,
      changingClass: interpolation.changing,
    },
    tsne: maps.map(({ embedding: _, figure: __, ...m }) => m),
    seconds,
  };
}

/** Writes the figures, `summary.json` and `report.html`; returns the summary. */
export async function writeGanReport(r: GanResults): Promise<GanSummary> {
  const { outDir, name, epochs, seed, qualitySamples, train, judge, history } = r;
  const { bestEpoch, bestImages, bestQuality, interpolation, maps, seconds } = r;
  const { realQuality, frechetEvenOdd } = judge;
  const quality = qualityFigure(
    history,
    { inceptionScore: realQuality.inceptionScore, frechetEvenOdd },
    bestEpoch,
  );
  const histogram = histogramFigure(
    bestQuality.histogram,
    realQuality.histogram,
    bestQuality.klToUniform,
    realQuality.klToUniform,
  );
  const samples = digitGrid(
    "samples",
    `Samples of epoch ${bestEpoch}`,
    `100 samples of the kept generator (epoch ${bestEpoch}), each titled with the judging ` +
      "classifier's predicted digit and confidence.",
    bestImages.subarray(0, 100 * 784),
    Array.from(
      { length: 100 },
      (_, i) => `${bestQuality.predictions[i]} ${(100 * bestQuality.confidence[i]).toFixed(0)}%`,
    ),
  );
  const strips = digitGrid(
    "interpolation",
    "Latent interpolation",
    `Each row: G(a z1 + (1 - a) z2) for a = 0, 0.1, ..., 1 (z2 on the left, z1 on the right), ` +
      `for ${interpolation.pairs.length} seeded pairs; titled with the predicted digit and its ` +
      `confidence. ${interpolation.changing} of ${interpolation.pairs.length} strips change ` +
      "class on the way.",
    interpolation.images,
    Array.from(
      interpolation.predictions,
      (p, i) => `${p} ${(100 * interpolation.confidence[i]).toFixed(0)}%`,
    ),
    GAN_DEFAULTS.interpolationSteps,
  );
  const latentsFigure = latentHistogramFigure(interpolation.pairs);
  const figures: (Figure | MapGrid)[] = [
    quality,
    histogram,
    samples,
    strips,
    latentsFigure,
    ...maps.map((m) => m.figure),
  ];
  for (const f of figures) await writeFigure(outDir, f);
  const table = qualityTable(history, qualitySamples);
  const summary = ganSummary(r);
  const best = history[bestEpoch - 1];
  await writeJsonAtomic(`${outDir}/summary.json`, summary);
  const sections = [
    {
      heading: "Quality per epoch",
      intro: `The generator is kept at epoch ${bestEpoch}, where the Frechet distance is lowest ` +
        `(${best.frechet.toFixed(2)}; the test set's even and odd images are ${
          frechetEvenOdd.toFixed(2)
        } apart). Its Inception score is ${best.inceptionScore.toFixed(2)} against the test ` +
        `set's ${realQuality.inceptionScore.toFixed(2)}, and its class histogram is ${
          best.klToUniform.toFixed(3)
        } nats from uniform (the test set: ${realQuality.klToUniform.toFixed(3)}).`,
      items: [quality, table, histogram],
    },
    { heading: "Samples", items: [samples] },
    { heading: "Latent interpolation", items: [strips, latentsFigure] },
    { heading: "t-SNE maps", items: maps.map((m) => m.figure) },
  ];
  await writeReport(
    `${outDir}/report.html`,
    `GAN on MNIST: ${name}`,
    `A ${name} GAN (z ~ N(0, 1) in ${LATENT_DIM} dimensions) trained on ${train.count} MNIST ` +
      `images for ${epochs} epochs, seed ${seed}, judged by ${judge.path} (test accuracy ${
        ((judge.accuracy ?? NaN) * 100).toFixed(2)
      }%). ${seconds.toFixed(0)} s in all. Arrays: <code>samples.npy</code>, ` +
      "<code>latents.npy</code>, <code>interpolation.npz</code>, <code>tsne-*.npy</code>; " +
      "the generator of every epoch's state and the kept one under <code>state/</code>; one " +
      "sample grid per epoch under <code>samples/</code>.",
    sections,
  );
  return summary;
}
