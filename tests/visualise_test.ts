import assert from "node:assert/strict";
import { loadDataset } from "../data/datasets.ts";
import { attribute, maximiseActivation } from "../ffi/attribution.ts";
import { Model } from "../ffi/model.ts";
import { loadCheckpoint } from "../lib/checkpoint.ts";
import { trainModel } from "../lib/training.ts";
import { runVisualise } from "../lib/visualise.ts";
import { checkPage } from "./_browser.ts";

const quiet = { progress: false, log: () => {} };

Deno.test("visualise: a run writes its maps, numbers and report", async () => {
  const dir = await Deno.makeTempDir();
  const r = await trainModel({
    model: "smaller",
    dataset: "mnist",
    limit: 1000,
    epochs: 1,
    seed: 1,
    outDir: `${dir}/ck`,
    ...quiet,
  });
  const summary = await runVisualise({
    checkpoint: r.checkpoint,
    outDir: `${dir}/vis`,
    featureSteps: 96,
    noiseSamples: 3000,
    completenessImages: 10,
    atlasImages: 600,
    ...quiet,
  });
  // The atlas: populated cells, mostly of one label each, on a trustworthy map.
  assert.ok(summary.atlas.cells >= 20, `${summary.atlas.cells} cells`);
  assert.ok(summary.atlas.purity > 0.7, `purity ${summary.atlas.purity}`);
  assert.ok(summary.atlas.tsne.trustworthiness > 0.85, JSON.stringify(summary.atlas.tsne));
  assert.equal(summary.atlas.layer, "fc1");
  assert.deepEqual(summary.pairAtlas.classes, ["4", "9"]);
  assert.ok(summary.pairAtlas.cells >= 4);
  const atlasSvg = await Deno.readTextFile(`${dir}/vis/atlas.svg`);
  assert.equal(atlasSvg.match(/<image /g)?.length, summary.atlas.cells);
  // The report reads in a browser: every image loads and nothing is wider than the page.
  const page = await checkPage(`file://${dir}/vis/report.html`, 1000, 900);
  await Deno.writeFile(`${dir}/vis/report-screenshot.png`, page.screenshot);
  assert.deepEqual(page.consoleErrors, []);
  assert.deepEqual(page.brokenImages, []);
  assert.ok(page.images > 100, `only ${page.images} images`);
  assert.deepEqual(page.overflowing, [], "elements wider than the page");
  assert.ok(page.scrollWidth <= page.viewportWidth, `${page.scrollWidth} > ${page.viewportWidth}`);
  assert.ok(summary.igCompletenessMaxError < 0.05, `${summary.igCompletenessMaxError}`);
  // Every class logit is driven past the best test image by its optimised image.
  const gains = summary.activationGainOverBestTestImage.logits;
  assert.ok(gains.every((g) => g > 0), `${gains}`);

  // Integrated gradients at 200 steps: complete within 1% for the typical image (ReLU kinks
  // along the path make the worst image converge more slowly).
  const test = await loadDataset("mnist", "test", { limit: 20 });
  using model = (await loadCheckpoint(r.checkpoint)).model;
  const targets = Array.from(test.labels, (unit) => ({ layer: "logits", unit }));
  const ig = await attribute(model, test.images, {
    method: "integrated_gradients",
    steps: 200,
    targets,
    internalBatch: 64,
  });
  const relative = Array.from(
    ig.delta!.data,
    (d, i) => Math.abs(d / (ig.values.data[i] - ig.baselineValues!.data[i])),
  ).sort((a, b) => a - b);
  assert.ok(relative[10] < 0.01, `median relative delta ${relative[10]}`);
  await assert.rejects(
    attribute(model, test.images, { method: "saliency", targets: targets.slice(1) }),
    /19 targets for 20 images/,
  );
  await assert.rejects(
    attribute(model, test.images, { method: "saliency", targets, steps: NaN }),
    /option steps must be a finite number/,
  );
  assert.equal(summary.activationGainOverBestTestImage.conv1.length, 32);
  assert.equal(summary.classImageVsNoiseMapCorrelation.length, 10);
  const html = await Deno.readTextFile(`${dir}/vis/report.html`);
  assert.match(html, /<img/);
  assert.doesNotMatch(html, /src="(?!data:)/, "the report is self-contained");
  for (const f of ["attributions.png", "channels-conv2.svg", "feature-images.npy"]) {
    assert.ok((await Deno.stat(`${dir}/vis/${f}`)).size > 100, f);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("maximiseActivation: bad settings are named", async () => {
  using model = Model.create("smaller", { seed: 1 });
  await assert.rejects(
    maximiseActivation(model, { targets: [{ layer: "conv1", unit: 0 }], rotate: 90 }),
    /rotate must be in \[0, 45\], got 90/,
  );
  await assert.rejects(
    maximiseActivation(model, { targets: [{ layer: "fc1", unit: 0, direction: [1] }] }),
    /give either unit or direction/,
  );
});
