/**
 * Importing a model trained elsewhere: a wna spec plus a PyTorch `state_dict` saved as
 * safetensors, turned into a wna checkpoint (weights and sidecar) that every analysis takes with
 * `--checkpoint`. The weights are checked against the spec by name and shape, with every
 * mismatch in one error (`native/src/model.rs`), and the model is scored on the test set.
 * @module
 */
import { classNames, type DatasetName, loadDataset } from "../data/datasets.ts";
import { Model } from "../ffi/model.ts";
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

/**
 * The normalisation and class names: given ones first, then the JSON beside the weights
 * (`{"mean", "std", "classes"}`, or a wna sidecar's `normalisation`).
 */
export async function importMeta(
  weights: string,
  given: Partial<ImportMeta> = {},
): Promise<ImportMeta> {
  let beside: Partial<ImportMeta> = {};
  const path = sidecarPath(weights);
  const found = await Deno.stat(path).then(() => true, () => false);
  if (found) {
    const j = await readJson(path, "normalisation file");
    const norm = (j.normalisation ?? j) as Partial<ImportMeta>;
    beside = { mean: norm.mean, std: norm.std, classes: j.classes as string[] | undefined };
  }
  const mean = given.mean ?? beside.mean;
  const std = given.std ?? beside.std;
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
 * @returns the checkpoint path and the imported model's test accuracy
 */
export async function importPytorch(
  o: ImportOptions,
): Promise<{ checkpoint: string; accuracy: number; classes: string[] }> {
  const spec = typeof o.spec === "string"
    ? (await readJson(o.spec, "spec")) as unknown as NetSpec
    : o.spec;
  const dataset = o.dataset ?? "mnist";
  const meta = await importMeta(o.weights, o.meta);
  using model = Model.create(spec, { mean: meta.mean, std: meta.std, device: o.device });
  const classes = meta.classes ?? classNames(dataset);
  const width = model.info().classes;
  if (classes.length !== width) {
    throw new RangeError(
      `import: ${classes.length} class names for a network with ${width} logits`,
    );
  }
  model.loadWeights(o.weights);
  const test = await loadDataset(dataset, "test", { dataDir: o.dataDir });
  const predicted = argmaxRows(await model.predict(test.images), width);
  const { accuracy } = perClassAccuracy(predicted, test.labels, width);
  await Deno.mkdir(o.out.replace(/\/[^/]*$/, "") || ".", { recursive: true });
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
    options: { importedFrom: o.weights },
  });
  return { checkpoint: o.out, accuracy, classes };
}
