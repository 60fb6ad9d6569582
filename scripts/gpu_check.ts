/**
 * `scripts/gpu_check.ts`: the CUDA build on a GPU machine — parity with the CPU and speed against
 * PyTorch on the same GPU in the same run.
 *
 * Here (with the CUDA library built by `deno task build:cuda`):
 *   deno task gpu-check:prepare      writes .carry/: deno.xz, libwna-cuda.so, an MNIST subset
 * On the GPU machine (no network, no Deno, no Rust; it has CUDA and PyTorch), from the checkout,
 * with cuBLAS 13 and cuRAND 10 found where PyTorch's wheels put them:
 *   export LD_LIBRARY_PATH=$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13/lib"))')
 *   xz -dc .carry/deno.xz > /tmp/deno && chmod +x /tmp/deno &&
 *   WNA_NATIVE_LIB=.carry/libwna-cuda.so /tmp/deno run --no-config --no-lock -A \
 *     scripts/gpu_check.ts --data .carry/mnist --out "$OUT"
 * (On the H100 of 2026-11-23 that folder was /opt/torch/.venv/lib/python3.12/site-packages/
 * nvidia/cu13/lib.) `WNA_PROFILE=1` is set for one extra noise run per model, which prints where
 * the time goes.
 * It imports no npm package, so it runs without `deno install`. The CUDA library also runs on the
 * CPU, so parity compares two devices of one build in one process.
 * @module
 */
import { gzipSync } from "node:zlib";
import { readIdx } from "../data/idx.ts";
import { analysisArrays, Model } from "../ffi/model.ts";
import { nativeVersion } from "../ffi/native.ts";
import { choiceFlag, commonFlags, numberFlag, parseFlags, runMain } from "../lib/cli.ts";
import { encodeNpy } from "../lib/npy.ts";

const HELP = `usage: deno run --no-config --no-lock -A scripts/gpu_check.ts [options]
  --prepare          (on the build machine) write .carry/ for the GPU machine
  --data DIR         the MNIST subset written by --prepare (default .carry/mnist)
  --out DIR          where gpu_check.json goes (default $OUT or out/gpu-check)
  --python PATH      Python with PyTorch for the peer (default python3; --no-peer skips it)
  --no-peer          wna only
  --noise-samples N  samples of the smaller noise run (default 2000000; larger gets a tenth)
  --device NAME      the device under test (default cuda; cpu smoke-tests this script)`;

const MEAN = 0.1307;
const STD = 0.3081;

/** An IDX file (big-endian header) of `u8` data with the given dims, gzipped. */
function idxGz(data: Uint8Array, dims: number[]): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  view.setUint8(2, 0x08);
  view.setUint8(3, dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const all = new Uint8Array(header.length + data.length);
  all.set(header);
  all.set(data, header.length);
  return gzipSync(all);
}

async function prepare() {
  const { loadDataset } = await import("../data/datasets.ts");
  await Deno.mkdir(".carry/mnist", { recursive: true });
  const toU8 = (f: Float32Array) => Uint8Array.from(f, (v) => Math.round(v * 255));
  const train = await loadDataset("mnist", "train", { limit: 12000 });
  const test = await loadDataset("mnist", "test");
  for (const [name, ds] of [["train", train], ["test", test]] as const) {
    await Deno.writeFile(
      `.carry/mnist/${name}-images.idx.gz`,
      idxGz(toU8(ds.images), [ds.count, 28, 28]),
    );
    await Deno.writeFile(`.carry/mnist/${name}-labels.idx.gz`, idxGz(ds.labels, [ds.count]));
  }
  const lib = "native/target-cuda/release/libwna.so";
  await Deno.copyFile(lib, ".carry/libwna-cuda.so").catch((cause) => {
    throw new Error(`gpu-check: no CUDA library at ${lib}; run \`deno task build:cuda\` first`, {
      cause,
    });
  });
  const xz = await new Deno.Command("xz", {
    args: ["-9", "-T0", "-c", Deno.execPath()],
    stdout: "piped",
  })
    .output();
  if (!xz.success) throw new Error("gpu-check: xz failed; install xz-utils");
  await Deno.writeFile(".carry/deno.xz", xz.stdout);
  let total = 0;
  for await (const e of Deno.readDir(".carry")) {
    if (e.isFile) total += (await Deno.stat(`.carry/${e.name}`)).size;
  }
  for await (const e of Deno.readDir(".carry/mnist")) {
    total += (await Deno.stat(`.carry/mnist/${e.name}`)).size;
  }
  console.log(`.carry/ holds ${(total / 2 ** 20).toFixed(1)} MiB (carry limit 64 MiB)`);
}

