/**
 * A 2-D embedding (t-SNE, PCA) as a scatter, one colour per class, with a legend. The axes of
 * such a map carry no units, so none are drawn; the plot is square, so distances read alike
 * in both directions.
 * @module
 */
import type { Figure } from "./figures.ts";
import { Plot, plotSvg } from "./plots.ts";

/** What {@linkcode embeddingFigure} draws. */
export interface EmbeddingFigureOptions {
  name: string;
  title: string;
  caption: string;
  /** n x 2 coordinates. */
  embedding: Float32Array;
  /** One class index per point; none: one colour. */
  labels?: ArrayLike<number>;
  /** Names of the class indices, for the legend. */
  classNames?: readonly string[];
  /** Side of the square plot in pixels. @default 560 */
  size?: number;
}

/**
 * The scatter of an embedding.
 * @param o coordinates, labels and captions
 * @returns the figure (SVG), ready for `writeFigure` and a report
 */
export function embeddingFigure(o: EmbeddingFigureOptions): Figure {
  const n = o.embedding.length / 2;
  const size = o.size ?? 560;
  const name = (c: number) => o.classNames?.[c] ?? String(c);
  const points = Array.from({ length: n }, (_, i) => ({
    x: o.embedding[2 * i],
    y: o.embedding[2 * i + 1],
    label: o.labels ? name(o.labels[i]) : "",
  }));
  const domain = o.labels
    ? [...new Set(Array.from(o.labels))].sort((a, b) => a - b).map(name)
    : undefined;
  // Dots shrink as the map fills, so 10,000 points still show their clusters' shapes.
  const r = n > 5000 ? 1 : n > 1000 ? 1.6 : 2.4;
  return {
    name: o.name,
    title: o.title,
    caption: o.caption,
    svg: plotSvg({
      width: size,
      height: size,
      inset: 6,
      x: { axis: null },
      y: { axis: null },
      color: domain
        ? { type: "categorical", domain, scheme: "tableau10", legend: true }
        : undefined,
      marks: [
        Plot.frame({ stroke: "#ddd" }),
        Plot.dot(points, {
          x: "x",
          y: "y",
          r,
          fill: domain ? "label" : "#4269d0",
          fillOpacity: 0.75,
        }),
      ],
    }),
  };
}
