/**
 * Importing a model trained elsewhere, turned into a wna checkpoint (weights and sidecar) that
 * every analysis takes with `--checkpoint`:
 * - a wna spec plus a PyTorch `state_dict` saved as safetensors, checked against the spec by
 *   name and shape with every mismatch in one error (`native/src/model.rs`);
 * - an ONNX file, converted to a spec and weights natively (`native/src/onnx/`).
 * Either way the model is scored on the test set before it is written.
 * @module
 */
import { classNames, type DatasetName, loadDataset } from "../data/datasets.ts";
import { Model } from "../ffi/model.ts";
import { convertOnnx } from "../ffi/onnx.ts";
import type { NetSpec } from "../ffi/spec.ts";
import { saveCheckpoint, sidecarPath } from "./checkpoint.ts";
import { argmaxRows, perClassAccuracy } from "./metrics.ts";

/** The input normalisation and class names of an imported model. */
export interface ImportMeta {
  mean: number;
  std: number;
  /** One name per logit; the dataset's when absent. */
  classes?: string[];
}

/** Options of {@linkcode importPytorch}. */
export interface ImportOptions {
  /** A `.json` file holding a {@linkcode NetSpec}, or the spec itself. */
  spec: string | NetSpec;
  /** The `.safetensors` state dict. */
  weights: string;
  /** Normalisation and class names; read from the JSON beside the weights when absent. */
  meta?: Partial<ImportMeta>;
  /** The dataset the model classifies: its test set scores the import. @default "mnist" */
  dataset?: DatasetName;
  /** Where the wna checkpoint is written (`.safetensors`, plus its `.json` sidecar). */
  out: string;
  dataDir?: string;
  device?: "cpu" | "cuda" | "auto";
}

async function readJson(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    throw new Error(`import: cannot read the ${what} ${path}`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new SyntaxError(`import: the ${what} ${path} is not valid JSON`, { cause });
  }
}

/** Options of {@linkcode importOnnx}. */
export interface OnnxImportOptions {
  /** The `.onnx` file. */
  onnx: string;
  /**
   * Normalisation and class names; read from the JSON beside the file when absent. A graph that
   * normalises its own input needs none: its Sub/Div nodes are folded in.
   */
  meta?: Partial<ImportMeta>;
  /** @default "mnist" */
  dataset?: DatasetName;
  /** Where the wna checkpoint is written (`.safetensors`, plus its `.json` sidecar). */
  out: string;
  dataDir?: string;
  device?: "cpu" | "cuda" | "auto";
}

/** What an import wrote. */
export interface ImportResult {
  checkpoint: string;
  /** The imported model's accuracy on the dataset's test set. */
  accuracy: number;
  classes: string[];
  /** What the conversion left out or changed (ONNX only). */
  notes: string[];
}

/** A model file's name without its folder and its `.onnx` or `.safetensors` extension. */
export function modelStem(file: string): string {
  return file.split("/").pop()!.replace(/\.(onnx|safetensors)$/, "");
}

/** Creates the folder a checkpoint is written to. */
async function makeParent(path: string): Promise<void> {
  await Deno.mkdir(path.replace(/\/[^/]*$/, "") || ".", { recursive: true });
}

/** The JSON beside a model file: `net.safetensors` or `net.onnx` has `net.json`. */
export function metaPath(file: string): string {
  return sidecarPath(file.replace(/\.onnx$/, ""));
}

/**
 * The normalisation and class names: given ones first, then the JSON beside the weights
 * (`{"mean", "std", "classes"}`, or a wna sidecar's `normalisation`), then `fallback`.
 */
export async function importMeta(
  weights: string,
  given: Partial<ImportMeta> = {},
  fallback: Partial<ImportMeta> = {},
): Promise<ImportMeta> {
  let beside: Partial<ImportMeta> = {};
  const path = metaPath(weights);
  const found = await Deno.stat(path).then(() => true, () => false);
  if (found) {
    const j = await readJson(path, "normalisation file");
    const norm = (j.normalisation ?? j) as Partial<ImportMeta>;
    beside = { mean: norm.mean, std: norm.std, classes: j.classes as string[] | undefined };
  }
  const mean = given.mean ?? beside.mean ?? fallback.mean;
  const std = given.std ?? beside.std ?? fallback.std;
  if (typeof mean !== "number" || typeof std !== "number") {
    throw new Error(
      `import: the input normalisation of ${weights} is unknown. Give --mean and --std (the ` +
        "values your transforms.Normalize used; 0 and 1 if none), or write " +
        `{"mean": 0.1307, "std": 0.3081, "classes": [...]} to ${path}`,
    );
  }
  return { mean, std, classes: given.classes ?? beside.classes };
}

