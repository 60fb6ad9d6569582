/**
 * The latent vectors a GAN run draws in TypeScript (100 values each, not pixels): z ~ N(0, 1)
 * from a seeded stream per use, so that each figure's latents stay fixed across epochs and runs.
 * @module
 */
import { SeededRandom } from "../random.ts";
import { LATENT_DIM } from "./specs.ts";

/** n latents from N(0, 1), a seeded stream per use. */
export function latents(n: number, seed: number, stream: number): Float32Array {
  const r = new SeededRandom(seed, stream);
  return Float32Array.from({ length: n * LATENT_DIM }, () => r.normal());
}

/** Streams of the latents drawn in TypeScript, so that each use has its own. */
export const STREAMS = { quality: 101, grid: 102, interpolation: 200, tsne: 103 } as const;
