/**
 * `.npy` and `.npz` writers (NumPy format 1.0), so `numpy.load` reads what wna writes, and a
 * `.npy` reader for the arrays users bring (any format version, C order, common dtypes).
 * @module
 */
import { concatBytes, crc32 } from "./_crc32.ts";
import { writeFileAtomic } from "./files.ts";

type Typed = Float32Array | Float64Array | Int32Array | Uint8Array;

function descr(data: Typed): string {
  if (data instanceof Float32Array) return "<f4";
  if (data instanceof Float64Array) return "<f8";
  if (data instanceof Int32Array) return "<i4";
  return "|u1";
}

/**
 * Encodes a C-ordered array as `.npy` bytes.
 * @param data the values
 * @param shape the dimensions; their product must equal `data.length`
 * @returns the file's bytes
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeNpy } from "./npy.ts";
 * const bytes = encodeNpy(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * assert.ok(bytes[0] === 0x93);
 * ```
 */
export function encodeNpy(data: Typed, shape: number[]): Uint8Array<ArrayBuffer> {
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== data.length) {
    throw new RangeError(
      `npy: shape ${JSON.stringify(shape)} needs ${size} values, got ${data.length}`,
    );
  }
  const head = npyHeader(descr(data), shape);
  const out = new Uint8Array(head.length + data.byteLength);
  out.set(head, 0);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), head.length);
  return out;
}

/** The magic, version and header of a `.npy` file; the data follows it. */
function npyHeader(dtype: string, shape: number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad so that the data starts on a 64-byte boundary, as NumPy does.
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const text = new TextEncoder().encode(header);
  const out = new Uint8Array(10 + text.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0); // \x93NUMPY v1.0
  new DataView(out.buffer).setUint16(8, text.length, true);
  out.set(text, 10);
  return out;
}

/**
 * Writes a `.npy` of `rows` rows from parts that arrive one at a time (each a block of whole
 * rows), so the whole array is never in memory; atomic, like every write here.
 * @param path the file
 * @param shape `[rows, ...]`: the total shape
 * @param parts the values in order, all of one typed-array kind
 */
export async function writeNpyParts(
  path: string,
  shape: number[],
  parts: AsyncIterable<Typed>,
): Promise<void> {
  const tmp = `${path}.${Deno.pid}.tmp`;
  const size = shape.reduce((a, b) => a * b, 1);
  let written = 0;
  {
    using file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    let headed = false;
    for await (const part of parts) {
      if (!headed) {
        await writeAll(file, npyHeader(descr(part), shape));
        headed = true;
      }
      await writeAll(file, new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
      written += part.length;
    }
    if (!headed) await writeAll(file, npyHeader("<f4", shape));
  }
  if (written !== size) {
    await Deno.remove(tmp);
    throw new RangeError(
      `npy: ${path}: shape ${JSON.stringify(shape)} needs ${size} values, got ${written}`,
    );
  }
  await Deno.rename(tmp, path);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

/**
 * Packs named arrays into an uncompressed `.npz` (a zip of `.npy` files).
 * @param arrays name to `{ data, shape }`
 * @returns the file's bytes
 */
export function encodeNpz(
  arrays: Record<string, { data: Typed; shape: number[] }>,
): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, { data, shape }] of Object.entries(arrays)) {
    const body = encodeNpy(data, shape);
    const fname = enc.encode(`${name}.npy`);
    const crc = crc32(body);
    const local = new Uint8Array(30 + fname.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, body.length, true);
    lv.setUint16(26, fname.length, true);
    local.set(fname, 30);
    const central = new Uint8Array(46 + fname.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, body.length, true);
    cv.setUint16(28, fname.length, true);
    cv.setUint32(42, offset, true);
    central.set(fname, 46);
    locals.push(local, body);
    centrals.push(central);
    offset += local.length + body.length;
  }
  const centralSize = centrals.reduce((a, c) => a + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, centrals.length, true);
  ev.setUint16(10, centrals.length, true);
  ev.setUint32(12, centralSize, true);
  ev.setUint32(16, offset, true);
  const parts = [...locals, ...centrals, end];
  return concatBytes(parts);
}

