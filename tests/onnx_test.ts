import assert from "node:assert/strict";
import { loadDataset } from "../data/datasets.ts";
import { NativeError } from "../ffi/errors.ts";
import { loadCheckpoint, readSidecar } from "../lib/checkpoint.ts";
import { importOnnx } from "../lib/import.ts";
import { readNpy } from "../lib/npy.ts";
import { tally } from "../lib/noise_maps/context.ts";

const ONNX = "tests/fixtures/onnx";
const PYTORCH = "tests/fixtures/pytorch";
const NORMALISATION = { mean: 0.1307, std: 0.3081 };

/** Imports an ONNX fixture into a fresh folder and opens the checkpoint. */
async function imported(file: string, meta = {}) {
  const dir = await Deno.makeTempDir();
  const result = await importOnnx({
    onnx: `${ONNX}/${file}`,
    meta,
    out: `${dir}/${file.replace(/\.onnx$/, "")}.safetensors`,
  });
  const { model } = await loadCheckpoint(result.checkpoint);
  return { ...result, model };
}

// smaller and tiny_resnet as torch.onnx.export writes them by default (batch norms folded into
// the convs); tiny_resnet_raw normalises its own input, keeps its batch norms and ends in a
// LogSoftmax. All three must give PyTorch's logits for the same weights. keras_style is laid out
// as tf2onnx writes a Keras CNN (channels-last input, transposes, MatMul + Add, Softmax); its
// logits come from onnx's reference evaluator.
for (
  const [file, meta, logits, dropped] of [
    ["smaller.onnx", NORMALISATION, `${PYTORCH}/smaller.logits.npy`, undefined],
    ["tiny_resnet.onnx", NORMALISATION, `${PYTORCH}/tiny_resnet.logits.npy`, undefined],
    ["tiny_resnet_raw.onnx", {}, `${PYTORCH}/tiny_resnet.logits.npy`, "LogSoftmax"],
    ["keras_style.onnx", { mean: 0, std: 1 }, `${ONNX}/keras_style.logits.npy`, "Softmax"],
  ] as const
) {
  Deno.test(`onnx: ${file} gives the reference logits within 1e-4`, async () => {
    const { model, checkpoint, notes } = await imported(file, meta);
    using _ = model;
    const want = await readNpy(logits);
    const test = await loadDataset("mnist", "test", { limit: want.shape[0] });
    const got = await model.predict(test.images);
    assert.equal(got.length, want.data.length);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want.data[i]));
    assert.ok(worst < 1e-4, `${file}: largest logit difference ${worst}`);
    const sidecar = await readSidecar(checkpoint);
    if (meta !== NORMALISATION && file !== "keras_style.onnx") {
      // The raw graph's own (x - 0.1307) / 0.3081 is folded into the checkpoint's normalisation.
      assert.ok(Math.abs(sidecar.normalisation.mean - NORMALISATION.mean) < 1e-6);
      assert.ok(Math.abs(sidecar.normalisation.std - NORMALISATION.std) < 1e-6);
    }
    assert.deepEqual(notes.map((n) => n.match(/final (\w+)/)?.[1]), dropped ? [dropped] : []);
  });
}

Deno.test("onnx: every conv is tapped by its module name, and FGSM's input gradients are PyTorch's model's", async () => {
  const { model } = await imported("tiny_resnet_raw.onnx");
  using _ = model;
  const names = model.info().layers.map((l) => l.name);
  assert.deepEqual(names, [
    "model.conv1",
    "model.layer1.0.conv1",
    "model.layer1.0",
    "model.layer1.1.conv1",
    "model.layer1.1",
    "logits",
  ]);
  // The STA taps work on a converted model: one 16-channel map per image at the stem.
  const test = await loadDataset("mnist", "test", { limit: 4 });
  const acts = await model.activations(test.images, "model.conv1");
  assert.equal(acts.length, 4 * 16 * 28 * 28);
  assert.ok(acts.every((v) => v >= 0), "the stem's tap is after its ReLU");
  assert.ok(acts.some((v) => v > 0));
  // Input gradients through the converted graph: a central difference agrees.
  const labels = test.labels.slice(0, 1);
  const image = test.images.slice(0, 784);
  const grad = (await model.inputGradients(image, labels)).gradients;
  const loss = async (x: Float32Array) => (await model.inputGradients(x, labels)).loss;
  const h = 1e-2;
  for (const pixel of [300, 405, 500]) {
    const plus = image.slice(), minus = image.slice();
    plus[pixel] += h;
    minus[pixel] -= h;
    const numeric = ((await loss(plus)) - (await loss(minus))) / (2 * h);
    assert.ok(
      Math.abs(numeric - grad[pixel]) < 2e-2 * Math.max(1, Math.abs(numeric)),
      `pixel ${pixel}: numeric ${numeric}, analytic ${grad[pixel]}`,
    );
  }
});

