/**
 * The GAN run's arrays: the kept generator's samples and their latents, the interpolation strips
 * and the t-SNE embeddings.
 * @module
 */
import { encodeNpz, writeNpy } from "../npy.ts";
import type { interpolate } from "./interpolation.ts";
import { GAN_DEFAULTS, LATENT_DIM } from "./specs.ts";
import type { TsneMap } from "./tsne_maps.ts";

/** The interpolation strips, as `interpolate` returns them. */
export type Interpolation = Awaited<ReturnType<typeof interpolate>>;

/** Writes `samples.npy`, `latents.npy`, `interpolation.npz` and `tsne-*.npy` under `outDir`. */
export async function writeGanArrays(
  outDir: string,
  qualitySamples: number,
  bestImages: Float32Array,
  qualityZ: Float32Array,
  interpolation: Interpolation,
  maps: TsneMap[],
): Promise<void> {
  // Arrays.
  const keep = Math.min(1000, qualitySamples);
  await writeNpy(`${outDir}/samples.npy`, {
    data: bestImages.subarray(0, keep * 784),
    shape: [keep, 28, 28],
  });
  await writeNpy(`${outDir}/latents.npy`, {
    data: qualityZ.subarray(0, keep * LATENT_DIM),
    shape: [keep, LATENT_DIM],
  });
  await Deno.writeFile(
    `${outDir}/interpolation.npz`,
    encodeNpz({
      images: {
        data: interpolation.images,
        shape: [interpolation.pairs.length, GAN_DEFAULTS.interpolationSteps, 28, 28],
      },
      z1: {
        data: Float32Array.from(interpolation.pairs.flatMap((p) => [...p.z1])),
        shape: [interpolation.pairs.length, LATENT_DIM],
      },
      z2: {
        data: Float32Array.from(interpolation.pairs.flatMap((p) => [...p.z2])),
        shape: [interpolation.pairs.length, LATENT_DIM],
      },
      predictions: { data: interpolation.predictions, shape: [interpolation.predictions.length] },
      confidence: { data: interpolation.confidence, shape: [interpolation.confidence.length] },
    }),
  );
  for (const m of maps) {
    await writeNpy(`${outDir}/tsne-${m.name}.npy`, { data: m.embedding, shape: [m.n, 2] });
  }
}
