/**
 * White-noise analysis across the boundary (`native/src/abi/noise.rs`): the analysis that
 * returns classification images and spike-triggered averages, the cheap classification sweep,
 * the fit behind `data` noise, and template scores. `Model` exposes them as methods.
 * @module
 */
import {
  arraySetCall,
  checkImages,
  type NdArray,
  type ProgressCallback,
  readArrays,
  summaryArray,
  withProgress,
} from "./arrays.ts";
import { call, callAsync, complete, optionsJson } from "./native.ts";

/** The noise a stream is drawn from. */
export type NoiseName = "uniform" | "gaussian" | "data";

/** Defaults of the stimulus stream of {@linkcode analyse} and {@linkcode classify}. */
export const STREAM_DEFAULTS = {
  /** Noise samples when no images are given. */
  samples: 10_000,
  batchSize: 500,
  seed: 0,
  noise: "uniform" as NoiseName,
  /** Gaussian noise's mean and std, in pixel units. */
  noiseMean: 0.5,
  noiseStd: 0.25,
  /** Scale of `data` noise's deviation from the data mean. */
  contrast: 1,
  /** Stimulus = gamma * image + (1 - gamma) * noise. */
  gamma: 0,
} as const;

/** Defaults of {@linkcode analyse} beyond the stream's. */
export const ANALYSIS_DEFAULTS = {
  ...STREAM_DEFAULTS,
  /** Top softmax above which a sample enters the thresholded classification images. */
  threshold: 0.9,
  /** Samples (from the first) that feed STA and activation statistics. */
  staSamples: 10_000,
  /** Layers to analyse; empty: every layer but the logits. */
  layers: [] as readonly string[],
  /** Stimuli returned as `stimuli`, to show what the network saw. */
  keepStimuli: 0,
} as const;

/** Options of the stimulus stream (defaults: {@linkcode STREAM_DEFAULTS}). */
export interface StreamOptions {
  /** Noise samples when no images are given. */
  samples?: number;
  batchSize?: number;
  seed?: number;
  /**
   * `uniform` pixels in [0, 1]; `gaussian` pixels of `noiseMean` and `noiseStd`; `data`: Gaussian
   * with the mean and covariance fitted by {@linkcode fitDataNoise}, scaled by `contrast`.
   */
  noise?: NoiseName;
  /** Gaussian mean in pixel units. */
  noiseMean?: number;
  /** Gaussian std in pixel units. */
  noiseStd?: number;
  /** Scale of `data` noise's deviation from the data mean. */
  contrast?: number;
  /** Stimulus = gamma * image + (1 - gamma) * noise. */
  gamma?: number;
}

/** Options of {@linkcode analyse} (defaults: {@linkcode ANALYSIS_DEFAULTS}). */
export interface AnalysisOptions extends StreamOptions {
  /** Confidence threshold of the thresholded classification images. */
  threshold?: number;
  /** Samples that feed STA and activation statistics. */
  staSamples?: number;
  /** Layers to analyse, the logits too when named; all but the logits by default. */
  layers?: string[];
  /** Return the first n stimuli as `stimuli` (`[n, 28, 28]`). */
  keepStimuli?: number;
}

/** Options of {@linkcode classify}. */
export interface ClassifyOptions extends StreamOptions {
  /** A 784-pixel pattern added to every stimulus, once per weight. */
  pattern?: Float32Array;
  /** Weights of the pattern; one pass over the stimuli each. @default [0] */
  weights?: number[];
}

/** Spike-triggered averages and activation statistics of one layer over a stream. */
export interface LayerStatistics {
  /** Activation-weighted mean stimulus of each channel's centre unit, `[c, 28, 28]`. */
  staCentre: NdArray;
  /** Mean activation of each channel's centre unit, `[c]`. */
  staCentreWeight: NdArray;
  /**
   * Reverse correlation of each channel's centre unit, `E[a x] - E[a] E[x]`, `[c, 28, 28]`:
   * defined for units of any sign (tanh, LSTM, logits), where the activation-weighted mean is
   * not.
   */
  staCentreCov: NdArray;
  /** STA averaged over unit positions, in the receptive field, `[c, rf, rf]` (conv layers). */
  staPatch?: NdArray;
  /** Mean activation per channel and position, `[c, h, w]`. */
  activationMean: NdArray;
  /** Mean and std of each channel's activations, `[c]`. */
  channelMean: NdArray;
  channelStd: NdArray;
}

