/**
 * Data augmentation, run natively with torchvision's semantics (`native/src/augment.rs`).
 * @module
 */
import { callAsync, optionsJson } from "./native.ts";

/** One transform; ranges are `[low, high]`, angles in degrees. */
export type Transform =
  /** ColorJitter(brightness, contrast), the two in a random order. */
  | { kind: "color_jitter"; brightness: [number, number]; contrast: [number, number] }
  /** RandomAffine: rotation in ±degrees, translate as fractions, shear `[x0, x1, y0, y1]`. */
  | {
    kind: "affine";
    degrees: number;
    translate?: [number, number];
    scale?: [number, number];
    shear?: [number, number, number, number];
  }
  /** RandomPerspective(distortion_scale, p). */
  | { kind: "perspective"; p: number; distortion: number }
  /** RandomErasing(p, scale, ratio, value). */
  | { kind: "erasing"; p: number; scale: [number, number]; ratio: [number, number]; value?: number }
  /** RandomVerticalFlip(p). */
  | { kind: "vertical_flip"; p: number };

/**
 * Applies `transforms` in order to every image, each image with its own seeded draws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { augmentImages } from "./augment.ts";
 * const images = new Float32Array(2 * 784).fill(0.5);
 * const out = await augmentImages(images, [{ kind: "vertical_flip", p: 1 }], { seed: 1 });
 * assert.deepEqual(out, images); // flipping a flat grey image changes nothing
 * ```
 * @param images n x 784 pixels in [0, 1]
 * @param transforms applied in order
 * @param options `seed` and `epoch` key the random draws (default 0)
 * @returns the augmented images, a new array
 */
export async function augmentImages(
  images: Float32Array,
  transforms: Transform[],
  { seed = 0, epoch = 0 }: { seed?: number; epoch?: number } = {},
): Promise<Float32Array> {
  const options = optionsJson("augment", { transforms, seed, epoch });
  const out = new Float32Array(images.length);
  await callAsync(
    "wna_augment",
    images,
    BigInt(images.length),
    options,
    BigInt(options.length),
    out,
    BigInt(out.length),
  );
  return out;
}
