import assert from "node:assert/strict";
import { NativeError } from "../ffi/errors.ts";
import { trustworthiness, tsne } from "../ffi/tsne.ts";
import { decodeNpy, encodeNpy, readNpy, writeNpy } from "../lib/npy.ts";
import { runTsne } from "../lib/tsne.ts";

/** Five well-separated Gaussian blobs in 10-D, 100 points each, with their labels. */
function blobs(): { data: Float32Array; labels: Int32Array } {
  let seed = 12345;
  const uniform = () => ((seed = (seed * 1103515245 + 12345) >>> 0) + 0.5) / 2 ** 32;
  const gauss = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const data = new Float32Array(500 * 10);
  const labels = new Int32Array(500);
  for (let i = 0; i < 500; i++) {
    labels[i] = i % 5;
    for (let j = 0; j < 10; j++) data[i * 10 + j] = gauss() + (j === labels[i] ? 12 : 0);
  }
  return { data, labels };
}

Deno.test("tsne: separated blobs give a trustworthy map, and the same seed an equally good one", async () => {
  const { data } = blobs();
  const a = await tsne(data, 10, { perplexity: 20 });
  assert.deepEqual(a.embedding.shape, [500, 2]);
  assert.ok(a.trustworthiness > 0.95, `trustworthiness ${a.trustworthiness}`);
  assert.ok(a.klDivergence > 0 && Number.isFinite(a.klDivergence));
  assert.equal(a.explainedVariance.length, 0, "10 columns: no PCA");
  // Not bit for bit: the crate's parallel sums follow thread scheduling (seen in CI), so a
  // second run with the seed must give an equally good map, not the same coordinates.
  const again = await tsne(data, 10, { perplexity: 20 });
  assert.ok(Math.abs(again.trustworthiness - a.trustworthiness) < 0.02);
  // The standalone measure agrees, and a shuffled map scores near chance.
  const t = await trustworthiness(data, 10, a.embedding.data, 2, 5);
  assert.ok(Math.abs(t - a.trustworthiness) < 1e-6);
  // The same points dealt to random rows (a seeded Fisher-Yates shuffle).
  const shuffled = a.embedding.data.slice();
  let state = 7;
  for (let i = 499; i > 0; i--) {
    state = (state * 1103515245 + 12345) >>> 0;
    const j = state % (i + 1);
    for (const c of [0, 1]) {
      [shuffled[2 * i + c], shuffled[2 * j + c]] = [shuffled[2 * j + c], shuffled[2 * i + c]];
    }
  }
  assert.ok((await trustworthiness(data, 10, shuffled, 2, 5)) < 0.7);
});

Deno.test("tsne: bad input is a typed error naming the problem", async () => {
  const { data } = blobs();
  await assert.rejects(
    tsne(data.subarray(0, 50 * 10), 10),
    (e: unknown) => e instanceof NativeError && /needs at least 91 points/.test(e.message),
  );
  await assert.rejects(tsne(data, 7), /whole number of rows/);
  await assert.rejects(tsne(data, 10, { perplexity: NaN }), /perplexity/);
  await assert.rejects(trustworthiness(data, 10, new Float32Array(10), 2), /rows/);
});

Deno.test("npy: decodes what numpy writes and names what it cannot read", () => {
  const a = decodeNpy(encodeNpy(new Float64Array([1.5, -2, 3, 4, 5, 6]), [2, 3]));
  assert.deepEqual(a.shape, [2, 3]);
  assert.equal(a.dtype, "<f8");
  assert.deepEqual(Array.from(a.data), [1.5, -2, 3, 4, 5, 6]);
  const bytes = encodeNpy(new Float32Array(12), [3, 4]);
  assert.throws(() => decodeNpy(bytes.subarray(0, bytes.length - 4), "x.npy"), /cut short/);
  assert.throws(() => decodeNpy(new TextEncoder().encode("a,b\n1,2\n"), "x.csv"), /not a .npy/);
  // Header edits in place, byte for byte (the magic byte 0x93 is not UTF-8).
  const edited = (from: string, to: string) => {
    const copy = bytes.slice();
    const at = new TextDecoder("latin1").decode(copy).indexOf(from);
    copy.set(new TextEncoder().encode(to), at);
    return copy;
  };
  assert.throws(() => decodeNpy(edited("False", "True ")), /Fortran/);
  assert.throws(() => decodeNpy(edited("<f4", "<c8")), /unsupported dtype <c8/);
});

Deno.test("deno task tsne's run: a .npy with labels gives the map, its arrays and summary", async () => {
  const dir = await Deno.makeTempDir();
  const { data, labels } = blobs();
  await writeNpy(`${dir}/x.npy`, { data, shape: [500, 10] });
  await writeNpy(`${dir}/y.npy`, { data: labels, shape: [500] });
  const s = await runTsne({
    input: `${dir}/x.npy`,
    labels: `${dir}/y.npy`,
    outDir: `${dir}/out`,
    tsne: { perplexity: 20, iterations: 400 },
    progress: false,
    log: () => {},
  });
  assert.equal(s.n, 500);
  assert.equal(s.dims, 10);
  assert.ok(s.trustworthiness > 0.9, String(s.trustworthiness));
  const e = await readNpy(`${dir}/out/embedding.npy`);
  assert.deepEqual(e.shape, [500, 2]);
  const svg = await Deno.readTextFile(`${dir}/out/embedding.svg`);
  assert.equal(svg.match(/<circle/g)?.length, 500);
  assert.match(await Deno.readTextFile(`${dir}/out/report.html`), /Trustworthiness/);
  assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/out/summary.json`)).n, 500);
  await writeNpy(`${dir}/short.npy`, { data: labels.subarray(0, 10), shape: [10] });
  await assert.rejects(
    runTsne({
      input: `${dir}/x.npy`,
      labels: `${dir}/short.npy`,
      outDir: `${dir}/o2`,
      log: () => {},
    }),
    /10 labels for 500 rows/,
  );
  await Deno.remove(dir, { recursive: true });
});
