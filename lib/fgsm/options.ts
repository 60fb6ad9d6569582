/**
 * What an FGSM run takes and what it records in `summary.json`.
 * @module
 */

/** The eps values of the case study: the default of `--eps`. */
export const DEFAULT_EPS = [0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 1];

/** Options of {@linkcode runFgsm}. */
export interface FgsmOptions {
  /** Checkpoints to attack; none: train (or reuse) the six case-study nets. */
  checkpoints?: string[];
  /** @default DEFAULT_EPS */
  eps?: number[];
  /** Dataset of the case-study nets. @default "mnist" */
  dataset?: string;
  /** Test images used (the first n). @default all 10,000 */
  testImages?: number;
  /** eps values drawn in the adversarial-example grid. @default [0.1, 0.3] */
  exampleEps?: number[];
  /** Test images shown in the example grid and the saliency maps. @default 8 */
  exampleImages?: number;
  /** Seed of the case-study nets' training. @default 0 */
  seed?: number;
  /** Epochs of each case-study net. @default 3 */
  epochs?: number;
  /** Limit the case-study nets' training set (quick runs). */
  trainLimit?: number;
  /** Where trained case-study nets are cached. @default "checkpoints/fgsm" */
  cacheDir?: string;
  outDir: string;
  dataDir?: string;
  device?: "cpu" | "cuda" | "auto";
  /** @default true */
  progress?: boolean;
  /** @default console.log */
  log?: (line: string) => void;
}

/** What {@linkcode runFgsm} writes to `summary.json`. */
export interface FgsmSummary {
  nets: { label: string; model: string; checkpoint: string }[];
  eps: number[];
  testImages: number;
  /** Clean accuracy of each net. */
  cleanAccuracy: Record<string, number>;
  /** White-box accuracy of each net at each eps (its own adversarial images). */
  accuracy: Record<string, number[]>;
  /** Per eps: rows attacked net, columns evaluated net, accuracies. */
  matrices: { eps: number; matrix: number[][] }[];
  seconds: number;
}
