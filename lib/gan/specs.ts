/**
 * The GANs as specs, and the defaults of a GAN run, defined once.
 *
 * - `mlp`: the classic MLP GAN of the PyTorch tutorials. G is 100-256-512-1024-784 with
 *   LeakyReLU 0.2 and a tanh output; D is 784-1024-512-256-1 with LeakyReLU 0.2 and dropout 0.3.
 * - `dcgan`: a small DCGAN at 28x28 (Radford et al., 2016, scaled down as in the Keras MNIST
 *   example). G: fc to 128x7x7, then twice nearest 2x upsampling and a 3x3 conv, with batch norm
 *   and ReLU, and a tanh output. Upsampling plus convolution rather than transposed convolution:
 *   it avoids the checkerboard artefacts of strided transposed kernels (Odena et al., 2016), and
 *   its gradient is a plain block sum (checked in `native/tests/gan.rs`). D: two 4x4 stride-2
 *   convs (64, 128) with LeakyReLU 0.2 and dropout 0.3, then one logit.
 * @module
 */
import type { NetSpec } from "../../ffi/spec.ts";

/** A generator and its discriminator. */
export interface GanSpecs {
  generator: NetSpec;
  discriminator: NetSpec;
}

/** The latent size of both GANs: z ~ N(0, 1) in 100 dimensions. */
export const LATENT_DIM = 100;

const leaky = { kind: "leaky_relu", slope: 0.2 } as const;

/** The GANs by name. */
export const GAN_SPECS: Record<"mlp" | "dcgan", GanSpecs> = {
  mlp: {
    generator: {
      name: "gan-mlp-generator",
      input: [LATENT_DIM],
      output: "image",
      layers: [
        { kind: "linear", name: "fc1", out: 256 },
        leaky,
        { kind: "linear", name: "fc2", out: 512 },
        leaky,
        { kind: "linear", name: "fc3", out: 1024 },
        leaky,
        { kind: "linear", name: "fc4", out: 784 },
        { kind: "tanh" },
      ],
    },
    discriminator: {
      name: "gan-mlp-discriminator",
      output: "score",
      layers: [
        { kind: "flatten" },
        { kind: "linear", name: "fc1", out: 1024 },
        leaky,
        { kind: "dropout", p: 0.3 },
        { kind: "linear", name: "fc2", out: 512 },
        leaky,
        { kind: "dropout", p: 0.3 },
        { kind: "linear", name: "fc3", out: 256 },
        leaky,
        { kind: "dropout", p: 0.3 },
        { kind: "linear", name: "fc4", out: 1 },
      ],
    },
  },
  dcgan: {
    generator: {
      name: "gan-dcgan-generator",
      input: [LATENT_DIM],
      output: "image",
      layers: [
        { kind: "linear", name: "fc", out: 128 * 7 * 7, bias: false },
        { kind: "batch_norm", name: "bn0" },
        { kind: "relu" },
        { kind: "reshape", shape: [128, 7, 7] },
        { kind: "upsample", scale: 2 },
        { kind: "conv2d", name: "conv1", out: 64, kernel: 3, padding: 1, bias: false },
        { kind: "batch_norm", name: "bn1" },
        { kind: "relu" },
        { kind: "upsample", scale: 2 },
        { kind: "conv2d", name: "conv2", out: 1, kernel: 3, padding: 1 },
        { kind: "tanh" },
      ],
    },
    discriminator: {
      name: "gan-dcgan-discriminator",
      output: "score",
      layers: [
        { kind: "conv2d", name: "conv1", out: 64, kernel: 4, stride: 2, padding: 1 },
        leaky,
        { kind: "dropout", p: 0.3 },
        { kind: "conv2d", name: "conv2", out: 128, kernel: 4, stride: 2, padding: 1 },
        leaky,
        { kind: "dropout", p: 0.3 },
        { kind: "flatten" },
        { kind: "linear", name: "fc", out: 1 },
      ],
    },
  },
};

/** The GAN names. */
export const GAN_NAMES = Object.keys(GAN_SPECS) as (keyof typeof GAN_SPECS)[];

/** The defaults of a GAN run (the optimiser's live in `native/src/options.rs`). */
export const GAN_DEFAULTS = {
  gan: "mlp" as keyof typeof GAN_SPECS,
  epochs: 50,
  seed: 0,
  /** Samples behind the Inception score, the class histogram and the Frechet distance. */
  qualitySamples: 10_000,
  /** Seeded latent pairs interpolated, and the steps of a between them (0, 0.1, ..., 1). */
  interpolationPairs: 6,
  interpolationSteps: 11,
  /** Generated digits per t-SNE map of G(z); the largest also maps their latents z. */
  tsneSizes: [1000, 10_000],
  /**
   * The FGSM maps: net N1's penultimate activations on test images attacked at each eps; eps 0
   * (clean images) is the reference the case study's three panels are read against.
   */
  fgsmEps: [0, 0.2, 0.6, 1.0],
  fgsmImages: 2000,
  /** The classifier behind every quality number: net 11.1 of the zoo (about 99.2% here). */
  classifier: "11.1",
} as const;
