/**
 * `Model`: a handle on a native network (`native/src/abi/model.rs`), with prediction, layer
 * activations and stimulation here, and training (`train.ts`), white-noise analysis
 * (`noise.ts`) and input gradients (`attribution.ts`) as methods that call those modules.
 * @module
 */
import { NativeError, StatusCode } from "./errors.ts";
import {
  call,
  callAsync,
  complete,
  defaultDevice,
  native,
  optionsJson,
  readText,
  utf8,
} from "./native.ts";
import { NativeHandle } from "./handle.ts";
import { checkImages, type ProgressCallback } from "./arrays.ts";
import type { NetSpec } from "./spec.ts";
import { type EpochOptions, evaluate, type Metrics, trainEpoch } from "./train.ts";
import {
  analyse,
  type AnalysisOptions,
  type AnalysisResult,
  classify,
  type ClassifyOptions,
  type DataNoiseFit,
  fitDataNoise,
  freeDataNoise,
} from "./noise.ts";
import { fgsm, inputGradients } from "./attribution.ts";

export type { NdArray, ProgressCallback } from "./arrays.ts";
export type { EpochOptions, Metrics, OptimizerName } from "./train.ts";
export {
  analysisArrays,
  type AnalysisOptions,
  type AnalysisResult,
  type ClassifyOptions,
  type DataNoiseFit,
  type LayerStatistics,
  type NoiseName,
  type StreamOptions,
  templateScores,
} from "./noise.ts";

let builtins: readonly string[] | undefined;
/** The built-in networks' names, as the native library lists them. */
export function modelNames(): readonly string[] {
  builtins ??= JSON.parse(readText("wna_models")) as string[];
  return builtins;
}
/** A built-in network's name (one of {@linkcode modelNames}). */
export type ModelName = string;

/** Defaults of {@linkcode ModelOptions}. */
export const MODEL_DEFAULTS = {
  /** Classes of a built-in network (a spec sets its own). */
  classes: 10,
  seed: 0,
  /** Pixel mean and std the inputs are normalised with. */
  mean: 0,
  std: 1,
  device: "cpu" as "cpu" | "cuda" | "auto",
} as const;

/** Options for {@linkcode Model.create} (defaults: {@linkcode MODEL_DEFAULTS}). */
export interface ModelOptions {
  /** Number of classes of a built-in network (a spec sets its own). */
  classes?: number;
  /** Residual blocks per stage of the built-in `larger` (default: its own four stages). */
  blocks?: number[];
  /** Seed of the weight initialisation. */
  seed?: number;
  /** Pixel mean used to normalise inputs. */
  mean?: number;
  /** Pixel standard deviation used to normalise inputs. */
  std?: number;
  /** Device to run on. */
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

/**
 * A native network. Free it with `using` or `close()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Model } from "./model.ts";
 * using model = Model.create("logreg", { seed: 1 });
 * const logits = await model.predict(new Float32Array(784));
 * assert.equal(logits.length, 10);
 * ```
 */
export class Model extends NativeHandle {
  #info: ModelInfo | undefined;
  /** The fit behind `noise: "data"`, once {@linkcode Model.fitDataNoise} has run. */
  #dataNoise: bigint | undefined;

  private constructor(handle: bigint) {
    super(handle, "model");
  }

  /**
   * Builds a freshly initialised network.
   * @param network one of {@linkcode modelNames}, or a {@linkcode NetSpec}
   * @param options classes, seed, normalisation, device
   * @returns the model
   */
  static create(network: string | NetSpec, options: ModelOptions = {}): Model {
    // The first model opens the library: the CUDA build when it asks for cuda or auto.
    native(options.device ?? defaultDevice());
    if (typeof network === "string" && !modelNames().includes(network)) {
      throw new NativeError(
        StatusCode.UnknownModel,
        `unknown model "${network}" (expected ${modelNames().join(", ")}, or pass a spec)`,
      );
    }
    const { classes, ...rest } = complete(MODEL_DEFAULTS, options);
    const which = typeof network === "string" ? { model: network, classes } : { spec: network };
    const spec = optionsJson("model", { ...which, ...rest });
    const out = new BigUint64Array(1);
    call("wna_model_new", spec, BigInt(spec.length), out);
    return new Model(out[0]);
  }

