import assert from "node:assert/strict";
import { loadDataset } from "../data/datasets.ts";
import { NativeError } from "../ffi/errors.ts";
import { discriminate, frechetDistance, ganTrainEpoch, generate } from "../ffi/gan.ts";
import { Model } from "../ffi/model.ts";
import { saveCheckpoint } from "../lib/checkpoint.ts";
import { runGan } from "../lib/gan.ts";
import { inceptionScore, klToUniform, softmaxRows } from "../lib/gan/quality.ts";
import { GAN_SPECS, LATENT_DIM } from "../lib/gan/specs.ts";
import { readNpy } from "../lib/npy.ts";
import { silhouette } from "../lib/silhouette.ts";
import { ZOO_NETS } from "../lib/zoo/nets.ts";
import { trainNet } from "../lib/zoo/train_net.ts";
import { checkPage } from "./_browser.ts";

const quiet = { progress: false, log: () => {} };

Deno.test("gan quality: Inception score and KL to uniform at their known extremes", () => {
  const k = 10;
  const oneHot = (cls: (i: number) => number, n: number) => {
    const p = new Float64Array(n * k);
    for (let i = 0; i < n; i++) p[i * k + cls(i)] = 1;
    return p;
  };
  // Confident and evenly spread: k; confident on one class, or never confident: 1.
  assert.ok(Math.abs(inceptionScore(oneHot((i) => i % k, 100), k) - k) < 1e-9);
  assert.ok(Math.abs(inceptionScore(oneHot(() => 3, 100), k) - 1) < 1e-9);
  assert.ok(Math.abs(inceptionScore(new Float64Array(100 * k).fill(1 / k), k) - 1) < 1e-9);
  // Two classes drawn equally: 2.
  assert.ok(Math.abs(inceptionScore(oneHot((i) => i % 2, 100), k) - 2) < 1e-9);
  assert.equal(klToUniform([5, 5, 5, 5]), 0);
  assert.ok(Math.abs(klToUniform([20, 0, 0, 0]) - Math.log(4)) < 1e-12);
  const p = softmaxRows(new Float32Array([0, 0, 1000, -1000]), 2);
  assert.deepEqual([...p], [0.5, 0.5, 1, 0]);
});

Deno.test("silhouette: separate clusters near 1, interleaved labels near 0", () => {
  // Two tight clusters 10 apart, 50 points each; then the same points with labels alternating.
  const points = Float32Array.from(
    { length: 200 },
    (_, i) => (i % 2 === 0 ? (i < 100 ? 0 : 10) : 0) + Math.sin(i) * 0.1,
  );
  const grouped = Array.from({ length: 100 }, (_, i) => (i < 50 ? 0 : 1));
  assert.ok(silhouette(points, 2, grouped) > 0.9);
  const mixed = Array.from({ length: 100 }, (_, i) => i % 2);
  assert.ok(Math.abs(silhouette(points, 2, mixed)) < 0.1);
  assert.ok(Number.isNaN(silhouette(points, 2, new Array(100).fill(3))));
});

Deno.test("gan ffi: generator and discriminator specs train, sample and fail clearly", async () => {
  using g = Model.create(GAN_SPECS.dcgan.generator, { mean: 0.5, std: 0.5, seed: 1 });
  using d = Model.create(GAN_SPECS.dcgan.discriminator, { mean: 0.5, std: 0.5, seed: 2 });
  assert.equal(g.info().classes, 784);
  const real = new Float32Array(32 * 784).map((_, i) => ((i % 784) % 28 === 14 ? 1 : 0));
  const m = await ganTrainEpoch(g, d, real, { epoch: 0, batchSize: 16 });
  assert.ok(Number.isFinite(m.discriminatorLoss) && Number.isFinite(m.generatorLoss));
  assert.ok(m.dReal > 0 && m.dReal < 1 && m.dFake > 0 && m.dFake < 1);
  const z = new Float32Array(3 * LATENT_DIM).map((_, i) => Math.sin(i));
  const images = await generate(g, z);
  assert.equal(images.length, 3 * 784);
  assert.ok(images.every((v) => v >= 0 && v <= 1), "tanh output maps into [0, 1]");
  const p = await discriminate(d, images);
  assert.equal(p.length, 3);
  assert.ok(p.every((v) => v > 0 && v < 1));
  await assert.rejects(
    generate(g, z.subarray(0, 150)),
    (e: unknown) => e instanceof NativeError && /multiple of 100/.test(e.message),
  );
  await assert.rejects(ganTrainEpoch(g, g, real, { epoch: 0 }), /same model/);
  await assert.rejects(ganTrainEpoch(d, g, real, { epoch: 0 }), /output "image"/);
  await assert.rejects(ganTrainEpoch(g, d, real, { epoch: 0, lr: -1 }), /lr > 0/);
  assert.throws(
    () => Model.create({ ...GAN_SPECS.mlp.discriminator, output: "logits" }),
    /\[classes\] logits.*\[1\]/,
  );
  // The Frechet distance of a set to itself is 0; to a copy shifted by 1 in each of 4 columns, 4.
  const a = Float32Array.from({ length: 400 }, (_, i) => Math.sin(i * 1.7) * 3);
  assert.ok((await frechetDistance(a, a, 4)) < 1e-9);
  const shifted = a.map((v) => v + 1);
  assert.ok(Math.abs((await frechetDistance(a, shifted, 4)) - 4) < 1e-6);
  await assert.rejects(frechetDistance(a, a.subarray(0, 3), 4), /at least 2 rows/);
});