/** What {@linkcode analyse} returns. */
export interface AnalysisResult {
  /** Samples streamed. */
  samples: number;
  /** Bias histogram: samples per predicted class, `[classes]`. */
  counts: NdArray;
  /** Mean stimulus per predicted class, `[classes, 28, 28]`. */
  classImages: NdArray;
  /** Softmax mass per class, `[classes]`. */
  weightSums: NdArray;
  /** Softmax-weighted mean stimulus per class, `[classes, 28, 28]`. */
  weightedImages: NdArray;
  /** Samples above the confidence threshold per class, `[classes]`. */
  thresholdCounts: NdArray;
  /** Mean stimulus of the confident samples per class, `[classes, 28, 28]`. */
  thresholdImages: NdArray;
  /** Mean stimulus, `[28, 28]`. */
  stimulusMean: NdArray;
  /** The first `keepStimuli` stimuli, `[n, 28, 28]`. */
  stimuli?: NdArray;
  /** With images: the predicted class and top softmax of each. */
  predictions?: NdArray;
  confidence?: NdArray;
  /** Statistics per analysed layer, by layer name. */
  layers: Record<string, LayerStatistics>;
}

/** The exact part of an analysis, as `AnalysisSummary` in `native/src/noise/analyse.rs`. */
interface AnalysisSummary {
  samples: number;
  counts: number[];
  weightSums: number[];
  thresholdCounts: number[];
}

/** The fitted statistics behind `data` noise. */
export interface DataNoiseFit {
  /** Mean image, `[28, 28]`. */
  mean: NdArray;
  /** Lower-triangular Cholesky factor of the covariance, `[784, 784]`. */
  factor: NdArray;
  images: number;
}

/** Every array of an analysis under its native name (`sta/<layer>/centre`, …), for files. */
export function analysisArrays(r: AnalysisResult): Record<string, NdArray> {
  const out: Record<string, NdArray> = {};
  for (const [k, v] of Object.entries(r)) {
    if (k !== "layers" && k !== "samples" && v) out[k] = v as NdArray;
  }
  for (const [name, l] of Object.entries(r.layers)) {
    out[`sta/${name}/centre`] = l.staCentre;
    out[`sta/${name}/centreWeight`] = l.staCentreWeight;
    out[`sta/${name}/centreCov`] = l.staCentreCov;
    if (l.staPatch) out[`sta/${name}/patch`] = l.staPatch;
    out[`act/${name}/mean`] = l.activationMean;
    out[`act/${name}/channelMean`] = l.channelMean;
    out[`act/${name}/channelStd`] = l.channelStd;
  }
  return out;
}

function toAnalysisResult(raw: Record<string, NdArray>, s: AnalysisSummary): AnalysisResult {
  const layers: Record<string, LayerStatistics> = {};
  for (const key of Object.keys(raw)) {
    const m = key.match(/^act\/(.+)\/mean$/);
    if (!m) continue;
    const name = m[1];
    layers[name] = {
      staCentre: raw[`sta/${name}/centre`],
      staCentreWeight: raw[`sta/${name}/centreWeight`],
      staCentreCov: raw[`sta/${name}/centreCov`],
      staPatch: raw[`sta/${name}/patch`],
      activationMean: raw[`act/${name}/mean`],
      channelMean: raw[`act/${name}/channelMean`],
      channelStd: raw[`act/${name}/channelStd`],
    };
  }
  return {
    samples: s.samples,
    counts: summaryArray(s.counts),
    classImages: raw.classImages,
    weightSums: summaryArray(s.weightSums),
    weightedImages: raw.weightedImages,
    thresholdCounts: summaryArray(s.thresholdCounts),
    thresholdImages: raw.thresholdImages,
    stimulusMean: raw.stimulusMean,
    stimuli: raw.stimuli,
    predictions: raw.predictions,
    confidence: raw.confidence,
    layers,
  };
}

