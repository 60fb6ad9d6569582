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
import { nativeVersion } from "../ffi/native.ts";
import { choiceFlag, commonFlags, numberFlag, parseFlags, runMain } from "../lib/cli.ts";
import { load, prepare } from "../lib/gpu_check/carry.ts";
import type { Check } from "../lib/gpu_check/check.ts";
import { parity, trainingParity } from "../lib/gpu_check/parity.ts";
import { throughput } from "../lib/gpu_check/throughput.ts";

const HELP = `usage: deno run --no-config --no-lock -A scripts/gpu_check.ts [options]
  --prepare          (on the build machine) write .carry/ for the GPU machine
  --data DIR         the MNIST subset written by --prepare (default .carry/mnist)
  --out DIR          where gpu_check.json goes (default $OUT or out/gpu-check)
  --python PATH      Python with PyTorch for the peer (default python3; --no-peer skips it)
  --no-peer          wna only
  --noise-samples N  samples of the smaller noise run (default 2000000; larger gets a tenth)
  --device NAME      the device under test (default cuda; cpu smoke-tests this script)`;

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
  const check: Check = {
    train,
    test,
    device,
    outDir,
    report: { date: new Date().toISOString(), wna: nativeVersion() },
    failures: [],
    log: (s: string) => console.log(s),
  };
  await parity(check);
  const gpuEpoch = await trainingParity(check);
  const peerPython = values["no-peer"] ? undefined : values.python ?? "python3";
  check.report.throughput = await throughput(check, gpuEpoch, noiseSamples, peerPython);
  await Deno.writeTextFile(`${outDir}/gpu_check.json`, JSON.stringify(check.report, null, 2));
  check.log(`saved ${outDir}/gpu_check.json`);
  if (check.failures.length) throw new Error(`parity failed: ${check.failures.join(", ")}`);
});
