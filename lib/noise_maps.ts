/**
 * The white-noise analysis run behind `deno task noise-maps`: classification images, feedback,
 * template classifier, gamma sweep, targeted attack, spike-triggered averages and
 * microstimulation, written as arrays, figures, `summary.json` and `report.html`.
 * @module
 */
import { loadDataset } from "../data/datasets.ts";
import { type Model, type NdArray, templateScores } from "../ffi/model.ts";
import { loadCheckpoint, type Sidecar } from "./checkpoint.ts";
import { type Figure, mapsSvg, type Table, writeFigure, writeReport } from "./figures.ts";
import { writeFileAtomic, writeJsonAtomic } from "./files.ts";
import { argmaxRows, perClassAccuracy } from "./metrics.ts";
import { encodeNpy } from "./npy.ts";
import { Plot, plotSvg } from "./plots.ts";
import { ProgressBar } from "./progress.ts";
import { readSafetensors } from "./safetensors.ts";

/** Options of {@linkcode runNoiseMaps}. */
export interface NoiseMapsOptions {
  checkpoint: string;
  outDir: string;
  /** @default 1_000_000 */
  samples?: number;
  /** @default 500 */
  batchSize?: number;
  /** @default 0 */
  seed?: number;
  /** @default "uniform" */
  noise?: "uniform" | "gaussian";
  noiseMean?: number;
  noiseStd?: number;
  /** @default 0.9 */
  threshold?: number;
  /** Samples feeding STA and activation statistics. @default min(samples, 100000) */
  staSamples?: number;
  /** Gamma of the sample-stimulus figure. @default 0.5 */
  gamma?: number;
  /** @default 0, 0.1, …, 1 */
  gammas?: number[];
  /** Attack weights. @default 0, 0.2, …, 1 */
  weights?: number[];
  /** `layer:channel:delta` stimulations (delta in channel std units). */
  stimulate?: string[];
  /** Noise samples per microstimulation point. @default 20000 */
  stimSamples?: number;
  /** Test images used by the gamma sweep, attack and microstimulation. @default 2000 */
  evalImages?: number;
  /** Only the spike-triggered analysis. @default false */
  staOnly?: boolean;
  dataDir?: string;
  device?: "cpu" | "cuda" | "auto";
  /** @default console.log */
  log?: (line: string) => void;
}

/** The headline numbers of a run (also `summary.json`). */
export interface NoiseMapsSummary {
  model: string;
  dataset: string;
  checkpoint: string;
  seed: number;
  samples: number;
  noise: string;
  classNames: string[];
  classCounts: number[];
  /** Accuracy of the confidence-weighted maps as templates. */
  templateAccuracy: number;
  templatePerClassAccuracy: number[];
  /** Accuracy of the argmax classification images as templates. */
  argmaxTemplateAccuracy: number;
  chance: number;
  templateRatioToChance: number;
  feedback: { predicted: number; confidence: number }[];
  conv1StaKernelCosine: number[];
  gammaAccuracy: { gamma: number; accuracy: number; perClass: number[] }[];
  attack: { target: number; weight: number; successRate: number; accuracy: number }[];
  microstimulation: {
    layer: string;
    channel: number;
    delta: number;
    classCounts: number[];
    testAccuracy: number;
    perClassAccuracy: number[];
  }[];
  seconds: number;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb + 1e-30);
}

/**
 * The effective conv1 kernels (sign-corrected by the batch-norm scale when there is one) and
 * their cosine similarity with the conv1 position-averaged STA, noise mean removed.
 */
export async function conv1KernelCosine(
  checkpoint: string,
  staPatch: NdArray,
  noiseMean: number,
): Promise<number[]> {
  const weights = await readSafetensors(checkpoint);
  const kernel = weights["conv1.weight"] ?? weights["stem.weight"];
  if (!kernel) return [];
  const [channels, , kh, kw] = kernel.shape;
  const [, ph, pw] = staPatch.shape;
  if (kh !== ph || kw !== pw) return [];
  const gamma = weights["bn1.weight"]?.data;
  return Array.from({ length: channels }, (_, c) => {
    const k = kernel.data.subarray(c * kh * kw, (c + 1) * kh * kw);
    const sign = gamma ? Math.sign(gamma[c]) || 1 : 1;
    const sta = Array.from(
      staPatch.data.subarray(c * kh * kw, (c + 1) * kh * kw),
      (v) => v - noiseMean,
    );
    return cosine(sta, Array.from(k, (v) => v * sign));
  });
}

