/**
 * The 19 networks of the MNIST case study, as specs, with the training choices the study's
 * one-line descriptions leave open, and the study's own test accuracies.
 *
 * Choices a practitioner would make where the description is silent, written once here:
 * - batch 64, constant learning rate, no weight decay (the study names no schedule);
 * - learning rates: Adam 1e-3, SGD with momentum 0.9 at 0.01, Adadelta at 1.0 (each library's
 *   usual default);
 * - dropout 0.2 after each hidden block of the MLPs that have dropout (as Keras' MNIST MLP);
 * - convolutions "same"-padded 3x3, except the nets whose description gives kernels (11: 8x8
 *   and 6x6 padded 2, as the FGSM study's N1) and 9 and 10, whose 5x5 kernels are unpadded as in
 *   LeNet (9 padded would give a 12,544 x 5,000 first FC layer: 63M weights);
 * - pooling 2x2; batch norm before the activation.
 * @module
 */
import type { LayerSpec, NetSpec } from "../../ffi/spec.ts";
import type { OptimizerName } from "../../ffi/model.ts";

/** One network of the study. */
export interface ZooNet {
  /** The study's label: "1" … "7", "8.1" … "13.2". */
  id: string;
  description: string;
  optimizer: OptimizerName;
  lr: number;
  spec: NetSpec;
  /** The study's test accuracy (%) after 1,000 and 60,000 training images. */
  reference: { accuracy1k: number; accuracy60k: number; note?: string };
}

/** The training schedule of the study. */
export const ZOO_SCHEDULE = {
  /** The first n training images, and epochs over them. */
  small: { images: 1000, epochs: 10 },
  full: { images: 60000, epochs: 4 },
  batchSize: 64,
  /** Test images behind the per-epoch learning curves (the final accuracy uses all 10,000). */
  curveImages: 2000,
} as const;

/** Each optimiser's learning rate. */
export const ZOO_LR: Record<OptimizerName, number> = { adam: 1e-3, sgd: 0.01, adadelta: 1.0 };

type Act = "relu" | "sigmoid" | "mish";

/** Hidden FC blocks: linear, optional batch norm, activation, optional dropout. */
function mlp(widths: number[], act: Act, bn: boolean, dropout: number): LayerSpec[] {
  const layers: LayerSpec[] = [{ kind: "flatten" }];
  widths.forEach((out, i) => {
    layers.push({ kind: "linear", name: `fc${i + 1}`, out });
    if (bn) layers.push({ kind: "batch_norm", name: `bn_fc${i + 1}` });
    layers.push({ kind: act, tap: `fc${i + 1}` });
    if (dropout > 0) layers.push({ kind: "dropout", p: dropout });
  });
  layers.push({ kind: "linear", name: `fc${widths.length + 1}`, out: 10 });
  return layers;
}

interface ConvBlock {
  out: number;
  kernel: number;
  padding: number;
  pool?: "max" | "avg";
}

/** Conv blocks (conv, optional BN, activation, optional pool), then hidden FC blocks. */
function cnn(convs: ConvBlock[], fcs: number[], act: Act, bn2d: boolean, bn1d: boolean) {
  const layers: LayerSpec[] = [];
  convs.forEach((c, i) => {
    const name = `conv${i + 1}`;
    layers.push({ kind: "conv2d", name, out: c.out, kernel: c.kernel, padding: c.padding });
    if (bn2d) layers.push({ kind: "batch_norm", name: `bn${i + 1}` });
    layers.push({ kind: act, tap: name });
    if (c.pool === "max") layers.push({ kind: "max_pool", size: 2 });
    if (c.pool === "avg") layers.push({ kind: "avg_pool", size: 2 });
  });
  const head = mlp(fcs, act, bn1d, 0);
  return [...layers, ...head];
}

function net(
  id: string,
  description: string,
  optimizer: OptimizerName,
  layers: LayerSpec[],
  accuracy1k: number,
  accuracy60k: number,
  note?: string,
): ZooNet {
  return {
    id,
    description,
    optimizer,
    lr: ZOO_LR[optimizer],
    spec: { name: `zoo-${id}`, layers },
    reference: { accuracy1k, accuracy60k, ...(note ? { note } : {}) },
  };
}

const c8: ConvBlock[] = [
  { out: 32, kernel: 3, padding: 1, pool: "max" },
  { out: 64, kernel: 3, padding: 1, pool: "max" },
];
const c9: ConvBlock[] = [
  { out: 64, kernel: 5, padding: 0, pool: "avg" },
  { out: 256, kernel: 5, padding: 0, pool: "avg" },
];
const c10: ConvBlock[] = [
  { out: 8, kernel: 5, padding: 0, pool: "avg" },
  { out: 16, kernel: 5, padding: 0, pool: "avg" },
];
const c11: ConvBlock[] = [
  { out: 16, kernel: 8, padding: 2, pool: "avg" },
  { out: 32, kernel: 6, padding: 2, pool: "avg" },
];
const c12: ConvBlock[] = [{ out: 16, kernel: 3, padding: 1 }];
const c13: ConvBlock[] = [
  { out: 16, kernel: 3, padding: 1, pool: "avg" },
  { out: 32, kernel: 3, padding: 1, pool: "avg" },
];

