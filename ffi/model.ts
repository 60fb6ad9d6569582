/**
 * `Model`: a handle on a native network, with prediction, training, white-noise analysis and
 * input gradients.
 * @module
 */
import { NativeError, StatusCode, unwrap } from "./errors.ts";
import { errorBuffer, native, optionsJson, readText, utf8 } from "./native.ts";
import { NativeHandle } from "./handle.ts";
import { type NdArray, type ProgressCallback, readArrays, withProgress } from "./arrays.ts";

export type { NdArray, ProgressCallback };
import type { NetSpec } from "./spec.ts";

/** Names of the built-in networks. */
export const MODEL_NAMES = [
  "smaller",
  "larger",
  "mlp",
  "logreg",
  "n1",
  "n2",
  "n3",
  "rnn",
  "lstm",
  "lenet5",
] as const;
/** A built-in network's name. */
export type ModelName = typeof MODEL_NAMES[number];

/** Options for {@linkcode Model.create}. */
export interface ModelOptions {
  /** Number of classes of a built-in network (a spec sets its own). @default 10 */
  classes?: number;
  /** Residual blocks per stage of the built-in `larger`. @default [2, 1, 3, 2] */
  blocks?: number[];
  /** Seed of the weight initialisation. @default 0 */
  seed?: number;
  /** Pixel mean used to normalise inputs. @default 0 */
  mean?: number;
  /** Pixel standard deviation used to normalise inputs. @default 1 */
  std?: number;
  /** Device to run on. @default "cpu" */
  device?: "cpu" | "cuda" | "auto";
}

/** A tappable layer as reported by the native library. */
export interface LayerInfo {
  name: string;
  kind: "conv" | "fc";
  channels: number;
  height: number;
  width: number;
  /** Receptive-field size on the input, in pixels. */
  rf: number;
  stride: number;
  offset: number;
}

/** What {@linkcode Model.info} returns. */
export interface ModelInfo {
  /** The spec's name: a built-in name, or the user's. */
  model: string;
  classes: number;
  /** The network, layer by layer: stored in checkpoint sidecars, enough to rebuild it. */
  spec: NetSpec;
  parameters: number;
  layers: LayerInfo[];
  mean: number;
  std: number;
  device: "cpu" | "cuda";
  step: number;
}

/** Loss and accuracy of a pass over a dataset. */
export interface Metrics {
  loss: number;
  accuracy: number;
}

/** Options of one training epoch. */
export interface EpochOptions {
  /** @default 128 */
  batchSize?: number;
  /** @default 1e-3 */
  lrMax?: number;
  /** @default 1e-5 */
  lrMin?: number;
  /** @default 1e-4 */
  weightDecay?: number;
  /** Steps of the whole run, where the cosine schedule ends. */
  totalSteps: number;
  /**
   * `adam` (decoupled weight decay, PyTorch's AdamW), `sgd` (with momentum) or `adadelta`
   * (rho 0.9, eps 1e-6; its usual learning rate is 1).
   * @default "adam"
   */
  optimizer?: OptimizerName;
  /** SGD momentum. @default 0.9 */
  momentum?: number;
  /** @default false */
  nesterov?: boolean;
  /** @default 0 */
  seed?: number;
  /** Epoch index, which keys the shuffle. */
  epoch: number;
  /**
   * MixUp: each batch mixed with itself rolled by one, one lambda ~ Beta(1, 1) per batch, the
   * loss mixed the same way. @default false
   */
  mixup?: boolean;
}

/** The optimisers of {@linkcode Model.trainEpoch}. */
export type OptimizerName = "adam" | "sgd" | "adadelta";

/** The noise a stream is drawn from. */
export type NoiseName = "uniform" | "gaussian" | "data";

/** Options of the stimulus stream shared by {@linkcode Model.analyse} and {@linkcode Model.classify}. */
export interface StreamOptions {
  /** Noise samples when no images are given. @default 10000 */
  samples?: number;
  /** @default 500 */
  batchSize?: number;
  /** @default 0 */
  seed?: number;
  /**
   * `uniform` pixels in [0, 1]; `gaussian` pixels of `noiseMean` and `noiseStd`; `data`: Gaussian
   * with the mean and covariance fitted by {@linkcode Model.fitDataNoise}, scaled by `contrast`.
   * @default "uniform"
   */
  noise?: NoiseName;
  /** Gaussian mean in pixel units. @default 0.5 */
  noiseMean?: number;
  /** Gaussian std in pixel units. @default 0.25 */
  noiseStd?: number;
  /** Scale of `data` noise's deviation from the data mean. @default 1 */
  contrast?: number;
  /** Stimulus = gamma * image + (1 - gamma) * noise. @default 0 */
  gamma?: number;
}

