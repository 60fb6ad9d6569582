/**
 * Reads `.safetensors` files (F32 tensors), for the reference checks and kernel comparisons.
 * @module
 */

/** One tensor of a safetensors file. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/**
 * Parses safetensors bytes into F32 tensors by name.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSafetensors } from "./safetensors.ts";
 * const header = new TextEncoder().encode(JSON.stringify({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }));
 * const bytes = new Uint8Array(8 + header.length + 4);
 * new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
 * bytes.set(header, 8);
 * assert.ok(parseSafetensors(bytes, "x").w.shape[0] === 1);
 * ```
 */
export function parseSafetensors(
  bytes: Uint8Array,
  name: string,
  options: { skipOtherDtypes?: boolean } = {},
): Record<string, Tensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8) throw new SyntaxError(`${name}: too short for a safetensors file`);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.length) throw new SyntaxError(`${name}: truncated safetensors header`);
  const header = parseHeader(bytes.subarray(8, 8 + n), name);
  const dataLength = bytes.length - 8 - n;
  const out: Record<string, Tensor> = {};
  for (const [key, meta] of Object.entries(header)) {
    if (key === "__metadata__") continue;
    checkEntry(key, meta, dataLength, name);
    if (meta.dtype !== "F32") {
      // PyTorch's state dicts hold I64 counters (batch norm's num_batches_tracked).
      if (options.skipOtherDtypes) continue;
      throw new SyntaxError(`${name}: tensor ${key} is ${meta.dtype}, expected F32`);
    }
    const [a, b] = meta.data_offsets;
    const elements = meta.shape.reduce((x, y) => x * y, 1);
    if (b - a !== elements * 4) {
      throw new SyntaxError(
        `${name}: tensor ${key} has shape [${meta.shape}] (${elements * 4} bytes of F32) but ` +
          `data_offsets [${a}, ${b}] hold ${b - a} bytes; the file is corrupt`,
      );
    }
    const raw = bytes.slice(8 + n + a, 8 + n + b);
    out[key] = { shape: meta.shape, data: new Float32Array(raw.buffer) };
  }
  return out;
}

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The header's JSON, as an object of entries; a bad header is a named `SyntaxError`. */
function parseHeader(text: Uint8Array, name: string): Record<string, Entry> {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(text));
  } catch (cause) {
    throw new SyntaxError(
      `${name}: the safetensors header is not valid JSON; the file is corrupt`,
      {
        cause,
      },
    );
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new SyntaxError(`${name}: the safetensors header is not a JSON object`);
  }
  return header as Record<string, Entry>;
}

/** Checks one header entry's fields and that its bytes lie inside the data section. */
function checkEntry(key: string, meta: Entry, dataLength: number, name: string): void {
  const whole = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (
    meta === null || typeof meta !== "object" || typeof meta.dtype !== "string" ||
    !Array.isArray(meta.shape) || !meta.shape.every(whole) ||
    !Array.isArray(meta.data_offsets) || meta.data_offsets.length !== 2 ||
    !meta.data_offsets.every(whole)
  ) {
    throw new SyntaxError(
      `${name}: tensor ${key} needs a dtype, a shape and two data_offsets; got ${
        JSON.stringify(meta)
      }`,
    );
  }
  const [a, b] = meta.data_offsets;
  if (a > b || b > dataLength) {
    throw new SyntaxError(
      `${name}: tensor ${key}'s data_offsets [${a}, ${b}] lie outside the ${dataLength} data ` +
        `bytes; the file is truncated or corrupt`,
    );
  }
}

/** Reads a safetensors file's F32 tensors (others are an error unless skipped). */
export async function readSafetensors(
  path: string,
  options: { skipOtherDtypes?: boolean } = {},
): Promise<Record<string, Tensor>> {
  return parseSafetensors(await Deno.readFile(path), path, options);
}

/** Encodes F32 tensors as safetensors bytes (names sorted, as candle writes them). */
export function encodeSafetensors(tensors: Record<string, Tensor>): Uint8Array<ArrayBuffer> {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const n of names) {
    const bytes = tensors[n].data.byteLength;
    header[n] = { dtype: "F32", shape: tensors[n].shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const n of names) {
    const d = tensors[n].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}
