/**
 * A GAN run's state after every epoch (both networks, both optimisers, the best generator and
 * the history), so that an interrupted run resumes and a rerun with more epochs continues.
 * @module
 */
import type { Model } from "../../ffi/model.ts";
import { writeJsonAtomic } from "../files.ts";
import type { GanEpoch } from "../gan.ts";
import { readStoredRun } from "../zoo/train_net.ts";

/** What progress.json holds. */
export interface State {
  settings: Record<string, unknown>;
  history: GanEpoch[];
  seconds: number;
}

/** The state's files under `dir`. */
export const stateFiles = (dir: string) => ({
  generator: `${dir}/generator.safetensors`,
  discriminator: `${dir}/discriminator.safetensors`,
  generatorOptimizer: `${dir}/generator-optimizer.safetensors`,
  discriminatorOptimizer: `${dir}/discriminator-optimizer.safetensors`,
  best: `${dir}/generator-best.safetensors`,
  progress: `${dir}/progress.json`,
});

/** Writes the epoch's state; progress.json goes first and comes back last (see trainNet). */
export async function saveState(dir: string, g: Model, d: Model, state: State, best: boolean) {
  await Deno.mkdir(dir, { recursive: true });
  const f = stateFiles(dir);
  await Deno.remove(f.progress).catch(() => {});
  g.saveWeights(f.generator);
  d.saveWeights(f.discriminator);
  g.saveOptimizer(f.generatorOptimizer);
  d.saveOptimizer(f.discriminatorOptimizer);
  if (best) g.saveWeights(f.best);
  await writeJsonAtomic(f.progress, state);
}

/** Loads the state when its settings match; undefined otherwise (the run starts afresh). */
export async function resumeState(
  dir: string,
  g: Model,
  d: Model,
  settings: Record<string, unknown>,
) {
  const f = stateFiles(dir);
  const stored = await readStoredRun<State>(f.progress, {});
  const same = stored && Object.entries(settings).every(([k, v]) => stored.settings?.[k] === v) &&
    Array.isArray(stored.history) && stored.history.length > 0;
  if (!same) return undefined;
  g.loadWeights(f.generator);
  d.loadWeights(f.discriminator);
  g.loadOptimizer(f.generatorOptimizer);
  d.loadOptimizer(f.discriminatorOptimizer);
  return stored;
}
