/**
 * What every section of the GPU check shares.
 * @module
 */
import type { Split } from "./carry.ts";

/** The GPU check's shared state: the data, the device under test, the report and failures. */
export interface Check {
  train: Split;
  test: Split;
  device: "cuda" | "cpu";
  outDir: string;
  report: Record<string, unknown>;
  /** Names of the parity checks that failed: the run exits non-zero if there is any. */
  failures: string[];
  log: (line: string) => void;
}

/** The normalisation every model of the check uses (MNIST's). */
export const MEAN = 0.1307;
export const STD = 0.3081;

export async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await f();
  return [r, (performance.now() - t) / 1000];
}

export function maxAbsDiff(a: Float32Array, b: Float32Array) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
