/**
 * `deno task import`: a PyTorch state dict (safetensors) plus a wna spec, or an ONNX file,
 * checked and written as a wna checkpoint that every analysis takes with `--checkpoint`.
 * @module
 */
import { DATASET_NAMES } from "../data/datasets.ts";
import { choiceFlag, commonFlags, numberFlag, parseFlags, runMain } from "../lib/cli.ts";
import { importOnnx, importPytorch, modelStem } from "../lib/import.ts";
import { permissionsHelp } from "../lib/tasks.ts";

const HELP = `usage: deno task import --spec net.json --weights model.safetensors [options]
       deno task import --onnx model.onnx [options]
  --spec F         the network as a wna spec (JSON), layer names matching your module names
  --weights F      the state dict: safetensors.torch.save_file(model.state_dict(), F)
  --onnx F         an ONNX classifier (torch.onnx.export), converted to a spec and weights
  --mean M --std S the input normalisation your transforms used (default: from the JSON
                   beside the weights or .onnx, {"mean": ..., "std": ..., "classes": [...]};
                   an ONNX graph that normalises its own input needs none)
  --classes a,b,…  one name per logit (default: that JSON's, else the dataset's)
  --dataset NAME   ${DATASET_NAMES.join(" or ")}: its test set scores the import (default mnist)
  --out DIR        where the wna checkpoint <weights name>.safetensors and its sidecar go
                   (default checkpoints/imported)
  --data-dir DIR   folder with the IDX files
Then: deno task noise-maps --checkpoint <out> (and fgsm, sta, visualise).`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("dataset", "out", "data-dir"),
    spec: { type: "string" },
    weights: { type: "string" },
    onnx: { type: "string" },
    mean: { type: "string" },
    std: { type: "string" },
    classes: { type: "string" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("import")}`);
  const pytorch = values.spec !== undefined || values.weights !== undefined;
  if (pytorch === (values.onnx !== undefined) || (pytorch && (!values.spec || !values.weights))) {
    throw new Error(`import: give --spec and --weights, or --onnx\n${HELP}`);
  }
  const source = (values.onnx ?? values.weights)!;
  const common = {
    meta: {
      mean: values.mean === undefined ? undefined : numberFlag("mean", values.mean, 0),
      std: values.std === undefined ? undefined : numberFlag("std", values.std, 1, { min: 1e-12 }),
      classes: values.classes?.split(","),
    },
    dataset: choiceFlag("dataset", values.dataset, DATASET_NAMES, "mnist"),
    out: `${values.out ?? "checkpoints/imported"}/${modelStem(source)}.safetensors`,
    dataDir: values["data-dir"],
  };
  const { checkpoint, accuracy, notes } = values.onnx
    ? await importOnnx({ ...common, onnx: values.onnx })
    : await importPytorch({ ...common, spec: values.spec!, weights: values.weights! });
  for (const note of notes) console.log(`note: ${note}`);
  console.log(
    `imported ${source}: test accuracy ${(100 * accuracy).toFixed(2)}%; wrote ${checkpoint}`,
  );
  console.log(`next: deno task noise-maps --checkpoint ${checkpoint}`);
});