// tiny_resnet only: the untrained smaller calls every noise image a 2, in PyTorch and in wna
// alike (tests/import_test.ts checks that too), while the ResNet splits them 62,984 / 37,016.
Deno.test("onnx: class counts on 100,000 noise images match PyTorch's on the same noise", async () => {
  for (const name of ["tiny_resnet"]) {
    const want = JSON.parse(await Deno.readTextFile(`${PYTORCH}/${name}.noise-counts.json`));
    const { model } = await imported(`${name}.onnx`, NORMALISATION);
    using _ = model;
    const predicted = await model.classify(null, {
      samples: want.samples,
      seed: want.seed,
      noise: "uniform",
      batchSize: 1000,
    });
    const counts = tally(predicted, 10);
    const off = counts.reduce((a, c, k) => a + Math.abs(c - want.counts[k]), 0);
    assert.ok(off <= 10, `${name}: wna ${counts} against PyTorch ${want.counts}`);
    console.log(`${name}.onnx: wna ${counts}, PyTorch ${want.counts}`);
  }
});

Deno.test("onnx: a truncated file, an unsupported op and a 3x32x32 input each get a clear error", async () => {
  const dir = await Deno.makeTempDir();
  const bytes = await Deno.readFile(`${ONNX}/tiny_resnet.onnx`);
  const cut = `${dir}/cut.onnx`;
  await Deno.writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  const attempt = (onnx: string) =>
    importOnnx({ onnx, meta: NORMALISATION, out: `${dir}/out.safetensors` });
  await assert.rejects(
    attempt(cut),
    (e: unknown) => e instanceof NativeError && /cut\.onnx.*truncated/.test(e.message),
  );
  await assert.rejects(
    attempt(`${ONNX}/unsupported.onnx`),
    (e: unknown) =>
      e instanceof NativeError && /node "\/Elu" \(Elu\): unsupported op Elu/.test(e.message),
  );
  await assert.rejects(
    attempt(`${ONNX}/cifar.onnx`),
    (e: unknown) =>
      e instanceof NativeError && /input is batchx3x32x32|input is \?x3x32x32/.test(e.message) &&
      /1x28x28/.test(e.message),
  );
  await assert.rejects(attempt(`${dir}/absent.onnx`), /cannot read .*absent\.onnx/);
  // Nothing half-written is left behind.
  const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(left, ["cut.onnx"]);
});

Deno.test("onnx: `deno task noise-maps --onnx` imports the file and writes the report", async () => {
  const root = new URL("../", import.meta.url).pathname;
  const dir = await Deno.makeTempDir();
  const env = Deno.env.toObject();
  delete env.INIT_CWD; // as from a fresh shell
  const flags = ["--samples", "400", "--raw-samples", "400", "--noise", "uniform"];
  const out = await new Deno.Command("deno", {
    args: [
      "task",
      "--config",
      `${root}deno.json`,
      "noise-maps",
      "--onnx",
      `${root}${ONNX}/tiny_resnet_raw.onnx`,
      "--classes",
      "zero,one,two,three,four,five,six,seven,eight,nine",
      ...flags,
      "--stim-samples",
      "40",
      "--eval-images",
      "40",
      "--out",
      "nm",
    ],
    cwd: dir,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.match(
    new TextDecoder().decode(out.stdout),
    /imported .*tiny_resnet_raw\.onnx: test accuracy/,
  );
  const summary = JSON.parse(await Deno.readTextFile(`${dir}/nm/summary.json`));
  assert.equal(summary.model, "tiny_resnet_raw");
  assert.equal(summary.classNames[9], "nine");
  assert.equal(summary.classCounts.reduce((a: number, b: number) => a + b, 0), 400);
  const report = await Deno.readTextFile(`${dir}/nm/report.html`);
  assert.match(report, /model\.conv1/, "the STA section names the converted conv layer");
  await Deno.remove(dir, { recursive: true });
});