/**
 * Streams white noise (or noisy/shifted images) through the model and accumulates
 * classification images, the bias histogram, spike-triggered averages and activation
 * statistics. Memory does not grow with `samples`.
 * @param model the model's handle
 * @param dataNoise the handle of a {@linkcode fitDataNoise} fit, for `noise: "data"`
 * @param images real images to mix with noise, or `null` for pure noise
 */
export async function analyse(
  model: bigint,
  dataNoise: bigint | undefined,
  images: Float32Array | null,
  options: AnalysisOptions = {},
  onProgress?: ProgressCallback,
): Promise<AnalysisResult> {
  if (images) checkImages(images);
  const opts = optionsJson("analyse", {
    ...complete(ANALYSIS_DEFAULTS, options),
    dataNoise: dataNoise === undefined ? null : Number(dataNoise),
  });
  const set = await arraySetCall<AnalysisSummary>(
    (counters, out) =>
      callAsync(
        "wna_analyse",
        model,
        images,
        BigInt(images?.length ?? 0),
        opts,
        BigInt(opts.length),
        counters,
        out,
      ),
    onProgress,
  );
  return toAnalysisResult(set.arrays, set.summary);
}

/**
 * The predicted class of every stimulus, with no maps: the cheap call for sweeps (attack,
 * gamma, microstimulation). With `weights`, one pass per weight of `pattern`.
 * @returns classes, `max(1, weights.length) * n` of them, weight-major
 */
export async function classify(
  model: bigint,
  dataNoise: bigint | undefined,
  images: Float32Array | null,
  options: ClassifyOptions = {},
  onProgress?: ProgressCallback,
): Promise<Uint32Array> {
  const { pattern, weights = [], ...stream } = options;
  const full = complete(STREAM_DEFAULTS, stream);
  const opts = optionsJson("classify", {
    ...full,
    dataNoise: dataNoise === undefined ? null : Number(dataNoise),
  });
  const n = images ? checkImages(images) : full.samples;
  if (pattern && pattern.length !== 784) {
    throw new RangeError(`classify: pattern must have 784 values, got ${pattern.length}`);
  }
  const w = new Float32Array(weights);
  const out = new Uint32Array(Math.max(1, w.length) * n);
  await withProgress((counters) =>
    callAsync(
      "wna_classify",
      model,
      images,
      BigInt(images?.length ?? 0),
      pattern ?? null,
      BigInt(pattern?.length ?? 0),
      w,
      BigInt(w.length),
      opts,
      BigInt(opts.length),
      counters,
      out,
      BigInt(out.length),
    ), onProgress);
  return out;
}

/**
 * Fits `data` noise: the mean and covariance of `images`, on the model's device.
 * @param images n x 784 pixels (n >= 2), e.g. the training set
 * @returns the fit's handle (free it with `wna_free`) and its mean and Cholesky factor
 */
export async function fitDataNoise(
  model: bigint,
  images: Float32Array,
): Promise<{ handle: bigint; fit: DataNoiseFit }> {
  checkImages(images);
  const fit = new BigUint64Array(1);
  const arrays = new BigUint64Array(1);
  await callAsync("wna_fit_data_noise", model, images, BigInt(images.length), fit, arrays);
  const set = readArrays<{ images: number }>(arrays[0]);
  return {
    handle: fit[0],
    fit: { mean: set.arrays.mean, factor: set.arrays.factor, images: set.summary.images },
  };
}

/**
 * Cosine-similarity scores of images against class templates. Templates are taken relative to
 * their mean over classes; images relative to `centre` (e.g. the noise's mean image), or to their
 * own mean pixel without it.
 * @param templates classes x 784 values
 * @param images n x 784 pixels
 * @param centre 784 values subtracted from every image
 * @returns n x classes scores
 */
export async function templateScores(
  templates: Float32Array,
  images: Float32Array,
  centre?: Float32Array,
): Promise<Float32Array> {
  const n = checkImages(images);
  const classes = checkImages(templates, "templates");
  const out = new Float32Array(n * classes);
  await callAsync(
    "wna_template_scores",
    templates,
    BigInt(classes),
    images,
    BigInt(images.length),
    centre ?? null,
    BigInt(centre?.length ?? 0),
    out,
    BigInt(out.length),
  );
  return out;
}

/** Frees a data-noise fit's handle. */
export function freeDataNoise(handle: bigint): void {
  call("wna_free", handle);
}
