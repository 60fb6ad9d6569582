/**
 * `deno task import`: a PyTorch state dict (safetensors) plus a wna spec, checked and written as
 * a wna checkpoint that every analysis takes with `--checkpoint`.
 * @module
 */
import { DATASET_NAMES } from "../data/datasets.ts";
import { choiceFlag, numberFlag, parseFlags, runMain } from "../lib/cli.ts";
import { importPytorch } from "../lib/import.ts";
import { permissionsHelp } from "../lib/tasks.ts";

const HELP = `usage: deno task import --spec net.json --weights model.safetensors [options]
  --spec F         the network as a wna spec (JSON), layer names matching your module names
  --weights F      the state dict: safetensors.torch.save_file(model.state_dict(), F)
  --mean M --std S the input normalisation your transforms used (default: from the JSON
                   beside the weights, {"mean": ..., "std": ..., "classes": [...]})
  --classes a,b,…  one name per logit (default: that JSON's, else the dataset's)
  --dataset NAME   ${DATASET_NAMES.join(" or ")}: its test set scores the import (default mnist)
  --out DIR        where the wna checkpoint <weights name>.safetensors and its sidecar go
                   (default checkpoints/imported)
  --data-dir DIR   folder with the IDX files
Then: deno task noise-maps --checkpoint <out> (and fgsm, sta, visualise).`;

runMain(async () => {
  const { values } = parseFlags({
    spec: { type: "string" },
    weights: { type: "string" },
    mean: { type: "string" },
    std: { type: "string" },
    classes: { type: "string" },
    dataset: { type: "string" },
    out: { type: "string" },
    "data-dir": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("import")}`);
  if (!values.spec || !values.weights) {
    throw new Error(`import: --spec and --weights are both needed\n${HELP}`);
  }
  const stem = values.weights.split("/").pop()!.replace(/\.safetensors$/, "");
  const { checkpoint, accuracy } = await importPytorch({
    spec: values.spec,
    weights: values.weights,
    meta: {
      mean: values.mean === undefined ? undefined : numberFlag("mean", values.mean, 0),
      std: values.std === undefined ? undefined : numberFlag("std", values.std, 1, { min: 1e-12 }),
      classes: values.classes?.split(","),
    },
    dataset: choiceFlag("dataset", values.dataset, DATASET_NAMES, "mnist"),
    out: `${values.out ?? "checkpoints/imported"}/${stem}.safetensors`,
    dataDir: values["data-dir"],
  });
  console.log(
    `imported ${values.weights}: test accuracy ${
      (100 * accuracy).toFixed(2)
    }%; wrote ${checkpoint}`,
  );
  console.log(`next: deno task noise-maps --checkpoint ${checkpoint}`);
});
