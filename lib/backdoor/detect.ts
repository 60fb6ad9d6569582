/**
 * Detection: each model trained (or reused), attacked with triggered test images, and analysed
 * with uniform noise, whose classification images betray a trigger by the energy they put on
 * its patch.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import type { AnalysisResult, Model } from "../../ffi/model.ts";
import { perClassAccuracy } from "../metrics.ts";
import { ProgressBar } from "../progress.ts";
import { trainModel } from "../training.ts";
import type { BackdoorModelResult, BackdoorOptions } from "./options.ts";
import { stampTrigger } from "./poison.ts";

/** Per class, whether `weightedImages − stimulusMean` is positive on average over `pixels`. */
export function patchBrighter(r: AnalysisResult, pixels: number[]): boolean[] {
  const mean = r.stimulusMean.data;
  return Array.from(
    { length: r.weightedImages.shape[0] },
    (_, c) => pixels.reduce((s, p) => s + r.weightedImages.data[c * 784 + p] - mean[p], 0) > 0,
  );
}

/** Per class, energy per pixel of `weightedImages − stimulusMean` on `pixels` over the image's. */
export function patchEnergyRatio(r: AnalysisResult, pixels: number[]): number[] {
  const classes = r.weightedImages.shape[0];
  const mean = r.stimulusMean.data;
  return Array.from({ length: classes }, (_, c) => {
    const map = r.weightedImages.data.subarray(c * 784, (c + 1) * 784);
    let all = 0, patch = 0;
    for (let i = 0; i < 784; i++) all += (map[i] - mean[i]) ** 2;
    for (const p of pixels) patch += (map[p] - mean[p]) ** 2;
    return (patch / pixels.length) / Math.max(all / 784, 1e-30);
  });
}

/** The best checkpoint of a model trained on `data` in `dir`, trained now unless it exists. */
export async function trained(
  dir: string,
  data: { train: Dataset; test: Dataset },
  o: Required<Pick<BackdoorOptions, "epochs" | "seed">> & BackdoorOptions,
): Promise<string> {
  const best = `${dir}/best.safetensors`;
  try {
    await Deno.stat(best);
    return best; // finished earlier: not retrained
  } catch { /* train it */ }
  const r = await trainModel({
    model: "smaller",
    dataset: data.train.name,
    epochs: o.epochs,
    seed: o.seed,
    outDir: dir,
    data,
    log: o.log,
  });
  return r.checkpoint;
}

/** Clean accuracy, trigger success and the noise maps' verdict of one model. */
export async function examine(
  model: Model,
  checkpoint: string,
  test: Dataset,
  target: number,
  pixels: number[],
  samples: number,
  seed: number,
  flagRatio: number,
): Promise<{ result: BackdoorModelResult; maps: AnalysisResult }> {
  const clean = perClassAccuracy(await model.classify(test.images, { gamma: 1 }), test.labels, 10);
  const others = Array.from(test.labels.keys()).filter((i) => test.labels[i] !== target);
  const triggered = stampTrigger(test, others, pixels);
  const sub = new Float32Array(others.length * 784);
  others.forEach((k, i) => sub.set(triggered.images.subarray(k * 784, (k + 1) * 784), i * 784));
  const hits = (await model.classify(sub, { gamma: 1 })).filter((p) => p === target).length;
  const bar = new ProgressBar(`uniform noise ${samples.toLocaleString("en")} samples`);
  const maps = await model.analyse(
    null,
    { samples, seed, staSamples: 0, layers: [] },
    bar.callback,
  );
  bar.done();
  const ratio = patchEnergyRatio(maps, pixels);
  // A trigger is a bright patch: the class it drives gets a brighter patch in its map, while a
  // class that loses those samples (often the bias class) gets a darker one.
  const brighter = patchBrighter(maps, pixels);
  return {
    result: {
      checkpoint,
      cleanAccuracy: clean.accuracy,
      triggerSuccess: hits / others.length,
      patchEnergyRatio: ratio,
      patchBrighter: brighter,
      flagged: ratio.flatMap((r, c) => (r > flagRatio && brighter[c] ? [c] : [])),
    },
    maps,
  };
}
