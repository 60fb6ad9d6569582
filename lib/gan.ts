/**
 * `deno task gan`: a GAN trained natively on MNIST, judged by numbers every epoch (Inception
 * score, class histogram and its KL to uniform, Frechet distance, all through zoo net 11.1),
 * with latent interpolation strips and t-SNE maps of generated images, of their latents, and of
 * the classifier's activations on clean and FGSM images. Resumes from its last finished epoch.
 * @module
 */
import { loadDataset } from "../data/datasets.ts";
import { ganTrainEpoch, generate } from "../ffi/gan.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { Model } from "../ffi/model.ts";
import { type Figure, type Table, writeFigure, writeReport } from "./figures.ts";
import { writeJsonAtomic } from "./files.ts";
import { histogramFigure, latentHistogramFigure, qualityFigure } from "./gan/figures.ts";
import { measureQuality } from "./gan/quality.ts";
import { prepareJudge } from "./gan/judge.ts";
import { GAN_DEFAULTS, GAN_SPECS, LATENT_DIM } from "./gan/specs.ts";
import type { MapGrid } from "./map_grid.ts";
import { encodeNpz, writeNpy } from "./npy.ts";
import { ProgressBar } from "./progress.ts";
import { CASE_STUDY_NETS, caseStudyCheckpoint, type CaseStudyTraining } from "./fgsm.ts";
import { interpolate } from "./gan/interpolation.ts";
import { latents, STREAMS } from "./gan/latents.ts";
import { type PartialModel, resumePartialRun, savePartialRun } from "./partial_run.ts";
import { tsneMaps } from "./gan/tsne_maps.ts";
import type { GanEpoch, GanSummary } from "./gan/types.ts";

export type { GanEpoch, GanSummary } from "./gan/types.ts";

/** Options of {@linkcode runGan}. */
export interface GanRunOptions {
  outDir: string;
  /** @default "mlp" */
  gan?: keyof typeof GAN_SPECS;
  epochs?: number;
  seed?: number;
  /** Training images (the first n); all 60,000 by default. */
  trainImages?: number;
  /** Samples behind each epoch's quality numbers. */
  qualitySamples?: number;
  /** Adam's settings and the batch; the native defaults when absent. */
  lr?: number;
  batchSize?: number;
  /** A classifier checkpoint; default: zoo net 11.1 on 60k images (trained once if missing). */
  classifier?: string;
  interpolationPairs?: number;
  /** Generated digits per t-SNE map. @default [1000, 10000] */
  tsneSizes?: number[];
  /** FGSM eps of the N1 activation maps. @default [0.2, 0.6, 1.0] */
  fgsmEps?: number[];
  fgsmImages?: number;
  /** How net N1 is trained when `deno task fgsm` has not cached it (quick runs, tests). */
  n1Training?: CaseStudyTraining;
  dataDir?: string;
  device?: "cpu" | "cuda" | "auto";
  progress?: boolean;
  log?: (line: string) => void;
}

const bestOf = (history: GanEpoch[]) =>
  history.reduce((a, b) => (b.frechet < a.frechet ? b : a)).epoch;

/** A grid of greyscale digits with a title each. */
function digitGrid(
  name: string,
  title: string,
  caption: string,
  images: Float32Array,
  titles?: string[],
  columns = 10,
): MapGrid {
  return {
    kind: "maps",
    name,
    title,
    caption,
    maps: images,
    count: images.length / 784,
    height: 28,
    width: 28,
    titles,
    columns,
    scale: 2,
    grey: true,
    keepRows: true,
  };
}

/**
 * Trains (or resumes) the GAN, then writes per-epoch quality, samples, interpolations, t-SNE
 * maps, arrays, `summary.json` and `report.html` under `outDir`.
 * @param o the GAN, schedule, classifier and output folder
 * @returns the summary
 */