/** Writes an array to `path` as `.npy`, atomically. */
export async function writeNpy(path: string, a: { data: Typed; shape: number[] }): Promise<void> {
  await writeFileAtomic(path, encodeNpy(a.data, a.shape));
}

/** A decoded `.npy` array: its values (converted to f32) and shape. */
export interface NpyArray {
  data: Float32Array;
  shape: number[];
  /** The file's dtype, as NumPy spells it (`<f4`, `<f8`, `|u1`, ...). */
  dtype: string;
}

const READERS: Record<string, [number, (v: DataView, o: number) => number]> = {
  "<f4": [4, (v, o) => v.getFloat32(o, true)],
  "<f8": [8, (v, o) => v.getFloat64(o, true)],
  "<f2": [2, (v, o) => v.getFloat16?.(o, true) ?? NaN],
  "<i1": [1, (v, o) => v.getInt8(o)],
  "|i1": [1, (v, o) => v.getInt8(o)],
  "|u1": [1, (v, o) => v.getUint8(o)],
  "<u1": [1, (v, o) => v.getUint8(o)],
  "|b1": [1, (v, o) => v.getUint8(o)],
  "<i2": [2, (v, o) => v.getInt16(o, true)],
  "<u2": [2, (v, o) => v.getUint16(o, true)],
  "<i4": [4, (v, o) => v.getInt32(o, true)],
  "<u4": [4, (v, o) => v.getUint32(o, true)],
  "<i8": [8, (v, o) => Number(v.getBigInt64(o, true))],
  "<u8": [8, (v, o) => Number(v.getBigUint64(o, true))],
};

/**
 * Decodes `.npy` bytes (format 1.0, 2.0 or 3.0; C order; little-endian numbers or bytes) into
 * f32 values. A file that is not `.npy`, is cut short, is Fortran-ordered or holds another
 * dtype gets an error that says which and how to fix it.
 * @param bytes the file's bytes
 * @param what names the file in errors
 * @returns values, shape and the stored dtype
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeNpy, encodeNpy } from "./npy.ts";
 * const a = decodeNpy(encodeNpy(new Float32Array([1, 2, 3, 4]), [2, 2]));
 * assert.ok(a.shape[1] === 2 && a.data[3] === 4);
 * ```
 */
export function decodeNpy(bytes: Uint8Array, what = "array"): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) {
    throw new TypeError(`${what}: not a .npy file (no \\x93NUMPY magic); save it with numpy.save`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLength;
  if (![1, 2, 3].includes(major) || start > bytes.length) {
    throw new TypeError(`${what}: .npy header is cut short or of unknown version ${major}`);
  }
  const header = new TextDecoder().decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const dtype = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (dtype === undefined || fortran === undefined || shapeText === undefined) {
    throw new TypeError(`${what}: unreadable .npy header ${JSON.stringify(header.trim())}`);
  }
  if (fortran === "True") {
    throw new TypeError(
      `${what}: Fortran-ordered .npy; save numpy.ascontiguousarray(a) instead`,
    );
  }
  const reader = READERS[dtype];
  if (!reader) {
    throw new TypeError(
      `${what}: unsupported dtype ${dtype} (expected little-endian floats or integers); ` +
        `convert with a.astype("float32")`,
    );
  }
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const [size, read] = reader;
  if (bytes.length - start < count * size) {
    throw new TypeError(
      `${what}: .npy data is cut short: shape (${shape.join(", ")}) of ${dtype} needs ${
        count * size
      } bytes, the file has ${bytes.length - start}`,
    );
  }
  const data = new Float32Array(count);
  if (dtype === "<f4" && (bytes.byteOffset + start) % 4 === 0) {
    data.set(new Float32Array(bytes.buffer, bytes.byteOffset + start, count));
  } else {
    for (let i = 0; i < count; i++) data[i] = read(view, start + i * size);
  }
  return { data, shape, dtype };
}

/** Reads a `.npy` file (see {@linkcode decodeNpy}). */
export async function readNpy(path: string): Promise<NpyArray> {
  return decodeNpy(await Deno.readFile(path), path);
}
