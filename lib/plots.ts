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
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  querySelector(selector: string): SvgNode | null;
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
  const svg = node.tagName.toLowerCase() === "svg" ? node : node.querySelector("svg")!;
  if (!svg.getAttribute("xmlns")) svg.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  return svg.outerHTML;
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
