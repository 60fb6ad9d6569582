/**
 * What every bench row shares: the data, the sizes, the peer (PyTorch and friends in
 * bench/.venv), and how a row is timed, printed and recorded.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import type { EpochOptions, Model } from "../../ffi/model.ts";

export const VENV = "bench/.venv";
/** The peer's Smaller exported by `torch.onnx.export` (bench/export_fixtures.py). */
export const IMPORTED_SMALLER = "tests/fixtures/onnx/smaller.onnx";
export const PEER_PYTHON = `${VENV}/bin/python`;
const TORCH = "torch==2.5.1";
/** The t-SNE peer. */
const SKLEARN = "scikit-learn==1.9.1";
/** The integrated-gradients peer. */
const CAPTUM = "captum==0.9.0";

export async function run(cmd: string, args: string[], quiet = false) {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: quiet ? "piped" : "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.slice(0, 3).join(" ")} … failed (exit ${out.code})`);
  }
  return text;
}

/** A virtual environment with PyTorch, made on first use. */
export async function ensurePeer(python: string): Promise<void> {
  const ok = await run(PEER_PYTHON, ["-c", "import torch, numpy, sklearn, captum"], true).then(
    () => true,
    () => false,
  );
  if (ok) return;
  console.log(
    `installing the PyTorch peer (${TORCH}, CPU) into ${VENV}; this is a one-off download`,
  );
  await run(python, ["-m", "venv", VENV]);
  await run(PEER_PYTHON, ["-m", "pip", "install", "--quiet", TORCH, "numpy", SKLEARN, CAPTUM]);
}

export async function peer(
  job: Record<string, unknown>,
): Promise<{ imagesPerSecond: number; torch: string; threads: number }> {
  return JSON.parse(await run(PEER_PYTHON, ["bench/peer.py", JSON.stringify(job)]));
}

/** One row of the bench table. */
export interface Row {
  task: string;
  model: string;
  wna: number;
  pytorch?: number;
  ratio?: number;
  /** An imported model's row: its speed over the same built-in network's in this run. */
  vsBuiltin?: number;
  /** t-SNE: trustworthiness (k = 5, one native measure) of wna's map and the peer's. */
  trustworthiness?: { wna: number; peer?: number };
}

/** The run's data, sizes and rows so far. */
export interface Bench {
  train: Dataset;
  test: Dataset;
  mean: number;
  std: number;
  quick: boolean;
  withPeer: boolean;
  /** Where the peer reads the images from. */
  cache: string;
  sizes: {
    inference: number;
    noise: { smaller: number; larger: number; recurrent: number };
    recurrentTrain: number;
    fgsm: number;
  };
  rows: Row[];
  /** The peer's version and threads, once it has run. */
  torchVersion: string;
}

/** Seconds `f` takes. */
export async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
}

/** Records a row (with the peer's speed on `job` when there is a peer) and prints it. */
export async function report(
  b: Bench,
  task: string,
  model: string,
  wna: number,
  job?: Record<string, unknown>,
): Promise<void> {
  const { mean, std } = b;

  const row: Row = { task, model, wna };
  if (b.withPeer && job) {
    const p = await peer({ model, mean, std, ...job });
    b.torchVersion = `${p.torch}, ${p.threads} threads`;
    row.pytorch = p.imagesPerSecond;
    row.ratio = wna / p.imagesPerSecond;
  }
  b.rows.push(row);
  console.log(
    `${task.padEnd(16)} ${model.padEnd(8)} wna ${wna.toFixed(0).padStart(7)} images/s` +
      (row.pytorch === undefined
        ? ""
        : `   pytorch ${row.pytorch.toFixed(0).padStart(7)} images/s   ratio ${
          row.ratio!.toFixed(2)
        }x`),
  );
}

/** A training-epoch row: `m` trains one epoch on the first `count` training images (all by
 * default), and the peer the same network on the same images. */
export async function trainRow(
  b: Bench,
  model: string,
  m: Model,
  options: Omit<EpochOptions, "totalSteps" | "epoch"> & { batchSize: number },
  job: Record<string, unknown>,
  count = b.train.count,
): Promise<void> {
  const s = await timed(() =>
    m.trainEpoch(b.train.images.subarray(0, count * 784), b.train.labels.subarray(0, count), {
      ...options,
      totalSteps: Math.ceil(count / options.batchSize),
      epoch: 0,
    })
  );
  await report(b, "train epoch", model, count / s, {
    task: "train",
    images: `${b.cache}/images.npy`,
    labels: `${b.cache}/labels.npy`,
    batchSize: options.batchSize,
    ...job,
  });
}
/** A white-noise row: noise, forward, softmax and the per-class sums, without STAs. */
export async function noiseRow(
  b: Bench,
  model: string,
  m: Model,
  samples: number,
  job = {},
): Promise<void> {
  const s = await timed(() =>
    m.analyse(null, { samples, batchSize: 1000, staSamples: 0, layers: [] })
  );
  await report(b, "noise", model, samples / s, { task: "noise", samples, batchSize: 1000, ...job });
}
