import assert from "node:assert/strict";
import { Model, type NdArray } from "../ffi/model.ts";
import { conv1KernelCosine } from "../lib/noise_maps.ts";
import { encodeSafetensors, readSafetensors } from "../lib/safetensors.ts";

Deno.test("noise: same seed gives the same maps whatever the batch size", async () => {
  using model = Model.create("smaller", { seed: 5, mean: 0.1307, std: 0.3081 });
  const a = await model.analyse(null, { samples: 1200, batchSize: 1200, seed: 9, staSamples: 600 });
  const b = await model.analyse(null, { samples: 1200, batchSize: 77, seed: 9, staSamples: 600 });
  assert.deepEqual(a.counts.data, b.counts.data);
  // Classification maps: within 1e-6. STA sums run over b*h*w unit positions per batch in one f32
  // matmul (405,600 terms for conv1 here), so their rounding differs more with the batching.
  const pairs: [string, NdArray, NdArray, number][] = [
    ["classImages", a.classImages, b.classImages, 1e-6],
    ["weightedImages", a.weightedImages, b.weightedImages, 1e-6],
    ["thresholdImages", a.thresholdImages, b.thresholdImages, 1e-6],
    ["conv1 STA patch", a.layers.conv1.staPatch!, b.layers.conv1.staPatch!, 1e-4],
    ["conv2 STA centre", a.layers.conv2.staCentre, b.layers.conv2.staCentre, 1e-4],
  ];
  for (const [key, x, y, tol] of pairs) {
    const diff = x.data.reduce((m, v, i) => Math.max(m, Math.abs(v - y.data[i])), 0);
    assert.ok(diff < tol, `${key} differs by ${diff}`);
  }
  const c = await model.analyse(null, { samples: 1200, batchSize: 500, seed: 10 });
  assert.notDeepEqual(a.classImages.data, c.classImages.data, "another seed gives other noise");
});

