/**
 * Throughput on the device beside PyTorch eager and `torch.compile` (bench/peer.py): white
 * noise (fused kernels and the general path), FGSM and training, each also on candle's own ops
 * to measure what wna's kernels bring.
 * @module
 */
import { Model } from "../../ffi/model.ts";
import { encodeNpy } from "../npy.ts";
import { type Check, MEAN, STD, timed } from "./check.ts";
import { epoch } from "./parity.ts";

/**
 * Every throughput row; `gpuEpoch` is the training parity's epoch on the device.
 * @param peerPython the Python with PyTorch, or undefined for none
 */
export async function throughput(
  c: Check,
  gpuEpoch: { imagesPerSecond: number },
  noiseSamples: number,
  peerPython: string | undefined,
): Promise<Record<string, unknown>[]> {
  const { train, test, device, log } = c;
  // (b)-(d) Throughput on the GPU, beside PyTorch eager and torch.compile.
  const rows: Record<string, unknown>[] = [];
  const peer = async (job: Record<string, unknown>, compile: boolean) => {
    if (peerPython === undefined) return undefined;
    const out = await new Deno.Command(peerPython, {
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
  const candleEpoch = await onCandleOps(() => epoch(c, device));
  candleRow("train epoch", "smaller", gpuEpoch.imagesPerSecond, candleEpoch.imagesPerSecond);
  const largerEpoch = await epoch(c, device, "larger");
  await row("train epoch", "larger", largerEpoch.imagesPerSecond, trainJob, false);
  return rows;
}
