/**
 * A GAN's native calls: one adversarial training epoch of a generator against a discriminator
 * (two {@linkcode Model}s built from specs with `output: "image"` and `output: "score"`),
 * sampling, the discriminator's verdict, and the Frechet distance between feature sets
 * (`native/src/gan.rs`, `native/src/frechet.rs`).
 * @module
 */
import { type ProgressCallback, withProgress } from "./arrays.ts";
import type { Model } from "./model.ts";
import { callAsync, complete, optionsJson } from "./native.ts";

/** Defaults of {@linkcode GanEpochOptions}: the classic MLP GAN's Adam settings and batch. */
export const GAN_EPOCH_DEFAULTS = {
  batchSize: 128,
  /** Adam's learning rate, both networks. */
  lr: 2e-4,
  beta1: 0.5,
  beta2: 0.999,
  seed: 0,
} as const;

/** One epoch's settings (defaults: {@linkcode GAN_EPOCH_DEFAULTS}). */
export interface GanEpochOptions {
  /** 0-based epoch: keys the shuffle and the latent draws. */
  epoch: number;
  batchSize?: number;
  /** Adam's learning rate, both networks. */
  lr?: number;
  beta1?: number;
  beta2?: number;
  seed?: number;
}

/** Means over an epoch's steps. */
export interface GanEpochMetrics {
  /** BCE of the discriminator on real (target 1) plus fake (target 0). */
  discriminatorLoss: number;
  /** The non-saturating generator loss, -log D(G(z)). */
  generatorLoss: number;
  /** Mean D(x) on real images. */
  dReal: number;
  /** Mean D(G(z)) on fakes, before the discriminator's step. */
  dFake: number;
}

/**
 * Trains `generator` and `discriminator` for one epoch on real images.
 * @param generator a model whose spec has a `[dim]` input and `output: "image"`
 * @param discriminator a model whose spec has `output: "score"`; its normalisation maps pixels
 *   into the generator's output space (mean 0.5, std 0.5 for a tanh generator)
 * @param images n x 784 real pixels in [0, 1]
 * @param options epoch, batch size, Adam settings, seed
 * @param onProgress called with images done
 * @returns the epoch's mean losses and discriminator outputs
 */
export async function ganTrainEpoch(
  generator: Model,
  discriminator: Model,
  images: Float32Array,
  options: GanEpochOptions,
  onProgress?: ProgressCallback,
): Promise<GanEpochMetrics> {
  const opts = optionsJson("gan", complete(GAN_EPOCH_DEFAULTS, options));
  const metrics = new Float64Array(4);
  const [g, d] = [generator.handle, discriminator.handle];
  await withProgress((counters) =>
    callAsync(
      "wna_gan_train_epoch",
      g,
      d,
      images,
      BigInt(images.length),
      opts,
      BigInt(opts.length),
      counters,
      metrics,
    ), onProgress);
  return {
    discriminatorLoss: metrics[0],
    generatorLoss: metrics[1],
    dReal: metrics[2],
    dFake: metrics[3],
  };
}

/** One model call that maps an input array to an output array of `outLength` values. */
async function mapArray(
  symbol: "wna_generate" | "wna_discriminate",
  model: Model,
  input: Float32Array,
  outLength: number,
): Promise<Float32Array> {
  const out = new Float32Array(outLength);
  await callAsync(symbol, model.handle, input, BigInt(input.length), out, BigInt(out.length));
  return out;
}

/**
 * Images from latent vectors, in eval mode.
 * @param generator a generator model
 * @param latent n x dim values
 * @returns n x 784 pixels
 */
export function generate(generator: Model, latent: Float32Array): Promise<Float32Array> {
  const dim = generator.info().spec.input?.[0] ?? 0;
  const n = dim > 0 ? Math.floor(latent.length / dim) : 0;
  return mapArray("wna_generate", generator, latent, n * 784);
}

/**
 * The discriminator's probability that each image is real.
 * @param discriminator a discriminator model
 * @param images n x 784 pixels
 * @returns n probabilities
 */
export function discriminate(discriminator: Model, images: Float32Array): Promise<Float32Array> {
  return mapArray("wna_discriminate", discriminator, images, Math.floor(images.length / 784));
}

/**
 * The Frechet distance between Gaussians fitted to two feature sets (FID's formula).
 * @param a n x `dims` features
 * @param b m x `dims` features
 * @param dims columns of both
 * @returns the distance, >= 0
 */
export async function frechetDistance(
  a: Float32Array,
  b: Float32Array,
  dims: number,
): Promise<number> {
  const out = new Float64Array(1);
  await callAsync("wna_frechet", a, BigInt(a.length), b, BigInt(b.length), BigInt(dims), out);
  return out[0];
}
