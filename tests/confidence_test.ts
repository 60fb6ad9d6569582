import assert from "node:assert/strict";
import { loadDataset } from "../data/datasets.ts";
import { Model } from "../ffi/model.ts";
import { Population, type PopulationMember } from "../ffi/confidence.ts";
import { runConfidence } from "../lib/confidence.ts";
import { GRID, gridRuns, planPopulations, runId, sampleRuns } from "../lib/confidence/grid.ts";
import { PAIR_FIELDS } from "../lib/confidence/pairs.ts";
import { splitRows } from "../lib/confidence/metanets.ts";
import { readNpy } from "../lib/npy.ts";
import {
  auroc,
  averagePrecision,
  linearR2,
  meanAbsoluteError,
  r2,
} from "../lib/confidence/scores.ts";

Deno.test("confidence grid: 8,192 runs; samples keep whole trajectories; plans group by seed and batch", () => {
  const all = gridRuns();
  assert.equal(all.length, 8192);
  assert.equal(new Set(all.map(runId)).size, 8192);
  const sample = sampleRuns(10, 3);
  assert.equal(sample.length, 40);
  assert.deepEqual(sample.map(runId), sampleRuns(10, 3).map(runId), "seeded");
  assert.notDeepEqual(sample.map(runId), sampleRuns(10, 4).map(runId));
  const plans = planPopulations(sample);
  assert.equal(plans.reduce((n, p) => n + p.trajectories.length, 0), 10);
  for (const p of plans) {
    for (const t of p.trajectories) {
      assert.equal(t.epochs, 4);
      assert.deepEqual([...t.snapshots.keys()].sort(), [1, 2, 3, 4]);
      for (const r of t.snapshots.values()) {
        assert.equal(r.seed, p.seed);
        assert.equal(r.batchSize, p.batchSize);
      }
    }
  }
  assert.equal(planPopulations(all).length, GRID.seed.length * GRID.batchSize.length);
});

