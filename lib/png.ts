/**
 * A minimal PNG encoder (RGBA, 8 bits) and the diverging colour map used for noise maps.
 * @module
 */
import { deflateSync } from "node:zlib";
import { concatBytes, crc32 } from "./_crc32.ts";

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  const td = new TextEncoder().encode(type);
  out.set(td, 4);
  out.set(data, 8);
  const crcIn = new Uint8Array(4 + data.length);
  crcIn.set(td, 0);
  crcIn.set(data, 4);
  v.setUint32(8 + data.length, crc32(crcIn));
  return out;
}

/**
 * Encodes RGBA pixels as PNG.
 * @param rgba width x height x 4 bytes
 * @param width image width
 * @param height image height
 * @returns the PNG file's bytes
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePng } from "./png.ts";
 * const png = encodePng(new Uint8Array(4 * 2 * 2).fill(255), 2, 2);
 * assert.ok(png[1] === 0x50); // "P"
 * ```
 */
export function encodePng(
  rgba: Uint8Array,
  width: number,
  height: number,
): Uint8Array<ArrayBuffer> {
  if (rgba.length !== width * height * 4) {
    throw new RangeError(`png: expected ${width * height * 4} bytes, got ${rgba.length}`);
  }
  const raw = new Uint8Array(height * (width * 4 + 1));
  for (let y = 0; y < height; y++) {
    raw.set(rgba.subarray(y * width * 4, (y + 1) * width * 4), y * (width * 4 + 1) + 1);
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(deflateSync(raw))),
    chunk("IEND", new Uint8Array(0)),
  ];
  return concatBytes(parts);
}

/** Blue-white-red: -1 -> blue, 0 -> white, +1 -> red. */
export function diverging(t: number): [number, number, number] {
  const s = Math.max(-1, Math.min(1, t));
  const a = Math.abs(s);
  const c = Math.round(255 * (1 - a));
  return s >= 0 ? [255, c, c] : [c, c, 255];
}

/**
 * Renders a grid of maps (each `side x side`) as one PNG, each map scaled symmetrically around
 * zero by its own largest magnitude, `scale` pixels per cell, `gap` pixels between maps.
 */
export function mapsToPng(
  maps: Float32Array,
  count: number,
  side: number,
  { columns = count, scale = 6, gap = 4, centre = true } = {},
): Uint8Array<ArrayBuffer> {
  const rows = Math.ceil(count / columns);
  const cell = side * scale;
  const width = columns * cell + (columns - 1) * gap;
  const height = rows * cell + (rows - 1) * gap;
  const rgba = new Uint8Array(width * height * 4).fill(255);
  for (let m = 0; m < count; m++) {
    const map = maps.subarray(m * side * side, (m + 1) * side * side);
    let mean = 0;
    if (centre) {
      for (const v of map) mean += v;
      mean /= map.length;
    }
    let peak = 1e-12;
    for (const v of map) peak = Math.max(peak, Math.abs(v - mean));
    const x0 = (m % columns) * (cell + gap);
    const y0 = Math.floor(m / columns) * (cell + gap);
    for (let y = 0; y < cell; y++) {
      for (let x = 0; x < cell; x++) {
        const v = map[Math.floor(y / scale) * side + Math.floor(x / scale)];
        const [r, g, b] = diverging((v - mean) / peak);
        const o = ((y0 + y) * width + x0 + x) * 4;
        rgba[o] = r;
        rgba[o + 1] = g;
        rgba[o + 2] = b;
      }
    }
  }
  return encodePng(rgba, width, height);
}
