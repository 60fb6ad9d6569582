/**
 * Adversarial robustness: FGSM (Goodfellow et al., 2015) against several networks, every net
 * tested on every other net's adversarial images (the transfer matrix), plus saliency maps.
 * The run is made of sections (`fgsm/`): the nets, the attacks, the tables and figures, the
 * saliency maps.
 * @module
 */
import { classNames, loadDataset } from "../data/datasets.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { type Figure, type Table, writeFigure, writeReport } from "./figures.ts";
import { writeJsonAtomic } from "./files.ts";
import { type AttackedNet, attackSection, predictions } from "./fgsm/attack.ts";
import { exampleFigures, transferFigures, writeMatrices } from "./fgsm/figures.ts";
import { resolveNets } from "./fgsm/nets.ts";
import { DEFAULT_EPS, type FgsmOptions, type FgsmSummary } from "./fgsm/options.ts";
import { saliencySection } from "./fgsm/saliency.ts";

export { CASE_STUDY_NETS, caseStudyCheckpoint, type CaseStudyTraining } from "./fgsm/nets.ts";
export { DEFAULT_EPS, type FgsmOptions, type FgsmSummary } from "./fgsm/options.ts";

/** Runs the whole study and writes `outDir/{report.html,summary.json,matrix-eps*.csv,…}`. */
export async function runFgsm(o: FgsmOptions): Promise<FgsmSummary> {
  const t0 = performance.now();
  const log = o.log ?? console.log;
  const eps = o.eps ?? DEFAULT_EPS;
  if (eps.length === 0 || eps.some((e) => !(e >= 0 && e <= 1))) {
    throw new RangeError(`invalid --eps: each must be in [0, 1], got ${eps.join(",")}`);
  }
  const { paths, labels, dataset } = await resolveNets(o, o.seed ?? 0);
  const test = await loadDataset(dataset, "test", { dataDir: o.dataDir, limit: o.testImages });
  const names = classNames(dataset as "mnist" | "fashion");
  await Deno.mkdir(o.outDir, { recursive: true });

  const nets: AttackedNet[] = [];
  try {
    for (const [i, path] of paths.entries()) {
      const { model, sidecar } = await loadCheckpoint(path, o.device);
      nets.push({ label: labels[i], model, kind: sidecar.model, classes: sidecar.classes });
    }
    // The example grid and saliency: the first few test images.
    const k = Math.min(o.exampleImages ?? 8, test.count);
    const exampleEps = (o.exampleEps ?? [0.1, 0.3]).filter((e) => eps.includes(e));
    const attack = await attackSection(nets, test, eps, exampleEps, k, o.progress !== false);
    const { cleanAccuracy, matrices, whiteBox: accuracyByNet } = attack;
    await writeMatrices(o.outDir, matrices, labels);

    const figures: Figure[] = [];
    const fig = async (f: Figure) => {
      await writeFigure(o.outDir, f);
      figures.push(f);
      return f;
    };
    const { heatmaps, curves } = await transferFigures(matrices, labels, fig);
    const clean = test.images.slice(0, k * 784);
    const cleanPred = await predictions(nets[0].model, clean, nets[0].classes);
    const trueLabels = test.labels.subarray(0, k);
    const examples = await exampleFigures(
      attack.examples,
      clean,
      cleanPred,
      trueLabels,
      names,
      labels[0],
      fig,
    );
    const saliencyFigures = await saliencySection(nets, clean, trueLabels, o.outDir, fig);

    const summary: FgsmSummary = {
      nets: nets.map((n, i) => ({ label: n.label, model: n.kind, checkpoint: paths[i] })),
      eps,
      testImages: test.count,
      cleanAccuracy,
      accuracy: accuracyByNet,
      matrices,
      seconds: (performance.now() - t0) / 1000,
    };
    await writeJsonAtomic(`${o.outDir}/summary.json`, summary);
    const accuracyTable: Table = {
      title: "White-box accuracy per eps",
      caption: "Each net on its own FGSM images; eps 0 is the clean accuracy.",
      header: ["net", ...eps.map((e) => `eps ${e}`)],
      rows: nets.map((n) => [n.label, ...accuracyByNet[n.label].map((v) => (100 * v).toFixed(1))]),
    };
    await writeReport(
      `${o.outDir}/report.html`,
      `FGSM robustness on ${dataset}`,
      `Fast Gradient Sign Method (Goodfellow et al., 2015): x' = clip(x + eps·sign(∇ₓ loss), 0, 1) in pixel space, on ${test.count} test images, against ${nets.length} nets (${
        labels.join(", ")
      }). Every net is evaluated on every net's adversarial images. Took ${
        summary.seconds.toFixed(0)
      } s.`,
      [
        { heading: "Accuracy", items: [accuracyTable, curves] },
        { heading: "Transfer matrices", items: heatmaps },
        { heading: "Adversarial examples", items: examples },
        { heading: "Saliency", items: saliencyFigures },
      ],
    );
    log(`report: ${o.outDir}/report.html`);
    return summary;
  } finally {
    for (const n of nets) n.model.close();
  }
}
