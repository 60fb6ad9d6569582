import assert from "node:assert/strict";
import { loadDataset } from "../data/datasets.ts";
import { Model } from "../ffi/model.ts";
import { loadCheckpoint, readSidecar } from "../lib/checkpoint.ts";
import { runNoiseMaps } from "../lib/noise_maps.ts";
import { trainModel } from "../lib/training.ts";

const quiet = { progress: false, log: () => {} };

Deno.test("train: smaller on a 2,000-image MNIST subset beats 90% on the test set", async () => {
  const dir = await Deno.makeTempDir();
  const r = await trainModel({
    model: "smaller",
    dataset: "mnist",
    limit: 2000,
    epochs: 5,
    batchSize: 64,
    valFraction: 0.05,
    patience: 5,
    seed: 1,
    outDir: dir,
    ...quiet,
  });
  assert.ok(r.testAccuracy > 0.9, `test accuracy ${r.testAccuracy}`);
  const side = await readSidecar(r.checkpoint);
  assert.equal(side.testAccuracy, r.testAccuracy);
  // The best checkpoint's sidecar holds the history up to its epoch; the last one holds all five.
  assert.equal((await readSidecar(`${dir}/model.safetensors`)).history.length, 5);
  assert.deepEqual(side.normalisation, { mean: 0.1307, std: 0.3081 });
  // The history is an .npz (a zip whose first entry is an .npy) and a PNG.
  const npz = await Deno.readFile(`${dir}/history.npz`);
  assert.deepEqual([...npz.subarray(0, 4)], [0x50, 0x4b, 0x03, 0x04]);
  const png = await Deno.readFile(`${dir}/history.png`);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train: checkpoints round-trip and --resume continues where it stopped", async () => {
  const dir = await Deno.makeTempDir();
  const common = {
    model: "logreg" as const,
    dataset: "mnist",
    limit: 1000,
    seed: 2,
    outDir: dir,
    ...quiet,
  };
  await trainModel({ ...common, epochs: 1 });
  const first = await readSidecar(`${dir}/model.safetensors`);
  assert.equal(first.epoch, 0);
  const resumed = await trainModel({ ...common, epochs: 3, resume: true });
  const last = await readSidecar(`${dir}/model.safetensors`);
  assert.equal(last.epoch, 2);
  assert.equal(last.history.length, 3);
  assert.deepEqual(last.history[0], first.history[0], "resume keeps the earlier epochs");
  assert.ok(resumed.testAccuracy > 0.7);
  // The checkpoint's weights survive a save/load round trip into a fresh model, whose own
  // initial weights gave other logits.
  const test = await loadDataset("mnist", "test", { limit: 50 });
  const { model: trained } = await loadCheckpoint(resumed.checkpoint);
  using _trained = trained;
  using fresh = Model.create("logreg", { seed: 99, ...last.normalisation });
  const expected = await trained.predict(test.images);
  assert.notDeepEqual(await fresh.predict(test.images), expected, "a fresh model differs");
  trained.saveWeights(`${dir}/copy.safetensors`);
  fresh.loadWeights(`${dir}/copy.safetensors`);
  assert.deepEqual(await fresh.predict(test.images), expected);
  assert.deepEqual(
    [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp")),
    [],
    "no temp files left",
  );
  await assert.rejects(
    trainModel({ ...common, outDir: `${dir}/empty`, resume: true }),
    /resume: no usable checkpoint/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("noise-maps: output files are valid (.npy, PNG, summary.json, report.html)", async () => {
  const dir = await Deno.makeTempDir();
  const { checkpoint } = await trainModel({
    model: "smaller",
    dataset: "mnist",
    limit: 600,
    epochs: 1,
    seed: 3,
    outDir: `${dir}/ckpt`,
    ...quiet,
  });
  const out = `${dir}/run`;
  const s = await runNoiseMaps({
    checkpoint,
    outDir: out,
    samples: 1000,
    rawSamples: 1000,
    evalImages: 100,
    stimSamples: 200,
    stimDeltas: [0, 4],
    gammas: [0, 1],
    weights: [0, 1],
    log: () => {},
  });
  const npy = await Deno.readFile(`${out}/class-images.npy`);
  assert.deepEqual([...npy.subarray(0, 6)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
  const header = new TextDecoder().decode(
    npy.subarray(10, 10 + new DataView(npy.buffer).getUint16(8, true)),
  );
  assert.match(header, /'descr': '<f4', 'fortran_order': False, 'shape': \(10, 28, 28\)/);
  assert.equal(npy.length, 10 + header.length + 10 * 784 * 4);
  for (
    const f of [
      "classification-images.png",
      "bias-histogram.png",
      "sta-conv1-patch.png",
      "gamma-accuracy.png",
      "gamma-sample-stimuli.png",
    ]
  ) {
    const png = await Deno.readFile(`${out}/${f}`);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], f);
    assert.match(await Deno.readTextFile(`${out}/${f.replace(".png", ".svg")}`), /^<svg/);
  }
  const summary = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
  for (
    const key of [
      "samples",
      "classCounts",
      "classShare",
      "attack",
      "microstimulation",
      "templateAccuracy",
      "chance",
      "conv1StaKernelCosine",
      "seconds",
    ]
  ) {
    assert.ok(key in summary, `summary.json lacks ${key}`);
  }
  assert.equal(summary.samples, 1000);
  assert.equal(summary.classCounts.reduce((a: number, b: number) => a + b, 0), 1000);
  assert.equal(summary.noise, "data");
  assert.ok(Math.abs(summary.classShare.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-9);
  assert.equal(summary.calibration.length, 8, "eight contrasts tried");
  assert.deepEqual(Object.keys(summary.attack[0]).sort(), [
    "accuracy",
    "controlSuccessRate",
    "successRate",
    "target",
    "weight",
  ]);
  assert.equal(summary.microstimulation.length, 10, "one sweep per class");
  assert.equal(summary.conv1StaKernelCosine.length, 32);
  assert.equal(s.chance, 0.1);
  // The sample stimuli are the native side's gamma mixes: 10 test images at gamma 0.5.
  const stimuli = await Deno.readFile(`${out}/gamma-sample-stimuli.npy`);
  assert.equal(
    stimuli.length - (10 + new DataView(stimuli.buffer).getUint16(8, true)),
    10 * 784 * 4,
  );
  const html = await Deno.readTextFile(`${out}/report.html`);
  assert.match(html, /<svg/);
  assert.doesNotMatch(html, /src="(?!data:)/, "the report is self-contained");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli: bad flags give one clear line and exit 1", async () => {
  const run = async (script: string, args: string[]) => {
    const out = await new Deno.Command("deno", {
      args: ["run", "-A", script, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, err: new TextDecoder().decode(out.stderr) };
  };
  const cases: [string, string[], RegExp][] = [
    [
      "scripts/noise_maps.ts",
      ["--samples", "abc"],
      /error: invalid --samples: "abc" \(expected a whole number >= 1\)/,
    ],
    [
      "scripts/noise_maps.ts",
      ["--noise", "pink", "--checkpoint", "x.safetensors"],
      /error: invalid --noise: "pink" \(expected data, uniform, gaussian\)/,
    ],
    ["scripts/noise_maps.ts", ["--contrast", "0"], /error: invalid --contrast: "0"/],
    [
      "scripts/noise_maps.ts",
      ["--samples", "-5"],
      /error: invalid --samples: "-5" \(expected a whole number >= 1\)/,
    ],
    ["scripts/fgsm.ts", ["--eps", "-0.1", "--seed", "1"], /error: invalid --eps: each must be in/],
    ["scripts/noise_maps.ts", ["--stim-deltas", "1,x"], /error: invalid --stim-deltas: "x"/],
    ["scripts/noise_maps.ts", ["--raw-samples", "1.5"], /error: invalid --raw-samples: "1.5"/],
    ["scripts/backdoor.ts", ["--target", "12"], /error: invalid --target: "12"/],
    ["scripts/backdoor.ts", ["--patch", "40"], /error: invalid --patch: "40"/],
    ["scripts/backdoor.ts", ["--fraction", "1.5"], /error: invalid --fraction: "1.5"/],
    [
      "scripts/noise_maps.ts",
      ["--checkpoint", "/nonexistent/m.safetensors"],
      /error: checkpoint: no sidecar \/nonexistent\/m.json/,
    ],
    [
      "scripts/train.ts",
      ["--model", "vgg"],
      /error: invalid --model: "vgg" \(expected smaller, larger/,
    ],
    ["scripts/train.ts", ["--epochs", "0"], /error: invalid --epochs: "0"/],
    [
      "scripts/noise_maps.ts",
      ["--sampels", "10"],
      /error: unknown flag --sampels \(did you mean --samples\?\); --help lists them/,
    ],
    ["scripts/gan.ts", ["--epoch", "1"], /error: unknown flag --epoch \(did you mean --epochs\?\)/],
    ["scripts/tsne.ts", ["--colour=red"], /error: unknown flag --colour; --help lists them/],
    [
      "scripts/fgsm.ts",
      ["--checkpoint", "/nonexistent/a.safetensors"],
      /error: --checkpoint \/nonexistent\/a.safetensors: no such file/,
    ],
    ["scripts/fgsm.ts", ["--eps", "0.1,x"], /error: invalid --eps: "x"/],
  ];
  for (const [script, args, pattern] of cases) {
    const { code, err } = await run(script, args);
    assert.equal(code, 1, `${args.join(" ")}: exit ${code}: ${err}`);
    assert.match(err, pattern);
  }
});
