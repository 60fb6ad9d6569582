/**
 * `deno task backdoor`: poison MNIST with a corner patch trigger, train a poisoned and a clean
 * `smaller`, and check whether the classification images betray the trigger.
 * @module
 */
import { BACKDOOR_DEFAULTS as D, runBackdoor } from "../lib/backdoor.ts";
import { commonFlags, datasetFlag, numberFlag, parseFlags, runMain, seedFlag } from "../lib/cli.ts";
import { permissionsHelp } from "../lib/tasks.ts";

const HELP = `usage: deno task backdoor [options]
  --dataset NAME     mnist or fashion (default ${D.dataset})
  --target C         the class the trigger sends images to (default ${D.target})
  --fraction F       share of training images poisoned (default ${D.fraction})
  --patch N          side of the square trigger in pixels (default ${D.patch})
  --epochs N         training epochs of each model (default ${D.epochs})
  --samples N        uniform noise samples per model (default ${D.samples})
  --flag-ratio R     patch energy ratio that flags a class (default ${D.flagRatio})
  --seed N           (default ${D.seed})
  --out DIR          (default out/backdoor/<dataset>-t<target>-s<seed>); finished models are reused
  --data-dir DIR     folder with the IDX files`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("dataset", "seed", "out", "data-dir"),
    target: { type: "string" },
    fraction: { type: "string" },
    patch: { type: "string" },
    epochs: { type: "string" },
    samples: { type: "string" },
    "flag-ratio": { type: "string" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("backdoor")}`);
  const dataset = datasetFlag(values.dataset, D.dataset);
  const target = numberFlag("target", values.target, D.target, { integer: true, min: 0, max: 9 });
  const seed = seedFlag(values.seed, D.seed);
  const outDir = values.out ?? `out/backdoor/${dataset}-t${target}-s${seed}`;
  const s = await runBackdoor({
    outDir,
    dataset,
    target,
    seed,
    fraction: numberFlag("fraction", values.fraction, D.fraction, { min: 1e-6, max: 0.999 }),
    patch: numberFlag("patch", values.patch, D.patch, { integer: true, min: 1, max: 26 }),
    epochs: numberFlag("epochs", values.epochs, D.epochs, { integer: true, min: 1 }),
    samples: numberFlag("samples", values.samples, D.samples, { integer: true, min: 1 }),
    flagRatio: numberFlag("flag-ratio", values["flag-ratio"], D.flagRatio, { min: 0 }),
    dataDir: values["data-dir"],
  });
  const verdict = s.poisoned.flagged.includes(target) && s.clean.flagged.length === 0
    ? "the poisoned target is flagged and the clean model flags nothing"
    : "the detection did not single out the poisoned target alone";
  console.log(`${verdict}; report: ${outDir}/report.html`);
});