/** Options of {@linkcode Model.analyse}. */
export interface AnalysisOptions extends StreamOptions {
  /** Confidence threshold of the thresholded classification images. @default 0.9 */
  threshold?: number;
  /** Samples that feed STA and activation statistics. @default 10000 */
  staSamples?: number;
  /** Layers to analyse, the logits too when named; all but the logits by default. */
  layers?: string[];
  /** Return the first n stimuli as `stimuli` (`[n, 28, 28]`). @default 0 */
  keepStimuli?: number;
}

/** Options of {@linkcode Model.classify}. */
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

/** What {@linkcode Model.analyse} returns. */
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

function toAnalysisResult(raw: Record<string, NdArray>): AnalysisResult {
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
    samples: raw.samples.data[0],
    counts: raw.counts,
    classImages: raw.classImages,
    weightSums: raw.weightSums,
    weightedImages: raw.weightedImages,
    thresholdCounts: raw.thresholdCounts,
    thresholdImages: raw.thresholdImages,
    stimulusMean: raw.stimulusMean,
    stimuli: raw.stimuli,
    predictions: raw.predictions,
    confidence: raw.confidence,
    layers,
  };
}

function checkImages(images: Float32Array, what = "images"): number {
  if (!(images instanceof Float32Array) || images.length === 0 || images.length % 784 !== 0) {
    throw new RangeError(
      `${what}: expected a non-empty Float32Array of n x 784 pixels, got ${
        images?.length ?? typeof images
      } values`,
    );
  }
  return images.length / 784;
}

/**
 * A native network. Free it with `using` or `close()`.
 *
 * @example
 * ```ts
 * import { Model } from "./model.ts";
 * using model = Model.create("logreg", { seed: 1 });
 * const logits = await model.predict(new Float32Array(784));
 * console.assert(logits.length === 10);
 * ```
 */
export class Model extends NativeHandle {
  #info: ModelInfo | undefined;

  private constructor(handle: bigint) {
    super(handle, "model");
  }

  /**
   * Builds a freshly initialised network.
   * @param network one of {@linkcode MODEL_NAMES}, or a {@linkcode NetSpec}
   * @param options classes, seed, normalisation, device
   * @returns the model
   */
  static create(network: string | NetSpec, options: ModelOptions = {}): Model {
    if (typeof network === "string" && !(MODEL_NAMES as readonly string[]).includes(network)) {
      throw new NativeError(
        StatusCode.UnknownModel,
        `unknown model "${network}" (expected ${MODEL_NAMES.join(", ")}, or pass a spec)`,
      );
    }
    const which = typeof network === "string" ? { model: network } : { spec: network };
    const spec = optionsJson("model", { ...which, ...options });
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    // The first model opens the library: the CUDA build when it asks for cuda or auto.
    const lib = native(options.device);
    unwrap(lib.wna_model_new(spec, BigInt(spec.length), out, err, BigInt(err.length)), err);
    return new Model(out[0]);
  }

  /** @returns name, parameter count, layers with shapes and receptive fields */
  info(): ModelInfo {
    if (this.#info) return this.#info;
    const h = this.handle;
    const lib = native();
    const text = readText((buf, len, err) =>
      lib.wna_model_info(h, buf, BigInt(buf.length), len, err, BigInt(err.length))
    );
    this.#info = JSON.parse(text) as ModelInfo;
    return this.#info;
  }

  #io(path: string, what: 0 | 1, save: 0 | 1): void {
    const p = utf8(path);
    const err = errorBuffer();
    unwrap(
      native().wna_model_io(this.handle, p, BigInt(p.length), what, save, err, BigInt(err.length)),
      err,
    );
  }

  /** Writes the weights (batch-norm statistics included) as safetensors, atomically. */
  saveWeights(path: string): void {
    const tmp = `${path}.${Deno.pid}.tmp`;
    this.#io(tmp, 0, 1);
    Deno.renameSync(tmp, path);
  }

  /** Loads safetensors weights saved from the same architecture. */
  loadWeights(path: string): void {
    this.#io(path, 0, 0);
    this.#info = undefined;
  }

  /** Writes the optimiser state (for `--resume`), atomically. */
  saveOptimizer(path: string): void {
    const tmp = `${path}.${Deno.pid}.tmp`;
    this.#io(tmp, 1, 1);
    Deno.renameSync(tmp, path);
  }

