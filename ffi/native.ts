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
function errorBuffer(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(4096);
}

/** An export's parameters without the error buffer and capacity that every export ends with. */
type Arguments<K extends keyof Symbols> = Parameters<Symbols[K]> extends
  [...infer A, unknown, unknown] ? A : never;
/** The exports that run on the caller's thread (`nonblocking` ones return a promise). */
type SyncSymbol = { [K in keyof Symbols]: ReturnType<Symbols[K]> extends number ? K : never }[
  keyof Symbols
];
type AsyncSymbol = Exclude<keyof Symbols, SyncSymbol>;
type Untyped = (...args: unknown[]) => number | Promise<number>;

/**
 * Calls a native export with a fresh error buffer appended, and throws its error as a typed
 * `NativeError` (the one place that turns a status into an exception).
 */
export function call<K extends SyncSymbol>(symbol: K, ...args: Arguments<K>): void {
  const err = errorBuffer();
  unwrap((native()[symbol] as Untyped)(...args, err, BigInt(err.length)) as number, err);
}

/** {@linkcode call} for the `nonblocking` exports, which run on another thread. */
export async function callAsync<K extends AsyncSymbol>(
  symbol: K,
  ...args: Arguments<K>
): Promise<void> {
  const err = errorBuffer();
  unwrap(await (native()[symbol] as Untyped)(...args, err, BigInt(err.length)), err);
}

/** Frees a native handle without throwing: for finalisers and `finally` blocks. */
export function freeQuietly(handle: bigint): void {
  native().wna_free(handle, null, 0n);
}

const encoder = new TextEncoder();
/** UTF-8 bytes of `s`, for `*const u8` + length parameters. */
export function utf8(s: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(s) as Uint8Array<ArrayBuffer>;
}

/**
 * Encodes an options object as the JSON the native side parses. JSON has no NaN or Infinity
 * (`JSON.stringify` writes them as `null`, which the native side would refuse as the wrong
 * type), so a non-finite number is refused here, with its key.
 */
export function optionsJson(what: string, options: object): Uint8Array<ArrayBuffer> {
  return utf8(JSON.stringify(options, (key, value) => {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new RangeError(`${what}: option ${key} must be a finite number, got ${value}`);
    }
    return value;
  }));
}

/**
 * `options` over `defaults`, skipping keys whose value is `undefined` (which `JSON.stringify`
 * would drop, leaving the native side a missing field): the complete options it requires.
 */
export function complete<D extends object, O extends object>(defaults: D, options: O): D & O {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return { ...defaults, ...given } as D & O;
}

/** The exports that write a string: `(…, buf, cap, len_out, err, err_cap)`. */
type TextSymbol =
  | "wna_version"
  | "wna_models"
  | "wna_model_info"
  | "wna_arrays_manifest"
  | "wna_onnx_import";

/**
 * Calls a string-returning export, growing the buffer when the first one is too small.
 * @param args the export's own arguments before the buffer
 */
export function readText(symbol: TextSymbol, ...args: unknown[]): string {
  let cap = 1 << 16;
  for (;;) {
    const buf = new Uint8Array(cap);
    const len = new BigUint64Array(1);
    const err = errorBuffer();
    const status = (native()[symbol] as Untyped)(
      ...args,
      buf,
      BigInt(cap),
      len,
      err,
      BigInt(err.length),
    );
    unwrap(status as number, err);
    const n = Number(len[0]);
    if (n <= cap) return new TextDecoder().decode(buf.subarray(0, n));
    cap = n;
  }
}

/** The library's version and build variant, e.g. `"0.1.0 cpu"`. */
export function nativeVersion(): string {
  return readText("wna_version");
}
