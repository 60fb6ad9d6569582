/**
 * The bench's gradient rows: an epoch of the MLP GAN, integrated gradients against Captum,
 * and FGSM.
 * @module
 */
import { attribute } from "../../ffi/attribution.ts";
import { ganTrainEpoch } from "../../ffi/gan.ts";
import { Model } from "../../ffi/model.ts";
import { GAN_SPECS } from "../gan/specs.ts";
import { type Bench, report, timed } from "./context.ts";

/** The GAN epoch, integrated gradients and FGSM rows. */
export async function gradientRows(b: Bench): Promise<void> {
  // 3b. One epoch of the MLP GAN (deno task gan's default): D on real and fake, then G.
  {
    using g = Model.create(GAN_SPECS.mlp.generator, { seed: 0, mean: 0.5, std: 0.5 });
    using d = Model.create(GAN_SPECS.mlp.discriminator, { seed: 1, mean: 0.5, std: 0.5 });
    const s = await timed(() => ganTrainEpoch(g, d, b.train.images, { epoch: 0 }));
    await report(b, "gan epoch", "mlp", b.train.count / s, {
      task: "gan",
      generator: GAN_SPECS.mlp.generator,
      discriminator: GAN_SPECS.mlp.discriminator,
      images: `${b.cache}/images.npy`,
      batchSize: 128,
    });
  }
  // 3c. Integrated gradients of the label logit, 50 Gauss-Legendre steps, black baseline,
  // 500 rows per pass: wna's attribute() against Captum's IntegratedGradients.
  {
    using m = Model.create("smaller", { seed: 0, mean: b.mean, std: b.std });
    const count = b.quick ? 200 : 1000;
    const images = b.train.images.subarray(0, count * 784);
    const targets = Array.from(b.train.labels.subarray(0, count), (unit) => ({
      layer: "logits",
      unit,
    }));
    const options = { steps: 50, internalBatch: 500 };
    const s = await timed(() =>
      attribute(m, images, { method: "integrated_gradients", targets, ...options })
    );
    await report(b, "integrated gradients", "smaller", count / s, {
      task: "integrated_gradients",
      images: `${b.cache}/images.npy`,
      labels: `${b.cache}/labels.npy`,
      count,
      ...options,
    });
  }
  // 4. FGSM: forward, backward to the input, sign step, clip.
  {
    using m = Model.create("smaller", { seed: 0, mean: b.mean, std: b.std });
    const n = b.sizes.fgsm;
    const s = await timed(() =>
      m.fgsm(b.test.images.subarray(0, n * 784), b.test.labels.subarray(0, n), 0.1)
    );
    await report(b, "fgsm", "smaller", n / s, {
      task: "fgsm",
      images: n,
      batchSize: 500,
      eps: 0.1,
    });
  }
}
