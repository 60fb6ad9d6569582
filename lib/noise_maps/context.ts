/**
 * What every section of a noise-maps run shares: the model, the test images, the noise stream,
 * and writers for arrays and figures.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import type { Model, ModelInfo, NdArray, StreamOptions } from "../../ffi/model.ts";
import type { Figure, MapGrid, Table } from "../figures.ts";
import { writeFigure } from "../figures.ts";
import { writeNpy } from "../npy.ts";

/** One heading of the report with its figures and tables. */
export interface Section {
  heading: string;
  /** HTML paragraph under the heading. */
  intro?: string;
  items: (Figure | MapGrid | Table)[];
}

/** The shared state of a run. */
export interface RunContext {
  model: Model;
  info: ModelInfo;
  names: string[];
  classes: number;
  test: Dataset;
  /** The first `evalImages` test images and their labels. */
  evalImages: Float32Array;
  evalLabels: Uint8Array;
  /** The analysis noise (after calibration), with seed and batch size. */
  stream: StreamOptions;
  outDir: string;
  log: (line: string) => void;
}

/** Writes `<outDir>/<name>.npy`. */
export async function saveNpy(ctx: RunContext, name: string, a: NdArray): Promise<void> {
  await writeNpy(`${ctx.outDir}/${name}.npy`, a);
}

/** Writes a figure's SVG and PNG and returns it for the report. */
export async function saveFigure<T extends Figure | MapGrid>(ctx: RunContext, f: T): Promise<T> {
  await writeFigure(ctx.outDir, f);
  return f;
}

/** Samples per class of a list of predicted classes. */
export function tally(predictions: ArrayLike<number>, classes: number): number[] {
  const counts = new Array(classes).fill(0);
  for (let i = 0; i < predictions.length; i++) counts[predictions[i]]++;
  return counts;
}

/** Shannon entropy (nats) of a histogram. */
export function entropy(counts: number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.reduce((h, c) => (c > 0 ? h - (c / n) * Math.log(c / n) : h), 0);
}

/** A share as a percentage with one decimal. */
export const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
