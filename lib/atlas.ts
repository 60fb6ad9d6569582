/**
 * A small activation atlas (Carter et al., "Activation Atlas", Distill 2019), sized for MNIST:
 * the penultimate-layer activations of test images are mapped to 2-D with t-SNE, the plane is
 * cut into a grid, each cell's activation vectors are averaged, and each average is rendered
 * by activation maximisation of that direction. Cells are framed in the colour of their
 * majority label.
 * @module
 */
import { maximiseActivation } from "../ffi/attribution.ts";
import type { Model } from "../ffi/model.ts";
import { tsne, type TsneResult } from "../ffi/tsne.ts";
import { embeddingFigure } from "./embedding_figure.ts";
import type { Figure } from "./figures.ts";
import { tileDataUrl } from "./map_grid.ts";
import { escapeXml, legendRow } from "./plots.ts";

/** The defaults of an atlas, defined once. */
export const ATLAS_DEFAULTS = {
  /** Cells per side of the whole-test-set atlas. */
  grid: 12,
  /** Cells per side of a two-class atlas. */
  pairGrid: 8,
  /** Fewer points than this in a cell: left empty (its average is noise). */
  minPoints: 5,
} as const;

/** Observable Plot's `tableau10`, so the atlas frames match the scatter's dots. */
const TABLEAU10 = [
  "#4e79a7",
  "#f28e2c",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc949",
  "#af7aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ab",
];

/** One populated cell of the grid. */
export interface AtlasCell {
  row: number;
  column: number;
  /** Test images whose embedding falls in the cell. */
  count: number;
  /** The most common label among them, and its share. */
  label: number;
  purity: number;
}

/** An atlas, its scatter and numbers. */
export interface Atlas {
  layer: string;
  cells: AtlasCell[];
  /** Mean purity over cells, weighted by their counts. */
  purity: number;
  /** Each cell's objective at its optimised image over the best test image's. */
  drivenCells: number;
  tsne: Pick<TsneResult, "seconds" | "trustworthiness" | "klDivergence"> & { n: number };
  figure: Figure;
  scatter: Figure;
  /** `[cells, 28, 28]`. */
  images: Float32Array;
}

/** Options of {@linkcode activationAtlas}. */
export interface AtlasOptions {
  name: string;
  title: string;
  classNames: readonly string[];
  grid?: number;
  minPoints?: number;
  featureSteps?: number;
  seed?: number;
  onProgress?: (stage: string) => ((done: number, total: number) => void) | undefined;
}

/** The layer whose activations the atlas maps: the one that feeds the logits. */
export function penultimateLayer(model: Model): { name: string; channels: number } {
  const layers = model.info().layers;
  const i = layers.findIndex((l) => l.name === "logits");
  const l = layers[Math.max(0, i - 1)];
  return { name: l.name, channels: l.channels };
}

/**
 * Per-image channel means of a layer (the form the atlas objective takes: the mean of a
 * channel over its positions), `n x channels`.
 */
async function channelMeans(model: Model, images: Float32Array, layer: string, channels: number) {
  const n = images.length / 784;
  const a = await model.activations(images, layer);
  const positions = a.length / (n * channels);
  if (positions === 1) return a;
  const out = new Float32Array(n * channels);
  for (let i = 0; i < n * channels; i++) {
    let s = 0;
    for (let p = 0; p < positions; p++) s += a[i * positions + p];
    out[i] = s / positions;
  }
  return out;
}

/**
 * Assigns every point to a `grid x grid` cell over the embedding's 1st to 99th percentile on each
 * axis; points beyond go to the edge cells. t-SNE's parallel sums are not bit-reproducible, and a
 * lone far point stretching a min-max box could crowd every other point into a few cells.
 */
function cellOf(embedding: Float32Array, grid: number): Int32Array {
  const n = embedding.length / 2;
  const lo = [0, 0], hi = [0, 0];
  for (const d of [0, 1]) {
    const axis = Float64Array.from({ length: n }, (_, i) => embedding[2 * i + d]).sort();
    lo[d] = axis[Math.floor(0.01 * (n - 1))];
    hi[d] = axis[Math.ceil(0.99 * (n - 1))];
  }
  const cell = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const [x, y] = [0, 1].map((d) =>
      Math.max(
        0,
        Math.min(
          grid - 1,
          Math.floor((embedding[2 * i + d] - lo[d]) / (hi[d] - lo[d] + 1e-12) * grid),
        ),
      )
    );
    // Row 0 at the top, as the scatter draws larger y higher.
    cell[i] = (grid - 1 - y) * grid + x;
  }
  return cell;
}

/**
 * Builds the atlas of `images` (n x 784) with their `labels`.
 * @param model the classifier
 * @param images test images
 * @param labels their labels
 * @param o names, grid and optimisation settings
 * @returns the atlas figure, the scatter and the numbers
 */
