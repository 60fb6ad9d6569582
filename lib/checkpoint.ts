/**
 * Checkpoints: `.safetensors` weights beside a JSON sidecar of the same name.
 * @module
 */
import { Model, type ModelName } from "../ffi/model.ts";
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
  model: ModelName;
  dataset: string;
  classes: number;
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
  sidecar: Omit<Sidecar, "libraryVersion" | "parameters">,
): Promise<void> {
  model.saveWeights(weights);
  await writeJsonAtomic(sidecarPath(weights), {
    ...sidecar,
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

/** Loads a checkpoint into a new model. */
export async function loadCheckpoint(
  weights: string,
  device?: "cpu" | "cuda" | "auto",
): Promise<{ model: Model; sidecar: Sidecar }> {
  const sidecar = await readSidecar(weights);
  const model = Model.create(sidecar.model, {
    classes: sidecar.classes,
    blocks: sidecar.blocks,
    mean: sidecar.normalisation.mean,
    std: sidecar.normalisation.std,
    device,
  });
  try {
    model.loadWeights(weights);
  } catch (e) {
    model.close();
    throw e;
  }
  return { model, sidecar };
}
