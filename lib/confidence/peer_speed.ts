/**
 * PyTorch's speed at the population's work, measured on this machine: the study's own loop
 * (`bench/peer.py`, task `lenet_epochs`) trains one model for one epoch at each batch size of the
 * plan, and the plan's total time one model at a time is extrapolated from those epochs.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import { encodeNpy } from "../npy.ts";
import { writeFileAtomic } from "../files.ts";
import type { Run } from "./grid.ts";

/** Where `deno task bench` installs the PyTorch peer. */
export const PEER_PYTHON = "bench/.venv/bin/python";

/** PyTorch's measured epochs and the models per hour they imply for the plan. */
export interface PeerSpeed {
  modelsPerHour: number;
  /** Seconds of one measured epoch, by batch size. */
  secondsPerEpoch: Record<string, number>;
  torch: string;
  threads: number;
}

/**
 * Times PyTorch on one epoch per batch size of `runs`.
 * @param runs the plan
 * @param train the training set the population used
 * @param dir a scratch folder for the arrays the peer reads
 * @returns the speed, or undefined when the peer is not installed (`deno task bench` installs it)
 */
export async function peerSpeed(
  runs: Run[],
  train: Dataset,
  dir: string,
): Promise<PeerSpeed | undefined> {
  if (!(await Deno.stat(PEER_PYTHON).then(() => true, () => false))) {
    console.log(
      `PyTorch's speed not measured: ${PEER_PYTHON} is missing (deno task bench installs it)`,
    );
    return undefined;
  }
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(`${dir}/images.npy`, encodeNpy(train.images, [train.count, 784]));
  await writeFileAtomic(`${dir}/labels.npy`, encodeNpy(train.labels, [train.count]));
  const batches = [...new Set(runs.map((r) => r.batchSize))].sort((a, b) => a - b);
  const sample = batches.map((b) => ({ ...runs.find((r) => r.batchSize === b)!, epochs: 1 }));
  const job = {
    task: "lenet_epochs",
    images: `${dir}/images.npy`,
    labels: `${dir}/labels.npy`,
    runs: sample,
  };
  const out = await new Deno.Command(PEER_PYTHON, {
    args: ["bench/peer.py", JSON.stringify(job)],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`PyTorch peer failed (exit ${out.code}); see its output above`);
  const result = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    seconds: number[];
    torch: string;
    threads: number;
  };
  const secondsPerEpoch = Object.fromEntries(batches.map((b, i) => [String(b), result.seconds[i]]));
  const total = runs.reduce((s, r) => s + r.epochs * secondsPerEpoch[String(r.batchSize)], 0);
  return {
    modelsPerHour: runs.length / total * 3600,
    secondsPerEpoch,
    torch: result.torch,
    threads: result.threads,
  };
}
