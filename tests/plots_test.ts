import assert from "node:assert/strict";
import { Plot, plotSvg, svgToPng } from "../lib/plots.ts";

Deno.test("plotSvg: a chart with a colour legend keeps its marks and draws the legend as SVG", async () => {
  const rows = [{ x: 1, y: 2, c: "alpha" }, { x: 2, y: 3, c: "beta" }, { x: 3, y: 1, c: "beta" }];
  const svg = plotSvg({
    width: 500,
    color: { legend: true, type: "categorical" },
    marks: [Plot.dot(rows, { x: "x", y: "y", fill: "c" })],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="500"/);
  assert.equal(svg.match(/<circle/g)?.length, 3, "every dot is in the figure");
  assert.match(svg, />alpha<\/text>/);
  assert.match(svg, />beta<\/text>/);
  assert.doesNotMatch(svg, /<span|<div/, "no HTML left in the SVG");
  const png = await svgToPng(svg, 1);
  const view = new DataView(png.buffer, png.byteOffset);
  assert.equal(view.getUint32(16), 500, "PNG width");
  assert.ok(view.getUint32(20) > 400, "PNG height: chart plus legend");
});

Deno.test("plotSvg: a chart with no legend is Plot's own SVG", () => {
  const svg = plotSvg({ marks: [Plot.lineY([1, 3, 2])] });
  assert.match(svg, /^<svg[^>]*class="plot-/);
  assert.match(svg, /<path/);
});
