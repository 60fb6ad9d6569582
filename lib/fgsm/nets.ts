/**
 * The nets FGSM attacks: the six MNIST case-study nets, trained once and cached, or the user's
 * checkpoints, labelled and checked to share one dataset.
 * @module
 */
import type { ModelName } from "../../ffi/model.ts";
import { readSidecar } from "../checkpoint.ts";
import { trainModel } from "../training.ts";
import type { FgsmOptions } from "./options.ts";

/** The MNIST case-study nets, each trained twice with different seeds. */
export const CASE_STUDY_NETS: { label: string; model: ModelName; seedOffset: number }[] = [
  { label: "N1", model: "n1", seedOffset: 0 },
  { label: "N11", model: "n1", seedOffset: 1 },
  { label: "N2", model: "n2", seedOffset: 0 },
  { label: "N22", model: "n2", seedOffset: 1 },
  { label: "N3", model: "n3", seedOffset: 0 },
  { label: "N33", model: "n3", seedOffset: 1 },
];

/** Short unique labels for checkpoints: the file's stem, or its folder for best/model. */
export function uniqueLabels(paths: string[]): string[] {
  const stem = (p: string) => {
    const parts = p.replace(/\.safetensors$/, "").split("/");
    const file = parts.pop()!;
    return ["best", "model"].includes(file) && parts.length ? parts.pop()! : file;
  };
  const labels = paths.map(stem);
  return labels.map((l, i) => labels.indexOf(l) === i ? l : `${l}#${i + 1}`);
}

/** The case-study net's training options: what {@linkcode caseStudyCheckpoint} needs. */
export type CaseStudyTraining = Pick<
  FgsmOptions,
  "epochs" | "trainLimit" | "cacheDir" | "dataDir" | "device" | "progress" | "log"
>;

/**
 * Trains (or reuses) one case-study net, cached under a folder that names every setting that
 * changes it, so that a quick run never stands in for a full one.
 * @returns the path of its best checkpoint
 */
export async function caseStudyCheckpoint(
  net: (typeof CASE_STUDY_NETS)[number],
  o: CaseStudyTraining,
  dataset: string,
  seed: number,
): Promise<string> {
  const cacheDir = o.cacheDir ?? "checkpoints/fgsm";
  const limit = o.trainLimit ? `-n${o.trainLimit}` : "";
  const dir = `${cacheDir}/${dataset}-${net.label}-s${seed}-e${o.epochs ?? 3}${limit}`;
  const best = `${dir}/best.safetensors`;
  const cached = await readSidecar(best).then(() => true, () => false);
  if (!cached) {
    (o.log ?? console.log)(`training ${net.label} (${net.model}), a case-study net of FGSM`);
    await trainModel({
      model: net.model,
      dataset,
      epochs: o.epochs ?? 3,
      seed: seed + net.seedOffset,
      optimizer: net.model === "n2" ? "sgd" : "adam",
      lrMax: net.model === "n2" ? 0.05 : 1e-3,
      limit: o.trainLimit,
      outDir: dir,
      dataDir: o.dataDir,
      device: o.device,
      progress: o.progress,
      log: o.log,
    });
  }
  return best;
}

/** Trains (or reuses) the six case-study nets; returns their best checkpoints. */
export async function caseStudyCheckpoints(o: FgsmOptions, dataset: string, seed: number) {
  const out: string[] = [];
  for (const net of CASE_STUDY_NETS) out.push(await caseStudyCheckpoint(net, o, dataset, seed));
  return out;
}

/** The checkpoints to attack, their labels and their one dataset. */
export async function resolveNets(
  o: FgsmOptions,
  seed: number,
): Promise<{ paths: string[]; labels: string[]; dataset: string }> {
  const given = o.checkpoints ?? [];
  if (given.length === 0) {
    const dataset = o.dataset ?? "mnist";
    const paths = await caseStudyCheckpoints(o, dataset, seed);
    return { paths, labels: CASE_STUDY_NETS.map((n) => n.label), dataset };
  }
  const datasets = new Set(
    await Promise.all(given.map(async (p) => (await readSidecar(p)).dataset)),
  );
  if (datasets.size > 1) {
    throw new Error(
      `fgsm: the checkpoints were trained on different datasets (${
        [...datasets].join(", ")
      }); pass checkpoints of one dataset`,
    );
  }
  return { paths: given, labels: uniqueLabels(given), dataset: [...datasets][0] };
}
