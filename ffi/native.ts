/**
 * Opens the native library once and hands out its symbols.
 * @module
 */
import { LibraryNotFoundError, unwrap } from "./errors.ts";
import { resolveLibrary } from "./library.ts";
import { symbols } from "./symbols.ts";

/** The opened library's symbols. */
export type Symbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

let opened: { lib: Deno.DynamicLibrary<typeof symbols>; device: string } | undefined;

/** Which device the library is opened for: `WNA_DEVICE` or `cpu`. */
export function defaultDevice(): "cpu" | "cuda" | "auto" {
  const d = Deno.env.get("WNA_DEVICE") ?? "cpu";
  if (d !== "cpu" && d !== "cuda" && d !== "auto") {
    throw new TypeError(`invalid WNA_DEVICE: "${d}" (expected cpu, cuda or auto)`);
  }
  return d;
}

/** Opens (once) and returns the native symbols. */
export function native(device: "cpu" | "cuda" | "auto" = defaultDevice()): Symbols {
  if (opened) return opened.lib.symbols;
  const path = resolveLibrary(device);
  try {
    opened = { lib: Deno.dlopen(path, symbols), device };
  } catch (cause) {
    // The loader's own words name what is missing (a file, libcublas.so.13, a symbol).
    const why = cause instanceof Error ? ` (${cause.message.split("\n")[0]})` : "";
    throw new LibraryNotFoundError(
      `wna: cannot open the native library at ${path}${why}; rebuild it with ` +
        "`deno task build` (or `deno task build:cuda` for the CUDA variant; on a GPU machine, " +
        "put the folder holding libcublas.so.13 and libcurand.so.10 on LD_LIBRARY_PATH)",
      { cause },
    );
  }
  return opened.lib.symbols;
}

/** A fresh buffer for a native error message (one per call: calls may run on other threads). */
export function errorBuffer(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(4096);
}

const encoder = new TextEncoder();
/** UTF-8 bytes of `s`, for `*const u8` + length parameters. */
export function utf8(s: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(s) as Uint8Array<ArrayBuffer>;
}

/**
 * Encodes an options object as the JSON the native side parses. JSON has no NaN or Infinity
 * (`JSON.stringify` writes them as `null`, which would silently mean "use the default"), so a
 * non-finite number is refused here, with its key.
 */
export function optionsJson(what: string, options: object): Uint8Array<ArrayBuffer> {
  return utf8(JSON.stringify(options, (key, value) => {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new RangeError(`${what}: option ${key} must be a finite number, got ${value}`);
    }
    return value;
  }));
}

/** Calls a string-returning export, growing the buffer when the first one is too small. */
export function readText(
  call: (
    buf: Uint8Array<ArrayBuffer>,
    len: BigUint64Array<ArrayBuffer>,
    err: Uint8Array<ArrayBuffer>,
  ) => number,
): string {
  let cap = 1 << 16;
  for (;;) {
    const buf = new Uint8Array(cap);
    const len = new BigUint64Array(1);
    const err = errorBuffer();
    unwrap(call(buf, len, err), err);
    const n = Number(len[0]);
    if (n <= cap) return new TextDecoder().decode(buf.subarray(0, n));
    cap = n;
  }
}

/** The library's version and build variant, e.g. `"0.1.0 cpu"`. */
export function nativeVersion(): string {
  const lib = native();
  return readText((buf, len) => lib.wna_version(buf, BigInt(buf.length), len));
}
