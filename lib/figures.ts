/**
 * Figures of maps (classification images, STAs, activation maps) as SVG, with PNG rendered from
 * the same SVG, and the self-contained HTML report.
 * @module
 */
import { diverging } from "./png.ts";
import { svgToPng } from "./plots.ts";
import { writeFileAtomic } from "./files.ts";

const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot" }[c]};`);

/** Options of {@linkcode mapsSvg}. */
export interface MapsOptions {
  /** Maps per row. @default all in one row */
  columns?: number;
  /** Pixels per map cell. @default 4 */
  scale?: number;
  /** A title under each map. */
  titles?: string[];
  /** Subtract each map's mean before scaling (noise maps sit on the noise mean). @default true */
  centre?: boolean;
  /** Greyscale instead of the diverging scale (real images). @default false */
  grey?: boolean;
  /** A heading above the grid. */
  heading?: string;
}

/**
 * A grid of `count` maps of `h x w` values as SVG; each map is scaled symmetrically around its
 * mean (blue below, red above, white at the mean) by its own largest deviation.
 */
export function mapsSvg(
  maps: Float32Array,
  count: number,
  h: number,
  w: number,
  options: MapsOptions = {},
): string {
  const { columns = count, scale = 4, titles, centre = true, grey = false, heading } = options;
  const cellW = Math.max(w * scale, 48);
  const titleH = titles ? 14 : 0;
  const top = heading ? 18 : 0;
  const rows = Math.ceil(count / columns);
  const width = columns * (cellW + 6);
  const height = top + rows * (h * scale + titleH + 6);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif" font-size="10" shape-rendering="crispEdges">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (heading) parts.push(`<text x="2" y="12" font-size="12">${esc(heading)}</text>`);
  for (let m = 0; m < count; m++) {
    const map = maps.subarray(m * h * w, (m + 1) * h * w);
    let mean = 0;
    if (centre && !grey) {
      for (const v of map) mean += v;
      mean /= map.length;
    }
    let peak = 1e-12;
    for (const v of map) peak = Math.max(peak, Math.abs(v - mean));
    const x0 = (m % columns) * (cellW + 6) + (cellW - w * scale) / 2;
    const y0 = top + Math.floor(m / columns) * (h * scale + titleH + 6);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = map[y * w + x];
        const [r, g, b] = grey
          ? Array(3).fill(Math.round(255 * Math.max(0, Math.min(1, v))))
          : diverging((v - mean) / peak);
        parts.push(
          `<rect x="${x0 + x * scale}" y="${
            y0 + y * scale
          }" width="${scale}" height="${scale}" fill="rgb(${r},${g},${b})"/>`,
        );
      }
    }
    if (titles?.[m]) {
      parts.push(
        `<text x="${x0 + (w * scale) / 2}" y="${y0 + h * scale + 11}" text-anchor="middle">${
          esc(titles[m])
        }</text>`,
      );
    }
  }
  parts.push("</svg>");
  return parts.join("");
}

/** One figure of the report. */
export interface Figure {
  /** File stem under the run folder. */
  name: string;
  title: string;
  /** How to read it. */
  caption: string;
  svg: string;
}

/** Writes a figure as SVG and PNG. */
export async function writeFigure(dir: string, fig: Figure): Promise<void> {
  await writeFileAtomic(`${dir}/${fig.name}.svg`, fig.svg);
  await writeFileAtomic(`${dir}/${fig.name}.png`, await svgToPng(fig.svg, 1.5));
}

/** A table for the report. */
export interface Table {
  title: string;
  caption: string;
  header: string[];
  rows: (string | number)[][];
}

/** Writes a self-contained `report.html` (figures inline as SVG). */
export async function writeReport(
  path: string,
  title: string,
  intro: string,
  sections: { heading: string; items: (Figure | Table)[] }[],
): Promise<void> {
  const html = [
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>`,
    `<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}`,
    `figure{margin:1.5em 0;overflow-x:auto}figcaption{color:#555;font-size:.9em;max-width:60em}`,
    `table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>`,
    `<h1>${esc(title)}</h1><p>${intro}</p>`,
  ];
  for (const s of sections) {
    html.push(`<h2>${esc(s.heading)}</h2>`);
    for (const item of s.items) {
      if ("svg" in item) {
        html.push(
          `<figure><h3>${esc(item.title)}</h3>${item.svg}<figcaption>${
            esc(item.caption)
          }</figcaption></figure>`,
        );
      } else {
        html.push(
          `<figure><h3>${esc(item.title)}</h3><table><tr>${
            item.header.map((h) => `<th>${esc(h)}</th>`).join("")
          }</tr>`,
        );
        for (const r of item.rows) {
          html.push(`<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join("")}</tr>`);
        }
        html.push(`</table><figcaption>${esc(item.caption)}</figcaption></figure>`);
      }
    }
  }
  html.push("</body></html>");
  await writeFileAtomic(path, html.join("\n"));
}