async function load(dir: string, split: "train" | "test") {
  const images = await readIdx(`${dir}/${split}-images.idx.gz`, 3);
  const labels = await readIdx(`${dir}/${split}-labels.idx.gz`, 1);
  return {
    images: Float32Array.from(images.data as Uint8Array, (v) => v / 255),
    labels: new Uint8Array(labels.data as Uint8Array),
    count: labels.dims[0],
  };
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await f();
  return [r, (performance.now() - t) / 1000];
}

function maxAbsDiff(a: Float32Array, b: Float32Array) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** What this script may do, for --help. */
const PERMISSIONS =
  `permissions: with --prepare (deno task gpu-check:prepare) --allow-read --allow-env --allow-ffi
  --allow-write=.carry --allow-run=xz, writing only to .carry; on the GPU machine -A (a
  throwaway machine with no network), writing only to --out`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("out", "device"),
    prepare: { type: "boolean" },
    data: { type: "string" },
    python: { type: "string" },
    "no-peer": { type: "boolean" },
    "noise-samples": { type: "string" },
  });
  if (values.help) return console.log(`${HELP}\n${PERMISSIONS}`);
  if (values.prepare) return await prepare();
  const outDir = values.out ?? Deno.env.get("OUT") ?? "out/gpu-check";
  await Deno.mkdir(outDir, { recursive: true });
  const noiseSamples = numberFlag("noise-samples", values["noise-samples"], 2_000_000, {
    integer: true,
    min: 1000,
  });
  const device = choiceFlag("device", values.device, ["cuda", "cpu"] as const, "cuda");
  const data = values.data ?? ".carry/mnist";
  const train = await load(data, "train");
  const test = await load(data, "test");
  const report: Record<string, unknown> = { date: new Date().toISOString(), wna: nativeVersion() };
  const log = (s: string) => console.log(s);
  // Names of the parity checks that failed: the run exits non-zero if there is any.
  const failures: string[] = [];

  // (a) Parity: one set of weights, the same noise seed, CPU against CUDA.
  const cpu = Model.create("smaller", { seed: 0, mean: MEAN, std: STD, device: "cpu" });
  await cpu.trainEpoch(train.images, train.labels, {
    totalSteps: Math.ceil(train.count / 128),
    epoch: 0,
  });
  const weights = `${outDir}/parity.safetensors`;
  cpu.saveWeights(weights);
  const gpu = Model.create("smaller", { mean: MEAN, std: STD, device });
  gpu.loadWeights(weights);
  // Every array analyse returns: the class maps and the STA and activation statistics of all
  // three hidden layers, so the CUDA path of each accumulator is checked, not only the logits.
  const opts = { samples: 50_000, seed: 1, batchSize: 5000, staSamples: 5000 };
  const a = await cpu.analyse(null, opts);
  const b = await gpu.analyse(null, opts);
  const countDiff = a.counts.data.reduce((t, v, i) => t + Math.abs(v - b.counts.data[i]), 0);
  const arrays: Record<string, { maxAbsDiff: number; maxAbs: number }> = {};
  let worstMap = 0;
  const bArrays = analysisArrays(b);
  for (const [key, x] of Object.entries(analysisArrays(a))) {
    const d = maxAbsDiff(x.data, bArrays[key].data);
    const scale = x.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    arrays[key] = { maxAbsDiff: d, maxAbs: scale };
    // Maps are compared in absolute terms; sums such as counts and activation sums relatively.
    worstMap = Math.max(worstMap, scale > 1 ? d / scale : d);
  }
  const mapDiff = maxAbsDiff(a.classImages.data, b.classImages.data);
  const logitDiff = maxAbsDiff(
    await cpu.predict(test.images.subarray(0, 1000 * 784)),
    await gpu.predict(test.images.subarray(0, 1000 * 784)),
  );
  report.parity = {
    samples: opts.samples,
    countDifferences: countDiff,
    classImageMaxAbsDiff: mapDiff,
    worstArrayDiff: worstMap,
    logitMaxAbsDiff: logitDiff,
    arrays,
  };
  const parityOk = countDiff === 0 && worstMap <= 1e-4;
  if (!parityOk) failures.push("analysis parity");
  log(
    `parity: counts differ in ${countDiff} of ${opts.samples} samples; class images within ${
      mapDiff.toExponential(2)
    }, all ${Object.keys(arrays).length} arrays within ${worstMap.toExponential(2)} ` +
      `(${parityOk ? "PASS" : "FAIL"} at 1e-4); logits within ${logitDiff.toExponential(2)}`,
  );
  // The fused white-noise kernels (cuda/white_noise.cu) against the general path on the same
  // device: pure noise without STA, where every batch takes the fused kernels.
  const pure = { samples: 50_000, seed: 2, batchSize: 5000, staSamples: 0, layers: [] };
  const fused = await gpu.analyse(null, pure);
  Deno.env.set("WNA_FUSED", "0");
  const general = await gpu.analyse(null, pure);
  Deno.env.delete("WNA_FUSED");
  const fusedCounts = fused.counts.data.reduce(
    (t, v, i) => t + Math.abs(v - general.counts.data[i]),
    0,
  );
  const fusedMaps = ["classImages", "weightedImages", "thresholdImages"] as const;
  const fusedDiff = Math.max(
    ...fusedMaps.map((k) => maxAbsDiff(fused[k].data, general[k].data)),
  );
  const fusedOk = fusedCounts === 0 && fusedDiff <= 1e-4;
  if (!fusedOk) failures.push("fused parity");
  report.fusedParity = {
    samples: pure.samples,
    countDifferences: fusedCounts,
    mapMaxAbsDiff: fusedDiff,
  };
  log(
    `fused kernels against the general path: counts differ in ${fusedCounts} of ${pure.samples}; ` +
      `class, weighted and threshold images within ${fusedDiff.toExponential(2)} ` +
      `(${fusedOk ? "PASS" : "FAIL"} at 1e-4)`,
  );
  // Input gradients (FGSM's engine) through the backward pass of each device.
  const probe = test.images.subarray(0, 1000 * 784);
  const probeLabels = test.labels.subarray(0, 1000);
  const ga = await cpu.inputGradients(probe, probeLabels);
  const gb = await gpu.inputGradients(probe, probeLabels);
  const gradScale = ga.gradients.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const gradDiff = maxAbsDiff(ga.gradients, gb.gradients) / gradScale;
  const adversarial = async (m: Model) =>
    (await m.evaluate(await m.fgsm(probe, probeLabels, 0.1), probeLabels)).accuracy;
  const [fa, fb] = [await adversarial(cpu), await adversarial(gpu)];
  if (gradDiff > 1e-4) failures.push("input-gradient parity");
  report.gradientParity = { relativeMaxDiff: gradDiff, fgsmAccuracy: { cpu: fa, cuda: fb } };
  log(
    `input gradients: within ${gradDiff.toExponential(2)} of the largest ` +
      `(${gradDiff <= 1e-4 ? "PASS" : "FAIL"} at 1e-4); FGSM eps 0.1 accuracy cpu ${
        (100 * fa).toFixed(2)
      }%, ${device} ${(100 * fb).toFixed(2)}%`,
  );
  cpu.close();
  gpu.close();

  // Training parity and epoch time: the same seed on both devices.
  const epoch = async (device: "cpu" | "cuda", model: "smaller" | "larger" = "smaller") => {
    using m = Model.create(model, { seed: 3, mean: MEAN, std: STD, device });
    const [, s] = await timed(() =>
      m.trainEpoch(train.images, train.labels, {
        totalSteps: Math.ceil(train.count / 128),
        epoch: 0,
      })
    );
    const accuracy = (await m.evaluate(test.images, test.labels)).accuracy;
    return { seconds: s, imagesPerSecond: train.count / s, accuracy };
  };
  {
    // Warm-up on a throwaway model: the driver JIT-compiles candle's PTX on first use (and
    // caches it on disk), which is not training time.
    using w = Model.create("smaller", { seed: 4, mean: MEAN, std: STD, device });
    await w.trainEpoch(train.images.subarray(0, 1024 * 784), train.labels.subarray(0, 1024), {
      totalSteps: 8,
      epoch: 0,
    });
  }
  const cpuEpoch = await epoch("cpu");
  const gpuEpoch = await epoch(device);
  report.training = { images: train.count, cpu: cpuEpoch, cuda: gpuEpoch };
  if (Math.abs(cpuEpoch.accuracy - gpuEpoch.accuracy) >= 0.01) failures.push("training parity");
  log(
    `training: one epoch of ${train.count} images — cpu ${
      (100 * cpuEpoch.accuracy).toFixed(2)
    }%, ` +
      `${device} ${(100 * gpuEpoch.accuracy).toFixed(2)}% (${
        Math.abs(cpuEpoch.accuracy - gpuEpoch.accuracy) < 0.01 ? "PASS" : "FAIL"
      } at 1 point)`,
  );

  // (b)-(d) Throughput on the GPU, beside PyTorch eager and torch.compile.
  const rows: Record<string, unknown>[] = [];
  const peer = async (job: Record<string, unknown>, compile: boolean) => {
    if (values["no-peer"]) return undefined;
    const out = await new Deno.Command(values.python ?? "python3", {
      args: ["bench/peer.py", JSON.stringify({ ...job, device, compile, mean: MEAN, std: STD })],
      stdout: "piped",
      stderr: "piped",
      // torch.compile can stall on a machine it does not know; one row must not eat the run.
      signal: AbortSignal.timeout(180_000),
    }).output().catch((e: Error) => ({
      success: false,
      stderr: new TextEncoder().encode(String(e)),
      stdout: new Uint8Array(),
    }));
    if (!out.success) {
      return { error: new TextDecoder().decode(out.stderr).split("\n").slice(-3).join(" ") };
    }
    return JSON.parse(new TextDecoder().decode(out.stdout)) as { imagesPerSecond: number };
  };
  // torch.compile only where the issue sets a goal against it (white noise); eager elsewhere.
  const row = async (
    task: string,
    model: string,
    wna: number,
    job: Record<string, unknown>,
    compile = true,
  ) => {
    const eager = await peer({ ...job, model }, false);
    const compiled = compile ? await peer({ ...job, model }, true) : undefined;
    const r = { task, model, wna, eager, compiled };
    rows.push(r);
    const ips = (p?: { imagesPerSecond?: number; error?: string }) =>
      p?.imagesPerSecond
        ? `${p.imagesPerSecond.toFixed(0)} (${(wna / p.imagesPerSecond).toFixed(2)}x)`
        : p?.error ?? "-";
    log(
      `${task.padEnd(12)} ${model.padEnd(8)} wna ${wna.toFixed(0)} images/s; pytorch eager ${
        ips(eager)
      }; compiled ${ips(compiled)}`,
    );
  };
  for (
    const [name, samples] of [["smaller", noiseSamples], [
      "larger",
      Math.ceil(noiseSamples / 10),
    ]] as const
  ) {
    using m = Model.create(name, { seed: 0, mean: MEAN, std: STD, device });
    const o = { samples, batchSize: 10_000, staSamples: 0, layers: [] as string[] };
    await m.analyse(null, { ...o, samples: 10_000 });
    const [, s] = await timed(() => m.analyse(null, o));
    await row("noise", name, samples / s, { task: "noise", samples, batchSize: 10_000 });
    if (name === "smaller") {
      // The same run on the general path (candle's ops), to measure what the fused kernels
      // (cuda/white_noise.cu) bring on this GPU.
      Deno.env.set("WNA_FUSED", "0");
      await m.analyse(null, { ...o, samples: 10_000 });
      const [, u] = await timed(() => m.analyse(null, o));
      Deno.env.delete("WNA_FUSED");
      rows.push({ task: "noise, general path", model: name, wna: samples / u });
      log(
        `noise, general path: ${(samples / u).toFixed(0)} images/s (the fused run ${
          (u / s).toFixed(2)
        }x it${device === "cuda" ? "" : "; only CUDA fuses, so both runs took this path"})`,
      );
    }
    // Where the time goes, in a separate run: the profile waits for the GPU at every phase.
    Deno.env.set("WNA_PROFILE", "1");
    await m.analyse(null, { ...o, samples: Math.min(samples, 500_000) });
    Deno.env.delete("WNA_PROFILE");
  }
  // The same work on candle's ops (WNA_CANDLE_OPS=1: im2col forward, conv_transpose2d input
  // gradient, broadcast batch norm), to measure what wna's CUDA conv and batch-norm kernels
  // (cuda/conv.cu, cuda/batch_norm.cu) bring on this GPU.
  const onCandleOps = async <T>(run: () => Promise<T>) => {
    Deno.env.set("WNA_CANDLE_OPS", "1");
    try {
      return await run();
    } finally {
      Deno.env.delete("WNA_CANDLE_OPS");
    }
  };
  const candleRow = (task: string, model: string, kernels: number, candle: number) => {
    rows.push({ task: `${task}, candle's ops`, model, wna: candle });
    log(
      `${task}, candle's ops: ${model} ${candle.toFixed(0)} images/s (wna's kernels ${
        (kernels / candle).toFixed(2)
      }x it)`,
    );
  };
  for (const name of ["smaller", "larger"] as const) {
    using m = Model.create(name, { seed: 0, mean: MEAN, std: STD, device });
    const rate = async () => {
      // Warm-up: the first call on a device loads (JIT-compiles) the kernels.
      await m.fgsm(test.images.subarray(0, 500 * 784), test.labels.subarray(0, 500), 0.1);
      const [, s] = await timed(() => m.fgsm(test.images, test.labels, 0.1));
      return test.count / s;
    };
    const kernels = await rate();
    const job = { task: "fgsm", images: test.count, batchSize: 500, eps: 0.1 };
    await row("fgsm", name, kernels, job, false);
    candleRow("fgsm", name, kernels, await onCandleOps(rate));
  }
  const npyDir = await Deno.makeTempDir();
  await Deno.writeFile(`${npyDir}/images.npy`, encodeNpy(train.images, [train.count, 784]));
  await Deno.writeFile(`${npyDir}/labels.npy`, encodeNpy(train.labels, [train.count]));
  const trainJob = {
    task: "train",
    images: `${npyDir}/images.npy`,
    labels: `${npyDir}/labels.npy`,
    batchSize: 128,
  };
  await row("train epoch", "smaller", gpuEpoch.imagesPerSecond, trainJob, false);
  const candleEpoch = await onCandleOps(() => epoch(device));
  candleRow("train epoch", "smaller", gpuEpoch.imagesPerSecond, candleEpoch.imagesPerSecond);
  const largerEpoch = await epoch(device, "larger");
  await row("train epoch", "larger", largerEpoch.imagesPerSecond, trainJob, false);
  report.throughput = rows;
  await Deno.writeTextFile(`${outDir}/gpu_check.json`, JSON.stringify(report, null, 2));
  log(`saved ${outDir}/gpu_check.json`);
  if (failures.length) throw new Error(`parity failed: ${failures.join(", ")}`);
});
