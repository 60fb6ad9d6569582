/**
 * What a visualise run takes, its defaults, and what it records in `summary.json`.
 * @module
 */
import type { Atlas } from "../atlas.ts";

/** The defaults of a run, defined once. */
export const VISUALISE_DEFAULTS = {
  /** Integrated-gradients steps of the figures, and of the completeness check. */
  igSteps: 50,
  completenessSteps: 200,
  completenessImages: 100,
  smoothSamples: 25,
  smoothSigma: 0.15,
  featureSteps: 256,
  /** Data-noise samples behind the classification images compared with the class images. */
  noiseSamples: 50_000,
  /** Test images behind the activation atlas (the pair atlas uses those of its two classes). */
  atlasImages: 10_000,
  seed: 0,
} as const;

/** Options of {@linkcode runVisualise}. */
export interface VisualiseOptions {
  checkpoint: string;
  outDir: string;
  dataDir?: string;
  seed?: number;
  featureSteps?: number;
  noiseSamples?: number;
  completenessImages?: number;
  atlasImages?: number;
  progress?: boolean;
  log?: (line: string) => void;
}

/** The numbers of a run (`summary.json`). */
export interface VisualiseSummary {
  checkpoint: string;
  dataset: string;
  seed: number;
  /** Largest |sum of IG attributions - (f(x) - f(baseline))| / |f(x) - f(baseline)|. */
  igCompletenessMaxError: number;
  igCompletenessSteps: number;
  /** Per unit: its value at the optimised image minus its best over the test set. */
  activationGainOverBestTestImage: Record<string, number[]>;
  /** Per class: Pearson correlation of the class logit's image and the classification image. */
  classImageVsNoiseMapCorrelation: number[];
  /** The activation atlas of the test images, and of one confusable pair of classes. */
  atlas: AtlasSummary;
  pairAtlas: AtlasSummary & { classes: string[] };
}

/** An atlas's numbers in `summary.json`. */
export type AtlasSummary = Pick<Atlas, "layer" | "purity" | "drivenCells" | "tsne"> & {
  cells: number;
};
