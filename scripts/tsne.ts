/**
 * `deno task tsne`: a t-SNE map of a `.npy` matrix, or of the MNIST test set.
 * @module
 */
import {
  choiceFlag,
  commonFlags,
  datasetFlag,
  numberFlag,
  parseFlags,
  runMain,
  seedFlag,
} from "../lib/cli.ts";
import { permissionsHelp } from "../lib/tasks.ts";
import { runTsne, TSNE_DEFAULTS as D } from "../lib/tsne.ts";

const HELP = `usage: deno task tsne [options]
  --input F           a .npy matrix, n x d (or n x h x w images); default: the test set
  --labels F          a .npy of n class indices that colour the map
  --dataset NAME      mnist or fashion, when no --input (default ${D.dataset})
  --limit N           test images embedded when no --input (default ${D.limit})
  --perplexity P      (default 30)
  --iterations N      (default 1000, the first 250 with early exaggeration 12)
  --learning-rate R   in scikit-learn's convention (default auto: max(n / 48, 50))
  --pca-dims N        PCA to N dimensions first; 0: never (default 50)
  --method M          barnes-hut or exact (default barnes-hut)
  --init I            pca or random (default pca)
  --seed N            (default ${D.seed})
  --out DIR           (default out/tsne/<input name>)
  --data-dir DIR      folder with the IDX files
Writes embedding.npy (n x 2), embedding.svg/png, summary.json and report.html.`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("dataset", "seed", "out", "data-dir"),
    input: { type: "string" },
    labels: { type: "string" },
    limit: { type: "string" },
    perplexity: { type: "string" },
    iterations: { type: "string" },
    "learning-rate": { type: "string" },
    "pca-dims": { type: "string" },
    method: { type: "string" },
    init: { type: "string" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("tsne")}`);
  if (values.labels && !values.input) {
    throw new Error("--labels colours an --input matrix; the test set brings its own labels");
  }
  const dataset = datasetFlag(values.dataset, D.dataset);
  const optional = (name: string, v: string | undefined, integer: boolean, min: number) =>
    v === undefined ? undefined : numberFlag(name, v, min, { integer, min });
  const stem = values.input?.split("/").pop()?.replace(/\.npy$/, "") ?? dataset;
  await runTsne({
    input: values.input,
    labels: values.labels,
    dataset,
    limit: numberFlag("limit", values.limit, D.limit, { integer: true, min: 2 }),
    dataDir: values["data-dir"],
    outDir: values.out ?? `out/tsne/${stem}`,
    tsne: {
      perplexity: optional("perplexity", values.perplexity, false, 1),
      iterations: optional("iterations", values.iterations, true, 251),
      learningRate: optional("learning-rate", values["learning-rate"], false, 1e-6),
      pcaDims: optional("pca-dims", values["pca-dims"], true, 0),
      method: values.method === undefined
        ? undefined
        : choiceFlag("method", values.method, ["barnes-hut", "exact"] as const, "barnes-hut"),
      init: values.init === undefined
        ? undefined
        : choiceFlag("init", values.init, ["pca", "random"] as const, "pca"),
      seed: seedFlag(values.seed, D.seed),
    },
  });
});
