/**
 * `deno task bench`: wna against PyTorch on this machine's CPU, in the same run — one training
 * epoch of `smaller` on MNIST, inference, white-noise analysis and FGSM throughput, and the
 * recurrent `rnn` and `lstm` — printed as
 * images/s and ratios (wna / PyTorch; above 1 means wna is faster), saved to out/bench/. The
 * t-SNE row's peer is scikit-learn, with both maps' trustworthiness beside the speed.
 * PyTorch and scikit-learn come from PyPI into bench/.venv, installed here on first use (never
 * by CI).
 * @module
 */
import { loadDataset } from "../data/datasets.ts";
import { ZOO_NETS, ZOO_SCHEDULE } from "../lib/zoo/nets.ts";
import { type EpochOptions, Model } from "../ffi/model.ts";
import { nativeVersion } from "../ffi/native.ts";
import { commonFlags, parseFlags, runMain } from "../lib/cli.ts";
import { permissionsHelp } from "../lib/tasks.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/files.ts";
import { encodeNpy, readNpy } from "../lib/npy.ts";
import { trustworthiness, tsne } from "../ffi/tsne.ts";
import { ganTrainEpoch } from "../ffi/gan.ts";
import { attribute } from "../ffi/attribution.ts";
import { GAN_SPECS } from "../lib/gan/specs.ts";
import { convertOnnx } from "../ffi/onnx.ts";

const HELP = `usage: deno task bench [options]
  --quick            fewer images everywhere (a smoke run, not figures to quote)
  --no-peer          wna only, without installing or running PyTorch
  --python PATH      the Python used to create bench/.venv (default python3)
  --out DIR          (default out/bench)`;

const VENV = "bench/.venv";
/** The peer's Smaller exported by `torch.onnx.export` (bench/export_fixtures.py). */
const IMPORTED_SMALLER = "tests/fixtures/onnx/smaller.onnx";
const PEER_PYTHON = `${VENV}/bin/python`;
const TORCH = "torch==2.5.1";
/** The t-SNE peer. */
const SKLEARN = "scikit-learn==1.9.1";
/** The integrated-gradients peer. */
const CAPTUM = "captum==0.9.0";