Deno.test("population: members train the same together as alone; a saved member loads as the built-in lenet5", async () => {
  const train = await loadDataset("mnist", "train", { limit: 3000 });
  const test = await loadDataset("mnist", "test", { limit: 500 });
  const members: PopulationMember[] = [
    { optimizer: "sgd", lr: 0.05, weightDecay: 0, init: "default" },
    { optimizer: "adam", lr: 5e-3, weightDecay: 0.05, init: "xavier_uniform" },
    { optimizer: "sgd", lr: 0.01, weightDecay: 0.1, init: "kaiming_uniform" },
    { optimizer: "adam", lr: 1e-2, weightDecay: 0, init: "normal" },
  ];
  const options = { seed: 42, batchSize: 64 };
  using together = Population.create({ ...options, members });
  for (let epoch = 0; epoch < 2; epoch++) {
    await together.trainEpoch(train.images, train.labels, epoch);
  }
  const scores = await together.evaluate(test.images, test.labels);
  for (const [i, member] of members.entries()) {
    using alone = Population.create({ ...options, members: [member] });
    for (let epoch = 0; epoch < 2; epoch++) {
      await alone.trainEpoch(train.images, train.labels, epoch);
    }
    const [own] = await alone.evaluate(test.images, test.labels);
    assert.equal(own.loss, scores[i].loss, `member ${i}: loss alone vs in the population`);
    assert.equal(own.accuracy, scores[i].accuracy);
  }
  // The LeNet-5 spec the checkpoints load into is the network the population trains.
  const dir = await Deno.makeTempDir();
  const best = scores.reduce((b, s, i) => s.accuracy > scores[b].accuracy ? i : b, 0);
  together.save(best, `${dir}/m.safetensors`);
  using model = Model.create("lenet5", { mean: 0, std: 1 });
  model.loadWeights(`${dir}/m.safetensors`);
  const metrics = await model.evaluate(test.images, test.labels);
  assert.equal(metrics.accuracy, scores[best].accuracy);
  assert.ok(Math.abs(metrics.loss - scores[best].loss) < 1e-4);
  assert.ok(scores[best].accuracy > 0.6, `the best member learned: ${scores[best].accuracy}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("population: bad options, bad data and use after close are named errors", async () => {
  assert.throws(
    () =>
      Population.create({
        seed: 0,
        batchSize: 8,
        members: [{ optimizer: "rmsprop" as "sgd", lr: 0.1, weightDecay: 0, init: "default" }],
      }),
    /unknown variant `rmsprop`/,
  );
  using pop = Population.create({
    seed: 0,
    batchSize: 8,
    members: [{ optimizer: "sgd", lr: 0.1, weightDecay: 0, init: "default" }],
  });
  await assert.rejects(
    () => pop.trainEpoch(new Float32Array(784 * 2), new Uint8Array([1]), 0),
    /2 images of 784 pixels|784 pixels for 1 labels/,
  );
  pop.close();
  pop.close(); // idempotent
  await assert.rejects(
    () => pop.evaluate(new Float32Array(784), new Uint8Array([1])),
    /population: used after close\(\)/,
  );
});

Deno.test("confidence --quick: 8 models, pairs in every field, ratios in [0, 1], and resume", async () => {
  const outDir = await Deno.makeTempDir();
  const summary = await runConfidence({ quick: true, outDir, peer: false });
  assert.equal(summary.models.trained, 8);
  assert.ok(summary.models.kept >= 4, `kept ${summary.models.kept}`);
  assert.equal(summary.models.labelled, summary.models.kept);
  const speed = summary.populationSpeed.wna;
  const perHour = summary.models.trained / speed.seconds * 3600;
  assert.ok(speed.seconds > 0 && Math.abs(speed.modelsPerHour - perHour) < 1e-9 * perHour);
  assert.equal(summary.populationSpeed.pytorch, null);
  const stored = JSON.parse(await Deno.readTextFile(`${outDir}/summary.json`));
  assert.deepEqual(stored, JSON.parse(JSON.stringify(summary)));

  // Every field has one row per pair; ids and ratios are in range.
  const fields: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (const [field, width] of Object.entries(PAIR_FIELDS)) {
    const a = await readNpy(`${outDir}/pairs/${field}.npy`);
    assert.deepEqual(a.shape, width === 1 ? [summary.pairs] : [summary.pairs, width], field);
    fields[field] = a;
  }
  assert.ok(summary.pairs > 8 * 50, `${summary.pairs} pairs`);
  assert.ok(fields.ratio.data.every((r) => r >= 0 && r <= 1));
  assert.ok(fields.ratio.data.some((r) => r < 1), "the noise changed some predictions");
  assert.ok(fields.modelId.data.every((m) => m >= 0 && m < summary.models.labelled));
  for (let i = 0; i < summary.pairs; i++) {
    const right = fields.prediction.data[i] === fields.label.data[i];
    assert.equal(fields.correct.data[i], right ? 1 : 0);
  }
  // At most 10 right and 10 wrong per model and digit, and 10 right wherever the test set has them.
  const counts = new Map<string, number>();
  for (let i = 0; i < summary.pairs; i++) {
    const key = `${fields.modelId.data[i]}/${fields.label.data[i]}/${fields.correct.data[i]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  assert.ok([...counts.values()].every((c) => c <= 10));
  assert.equal(counts.get("0/1/1"), 10);

  // A second run finds everything done and retrains nothing.
  const ledger = await Deno.stat(`${outDir}/models/ledger.json`);
  const again = await runConfidence({ quick: true, outDir, peer: false });
  assert.equal(
    (await Deno.stat(`${outDir}/models/ledger.json`)).mtime?.getTime(),
    ledger.mtime?.getTime(),
  );
  assert.equal(again.pairs, summary.pairs);
  // Baselines on every pair, and the report with its figures.
  assert.equal(summary.baselines.length, 4);
  for (const b of summary.baselines) {
    const value = b.task === "regression" ? b.r2! : b.auroc!;
    assert.ok(value >= 0 && value <= 1, JSON.stringify(b));
  }
  const softmax = summary.baselines.find((b) =>
    b.net === "max_softmax" && b.task === "classification"
  )!;
  assert.ok(softmax.auroc! > 0.6, `max softmax separates right from wrong: ${softmax.auroc}`);
  const html = await Deno.readTextFile(`${outDir}/report.html`);
  for (const name of ["population-accuracy", "ratio-histogram", "roc-errors"]) {
    assert.ok((await Deno.stat(`${outDir}/${name}.png`)).size > 1000, name);
  }
  assert.ok(html.includes("Meta-networks") && (html.match(/<svg/g) ?? []).length >= 4);
  // Every meta-network fit: 3 kinds x 2 tasks x 2 splits x seeds 1-5, and the baselines.
  const nets = summary.results.filter((r) => r.seed !== null);
  assert.equal(nets.length, 60);
  assert.equal(summary.results.length - nets.length, 8);
  for (const r of summary.results) {
    for (const k of ["accuracy", "auroc", "auprErrors"] as const) {
      if (r[k] !== undefined) assert.ok(r[k]! >= 0 && r[k]! <= 1, JSON.stringify(r));
    }
    if (r.task === "regression") assert.ok(Number.isFinite(r.r2) && r.mae! >= 0, JSON.stringify(r));
  }
  // Other meta-network settings train afresh instead of reusing the stored fits.
  const other = await runConfidence({
    quick: true,
    outDir,
    peer: false,
    metaEpochs: 2,
    metaSeeds: [1],
  });
  assert.equal(other.results.filter((r) => r.seed !== null).length, 12);
  const dirs = [...Deno.readDirSync(`${outDir}/metanets`)].map((e) => e.name).sort();
  assert.equal(dirs.length, 2, dirs.join(", "));
  assert.deepEqual(other.settings.metaSeeds, [1]);
  await Deno.remove(outDir, { recursive: true });
});

Deno.test("scores: AUROC, average precision and r^2 against hand-worked cases", () => {
  const labels = [0, 0, 1, 1];
  assert.equal(auroc([0.1, 0.2, 0.8, 0.9], labels), 1);
  assert.equal(auroc([0.9, 0.8, 0.2, 0.1], labels), 0);
  assert.equal(auroc([0.5, 0.5, 0.5, 0.5], labels), 0.5);
  // One positive ranked below one negative: 3 of 4 pairs ordered.
  assert.equal(auroc([0.1, 0.6, 0.5, 0.9], labels), 0.75);
  assert.equal(averagePrecision([0.1, 0.2, 0.8, 0.9], labels), 1);
  // Ranked 0.9 (+), 0.6 (-), 0.5 (+): precision 1 at the first hit, 2/3 at the second.
  assert.ok(Math.abs(averagePrecision([0.1, 0.6, 0.5, 0.9], labels) - (1 + 2 / 3) / 2) < 1e-12);
  assert.equal(r2([1, 2, 3], [1, 2, 3]), 1);
  assert.equal(r2([2, 2, 2], [1, 2, 3]), 0);
  assert.ok(Math.abs(linearR2([1, 2, 3, 4], [3, 5, 7, 9]) - 1) < 1e-12, "a line fits exactly");
  assert.equal(meanAbsoluteError([1, 2], [2, 4]), 1.5);
});

Deno.test("meta-network splits: disjoint rows; by model, no model on both sides", () => {
  const modelId = Array.from({ length: 1000 }, (_, i) => Math.floor(i / 20)); // 50 models
  for (const split of ["pair", "model"] as const) {
    const { train, test } = splitRows(modelId, split, 0);
    const trainSet = new Set(train);
    assert.ok([...test].every((i) => !trainSet.has(i)));
    assert.ok(Math.abs(train.length - 640) <= 20 && Math.abs(test.length - 200) <= 20, split);
    const trainModels = new Set([...train].map((i) => modelId[i]));
    const shared = [...test].filter((i) => trainModels.has(modelId[i])).length;
    if (split === "model") assert.equal(shared, 0);
    else assert.ok(shared > 150, "a pair split mixes models");
  }
  assert.deepEqual(splitRows(modelId, "model", 0), splitRows(modelId, "model", 0));
});
