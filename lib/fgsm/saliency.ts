/**
 * Saliency of each net: the gradient of the loss of the true label with respect to the pixels,
 * and gradient x input, written as `.npy` and drawn.
 * @module
 */
import type { Figure } from "../figures.ts";
import { mapsSvg } from "../figures.ts";
import { writeFileAtomic } from "../files.ts";
import { encodeNpy } from "../npy.ts";
import type { AttackedNet } from "./attack.ts";
import { type FigureSink, stackSvgs } from "./figures.ts";

/** Writes `saliency-<net>.npy` (`[2, k, 28, 28]`) and its figure for every net. */
export async function saliencySection(
  nets: AttackedNet[],
  clean: Float32Array,
  trueLabels: Uint8Array,
  outDir: string,
  fig: FigureSink,
): Promise<Figure[]> {
  const k = clean.length / 784;
  const saliencyFigures: Figure[] = [];
  for (const n of nets) {
    const { gradients } = await n.model.inputGradients(clean, trueLabels);
    const timesInput = gradients.map((g, i) => g * clean[i]);
    await writeFileAtomic(
      `${outDir}/saliency-${n.label}.npy`,
      encodeNpy(new Float32Array([...gradients, ...timesInput]), [2, k, 28, 28]),
    );
    saliencyFigures.push(
      await fig({
        name: `saliency-${n.label}`,
        title: `Saliency of ${n.label}`,
        caption:
          "Rows: the image; the gradient of the loss of its true label with respect to the pixels (red: brightening the pixel raises the loss); gradient × input. Each map is scaled by its own largest value.",
        svg: stackSvgs([
          mapsSvg(clean, k, 28, 28, { grey: true, scale: 3, heading: "image" }),
          mapsSvg(gradients, k, 28, 28, { scale: 3, heading: "gradient", centre: false }),
          mapsSvg(timesInput, k, 28, 28, {
            scale: 3,
            heading: "gradient × input",
            centre: false,
          }),
        ]),
      }),
    );
  }

  return saliencyFigures;
}
