/**
 * The poison: a small white square one pixel in from the bottom-right corner, stamped on a
 * seeded share of the training images (never the target's own), which are relabelled to the
 * target.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import { SeededRandom } from "../random.ts";

/** Pixel indices of the trigger: a `size` square one pixel in from the bottom-right corner. */
export function triggerPixels(size: number): number[] {
  if (!Number.isInteger(size) || size < 1 || size > 26) {
    throw new RangeError(`invalid patch: ${size} (expected a whole number of pixels in 1..26)`);
  }
  const start = 27 - size;
  return Array.from(
    { length: size * size },
    (_, i) => (start + Math.floor(i / size)) * 28 + start + (i % size),
  );
}

/** A copy of `ds` with the trigger stamped on `indices` (relabelled to `target` when given). */
export function stampTrigger(
  ds: Dataset,
  indices: number[],
  pixels: number[],
  target?: number,
): Dataset {
  const images = ds.images.slice();
  const labels = ds.labels.slice();
  for (const i of indices) {
    for (const p of pixels) images[i * 784 + p] = 1;
    if (target !== undefined) labels[i] = target;
  }
  return { ...ds, images, labels };
}

/** Stamps the trigger on a seeded `fraction` of `train`'s non-target images, relabelled. */
export function poisonTraining(
  train: Dataset,
  target: number,
  fraction: number,
  pixels: number[],
  seed: number,
): { poisonedTrain: Dataset; chosen: number[] } {
  const rng = new SeededRandom(seed, 0xbd);
  const candidates = Array.from(train.labels.keys()).filter((i) => train.labels[i] !== target);
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
  }
  const chosen = candidates.slice(0, Math.round(fraction * train.count));
  const poisonedTrain = stampTrigger(train, chosen, pixels, target);
  return { poisonedTrain, chosen };
}