export async function activationAtlas(
  model: Model,
  images: Float32Array,
  labels: ArrayLike<number>,
  o: AtlasOptions,
): Promise<Atlas> {
  const D = ATLAS_DEFAULTS;
  const grid = o.grid ?? D.grid;
  const minPoints = o.minPoints ?? D.minPoints;
  const n = images.length / 784;
  const layer = penultimateLayer(model);
  const acts = await channelMeans(model, images, layer.name, layer.channels);
  const map = await tsne(acts, layer.channels, { seed: o.seed }, o.onProgress?.("t-SNE"));
  const cell = cellOf(map.embedding.data, grid);

  // Average direction, count and label histogram per cell.
  const C = layer.channels;
  const sums = new Float64Array(grid * grid * C);
  const counts = new Int32Array(grid * grid);
  const histogram = new Int32Array(grid * grid * o.classNames.length);
  for (let i = 0; i < n; i++) {
    const k = cell[i];
    counts[k]++;
    histogram[k * o.classNames.length + labels[i]]++;
    for (let c = 0; c < C; c++) sums[k * C + c] += acts[i * C + c];
  }
  const cells: AtlasCell[] = [];
  const directions: number[][] = [];
  for (let k = 0; k < grid * grid; k++) {
    if (counts[k] < minPoints) continue;
    const h = histogram.subarray(k * o.classNames.length, (k + 1) * o.classNames.length);
    const label = h.indexOf(Math.max(...h));
    cells.push({
      row: Math.floor(k / grid),
      column: k % grid,
      count: counts[k],
      label,
      purity: h[label] / counts[k],
    });
    directions.push(Array.from({ length: C }, (_, c) => sums[k * C + c] / counts[k]));
  }
  const fv = await maximiseActivation(
    model,
    {
      targets: directions.map((direction) => ({ layer: layer.name, direction })),
      steps: o.featureSteps,
      seed: o.seed,
    },
    images,
    o.onProgress?.(`activation maximisation, ${cells.length} cells`),
  );
  const drivenCells = cells.filter((_, i) => fv.values.data[i] > fv.referenceBest!.data[i])
    .length;
  const purity = cells.reduce((s, c) => s + c.purity * c.count, 0) /
    Math.max(1, cells.reduce((s, c) => s + c.count, 0));
  const tsneNumbers = {
    n,
    seconds: map.seconds,
    trustworthiness: map.trustworthiness,
    klDivergence: map.klDivergence,
  };
  const scatter = embeddingFigure({
    name: `${o.name}-tsne`,
    title: `t-SNE of the ${layer.name} activations behind the atlas`,
    caption: `${n} test images, coloured by label; trustworthiness ${
      map.trustworthiness.toFixed(3)
    }. The atlas cuts this plane into a ${grid} x ${grid} grid.`,
    embedding: map.embedding.data,
    labels,
    classNames: o.classNames,
    size: 420,
  });
  const figure: Figure = {
    name: o.name,
    title: o.title,
    caption: `Each cell of a ${grid} x ${grid} grid over the t-SNE plane with at least ` +
      `${minPoints} test images shows the 28x28 image that maximises their average ` +
      `${layer.name} activation vector (its dot product with the layer's channel means). ` +
      `Frames: the cell's majority label (hover for its share). Purity ${
        (100 * purity).toFixed(1)
      }%; ${drivenCells} of ${cells.length} cells' images drive their direction past the ` +
      "best test image.",
    svg: atlasSvg(cells, fv.images.data, grid, o.classNames),
  };
  return {
    layer: layer.name,
    cells,
    purity,
    drivenCells,
    tsne: tsneNumbers,
    figure,
    scatter,
    images: fv.images.data,
  };
}

/** The grid as SVG: each cell's image at its place, framed in its label's colour. */
function atlasSvg(
  cells: AtlasCell[],
  images: Float32Array,
  grid: number,
  names: readonly string[],
): string {
  const tile = 56, gap = 4;
  const side = grid * (tile + gap) + gap;
  const present = [...new Set(cells.map((c) => c.label))].sort((a, b) => a - b);
  const key = legendRow(present.map((l) => ({ colour: TABLEAU10[l % 10], label: names[l] })));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${side}" height="${side + key.height}" ` +
    `viewBox="0 0 ${side} ${side + key.height}" font-family="DejaVu Sans, sans-serif" ` +
    `font-size="11"><rect width="100%" height="100%" fill="white"/>`,
    key.markup,
  ];
  cells.forEach((c, i) => {
    const href = tileDataUrl(images.subarray(i * 784, (i + 1) * 784), 28, 28, true);
    const px = gap + c.column * (tile + gap), py = key.height + gap + c.row * (tile + gap);
    parts.push(
      `<g><title>${escapeXml(names[c.label])}: ${
        (100 * c.purity).toFixed(0)
      }% of ${c.count}</title>` +
        `<image x="${px}" y="${py}" width="${tile}" height="${tile}" ` +
        `style="image-rendering:pixelated" href="${href}"/>` +
        `<rect x="${px - 1}" y="${py - 1}" width="${tile + 2}" height="${tile + 2}" ` +
        `fill="none" stroke="${TABLEAU10[c.label % 10]}" stroke-width="3"/></g>`,
    );
  });
  parts.push("</svg>");
  return parts.join("");
}