export async function runGan(o: GanRunOptions): Promise<GanSummary> {
  const log = o.log ?? console.log;
  const name = o.gan ?? GAN_DEFAULTS.gan;
  const specs = GAN_SPECS[name];
  if (!specs) {
    throw new RangeError(
      `gan: unknown GAN "${name}" (expected ${Object.keys(GAN_SPECS).join(", ")})`,
    );
  }
  const epochs = o.epochs ?? GAN_DEFAULTS.epochs;
  const seed = o.seed ?? GAN_DEFAULTS.seed;
  const qualitySamples = o.qualitySamples ?? GAN_DEFAULTS.qualitySamples;
  const t0 = performance.now();
  await Deno.mkdir(`${o.outDir}/samples`, { recursive: true });

  // Data and the judge.
  const train = await loadDataset("mnist", "train", { dataDir: o.dataDir, limit: o.trainImages });
  const test = await loadDataset("mnist", "test", { dataDir: o.dataDir });
  const judge = await prepareJudge({
    path: o.classifier,
    train,
    test,
    samples: qualitySamples,
    device: o.device,
    log,
  });
  using classifier = judge.model;
  const { reference, realQuality, frechetEvenOdd } = judge;

  // The networks. D normalises pixels to [-1, 1], the range of G's tanh.
  const norm = { mean: 0.5, std: 0.5, device: o.device };
  using g = Model.create(specs.generator, { ...norm, seed });
  using d = Model.create(specs.discriminator, { ...norm, seed: seed + 1 });
  const settings = {
    gan: name,
    spec: JSON.stringify(specs),
    seed,
    trainImages: train.count,
    qualitySamples,
    lr: o.lr,
    batchSize: o.batchSize,
    judge: judge.path,
  };
  // The state after every epoch; the best epoch's generator is kept beside it.
  const stateDir = `${o.outDir}/state`;
  const networks: PartialModel[] = [
    { model: g, weights: "generator.safetensors", optimizer: "generator-optimizer.safetensors" },
    {
      model: d,
      weights: "discriminator.safetensors",
      optimizer: "discriminator-optimizer.safetensors",
    },
  ];
  const bestGenerator = { model: g, weights: "generator-best.safetensors" };
  const resumed = await resumePartialRun<GanEpoch>(stateDir, networks, settings);
  const history: GanEpoch[] = resumed?.history ?? [];
  if (resumed) log(`resuming after epoch ${history.length} (${stateDir})`);
  const secondsBefore = resumed?.seconds ?? 0;
  const qualityZ = latents(qualitySamples, seed, STREAMS.quality);
  const gridZ = latents(100, seed, STREAMS.grid);

  // Training, judged every epoch.
  for (let epoch = history.length; epoch < epochs; epoch++) {
    const e0 = performance.now();
    const bar = o.progress === false
      ? undefined
      : new ProgressBar(`GAN epoch ${epoch + 1}/${epochs}`);
    const m = await ganTrainEpoch(g, d, train.images, {
      epoch,
      seed,
      lr: o.lr,
      batchSize: o.batchSize,
    }, bar?.callback);
    const q = await measureQuality(classifier, await generate(g, qualityZ), reference);
    const row: GanEpoch = {
      epoch: epoch + 1,
      ...m,
      seconds: (performance.now() - e0) / 1000,
      samples: qualitySamples,
      inceptionScore: q.inceptionScore,
      frechet: q.frechet,
      klToUniform: q.klToUniform,
      histogram: q.histogram,
    };
    history.push(row);
    bar?.done(
      `D loss ${m.discriminatorLoss.toFixed(3)}, G loss ${m.generatorLoss.toFixed(3)}, IS ${
        q.inceptionScore.toFixed(2)
      }, FID ${q.frechet.toFixed(2)}, KL ${q.klToUniform.toFixed(3)}`,
    );
    const grid = await generate(g, gridZ);
    await writeFigure(
      `${o.outDir}/samples`,
      digitGrid(`epoch-${String(epoch + 1).padStart(3, "0")}`, "", "", grid),
    );
    const isBest = bestOf(history) === epoch + 1;
    await savePartialRun(stateDir, isBest ? [...networks, bestGenerator] : networks, {
      settings,
      history,
      seconds: secondsBefore + (performance.now() - t0) / 1000,
    });
  }

  // The kept generator: the epoch with the lowest Frechet distance.
  const bestEpoch = bestOf(history);
  g.loadWeights(`${stateDir}/${bestGenerator.weights}`);
  const bestImages = await generate(g, qualityZ);
  const bestQuality = await measureQuality(classifier, bestImages, reference);
  log(
    `best epoch ${bestEpoch}: Inception score ${bestQuality.inceptionScore.toFixed(2)}, ` +
      `Frechet ${bestQuality.frechet.toFixed(2)}, KL to uniform ${
        bestQuality.klToUniform.toFixed(3)
      }`,
  );

  const interpolation = await interpolate(g, classifier, seed, o.interpolationPairs);
  const n1Path = await caseStudyCheckpoint(
    CASE_STUDY_NETS[0],
    { dataDir: o.dataDir, device: o.device, progress: o.progress, log, ...o.n1Training },
    "mnist",
    0,
  );
  using n1 = (await loadCheckpoint(n1Path, o.device)).model;
  const maps = await tsneMaps({
    g,
    classifier,
    n1,
    test,
    seed,
    sizes: o.tsneSizes ?? GAN_DEFAULTS.tsneSizes,
    eps: o.fgsmEps ?? GAN_DEFAULTS.fgsmEps,
    fgsmImages: o.fgsmImages ?? GAN_DEFAULTS.fgsmImages,
    log,
  });

  // Arrays.
  const keep = Math.min(1000, qualitySamples);
  await writeNpy(`${o.outDir}/samples.npy`, {
    data: bestImages.subarray(0, keep * 784),
    shape: [keep, 28, 28],
  });
  await writeNpy(`${o.outDir}/latents.npy`, {
    data: qualityZ.subarray(0, keep * LATENT_DIM),
    shape: [keep, LATENT_DIM],
  });
  await Deno.writeFile(
    `${o.outDir}/interpolation.npz`,
    encodeNpz({
      images: {
        data: interpolation.images,
        shape: [interpolation.pairs.length, GAN_DEFAULTS.interpolationSteps, 28, 28],
      },
      z1: {
        data: Float32Array.from(interpolation.pairs.flatMap((p) => [...p.z1])),
        shape: [interpolation.pairs.length, LATENT_DIM],
      },
      z2: {
        data: Float32Array.from(interpolation.pairs.flatMap((p) => [...p.z2])),
        shape: [interpolation.pairs.length, LATENT_DIM],
      },
      predictions: { data: interpolation.predictions, shape: [interpolation.predictions.length] },
      confidence: { data: interpolation.confidence, shape: [interpolation.confidence.length] },
    }),
  );
  for (const m of maps) {
    await writeNpy(`${o.outDir}/tsne-${m.name}.npy`, { data: m.embedding, shape: [m.n, 2] });
  }

  // Figures and report.
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
  for (const f of figures) await writeFigure(o.outDir, f);
  const table: Table = {
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
  const seconds = secondsBefore + (performance.now() - t0) / 1000;
  const best = history[bestEpoch - 1];
  const summary: GanSummary = {
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
  await writeJsonAtomic(`${o.outDir}/summary.json`, summary);
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
    `${o.outDir}/report.html`,
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
  log(`wrote ${o.outDir}/report.html`);
  return summary;
}
