/**
 * Attributions (saliency, gradient x input, integrated gradients, SmoothGrad) and activation
 * maximisation, computed natively in batches. Conventions follow Captum.
 * @module
 */
import { arraySetCall, type Model, type NdArray, type ProgressCallback } from "./model.ts";
import { optionsJson } from "./native.ts";

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
  model: Model,
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
  const raw = await arraySetCall("wna_attribute", model.handle, images, opts, onProgress);
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
  model: Model,
  options: FeatureVisOptions,
  reference?: Float32Array,
  onProgress?: ProgressCallback,
): Promise<FeatureVis> {
  const opts = optionsJson("visualise", options);
  const raw = await arraySetCall(
    "wna_visualise",
    model.handle,
    reference ?? null,
    opts,
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
