/**
 * Array sets: how long native calls hand back named float arrays, and the progress counters
 * polled while they run.
 * @module
 */
import { call, freeQuietly, readText, utf8 } from "./native.ts";

/** A named n-dimensional float array. */
export interface NdArray {
  shape: number[];
  data: Float32Array;
}

/** Called while a long native call runs. */
export type ProgressCallback = (done: number, total: number) => void;

/** Checks that `images` holds n x 784 pixels; returns n. */
export function checkImages(images: Float32Array, what = "images"): number {
  if (!(images instanceof Float32Array) || images.length === 0 || images.length % 784 !== 0) {
    throw new RangeError(
      `${what}: expected a non-empty Float32Array of n x 784 pixels, got ${
        images?.length ?? typeof images
      } values`,
    );
  }
  return images.length / 784;
}

/** Runs a native call with a `[done, total]` counter pair, polled into `onProgress`. */
export async function withProgress<T>(
  run: (counters: BigUint64Array<ArrayBuffer>) => Promise<T>,
  onProgress?: ProgressCallback,
): Promise<T> {
  const counters = new BigUint64Array(2);
  const poll = () => onProgress?.(Number(counters[0]), Number(counters[1]));
  const timer = onProgress ? setInterval(poll, 200) : undefined;
  try {
    const result = await run(counters);
    poll();
    return result;
  } finally {
    clearInterval(timer);
  }
}

/** One array as the native manifest describes it (`native/src/arrays.rs`). */
interface ArrayEntry {
  name: string;
  dtype: "f32";
  shape: number[];
}

/** A native array set once copied out: its arrays, and the typed summary of exact values. */
export interface ArraySet<S = Record<string, unknown>> {
  arrays: Record<string, NdArray>;
  /** Counts (u64) and sums (f64) that must not pass through f32. */
  summary: S;
}

/** Copies every array out of a native array set, then frees it. */
export function readArrays<S = Record<string, unknown>>(handle: bigint): ArraySet<S> {
  try {
    const manifest = JSON.parse(readText("wna_arrays_manifest", handle)) as {
      arrays: ArrayEntry[];
      summary: S;
    };
    const arrays: Record<string, NdArray> = {};
    for (const { name, shape } of manifest.arrays) {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (data.length > 0) {
        const n = utf8(name);
        call("wna_arrays_read", handle, n, BigInt(n.length), data, BigInt(data.length));
      }
      arrays[name] = { shape, data };
    }
    return { arrays, summary: manifest.summary };
  } finally {
    freeQuietly(handle);
  }
}

/** An array of numbers from a summary, as a float array for files and figures. */
export function summaryArray(values: readonly number[]): NdArray {
  return { shape: [values.length], data: Float32Array.from(values) };
}

/**
 * Runs an export that returns an array-set handle in its last own argument, with progress,
 * and copies the set out.
 */
export async function arraySetCall<S = Record<string, unknown>>(
  run: (counters: BigUint64Array<ArrayBuffer>, out: BigUint64Array<ArrayBuffer>) => Promise<void>,
  onProgress?: ProgressCallback,
): Promise<ArraySet<S>> {
  const out = new BigUint64Array(1);
  await withProgress((counters) => run(counters, out), onProgress);
  return readArrays<S>(out[0]);
}
