/**
 * The GAN's digit grids: samples, per-epoch grids and interpolation strips.
 * @module
 */
import type { MapGrid } from "../map_grid.ts";

/** A grid of greyscale digits with a title each. */
export function digitGrid(
  name: string,
  title: string,
  caption: string,
  images: Float32Array,
  titles?: string[],
  columns = 10,
): MapGrid {
  return {
    kind: "maps",
    name,
    title,
    caption,
    maps: images,
    count: images.length / 784,
    height: 28,
    width: 28,
    titles,
    columns,
    scale: 2,
    grey: true,
    keepRows: true,
  };
}
