/**
 * `deno task noise-maps`: the white-noise analysis of a trained network (Borji & Lin, ICLR 2020).
 * Trains the default model first when no checkpoint exists.
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
import { NOISE_MAPS_DEFAULTS as D, runNoiseMaps } from "../lib/noise_maps.ts";
import { checkpointFromOnnx, modelStem } from "../lib/import.ts";
import { defaultCheckpoint } from "../lib/training.ts";

const list = (v: readonly number[]) => v.join(",");
const help = () =>
  `usage: deno task noise-maps [options]
  --model NAME         ${modelNames().join(", ")} (default smaller)
  --dataset NAME       mnist or fashion (default mnist)
  --checkpoint FILE    analyse this .safetensors (its .json sidecar names model and dataset)
  --onnx FILE          analyse this ONNX classifier (imported into <out>/model/ first)
  --input-mean M, --input-std S, --classes a,b,…
                       the ONNX model's input normalisation and class names (default: the
                       JSON beside the file, {"mean", "std", "classes"}, else the dataset's
                       class names; a graph that normalises its own input needs none)
  --noise KIND         data, uniform or gaussian (default ${D.noise}): data is Gaussian with the
                       training set's mean and covariance, its contrast calibrated for the most
                       even bias histogram among ${list(D.contrasts)}
  --contrast C         a fixed contrast of data noise instead of the calibrated one
  --mean M, --std S    gaussian noise (default ${D.gaussianMean}, ${D.gaussianStd})
  --samples N          noise images of the analysis (default ${D.samples})
  --raw-samples N      uniform images of the raw bias histogram and the STA (default ${D.rawSamples})
  --batch-size N       (default ${D.batchSize})       --seed N (default ${D.seed})
  --threshold P        confidence threshold of the thresholded maps (default ${D.threshold})
  --sta-samples N      samples feeding the STA (default min(raw samples, ${D.staSamplesCap}))
  --gamma G            (default ${D.gamma})       --gammas a,b,…  (default ${list(D.gammas)})
  --weights a,b,…      attack weights (default ${list(D.weights)})
  --stim-deltas a,b,…  microstimulation deltas in stds (default ${list(D.stimDeltas)})
  --stim-samples N     noise samples per microstimulation point (default ${D.stimSamples})
  --eval-images N      test images for gamma, attack, stimulation (default ${D.evalImages})
  --only sta           only the spike-triggered analysis
  --epochs N           epochs when a model must be trained first (default ${D.epochs})
  --out DIR            (default out/noise-maps/<dataset>-<model>-<seed>)
  --data-dir DIR       folder with the IDX files
  --device NAME        cpu, cuda or auto (default cpu)`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("model", "dataset", "checkpoint", "seed", "out", "data-dir", "device"),
    onnx: { type: "string" },
    "input-mean": { type: "string" },
    "input-std": { type: "string" },
    classes: { type: "string" },
    noise: { type: "string" },
    contrast: { type: "string" },
    mean: { type: "string" },
    std: { type: "string" },
    samples: { type: "string" },
    "raw-samples": { type: "string" },
    "batch-size": { type: "string" },
    threshold: { type: "string" },
    "sta-samples": { type: "string" },
    gamma: { type: "string" },
    gammas: { type: "string" },
    weights: { type: "string" },
    "stim-deltas": { type: "string" },
    "stim-samples": { type: "string" },
    "eval-images": { type: "string" },
    only: { type: "string" },
    epochs: { type: "string" },
  });
  if (values.help) return console.log(`${help()}\n${permissionsHelp("noise-maps")}`);
  const model = modelFlag(values.model);
  const dataset = datasetFlag(values.dataset);
  const seed = seedFlag(values.seed, D.seed);
  const device = deviceFlag(values.device);
  const gammas = numberList("gammas", values.gammas, [...D.gammas]);
  if (gammas.some((g) => g < 0 || g > 1)) {
    throw new RangeError(`invalid --gammas: each must be in [0, 1]`);
  }
  const only = values.only === undefined
    ? undefined
    : choiceFlag("only", values.only, ["sta"] as const, "sta");
  const whole = (name: string, v: string | undefined, fallback: number) =>
    numberFlag(name, v, fallback, { integer: true, min: 1 });
  // Every flag is checked before any training or analysis starts.
  const run = {
    samples: whole("samples", values.samples, D.samples),
    rawSamples: whole("raw-samples", values["raw-samples"], D.rawSamples),
    batchSize: numberFlag("batch-size", values["batch-size"], D.batchSize, {
      integer: true,
      min: 1,
      max: 65536,
    }),
    noise: choiceFlag("noise", values.noise, ["data", "uniform", "gaussian"] as const, D.noise),
    contrast: values.contrast === undefined
      ? undefined
      : numberFlag("contrast", values.contrast, 1, { min: 1e-6 }),
    noiseMean: numberFlag("mean", values.mean, D.gaussianMean),
    noiseStd: numberFlag("std", values.std, D.gaussianStd, { min: 1e-6 }),
    threshold: numberFlag("threshold", values.threshold, D.threshold, { min: 0, max: 1 }),
    staSamples: values["sta-samples"] === undefined
      ? undefined
      : numberFlag("sta-samples", values["sta-samples"], 0, { integer: true, min: 0 }),
    gamma: numberFlag("gamma", values.gamma, D.gamma, { min: 0, max: 1 }),
    gammas,
    weights: numberList("weights", values.weights, [...D.weights]),
    stimDeltas: numberList("stim-deltas", values["stim-deltas"], [...D.stimDeltas]),
    stimSamples: whole("stim-samples", values["stim-samples"], D.stimSamples),
    evalImages: whole("eval-images", values["eval-images"], D.evalImages),
    staOnly: only === "sta",
    dataDir: values["data-dir"],
    seed,
    device,
  };
  const epochs = whole("epochs", values.epochs, D.epochs);
  if (values.onnx && values.checkpoint) {
    throw new Error("noise-maps: give --checkpoint or --onnx, not both");
  }
  const onnxStem = values.onnx && modelStem(values.onnx);
  const outDir = values.out ??
    `out/noise-maps/${dataset}-${onnxStem ? `onnx-${onnxStem}` : model}-${seed}`;
  // The checkpoint: given, imported from ONNX, found from an earlier run, or trained now.
  const checkpoint = values.checkpoint ??
    (values.onnx
      ? await checkpointFromOnnx(values.onnx, outDir, {
        meta: {
          mean: values["input-mean"] === undefined
            ? undefined
            : numberFlag("input-mean", values["input-mean"], 0),
          std: values["input-std"] === undefined
            ? undefined
            : numberFlag("input-std", values["input-std"], 1, { min: 1e-12 }),
          classes: values.classes?.split(","),
        },
        dataset,
        dataDir: run.dataDir,
        device,
      })
      : await defaultCheckpoint({ model, dataset, seed, dataDir: run.dataDir, device, epochs }));
  const summary = await runNoiseMaps({ checkpoint, outDir, ...run });
  console.log(
    `bias under uniform noise: ${summary.classCounts.join(" ")} (of ${summary.rawSamples})`,
  );
  if (!Number.isNaN(summary.templateAccuracy)) {
    console.log(
      `template classifier: ${(100 * summary.templateAccuracy).toFixed(1)}% (${
        summary.templateRatioToChance.toFixed(1)
      }x chance)`,
    );
  }
  console.log(`report: ${outDir}/report.html`);
});
