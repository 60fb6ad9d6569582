/**
 * Every default of the noise-maps run, defined once (those it shares with the analysis API come from `ffi/noise.ts`): the library, the script's `--help` and the
 * README read them from here.
 * @module
 */
import { ANALYSIS_DEFAULTS } from "../../ffi/noise.ts";

/** The noise a noise-maps run analyses with. */
export type NoiseMapsNoise = "data" | "uniform" | "gaussian";

/** Defaults of {@linkcode runNoiseMaps} and `deno task noise-maps`. */
export const NOISE_MAPS_DEFAULTS = {
  /** Noise samples of the main analysis. */
  samples: 1_000_000,
  /** Uniform samples of the raw bias histogram kept beside the main one. */
  rawSamples: 200_000,
  batchSize: ANALYSIS_DEFAULTS.batchSize,
  seed: ANALYSIS_DEFAULTS.seed,
  /**
   * Gaussian noise with the training set's mean and covariance: the maximum-entropy noise with
   * the data's first two moments, which reaches every class of a well-trained net.
   */
  noise: "data" as NoiseMapsNoise,
  /** Contrasts of `data` noise tried by the calibration; the one with the most even bias wins. */
  contrasts: [0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3],
  /** Noise samples per contrast in the calibration. */
  pilotSamples: 5000,
  /** Mean and std of `gaussian` noise, in pixel units. */
  gaussianMean: ANALYSIS_DEFAULTS.noiseMean,
  gaussianStd: ANALYSIS_DEFAULTS.noiseStd,
  /** Top softmax above which a sample enters the thresholded classification images. */
  threshold: ANALYSIS_DEFAULTS.threshold,
  /** Samples feeding the STA and activation statistics: min(samples, this). */
  staSamplesCap: 100_000,
  /** Gamma of the sample-stimulus figure. */
  gamma: 0.5,
  gammas: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
  /** Weights of the targeted attack's pattern (its peak deviation is 1 pixel unit at w = 1). */
  weights: [0, 0.5, 1, 1.5, 2, 3],
  /** Deltas of the microstimulation sweep, in stds of the unit's activation over noise. */
  stimDeltas: [0, 2, 4, 8, 16, 32, 64, 128],
  /** Noise samples per microstimulation point. */
  stimSamples: 5000,
  /** Test images used by the gamma sweep, the attack and microstimulation. */
  evalImages: 2000,
  /** Training epochs when the default model must be trained first. */
  epochs: 5,
} as const;
