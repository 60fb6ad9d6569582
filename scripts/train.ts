/**
 * `deno task train --model smaller --dataset mnist`: trains a model with checkpoints, history
 * and the final test accuracy.
 * @module
 */
import { modelNames } from "../ffi/model.ts";
import {
  choiceFlag,
  commonFlags,
  datasetFlag,
  deviceFlag,
  modelFlag,
  numberFlag,
  numberList,
  parseFlags,
  runMain,
  seedFlag,
} from "../lib/cli.ts";
import { permissionsHelp } from "../lib/tasks.ts";
import { defaultBatchSize, trainModel } from "../lib/training.ts";

const help = () =>
  `usage: deno task train [options]
  --model NAME        ${modelNames().join(", ")} (default smaller)
  --dataset NAME      mnist or fashion (default mnist)
  --epochs N          (default 5)       --batch-size N   (default 128; larger 64)
  --lr-max X          (default 0.002)   --lr-min X       (default 1e-5)
  --weight-decay X    (default 1e-4)    --patience N     (default 3)
  --optimizer NAME    adam or sgd (default adam for all but n2)
  --seed N            (default 0)       --limit N        use the first N training images
  --blocks a,b,c,d    blocks per stage of larger (default 2,1,3,2)
  --out DIR           (default checkpoints/<dataset>-<model>-s<seed>)
  --resume            continue from the last checkpoint in --out
  --data-dir DIR      folder with the IDX files
  --device NAME       cpu, cuda or auto (default cpu)`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("model", "dataset", "seed", "out", "data-dir", "device"),
    epochs: { type: "string" },
    "batch-size": { type: "string" },
    "lr-max": { type: "string" },
    "lr-min": { type: "string" },
    "weight-decay": { type: "string" },
    patience: { type: "string" },
    optimizer: { type: "string" },
    limit: { type: "string" },
    blocks: { type: "string" },
    resume: { type: "boolean" },
  });
  if (values.help) return console.log(`${help()}\n${permissionsHelp("train")}`);
  const model = modelFlag(values.model);
  const dataset = datasetFlag(values.dataset);
  const seed = seedFlag(values.seed);
  await trainModel({
    model,
    dataset,
    seed,
    epochs: numberFlag("epochs", values.epochs, 5, { integer: true, min: 1 }),
    batchSize: numberFlag("batch-size", values["batch-size"], defaultBatchSize(model), {
      integer: true,
      min: 2,
    }),
    lrMax: numberFlag("lr-max", values["lr-max"], 2e-3, { min: 0 }),
    lrMin: numberFlag("lr-min", values["lr-min"], 1e-5, { min: 0 }),
    weightDecay: numberFlag("weight-decay", values["weight-decay"], 1e-4, { min: 0 }),
    patience: numberFlag("patience", values.patience, 3, { integer: true, min: 1 }),
    optimizer: choiceFlag(
      "optimizer",
      values.optimizer,
      ["adam", "sgd"] as const,
      model === "n2" ? "sgd" : "adam",
    ),
    limit: values.limit === undefined
      ? undefined
      : numberFlag("limit", values.limit, 0, { integer: true, min: 10 }),
    blocks: values.blocks === undefined ? undefined : numberList("blocks", values.blocks, []),
    outDir: values.out ?? `checkpoints/${dataset}-${model}-s${seed}`,
    resume: values.resume ?? false,
    dataDir: values["data-dir"],
    device: deviceFlag(values.device),
  });
});
