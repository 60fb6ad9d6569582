/**
 * Grids of maps (classification images, STAs, activation maps, stimuli): each map one small PNG
 * tile, drawn with nearest-neighbour upscaling. The report lays the tiles out in a wrapping
 * HTML grid; the SVG file holds the same tiles as embedded images, so it stays compact.
 * @module
 */
import { Buffer } from "node:buffer";
import { diverging, encodePng } from "./png.ts";
import { escapeXml } from "./plots.ts";

/** A figure made of maps. */
export interface MapGrid {
  kind: "maps";
  /** File stem under the run folder. */
  name: string;
  title: string;
  /** How to read it. */
  caption: string;
  /** `count` maps of `height x width` values, row-major. */
  maps: Float32Array;
  count: number;
  height: number;
  width: number;
  /** A title under each map. */
  titles?: string[];
  /** Maps per row in the SVG and PNG files (the report wraps to its width). @default 10 */
  columns?: number;
  /** Display pixels per map cell. @default 3 */
  scale?: number;
  /** Greyscale in [0, 1] (real images) instead of the diverging scale. @default false */
  grey?: boolean;
  /**
   * Keep `columns` tiles per row in the report too, instead of wrapping to its width, when each
   * row is one record (an image and its attributions). @default false
   */
  keepRows?: boolean;
  /** Columns drawn in greyscale among diverging maps (the input images of a row). */
  greyColumns?: number[];
}

/**
 * One map as PNG bytes at one pixel per cell: diverging around the map's mean (blue below,
 * white at the mean, red above, scaled by its largest deviation), or greyscale.
 */
export function mapTilePng(
  map: Float32Array,
  height: number,
  width: number,
  grey = false,
): Uint8Array<ArrayBuffer> {
  let mean = 0;
  if (!grey) {
    for (const v of map) mean += v;
    mean /= map.length;
  }
  let peak = 1e-12;
  for (const v of map) peak = Math.max(peak, Math.abs(v - mean));
  const rgba = new Uint8Array(height * width * 4);
  for (let i = 0; i < height * width; i++) {
    const [r, g, b] = grey
      ? Array(3).fill(Math.round(255 * Math.max(0, Math.min(1, map[i]))))
      : diverging((map[i] - mean) / peak);
    rgba.set([r, g, b, 255], i * 4);
  }
  return encodePng(rgba, width, height);
}

/** One map as a `data:` URL of its PNG (see {@linkcode mapTilePng}), for `<img>` and `<image>`. */
export function tileDataUrl(
  map: Float32Array,
  height: number,
  width: number,
  grey = false,
): string {
  return `data:image/png;base64,${
    Buffer.from(mapTilePng(map, height, width, grey)).toString("base64")
  }`;
}

// The SVG file and the report both show a grid's tiles: encode them once.
const tileCache = new WeakMap<MapGrid, string[]>();

function tiles(grid: MapGrid): string[] {
  const cached = tileCache.get(grid);
  if (cached) return cached;
  const size = grid.height * grid.width;
  const encoded = Array.from({ length: grid.count }, (_, m) =>
    tileDataUrl(
      grid.maps.subarray(m * size, (m + 1) * size),
      grid.height,
      grid.width,
      grid.grey || (grid.greyColumns?.includes(m % (grid.columns ?? 10)) ?? false),
    ));
  tileCache.set(grid, encoded);
  return encoded;
}

function tileSize(grid: MapGrid): [number, number] {
  const scale = grid.scale ?? 3;
  return [grid.width * scale, grid.height * scale];
}

/** The grid as a standalone SVG of embedded PNG tiles with their titles. */
export function mapGridSvg(grid: MapGrid): string {
  const [tw, th] = tileSize(grid);
  const columns = Math.min(grid.columns ?? 10, grid.count);
  // Wide enough for the longest title (about 6 px a character at 10 px DejaVu Sans), so that
  // long titles ("0: 9.3%, fed back: 0 (97%)") do not run into their neighbours.
  const longest = Math.max(0, ...(grid.titles ?? []).map((t) => t.length));
  const cellW = Math.max(tw, 64, Math.ceil(longest * 6)) + 8;
  const titleH = grid.titles ? 14 : 0;
  const cellH = th + titleH + 8;
  const width = columns * cellW;
  const height = Math.ceil(grid.count / columns) * cellH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif" font-size="10">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  tiles(grid).forEach((href, m) => {
    const x = (m % columns) * cellW + (cellW - tw) / 2;
    const y = Math.floor(m / columns) * cellH + 4;
    parts.push(
      `<image x="${x}" y="${y}" width="${tw}" height="${th}" image-rendering="optimizeSpeed" style="image-rendering:pixelated" href="${href}"/>`,
    );
    const title = grid.titles?.[m];
    if (title) {
      parts.push(
        `<text x="${x + tw / 2}" y="${y + th + 11}" text-anchor="middle">${
          escapeXml(title)
        }</text>`,
      );
    }
  });
  parts.push("</svg>");
  return parts.join("");
}

/** The colour key of the diverging maps, as HTML. */
export const DIVERGING_LEGEND =
  `<div class="legend"><span>below the map's mean</span><span class="bar"></span><span>above</span></div>`;

/** The grid as wrapping HTML tiles (for the report), with the colour key. */
export function mapGridHtml(grid: MapGrid): string {
  const [tw, th] = tileSize(grid);
  const cells = tiles(grid).map((src, m) => {
    const title = grid.titles?.[m] ?? "";
    return `<div class="tile"><img src="${src}" width="${tw}" height="${th}" alt="${
      escapeXml(title || `map ${m}`)
    }">${title ? `<span>${escapeXml(title)}</span>` : ""}</div>`;
  });
  const layout = grid.keepRows
    ? ` style="display:grid;grid-template-columns:repeat(${
      Math.min(grid.columns ?? 10, grid.count)
    },max-content)"`
    : "";
  return `<div class="tiles"${layout}>${cells.join("")}</div>${grid.grey ? "" : DIVERGING_LEGEND}`;
}
