/**
 * Figures of maps (classification images, STAs, activation maps) as SVG, with PNG rendered from
 * the same SVG, and the self-contained HTML report.
 * @module
 */
import { diverging } from "./png.ts";
import { escapeXml, svgToPng } from "./plots.ts";
import { writeFileAtomic } from "./files.ts";
import { type MapGrid, mapGridHtml, mapGridSvg } from "./map_grid.ts";

export type { MapGrid };

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
  if (heading) parts.push(`<text x="2" y="12" font-size="12">${escapeXml(heading)}</text>`);
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
          escapeXml(titles[m])
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

/** Writes a figure (a chart or a grid of maps) as SVG and PNG. */
export async function writeFigure(dir: string, fig: Figure | MapGrid): Promise<void> {
  const svg = "kind" in fig ? mapGridSvg(fig) : fig.svg;
  await writeFileAtomic(`${dir}/${fig.name}.svg`, svg);
  await writeFileAtomic(`${dir}/${fig.name}.png`, await svgToPng(svg, 1.5));
}

/** A table for the report. */
export interface Table {
  title: string;
  caption: string;
  header: string[];
  rows: (string | number)[][];
}

/** The report's stylesheet: one readable column; charts shrink to it, map grids wrap in it. */
const REPORT_CSS = [
  "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}",
  "figure{margin:1.5em 0}figure>svg{max-width:100%;height:auto;display:block}",
  "figcaption{color:#555;font-size:.9em;max-width:60em}h3{font-size:1.05em}",
  ".scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.85em}",
  "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}",
  ".tiles{display:flex;flex-wrap:wrap;gap:6px 10px}",
  ".tile{display:flex;flex-direction:column;align-items:center;font-size:.75em;max-width:100%}",
  ".tile img{image-rendering:pixelated;border:1px solid #ddd;max-width:100%;height:auto}",
  ".legend{display:flex;align-items:center;gap:.5em;font-size:.8em;color:#555;margin:.4em 0}",
  ".legend .bar{width:160px;height:10px;background:linear-gradient(to right,#00f,#fff,#f00);border:1px solid #ccc}",
].join("");

/** Writes a self-contained `report.html` (figures inline as SVG). */
export async function writeReport(
  path: string,
  title: string,
  intro: string,
  sections: { heading: string; intro?: string; items: (Figure | MapGrid | Table)[] }[],
): Promise<void> {
  const html = [
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${
      escapeXml(title)
    }</title>`,
    `<style>${REPORT_CSS}</style></head><body>`,
    `<h1>${escapeXml(title)}</h1><p>${intro}</p>`,
  ];
  for (const s of sections) {
    html.push(`<h2>${escapeXml(s.heading)}</h2>`);
    if (s.intro) html.push(`<p>${s.intro}</p>`);
    for (const item of s.items) {
      if ("kind" in item) {
        html.push(
          `<figure><h3>${escapeXml(item.title)}</h3>${mapGridHtml(item)}<figcaption>${
            escapeXml(item.caption)
          }</figcaption></figure>`,
        );
      } else if ("svg" in item) {
        html.push(
          `<figure><h3>${escapeXml(item.title)}</h3>${item.svg}<figcaption>${
            escapeXml(item.caption)
          }</figcaption></figure>`,
        );
      } else {
        html.push(
          `<figure><h3>${escapeXml(item.title)}</h3><div class="scroll"><table><tr>${
            item.header.map((h) => `<th>${escapeXml(h)}</th>`).join("")
          }</tr>`,
        );
        for (const r of item.rows) {
          html.push(`<tr>${r.map((c) => `<td>${escapeXml(String(c))}</td>`).join("")}</tr>`);
        }
        html.push(`</table></div><figcaption>${escapeXml(item.caption)}</figcaption></figure>`);
      }
    }
  }
  html.push("</body></html>");
  await writeFileAtomic(path, html.join("\n"));
}
