/**
 * `deno task confidence`: the confidence study. Trains a population of LeNet-5s over the
 * study's hyperparameter grid (natively, many at once), keeps those with test accuracy >= 60%,
 * labels model-image pairs with their confidence ratio, correctness, data flow and baselines,
 * and trains RNN, LSTM and Transformer meta-networks on them. Resumes: finished populations,
 * labelled models and trained meta-networks are kept.
 * @module
 */
import { commonFlags, numberFlag, numberList, parseFlags, runMain, seedFlag } from "../lib/cli.ts";
import { permissionsHelp } from "../lib/tasks.ts";
import {
  DEFAULT_COPIES,
  DEFAULT_LABELLED,
  DEFAULT_META_EPOCHS,
  DEFAULT_TRAJECTORIES,
  META_SEEDS,
  runConfidence,
} from "../lib/confidence.ts";

const HELP = `usage: deno task confidence [options]
  --trajectories N  grid trajectories to sample, 4 runs each (default ${DEFAULT_TRAJECTORIES}: about an hour)
  --full            the whole grid: 8,192 runs (for a GPU or a long run)
  --label N         kept models whose pairs are labelled (default ${DEFAULT_LABELLED})
  --copies N        noisy copies per image (default ${DEFAULT_COPIES})
  --meta-epochs N   epochs of each meta-network (default ${DEFAULT_META_EPOCHS})
  --meta-seeds a,b  the meta-networks' seeds (default ${META_SEEDS.join(",")})
  --quick           8 models on 2,000 images, 20 copies, 1-epoch meta-networks (for tests)
  --seed N          keys the grid sample, the labelled models and the noise (default 0)
  --no-peer         skip timing PyTorch on a sample of the runs
  --out DIR         (default out/confidence, or out/confidence-quick with --quick)
  --data-dir DIR    folder with the IDX files
Writes models/ (kept checkpoints with their sidecars, ledger.json), pairs/ (<field>.npy,
models.json), metanets/ (each fit's test predictions), summary.json, the figures and report.html.`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("seed", "out", "data-dir"),
    trajectories: { type: "string" },
    full: { type: "boolean" },
    label: { type: "string" },
    copies: { type: "string" },
    "meta-epochs": { type: "string" },
    "meta-seeds": { type: "string" },
    quick: { type: "boolean" },
    "no-peer": { type: "boolean" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("confidence")}`);
  const quick = values.quick ?? false;
  const int = (name: string, value: string | undefined) =>
    value === undefined ? undefined : numberFlag(name, value, 0, { integer: true, min: 1 });
  const summary = await runConfidence({
    quick,
    trajectories: int("trajectories", values.trajectories),
    full: values.full,
    label: int("label", values.label),
    copies: int("copies", values.copies),
    metaEpochs: int("meta-epochs", values["meta-epochs"]),
    metaSeeds: numberList("meta-seeds", values["meta-seeds"], META_SEEDS),
    seed: seedFlag(values.seed),
    peer: !values["no-peer"],
    outDir: values.out ?? (quick ? "out/confidence-quick" : "out/confidence"),
    dataDir: values["data-dir"],
  });
  const { wna, pytorch, ratio } = summary.populationSpeed;
  console.log(
    `${summary.pairs} pairs from ${summary.models.labelled} models; ` +
      `${wna.modelsPerHour.toFixed(0)} models/hour` +
      (pytorch
        ? ` (PyTorch one by one: ${pytorch.modelsPerHour.toFixed(0)}, ${ratio!.toFixed(2)}x)`
        : ""),
  );
});