  /** @returns name, parameter count, layers with shapes and receptive fields */
  info(): ModelInfo {
    this.#info ??= JSON.parse(readText("wna_model_info", this.handle)) as ModelInfo;
    return this.#info;
  }

  #io(path: string, what: 0 | 1, save: 0 | 1): void {
    const p = utf8(path);
    call("wna_model_io", this.handle, p, BigInt(p.length), what, save);
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

  /** Frees the network and its data-noise fit; idempotent. */
  override close(): void {
    if (this.#dataNoise !== undefined) freeDataNoise(this.#dataNoise);
    this.#dataNoise = undefined;
    super.close();
  }

  /**
   * Logits of pixel-space images (values in [0, 1]).
   * @param images n x 784 pixels
   * @returns n x classes logits
   */
  async predict(images: Float32Array): Promise<Float32Array> {
    const n = checkImages(images);
    const out = new Float32Array(n * this.info().classes);
    await callAsync(
      "wna_predict",
      this.handle,
      images,
      BigInt(images.length),
      out,
      BigInt(out.length),
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
    await callAsync(
      "wna_activations",
      this.handle,
      images,
      BigInt(images.length),
      name,
      BigInt(name.length),
      out,
      BigInt(out.length),
    );
    return out;
  }

  /** Adds `delta` to `channel` of `layer` in every inference pass until cleared. */
  setStimulation(layer: string, channel: number, delta: number): void {
    const name = utf8(layer);
    call("wna_set_stimulation", this.handle, name, BigInt(name.length), BigInt(channel), delta);
  }

  /** Removes any stimulation. */
  clearStimulation(): void {
    this.setStimulation("", -1, 0);
  }

  /**
   * Trains one epoch on shuffled mini-batches (see `train.ts`).
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
    const metrics = await trainEpoch(this.handle, images, labels, options, onProgress);
    this.#info = undefined;
    return metrics;
  }

  /** Loss and accuracy in inference mode. */
  evaluate(
    images: Float32Array,
    labels: Uint8Array,
    onProgress?: ProgressCallback,
  ): Promise<Metrics> {
    return evaluate(this.handle, images, labels, onProgress);
  }

  /**
   * Streams white noise (or noisy/shifted images) through the model and accumulates
   * classification images, the bias histogram, spike-triggered averages and activation
   * statistics (see `noise.ts`). Memory does not grow with `samples`.
   * @param images real images to mix with noise, or `null` for pure noise
   * @param options samples, noise, gamma, layers
   * @param onProgress called with samples done so far
   */
  analyse(
    images: Float32Array | null,
    options: AnalysisOptions = {},
    onProgress?: ProgressCallback,
  ): Promise<AnalysisResult> {
    return analyse(this.handle, this.#dataNoise, images, options, onProgress);
  }

  /**
   * The predicted class of every stimulus, with no maps: the cheap call for sweeps (attack,
   * gamma, microstimulation). With `weights`, one pass per weight of `pattern`.
   * @returns classes, `max(1, weights.length) * n` of them, weight-major
   */
  classify(
    images: Float32Array | null,
    options: ClassifyOptions = {},
    onProgress?: ProgressCallback,
  ): Promise<Uint32Array> {
    return classify(this.handle, this.#dataNoise, images, options, onProgress);
  }

  /**
   * Fits `data` noise: the mean and covariance of `images`, kept with the model for later
   * `noise: "data"` streams.
   * @param images n x 784 pixels (n >= 2), e.g. the training set
   * @returns the fitted mean and Cholesky factor
   */
  async fitDataNoise(images: Float32Array): Promise<DataNoiseFit> {
    const { handle, fit } = await fitDataNoise(this.handle, images);
    if (this.#dataNoise !== undefined) freeDataNoise(this.#dataNoise);
    this.#dataNoise = handle;
    return fit;
  }

  /**
   * Gradient of the summed cross-entropy with respect to the pixels, in inference mode.
   * @returns gradients (n x 784) and the summed loss
   */
  inputGradients(
    images: Float32Array,
    labels: Uint8Array,
  ): Promise<{ gradients: Float32Array; loss: number }> {
    return inputGradients(this.handle, images, labels);
  }

  /** FGSM adversarial images `clip(x + eps * sign(grad), 0, 1)`. */
  fgsm(images: Float32Array, labels: Uint8Array, eps: number): Promise<Float32Array> {
    return fgsm(this.handle, images, labels, eps);
  }
}
