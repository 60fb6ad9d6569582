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
import { nativeVersion } from "../ffi/native.ts";
import { type Bench, ensurePeer } from "../lib/bench/context.ts";
import { gradientRows } from "../lib/bench/gradients.ts";
import { inferenceRows } from "../lib/bench/inference.ts";
import { recurrentRows, trainingRows } from "../lib/bench/training.ts";
import { tsneRow } from "../lib/bench/tsne.ts";
import { commonFlags, parseFlags, runMain } from "../lib/cli.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/files.ts";
import { encodeNpy } from "../lib/npy.ts";
import { permissionsHelp } from "../lib/tasks.ts";

const HELP = `usage: deno task bench [options]
  --quick            fewer images everywhere (a smoke run, not figures to quote)
  --no-peer          wna only, without installing or running PyTorch
  --python PATH      the Python used to create bench/.venv (default python3)
  --out DIR          (default out/bench)`;

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

  const bench: Bench = {
    train,
    test,
    mean,
    std,
    quick,
    withPeer,
    cache,
    sizes,
    rows: [],
    torchVersion: "",
  };
  await trainingRows(bench);
  await inferenceRows(bench);
  await recurrentRows(bench);
  await gradientRows(bench);
  await tsneRow(bench);
  const result = {
    date: new Date().toISOString(),
    wna: nativeVersion(),
    pytorch: bench.torchVersion || null,
    cores: navigator.hardwareConcurrency,
    quick,
    rows: bench.rows,
  };
  await writeJsonAtomic(`${outDir}/bench.json`, result);
  console.log(`${navigator.hardwareConcurrency} cores; saved ${outDir}/bench.json`);
});
