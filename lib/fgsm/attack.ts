/**
 * The attacks: every net's FGSM images at every eps, each evaluated by every net (the transfer
 * matrices), with each net's clean accuracy and the first net's adversarial examples.
 * @module
 */
import type { Model } from "../../ffi/model.ts";
import type { Dataset } from "../../data/datasets.ts";
import { argmaxRows, perClassAccuracy } from "../metrics.ts";
import { ProgressBar } from "../progress.ts";

/** A loaded net under attack. */
export interface AttackedNet {
  label: string;
  model: Model;
  kind: string;
  classes: number;
}

/** Adversarial images of the first net at one eps, with its answers. */
export interface AdversarialExample {
  eps: number;
  adv: Float32Array;
  pred: number[];
}

/** What {@linkcode attackSection} computes. */
export interface AttackResult {
  cleanAccuracy: Record<string, number>;
  /** Per eps: rows attacked net, columns evaluated net, accuracies. */
  matrices: { eps: number; matrix: number[][] }[];
  /** Each net's accuracy on its own adversarial images, per eps. */
  whiteBox: Record<string, number[]>;
  examples: AdversarialExample[];
}

/** Accuracy of a model on images; the native side batches the forward passes. */
async function accuracy(model: Model, images: Float32Array, labels: Uint8Array, classes: number) {
  return perClassAccuracy(argmaxRows(await model.predict(images), classes), labels, classes)
    .accuracy;
}

/** The predicted class of each image. */
export async function predictions(model: Model, images: Float32Array, classes: number) {
  return Array.from(argmaxRows(await model.predict(images), classes));
}

/**
 * Attacks every net at every eps and evaluates every net on the result.
 * @param exampleEps eps values whose first `k` adversarial images of the first net are kept
 */
export async function attackSection(
  nets: AttackedNet[],
  test: Dataset,
  eps: number[],
  exampleEps: number[],
  k: number,
  progress: boolean,
): Promise<AttackResult> {
  const bar = progress ? new ProgressBar("fgsm") : undefined;
  const total = nets.length * eps.length;
  const matrices = eps.map((e) => ({ eps: e, matrix: nets.map(() => nets.map(() => 0)) }));
  const cleanAccuracy: Record<string, number> = {};
  for (const n of nets) {
    cleanAccuracy[n.label] = await accuracy(n.model, test.images, test.labels, n.classes);
  }
  const examples: AdversarialExample[] = [];
  let done = 0;
  for (const [a, attacker] of nets.entries()) {
    for (const [ei, e] of eps.entries()) {
      // The native side computes the gradients in chunks, so memory stays at one chunk.
      const adv = await attacker.model.fgsm(test.images, test.labels, e);
      for (const [b, evaluator] of nets.entries()) {
        matrices[ei].matrix[a][b] = await accuracy(
          evaluator.model,
          adv,
          test.labels,
          evaluator.classes,
        );
      }
      if (a === 0 && exampleEps.includes(e)) {
        const sub = adv.slice(0, k * 784);
        examples.push({
          eps: e,
          adv: sub,
          pred: await predictions(attacker.model, sub, attacker.classes),
        });
      }
      bar?.update(++done, total);
    }
  }
  bar?.done(`${total} attacks`);
  const whiteBox: Record<string, number[]> = {};
  nets.forEach((n, a) => whiteBox[n.label] = matrices.map((m) => m.matrix[a][a]));
  return { cleanAccuracy, matrices, whiteBox, examples };
}