Deno.test("noise: a hand-set linear model gives the analytic classification images", async () => {
  // Class 0 scores x0 - 0.5, class 1 scores 0.5 - x0, the rest -10: class 0 wins iff pixel 0 > 0.5,
  // so with uniform noise the class-0 map has pixel 0 at E[x | x > 0.5] = 0.75, class 1 at 0.25,
  // and every other pixel at 0.5.
  const weight = new Float32Array(10 * 784);
  weight[0] = 1;
  weight[784] = -1;
  const bias = new Float32Array(10).fill(-10);
  bias[0] = -0.5;
  bias[1] = 0.5;
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(
    `${dir}/w.safetensors`,
    encodeSafetensors({
      "fc.weight": { shape: [10, 784], data: weight },
      "fc.bias": { shape: [10], data: bias },
    }),
  );
  using model = Model.create("logreg");
  model.loadWeights(`${dir}/w.safetensors`);
  const n = 40000;
  const r = await model.analyse(null, { samples: n, seed: 1, layers: ["logits"] });
  const [c0, c1, ...rest] = r.counts.data;
  assert.equal(c0 + c1, n);
  assert.ok(rest.every((c) => c === 0));
  assert.ok(Math.abs(c0 / n - 0.5) < 0.01, `class 0 share ${c0 / n}`);
  const ci = r.classImages.data;
  assert.ok(Math.abs(ci[0] - 0.75) < 0.005, `class 0 pixel 0 = ${ci[0]}`);
  assert.ok(Math.abs(ci[784] - 0.25) < 0.005, `class 1 pixel 0 = ${ci[784]}`);
  const others = [...ci.subarray(1, 784), ...ci.subarray(785, 1568)];
  assert.ok(others.every((v) => Math.abs(v - 0.5) < 0.02));
  // The reverse correlation of the signed logits: cov(x0 - 0.5, x) is Var(x0) = 1/12 at pixel 0
  // and 0 elsewhere; logit 1 is its negative; the constant logits correlate with nothing.
  const cov = r.layers.logits.staCentreCov.data;
  assert.deepEqual(r.layers.logits.staCentreCov.shape, [10, 28, 28]);
  assert.ok(Math.abs(cov[0] - 1 / 12) < 0.003, `logit 0, pixel 0: ${cov[0]}`);
  assert.ok(Math.abs(cov[784] + 1 / 12) < 0.003, `logit 1, pixel 0: ${cov[784]}`);
  const rest0 = [...cov.subarray(1, 784), ...cov.subarray(785, 1568)];
  assert.ok(rest0.every((v) => Math.abs(v) < 0.003), "off-pixel covariance");
  assert.ok(cov.subarray(1568).every((v) => Math.abs(v) < 1e-6), "constant logits");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("noise: the STA of a conv layer recovers its kernels", async () => {
  const dir = await Deno.makeTempDir();
  using model = Model.create("smaller", { seed: 2 });
  model.saveWeights(`${dir}/m.safetensors`);
  const r = await model.analyse(null, {
    samples: 10000,
    staSamples: 10000,
    layers: ["conv1"],
    seed: 3,
  });
  const cos = await conv1KernelCosine(`${dir}/m.safetensors`, r.layers.conv1.staPatch!, 0.5);
  assert.equal(cos.length, 32);
  const sorted = [...cos].sort((a, b) => a - b);
  assert.ok(sorted[16] > 0.9, `median cosine ${sorted[16]}`);
  // The weights file really holds the kernels the STA is compared with.
  const w = await readSafetensors(`${dir}/m.safetensors`);
  assert.deepEqual(w["conv1.weight"].shape, [32, 1, 3, 3]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("noise: gamma 1 sees only the images, and predictions match predict()", async () => {
  using model = Model.create("mlp", { seed: 4 });
  const images = new Float32Array(20 * 784).map((_, i) => (i * 7919 % 255) / 255);
  const r = await model.analyse(images, { gamma: 1 });
  const logits = await model.predict(images);
  for (let i = 0; i < 20; i++) {
    const row = logits.subarray(i * 10, i * 10 + 10);
    assert.equal(r.predictions!.data[i], row.indexOf(Math.max(...row)));
  }
});

Deno.test("fgsm: eps 0 is the identity; gradients match finite differences", async () => {
  using model = Model.create("logreg", { seed: 6, mean: 0.1307, std: 0.3081 });
  const images = new Float32Array(4 * 784).map((_, i) => ((i * 104729) % 1000) / 1000);
  const labels = new Uint8Array([1, 2, 3, 4]);
  const same = await model.fgsm(images, labels, 0);
  assert.deepEqual(same, images);
  const { gradients, loss } = await model.inputGradients(images, labels);
  const logitsLoss = async (x: Float32Array) => (await model.inputGradients(x, labels)).loss;
  for (const k of [3, 400, 784 + 17, 3 * 784 + 600]) {
    const h = 1e-2;
    const plus = images.slice();
    plus[k] += h;
    const minus = images.slice();
    minus[k] -= h;
    const fd = ((await logitsLoss(plus)) - (await logitsLoss(minus))) / (2 * h);
    assert.ok(
      Math.abs(fd - gradients[k]) < 1e-3 + 1e-2 * Math.abs(fd),
      `pixel ${k}: ${gradients[k]} vs ${fd}`,
    );
  }
  assert.ok(Number.isFinite(loss));
  const adv = await model.fgsm(images, labels, 0.1);
  assert.ok(adv.every((v) => v >= 0 && v <= 1));
});

/** Peak resident memory in MiB of one analysis in a fresh process (tests/_peak_memory.ts). */
async function peakMemory(...args: (string | number)[]): Promise<number> {
  const out = await new Deno.Command("deno", {
    args: ["run", "-A", "tests/_peak_memory.ts", ...args.map(String)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return Number(new TextDecoder().decode(out.stdout).trim()) / 1024;
}

Deno.test("noise: memory does not grow with the number of samples", async () => {
  const small = await peakMemory(10_000);
  // Keeping the stimuli of a million samples would take 3 GiB; streaming keeps one batch.
  const large = await peakMemory(1_000_000);
  assert.ok(large - small < 64, `peak memory ${small.toFixed(0)} MiB -> ${large.toFixed(0)} MiB`);
});

// Imported and spec models, every sample feeding the layer statistics (the STA path, where each
// conv's activations are summed). A pass that recorded an autograd graph kept every earlier
// batch alive through the running sums: about 1 MB a sample for the ONNX smaller, 2 GB over
// these 2,000 extra samples. Streaming keeps one batch.
const convTanh = {
  name: "conv-tanh",
  layers: [
    { kind: "conv2d", name: "conv1", out: 16, kernel: 3, bias: true },
    { kind: "tanh", tap: "conv1" },
    { kind: "max_pool", size: 2 },
    { kind: "flatten" },
    { kind: "linear", name: "fc1", out: 10 },
  ],
};
for (
  const model of [
    "onnx:tests/fixtures/onnx/smaller.onnx",
    "state-dict:tests/fixtures/pytorch/smaller",
    "spec",
  ]
) {
  Deno.test(`noise: memory does not grow with the samples of a ${model} model`, async () => {
    let arg = model;
    if (model === "spec") {
      const file = await Deno.makeTempFile({ suffix: ".json" });
      await Deno.writeTextFile(file, JSON.stringify(convTanh));
      arg = `spec:${file}`;
    }
    const small = await peakMemory(500, arg, 500, 500);
    const large = await peakMemory(2_500, arg, 2_500, 500);
    assert.ok(
      large - small < 24,
      `peak memory ${small.toFixed(0)} MiB -> ${large.toFixed(0)} MiB`,
    );
  });
}

Deno.test("classify: predictions match predict() with the pattern added at each weight", async () => {
  using model = Model.create("mlp", { seed: 8 });
  const images = new Float32Array(30 * 784).map((_, i) => ((i * 7919) % 255) / 255);
  const pattern = new Float32Array(784).map((_, i) => Math.sin(i / 7));
  const weights = [0, 0.5, 2];
  const got = await model.classify(images, { gamma: 1, pattern, weights, batchSize: 7 });
  assert.equal(got.length, 3 * 30);
  for (const [k, w] of weights.entries()) {
    const shifted = images.map((v, i) => v + w * pattern[i % 784]);
    const logits = await model.predict(shifted);
    for (let i = 0; i < 30; i++) {
      const row = logits.subarray(i * 10, i * 10 + 10);
      assert.equal(got[k * 30 + i], row.indexOf(Math.max(...row)), `weight ${w}, image ${i}`);
    }
  }
  // On noise, classify and analyse see the same stream: the same histogram.
  const noise = await model.classify(null, { samples: 900, seed: 4, batchSize: 128 });
  const maps = await model.analyse(null, { samples: 900, seed: 4, staSamples: 0 });
  const counts = new Array(10).fill(0);
  noise.forEach((c) => counts[c]++);
  assert.deepEqual(counts, Array.from(maps.counts.data));
});

Deno.test("data noise: the stream has the fitted mean and covariance", async () => {
  // Images with two perfectly anti-correlated pixels and the rest constant.
  const n = 500;
  const images = new Float32Array(n * 784).fill(0.3);
  for (let i = 0; i < n; i++) {
    const a = 0.5 + 0.2 * Math.sin(i * 1.7);
    images[i * 784 + 100] = a;
    images[i * 784 + 101] = 1 - a;
  }
  using model = Model.create("logreg");
  const fit = await model.fitDataNoise(images);
  assert.equal(fit.images, n);
  assert.ok(Math.abs(fit.mean.data[100] - 0.5) < 0.02 && Math.abs(fit.mean.data[5] - 0.3) < 1e-6);
  const r = await model.analyse(null, {
    noise: "data",
    samples: 4000,
    staSamples: 0,
    keepStimuli: 4000,
  });
  const x = r.stimuli!.data;
  let m100 = 0, m5 = 0, cov = 0, v100 = 0;
  for (let i = 0; i < 4000; i++) {
    m100 += x[i * 784 + 100] / 4000;
    m5 += x[i * 784 + 5] / 4000;
  }
  for (let i = 0; i < 4000; i++) {
    const a = x[i * 784 + 100] - m100, b = x[i * 784 + 101] - (1 - m100);
    cov += (a * b) / 4000;
    v100 += (a * a) / 4000;
  }
  assert.ok(Math.abs(m100 - 0.5) < 0.02, `mean of pixel 100: ${m100}`);
  assert.ok(Math.abs(m5 - 0.3) < 0.005, `a constant pixel keeps its value: ${m5}`);
  assert.ok(cov / v100 < -0.95, `pixels 100 and 101 anti-correlated: ${cov / v100}`);
  assert.ok(x.every((v) => v >= 0 && v <= 1), "clipped to [0, 1]");
  // A contrast of 0.5 halves the spread.
  const half = await model.analyse(null, {
    noise: "data",
    contrast: 0.5,
    samples: 4000,
    staSamples: 0,
    keepStimuli: 4000,
  });
  let vHalf = 0;
  for (let i = 0; i < 4000; i++) vHalf += (half.stimuli!.data[i * 784 + 100] - 0.5) ** 2 / 4000;
  assert.ok(Math.abs(Math.sqrt(vHalf / v100) - 0.5) < 0.05, `std ratio ${Math.sqrt(vHalf / v100)}`);
});
