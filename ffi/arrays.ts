/**
 * Array sets: how long native calls hand back named float arrays, and the progress counters
 * polled while they run.
 * @module
 */
import { unwrap } from "./errors.ts";
import { errorBuffer, native, readText, utf8 } from "./native.ts";

/** A named n-dimensional float array. */
export interface NdArray {
  shape: number[];
  data: Float32Array;
}

/** Called while a long native call runs. */
export type ProgressCallback = (done: number, total: number) => void;

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

/** Copies every array out of a native array set, then frees it. */
export function readArrays(handle: bigint): Record<string, NdArray> {
  const lib = native();
  try {
    const manifest = JSON.parse(
      readText((buf, len, err) =>
        lib.wna_arrays_manifest(handle, buf, BigInt(buf.length), len, err, BigInt(err.length))
      ),
    ) as Record<string, number[]>;
    const result: Record<string, NdArray> = {};
    for (const [name, shape] of Object.entries(manifest)) {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (data.length === 0) {
        result[name] = { shape, data };
        continue;
      }
      const n = utf8(name);
      const err = errorBuffer();
      unwrap(
        lib.wna_arrays_read(
          handle,
          n,
          BigInt(n.length),
          data,
          BigInt(data.length),
          err,
          BigInt(err.length),
        ),
        err,
      );
      result[name] = { shape, data };
    }
    return result;
  } finally {
    lib.wna_free(handle, null, 0n);
  }
}
