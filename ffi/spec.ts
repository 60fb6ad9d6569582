/**
 * Network specs: a network as a JSON value listing its layers, compiled by the native library
 * (`native/src/spec.rs`), which checks every shape and names the layer at fault.
 * @module
 */

/** Publishes a layer's output under this name (STA, activations, microstimulation). */
interface Tapped {
  tap?: string;
}

/** Prefixes a layer's parameters (`conv1.weight`); the layer's index when absent. */
interface Named {
  name?: string;
}

/** One layer of a {@linkcode NetSpec}. */
export type LayerSpec =
  | Named & Tapped & {
    kind: "conv2d";
    out: number;
    kernel: number;
    /** @default 1 */
    stride?: number;
    /** @default 0 */
    padding?: number;
    /** @default true */
    bias?: boolean;
  }
  /** BatchNorm1d on features, BatchNorm2d on images. */
  | Named & Tapped & { kind: "batch_norm" }
  /** Only 2x2 with stride 2. */
  | Tapped & { kind: "max_pool"; size: number; stride?: number }
  /** Window and stride `size`, floor mode. */
  | Tapped & { kind: "avg_pool"; size: number }
  | Tapped & { kind: "global_avg_pool" }
  | { kind: "flatten" }
  | Named & Tapped & {
    kind: "linear";
    out: number;
    /** @default true */
    bias?: boolean;
  }
  /** Inverted dropout while training. */
  | { kind: "dropout"; /** @default 0.5 */ p?: number }
  | Tapped & { kind: "relu" | "sigmoid" | "tanh" | "mish" }
  | Tapped & { kind: "leaky_relu"; /** @default 0.01 */ slope?: number }
  /** The same values in a new per-image shape (`x.view(-1, ...shape)`). */
  | { kind: "reshape"; shape: number[] }
  /** Nearest-neighbour upsampling by an integer factor. */
  | { kind: "upsample"; scale: number }
  /** A ResNet basic block; taps `<tap>.conv1` and `<tap>`. */
  | Named & Tapped & {
    kind: "residual";
    out: number;
    /** @default 1 */
    stride?: number;
  }
  /**
   * Stacked recurrent layers (PyTorch's `nn.RNN` with tanh, or `nn.LSTM`): an image
   * `[c, h, w]` is read row by row (h steps of c*w values), a `[steps, features]` input as it
   * is. Gives the top layer's state after the last step, `[hidden]`. Parameters
   * `<name>.weight_ih_l0`, `<name>.bias_hh_l1`, ... as PyTorch names them.
   */
  | Named & Tapped & {
    kind: "rnn";
    /** @default "tanh" */
    cell?: "tanh" | "lstm";
    hidden: number;
    /** Stacked layers (PyTorch's `num_layers`). @default 1 */
    layers?: number;
    /** @default true */
    bias?: boolean;
  };

/**
 * What a network's last layer gives: a classifier's `[classes]` logits, a generator's
 * `[1, 28, 28]` image (or 784 values) in the normalised space, or a discriminator's one logit.
 */
export type NetOutput = "logits" | "image" | "score";

/**
 * A network: layers applied in order to its input (a 1x28x28 image unless `input` says
 * otherwise); the last gives the logits (or what `output` says).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { NetSpec } from "./spec.ts";
 * const logreg: NetSpec = {
 *   name: "logreg",
 *   layers: [{ kind: "flatten" }, { kind: "linear", name: "fc", out: 10 }],
 * };
 * assert.ok(logreg.layers.length === 2);
 * ```
 */
export interface NetSpec {
  name: string;
  /** The per-example input shape. @default [1, 28, 28] */
  input?: number[];
  /** @default "logits" */
  output?: NetOutput;
  layers: LayerSpec[];
}
