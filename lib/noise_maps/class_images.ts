/**
 * Classification images (mean noise per predicted class), their feedback into the network, and
 * the template classifier that uses them to classify real test images.
 * @module
 */
import { type AnalysisResult, templateScores } from "../../ffi/model.ts";
import type { Figure, MapGrid } from "../figures.ts";
import { argmaxRows, perClassAccuracy } from "../metrics.ts";
import { Plot, plotSvg } from "../plots.ts";
import { pct, type RunContext, saveFigure, saveNpy, type Section } from "./context.ts";

/** The numbers of the section. */
export interface ClassImageNumbers {
  feedback: { predicted: number; confidence: number }[];
  /** Accuracy of the argmax classification images as templates. */
  templateAccuracy: number;
  templatePerClassAccuracy: number[];
  /** Accuracy of the confidence-weighted images as templates. */
  weightedTemplateAccuracy: number;
}

function softmaxTop(row: Float32Array): { predicted: number; confidence: number } {
  const m = Math.max(...row);
  const e = Array.from(row, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  const p = e.indexOf(Math.max(...e));
  return { predicted: p, confidence: e[p] / s };
}

/** Computes feedback and template accuracy, then draws the maps and the confusion matrix. */
export async function classImagesSection(
  ctx: RunContext,
  r: AnalysisResult,
  threshold: number,
  noiseLabel: string,
): Promise<{ numbers: ClassImageNumbers; section: Section }> {
  const { model, names, classes: C, test } = ctx;
  for (
    const [name, a] of [
      ["counts", r.counts],
      ["class-images", r.classImages],
      ["weighted-images", r.weightedImages],
      ["weight-sums", r.weightSums],
      ["threshold-images", r.thresholdImages],
      ["threshold-counts", r.thresholdCounts],
      ["stimulus-mean", r.stimulusMean],
    ] as const
  ) await saveNpy(ctx, name, a);

  // Compute: feedback of each map, and both template classifiers on the whole test set.
  const fbLogits = await model.predict(r.classImages.data);
  const feedback = names.map((_, c) => softmaxTop(fbLogits.subarray(c * C, (c + 1) * C)));
  // Test images are compared by how they depart from the mean stimulus, as the maps are.
  const centre = r.stimulusMean.data;
  const tPred = argmaxRows(await templateScores(r.classImages.data, test.images, centre), C);
  const template = perClassAccuracy(tPred, test.labels, C);
  const weighted = perClassAccuracy(
    argmaxRows(await templateScores(r.weightedImages.data, test.images, centre), C),
    test.labels,
    C,
  );
  const confusion = Array.from({ length: C }, () => new Array(C).fill(0));
  test.labels.forEach((l, i) => confusion[l][tPred[i]]++);

  // Draw.
  const maps = (
    name: string,
    title: string,
    caption: string,
    data: Float32Array,
    titles: string[],
  ) =>
    saveFigure<MapGrid>(ctx, {
      kind: "maps",
      name,
      title,
      caption,
      maps: data,
      count: C,
      height: 28,
      width: 28,
      titles,
      scale: 4,
    });
  const items: (Figure | MapGrid)[] = [];
  if (r.stimuli) {
    items.push(
      await saveFigure<MapGrid>(ctx, {
        kind: "maps",
        name: "noise-samples",
        title: `What the network sees: ${noiseLabel} samples`,
        caption: "The first noise images of the stream, in pixel values (black 0, white 1).",
        maps: r.stimuli.data,
        count: r.stimuli.shape[0],
        height: 28,
        width: 28,
        grey: true,
        scale: 2,
      }),
    );
  }
  items.push(
    await maps(
      "classification-images",
      "Classification images (mean noise per predicted class) and their feedback",
      "Each map is the average of the noise images the network assigned to that class, shown " +
        "relative to its own mean. Under each: the class, its share of the noise, and what the " +
        "network predicts when the map itself is fed back, with its softmax.",
      r.classImages.data,
      names.map((n, c) =>
        r.counts.data[c] === 0
          ? `${n}: no samples`
          : `${n}: ${pct(r.counts.data[c] / r.samples)}, fed back: ${
            names[feedback[c].predicted]
          } (${(100 * feedback[c].confidence).toFixed(0)}%)`
      ),
    ),
    await maps(
      "weighted-images",
      "Confidence-weighted classification images",
      "Every noise sample contributes to every class in proportion to its softmax probability.",
      r.weightedImages.data,
      names,
    ),
    await maps(
      "threshold-images",
      `Classification images of confident samples (top softmax > ${threshold})`,
      `Only the noise samples the network was more than ${
        100 * threshold
      }% sure about; their count under each map. A class with no such sample stays blank.`,
      r.thresholdImages.data,
      names.map((n, c) => `${n} (${r.thresholdCounts.data[c].toLocaleString("en")})`),
    ),
  );
  const cells = confusion.flatMap((row, t) => row.map((v, p) => ({ t: names[t], p: names[p], v })));
  const peak = Math.max(...cells.map((c) => c.v));
  items.push(
    await saveFigure(ctx, {
      name: "template-confusion",
      title: `Template classifier: ${pct(template.accuracy)} on the test set (chance ${
        (100 / C).toFixed(0)
      }%)`,
      caption:
        `${test.count.toLocaleString("en")} test images, minus the mean noise image, classified ` +
        `by cosine similarity with the classification images minus their mean over classes. Rows: true class; columns: predicted. A ` +
        `strong diagonal means the noise maps alone carry the class shapes. With the ` +
        `confidence-weighted maps as templates instead: ${pct(weighted.accuracy)}.`,
      svg: plotSvg({
        width: 560,
        height: 500,
        marginLeft: 90,
        marginBottom: 80,
        padding: 0,
        x: { label: "predicted", domain: names, tickRotate: -40 },
        y: { label: "true", domain: names },
        color: { scheme: "blues", domain: [0, peak] },
        marks: [
          Plot.cell(cells, { x: "p", y: "t", fill: "v" }),
          // Light text on the dark half of the scale, dark on the light half.
          Plot.text(cells, {
            x: "p",
            y: "t",
            text: "v",
            fontSize: 9,
            fill: (d: { v: number }) => (d.v > peak / 2 ? "white" : "black"),
          }),
        ],
      }),
    }),
  );
  return {
    numbers: {
      feedback,
      templateAccuracy: template.accuracy,
      templatePerClassAccuracy: template.perClass,
      weightedTemplateAccuracy: weighted.accuracy,
    },
    section: { heading: "Classification images", items },
  };
}