/** Centres a classification image and scales it to a peak magnitude of 1 (the attack pattern). */
function attackPattern(map: Float32Array): number[] {
  let mean = 0;
  for (const v of map) mean += v / map.length;
  let peak = 1e-12;
  for (const v of map) peak = Math.max(peak, Math.abs(v - mean));
  return Array.from(map, (v) => (v - mean) / peak);
}

/** Runs the whole analysis for one checkpoint and writes everything under `outDir`. */
export async function runNoiseMaps(options: NoiseMapsOptions): Promise<NoiseMapsSummary> {
  const t0 = performance.now();
  const {
    checkpoint,
    outDir,
    samples = 1_000_000,
    batchSize = 500,
    seed = 0,
    noise = "uniform",
    threshold = 0.9,
    gamma = 0.5,
    gammas = Array.from({ length: 11 }, (_, i) => i / 10),
    weights = [0, 0.2, 0.4, 0.6, 0.8, 1],
    stimSamples = 20_000,
    evalImages = 2000,
    log = console.log,
  } = options;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new RangeError(`invalid samples: ${samples} (expected a whole number >= 1)`);
  }
  const staSamples = options.staSamples ?? Math.min(samples, 100_000);
  await Deno.mkdir(outDir, { recursive: true });
  const { model, sidecar } = await loadCheckpoint(checkpoint, options.device);
  try {
    return await analyseModel(model, sidecar, {
      ...options,
      samples,
      batchSize,
      seed,
      noise,
      threshold,
      gamma,
      gammas,
      weights,
      stimSamples,
      evalImages,
      staSamples,
      log,
    }, t0);
  } finally {
    model.close();
  }
}

type Resolved =
  & Required<
    Pick<
      NoiseMapsOptions,
      | "samples"
      | "batchSize"
      | "seed"
      | "noise"
      | "threshold"
      | "gamma"
      | "gammas"
      | "weights"
      | "stimSamples"
      | "evalImages"
      | "staSamples"
      | "log"
    >
  >
  & NoiseMapsOptions;

