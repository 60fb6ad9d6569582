/**
 * The judge of a GAN run: the classifier behind every quality number, with what the real test
 * set scores through it (the ceiling the samples are measured against).
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import { frechetDistance } from "../../ffi/gan.ts";
import type { Model } from "../../ffi/model.ts";
import { loadCheckpoint } from "../checkpoint.ts";
import { zooClassifier } from "./classifier.ts";
import { features, measureQuality, type Quality } from "./quality.ts";
import { GAN_DEFAULTS } from "./specs.ts";

/** The rows (of `width` values) whose index passes `keep`, copied into one array. */
function pickRows(values: Float32Array, width: number, keep: (i: number) => boolean): Float32Array {
  const n = values.length / width;
  const idx = Array.from({ length: n }, (_, i) => i).filter(keep);
  const out = new Float32Array(idx.length * width);
  idx.forEach((i, k) => out.set(values.subarray(i * width, (i + 1) * width), k * width));
  return out;
}

/** The judge and the real test set's scores through it. */
export interface Judge {
  /** The caller closes it. */
  model: Model;
  path: string;
  accuracy?: number;
  /** The test set's penultimate features, the Frechet distance's reference. */
  reference: { data: Float32Array; width: number };
  realQuality: Quality;
  /** Between the even and the odd test images: the floor that sampling alone sets. */
  frechetEvenOdd: number;
}

/**
 * Loads the judging classifier (a given checkpoint, or zoo net 11.1 on 60k images) and scores
 * the first `samples` test images through it.
 */
export async function prepareJudge(o: {
  path?: string;
  train: Dataset;
  test: Dataset;
  samples: number;
  device?: "cpu" | "cuda" | "auto";
  log: (line: string) => void;
}): Promise<Judge> {
  const judge = o.path
    ? await loadCheckpoint(o.path, o.device).then((c) => ({
      model: c.model,
      path: o.path!,
      accuracy: c.sidecar.testAccuracy,
    }))
    : await zooClassifier({
      id: GAN_DEFAULTS.classifier,
      train: o.train,
      test: o.test,
      seed: 0,
      device: o.device,
      log: o.log,
    });
  try {
    const realImages = o.test.images.subarray(0, Math.min(o.samples, o.test.count) * 784);
    const reference = await features(judge.model, realImages);
    const realQuality = await measureQuality(judge.model, realImages);
    // Even against odd images, not the first against the second half: MNIST's test set was
    // assembled from two writer populations in order, and its halves differ. Their features
    // are rows of the reference's.
    const split = (parity: number) =>
      pickRows(reference.data, reference.width, (i) => i % 2 === parity);
    const frechetEvenOdd = await frechetDistance(split(0), split(1), reference.width);
    o.log(
      `judge: ${judge.path} (${((judge.accuracy ?? NaN) * 100).toFixed(2)}%); test set: ` +
        `Inception score ${realQuality.inceptionScore.toFixed(2)}, Frechet between its even and ` +
        `odd images ${frechetEvenOdd.toFixed(2)}`,
    );
    return { ...judge, reference, realQuality, frechetEvenOdd };
  } catch (e) {
    judge.model.close();
    throw e;
  }
}
