/**
 * The backdoor run's figures and report: each model's classification images with their patch
 * energy ratios, the triggered examples, the ratio per class, and the table of the attack and
 * the detection.
 * @module
 */
import type { Dataset } from "../../data/datasets.ts";
import type { AnalysisResult } from "../../ffi/model.ts";
import { type MapGrid, type Table, writeFigure, writeReport } from "../figures.ts";
import { Plot, plotSvg } from "../plots.ts";
import type { BackdoorModelResult, BackdoorSummary } from "./options.ts";
import { stampTrigger } from "./poison.ts";

/** Each model's result and its noise maps. */
export type Sides = Record<
  "poisoned" | "clean",
  { result: BackdoorModelResult; maps: AnalysisResult }
>;

/** Writes the figures and `report.html`. */
export async function writeBackdoorReport(
  outDir: string,
  summary: BackdoorSummary,
  sides: Sides,
  data: { train: Dataset; test: Dataset; pixels: number[]; epochs: number; seed: number },
): Promise<void> {
  const { test, train, pixels, epochs, seed } = data;
  const { dataset, target, fraction, samples, flagRatio } = summary;
  const patch = summary.patch.size;
  const names = test.classNames;
  const mapGrid = (side: "poisoned" | "clean"): MapGrid => ({
    kind: "maps",
    name: `backdoor-maps-${side}`,
    title: `Classification images of the ${side} model`,
    caption: `Confidence-weighted classification images from ${samples.toLocaleString("en")} ` +
      `uniform noise images, minus the mean noise image; under each, the class and its patch ` +
      `energy ratio (energy per pixel on the ${patch}x${patch} trigger in the bottom-right corner ` +
      `over the image's), signed + where the map is brighter there. A brighter patch with a ` +
      `ratio above ${flagRatio} flags the class (!).`,
    maps: sides[side].maps.weightedImages.data.map((v, i) =>
      v - sides[side].maps.stimulusMean.data[i % 784]
    ),
    count: 10,
    height: 28,
    width: 28,
    columns: 10,
    scale: 3,
    titles: sides[side].result.patchEnergyRatio.map((r, c) =>
      `${names[c]} ${sides[side].result.patchBrighter[c] ? "+" : "−"}${r.toFixed(1)}${
        sides[side].result.flagged.includes(c) ? " !" : ""
      }`
    ),
  });
  const grids = [mapGrid("poisoned"), mapGrid("clean")];
  const examples = stampTrigger(test, [0, 1, 2, 3, 4], pixels);
  const exampleGrid: MapGrid = {
    kind: "maps",
    name: "backdoor-triggered-examples",
    title: "The trigger on test images",
    caption: `Test images with the ${patch}x${patch} white trigger stamped in the corner.`,
    maps: examples.images.subarray(0, 5 * 784),
    count: 5,
    height: 28,
    width: 28,
    grey: true,
    scale: 3,
  };
  const bars = (["poisoned", "clean"] as const).flatMap((side) =>
    sides[side].result.patchEnergyRatio.map((r, c) => ({ side, cls: names[c], r }))
  );
  const chart = {
    name: "backdoor-energy",
    title: "Patch energy ratio per class",
    caption: `Energy per pixel of each classification image on the trigger's location over its ` +
      `energy per pixel on the whole image; crimson the poisoned model, grey the clean one; ` +
      `dashed: the flag threshold ${flagRatio}.`,
    svg: plotSvg({
      width: 680,
      height: 260,
      marginLeft: 50,
      fx: { label: null, domain: names },
      x: { axis: null },
      y: { label: "patch energy ratio", grid: true, type: "symlog" },
      color: { domain: ["poisoned", "clean"], range: ["crimson", "#aaa"] },
      marks: [
        Plot.barY(bars, { fx: "cls", x: "side", y: "r", fill: "side" }),
        Plot.ruleY([flagRatio], { strokeDasharray: "4 3" }),
        Plot.ruleY([0]),
      ],
    }),
  };
  for (const f of [...grids, exampleGrid, chart]) await writeFigure(outDir, f);
  const table: Table = {
    title: "The attack and the detection",
    caption: "Trigger success: share of triggered test images not of the target called the target.",
    header: ["model", "clean accuracy", "trigger success", "target's patch ratio", "flagged"],
    rows: (["poisoned", "clean"] as const).map((side) => {
      const r = sides[side].result;
      return [
        side,
        `${(100 * r.cleanAccuracy).toFixed(2)}%`,
        `${(100 * r.triggerSuccess).toFixed(1)}%`,
        r.patchEnergyRatio[target].toFixed(1),
        r.flagged.map((c) => names[c]).join(", ") || "none",
      ];
    }),
  };
  await writeReport(
    `${outDir}/report.html`,
    `Backdoor detection with classification images (${dataset}, target ${names[target]})`,
    `${summary.poisonedImages.toLocaleString("en")} of ${
      train.count.toLocaleString("en")
    } training ` +
      `images (${(100 * fraction).toFixed(1)}%) carry a ` +
      `${patch}x${patch} white patch and the label ${names[target]}. Both models: smaller, ` +
      `${epochs} epochs, seed ${seed}. This run took ${summary.seconds.toFixed(0)} s ` +
      `(models trained by an earlier run of the same folder are reused).`,
    [{ heading: "Result", items: [table, chart, ...grids, exampleGrid] }],
  );
}
