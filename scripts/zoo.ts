/**
 * `deno task zoo`: trains the 19 networks of the MNIST case study on 1,000 and 60,000 images
 * and sets their test accuracy beside the study's. Resumes: finished runs are kept.
 * @module
 */
import { commonFlags, deviceFlag, parseFlags, runMain, seedFlag } from "../lib/cli.ts";
import { permissionsHelp } from "../lib/tasks.ts";
import { runZoo } from "../lib/zoo.ts";
import { ZOO_NETS } from "../lib/zoo/nets.ts";

const HELP = `usage: deno task zoo [options]
  --nets a,b,…     net ids (default all: ${ZOO_NETS.map((n) => n.id).join(",")})
  --quick          3 nets, 1 epoch on 500 and 2,000 images (for tests)
  --seed N         (default 0)
  --out DIR        (default out/zoo, or out/zoo-quick with --quick)
  --data-dir DIR   folder with the IDX files
  --device NAME    cpu, cuda or auto (default cpu)
Writes summary.json, summary.csv, accuracy.svg/png, curves-1k/60k.svg/png, report.html and one
checkpoint per run (checkpoints/zoo-<net>-<size>.safetensors) that noise-maps and fgsm can load.`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("seed", "out", "data-dir", "device"),
    nets: { type: "string" },
    quick: { type: "boolean" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("zoo")}`);
  const quick = values.quick ?? false;
  const summary = await runZoo({
    nets: values.nets?.split(",").map((s) => s.trim()),
    quick,
    seed: seedFlag(values.seed),
    outDir: values.out ?? (quick ? "out/zoo-quick" : "out/zoo"),
    dataDir: values["data-dir"],
    device: deviceFlag(values.device),
  });
  console.log("net    wna 1k  study 1k   wna 60k  study 60k");
  for (const e of summary.nets) {
    console.log(
      `${e.id.padEnd(6)} ${(e.accuracy1k?.toFixed(2) ?? "-").padStart(7)} ${
        e.reference1k.toFixed(2).padStart(9)
      } ${(e.accuracy60k?.toFixed(2) ?? "-").padStart(9)} ${
        e.reference60k.toFixed(2).padStart(10)
      }`,
    );
  }
});