  /** Restores the optimiser state written by {@linkcode Model.saveOptimizer}. */
  loadOptimizer(path: string): void {
    this.#io(path, 1, 0);
    this.#info = undefined;
  }

  /**
   * Logits of pixel-space images (values in [0, 1]).
   * @param images n x 784 pixels
   * @returns n x classes logits
   */
  async predict(images: Float32Array): Promise<Float32Array> {
    const n = checkImages(images);
    const out = new Float32Array(n * this.info().classes);
    const err = errorBuffer();
    unwrap(
      await native().wna_predict(
        this.handle,
        images,
        BigInt(images.length),
        out,
        BigInt(out.length),
        err,
        BigInt(err.length),
      ),
      err,
    );
    return out;
  }

  /**
   * Activations of a named layer (see `info().layers`).
   * @param images n x 784 pixels
   * @param layer layer name, e.g. "conv1"
   * @returns n x channels x height x width values
   */
  async activations(images: Float32Array, layer: string): Promise<Float32Array> {
    const n = checkImages(images);
    const info = this.info().layers.find((l) => l.name === layer);
    if (!info) {
      throw new RangeError(
        `unknown layer "${layer}" (expected ${this.info().layers.map((l) => l.name).join(", ")})`,
      );
    }
    const out = new Float32Array(n * info.channels * info.height * info.width);
    const name = utf8(layer);
    const err = errorBuffer();
    unwrap(
      await native().wna_activations(
        this.handle,
        images,
        BigInt(images.length),
        name,
        BigInt(name.length),
        out,
        BigInt(out.length),
        err,
        BigInt(err.length),
      ),
      err,
    );
    return out;
  }

  /** Adds `delta` to `channel` of `layer` in every inference pass until cleared. */
  setStimulation(layer: string, channel: number, delta: number): void {
    const name = utf8(layer);
    const err = errorBuffer();
    unwrap(
      native().wna_set_stimulation(
        this.handle,
        name,
        BigInt(name.length),
        BigInt(channel),
        delta,
        err,
        BigInt(err.length),
      ),
      err,
    );
  }

  /** Removes any stimulation. */
  clearStimulation(): void {
    this.setStimulation("", -1, 0);
  }

  /**
   * Trains one epoch on shuffled mini-batches.
   * @param images n x 784 pixels
   * @param labels n class ids
   * @param options schedule, optimiser, seed
   * @param onProgress called with images done so far
   * @returns mean training loss and accuracy
   */
  async trainEpoch(
    images: Float32Array,
    labels: Uint8Array,
    options: EpochOptions,
    onProgress?: ProgressCallback,
  ): Promise<Metrics> {
    checkImages(images);
    const opts = optionsJson("trainEpoch", options);
    const metrics = new Float64Array(2);
    const err = errorBuffer();
    const h = this.handle;
    await withProgress(async (counters) =>
      unwrap(
        await native().wna_train_epoch(
          h,
          images,
          BigInt(images.length),
          labels,
          BigInt(labels.length),
          opts,
          BigInt(opts.length),
          counters,
          metrics,
          err,
          BigInt(err.length),
        ),
        err,
      ), onProgress);
    this.#info = undefined;
    return { loss: metrics[0], accuracy: metrics[1] };
  }

  /** Loss and accuracy in inference mode. */
  async evaluate(
    images: Float32Array,
    labels: Uint8Array,
    onProgress?: ProgressCallback,
  ): Promise<Metrics> {
    checkImages(images);
    const metrics = new Float64Array(2);
    const err = errorBuffer();
    const h = this.handle;
    await withProgress(async (counters) =>
      unwrap(
        await native().wna_evaluate(
          h,
          images,
          BigInt(images.length),
          labels,
          BigInt(labels.length),
          counters,
          metrics,
          err,
          BigInt(err.length),
        ),
        err,
      ), onProgress);
    return { loss: metrics[0], accuracy: metrics[1] };
  }

  /**
   * Streams white noise (or noisy/shifted images) through the model and accumulates
   * classification images, the bias histogram, spike-triggered averages and activation
   * statistics. Memory does not grow with `samples`.
   * @param images real images to mix with noise, or `null` for pure noise
   * @param options samples, noise, gamma, pattern, layers
   * @param onProgress called with samples done so far
   * @returns the bias histogram, the classification images and per-layer statistics
   */
  async analyse(
    images: Float32Array | null,
    options: AnalysisOptions = {},
    onProgress?: ProgressCallback,
  ): Promise<AnalysisResult> {
    if (images) checkImages(images);
    const opts = optionsJson("analyse", options);
    return toAnalysisResult(
      await arraySetCall("wna_analyse", this.handle, images, opts, onProgress),
    );
  }