/** The 19 nets, in the study's order. */
export const ZOO_NETS: ZooNet[] = [
  net(
    "1",
    "SGD momentum 0.9, ReLU, fc 512-512-10",
    "sgd",
    mlp([512, 512], "relu", false, 0),
    84.59,
    93.38,
  ),
  net(
    "2",
    "Adam, ReLU, fc 512-512-10, batch norm",
    "adam",
    mlp([512, 512], "relu", true, 0),
    87.22,
    97.67,
  ),
  net(
    "3",
    "SGD momentum, Sigmoid, fc 512-256-128-128-10, batch norm",
    "sgd",
    mlp([512, 256, 128, 128], "sigmoid", true, 0),
    86.0,
    92.33,
  ),
  net(
    "4",
    "SGD momentum, ReLU, fc 512x4-10, batch norm, dropout",
    "sgd",
    mlp([512, 512, 512, 512], "relu", true, 0.2),
    88.91,
    97.37,
  ),
  net(
    "5",
    "Adam, ReLU, fc 512x4-10",
    "adam",
    mlp([512, 512, 512, 512], "relu", false, 0),
    86.96,
    97.52,
  ),
  net(
    "6",
    "Adam, ReLU, fc 512-256-256-256-10, batch norm, dropout",
    "adam",
    mlp([512, 256, 256, 256], "relu", true, 0.2),
    88.45,
    97.73,
  ),
  net(
    "7",
    "Adadelta, Mish, fc 512-256-256-256-10, batch norm, dropout",
    "adadelta",
    mlp([512, 256, 256, 256], "mish", true, 0.2),
    89.05,
    98.07,
  ),
  net(
    "8.1",
    "CNN 32-64, max pool, fc 1000-10; Adam",
    "adam",
    cnn(c8, [1000], "relu", false, false),
    91.26,
    97.78,
  ),
  net(
    "8.2",
    "CNN 32-64, max pool, fc 1000-10; SGD",
    "sgd",
    cnn(c8, [1000], "relu", false, false),
    94.14,
    99.07,
  ),
  net(
    "9.1",
    "CNN 64-256, avg pool, fc 5000-1000-10, ReLU; Adam",
    "adam",
    cnn(c9, [5000, 1000], "relu", false, false),
    10.46,
    11.29,
    "failed to train in the study",
  ),
  net(
    "9.2",
    "CNN 64-256, avg pool, fc 5000-1000-10, ReLU; SGD",
    "sgd",
    cnn(c9, [5000, 1000], "relu", false, false),
    84.44,
    95.95,
  ),
  net(
    "10.1",
    "CNN 8-16, avg pool, fc 500-250-10, BN1d, ReLU; Adam",
    "adam",
    cnn(c10, [500, 250], "relu", false, true),
    96.08,
    98.74,
  ),
  net(
    "10.2",
    "CNN 8-16, avg pool, fc 500-250-10, BN1d, ReLU; SGD",
    "sgd",
    cnn(c10, [500, 250], "relu", false, true),
    94.11,
    98.54,
  ),
  net(
    "11.1",
    "CNN 16-32 with BN2d, kernels 8x8 and 6x6, avg pool, fc 512-512-10, BN1d, ReLU; Adam",
    "adam",
    cnn(c11, [512, 512], "relu", true, true),
    93.55,
    99.28,
  ),
  net(
    "11.2",
    "CNN 16-32 with BN2d, kernels 8x8 and 6x6, avg pool, fc 512-512-10, BN1d, ReLU; SGD",
    "sgd",
    cnn(c11, [512, 512], "relu", true, true),
    94.31,
    98.92,
  ),
  net(
    "12.1",
    "one conv 16 with BN2d, no pooling, fc 1024-512-10, BN1d, ReLU; Adam",
    "adam",
    cnn(c12, [1024, 512], "relu", true, true),
    88.73,
    98.73,
  ),
  net(
    "12.2",
    "one conv 16 with BN2d, no pooling, fc 1024-512-10, BN1d, ReLU; SGD",
    "sgd",
    cnn(c12, [1024, 512], "relu", true, true),
    91.32,
    98.74,
  ),
  net(
    "13.1",
    "CNN 16-32, BN2d, avg pool, Mish, fc 512-10, BN1d; Adadelta",
    "adadelta",
    cnn(c13, [512], "mish", true, true),
    95.31,
    99.41,
  ),
  net(
    "13.2",
    "CNN 16-32, BN2d, avg pool, Mish, fc 512-10, BN1d; SGD",
    "sgd",
    cnn(c13, [512], "mish", true, true),
    94.62,
    99.36,
  ),
];
