/**
 * The silhouette score (Rousseeuw, 1987; scikit-learn's `silhouette_score`) of labelled points:
 * per point, (b - a) / max(a, b) with a its mean distance to its own class and b its mean
 * distance to the nearest other class, averaged. Near 1: classes form separate clusters; near
 * 0: they overlap; below 0: points sit closer to another class than to their own.
 * @module
 */

/**
 * The mean silhouette of the first `limit` points (O(limit^2) distances).
 * @param points n x `dims` coordinates
 * @param dims columns per point
 * @param labels one class per point
 * @param limit points scored; the first ones, so the score is deterministic @default 2000
 * @returns the mean silhouette in [-1, 1]; NaN with fewer than two classes
 */
export function silhouette(
  points: Float32Array,
  dims: number,
  labels: ArrayLike<number>,
  limit = 2000,
): number {
  const n = Math.min(labels.length, limit);
  const classes = [...new Set(Array.from({ length: n }, (_, i) => labels[i]))];
  if (classes.length < 2) return NaN;
  const index = new Map(classes.map((c, k) => [c, k]));
  const cls = Int32Array.from({ length: n }, (_, i) => index.get(labels[i])!);
  const sizes = new Array(classes.length).fill(0);
  for (let i = 0; i < n; i++) sizes[cls[i]]++;
  let total = 0;
  const sums = new Float64Array(classes.length);
  for (let i = 0; i < n; i++) {
    sums.fill(0);
    for (let j = 0; j < n; j++) {
      let d2 = 0;
      for (let c = 0; c < dims; c++) d2 += (points[i * dims + c] - points[j * dims + c]) ** 2;
      sums[cls[j]] += Math.sqrt(d2);
    }
    const own = cls[i];
    // scikit-learn's convention: a point alone in its class scores 0.
    if (sizes[own] === 1) continue;
    const a = sums[own] / (sizes[own] - 1);
    let b = Infinity;
    for (let k = 0; k < classes.length; k++) if (k !== own) b = Math.min(b, sums[k] / sizes[k]);
    total += (b - a) / Math.max(a, b);
  }
  return total / n;
}
