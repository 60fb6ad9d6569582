/**
 * `deno task noise-maps`: the white-noise analysis of a trained network (Borji & Lin, ICLR 2020).
 * Trains the default model first when no checkpoint exists.
 * @module
 */
import { parseArgs } from "node:util";
import { MODEL_NAMES } from "../ffi/model.ts";
import { choiceFlag, numberFlag, numberList, runMain } from "../lib/cli.ts";
import { runNoiseMaps } from "../lib/noise_maps.ts";
import { trainModel } from "../lib/training.ts";

const HELP = `usage: deno task noise-maps [options]
  --model NAME         ${MODEL_NAMES.join(", ")} (default smaller)
  --dataset NAME       mnist or fashion (default mnist)
  --checkpoint FILE    analyse this .safetensors (its .json sidecar names model and dataset)
  --samples N          noise images (default 1000000)
  --batch-size N       (default 500)       --seed N (default 0)
  --noise KIND         uniform or gaussian (default uniform); --mean, --std for gaussian
  --threshold P        confidence threshold of the thresholded maps (default 0.9)
  --sta-samples N      samples feeding the STA (default min(samples, 100000))
  --gamma G            (default 0.5)       --gammas a,b,…  (default 0,0.1,…,1)
  --weights a,b,…      attack weights (default 0,0.2,…,1)
  --stimulate L:C:D    shift channel C of layer L by D stds (repeatable)
  --stim-samples N     noise samples per stimulation (default 20000)
  --eval-images N      test images for gamma, attack, stimulation (default 2000)
  --only sta           only the spike-triggered analysis
  --epochs N           epochs when a model must be trained first (default 5)
  --out DIR            (default out/noise-maps/<dataset>-<model>-<seed>)
  --data-dir DIR       folder with the IDX files
  --device NAME        cpu, cuda or auto (default cpu)`;

runMain(async () => {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string" },
      dataset: { type: "string" },
      checkpoint: { type: "string" },
      samples: { type: "string" },
      "batch-size": { type: "string" },
      seed: { type: "string" },
      noise: { type: "string" },
      mean: { type: "string" },
      std: { type: "string" },
      threshold: { type: "string" },
      "sta-samples": { type: "string" },
      gamma: { type: "string" },
      gammas: { type: "string" },
      weights: { type: "string" },
      stimulate: { type: "string", multiple: true },
      "stim-samples": { type: "string" },
      "eval-images": { type: "string" },
      only: { type: "string" },
      epochs: { type: "string" },
      out: { type: "string" },
      "data-dir": { type: "string" },
      device: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return console.log(HELP);
  const model = choiceFlag("model", values.model, MODEL_NAMES, "smaller");
  const dataset = choiceFlag("dataset", values.dataset, ["mnist", "fashion"] as const, "mnist");
  const seed = numberFlag("seed", values.seed, 0, { integer: true, min: 0 });
  const device = choiceFlag("device", values.device, ["cpu", "cuda", "auto"] as const, "cpu");
  const samples = numberFlag("samples", values.samples, 1_000_000, { integer: true, min: 1 });
  const gammas = numberList("gammas", values.gammas, Array.from({ length: 11 }, (_, i) => i / 10));
  if (gammas.some((g) => g < 0 || g > 1)) {
    throw new RangeError(`invalid --gammas: each must be in [0, 1]`);
  }
  const only = choiceFlag("only", values.only, ["sta"] as const, undefined as unknown as "sta");
  // The checkpoint: given, found from an earlier run, or trained now.
  let checkpoint = values.checkpoint;
  if (!checkpoint) {
    const dir = `checkpoints/${dataset}-${model}-s${seed}`;
    checkpoint = `${dir}/best.safetensors`;
    try {
      await Deno.stat(checkpoint);
    } catch {
      console.log(`no checkpoint at ${checkpoint}: training ${model} on ${dataset} first`);
      await trainModel({
        model,
        dataset,
        seed,
        outDir: dir,
        dataDir: values["data-dir"],
        device,
        epochs: numberFlag("epochs", values.epochs, 5, { integer: true, min: 1 }),
      });
    }
  }
  const outDir = values.out ?? `out/noise-maps/${dataset}-${model}-${seed}`;
  const summary = await runNoiseMaps({
    checkpoint,
    outDir,
    samples,
    seed,
    device,
    batchSize: numberFlag("batch-size", values["batch-size"], 500, {
      integer: true,
      min: 1,
      max: 65536,
    }),
    noise: choiceFlag("noise", values.noise, ["uniform", "gaussian"] as const, "uniform"),
    noiseMean: numberFlag("mean", values.mean, 0.5),
    noiseStd: numberFlag("std", values.std, 0.25, { min: 1e-6 }),
    threshold: numberFlag("threshold", values.threshold, 0.9, { min: 0, max: 1 }),
    staSamples: values["sta-samples"] === undefined
      ? undefined
      : numberFlag("sta-samples", values["sta-samples"], 0, { integer: true, min: 0 }),
    gamma: numberFlag("gamma", values.gamma, 0.5, { min: 0, max: 1 }),
    gammas,
    weights: numberList("weights", values.weights, [0, 0.2, 0.4, 0.6, 0.8, 1]),
    stimulate: values.stimulate,
    stimSamples: numberFlag("stim-samples", values["stim-samples"], 20_000, {
      integer: true,
      min: 1,
    }),
    evalImages: numberFlag("eval-images", values["eval-images"], 2000, { integer: true, min: 1 }),
    staOnly: only === "sta",
    dataDir: values["data-dir"],
  });
  console.log(`bias histogram: ${summary.classCounts.join(" ")}`);
  if (!Number.isNaN(summary.templateAccuracy)) {
    console.log(
      `template classifier: ${(100 * summary.templateAccuracy).toFixed(1)}% (${
        summary.templateRatioToChance.toFixed(1)
      }x chance)`,
    );
  }
  console.log(`report: ${outDir}/report.html`);
});
