/**
 * The recurrent classifiers (`rnn`, `lstm`: an image read row by row) through the studies built
 * for CNNs: trained briefly, attacked by FGSM, and analysed by noise-maps, whose report shows
 * the reverse correlation of the recurrent units. Their arithmetic is checked against direct
 * loops (`native/tests/recurrent.rs`) and TensorFlow.js (`reference_test.ts`).
 */
import assert from "node:assert/strict";
import { runFgsm } from "../lib/fgsm.ts";
import { runNoiseMaps } from "../lib/noise_maps.ts";
import { readNpy } from "../lib/npy.ts";
import { trainModel } from "../lib/training.ts";

const quiet = { progress: false, log: () => {} };

Deno.test("recurrent: a trained rnn falls to FGSM and gets noise maps with unit reverse correlations", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const trained = await trainModel({
      model: "rnn",
      dataset: "mnist",
      limit: 4000,
      epochs: 3,
      batchSize: 32,
      seed: 1,
      outDir: `${dir}/rnn`,
      ...quiet,
    });
    const fgsm = await runFgsm({
      checkpoints: [trained.checkpoint],
      eps: [0, 0.1, 0.3],
      testImages: 300,
      exampleEps: [0.1],
      exampleImages: 2,
      outDir: `${dir}/fgsm`,
      ...quiet,
    });
    const clean = fgsm.cleanAccuracy.rnn;
    const [at0, at01, at03] = fgsm.accuracy.rnn;
    assert.ok(clean > 0.7, `clean accuracy ${clean}`);
    assert.equal(at0, clean);
    assert.ok(at01 < clean && at03 < clean - 0.3, `accuracy by eps: ${fgsm.accuracy.rnn}`);

    const maps = await runNoiseMaps({
      checkpoint: trained.checkpoint,
      outDir: `${dir}/maps`,
      samples: 4000,
      rawSamples: 2000,
      staSamples: 2000,
      evalImages: 200,
      stimSamples: 200,
      stimDeltas: [0, 8],
      gammas: [0, 1],
      weights: [0, 1],
      log: () => {},
    });
    const share = maps.classShare.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(share - 1) < 1e-6, `class shares sum to ${share}`);
    // The recurrent state is the layer that microstimulation drives.
    assert.ok(maps.microstimulation.length > 0);
    assert.ok(maps.microstimulation.every((m) => m.layer === "rnn"));
    const rc = await readNpy(`${dir}/maps/rc-rnn.npy`);
    assert.deepEqual(rc.shape, [128, 28, 28]);
    assert.ok(rc.data.every(Number.isFinite), "reverse correlations are finite");
    assert.ok(rc.data.some((v) => Math.abs(v) > 1e-4), "reverse correlations are all ~0");
    const report = await Deno.readTextFile(`${dir}/maps/report.html`);
    assert.ok(report.includes("rnn: reverse correlation of the 32 strongest of 128 units"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