Deno.test("gan: a run is judged per epoch, resumes, reproduces, and writes a readable report", async () => {
  const dir = await Deno.makeTempDir();
  // Zoo net 11.1 on 10,000 images for 3 epochs (about 97.5%) stands in for the 60k-image judge.
  const train = await loadDataset("mnist", "train", { limit: 10_000 });
  const test = await loadDataset("mnist", "test", { limit: 1000 });
  const net = ZOO_NETS.find((n) => n.id === "11.1")!;
  const judged = await trainNet({
    spec: net.spec,
    optimizer: net.optimizer,
    lr: net.lr,
    train,
    test,
    epochs: 3,
    batchSize: 64,
    seed: 0,
  });
  const judge = `${dir}/judge.safetensors`;
  await saveCheckpoint(judged.model, judge, {
    model: net.spec.name,
    dataset: "mnist",
    classes: 10,
    epoch: 2,
    epochs: 3,
    seed: 0,
    normalisation: { mean: train.mean, std: train.std },
    testAccuracy: judged.accuracy,
    history: [],
    options: {},
  });
  judged.model.close();
  const options = {
    ...quiet,
    trainImages: 1024,
    qualitySamples: 300,
    tsneSizes: [500],
    fgsmEps: [0.2, 1],
    fgsmImages: 300,
    n1Training: { epochs: 1, trainLimit: 2000, cacheDir: `${dir}/fgsm`, progress: false },
    interpolationPairs: 2,
    classifier: judge,
  };
  const first = await runGan({ ...options, epochs: 2, outDir: `${dir}/gan` });
  assert.equal(first.history.length, 2);
  for (const e of first.history) {
    assert.ok(e.inceptionScore >= 1 && e.inceptionScore <= 10, `IS ${e.inceptionScore}`);
    assert.ok(e.frechet > 0 && Number.isFinite(e.frechet), `FID ${e.frechet}`);
    assert.equal(e.histogram.reduce((a, b) => a + b, 0), 300);
    assert.ok(Math.abs(e.klToUniform - klToUniform(e.histogram)) < 1e-12, `KL ${e.klToUniform}`);
  }
  // Real digits score far better than two epochs of GAN on 1,024 images.
  assert.ok(first.inceptionScoreReal > 9, `real-set Inception score ${first.inceptionScoreReal}`);
  assert.ok(first.real.inceptionScore > first.best.inceptionScore + 1);
  assert.equal(first.fid, first.best.frechet);
  assert.ok(first.real.frechetEvenOdd < first.best.frechet);
  assert.ok(first.history.some((e) => e.epoch === first.bestEpoch));
  assert.deepEqual(first.tsne.map((t) => t.name), [
    "generated-500",
    "latents",
    "fgsm-0.2",
    "fgsm-1",
  ]);
  assert.ok(first.tsne.every((t) => t.trustworthiness > 0.6), JSON.stringify(first.tsne));
  // FGSM at eps 1 leaves N1 far less accurate than at 0.2.
  const byName = Object.fromEntries(first.tsne.map((t) => [t.name, t]));
  assert.ok(byName["fgsm-1"].accuracy! < byName["fgsm-0.2"].accuracy!);
  const samples = await readNpy(`${dir}/gan/samples.npy`);
  assert.deepEqual(samples.shape, [300, 28, 28]);
  await Deno.stat(`${dir}/gan/samples/epoch-002.png`);
  await Deno.stat(`${dir}/gan/interpolation.npz`);

  // A third epoch resumes after the second: the first two are kept as they were.
  const more = await runGan({ ...options, epochs: 3, outDir: `${dir}/gan` });
  assert.equal(more.history.length, 3);
  assert.deepEqual(more.history.slice(0, 2), first.history);
  // The same seed from scratch gives the same numbers.
  const again = await runGan({ ...options, epochs: 3, outDir: `${dir}/again` });
  assert.deepEqual(
    again.history.map((e) => [e.discriminatorLoss, e.generatorLoss, e.frechet]),
    more.history.map((e) => [e.discriminatorLoss, e.generatorLoss, e.frechet]),
  );

  const page = await checkPage(`file://${dir}/gan/report.html`, 1000, 900);
  await Deno.writeFile(`${dir}/gan/report-screenshot.png`, page.screenshot);
  assert.deepEqual(page.consoleErrors, []);
  assert.deepEqual(page.brokenImages, []);
  assert.deepEqual(page.overflowing, [], "elements wider than the page");
  assert.ok(page.images >= 100 + 2 * 11, `only ${page.images} images`);
  console.log(`gan report screenshot: ${dir}/gan/report-screenshot.png`);
});
