/**
 * `deno task visualise`: attributions and activation maximisation of a checkpoint, beside its
 * white-noise classification images.
 * @module
 */
import { commonFlags, datasetFlag, numberFlag, parseFlags, runMain, seedFlag } from "../lib/cli.ts";
import { permissionsHelp } from "../lib/tasks.ts";
import { defaultCheckpoint } from "../lib/training.ts";
import { runVisualise, VISUALISE_DEFAULTS as D } from "../lib/visualise.ts";

const HELP = `usage: deno task visualise [options]
  --checkpoint F      a .safetensors checkpoint (default: smaller on the dataset, trained if missing)
  --dataset NAME      mnist or fashion, for the default checkpoint (default mnist)
  --feature-steps N   activation-maximisation steps (default ${D.featureSteps})
  --noise-samples N   data-noise samples of the classification images (default ${D.noiseSamples})
  --seed N            (default ${D.seed})
  --out DIR           (default out/visualise/<checkpoint folder>)
  --data-dir DIR      folder with the IDX files
Writes attributions.svg/png, class-images-vs-noise-maps.svg/png, channels-<layer>.svg/png, the
arrays as .npy, summary.json and report.html.`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("checkpoint", "dataset", "seed", "out", "data-dir"),
    "feature-steps": { type: "string" },
    "noise-samples": { type: "string" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("visualise")}`);
  const seed = seedFlag(values.seed, D.seed);
  const dataset = datasetFlag(values.dataset);
  const checkpoint = values.checkpoint ??
    await defaultCheckpoint({ model: "smaller", dataset, seed, dataDir: values["data-dir"] });
  const run = checkpoint.split("/").slice(-2, -1)[0] ?? "run";
  await runVisualise({
    checkpoint,
    outDir: values.out ?? `out/visualise/${run}`,
    dataDir: values["data-dir"],
    seed,
    featureSteps: numberFlag("feature-steps", values["feature-steps"], D.featureSteps, {
      integer: true,
      min: 1,
    }),
    noiseSamples: numberFlag("noise-samples", values["noise-samples"], D.noiseSamples, {
      integer: true,
      min: 1,
    }),
  });
});
