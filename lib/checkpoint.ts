/**
 * Checkpoints: `.safetensors` weights beside a JSON sidecar of the same name.
 * @module
 */
import { Model } from "../ffi/model.ts";
import type { NetSpec } from "../ffi/spec.ts";
import { nativeVersion } from "../ffi/native.ts";
import { writeJsonAtomic } from "./files.ts";

/** One epoch's numbers. */
export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  lr: number;
  seconds: number;
}

/** The sidecar written next to every checkpoint. */
export interface Sidecar {
  /** The network's name (a built-in name or the spec's). */
  model: string;
  /** The network itself; sidecars written before specs existed have only `model`. */
  spec?: NetSpec;
  dataset: string;
  classes: number;
  /** One name per logit, for imported models; the dataset's names when absent. */
  classNames?: string[];
  blocks?: number[];
  epoch: number;
  epochs: number;
  seed: number;
  normalisation: { mean: number; std: number };
  trainAccuracy?: number;
  valAccuracy?: number;
  bestEpoch?: number;
  testAccuracy?: number;
  history: EpochRecord[];
  options: Record<string, unknown>;
  libraryVersion: string;
  parameters: number;
}

/** The sidecar path of a weights file. */
export function sidecarPath(weights: string): string {
  return weights.replace(/\.safetensors$/, "") + ".json";
}

/** Writes weights then sidecar, each atomically. */
export async function saveCheckpoint(
  model: Model,
  weights: string,
  sidecar: Omit<Sidecar, "libraryVersion" | "parameters" | "spec">,
): Promise<void> {
  model.saveWeights(weights);
  await writeJsonAtomic(sidecarPath(weights), {
    ...sidecar,
    spec: model.info().spec,
    parameters: model.info().parameters,
    libraryVersion: nativeVersion(),
  });
}

/** Reads a sidecar, naming the file and the fix when it is missing or broken. */
export async function readSidecar(weights: string): Promise<Sidecar> {
  const path = sidecarPath(weights);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    throw new Error(
      `checkpoint: no sidecar ${path} beside ${weights}; it is written by \`deno task train\` ` +
        "and names the model, dataset and normalisation",
      { cause },
    );
  }
  try {
    const s = JSON.parse(text) as Sidecar;
    if (!s.model || !s.normalisation) throw new Error("model or normalisation missing");
    return s;
  } catch (cause) {
    throw new SyntaxError(
      `checkpoint: ${path} is not a valid sidecar (${(cause as Error).message})`,
      { cause },
    );
  }
}

/**
 * Loads a checkpoint into a new model, rebuilt from the spec in its sidecar (or, for sidecars
 * older than specs, from the built-in network it names).
 */
export async function loadCheckpoint(
  weights: string,
  device?: "cpu" | "cuda" | "auto",
): Promise<{ model: Model; sidecar: Sidecar }> {
  const sidecar = await readSidecar(weights);
  const normalisation = {
    mean: sidecar.normalisation.mean,
    std: sidecar.normalisation.std,
    device,
  };
  const model = sidecar.spec
    ? Model.create(sidecar.spec, normalisation)
    : Model.create(sidecar.model, {
      ...normalisation,
      classes: sidecar.classes,
      blocks: sidecar.blocks,
    });
  try {
    model.loadWeights(weights);
  } catch (e) {
    model.close();
    throw e;
  }
  return { model, sidecar };
}
