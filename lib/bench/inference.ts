/**
 * The bench's inference rows: prediction and white noise for `smaller` and `larger`, and the
 * imported (ONNX) `smaller` beside the built-in one.
 * @module
 */
import { convertOnnx } from "../../ffi/onnx.ts";
import { Model } from "../../ffi/model.ts";
import { type Bench, IMPORTED_SMALLER, noiseRow, report, timed } from "./context.ts";

/** Inference and white noise of `smaller` and `larger`, then the imported `smaller`. */
export async function inferenceRows(b: Bench): Promise<void> {
  for (const name of ["smaller", "larger"] as const) {
    using m = Model.create(name, { seed: 0, mean: b.mean, std: b.std });
    // 2. Inference on test images, 1,000 per batch.
    const images = b.test.images.subarray(0, b.sizes.inference * 784);
    await m.predict(images.subarray(0, 1000 * 784));
    const s = await timed(() => m.predict(images));
    await report(b, "inference", name, b.sizes.inference / s, {
      task: "inference",
      images: b.sizes.inference,
      batchSize: 1000,
    });
    // 3. White-noise analysis: noise, forward, softmax, per-class sums (three variants).
    await noiseRow(b, name, m, b.sizes.noise[name]);
  }
  // 3'. smaller as `torch.onnx.export` writes it (the peer's own Smaller, batch norms folded
  // into the conv biases), imported from ONNX: white noise beside the built-in smaller, timed
  // alternately, best of two each. The peer runs its Smaller on the same noise.
  {
    const weights = `${b.cache}/imported-smaller.safetensors`;
    const { spec } = convertOnnx(IMPORTED_SMALLER, weights, "imported-smaller");
    using imported = Model.create(spec, { seed: 0, mean: b.mean, std: b.std });
    imported.loadWeights(weights);
    using builtin = Model.create("smaller", { seed: 0, mean: b.mean, std: b.std });
    const samples = b.sizes.noise.smaller;
    const best = { imported: 0, builtin: 0 };
    for (let round = 0; round < 2; round++) {
      for (const [key, m] of [["imported", imported], ["builtin", builtin]] as const) {
        const s = await timed(() =>
          m.analyse(null, { samples, batchSize: 1000, staSamples: 0, layers: [] })
        );
        best[key] = Math.max(best[key], samples / s);
      }
    }
    await report(b, "noise", "smaller (onnx)", best.imported, {
      task: "noise",
      model: "smaller",
      samples,
      batchSize: 1000,
    });
    b.rows[b.rows.length - 1].vsBuiltin = best.imported / best.builtin;
    console.log(
      `imported smaller ${best.imported.toFixed(0)} images/s, built-in ${
        best.builtin.toFixed(0)
      } images/s: ${(best.imported / best.builtin).toFixed(2)}x the built-in`,
    );
  }
}
