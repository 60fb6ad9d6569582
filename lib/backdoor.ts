/**
 * Backdoor detection with classification images (Borji & Lin, ICLR 2020, §5): a network trained
 * on data where a few images carry a small patch trigger and the target's label learns to answer
 * the target whenever the patch is there. White noise sometimes brightens that corner, so the
 * target's classification image gathers its energy on the patch, and the trigger shows itself
 * without any triggered image at hand. This run poisons, trains, attacks, and checks both a
 * poisoned and a clean model, in sections (`backdoor/`).
 * @module
 */
import { loadDataset } from "../data/datasets.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { writeFileAtomic, writeJsonAtomic } from "./files.ts";
import { encodeNpy } from "./npy.ts";
import { examine, trained } from "./backdoor/detect.ts";
import {
  BACKDOOR_DEFAULTS,
  type BackdoorOptions,
  type BackdoorSummary,
} from "./backdoor/options.ts";
import { poisonTraining, triggerPixels } from "./backdoor/poison.ts";
import { type Sides, writeBackdoorReport } from "./backdoor/report.ts";

export { patchBrighter, patchEnergyRatio } from "./backdoor/detect.ts";
export {
  BACKDOOR_DEFAULTS,
  type BackdoorModelResult,
  type BackdoorOptions,
  type BackdoorSummary,
} from "./backdoor/options.ts";
export { stampTrigger, triggerPixels } from "./backdoor/poison.ts";

/** Poisons, trains, attacks and analyses; writes arrays, figures, `summary.json`, `report.html`. */
export async function runBackdoor(options: BackdoorOptions): Promise<BackdoorSummary> {
  const t0 = performance.now();
  const d = BACKDOOR_DEFAULTS;
  const {
    outDir,
    dataset = d.dataset,
    target = d.target,
    fraction = d.fraction,
    patch = d.patch,
    epochs = d.epochs,
    samples = d.samples,
    seed = d.seed,
    flagRatio = d.flagRatio,
    log = console.log,
  } = options;
  if (!Number.isInteger(target) || target < 0 || target > 9) {
    throw new RangeError(`invalid target: ${target} (expected a class 0..9)`);
  }
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(`invalid fraction: ${fraction} (expected 0 < fraction < 1)`);
  }
  const pixels = triggerPixels(patch);
  await Deno.mkdir(outDir, { recursive: true });

  // 1. Poison a seeded share of the training images (never the target's own).
  const train = await loadDataset(dataset, "train", {
    dataDir: options.dataDir,
    limit: options.limit,
  });
  const test = await loadDataset(dataset, "test", { dataDir: options.dataDir });
  const { poisonedTrain, chosen } = poisonTraining(train, target, fraction, pixels, seed);
  log(
    `poisoned ${chosen.length} of ${train.count} training images (target ${
      train.classNames[target]
    })`,
  );

  // 2. Train the poisoned and the clean model alike.
  const o = { ...options, epochs, seed, log };
  const poisonedCk = await trained(`${outDir}/poisoned`, { train: poisonedTrain, test }, o);
  const cleanCk = await trained(`${outDir}/clean`, { train, test }, o);

  // 3. Attack and noise analysis of each.
  const sides: Sides = {} as never;
  for (const [side, ck] of [["poisoned", poisonedCk], ["clean", cleanCk]] as const) {
    const { model } = await loadCheckpoint(ck);
    try {
      sides[side] = await examine(model, ck, test, target, pixels, samples, seed, flagRatio);
    } finally {
      model.close();
    }
    const r = sides[side].result;
    log(
      `${side}: clean accuracy ${(100 * r.cleanAccuracy).toFixed(2)}%, trigger success ${
        (100 * r.triggerSuccess).toFixed(1)
      }%, patch energy ratio of the target ${r.patchEnergyRatio[target].toFixed(1)}, flagged: ${
        r.flagged.map((c) => test.classNames[c]).join(", ") || "none"
      }`,
    );
    await writeFileAtomic(
      `${outDir}/${side}-weighted-images.npy`,
      encodeNpy(sides[side].maps.weightedImages.data, [10, 28, 28]),
    );
  }

  // 4. Summary, figures and report.
  const summary: BackdoorSummary = {
    dataset,
    target,
    patch: { size: patch, row: 27 - patch, col: 27 - patch },
    fraction,
    poisonedImages: chosen.length,
    samples,
    flagRatio,
    poisoned: sides.poisoned.result,
    clean: sides.clean.result,
    seconds: (performance.now() - t0) / 1000,
  };
  await writeJsonAtomic(`${outDir}/summary.json`, summary);
  await writeBackdoorReport(outDir, summary, sides, { train, test, pixels, epochs, seed });
  return summary;
}
