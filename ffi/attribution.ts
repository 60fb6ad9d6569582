/**
 * Attributions (saliency, gradient x input, integrated gradients, SmoothGrad) and activation
 * maximisation, computed natively in batches. Conventions follow Captum.
 * @module
 */
import { arraySetCall, checkImages, type NdArray, type ProgressCallback } from "./arrays.ts";
import { callAsync, optionsJson } from "./native.ts";

/** What these calls need of a `Model`: its native handle. */
interface HasHandle {
  readonly handle: bigint;
}

/**
 * What is differentiated for one image: `sum_c w_c * mean_{y,x} layer[c, y, x]`, with `w` the
 * one-hot `unit` or a `direction`. `layer` is a tapped layer or `"logits"`.
 */
export interface Target {
  layer: string;
  unit?: number;
  direction?: number[];
}

/** The attribution methods. */
export type AttributionMethod =
  | "saliency"
  | "gradient_x_input"
  | "integrated_gradients"
  | "smooth_grad";

/** Options of {@linkcode attribute}. */
export interface AttributionOptions {
  method: AttributionMethod;
  /** One per image. */
  targets: Target[];
  /** Saliency and SmoothGrad: |gradient| (Captum's default) or signed. @default true */
  absolute?: boolean;
  /** Integrated gradients' baseline in pixel units: one value or a 784-pixel image. @default 0 */
  baseline?: number | Float32Array | number[];
  /** Integrated gradients' steps. @default 50 */
  steps?: number;
  /** @default "gauss_legendre" */
  rule?:
    | "gauss_legendre"
    | "riemann_left"
    | "riemann_right"
    | "riemann_middle"
    | "riemann_trapezoid";
  /** Rows per native pass (images x steps or x samples); bounds memory. @default 500 */
  internalBatch?: number;
  /** SmoothGrad's noisy copies per image. @default 25 */
  samples?: number;
  /** SmoothGrad's noise std in pixel units. @default 0.15 */
  sigma?: number;
  /** @default 0 */
  seed?: number;
}

/** What {@linkcode attribute} returns. */
export interface Attributions {
  /** `[n, 28, 28]`. */
  attributions: NdArray;
  /** The objective at each image. */
  values: NdArray;
  /** Integrated gradients: the objective at the baseline. */
  baselineValues?: NdArray;
  /** Integrated gradients: sum of attributions minus (value - baseline value), per image. */
  delta?: NdArray;
}

/** Attributes each image's target to its pixels. */
export async function attribute(
  model: HasHandle,
  images: Float32Array,
  options: AttributionOptions,
  onProgress?: ProgressCallback,
): Promise<Attributions> {
  const { baseline, ...rest } = options;
  const opts = optionsJson("attribute", {
    ...rest,
    ...(baseline === undefined
      ? {}
      : { baseline: typeof baseline === "number" ? [baseline] : Array.from(baseline) }),
  });
  const { arrays: raw } = await arraySetCall(
    (counters, out) =>
      callAsync(
        "wna_attribute",
        model.handle,
        images,
        BigInt(images.length),
        opts,
        BigInt(opts.length),
        counters,
        out,
      ),
    onProgress,
  );
  return {
    attributions: raw.attributions,
    values: raw.values,
    baselineValues: raw.baselineValues,
    delta: raw.delta,
  };
}

/** Options of {@linkcode maximiseActivation}; see `native/src/feature_vis.rs` for the choices. */
export interface FeatureVisOptions {
  /** One optimised image per target, all in one batch. */
  targets: Target[];
  /** @default 256 */
  steps?: number;
  /** Adam's learning rate. @default 0.5 (fourier) or 0.05 (pixel) */
  lr?: number;
  /** @default "fourier" */
  parameterisation?: "fourier" | "pixel";
  /** Random shift per step, pixels. @default 2 */
  jitter?: number;
  /** Random rotation per step, degrees. @default 10 */
  rotate?: number;
  /** Random scale per step, 1 +- this. @default 0.1 */
  scale?: number;
  /** Total-variation penalty. @default 0.05 */
  tv?: number;
  /** Penalty on the squared deviation from grey. @default 0.05 */
  l2?: number;
  /** @default 0 */
  seed?: number;
}

/** What {@linkcode maximiseActivation} returns. */
export interface FeatureVis {
  /** `[n, 28, 28]` in pixel units. */
  images: NdArray;
  /** Each target's value at its optimised image. */
  values: NdArray;
  /** The mean objective per step. */
  curve: NdArray;
  /** With reference images: each target's best value over them, and which image. */
  referenceBest?: NdArray;
  referenceIndex?: NdArray;
}

/** Optimises one image per target to drive it; `reference` images give the bar to beat. */
export async function maximiseActivation(
  model: HasHandle,
  options: FeatureVisOptions,
  reference?: Float32Array,
  onProgress?: ProgressCallback,
): Promise<FeatureVis> {
  const opts = optionsJson("visualise", options);
  const { arrays: raw } = await arraySetCall(
    (counters, out) =>
      callAsync(
        "wna_visualise",
        model.handle,
        reference ?? null,
        BigInt(reference?.length ?? 0),
        opts,
        BigInt(opts.length),
        counters,
        out,
      ),
    onProgress,
  );
  return {
    images: raw.images,
    values: raw.values,
    curve: raw.curve,
    referenceBest: raw.referenceBest,
    referenceIndex: raw.referenceIndex,
  };
}

/**
 * Gradient of the summed cross-entropy with respect to the pixels, in inference mode.
 * @param model the model's handle
 * @returns gradients (n x 784) and the summed loss
 */
export async function inputGradients(
  model: bigint,
  images: Float32Array,
  labels: Uint8Array,
): Promise<{ gradients: Float32Array; loss: number }> {
  checkImages(images);
  const out = new Float32Array(images.length);
  const loss = new Float64Array(1);
  await callAsync(
    "wna_input_gradients",
    model,
    images,
    BigInt(images.length),
    labels,
    BigInt(labels.length),
    out,
    BigInt(out.length),
    loss,
  );
  return { gradients: out, loss: loss[0] };
}

/** FGSM adversarial images `clip(x + eps * sign(grad), 0, 1)`. */
export async function fgsm(
  model: bigint,
  images: Float32Array,
  labels: Uint8Array,
  eps: number,
): Promise<Float32Array> {
  checkImages(images);
  const out = new Float32Array(images.length);
  await callAsync(
    "wna_fgsm",
    model,
    images,
    BigInt(images.length),
    labels,
    BigInt(labels.length),
    eps,
    out,
    BigInt(out.length),
  );
  return out;
}