async function analyseModel(
  model: Model,
  sidecar: Sidecar,
  o: Resolved,
  t0: number,
): Promise<NoiseMapsSummary> {
  const { outDir, log } = o;
  const info = model.info();
  const C = info.classes;
  const test = await loadDataset(sidecar.dataset, "test", { dataDir: o.dataDir });
  const names = test.classNames;
  const evalN = Math.min(o.evalImages, test.count);
  const evalImages = test.images.subarray(0, evalN * 784);
  const evalLabels = test.labels.subarray(0, evalN);
  const noiseOpts = {
    noise: o.noise,
    noiseMean: o.noiseMean,
    noiseStd: o.noiseStd,
    seed: o.seed,
    batchSize: o.batchSize,
    threshold: o.threshold,
  };
  const sections: { heading: string; items: (Figure | Table)[] }[] = [];
  const npy = async (name: string, a: NdArray) =>
    await writeFileAtomic(`${outDir}/${name}.npy`, encodeNpy(a.data, a.shape));
  const fig = async (f: Figure) => {
    await writeFigure(outDir, f);
    return f;
  };

  // 1. Stream the noise: classification images, bias histogram, STA and activation statistics.
  const bar = new ProgressBar(`noise ${o.samples.toLocaleString("en")} samples`);
  const r = await model.analyse(null, {
    ...noiseOpts,
    samples: o.samples,
    staSamples: o.staSamples,
  }, bar.callback);
  bar.done();
  const counts = Array.from(r.counts.data);
  for (
    const k of [
      "counts",
      "classImages",
      "weightedImages",
      "weightSums",
      "thresholdImages",
      "thresholdCounts",
      "stimulusMean",
    ]
  ) await npy(k, r[k]);
  const noiseMean = r.stimulusMean.data.reduce((a, b) => a + b, 0) / 784;
  const summarySections: (Figure | Table)[] = [];
  let fb: NoiseMapsSummary["feedback"] = [];
  let ta = { accuracy: NaN, perClass: [] as number[] };
  let argmaxTa = NaN;
  if (!o.staOnly) {
    summarySections.push(
      await fig({
        name: "bias-histogram",
        title: "Bias histogram",
        caption: `How ${
          o.samples.toLocaleString("en")
        } white-noise images were classified. A network without bias would spread them evenly; tall bars are the classes the network defaults to when there is no signal.`,
        svg: plotSvg({
          width: 640,
          height: 260,
          x: { label: null, domain: names },
          y: { label: "noise samples", grid: true },
          marks: [
            Plot.barY(names.map((n, i) => ({ n, c: counts[i] })), {
              x: "n",
              y: "c",
              fill: "steelblue",
            }),
            Plot.ruleY([0]),
          ],
        }),
      }),
    );
    // 2. Feed each classification image back into the network.
    const fbLogits = await model.predict(r.classImages.data);
    const feedback = Array.from({ length: C }, (_, c) => {
      const row = fbLogits.subarray(c * C, (c + 1) * C);
      const m = Math.max(...row);
      const e = Array.from(row, (v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b, 0);
      const p = e.indexOf(Math.max(...e));
      return { predicted: p, confidence: e[p] / s };
    });
    summarySections.push(
      await fig({
        name: "classification-images",
        title: "Classification images (mean noise per predicted class) and their feedback",
        caption:
          "Each map is the average of the noise images the network assigned to that class, shown relative to its own mean (red brighter, blue darker). Under each: the class it was averaged for, and what the network predicts when the map itself is fed back, with its softmax. A class the network never chose has no map (its confidence-weighted map is in the next figure).",
        svg: mapsSvg(r.classImages.data, C, 28, 28, {
          scale: 4,
          titles: names.map((n, c) =>
            r.counts.data[c] === 0
              ? `${n}: no samples`
              : `${n} → ${names[feedback[c].predicted]} ${
                (feedback[c].confidence * 100).toFixed(0)
              }%`
          ),
        }),
      }),
    );
    summarySections.push(
      await fig({
        name: "weighted-images",
        title: "Confidence-weighted classification images",
        caption:
          "Every noise sample contributes to every class in proportion to its softmax probability, so even classes that are never predicted get a map.",
        svg: mapsSvg(r.weightedImages.data, C, 28, 28, { scale: 4, titles: names }),
      }),
    );
    summarySections.push(
      await fig({
        name: "threshold-images",
        title: `Classification images of confident samples (top softmax > ${o.threshold})`,
        caption: `Only noise samples the network was more than ${
          o.threshold * 100
        }% sure about; counts under each map. Classes with no such sample stay blank.`,
        svg: mapsSvg(r.thresholdImages.data, C, 28, 28, {
          scale: 4,
          titles: names.map((n, c) => `${n} (${r.thresholdCounts.data[c]})`),
        }),
      }),
    );
    // 3. Template classifier on the real test set. The templates are the confidence-weighted
    // maps: every noise sample adds to every class in proportion to its softmax, so each class
    // has a template even when the bias histogram gives a class no sample at all — which a
    // well-trained MNIST net does with uniform noise (it calls almost all of it one digit).
    // The argmax maps' accuracy is reported beside it.
    const scores = await templateScores(r.weightedImages.data, test.images);
    const tPred = argmaxRows(scores, C);
    const tAcc = perClassAccuracy(tPred, test.labels, C);
    const argmaxTemplateAccuracy = perClassAccuracy(
      argmaxRows(await templateScores(r.classImages.data, test.images), C),
      test.labels,
      C,
    ).accuracy;
    const confusion = Array.from({ length: C }, () => new Array(C).fill(0));
    test.labels.forEach((l, i) => confusion[l][tPred[i]]++);
    summarySections.push(
      await fig({
        name: "template-confusion",
        title: `Template classifier: ${(100 * tAcc.accuracy).toFixed(1)}% on the test set (chance ${
          (100 / C).toFixed(0)
        }%)`,
        caption:
          `Test images classified by cosine similarity with the mean-removed, confidence-weighted classification images. Rows: true class; columns: predicted class; a strong diagonal means the noise maps alone carry the class shapes. With the argmax classification images as templates instead: ${
            (100 * argmaxTemplateAccuracy).toFixed(1)
          }% (classes that drew no noise sample have no template there).`,
        svg: plotSvg({
          width: 520,
          height: 460,
          marginLeft: 80,
          padding: 0,
          x: { label: "predicted", domain: names, tickRotate: -40 },
          y: { label: "true", domain: names },
          color: { scheme: "blues" },
          marks: [
            Plot.cell(
              confusion.flatMap((row, t) => row.map((v, p) => ({ t: names[t], p: names[p], v }))),
              { x: "p", y: "t", fill: "v" },
            ),
            Plot.text(
              confusion.flatMap((row, t) => row.map((v, p) => ({ t: names[t], p: names[p], v }))),
              { x: "p", y: "t", text: "v", fontSize: 8 },
            ),
          ],
        }),
      }),
    );
    sections.push({ heading: "Classification images", items: summarySections });
    fb = feedback;
    ta = tAcc;
    argmaxTa = argmaxTemplateAccuracy;
  }

  // 4. Spike-triggered averages and mean activation maps (noise vs real images).
  const staItems: (Figure | Table)[] = [];
  const real = await model.analyse(evalImages, { ...noiseOpts, gamma: 1, staSamples: evalN });
  for (const layer of info.layers.filter((l) => l.kind === "conv")) {
    const centre = r[`sta/${layer.name}/centre`];
    const patch = r[`sta/${layer.name}/patch`];
    const file = layer.name.replaceAll(".", "_");
    await npy(`sta-${file}-centre`, centre);
    if (patch) await npy(`sta-${file}-patch`, patch);
    await npy(`act-${file}-noise`, r[`act/${layer.name}/mean`]);
    await npy(`act-${file}-real`, real[`act/${layer.name}/mean`]);
    const cols = Math.min(layer.channels, 16);
    if (patch) {
      staItems.push(
        await fig({
          name: `sta-${file}-patch`,
          title: `${layer.name}: STA averaged over positions (${patch.shape[1]}x${
            patch.shape[1]
          } receptive field)`,
          caption:
            "For each channel, the activation-weighted mean of the noise patch each unit sees, summed over all unit positions: the input pattern that drives the channel. Red brighter than average, blue darker.",
          svg: mapsSvg(patch.data, layer.channels, patch.shape[1], patch.shape[2], {
            columns: cols,
            scale: Math.max(3, Math.floor(42 / patch.shape[1])),
            titles: Array.from({ length: layer.channels }, (_, c) => `ch ${c}`),
          }),
        }),
      );
    }
    staItems.push(
      await fig({
        name: `sta-${file}-centre`,
        title: `${layer.name}: STA of the centre unit`,
        caption:
          "The activation-weighted mean noise image for the unit at the centre of each channel's map; structure appears only inside the unit's receptive field.",
        svg: mapsSvg(centre.data, layer.channels, 28, 28, {
          columns: cols,
          scale: 2,
          titles: Array.from({ length: layer.channels }, (_, c) => `ch ${c}`),
        }),
      }),
    );
    for (const [kind, arr] of [["noise", r], ["real", real]] as const) {
      const a = arr[`act/${layer.name}/mean`];
      staItems.push(
        await fig({
          name: `act-${file}-${kind}`,
          title: `${layer.name}: mean activation per channel over ${
            kind === "noise" ? "noise" : `${evalN} test images`
          }`,
          caption:
            "Where in the image each channel responds on average (each map scaled to its own range, red high).",
          svg: mapsSvg(a.data, layer.channels, layer.height, layer.width, {
            columns: cols,
            scale: Math.max(2, Math.floor(40 / layer.width)),
            centre: true,
          }),
        }),
      );
    }
  }
  const conv1Patch = r[`sta/${info.layers.find((l) => l.kind === "conv")?.name}/patch`];
  const conv1StaKernelCosine = conv1Patch
    ? await conv1KernelCosine(o.checkpoint, conv1Patch, noiseMean)
    : [];
  if (conv1StaKernelCosine.length) {
    staItems.unshift({
      title: "conv1: cosine similarity of each channel's STA with its own kernel",
      caption:
        "STA minus the noise mean against the 3x3 kernel, sign-corrected by the batch-norm scale. Near 1: the STA recovers the filter.",
      header: ["channel", "cosine"],
      rows: conv1StaKernelCosine.map((v, c) => [c, v.toFixed(3)]),
    });
    log(
      `conv1 STA vs kernel cosine: median ${
        [...conv1StaKernelCosine].sort((a, b) => a - b)[conv1StaKernelCosine.length >> 1].toFixed(3)
      }, ${
        conv1StaKernelCosine.filter((v) => v > 0.8).length
      }/${conv1StaKernelCosine.length} above 0.8`,
    );
  }
  sections.push({ heading: "Spike-triggered analysis", items: staItems });

  const gammaAccuracy: NoiseMapsSummary["gammaAccuracy"] = [];
  const attack: NoiseMapsSummary["attack"] = [];
  const microstimulation: NoiseMapsSummary["microstimulation"] = [];
  if (!o.staOnly) {
    // 5. Gamma: real images mixed with noise.
    const gItems: (Figure | Table)[] = [];
    // Sample stimuli at --gamma: what the network sees, beside its answer.
    const shown = Math.min(10, evalLabels.length);
    const sample = await model.analyse(evalImages.subarray(0, shown * 784), {
      ...noiseOpts,
      gamma: o.gamma,
      staSamples: 0,
      keepStimuli: shown,
    });
    await npy("gamma-sample-stimuli", sample.stimuli);
    gItems.push(
      await fig({
        name: "gamma-sample-stimuli",
        title: `Sample stimuli at gamma = ${o.gamma}`,
        caption:
          `Test images mixed with noise as gamma·image + (1−gamma)·noise (top: the clean image). Under each stimulus: the network’s answer, ✓ when right. Same noise stream (seed ${o.seed}) as the sweep below.`,
        svg: mapsSvg(
          new Float32Array([...evalImages.subarray(0, shown * 784), ...sample.stimuli.data]),
          2 * shown,
          28,
          28,
          {
            columns: shown,
            grey: true,
            scale: 3,
            titles: [
              ...Array.from(evalLabels.subarray(0, shown), (l) => names[l]),
              ...Array.from(
                sample.predictions.data,
                (p, i) => `${names[p]}${p === evalLabels[i] ? " ✓" : " ✗"}`,
              ),
            ],
          },
        ),
      }),
    );
    const gammaMaps = new Float32Array(o.gammas.length * C * 784);
    const gBar = new ProgressBar("gamma sweep");
    for (const [gi, g] of o.gammas.entries()) {
      const res = await model.analyse(evalImages, { ...noiseOpts, gamma: g, staSamples: 0 });
      const acc = perClassAccuracy(res.predictions.data, evalLabels, C);
      gammaAccuracy.push({ gamma: g, ...acc });
      gammaMaps.set(res.classImages.data, gi * C * 784);
      gBar.update(gi + 1, o.gammas.length);
    }
    gBar.done();
    await npy("gamma-class-images", { data: gammaMaps, shape: [o.gammas.length, C, 28, 28] });
    await writeJsonAtomic(`${outDir}/gamma-accuracy.json`, gammaAccuracy);
    gItems.push(
      await fig({
        name: "gamma-accuracy",
        title: "Accuracy vs gamma (stimulus = gamma·image + (1−gamma)·noise)",
        caption:
          `Accuracy on ${evalN} test images as the image is faded into noise; one line per class, black the mean. Classes that keep their accuracy at low gamma are the ones the network's bias favours.`,
        svg: plotSvg({
          width: 640,
          height: 320,
          x: { label: "gamma" },
          y: { label: "accuracy", domain: [0, 1], grid: true },
          marginRight: 90,
          color: { domain: names },
          marks: [
            Plot.line(
              gammaAccuracy.flatMap((g) =>
                g.perClass.map((a, c) => ({ g: g.gamma, a, c: names[c] }))
              ),
              { x: "g", y: "a", stroke: "c" },
            ),
            Plot.text(
              gammaAccuracy.flatMap((g) =>
                g.perClass.map((a, c) => ({ g: g.gamma, a, c: names[c] }))
              ),
              Plot.selectLast({
                x: "g",
                y: "a",
                z: "c",
                text: "c",
                fill: "c",
                dx: 4,
                textAnchor: "start",
              }),
            ),
            Plot.line(gammaAccuracy, {
              x: "gamma",
              y: "accuracy",
              stroke: "black",
              strokeWidth: 2,
            }),
          ],
        }),
      }),
    );
    gItems.push(
      await fig({
        name: "gamma-class-images",
        title: "Classification images of the mixed stimuli, one row per gamma",
        caption:
          "Mean stimulus per predicted class at each gamma (top row gamma = first of the sweep). As gamma grows the maps turn from the noise bias into the class prototypes.",
        svg: mapsSvg(gammaMaps, o.gammas.length * C, 28, 28, {
          columns: C,
          scale: 2,
          titles: o.gammas.flatMap((g) =>
            names.map((_, c) => (c === 0 ? `γ=${g.toFixed(1)}` : ""))
          ),
        }),
      }),
    );
    sections.push({ heading: "Signal in noise (gamma)", items: gItems });

    // 6. Targeted black-box attack with the classification images.
    const aBar = new ProgressBar("targeted attack");
    for (let target = 0; target < C; target++) {
      const pattern = attackPattern(r.classImages.data.subarray(target * 784, (target + 1) * 784));
      for (const w of o.weights) {
        const res = await model.analyse(evalImages, {
          ...noiseOpts,
          gamma: 1,
          pattern,
          weight: w,
          staSamples: 0,
        });
        const pred = res.predictions.data;
        let hit = 0, others = 0;
        for (let i = 0; i < evalN; i++) {
          if (evalLabels[i] !== target) {
            others++;
            if (pred[i] === target) hit++;
          }
        }
        attack.push({
          target,
          weight: w,
          successRate: hit / Math.max(1, others),
          accuracy: perClassAccuracy(pred, evalLabels, C).accuracy,
        });
      }
      aBar.update(target + 1, C);
    }
    aBar.done();
    const aItems: (Figure | Table)[] = [];
    aItems.push(
      await fig({
        name: "attack",
        title: "Targeted attack: adding w × classification image of the target",
        caption:
          `Fraction of ${evalN} test images (not of the target class) that the network assigns to the target after adding the centred, peak-normalised classification image of the target with weight w (pixel units); dashed black: overall accuracy.`,
        svg: plotSvg({
          width: 640,
          height: 320,
          x: { label: "w" },
          y: { label: "rate", domain: [0, 1], grid: true },
          marginRight: 90,
          color: { domain: names },
          marks: [
            Plot.line(attack.map((a) => ({ ...a, t: names[a.target] })), {
              x: "weight",
              y: "successRate",
              stroke: "t",
            }),
            Plot.text(
              attack.map((a) => ({ ...a, t: names[a.target] })),
              Plot.selectLast({
                x: "weight",
                y: "successRate",
                z: "t",
                text: "t",
                fill: "t",
                dx: 4,
                textAnchor: "start",
              }),
            ),
            Plot.line(
              o.weights.map((w) => ({
                w,
                acc: attack.filter((a) => a.weight === w).reduce((s, a) => s + a.accuracy, 0) / C,
              })),
              { x: "w", y: "acc", stroke: "black", strokeDasharray: "4 3" },
            ),
          ],
        }),
      }),
    );
    aItems.push({
      title: "Targeted success rate per target class and weight",
      caption: "Rows: target class; columns: weight w.",
      header: ["target", ...o.weights.map((w) => `w=${w}`)],
      rows: names.map((
        n,
        t,
      ) => [
        n,
        ...o.weights.map((w) =>
          (attack.find((a) => a.target === t && a.weight === w)!.successRate * 100).toFixed(1) + "%"
        ),
      ]),
    });
    sections.push({ heading: "Targeted black-box attack", items: aItems });

    // 7. Microstimulation: shift one channel by delta x its noise std.
    const conv = info.layers.filter((l) => l.kind === "conv");
    const specs = o.stimulate?.length
      ? o.stimulate
      : defaultStimulations(conv.at(-1)?.name, r, conv.at(-1)?.channels ?? 0);
    const mBar = new ProgressBar("microstimulation");
    for (const [i, spec] of specs.entries()) {
      const [layer, ch, d] = spec.split(":");
      const channel = Number(ch), delta = Number(d);
      const std = r[`act/${layer}/channelStd`]?.data[channel];
      if (std === undefined || !Number.isInteger(channel) || !Number.isFinite(delta)) {
        throw new RangeError(
          `invalid --stimulate "${spec}" (expected layer:channel:delta with a conv or fc layer of ${info.model}: ${
            info.layers.map((l) => l.name).join(", ")
          })`,
        );
      }
      model.setStimulation(layer, channel, delta * std);
      try {
        const nz = await model.analyse(null, {
          ...noiseOpts,
          samples: o.stimSamples,
          staSamples: 0,
        });
        const rt = await model.analyse(evalImages, { ...noiseOpts, gamma: 1, staSamples: 0 });
        const acc = perClassAccuracy(rt.predictions.data, evalLabels, C);
        microstimulation.push({
          layer,
          channel,
          delta,
          classCounts: Array.from(nz.counts.data),
          testAccuracy: acc.accuracy,
          perClassAccuracy: acc.perClass,
        });
      } finally {
        model.clearStimulation();
      }
      mBar.update(i + 1, specs.length);
    }
    mBar.done();
    const mItems: (Figure | Table)[] = [];
    const rows = microstimulation.flatMap((m) =>
      m.classCounts.map((c, k) => ({
        unit: `${m.layer}:${m.channel}`,
        delta: m.delta,
        cls: names[k],
        share: c / o.stimSamples,
      }))
    );
    mItems.push(
      await fig({
        name: "microstimulation",
        title: "Microstimulation: bias histogram vs delta",
        caption: `Share of ${
          o.stimSamples.toLocaleString("en")
        } noise samples per class while one channel's output is shifted by delta × its std over noise; one panel per stimulated unit. Classes that grow are the ones the channel votes for.`,
        svg: plotSvg({
          width: 720,
          height: 200 * Math.max(1, new Set(rows.map((r) => r.unit)).size),
          fy: { label: null },
          x: { label: "delta (std)" },
          y: { label: "share", grid: true },
          marginRight: 90,
          color: { domain: names },
          marks: [
            Plot.line(rows, {
              x: "delta",
              y: "share",
              stroke: "cls",
              fy: "unit",
              marker: "circle",
            }),
            Plot.text(
              rows,
              Plot.selectLast({
                x: "delta",
                y: "share",
                z: "cls",
                fy: "unit",
                text: "cls",
                fill: "cls",
                dx: 4,
                textAnchor: "start",
              }),
            ),
          ],
        }),
      }),
    );
    mItems.push({
      title: "Test accuracy under microstimulation",
      caption: `Accuracy on ${evalN} test images.`,
      header: ["unit", "delta", "accuracy", ...names],
      rows: microstimulation.map((
        m,
      ) => [
        `${m.layer}:${m.channel}`,
        m.delta,
        (100 * m.testAccuracy).toFixed(1) + "%",
        ...m.perClassAccuracy.map((a) => (100 * a).toFixed(0)),
      ]),
    });
    sections.push({ heading: "Microstimulation", items: mItems });
  }

  // 8. Summary and report.
  const summary: NoiseMapsSummary = {
    model: info.model,
    dataset: sidecar.dataset,
    checkpoint: o.checkpoint,
    seed: o.seed,
    samples: o.samples,
    noise: o.noise,
    classNames: names,
    classCounts: counts,
    templateAccuracy: ta.accuracy,
    templatePerClassAccuracy: ta.perClass,
    argmaxTemplateAccuracy: argmaxTa,
    chance: 1 / C,
    templateRatioToChance: ta.accuracy * C,
    feedback: fb,
    conv1StaKernelCosine,
    gammaAccuracy,
    attack,
    microstimulation,
    seconds: (performance.now() - t0) / 1000,
  };
  await writeJsonAtomic(`${outDir}/summary.json`, summary);
  await writeReport(
    `${outDir}/report.html`,
    `White-noise analysis of ${info.model} on ${sidecar.dataset}`,
    `${
      o.samples.toLocaleString("en")
    } ${o.noise} noise images (seed ${o.seed}) through the checkpoint <code>${o.checkpoint}</code> (test accuracy ${
      sidecar.testAccuracy !== undefined ? (100 * sidecar.testAccuracy).toFixed(2) + "%" : "unknown"
    }). Template classifier: ${(100 * ta.accuracy).toFixed(1)}% (${
      summary.templateRatioToChance.toFixed(1)
    }× chance). Took ${
      summary.seconds.toFixed(0)
    } s. Method: Borji &amp; Lin, “White Noise Analysis of Neural Networks”, ICLR 2020.`,
    sections,
  );
  return summary;
}

function defaultStimulations(
  layer: string | undefined,
  r: Record<string, NdArray>,
  channels: number,
): string[] {
  if (!layer || channels === 0) return [];
  const std = r[`act/${layer}/channelStd`].data;
  const top = Array.from({ length: channels }, (_, c) => c).sort((a, b) => std[b] - std[a]).slice(
    0,
    2,
  );
  return top.flatMap((c) => [-2, 0, 2, 4].map((d) => `${layer}:${c}:${d}`));
}
