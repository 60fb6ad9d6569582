/**
 * Predictions from scores, and accuracy against labels: shared by the noise-maps and FGSM runs.
 * @module
 */

/** The index of the largest value in each row of a row-major `[n, cols]` array. */
export function argmaxRows(values: Float32Array, cols: number): Int32Array {
  const n = values.length / cols;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (values[i * cols + c] > values[i * cols + best]) best = c;
    out[i] = best;
  }
  return out;
}

/** Overall and per-class accuracy of predictions against labels. */
export function perClassAccuracy(
  pred: ArrayLike<number>,
  labels: Uint8Array,
  classes: number,
): { accuracy: number; perClass: number[] } {
  const hit = new Array(classes).fill(0);
  const tot = new Array(classes).fill(0);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    tot[labels[i]]++;
    if (pred[i] === labels[i]) {
      hit[labels[i]]++;
      correct++;
    }
  }
  return {
    accuracy: correct / labels.length,
    perClass: hit.map((h, c) => (tot[c] ? h / tot[c] : 0)),
  };
}
