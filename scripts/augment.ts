/**
 * `deno task augment`: the augmentation study T1-T9 on 1,000 MNIST images, nets 1 and 2 of the
 * zoo, several seeds, beside the study's Table 1. Resumes: finished runs are kept.
 * @module
 */
import { commonFlags, deviceFlag, numberList, parseFlags, runMain } from "../lib/cli.ts";
import { permissionsHelp } from "../lib/tasks.ts";
import { runAugment } from "../lib/augment.ts";

const HELP = `usage: deno task augment [options]
  --seeds a,b,…    seeds per transform and net (default 0,1,2)
  --quick          net 1, one seed, 1 epoch on 500 images (for tests)
  --out DIR        (default out/augment, or out/augment-quick with --quick)
  --data-dir DIR   folder with the IDX files
  --device NAME    cpu, cuda or auto (default cpu)
Writes summary.json ({transform, net, accuracy, improvement, ...}), samples.svg/png,
improvement.svg/png and report.html.`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("out", "data-dir", "device"),
    seeds: { type: "string" },
    quick: { type: "boolean" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("augment")}`);
  const quick = values.quick ?? false;
  const entries = await runAugment({
    seeds: numberList("seeds", values.seeds, [0, 1, 2]),
    quick,
    outDir: values.out ?? (quick ? "out/augment-quick" : "out/augment"),
    dataDir: values["data-dir"],
    device: deviceFlag(values.device),
  });
  console.log("T    net  accuracy   ±sd   impr.  study impr.");
  for (const e of entries) {
    console.log(
      `${e.transform.padEnd(4)} ${e.net.padEnd(4)} ${e.accuracy.toFixed(2).padStart(8)} ${
        e.spread.toFixed(2).padStart(5)
      } ${e.improvement.toFixed(2).padStart(7)} ${
        e.reference?.improvement.toFixed(2).padStart(12) ?? ""
      }`,
    );
  }
});
