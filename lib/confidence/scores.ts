/**
 * The study's measures: r^2 and mean absolute error for the confidence ratio, and for
 * correctness the area under the ROC curve and the average precision with errors as the positive
 * class (how well a score finds the classifier's mistakes).
 * @module
 */

/**
 * Area under the ROC curve: the chance that a random positive scores above a random negative,
 * ties counting one half (the Mann-Whitney statistic).
 * @param scores higher means more likely positive
 * @param positive 1 for a positive, 0 for a negative
 * @returns the AUROC, or NaN without both classes
 */
export function auroc(scores: ArrayLike<number>, positive: ArrayLike<number>): number {
  const order = Array.from({ length: scores.length }, (_, i) => i)
    .sort((a, b) => scores[a] - scores[b]);
  let rankSum = 0, positives = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j < order.length && scores[order[j]] === scores[order[i]]) j++;
    const rank = (i + 1 + j) / 2; // mean 1-based rank of the tie group
    for (let k = i; k < j; k++) {
      if (positive[order[k]]) {
        rankSum += rank;
        positives++;
      }
    }
    i = j;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - positives * (positives + 1) / 2) / (positives * negatives);
}

/**
 * Average precision (the area under the precision-recall curve, scikit-learn's definition):
 * precision at each positive, ranked by descending score, averaged; tied scores are one step.
 * @param scores higher means more likely positive
 * @param positive 1 for a positive
 * @returns the AP, or NaN without positives
 */
export function averagePrecision(scores: ArrayLike<number>, positive: ArrayLike<number>): number {
  const order = Array.from({ length: scores.length }, (_, i) => i)
    .sort((a, b) => scores[b] - scores[a]);
  const total = Array.from(order, (i) => positive[i] ? 1 : 0).reduce<number>((a, b) => a + b, 0);
  if (total === 0) return NaN;
  let hits = 0, ap = 0, prevRecall = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j < order.length && scores[order[j]] === scores[order[i]]) {
      if (positive[order[j]]) hits++;
      j++;
    }
    const recall = hits / total;
    ap += (recall - prevRecall) * (hits / j);
    prevRecall = recall;
    i = j;
  }
  return ap;
}

/**
 * How well a confidence score ranks right above wrong: AUROC with "right" as the positive class,
 * and the average precision of finding the errors by the lowest scores.
 * @param score higher = more confident
 * @param correct 1 for a right prediction, 0 for a wrong one
 */
export function errorDetection(
  score: ArrayLike<number>,
  correct: ArrayLike<number>,
): { auroc: number; auprErrors: number } {
  const negated = Array.from(score, (s) => -s);
  const errors = Array.from(correct, (c) => 1 - c);
  return { auroc: auroc(score, correct), auprErrors: averagePrecision(negated, errors) };
}

/**
 * The coefficient of determination of predictions against the truth (1 - SSE/SST).
 * @param predicted the predictions
 * @param truth the true values
 * @returns r^2 (negative when worse than the mean)
 */
export function r2(predicted: ArrayLike<number>, truth: ArrayLike<number>): number {
  const n = truth.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += truth[i] / n;
  let sse = 0, sst = 0;
  for (let i = 0; i < n; i++) {
    sse += (predicted[i] - truth[i]) ** 2;
    sst += (truth[i] - mean) ** 2;
  }
  return 1 - sse / sst;
}

/**
 * The squared Pearson correlation: the r^2 of the best straight-line fit of `truth` on `x`, for a
 * baseline score that is not on the ratio's scale.
 * @param x the score
 * @param truth the true values
 * @returns r^2 in [0, 1]
 */
export function linearR2(x: ArrayLike<number>, truth: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i] / n;
    my += truth[i] / n;
  }
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (truth[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (truth[i] - my) ** 2;
  }
  return sxy * sxy / (sxx * syy);
}

/**
 * The mean absolute error.
 * @param predicted the predictions
 * @param truth the true values
 * @returns the MAE
 */
export function meanAbsoluteError(predicted: ArrayLike<number>, truth: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < truth.length; i++) s += Math.abs(predicted[i] - truth[i]);
  return s / truth.length;
}
