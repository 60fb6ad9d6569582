import assert from "node:assert/strict";
import { loadDataset } from "../data/datasets.ts";
import { augmentImages } from "../ffi/augment.ts";
import { NativeError } from "../ffi/errors.ts";
import { Model } from "../ffi/model.ts";
import type { NetSpec } from "../ffi/spec.ts";
import { runAugment } from "../lib/augment.ts";
import { loadCheckpoint, readSidecar } from "../lib/checkpoint.ts";
import { runZoo, type ZooSummary } from "../lib/zoo.ts";
import { ZOO_NETS } from "../lib/zoo/nets.ts";
import { discardPartialRun } from "../lib/partial_run.ts";
import { trainNet } from "../lib/zoo/train_net.ts";

const quiet = () => {};

Deno.test("spec: a bad spec is a typed error naming the layer and the shapes", () => {
  const bad: NetSpec = {
    name: "bad",
    layers: [
      { kind: "conv2d", name: "c1", out: 4, kernel: 5 },
      { kind: "linear", name: "head", out: 10 },
    ],
  };
  assert.throws(
    () => Model.create(bad),
    (e: unknown) =>
      e instanceof NativeError && /layer 1 \(linear "head"\)/.test(e.message) &&
      e.message.includes("[4, 24, 24]"),
  );
  const unknown = { name: "x", layers: [{ kind: "gelu" }] } as unknown as NetSpec;
  assert.throws(() => Model.create(unknown), /gelu/);
});

Deno.test("spec: every zoo net builds, with the study's layer kinds", () => {
  assert.equal(ZOO_NETS.length, 19);
  for (const net of ZOO_NETS) {
    using model = Model.create(net.spec);
    const info = model.info();
    assert.equal(info.classes, 10, net.id);
    // The library echoes the spec with its defaults filled in: every field given keeps its
    // value, and the echo builds the same network again.
    assert.equal(info.spec.name, net.spec.name);
    assert.equal(info.spec.layers.length, net.spec.layers.length, net.id);
    for (const [i, given] of net.spec.layers.entries()) {
      const built = info.spec.layers[i] as unknown as Record<string, unknown>;
      for (const [key, value] of Object.entries(given)) {
        // Rates such as dropout's p are f32 natively, echoed in their shortest f32 form: 0.2
        // comes back as 0.2, not as the f64 nearest the f32 (0.20000000298023224).
        assert.deepEqual(built[key], value, `${net.id} layer ${i} ${key}`);
      }
    }
    using again = Model.create(info.spec);
    assert.deepEqual(again.info().spec, info.spec, net.id);
    const kinds = new Set(net.spec.layers.map((l) => l.kind));
    if (net.description.includes("Mish")) assert.ok(kinds.has("mish"), net.id);
    if (net.description.includes("Sigmoid")) assert.ok(kinds.has("sigmoid"), net.id);
    if (net.description.includes("avg pool")) assert.ok(kinds.has("avg_pool"), net.id);
    if (net.description.includes("max pool")) assert.ok(kinds.has("max_pool"), net.id);
  }
});

