/**
 * Charts with Observable Plot rendered server-side (linkedom supplies the DOM), and SVG to PNG
 * with resvg.
 * @module
 */
// Full npm: specifiers, not the checkout's import map: a map applies only to scripts run inside
// the checkout, and mod.ts must import from any folder.
// deno-lint-ignore-file no-import-prefix
import * as Plot from "npm:@observablehq/plot@0.6.17";
import { parseHTML } from "npm:linkedom@0.18.12";
import { initWasm, Resvg } from "npm:@resvg/resvg-wasm@2.6.2";

export { Plot };

/** The few DOM members used here (Deno has no DOM types). */
interface SvgNode {
  tagName: string;
  outerHTML: string;
  textContent: string | null;
  children: ArrayLike<SvgNode>;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  querySelector(selector: string): SvgNode | null;
  querySelectorAll(selector: string): ArrayLike<SvgNode>;
  removeAttribute?(name: string): void;
}

/** A fresh server-side document for Plot's `document` option. */
export function plotDocument(): unknown {
  return (parseHTML("<!DOCTYPE html><html><body></body></html>") as unknown as {
    document: unknown;
  })
    .document;
}

/**
 * Renders Plot options to a standalone SVG string.
 * @param options Observable Plot options (marks, axes, …)
 * @returns SVG markup with the xmlns attribute set
 */
export function plotSvg(options: Plot.PlotOptions): string {
  const node = Plot.plot({
    ...options,
    document: plotDocument() as Plot.PlotOptions["document"],
    style: { fontFamily: "DejaVu Sans, sans-serif", fontSize: "11px", background: "white" },
  }) as unknown as SvgNode;
  if (node.tagName.toLowerCase() === "svg") {
    node.setAttribute("xmlns", SVG_NS);
    return node.outerHTML;
  }
  return stackFigure(node);
}

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * One standalone SVG from the `<figure>` Plot returns when it adds a legend (or a title):
 * the swatch legend is HTML (spans holding 15-pixel swatch SVGs), so it is redrawn as SVG, and
 * every part is stacked top to bottom. Taking the figure's first `<svg>` instead returns a lone
 * swatch.
 */
function stackFigure(figure: SvgNode): string {
  const parts: { height: number; width: number; markup: string }[] = [];
  for (const child of Array.from(figure.children)) {
    const tag = child.tagName.toLowerCase();
    if (tag === "svg") {
      const width = Number(child.getAttribute("width") ?? 640);
      const height = Number(child.getAttribute("height") ?? 400);
      child.removeAttribute?.("xmlns");
      parts.push({ width, height, markup: child.outerHTML });
    } else if (/swatches/.test(child.getAttribute("class") ?? "")) {
      parts.push(swatchRow(Array.from(child.querySelectorAll("span"))));
    } else if (child.textContent?.trim() && tag !== "style") {
      const text = escapeXml(child.textContent.trim());
      const size = tag === "h2" ? 15 : 11;
      parts.push({
        width: 0,
        height: size + 8,
        markup: `<text x="4" y="${size + 2}" font-size="${size}" fill="#222">${text}</text>`,
      });
    }
  }
  return stackParts(parts);
}

/**
 * Standalone SVGs (from {@linkcode plotSvg}) stacked top to bottom into one: small multiples
 * whose y scales differ, which one Plot's facets (sharing one y scale) cannot draw.
 * @param svgs the parts, each with numeric width and height attributes
 * @returns one SVG
 */
export function stackSvgs(svgs: string[]): string {
  const size = (svg: string, attr: string) =>
    Number(new RegExp(`^<svg[^>]*?\\s${attr}="([\\d.]+)"`).exec(svg)?.[1] ?? 0);
  const parts = svgs.map((svg) => ({
    width: size(svg, "width"),
    height: size(svg, "height"),
    markup: svg.replace(` xmlns="${SVG_NS}"`, ""),
  }));
  return stackParts(parts);
}

function stackParts(parts: { height: number; width: number; markup: string }[]): string {
  const width = Math.max(...parts.map((p) => p.width), 100);
  let y = 0;
  const body = parts.map((p) => {
    const g = `<g transform="translate(0,${y})">${p.markup}</g>`;
    y += p.height;
    return g;
  });
  return `<svg xmlns="${SVG_NS}" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" ` +
    `font-family="DejaVu Sans, sans-serif" font-size="11"><rect width="100%" height="100%" ` +
    `fill="white"/>${body.join("")}</svg>`;
}

/** A swatch legend as one SVG row: a coloured square and its label per entry. */
function swatchRow(swatches: SvgNode[]): { width: number; height: number; markup: string } {
  return legendRow(swatches.map((span) => ({
    colour: span.querySelector("svg")?.getAttribute("fill") ?? "#888",
    label: (span.textContent ?? "").trim(),
  })));
}

/**
 * A colour key as one 26-pixel SVG row: a square and a label per entry, left to right.
 * @param entries colours and their labels
 * @returns the row's width, height and markup
 */
export function legendRow(
  entries: { colour: string; label: string }[],
): { width: number; height: number; markup: string } {
  let x = 4;
  const items = entries.map(({ colour, label }) => {
    const item = `<rect x="${x}" y="6" width="12" height="12" fill="${colour}"/>` +
      `<text x="${x + 16}" y="16" fill="#222">${escapeXml(label)}</text>`;
    x += 16 + 6.5 * label.length + 14;
    return item;
  });
  return { width: x, height: 26, markup: items.join("") };
}

/** Text made safe for XML and HTML, attribute values included. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot" }[c]};`);
}

let resvgReady: Promise<void> | undefined;
const fonts: Uint8Array[] = [];

async function ensureResvg(): Promise<void> {
  resvgReady ??= (async () => {
    const wasmUrl = import.meta.resolve("npm:@resvg/resvg-wasm@2.6.2/index_bg.wasm");
    await initWasm(await Deno.readFile(new URL(wasmUrl)));
    for (const path of ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"]) {
      try {
        fonts.push(await Deno.readFile(path));
      } catch { /* text is left out of the PNG when no font is installed */ }
    }
  })();
  await resvgReady;
}

/** Rasterises SVG markup to PNG bytes at `scale` (2 = double resolution). */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array<ArrayBuffer>> {
  await ensureResvg();
  const r = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    font: { fontBuffers: fonts, defaultFontFamily: "DejaVu Sans", loadSystemFonts: false },
  });
  const png = r.render().asPng();
  r.free();
  return png as Uint8Array<ArrayBuffer>;
}
