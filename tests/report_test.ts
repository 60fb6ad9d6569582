import assert from "node:assert/strict";
import { Model } from "../ffi/model.ts";
import { saveCheckpoint } from "../lib/checkpoint.ts";
import { runNoiseMaps } from "../lib/noise_maps.ts";
import { checkPage } from "./_browser.ts";

Deno.test("report: a small noise-maps run reads well in headless Chromium", async () => {
  const dir = await Deno.makeTempDir();
  // An untrained net is enough to lay out every section of the report.
  using model = Model.create("smaller", { seed: 1, mean: 0.1307, std: 0.3081 });
  await saveCheckpoint(model, `${dir}/m.safetensors`, {
    model: "smaller",
    dataset: "mnist",
    classes: 10,
    epoch: 0,
    epochs: 0,
    seed: 1,
    normalisation: { mean: 0.1307, std: 0.3081 },
    history: [],
    options: {},
  });
  const summary = await runNoiseMaps({
    checkpoint: `${dir}/m.safetensors`,
    outDir: `${dir}/run`,
    samples: 2000,
    rawSamples: 1000,
    staSamples: 500,
    evalImages: 200,
    stimSamples: 200,
    stimDeltas: [0, 8],
    gammas: [0, 0.5, 1],
    weights: [0, 1],
    log: () => {},
  });
  assert.equal(summary.classShare.length, 10);
  assert.equal(summary.attack.length, 20);
  const html = await Deno.readTextFile(`${dir}/run/report.html`);
  assert.ok(html.length < 5e6, `report.html is ${html.length} bytes`);

  const page = await checkPage(`file://${dir}/run/report.html`, 1000, 900);
  await Deno.writeFile(`${dir}/run/report-screenshot.png`, page.screenshot);
  assert.deepEqual(page.consoleErrors, []);
  assert.ok(page.images > 50, `only ${page.images} images`);
  assert.deepEqual(page.brokenImages, []);
  assert.deepEqual(page.overflowing, [], "elements wider than the page");
  assert.ok(page.scrollWidth <= page.viewportWidth, `${page.scrollWidth} > ${page.viewportWidth}`);
  // A PNG came back: its signature.
  assert.deepEqual([...page.screenshot.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  await Deno.remove(dir, { recursive: true });
});
