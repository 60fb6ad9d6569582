import assert from "node:assert/strict";
import { loadDataset } from "../data/datasets.ts";
import { NativeError } from "../ffi/errors.ts";
import { loadCheckpoint, readSidecar } from "../lib/checkpoint.ts";
import { importPytorch } from "../lib/import.ts";
import { readNpy } from "../lib/npy.ts";
import { tally } from "../lib/noise_maps/context.ts";
import { encodeSafetensors, readSafetensors } from "../lib/safetensors.ts";

const FIXTURES = "tests/fixtures/pytorch";

for (const name of ["smaller", "tiny_resnet", "lstm"]) {
  Deno.test(`import: PyTorch's ${name} gives PyTorch's logits within 1e-4`, async () => {
    const dir = await Deno.makeTempDir();
    const { checkpoint, accuracy } = await importPytorch({
      spec: `${FIXTURES}/${name}.spec.json`,
      weights: `${FIXTURES}/${name}.safetensors`,
      out: `${dir}/${name}.safetensors`,
    });
    assert.ok(accuracy >= 0 && accuracy <= 1);
    const sidecar = await readSidecar(checkpoint);
    assert.deepEqual(sidecar.normalisation, { mean: 0.1307, std: 0.3081 });
    assert.deepEqual(sidecar.classNames, Array.from({ length: 10 }, (_, d) => String(d)));
    const want = await readNpy(`${FIXTURES}/${name}.logits.npy`);
    const test = await loadDataset("mnist", "test", { limit: want.shape[0] });
    const { model } = await loadCheckpoint(checkpoint);
    using _ = model;
    const got = await model.predict(test.images);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want.data[i]));
    assert.ok(worst < 1e-4, `largest logit difference ${worst}`);
  });
}

Deno.test("import: every missing, unexpected and wrong-shape tensor is named in one error", async () => {
  const dir = await Deno.makeTempDir();
  const tensors = await readSafetensors(`${FIXTURES}/tiny_resnet.safetensors`, {
    skipOtherDtypes: true,
  });
  delete tensors["fc.bias"];
  tensors["extra.weight"] = tensors["bn1.weight"];
  tensors["conv1.weight"] = { ...tensors["conv1.weight"], shape: [8, 2, 3, 3] };
  const broken = `${dir}/broken.safetensors`;
  await Deno.writeFile(broken, encodeSafetensors(tensors));
  await assert.rejects(
    importPytorch({
      spec: `${FIXTURES}/tiny_resnet.spec.json`,
      weights: broken,
      meta: { mean: 0.1307, std: 0.3081 },
      out: `${dir}/out.safetensors`,
    }),
    (e: unknown) =>
      e instanceof NativeError && /missing \(1\): fc\.bias/.test(e.message) &&
      /wrong shape \(1\): conv1\.weight is \[8, 2, 3, 3\], the spec needs \[16, 1, 3, 3\]/.test(
        e.message,
      ) && /unexpected \(1\): extra\.weight/.test(e.message),
  );
  // No normalisation anywhere: the error says which flags or file give it.
  await assert.rejects(
    importPytorch({ spec: `${FIXTURES}/tiny_resnet.spec.json`, weights: broken, out: `${dir}/o` }),
    /--mean and --std/,
  );
  // A spec whose input is not what the weights were trained on fails on shapes, by name.
  const spec = JSON.parse(await Deno.readTextFile(`${FIXTURES}/tiny_resnet.spec.json`));
  spec.layers[0].out = 8;
  await assert.rejects(
    importPytorch({
      spec,
      weights: `${FIXTURES}/tiny_resnet.safetensors`,
      out: `${dir}/o.safetensors`,
    }),
    /wrong shape.*conv1\.weight/,
  );
});

Deno.test("import: class counts on 100,000 noise images match PyTorch's on the same noise", async () => {
  const dir = await Deno.makeTempDir();
  for (const name of ["smaller", "tiny_resnet", "lstm"]) {
    const want = JSON.parse(await Deno.readTextFile(`${FIXTURES}/${name}.noise-counts.json`));
    const { checkpoint } = await importPytorch({
      spec: `${FIXTURES}/${name}.spec.json`,
      weights: `${FIXTURES}/${name}.safetensors`,
      out: `${dir}/${name}.safetensors`,
    });
    const { model } = await loadCheckpoint(checkpoint);
    using _ = model;
    // The noise itself: bench/export_fixtures.py reimplements wna's Philox stream in numpy.
    const first = await model.analyse(null, {
      samples: 2,
      staSamples: 2,
      batchSize: 2,
      noise: "uniform",
      seed: want.seed,
      keepStimuli: 2,
      layers: [],
    });
    const pixels = first.stimuli!.data;
    for (const [s, row] of (want.firstPixels as number[][]).entries()) {
      assert.deepEqual(Array.from(pixels.subarray(s * 784, s * 784 + 8)), row.map(Math.fround));
    }
    const predicted = await model.classify(null, {
      samples: want.samples,
      seed: want.seed,
      noise: "uniform",
      batchSize: 1000,
    });
    const counts = tally(predicted, 10);
    // Exact agreement is expected; a borderline noise image or two may flip on float rounding.
    const off = counts.reduce((a, c, k) => a + Math.abs(c - want.counts[k]), 0);
    assert.ok(off <= 10, `${name}: wna ${counts} against PyTorch ${want.counts}`);
    console.log(`${name}: wna ${counts}, PyTorch ${want.counts}`);
  }
});
