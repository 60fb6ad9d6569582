/**
 * The classifier that judges a GAN: a zoo net trained on all 60,000 MNIST images. A GAN run
 * uses the zoo's own checkpoint when `deno task zoo` has made it, and otherwise trains the net
 * once with the zoo's protocol and keeps it under `checkpoints/`.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import type { Model } from "../../ffi/model.ts";
import { loadCheckpoint, saveCheckpoint } from "../checkpoint.ts";
import { ZOO_NETS, ZOO_SCHEDULE } from "../zoo/nets.ts";
import { discardPartialRun } from "../partial_run.ts";
import { trainNet } from "../zoo/train_net.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Where a GAN run looks for zoo net `id`: the zoo's checkpoint, then its own. */
export function classifierPaths(id: string): string[] {
  return [
    `out/zoo/checkpoints/zoo-${id}-60k.safetensors`,
    `checkpoints/zoo-${id}-60k.safetensors`,
  ];
}

/**
 * Loads zoo net `id` trained on 60k images, training it first (a few minutes) when no
 * checkpoint exists.
 * @returns the model (the caller closes it), its path and test accuracy
 */
export async function zooClassifier(o: {
  id: string;
  train: Dataset;
  test: Dataset;
  seed: number;
  device?: "cpu" | "cuda" | "auto";
  log: (line: string) => void;
}): Promise<{ model: Model; path: string; accuracy?: number }> {
  const [zooPath, ownPath] = classifierPaths(o.id);
  for (const path of [zooPath, ownPath]) {
    if (await exists(path)) {
      const { model, sidecar } = await loadCheckpoint(path, o.device);
      return { model, path, accuracy: sidecar.testAccuracy };
    }
  }
  const net = ZOO_NETS.find((n) => n.id === o.id);
  if (!net) {
    throw new RangeError(
      `classifier: no zoo net "${o.id}" (expected one of ${ZOO_NETS.map((n) => n.id).join(", ")})`,
    );
  }
  o.log(`no checkpoint of zoo net ${o.id} on 60k images: training it once (${ownPath})`);
  const partialDir = `${ownPath.replace(/\.safetensors$/, "")}.partial`;
  const { model, accuracy } = await trainNet({
    spec: net.spec,
    optimizer: net.optimizer,
    lr: net.lr,
    train: o.train,
    test: o.test,
    epochs: ZOO_SCHEDULE.full.epochs,
    batchSize: ZOO_SCHEDULE.batchSize,
    seed: o.seed,
    device: o.device,
    curveImages: ZOO_SCHEDULE.curveImages,
    label: `classifier: zoo net ${o.id}`,
    partialDir,
  });
  await Deno.mkdir("checkpoints", { recursive: true });
  await saveCheckpoint(model, ownPath, {
    model: net.spec.name,
    dataset: "mnist",
    classes: 10,
    epoch: ZOO_SCHEDULE.full.epochs - 1,
    epochs: ZOO_SCHEDULE.full.epochs,
    seed: o.seed,
    normalisation: { mean: o.train.mean, std: o.train.std },
    testAccuracy: accuracy,
    history: [],
    options: { optimizer: net.optimizer, lr: net.lr, batchSize: ZOO_SCHEDULE.batchSize },
  });
  await discardPartialRun(partialDir);
  return { model, path: ownPath, accuracy };
}
