/**
 * Helper of noise_test.ts (not a test file): runs one analysis of noise images and prints the
 * process's peak resident memory in KiB. Run with -A: /proc/self needs it.
 *
 * Arguments: `samples model [staSamples batchSize]`, where `model` is a built-in name, `spec:FILE` (a wna
 * spec, freshly initialised), `onnx:FILE` (an ONNX classifier, converted here) or
 * `state-dict:STEM` (`STEM.spec.json` with the PyTorch state dict `STEM.safetensors`): every way
 * a model comes in.
 */
import { Model } from "../ffi/model.ts";
import { convertOnnx } from "../ffi/onnx.ts";
import type { NetSpec } from "../ffi/spec.ts";

function open(model: string): Model {
  const [kind, path] = model.split(/:(.*)/s);
  if (kind === "onnx") {
    const weights = `${Deno.makeTempDirSync()}/weights.safetensors`;
    const net = Model.create(convertOnnx(path, weights, "imported").spec, { seed: 0 });
    net.loadWeights(weights);
    return net;
  }
  if (kind === "spec") {
    return Model.create(JSON.parse(Deno.readTextFileSync(path)) as NetSpec, { seed: 0 });
  }
  if (kind === "state-dict") {
    const spec = JSON.parse(Deno.readTextFileSync(`${path}.spec.json`)) as NetSpec;
    const net = Model.create(spec, { seed: 0 });
    net.loadWeights(`${path}.safetensors`);
    return net;
  }
  return Model.create(model, { seed: 0 });
}

const samples = Number(Deno.args[0]);
const model = open(Deno.args[1] ?? "logreg");
const staSamples = Number(Deno.args[2] ?? 1000);
const batchSize = Number(Deno.args[3] ?? 1000);
await model.analyse(null, { samples, batchSize, staSamples });
const status = await Deno.readTextFile("/proc/self/status");
console.log(/VmHWM:\s+(\d+)/.exec(status)![1]);
