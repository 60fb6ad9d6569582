/**
 * The GAN's training: one epoch at a time, each judged (Inception score, Frechet distance, KL of
 * the class histogram to uniform) and saved, so an interrupted run resumes after its last
 * finished epoch; the epoch with the lowest Frechet distance keeps its generator.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import { ganTrainEpoch, generate } from "../../ffi/gan.ts";
import type { Model } from "../../ffi/model.ts";
import { writeFigure } from "../figures.ts";
import { type PartialModel, resumePartialRun, savePartialRun } from "../partial_run.ts";
import { ProgressBar } from "../progress.ts";
import { digitGrid } from "./digit_grid.ts";
import { latents, STREAMS } from "./latents.ts";
import { measureQuality } from "./quality.ts";
import type { GanEpoch, GanRunOptions } from "./types.ts";

/** The epoch with the lowest Frechet distance. */
export const bestOf = (history: GanEpoch[]) =>
  history.reduce((a, b) => (b.frechet < a.frechet ? b : a)).epoch;

/** What the training leaves: every epoch's scores, and where the kept generator is. */
export interface GanTraining {
  history: GanEpoch[];
  /** Seconds of earlier, resumed runs. */
  secondsBefore: number;
  /** The kept generator's weights. */
  bestWeights: string;
  /** The latents every epoch's quality is measured on. */
  qualityZ: Float32Array;
}

/** What a resumed run must match to continue. */
export type GanSettings = Record<string, unknown>;

/**
 * Trains `g` against `d` up to `epochs`, resuming from `outDir/state` when its settings match.
 * @param t0 when the run started, for the seconds recorded with each save
 */
export async function trainGan(
  o: GanRunOptions,
  nets: { g: Model; d: Model; classifier: Model; reference: Parameters<typeof measureQuality>[2] },
  train: Dataset,
  settings: GanSettings,
  run: { epochs: number; seed: number; qualitySamples: number; t0: number },
): Promise<GanTraining> {
  const log = o.log ?? console.log;
  const { g, d, classifier, reference } = nets;
  const { epochs, seed, qualitySamples, t0 } = run;
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

  return {
    history,
    secondsBefore,
    bestWeights: `${stateDir}/${bestGenerator.weights}`,
    qualityZ,
  };
}
