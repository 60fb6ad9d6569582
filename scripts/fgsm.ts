/**
 * `deno task fgsm`: FGSM robustness of several networks and the transfer matrix between them.
 * With no `--checkpoint`, trains (once, then cached) the six MNIST case-study nets.
 * @module
 */
import {
  commonFlags,
  deviceFlag,
  numberFlag,
  numberList,
  parseFlags,
  runMain,
  seedFlag,
} from "../lib/cli.ts";
import { permissionsHelp } from "../lib/tasks.ts";
import { DEFAULT_EPS, runFgsm } from "../lib/fgsm.ts";

const HELP = `usage: deno task fgsm [options]
  --checkpoint FILE    a .safetensors to attack (repeat for several; default: the six
                       case-study nets N1, N11, N2, N22, N3, N33, trained on first use)
  --eps a,b,…          (default ${DEFAULT_EPS.join(",")})
  --example-eps a,b,…  eps values of the adversarial-example grid (default 0.1,0.3)
  --test-images N      test images used (default all 10000)
  --epochs N           epochs of each case-study net (default 3)
  --train-limit N      train the case-study nets on the first N images only
  --seed N             (default 0)
  --out DIR            (default out/fgsm/<dataset>-<seed> or out/fgsm/custom-<seed>)
  --data-dir DIR       folder with the IDX files
  --device NAME        cpu, cuda or auto (default cpu)`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("seed", "out", "data-dir", "device"),
    checkpoint: { type: "string", multiple: true },
    eps: { type: "string" },
    "example-eps": { type: "string" },
    "test-images": { type: "string" },
    epochs: { type: "string" },
    "train-limit": { type: "string" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("fgsm")}`);
  const seed = seedFlag(values.seed);
  const checkpoints = values.checkpoint ?? [];
  for (const c of checkpoints) {
    await Deno.stat(c).catch(() => {
      throw new Error(`--checkpoint ${c}: no such file (train one with \`deno task train\`)`);
    });
  }
  const summary = await runFgsm({
    checkpoints,
    eps: numberList("eps", values.eps, DEFAULT_EPS),
    exampleEps: numberList("example-eps", values["example-eps"], [0.1, 0.3]),
    testImages: values["test-images"] === undefined
      ? undefined
      : numberFlag("test-images", values["test-images"], 0, { integer: true, min: 1 }),
    epochs: numberFlag("epochs", values.epochs, 3, { integer: true, min: 1 }),
    trainLimit: values["train-limit"] === undefined
      ? undefined
      : numberFlag("train-limit", values["train-limit"], 0, { integer: true, min: 10 }),
    seed,
    outDir: values.out ?? `out/fgsm/${checkpoints.length ? "custom" : "mnist"}-${seed}`,
    dataDir: values["data-dir"],
    device: deviceFlag(values.device),
  });
  const rows = Object.entries(summary.accuracy).map(([net, accs]) =>
    `${net.padEnd(8)} ${accs.map((a) => (100 * a).toFixed(1).padStart(6)).join("")}`
  );
  console.log(`white-box accuracy (%) at eps ${summary.eps.join(", ")}:\n${rows.join("\n")}`);
});
