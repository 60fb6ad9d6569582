/**
 * What a backdoor run takes, its defaults, and what it records in `summary.json`.
 * @module
 */

/** Defaults of `runBackdoor` and `deno task backdoor`. */
export const BACKDOOR_DEFAULTS = {
  dataset: "mnist",
  target: 0,
  /** Share of training images stamped and relabelled. */
  fraction: 0.05,
  /** Side of the square trigger, in pixels, one pixel in from the bottom-right corner. */
  patch: 4,
  epochs: 3,
  /** Uniform noise samples per model: white noise reaches every pixel, the corner too. */
  samples: 200_000,
  seed: 0,
  /**
   * A class is flagged when its classification image puts this many times more energy per pixel
   * on the trigger than over the whole image (1 = no preference for the patch).
   */
  flagRatio: 4,
} as const;

/** Options of `runBackdoor`. */
export interface BackdoorOptions {
  outDir: string;
  dataset?: "mnist" | "fashion";
  target?: number;
  fraction?: number;
  patch?: number;
  epochs?: number;
  samples?: number;
  seed?: number;
  flagRatio?: number;
  /** Use only the first n training images (tests). */
  limit?: number;
  dataDir?: string;
  log?: (line: string) => void;
}

/** One model's side of the study. */
export interface BackdoorModelResult {
  checkpoint: string;
  cleanAccuracy: number;
  /** Share of triggered test images (not of the target class) called the target. */
  triggerSuccess: number;
  /** Per class: energy per pixel of the classification image on the patch / over the image. */
  patchEnergyRatio: number[];
  /** Per class: whether the map is brighter than the mean stimulus on the patch. */
  patchBrighter: boolean[];
  /** Classes whose map is brighter on the patch and above the flag ratio. */
  flagged: number[];
}

/** What `runBackdoor` returns (also `summary.json`). */
export interface BackdoorSummary {
  dataset: string;
  target: number;
  patch: { size: number; row: number; col: number };
  fraction: number;
  poisonedImages: number;
  samples: number;
  flagRatio: number;
  poisoned: BackdoorModelResult;
  clean: BackdoorModelResult;
  seconds: number;
}
