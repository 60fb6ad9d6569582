/**
 * `deno task gan`: a GAN on MNIST, judged per epoch, with interpolations and t-SNE maps.
 * @module
 */
import {
  choiceFlag,
  commonFlags,
  numberFlag,
  numberList,
  parseFlags,
  runMain,
  seedFlag,
} from "../lib/cli.ts";
import { runGan } from "../lib/gan.ts";
import { GAN_DEFAULTS as D, GAN_NAMES } from "../lib/gan/specs.ts";
import { permissionsHelp } from "../lib/tasks.ts";

const HELP = `usage: deno task gan [options]
  --gan NAME            ${GAN_NAMES.join(" or ")} (default ${D.gan}): see lib/gan/specs.ts
  --epochs N            (default ${D.epochs}); a rerun with more epochs resumes
  --seed N              (default ${D.seed})
  --train-images N      the first N training images (default all 60,000)
  --quality-samples N   samples behind each epoch's scores (default ${D.qualitySamples})
  --lr R                Adam's learning rate, both networks (default 2e-4, beta1 0.5)
  --batch-size N        (default 128)
  --classifier F        the judging checkpoint (default: zoo net ${D.classifier} on 60k images,
                        trained once into checkpoints/ if deno task zoo has not made it)
  --pairs N             interpolated latent pairs (default ${D.interpolationPairs})
  --tsne-sizes A,B      generated digits per t-SNE map (default ${D.tsneSizes.join(",")})
  --fgsm-eps A,B,C      eps of the t-SNE maps of net N1 on FGSM images (default ${
  D.fgsmEps.join(",")
})
  --out DIR             (default out/gan/<gan>-s<seed>)
  --data-dir DIR        folder with the IDX files
Writes summary.json, report.html, quality/samples/interpolation/t-SNE figures (SVG + PNG),
samples.npy, latents.npy, interpolation.npz, tsne-*.npy, per-epoch sample grids under samples/,
and the resumable state (both networks, their optimisers, the best generator) under state/.`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("seed", "out", "data-dir"),
    gan: { type: "string" },
    epochs: { type: "string" },
    "train-images": { type: "string" },
    "quality-samples": { type: "string" },
    lr: { type: "string" },
    "batch-size": { type: "string" },
    classifier: { type: "string" },
    pairs: { type: "string" },
    "tsne-sizes": { type: "string" },
    "fgsm-eps": { type: "string" },
  });
  if (values.help) return console.log(`${HELP}\n${permissionsHelp("gan")}`);
  const gan = choiceFlag("gan", values.gan, GAN_NAMES, D.gan);
  const seed = seedFlag(values.seed, D.seed);
  const optional = (name: string, v: string | undefined, integer: boolean, min: number) =>
    v === undefined ? undefined : numberFlag(name, v, min, { integer, min });
  await runGan({
    gan,
    seed,
    epochs: numberFlag("epochs", values.epochs, D.epochs, { integer: true, min: 1 }),
    trainImages: optional("train-images", values["train-images"], true, 2),
    qualitySamples: numberFlag("quality-samples", values["quality-samples"], D.qualitySamples, {
      integer: true,
      min: 20,
    }),
    lr: optional("lr", values.lr, false, 1e-12),
    batchSize: optional("batch-size", values["batch-size"], true, 2),
    classifier: values.classifier,
    interpolationPairs: numberFlag("pairs", values.pairs, D.interpolationPairs, {
      integer: true,
      min: 1,
    }),
    tsneSizes: numberList("tsne-sizes", values["tsne-sizes"], [...D.tsneSizes]),
    fgsmEps: numberList("fgsm-eps", values["fgsm-eps"], [...D.fgsmEps]),
    outDir: values.out ?? `out/gan/${gan}-s${seed}`,
    dataDir: values["data-dir"],
  });
});
