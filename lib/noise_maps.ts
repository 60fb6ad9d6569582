/**
 * The white-noise analysis run behind `deno task noise-maps` (Borji & Lin, "White Noise
 * Analysis of Neural Networks", ICLR 2020): it calibrates the noise, streams it through the
 * network, and runs one section per analysis, each computing its numbers first and drawing its
 * figures second. Everything lands in `outDir` as `.npy`, SVG + PNG, `summary.json` and
 * `report.html`.
 * @module
 */
import { loadDataset } from "../data/datasets.ts";
import type { AnalysisResult } from "../ffi/model.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { writeReport } from "./figures.ts";
import { writeJsonAtomic } from "./files.ts";
import { ProgressBar } from "./progress.ts";
import { type AttackPoint, attackSection } from "./noise_maps/attack.ts";
import { biasHistograms } from "./noise_maps/bias.ts";
import { calibrateNoise, type PilotRow } from "./noise_maps/calibrate.ts";
import { type ClassImageNumbers, classImagesSection } from "./noise_maps/class_images.ts";
import { pct, type RunContext, type Section } from "./noise_maps/context.ts";
import { NOISE_MAPS_DEFAULTS, type NoiseMapsNoise } from "./noise_maps/defaults.ts";
import { type GammaPoint, gammaSection } from "./noise_maps/gamma.ts";
import { type Microstimulation, microstimulationSection } from "./noise_maps/microstimulation.ts";
import { staSection } from "./noise_maps/sta.ts";

export { conv1KernelCosine } from "./noise_maps/sta.ts";
export { NOISE_MAPS_DEFAULTS, type NoiseMapsNoise } from "./noise_maps/defaults.ts";

/** Options of {@linkcode runNoiseMaps}; each default is in {@linkcode NOISE_MAPS_DEFAULTS}. */
export interface NoiseMapsOptions {
  checkpoint: string;
  outDir: string;
  samples?: number;
  /** Uniform samples of the raw bias histogram and the STA. */
  rawSamples?: number;
  batchSize?: number;
  seed?: number;
  noise?: NoiseMapsNoise;
  /** `gaussian` noise's mean and std. */
  noiseMean?: number;
  noiseStd?: number;
  /** A fixed contrast of `data` noise instead of the calibrated one. */
  contrast?: number;
  threshold?: number;
  /** Samples feeding STA and activation statistics. @default min(rawSamples, staSamplesCap) */
  staSamples?: number;
  gamma?: number;
  gammas?: number[];
  weights?: number[];
  stimDeltas?: number[];
  stimSamples?: number;
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
  /** The analysis noise: `data` (with its calibrated contrast), `uniform` or `gaussian`. */
  noise: NoiseMapsNoise;
  contrast?: number;
  calibration: PilotRow[];
  classNames: string[];
  /** Share of samples per class under the analysis noise. */
  classShare: number[];
  /** Samples per class under raw uniform noise (`rawSamples` of them). */
  classCounts: number[];
  rawSamples: number;
  templateAccuracy: number;
  templatePerClassAccuracy: number[];
  weightedTemplateAccuracy: number;
  chance: number;
  templateRatioToChance: number;
  feedback: ClassImageNumbers["feedback"];
  conv1StaKernelCosine: number[];
  gammaAccuracy: GammaPoint[];
  attack: AttackPoint[];
  microstimulation: Microstimulation[];
  seconds: number;
}

function checkWhole(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`invalid ${name}: ${v} (expected a whole number >= ${min})`);
  }
}

