/**
 * A training run's history on disk: `history.npz` (one array per column) and its figure as SVG
 * and PNG, rewritten after every epoch.
 * @module
 */
import type { EpochRecord } from "../checkpoint.ts";
import { writeFileAtomic } from "../files.ts";
import { encodeNpz } from "../npy.ts";
import { Plot, plotSvg, svgToPng } from "../plots.ts";

async function drawHistory(history: EpochRecord[], base: string): Promise<void> {
  const rows = history.flatMap((h) => [
    { epoch: h.epoch, split: "train", metric: "loss", value: h.trainLoss },
    { epoch: h.epoch, split: "validation", metric: "loss", value: h.valLoss },
    { epoch: h.epoch, split: "train", metric: "accuracy", value: h.trainAccuracy },
    { epoch: h.epoch, split: "validation", metric: "accuracy", value: h.valAccuracy },
  ]);
  const svg = plotSvg({
    title: "Training history",
    width: 720,
    height: 300,
    fy: { label: null },
    y: { grid: true, label: null },
    x: { label: "epoch", tickFormat: "d" },
    marginRight: 80,
    marks: [
      Plot.lineY(rows, {
        x: "epoch",
        y: "value",
        stroke: "split",
        z: "split",
        fy: "metric",
        marker: "circle",
      }),
      Plot.text(
        rows,
        Plot.selectLast({
          x: "epoch",
          y: "value",
          z: "split",
          fy: "metric",
          text: "split",
          fill: "split",
          dx: 6,
          textAnchor: "start",
        }),
      ),
    ],
  });
  await writeFileAtomic(`${base}.svg`, svg);
  await writeFileAtomic(`${base}.png`, await svgToPng(svg));
}

/** Writes `<base>.npz`, `<base>.svg` and `<base>.png`. */
export async function writeHistory(history: EpochRecord[], base: string): Promise<void> {
  const col = (k: keyof EpochRecord) => ({
    data: Float64Array.from(history, (h) => h[k]),
    shape: [history.length],
  });
  await writeFileAtomic(
    `${base}.npz`,
    encodeNpz({
      epoch: col("epoch"),
      train_loss: col("trainLoss"),
      train_accuracy: col("trainAccuracy"),
      val_loss: col("valLoss"),
      val_accuracy: col("valAccuracy"),
      lr: col("lr"),
    }),
  );
  await drawHistory(history, base);
}
