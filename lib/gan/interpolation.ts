/**
 * Latent interpolation: G(a z1 + (1 - a) z2) for a = 0, 0.1, ..., 1 over seeded latent pairs,
 * each image classified by the judge.
 * @module
 */
import { generate } from "../../ffi/gan.ts";
import type { Model } from "../../ffi/model.ts";
import { latents, STREAMS } from "./latents.ts";
import { measureQuality } from "./quality.ts";
import { GAN_DEFAULTS, LATENT_DIM } from "./specs.ts";

/** Interpolation strips between seeded latent pairs, classified. */
export async function interpolate(g: Model, classifier: Model, seed: number, pairCount?: number) {
  const steps = GAN_DEFAULTS.interpolationSteps;
  const pairs = Array.from({ length: pairCount ?? GAN_DEFAULTS.interpolationPairs }, (_, p) => ({
    z1: latents(1, seed, STREAMS.interpolation + 2 * p),
    z2: latents(1, seed, STREAMS.interpolation + 2 * p + 1),
  }));
  const z = new Float32Array(pairs.length * steps * LATENT_DIM);
  pairs.forEach(({ z1, z2 }, p) => {
    for (let s = 0; s < steps; s++) {
      const a = s / (steps - 1);
      for (let j = 0; j < LATENT_DIM; j++) {
        z[(p * steps + s) * LATENT_DIM + j] = a * z1[j] + (1 - a) * z2[j];
      }
    }
  });
  const images = await generate(g, z);
  const q = await measureQuality(classifier, images);
  let changing = 0;
  for (let p = 0; p < pairs.length; p++) {
    if (q.predictions[p * steps] !== q.predictions[p * steps + steps - 1]) changing++;
  }
  return { pairs, images, predictions: q.predictions, confidence: q.confidence, changing };
}
