/**
 * The analysis noise: for `data` noise, fit the training set's mean and covariance, then pick
 * the contrast whose bias histogram is most even (highest entropy) on a pilot sample.
 * @module
 */
import { loadDataset } from "../../data/datasets.ts";
import type { Model, StreamOptions } from "../../ffi/model.ts";
import type { Table } from "../figures.ts";
import { entropy, pct, tally } from "./context.ts";
import { NOISE_MAPS_DEFAULTS, type NoiseMapsNoise } from "./defaults.ts";
import { writeFileAtomic } from "../files.ts";
import { encodeNpy } from "../npy.ts";

/** One contrast tried by the calibration. */
export interface PilotRow {
  contrast: number;
  entropy: number;
  shares: number[];
}

/** The chosen noise and how it was chosen. */
export interface Calibration {
  stream: StreamOptions;
  /** Empty unless the noise is `data`. */
  pilot: PilotRow[];
  /** Training images the data statistics came from. */
  fittedImages?: number;
  table?: Table;
}

/** Options of {@linkcode calibrateNoise}. */
export interface CalibrateOptions {
  noise: NoiseMapsNoise;
  dataset: string;
  dataDir?: string;
  seed: number;
  batchSize: number;
  noiseMean?: number;
  noiseStd?: number;
  /** A fixed contrast skips the search. */
  contrast?: number;
  contrasts?: readonly number[];
  pilotSamples?: number;
  outDir: string;
  names: string[];
  log: (line: string) => void;
}

/** Fits and calibrates the analysis noise. */
export async function calibrateNoise(model: Model, o: CalibrateOptions): Promise<Calibration> {
  const base = { seed: o.seed, batchSize: o.batchSize };
  if (o.noise === "uniform") return { stream: { ...base, noise: "uniform" }, pilot: [] };
  if (o.noise === "gaussian") {
    return {
      stream: {
        ...base,
        noise: "gaussian",
        noiseMean: o.noiseMean ?? NOISE_MAPS_DEFAULTS.gaussianMean,
        noiseStd: o.noiseStd ?? NOISE_MAPS_DEFAULTS.gaussianStd,
      },
      pilot: [],
    };
  }
  // Data noise: the training set's moments, kept in the model and written for reuse.
  const train = await loadDataset(o.dataset, "train", { dataDir: o.dataDir });
  const fit = await model.fitDataNoise(train.images);
  await writeFileAtomic(`${o.outDir}/data-noise-mean.npy`, encodeNpy(fit.mean.data, [28, 28]));
  await writeFileAtomic(
    `${o.outDir}/data-noise-factor.npy`,
    encodeNpy(fit.factor.data, [784, 784]),
  );
  const contrasts = o.contrast !== undefined
    ? [o.contrast]
    : o.contrasts ?? NOISE_MAPS_DEFAULTS.contrasts;
  const samples = o.pilotSamples ?? NOISE_MAPS_DEFAULTS.pilotSamples;
  // The pilot uses its own seed, so the choice is not fitted to the main run's samples.
  const pilot: PilotRow[] = [];
  for (const contrast of contrasts) {
    const predicted = await model.classify(null, {
      noise: "data",
      contrast,
      samples,
      seed: o.seed + 1_000_003,
      batchSize: o.batchSize,
    });
    const counts = tally(predicted, o.names.length);
    pilot.push({ contrast, entropy: entropy(counts), shares: counts.map((c) => c / samples) });
  }
  const best = pilot.reduce((a, b) => (b.entropy > a.entropy ? b : a));
  o.log(
    `data noise: fitted on ${fit.images} training images; contrast ${best.contrast} ` +
      `(bias entropy ${best.entropy.toFixed(2)} of ${Math.log(o.names.length).toFixed(2)} nats)`,
  );
  return {
    stream: { ...base, noise: "data", contrast: best.contrast },
    pilot,
    fittedImages: fit.images,
    table: {
      title: "Calibration: bias histogram of data noise at each contrast",
      caption: `Share of ${samples.toLocaleString("en")} pilot samples (own seed) per class. ` +
        `The contrast with the highest entropy (most even histogram) is used: ${best.contrast}.`,
      header: ["contrast", "entropy (nats)", ...o.names],
      rows: pilot.map((p) => [
        p.contrast === best.contrast ? `${p.contrast} (used)` : p.contrast,
        p.entropy.toFixed(3),
        ...p.shares.map(pct),
      ]),
    },
  };
}
