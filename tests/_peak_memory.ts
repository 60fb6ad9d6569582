/**
 * Helper of noise_test.ts (not a test file): runs one analysis of `samples` noise images and
 * prints the process's peak resident memory in KiB. Run with -A: /proc/self needs it.
 */
import { Model } from "../ffi/model.ts";

const samples = Number(Deno.args[0]);
const model = Model.create(Deno.args[1] ?? "logreg", { seed: 0 });
await model.analyse(null, { samples, batchSize: 1000, staSamples: 1000 });
const status = await Deno.readTextFile("/proc/self/status");
console.log(/VmHWM:\s+(\d+)/.exec(status)![1]);
