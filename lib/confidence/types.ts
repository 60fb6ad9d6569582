/**
 * The confidence study's `summary.json`, apart from the run (`../confidence.ts`) so that its
 * report can read it without importing the run.
 * @module
 */
import type { BaselineResult } from "./baselines.ts";
import type { MetaResult } from "./metanets.ts";
import type { PeerSpeed } from "./peer_speed.ts";

/** `summary.json`. */
export interface ConfidenceSummary {
  models: { trained: number; kept: number; labelled: number };
  pairs: number;
  populationSpeed: {
    wna: { modelsPerHour: number; memberEpochsPerHour: number; seconds: number };
    pytorch: PeerSpeed | null;
    ratio: number | null;
  };
  settings: {
    runs: number;
    trainImages: number;
    testImages: number;
    copies: number;
    seed: number;
    metaEpochs: number;
    metaSeeds: number[];
  };
  /** Max-softmax and trust-score baselines on every pair. */
  baselines: BaselineResult[];
  /** Every meta-network fit (kind x task x split x seed), and the baselines on the same test rows. */
  results: MetaResult[];
  runs: { id: string; testAccuracy: number; kept: boolean }[];
}
