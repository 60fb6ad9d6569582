/**
 * `deno task visualise`: what a trained net has learned, by the methods researchers set beside
 * white-noise analysis: attributions of test images (saliency, gradient x input, integrated
 * gradients, SmoothGrad) and activation maximisation of every class logit and conv channel,
 * with the class images compared to the white-noise classification images of the same net.
 * The run is made of sections (`visualise/`).
 * @module
 */
import { classNames, type DatasetName, loadDataset } from "../data/datasets.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { writeReport } from "./figures.ts";
import { writeJsonAtomic } from "./files.ts";
import { attributionsSection, completenessSection, onePerClass } from "./visualise/attributions.ts";
import { atlasSection, atlasSummary } from "./visualise/atlases.ts";
import { featureFigures, maximisationSection, noiseComparison } from "./visualise/features.ts";
import {
  VISUALISE_DEFAULTS,
  type VisualiseOptions,
  type VisualiseSummary,
} from "./visualise/options.ts";

export {
  type AtlasSummary,
  VISUALISE_DEFAULTS,
  type VisualiseOptions,
  type VisualiseSummary,
} from "./visualise/options.ts";

/** Runs the whole study and writes `outDir/{report.html,summary.json,*.npy,*.svg,*.png}`. */
export async function runVisualise(options: VisualiseOptions): Promise<VisualiseSummary> {
  const D = VISUALISE_DEFAULTS;
  const seed = options.seed ?? D.seed;
  const progress = options.progress ?? true;
  const log = options.log ?? console.log;
  const outDir = options.outDir;
  await Deno.mkdir(outDir, { recursive: true });
  const { model, sidecar } = await loadCheckpoint(options.checkpoint);
  try {
    const dataset = sidecar.dataset as DatasetName;
    const names = sidecar.classNames ?? classNames(dataset);
    const C = sidecar.classes;
    const test = await loadDataset(dataset, "test", { dataDir: options.dataDir });
    const train = await loadDataset(dataset, "train", {
      dataDir: options.dataDir,
      limit: 10_000,
    });

    // 1. Attributions, and integrated gradients' completeness.
    log("attributions …");
    const picks = onePerClass(test.labels, C);
    const images = new Float32Array(picks.length * 784);
    picks.forEach((p, i) => images.set(test.images.subarray(p * 784, (p + 1) * 784), i * 784));
    const logits = await model.predict(images);
    const predicted = picks.map((_, i) => {
      const row = Array.from(logits.subarray(i * C, (i + 1) * C));
      return row.indexOf(Math.max(...row));
    });
    const attrGrid = await attributionsSection(model, images, predicted, names, { outDir, seed });
    const completenessImages = options.completenessImages ?? D.completenessImages;
    const { igError, m } = await completenessSection(
      model,
      test,
      completenessImages,
      outDir,
      progress,
    );

    // 2. Activation maximisation beside the white-noise classification images.
    const max = await maximisationSection(model, test, C, {
      featureSteps: options.featureSteps,
      seed,
      outDir,
      progress,
    });
    const noise = await noiseComparison(model, train, max.fv, C, {
      noiseSamples: options.noiseSamples,
      seed,
      outDir,
      progress,
    });
    const { pairs, channelGrids, classTable } = await featureFigures(max, noise, names, outDir);
    const { gains } = max;
    const { correlation } = noise;

    // 3. Activation atlases: all test images, then one confusable pair.
    const { atlas, pairAtlas, pairNames } = await atlasSection(model, test, dataset, names, {
      atlasImages: options.atlasImages,
      featureSteps: options.featureSteps,
      seed,
      outDir,
      progress,
      log,
    });

    const summary: VisualiseSummary = {
      checkpoint: options.checkpoint,
      dataset,
      seed,
      igCompletenessMaxError: igError,
      igCompletenessSteps: D.completenessSteps,
      activationGainOverBestTestImage: gains,
      classImageVsNoiseMapCorrelation: correlation,
      atlas: atlasSummary(atlas),
      pairAtlas: { ...atlasSummary(pairAtlas), classes: pairNames },
    };
    await writeJsonAtomic(`${outDir}/summary.json`, summary);
    const driven = Object.values(gains).flat();
    await writeReport(
      `${outDir}/report.html`,
      `What ${sidecar.model} learned: attributions and feature visualisation`,
      `Checkpoint <code>${options.checkpoint}</code> (${dataset}). Integrated gradients are ` +
        `complete to ${(100 * igError).toFixed(2)}% at ${D.completenessSteps} steps over ${m} ` +
        `test images. ${driven.filter((g) => g > 0).length} of ${driven.length} units are ` +
        "driven past their best test image by their optimised image.",
      [
        { heading: "Attributions", items: [attrGrid] },
        {
          heading: "Activation maximisation",
          intro: "Decorrelated (1/f DCT) parameterisation, random jitter, rotation and scale " +
            "each step, total-variation and L2 penalties; all units optimised in one batch " +
            "(native/src/feature_vis.rs).",
          items: [pairs, classTable, ...channelGrids],
        },
        {
          heading: "Activation atlas",
          intro: `The ${atlas.layer} activations of the test images, mapped with t-SNE ` +
            `(trustworthiness ${atlas.tsne.trustworthiness.toFixed(3)}), averaged per cell and ` +
            `rendered by activation maximisation. The pair atlas repeats it for ${
              pairNames.join(" and ")
            } alone, the classes this kind of net confuses most; its cells show the shapes ` +
            "that sit between them.",
          items: [atlas.figure, atlas.scatter, pairAtlas.figure, pairAtlas.scatter],
        },
      ],
    );
    log(`report: ${outDir}/report.html`);
    return summary;
  } finally {
    model.close();
  }
}