/**
 * Checks a PyTorch state dict against a spec, scores it on the test set, and writes it as a
 * wna checkpoint.
 * @param o spec, weights, normalisation, dataset and output path
 * @returns the checkpoint path, the imported model's test accuracy and its class names
 */
export async function importPytorch(o: ImportOptions): Promise<ImportResult> {
  const spec = typeof o.spec === "string"
    ? (await readJson(o.spec, "spec")) as unknown as NetSpec
    : o.spec;
  const meta = await importMeta(o.weights, o.meta);
  return await checkAndSave(spec, o.weights, meta, o, { importedFrom: o.weights });
}

/**
 * Converts an ONNX classifier to a wna spec and weights, scores it on the test set, and writes
 * it as a wna checkpoint. The graph's own input normalisation (Sub/Div by constants) is folded
 * into the checkpoint's, and a final softmax is left out (wna works on logits).
 * @param o the ONNX file, normalisation, dataset and output path
 * @returns the checkpoint path, test accuracy, class names and what the conversion left out
 */
export async function importOnnx(o: OnnxImportOptions): Promise<ImportResult> {
  await makeParent(o.out); // the converted weights are written there first

  const converted = `${o.out}.converted`;
  const c = convertOnnx(o.onnx, converted, modelStem(o.onnx));
  try {
    const normalisesItself = c.shift !== 0 || c.scale !== 1;
    const meta = await importMeta(o.onnx, o.meta, normalisesItself ? { mean: 0, std: 1 } : {});
    // The user's (p - mean) / std, then the graph's (x - shift) / scale, as one normalisation.
    const composed = { ...meta, mean: meta.mean + c.shift * meta.std, std: meta.std * c.scale };
    const result = await checkAndSave(c.spec, converted, composed, o, {
      importedFrom: o.onnx,
      onnx: { producer: c.producer, opset: c.opset, notes: c.notes },
    });
    return { ...result, notes: c.notes };
  } finally {
    await Deno.remove(converted).catch(() => {});
  }
}

/** Loads `weights` into a model of `spec`, scores it on the test set, and saves the checkpoint. */
async function checkAndSave(
  spec: NetSpec,
  weights: string,
  meta: ImportMeta,
  o: { dataset?: DatasetName; out: string; dataDir?: string; device?: "cpu" | "cuda" | "auto" },
  options: Record<string, unknown>,
): Promise<ImportResult> {
  const dataset = o.dataset ?? "mnist";
  using model = Model.create(spec, { mean: meta.mean, std: meta.std, device: o.device });
  const classes = meta.classes ?? classNames(dataset);
  const width = model.info().classes;
  if (classes.length !== width) {
    throw new RangeError(
      `import: ${classes.length} class names for a network with ${width} logits`,
    );
  }
  model.loadWeights(weights);
  const test = await loadDataset(dataset, "test", { dataDir: o.dataDir });
  const predicted = argmaxRows(await model.predict(test.images), width);
  const { accuracy } = perClassAccuracy(predicted, test.labels, width);
  await makeParent(o.out);
  await saveCheckpoint(model, o.out, {
    model: spec.name,
    dataset,
    classes: width,
    classNames: classes,
    epoch: 0,
    epochs: 0,
    seed: 0,
    normalisation: { mean: meta.mean, std: meta.std },
    testAccuracy: accuracy,
    history: [],
    options,
  });
  return { checkpoint: o.out, accuracy, classes, notes: [] };
}

/**
 * Imports an ONNX file for an analysis run: the checkpoint goes to `<outDir>/model/`, and the
 * import's test accuracy and notes are printed.
 * @returns the checkpoint path
 */
export async function checkpointFromOnnx(
  onnx: string,
  outDir: string,
  o: Omit<OnnxImportOptions, "onnx" | "out"> = {},
): Promise<string> {
  const r = await importOnnx({ ...o, onnx, out: `${outDir}/model/${modelStem(onnx)}.safetensors` });
  console.log(
    `imported ${onnx}: test accuracy ${(100 * r.accuracy).toFixed(2)}%` +
      r.notes.map((n) => `; ${n}`).join(""),
  );
  return r.checkpoint;
}
