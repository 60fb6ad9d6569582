/**
 * `deno task gan`: a GAN trained natively on MNIST, judged by numbers every epoch (Inception
 * score, class histogram and its KL to uniform, Frechet distance, all through zoo net 11.1),
 * with latent interpolation strips and t-SNE maps of generated images, of their latents, and of
 * the classifier's activations on clean and FGSM images. Resumes from its last finished epoch.
 * @module
 */
import { loadDataset } from "../data/datasets.ts";
import { generate } from "../ffi/gan.ts";
import { Model } from "../ffi/model.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { CASE_STUDY_NETS, caseStudyCheckpoint } from "./fgsm.ts";
import { writeGanArrays } from "./gan/arrays.ts";
import { interpolate } from "./gan/interpolation.ts";
import { prepareJudge } from "./gan/judge.ts";
import { measureQuality } from "./gan/quality.ts";
import { writeGanReport } from "./gan/report.ts";
import { GAN_DEFAULTS, GAN_SPECS } from "./gan/specs.ts";
import { bestOf, trainGan } from "./gan/training.ts";
import { tsneMaps } from "./gan/tsne_maps.ts";
import type { GanRunOptions, GanSummary } from "./gan/types.ts";

export type { GanEpoch, GanRunOptions, GanSummary } from "./gan/types.ts";

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
  const { reference } = judge;

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
  const { history, secondsBefore, bestWeights, qualityZ } = await trainGan(
    o,
    { g, d, classifier, reference },
    train,
    settings,
    { epochs, seed, qualitySamples, t0 },
  );

  // The kept generator: the epoch with the lowest Frechet distance.
  const bestEpoch = bestOf(history);
  g.loadWeights(bestWeights);
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

  await writeGanArrays(o.outDir, qualitySamples, bestImages, qualityZ, interpolation, maps);
  const summary = await writeGanReport({
    outDir: o.outDir,
    name,
    specs,
    epochs,
    seed,
    qualitySamples,
    train,
    judge,
    history,
    bestEpoch,
    bestImages,
    bestQuality,
    interpolation,
    maps,
    seconds: secondsBefore + (performance.now() - t0) / 1000,
  });
  log(`wrote ${o.outDir}/report.html`);
  return summary;
}
