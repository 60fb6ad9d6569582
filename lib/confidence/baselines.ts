/**
 * The two baselines every meta-network is set beside: the classifier's own max-softmax
 * probability (Hendrycks & Gimpel, 2017), and the trust score (Jiang et al., 2018), each scored
 * on the pairs as a predictor of correctness (AUROC, AUPR on errors) and of the confidence ratio
 * (r^2 of the best straight-line fit).
 * @module
 */
import { errorDetection, linearR2 } from "./scores.ts";

/** One baseline's scores on one task. */
export interface BaselineResult {
  net: "max_softmax" | "trust_score";
  task: "classification" | "regression";
  split: "all";
  /** Regression: r^2 of a straight-line fit of the ratio on the score. */
  r2?: number;
  /** Classification: the score as a detector of right predictions. */
  auroc?: number;
  /** Classification: the negated score as a detector of errors, errors positive. */
  auprErrors?: number;
}

/** The pair fields the baselines read. */
export interface BaselineInputs {
  maxSoftmax: Float32Array;
  trust: Float32Array;
  ratio: Float32Array;
  correct: Float32Array;
}

/**
 * Scores both baselines on every pair.
 * @param p the pairs' fields
 * @returns four results: each baseline on each task
 */
export function scoreBaselines(p: BaselineInputs): BaselineResult[] {
  // The trust score is a ratio of distances: its logarithm is the natural scale to fit on.
  const logTrust = p.trust.map((t) => Math.log(t));
  const baselines = [
    { net: "max_softmax" as const, score: p.maxSoftmax },
    { net: "trust_score" as const, score: logTrust },
  ];
  return baselines.flatMap(({ net, score }) => [
    {
      net,
      task: "classification" as const,
      split: "all" as const,
      ...errorDetection(score, p.correct),
    },
    { net, task: "regression" as const, split: "all" as const, r2: linearR2(score, p.ratio) },
  ]);
}

/** ROC curve points (false-positive rate, true-positive rate) of a score, every threshold. */
export function rocCurve(
  scores: ArrayLike<number>,
  positive: ArrayLike<number>,
): { fpr: number; tpr: number }[] {
  const order = Array.from({ length: scores.length }, (_, i) => i)
    .sort((a, b) => scores[b] - scores[a]);
  const pos = Array.from(order, (i) => positive[i] ? 1 : 0).reduce<number>((a, b) => a + b, 0);
  const neg = order.length - pos;
  const points = [{ fpr: 0, tpr: 0 }];
  let tp = 0, fp = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j < order.length && scores[order[j]] === scores[order[i]]) {
      if (positive[order[j]]) tp++;
      else fp++;
      j++;
    }
    points.push({ fpr: fp / neg, tpr: tp / pos });
    i = j;
  }
  return points;
}
