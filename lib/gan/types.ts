/**
 * What a GAN run records: each epoch's scores and the run's `summary.json`. Apart from the run
 * (`../gan.ts`), so that its figures can read them without importing the run.
 * @module
 */
import type { GanEpochMetrics } from "../../ffi/gan.ts";
import type { Quality } from "./quality.ts";
import type { GAN_SPECS, GanSpecs } from "./specs.ts";
import type { CaseStudyTraining } from "../fgsm/nets.ts";
import type { TsneMap } from "./tsne_maps.ts";

/** One epoch of the run. */
export interface GanEpoch extends GanEpochMetrics {
  epoch: number;
  seconds: number;
  samples: number;
  inceptionScore: number;
  frechet: number;
  klToUniform: number;
  histogram: number[];
}

/** `summary.json` of a run. */
export interface GanSummary {
  /** The kept epoch's scores, and the test set's Inception score through the same judge. */
  inceptionScore: number;
  inceptionScoreReal: number;
  fid: number;
  classHistogram: number[];
  klToUniform: number;
  /** Mean seconds per epoch (training plus that epoch's scoring). */
  epochSeconds: number;
  gan: string;
  generator: GanSpecs["generator"];
  discriminator: GanSpecs["discriminator"];
  epochs: number;
  seed: number;
  trainImages: number;
  classifier: { path: string; testAccuracy?: number };
  /** The test set through the same classifier: the ceiling the samples are measured against. */
  real: Omit<Quality, "frechet"> & { frechetEvenOdd: number };
  history: GanEpoch[];
  /** The epoch with the lowest Frechet distance; its generator is kept and analysed. */
  bestEpoch: number;
  best: GanEpoch & { inceptionSplits: Quality["inceptionSplits"] };
  interpolation: {
    pairs: number;
    steps: number;
    /** Strips whose predicted class changes between the ends. */
    changingClass: number;
  };
  tsne: Omit<TsneMap, "embedding" | "figure">[];
  seconds: number;
}

/** Options of `runGan`. */
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