async function run(cmd: string, args: string[], quiet = false) {
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
async function ensurePeer(python: string): Promise<void> {
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

async function peer(
  job: Record<string, unknown>,
): Promise<{ imagesPerSecond: number; torch: string; threads: number }> {
  return JSON.parse(await run(PEER_PYTHON, ["bench/peer.py", JSON.stringify(job)]));
}

interface Row {
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

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("out"),
    quick: { type: "boolean" },
    "no-peer": { type: "boolean" },
    python: { type: "string" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("bench")}`);
  const quick = values.quick ?? false;
  const withPeer = !values["no-peer"];
  const outDir = values.out ?? "out/bench";
  if (withPeer) await ensurePeer(values.python ?? "python3");

  const trainImages = quick ? 4096 : 60000;
  const train = await loadDataset("mnist", "train", { limit: trainImages });
  const test = await loadDataset("mnist", "test");
  const { mean, std } = train;
  const sizes = {
    inference: quick ? 2000 : 10000,
    noise: {
      smaller: quick ? 20000 : 200000,
      larger: quick ? 5000 : 30000,
      recurrent: quick ? 5000 : 30000,
    },
    recurrentTrain: quick ? 2048 : 10000,
    fgsm: quick ? 2000 : 10000,
  };
  await Deno.mkdir(`${outDir}`, { recursive: true });
  const cache = ".cache/bench";
  await Deno.mkdir(cache, { recursive: true });
  await writeFileAtomic(`${cache}/images.npy`, encodeNpy(train.images, [train.count, 784]));
  await writeFileAtomic(`${cache}/labels.npy`, encodeNpy(train.labels, [train.count]));

  const rows: Row[] = [];
  let torchVersion = "";
  const report = async (
    task: string,
    model: string,
    wna: number,
    job?: Record<string, unknown>,
  ) => {
    const row: Row = { task, model, wna };
    if (withPeer && job) {
      const p = await peer({ model, mean, std, ...job });
      torchVersion = `${p.torch}, ${p.threads} threads`;
      row.pytorch = p.imagesPerSecond;
      row.ratio = wna / p.imagesPerSecond;
    }
    rows.push(row);
    console.log(
      `${task.padEnd(16)} ${model.padEnd(8)} wna ${wna.toFixed(0).padStart(7)} images/s` +
        (row.pytorch === undefined
          ? ""
          : `   pytorch ${row.pytorch.toFixed(0).padStart(7)} images/s   ratio ${
            row.ratio!.toFixed(2)
          }x`),
    );
  };
  const timed = async (f: () => Promise<unknown>) => {
    const t = performance.now();
    await f();
    return (performance.now() - t) / 1000;
  };
  /** A training-epoch row: `m` trains one epoch on the first `count` training images (all by
   * default), and the peer the same network on the same images. */
  const trainRow = async (
    model: string,
    m: Model,
    options: Omit<EpochOptions, "totalSteps" | "epoch"> & { batchSize: number },
    job: Record<string, unknown>,
    count = train.count,
  ) => {
    const s = await timed(() =>
      m.trainEpoch(train.images.subarray(0, count * 784), train.labels.subarray(0, count), {
        ...options,
        totalSteps: Math.ceil(count / options.batchSize),
        epoch: 0,
      })
    );
    await report("train epoch", model, count / s, {
      task: "train",
      images: `${cache}/images.npy`,
      labels: `${cache}/labels.npy`,
      batchSize: options.batchSize,
      ...job,
    });
  };
  /** A white-noise row: noise, forward, softmax and the per-class sums, without STAs. */
  const noiseRow = async (model: string, m: Model, samples: number, job = {}) => {
    const s = await timed(() =>
      m.analyse(null, { samples, batchSize: 1000, staSamples: 0, layers: [] })
    );
    await report("noise", model, samples / s, { task: "noise", samples, batchSize: 1000, ...job });
  };

  // 1. One training epoch of smaller (Adam, batch 128), the whole training set.
  {
    using m = Model.create("smaller", { seed: 0, mean, std });
    await trainRow("smaller", m, { batchSize: 128 }, {});
  }
  // 1b. One training epoch of zoo nets 2 (MLP, batch norm) and 11.1 (CNN, BN2d, avg pool), with
  // the zoo's schedule: batch 64, constant learning rate, no weight decay.
  for (const id of ["2", "11.1"]) {
    const net = ZOO_NETS.find((n) => n.id === id)!;
    using m = Model.create(net.spec, { seed: 0, mean, std });
    const options = {
      batchSize: ZOO_SCHEDULE.batchSize,
      lrMax: net.lr,
      lrMin: net.lr,
      weightDecay: 0,
      optimizer: net.optimizer,
    };
    await trainRow(`zoo ${id}`, m, options, {
      spec: net.spec,
      optimizer: net.optimizer,
      lr: net.lr,
      weightDecay: 0,
    });
  }
  for (const name of ["smaller", "larger"] as const) {
    using m = Model.create(name, { seed: 0, mean, std });
    // 2. Inference on test images, 1,000 per batch.
    const images = test.images.subarray(0, sizes.inference * 784);
    await m.predict(images.subarray(0, 1000 * 784));
    const s = await timed(() => m.predict(images));
    await report("inference", name, sizes.inference / s, {
      task: "inference",
      images: sizes.inference,
      batchSize: 1000,
    });
    // 3. White-noise analysis: noise, forward, softmax, per-class sums (three variants).
    await noiseRow(name, m, sizes.noise[name]);
  }
  // 3'. smaller as `torch.onnx.export` writes it (the peer's own Smaller, batch norms folded
  // into the conv biases), imported from ONNX: white noise beside the built-in smaller, timed
  // alternately, best of two each. The peer runs its Smaller on the same noise.
  {
    const weights = `${cache}/imported-smaller.safetensors`;
    const { spec } = convertOnnx(IMPORTED_SMALLER, weights, "imported-smaller");
    using imported = Model.create(spec, { seed: 0, mean, std });
    imported.loadWeights(weights);
    using builtin = Model.create("smaller", { seed: 0, mean, std });
    const samples = sizes.noise.smaller;
    const best = { imported: 0, builtin: 0 };
    for (let round = 0; round < 2; round++) {
      for (const [key, m] of [["imported", imported], ["builtin", builtin]] as const) {
        const s = await timed(() =>
          m.analyse(null, { samples, batchSize: 1000, staSamples: 0, layers: [] })
        );
        best[key] = Math.max(best[key], samples / s);
      }
    }
    await report("noise", "smaller (onnx)", best.imported, {
      task: "noise",
      model: "smaller",
      samples,
      batchSize: 1000,
    });
    rows[rows.length - 1].vsBuiltin = best.imported / best.builtin;
    console.log(
      `imported smaller ${best.imported.toFixed(0)} images/s, built-in ${
        best.builtin.toFixed(0)
      } images/s: ${(best.imported / best.builtin).toFixed(2)}x the built-in`,
    );
  }
  // 3a. The recurrent built-ins (28 rows through two layers of 128): a training epoch on the
  // first images, and white noise. PyTorch runs nn.RNN and nn.LSTM, its fused CPU kernels.
  for (const name of ["rnn", "lstm"] as const) {
    using m = Model.create(name, { seed: 0, mean, std });
    const spec = m.info().spec;
    const limit = sizes.recurrentTrain;
    await trainRow(name, m, { batchSize: 128 }, { spec, limit }, limit);
    await noiseRow(name, m, sizes.noise.recurrent, { spec });
  }
  // 3b. One epoch of the MLP GAN (deno task gan's default): D on real and fake, then G.
  {
    using g = Model.create(GAN_SPECS.mlp.generator, { seed: 0, mean: 0.5, std: 0.5 });
    using d = Model.create(GAN_SPECS.mlp.discriminator, { seed: 1, mean: 0.5, std: 0.5 });
    const s = await timed(() => ganTrainEpoch(g, d, train.images, { epoch: 0 }));
    await report("gan epoch", "mlp", train.count / s, {
      task: "gan",
      generator: GAN_SPECS.mlp.generator,
      discriminator: GAN_SPECS.mlp.discriminator,
      images: `${cache}/images.npy`,
      batchSize: 128,
    });
  }
  // 3c. Integrated gradients of the label logit, 50 Gauss-Legendre steps, black baseline,
  // 500 rows per pass: wna's attribute() against Captum's IntegratedGradients.
  {
    using m = Model.create("smaller", { seed: 0, mean, std });
    const count = quick ? 200 : 1000;
    const images = train.images.subarray(0, count * 784);
    const targets = Array.from(train.labels.subarray(0, count), (unit) => ({
      layer: "logits",
      unit,
    }));
    const options = { steps: 50, internalBatch: 500 };
    const s = await timed(() =>
      attribute(m, images, { method: "integrated_gradients", targets, ...options })
    );
    await report("integrated gradients", "smaller", count / s, {
      task: "integrated_gradients",
      images: `${cache}/images.npy`,
      labels: `${cache}/labels.npy`,
      count,
      ...options,
    });
  }
  // 4. FGSM: forward, backward to the input, sign step, clip.
  {
    using m = Model.create("smaller", { seed: 0, mean, std });
    const n = sizes.fgsm;
    const s = await timed(() =>
      m.fgsm(test.images.subarray(0, n * 784), test.labels.subarray(0, n), 0.1)
    );
    await report("fgsm", "smaller", n / s, { task: "fgsm", images: n, batchSize: 500, eps: 0.1 });
  }
  // 5. t-SNE of test images: wna against scikit-learn (the peer's PCA-50 + TSNE, both timed).
  {
    const points = quick ? 2000 : 10000;
    const images = test.images.subarray(0, points * 784);
    await writeFileAtomic(`${cache}/test-images.npy`, encodeNpy(images, [points, 784]));
    const r = await tsne(images, 784, {});
    const embedding = `${cache}/peer-tsne.npy`;
    await report("tsne", "mnist", points / r.seconds, {
      task: "tsne",
      images: `${cache}/test-images.npy`,
      points,
      embedding,
    });
    const row = rows[rows.length - 1];
    row.trustworthiness = { wna: r.trustworthiness };
    if (withPeer) {
      const peerMap = await readNpy(embedding);
      row.trustworthiness.peer = await trustworthiness(images, 784, peerMap.data, 2, 5);
    }
    console.log(
      `tsne ${points} points: wna ${r.seconds.toFixed(1)} s, trustworthiness wna ${
        r.trustworthiness.toFixed(3)
      }${
        row.trustworthiness.peer === undefined
          ? ""
          : `, scikit-learn ${row.trustworthiness.peer.toFixed(3)}`
      }`,
    );
  }
  const result = {
    date: new Date().toISOString(),
    wna: nativeVersion(),
    pytorch: torchVersion || null,
    cores: navigator.hardwareConcurrency,
    quick,
    rows,
  };
  await writeJsonAtomic(`${outDir}/bench.json`, result);
  console.log(`${navigator.hardwareConcurrency} cores; saved ${outDir}/bench.json`);
});