/** Runs the whole analysis for one checkpoint and writes everything under `outDir`. */
export async function runNoiseMaps(options: NoiseMapsOptions): Promise<NoiseMapsSummary> {
  const t0 = performance.now();
  const d = NOISE_MAPS_DEFAULTS;
  const {
    checkpoint,
    outDir,
    samples = d.samples,
    rawSamples = d.rawSamples,
    batchSize = d.batchSize,
    seed = d.seed,
    noise = d.noise,
    threshold = d.threshold,
    log = console.log,
  } = options;
  checkWhole("samples", samples, 1);
  checkWhole("rawSamples", rawSamples, 1);
  checkWhole("seed", seed, 0);
  await Deno.mkdir(outDir, { recursive: true });
  const { model, sidecar } = await loadCheckpoint(checkpoint, options.device);
  try {
    const info = model.info();
    const test = await loadDataset(sidecar.dataset, "test", { dataDir: options.dataDir });
    const evalN = Math.min(options.evalImages ?? d.evalImages, test.count);
    const names = sidecar.classNames ?? test.classNames;

    // 1. The analysis noise: fitted to the training data and calibrated, or as asked.
    // (The spike-triggered analysis alone needs only white noise.)
    const calibration = await calibrateNoise(model, {
      noise: options.staOnly ? "uniform" : noise,
      dataset: sidecar.dataset,
      dataDir: options.dataDir,
      seed,
      batchSize,
      noiseMean: options.noiseMean,
      noiseStd: options.noiseStd,
      contrast: options.contrast,
      outDir,
      names,
      log,
    });
    const ctx: RunContext = {
      model,
      info,
      names,
      classes: info.classes,
      test,
      evalImages: test.images.subarray(0, evalN * 784),
      evalLabels: test.labels.subarray(0, evalN),
      stream: calibration.stream,
      outDir,
      log,
    };
    const noiseLabel = noise === "data"
      ? `data noise (contrast ${calibration.stream.contrast})`
      : `${noise} noise`;

    // 2. White (uniform) noise: the raw bias histogram and the spike-triggered averages.
    const staSamples = options.staSamples ?? Math.min(rawSamples, d.staSamplesCap);
    const stream = async (label: string, opts: Parameters<typeof model.analyse>[1]) => {
      const bar = new ProgressBar(label);
      const r = await model.analyse(null, opts, bar.callback);
      bar.done();
      return r;
    };
    const white = await stream(`uniform noise ${rawSamples.toLocaleString("en")} samples`, {
      seed,
      batchSize,
      samples: noise === "uniform" ? samples : rawSamples,
      staSamples,
      threshold,
    });
    const sections: Section[] = [];
    const sta = await staSection(ctx, white, checkpoint);
    if (options.staOnly) {
      sections.push(sta.section);
      return await finish(ctx, {
        t0,
        sidecar,
        checkpoint,
        seed,
        noise: "uniform",
        main: white,
        white,
        calibration: calibration.pilot,
        sections,
        conv1StaKernelCosine: sta.conv1StaKernelCosine,
      });
    }

    // 3. The analysis noise: classification images, feedback, template classifier.
    const main: AnalysisResult = noise === "uniform" ? white : await stream(
      `${noiseLabel} ${samples.toLocaleString("en")} samples`,
      { ...ctx.stream, samples, staSamples: 0, layers: [], threshold, keepStimuli: 20 },
    );
    const bias = await biasHistograms(ctx, main, white, noiseLabel);
    log(`class share under ${noiseLabel}: ${bias.classShare.map(pct).join(" ")}`);
    const images = await classImagesSection(ctx, main, threshold, noiseLabel);
    sections.push({
      heading: "Bias",
      intro: calibration.fittedImages
        ? `The analysis noise is Gaussian with the mean and covariance of the ${
          calibration.fittedImages.toLocaleString("en")
        } ` +
          `training images (the highest-entropy noise with the data's first two moments), its ` +
          `deviation from the data mean scaled by a contrast chosen for the most even bias ` +
          `histogram, clipped to [0, 1]. Independent uniform noise is kept beside it: the bias ` +
          `it shows is a finding about the network.`
        : undefined,
      items: [bias.figure, ...(calibration.table ? [calibration.table] : [])],
    });
    sections.push(images.section, sta.section);

    // 4. Gamma sweep, targeted attack, microstimulation.
    const gamma = await gammaSection(ctx, options.gammas ?? d.gammas, options.gamma ?? d.gamma);
    const attack = await attackSection(ctx, main, options.weights ?? d.weights);
    const micro = await microstimulationSection(
      ctx,
      options.stimDeltas ?? d.stimDeltas,
      options.stimSamples ?? d.stimSamples,
    );
    sections.push(gamma.section, attack.section, micro.section);
    return await finish(ctx, {
      t0,
      sidecar,
      checkpoint,
      seed,
      noise,
      main,
      white,
      calibration: calibration.pilot,
      sections,
      conv1StaKernelCosine: sta.conv1StaKernelCosine,
      images: images.numbers,
      classShare: bias.classShare,
      gammaAccuracy: gamma.gammaAccuracy,
      attack: attack.attack,
      microstimulation: micro.microstimulation,
    });
  } finally {
    model.close();
  }
}