Deno.test("zoo --quick: summary fields, a checkpoint with its spec, and resume keeps runs", async () => {
  const dir = await Deno.makeTempDir();
  const lines: string[] = [];
  const first = await runZoo({ nets: ["2"], quick: true, outDir: dir, log: (l) => lines.push(l) });
  const [entry] = first.nets;
  for (const key of ["id", "description", "parameters", "accuracy1k", "accuracy60k", "seconds"]) {
    assert.ok(key in entry, key);
  }
  assert.ok(entry.accuracy60k! > 50 && entry.accuracy1k! > 20, JSON.stringify(entry));
  assert.equal(entry.parameters, 784 * 512 + 512 + 512 * 512 + 512 + 5120 + 10 + 4 * 512);
  assert.deepEqual(first.pending, []);
  const stored = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`)) as ZooSummary;
  assert.deepEqual(stored.nets, first.nets);
  assert.match(await Deno.readTextFile(`${dir}/summary.csv`), /^id,description,/);
  assert.match(await Deno.readTextFile(`${dir}/report.html`), /study 60k/);
  // The checkpoint carries its spec: it loads with no zoo code and scores what the run did.
  const weights = `${dir}/checkpoints/zoo-2-60k.safetensors`;
  assert.equal((await readSidecar(weights)).spec?.name, "zoo-2");
  const { model } = await loadCheckpoint(weights);
  try {
    const test = await loadDataset("mnist", "test", { limit: 2000 });
    const m = await model.evaluate(test.images, test.labels);
    assert.equal(Math.round(10000 * m.accuracy) / 100, entry.accuracy60k);
  } finally {
    model.close();
  }
  // A second run trains nothing.
  const again = await runZoo({ nets: ["2"], quick: true, outDir: dir, log: (l) => lines.push(l) });
  assert.deepEqual(again.nets, first.nets);
  assert.equal(lines.filter((l) => l.includes("kept")).length, 2, lines.join("\n"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainNet: a run interrupted after an epoch resumes there and ends as an unbroken run", async () => {
  const train = await loadDataset("mnist", "train", { limit: 512 });
  const test = await loadDataset("mnist", "test", { limit: 256 });
  const net = ZOO_NETS.find((n) => n.id === "6")!; // batch norm, dropout and Adam: all stateful
  const dir = await Deno.makeTempDir();
  const base = {
    spec: net.spec,
    optimizer: net.optimizer,
    lr: net.lr,
    train,
    test,
    epochs: 3,
    batchSize: 64,
    seed: 5,
  };
  const identity = () => train.images;
  const unbroken = await trainNet({ ...base, augment: identity });
  unbroken.model.close();
  const partialDir = `${dir}/partial`;
  const crash = (epoch: number) => {
    if (epoch === 2) throw new Error("simulated crash");
    return train.images;
  };
  await assert.rejects(trainNet({ ...base, augment: crash, partialDir }), /simulated crash/);
  const stored = JSON.parse(await Deno.readTextFile(`${partialDir}/progress.json`));
  assert.equal(stored.history.length, 2);
  let calls = 0;
  const resumed = await trainNet({
    ...base,
    partialDir,
    augment: () => (calls++, train.images),
  });
  resumed.model.close();
  assert.equal(calls, 1, "only the third epoch is trained again");
  assert.deepEqual(resumed.history, unbroken.history);
  assert.equal(resumed.accuracy, unbroken.accuracy);
  // Other settings do not pick up the stored state.
  const other = await trainNet({ ...base, seed: 6, partialDir, augment: identity });
  other.model.close();
  assert.notDeepEqual(other.history[0], unbroken.history[0]);
  await discardPartialRun(partialDir);
  await assert.rejects(Deno.stat(partialDir), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("augment: seeded images and a quick study with every transform", async () => {
  const train = await loadDataset("mnist", "train", { limit: 32 });
  const t8 = [
    { kind: "perspective" as const, p: 0.4, distortion: 0.5 },
    {
      kind: "affine" as const,
      degrees: 20,
      shear: [-20, 20, -5, 5] as [number, number, number, number],
    },
  ];
  const a = await augmentImages(train.images, t8, { seed: 3 });
  assert.deepEqual(a, await augmentImages(train.images, t8, { seed: 3 }));
  assert.notDeepEqual(a, await augmentImages(train.images, t8, { seed: 4 }));
  await assert.rejects(
    augmentImages(train.images, [{ kind: "vertical_flip", p: 2 }]),
    /out of range/,
  );
  const dir = await Deno.makeTempDir();
  const entries = await runAugment({ quick: true, outDir: dir, log: quiet });
  assert.deepEqual(entries.map((e) => e.transform), [
    "T0",
    "T1",
    "T2",
    "T3",
    "T4",
    "T5",
    "T6",
    "T7",
    "T8",
    "T9",
  ]);
  assert.equal(entries[0].improvement, 0);
  for (const e of entries) {
    assert.ok(e.accuracy > 15 && e.accuracy <= 100, JSON.stringify(e));
    assert.equal(e.improvement, Math.round(100 * (e.accuracy - entries[0].accuracy)) / 100);
  }
  assert.equal(entries[8].reference?.accuracy, 94.4);
  const png = await Deno.readFile(`${dir}/samples.png`);
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  await Deno.remove(dir, { recursive: true });
});
