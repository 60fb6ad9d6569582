/**
 * Runs kept on disk: a finished run stored as JSON, and an unfinished one's state after every
 * epoch (each model's weights and optimiser state, plus `progress.json` with the settings and
 * history), so that an interrupted run resumes from its last finished epoch.
 * @module
 */
import type { Model } from "../ffi/model.ts";
import { writeJsonAtomic } from "./files.ts";

/** What `progress.json` holds; a mismatch with the current settings restarts the run. */
export interface PartialRun<Epoch> {
  settings: Record<string, unknown>;
  history: Epoch[];
  seconds: number;
}

/** One model's files in a partial run, relative to its folder. */
export interface PartialModel {
  model: Model;
  weights: string;
  /** Its optimiser state; none for weights kept only as a copy (the best epoch's). */
  optimizer?: string;
}

/**
 * A finished run stored as JSON, if it was made with the same settings (`want`'s fields all
 * equal); otherwise (absent, unreadable, other settings) undefined, and the run is redone.
 * @param path the run's JSON file
 * @param want the settings the stored run must match
 * @returns the stored run, or undefined
 */
export async function readStoredRun<T>(
  path: string,
  want: Record<string, unknown>,
): Promise<T | undefined> {
  try {
    const run = JSON.parse(await Deno.readTextFile(path));
    return Object.entries(want).every(([k, v]) => run?.[k] === v) ? run as T : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes an epoch's state under `dir`.
 * @param dir the run's state folder
 * @param models each model with its file names
 * @param run settings, history and seconds so far
 */
export async function savePartialRun<Epoch>(
  dir: string,
  models: PartialModel[],
  run: PartialRun<Epoch>,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const progress = `${dir}/progress.json`;
  // progress.json goes first and comes back last: a crash mid-save leaves no progress and the
  // run starts afresh, never one epoch's history with another epoch's weights.
  await Deno.remove(progress).catch(() => {});
  for (const m of models) {
    m.model.saveWeights(`${dir}/${m.weights}`);
    if (m.optimizer) m.model.saveOptimizer(`${dir}/${m.optimizer}`);
  }
  await writeJsonAtomic(progress, run);
}

/**
 * Loads the state under `dir` into `models` when it was saved with the same settings and holds
 * at least one epoch.
 * @returns the stored progress, or undefined (the run starts afresh)
 */
export async function resumePartialRun<Epoch>(
  dir: string,
  models: PartialModel[],
  settings: Record<string, unknown>,
): Promise<PartialRun<Epoch> | undefined> {
  const stored = await readStoredRun<PartialRun<Epoch>>(`${dir}/progress.json`, {});
  const same = stored &&
    Object.entries(settings).every(([k, v]) => stored.settings?.[k] === v) &&
    Array.isArray(stored.history) && stored.history.length > 0;
  if (!same) return undefined;
  for (const m of models) {
    m.model.loadWeights(`${dir}/${m.weights}`);
    if (m.optimizer) m.model.loadOptimizer(`${dir}/${m.optimizer}`);
  }
  return stored;
}

/**
 * Removes a finished run's per-epoch state.
 * @param dir the state folder
 */
export async function discardPartialRun(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}