interface Finished {
  t0: number;
  sidecar: { dataset: string; testAccuracy?: number };
  checkpoint: string;
  seed: number;
  noise: NoiseMapsNoise;
  main: AnalysisResult;
  white: AnalysisResult;
  calibration: PilotRow[];
  sections: Section[];
  conv1StaKernelCosine: number[];
  images?: ClassImageNumbers;
  classShare?: number[];
  gammaAccuracy?: GammaPoint[];
  attack?: AttackPoint[];
  microstimulation?: Microstimulation[];
}

/** Writes `summary.json` and `report.html`. */
async function finish(ctx: RunContext, f: Finished): Promise<NoiseMapsSummary> {
  const C = ctx.classes;
  const summary: NoiseMapsSummary = {
    model: ctx.info.model,
    dataset: f.sidecar.dataset,
    checkpoint: f.checkpoint,
    seed: f.seed,
    samples: f.main.samples,
    noise: f.noise,
    contrast: ctx.stream.contrast,
    calibration: f.calibration,
    classNames: ctx.names,
    classShare: f.classShare ?? Array.from(f.main.counts.data, (c) => c / f.main.samples),
    classCounts: Array.from(f.white.counts.data),
    rawSamples: f.white.samples,
    templateAccuracy: f.images?.templateAccuracy ?? NaN,
    templatePerClassAccuracy: f.images?.templatePerClassAccuracy ?? [],
    weightedTemplateAccuracy: f.images?.weightedTemplateAccuracy ?? NaN,
    chance: 1 / C,
    templateRatioToChance: (f.images?.templateAccuracy ?? NaN) * C,
    feedback: f.images?.feedback ?? [],
    conv1StaKernelCosine: f.conv1StaKernelCosine,
    gammaAccuracy: f.gammaAccuracy ?? [],
    attack: f.attack ?? [],
    microstimulation: f.microstimulation ?? [],
    seconds: (performance.now() - f.t0) / 1000,
  };
  await writeJsonAtomic(`${ctx.outDir}/summary.json`, summary);
  const accuracy = f.sidecar.testAccuracy !== undefined ? pct(f.sidecar.testAccuracy) : "unknown";
  const templates = f.images
    ? ` Template classifier from the classification images: ${pct(summary.templateAccuracy)} ` +
      `(${summary.templateRatioToChance.toFixed(1)}× chance).`
    : "";
  await writeReport(
    `${ctx.outDir}/report.html`,
    `White-noise analysis of ${ctx.info.model} on ${f.sidecar.dataset}`,
    `${summary.samples.toLocaleString("en")} ${f.noise} noise images (seed ${f.seed}) through ` +
      `the checkpoint <code>${f.checkpoint}</code> (test accuracy ${accuracy}).${templates} ` +
      `Took ${summary.seconds.toFixed(0)} s. Method: Borji &amp; Lin, “White Noise Analysis of ` +
      `Neural Networks”, ICLR 2020.`,
    f.sections,
  );
  return summary;
}