  /**
   * The predicted class of every stimulus, with no maps: the cheap call for sweeps (attack,
   * gamma, microstimulation). With `weights`, one pass per weight of `pattern`.
   * @param images real images to mix with noise, or `null` for pure noise
   * @param options stream, pattern and weights
   * @param onProgress called with stimuli done so far
   * @returns classes, `max(1, weights.length) * n` of them, weight-major
   */
  async classify(
    images: Float32Array | null,
    options: ClassifyOptions = {},
    onProgress?: ProgressCallback,
  ): Promise<Uint32Array> {
    const { pattern, weights = [], ...stream } = options;
    const opts = optionsJson("classify", stream);
    const n = images ? checkImages(images) : stream.samples ?? 10_000;
    if (pattern && pattern.length !== 784) {
      throw new RangeError(`classify: pattern must have 784 values, got ${pattern.length}`);
    }
    const w = new Float32Array(weights);
    const out = new Uint32Array(Math.max(1, w.length) * n);
    const err = errorBuffer();
    const h = this.handle;
    await withProgress(async (counters) =>
      unwrap(
        await native().wna_classify(
          h,
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
          err,
          BigInt(err.length),
        ),
        err,
      ), onProgress);
    return out;
  }

  /**
   * Fits `data` noise: the mean and covariance of `images`, kept in the model for later
   * `noise: "data"` streams.
   * @param images n x 784 pixels (n >= 2), e.g. the training set
   * @returns the fitted mean and Cholesky factor
   */
  async fitDataNoise(images: Float32Array): Promise<DataNoiseFit> {
    checkImages(images);
    const out = new BigUint64Array(1);
    const err = errorBuffer();
    unwrap(
      await native().wna_fit_data_noise(
        this.handle,
        images,
        BigInt(images.length),
        out,
        err,
        BigInt(err.length),
      ),
      err,
    );
    const raw = readArrays(out[0]);
    return { mean: raw.mean, factor: raw.factor, images: raw.images.data[0] };
  }

  /**
   * Gradient of the summed cross-entropy with respect to the pixels, in inference mode.
   * @returns gradients (n x 784) and the summed loss
   */
  async inputGradients(
    images: Float32Array,
    labels: Uint8Array,
  ): Promise<{ gradients: Float32Array; loss: number }> {
    checkImages(images);
    const out = new Float32Array(images.length);
    const loss = new Float64Array(1);
    const err = errorBuffer();
    unwrap(
      await native().wna_input_gradients(
        this.handle,
        images,
        BigInt(images.length),
        labels,
        BigInt(labels.length),
        out,
        BigInt(out.length),
        loss,
        err,
        BigInt(err.length),
      ),
      err,
    );
    return { gradients: out, loss: loss[0] };
  }

  /** FGSM adversarial images `clip(x + eps * sign(grad), 0, 1)`. */
  async fgsm(images: Float32Array, labels: Uint8Array, eps: number): Promise<Float32Array> {
    checkImages(images);
    const out = new Float32Array(images.length);
    const err = errorBuffer();
    unwrap(
      await native().wna_fgsm(
        this.handle,
        images,
        BigInt(images.length),
        labels,
        BigInt(labels.length),
        eps,
        out,
        BigInt(out.length),
        err,
        BigInt(err.length),
      ),
      err,
    );
    return out;
  }
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
  const err = errorBuffer();
  unwrap(
    await native().wna_template_scores(
      templates,
      BigInt(classes),
      images,
      BigInt(images.length),
      centre ?? null,
      BigInt(centre?.length ?? 0),
      out,
      BigInt(out.length),
      err,
      BigInt(err.length),
    ),
    err,
  );
  return out;
}

/**
 * @internal Runs one of the exports that stream images (or none) through a model and return an
 * array set (`handle, pixels, n, options, options_len, progress, out, err, err_cap`), with
 * progress, and copies its arrays out.
 */
export async function arraySetCall(
  symbol: "wna_analyse" | "wna_attribute" | "wna_visualise",
  handle: bigint,
  images: Float32Array | null,
  options: Uint8Array<ArrayBuffer>,
  onProgress?: ProgressCallback,
): Promise<Record<string, NdArray>> {
  const out = new BigUint64Array(1);
  const err = errorBuffer();
  await withProgress(async (counters) =>
    unwrap(
      await native()[symbol](
        handle,
        images,
        BigInt(images?.length ?? 0),
        options,
        BigInt(options.length),
        counters,
        out,
        err,
        BigInt(err.length),
      ),
      err,
    ), onProgress);
  return readArrays(out[0]);
}
