/**
 * Reader for the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.
 * @module
 */
import { gunzipSync } from "node:zlib";

/** A parsed IDX file: its dimensions and unsigned-byte data. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Parses IDX bytes (gzip is detected from its magic number), checking magic, type, rank,
 * dimensions and length.
 *
 * @param bytes the file's contents
 * @param name the file name, for error messages
 * @param expectRank the rank the caller needs (3 for images, 1 for labels)
 * @returns dimensions and data
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIdx } from "./idx.ts";
 * const bytes = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 7, 3]);
 * const { dims, data } = parseIdx(bytes, "labels", 1);
 * assert.ok(dims[0] === 2 && data[1] === 3);
 * ```
 */
export function parseIdx(bytes: Uint8Array, name: string, expectRank?: number): IdxArray {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = new Uint8Array(gunzipSync(bytes));
    } catch (cause) {
      throw new SyntaxError(
        `${name}: corrupt or truncated gzip data (${(cause as Error).message}); delete the ` +
          "file and fetch it again",
        { cause },
      );
    }
  }
  const fail = (defect: string) =>
    new SyntaxError(`${name}: not a valid IDX file: ${defect}; delete it and fetch it again`);
  if (bytes.length < 4) throw fail(`only ${bytes.length} bytes, shorter than the 4-byte header`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw fail(
      `bad magic number 0x${
        [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("")
      }`,
    );
  }
  if (bytes[2] !== 0x08) {
    throw fail(`element type 0x${bytes[2].toString(16)} (expected 0x08, unsigned byte)`);
  }
  const rank = bytes[3];
  if (rank < 1 || rank > 4) throw fail(`rank ${rank} (expected 1 to 4)`);
  if (expectRank !== undefined && rank !== expectRank) {
    throw fail(`rank ${rank} (expected ${expectRank})`);
  }
  const header = 4 + 4 * rank;
  if (bytes.length < header) throw fail(`truncated header (${bytes.length} of ${header} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  if (dims.some((d) => d === 0)) throw fail(`a zero dimension in ${JSON.stringify(dims)}`);
  const expected = dims.reduce((a, b) => a * b, 1);
  const got = bytes.length - header;
  if (got !== expected) {
    throw fail(
      `${got < expected ? "truncated" : "trailing bytes"}: dimensions ${
        dims.join("x")
      } need ${expected} data bytes, found ${got}`,
    );
  }
  return { dims, data: bytes.subarray(header) };
}

/** Reads and parses an IDX file from disk. */
export async function readIdx(path: string, expectRank?: number): Promise<IdxArray> {
  return parseIdx(await Deno.readFile(path), path, expectRank);
}
