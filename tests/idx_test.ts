import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { parseIdx, readIdx } from "../data/idx.ts";
import { loadDataset } from "../data/datasets.ts";

function idx(dims: number[], data: number[] | Uint8Array, type = 0x08): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out.set([0, 0, type, dims.length]);
  const v = new DataView(out.buffer);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

Deno.test("idx: parses raw and gzip files", () => {
  const raw = idx([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
  for (const bytes of [raw, new Uint8Array(gzipSync(raw))]) {
    const { dims, data } = parseIdx(bytes, "t", 3);
    assert.deepEqual(dims, [2, 2, 2]);
    assert.deepEqual([...data], [1, 2, 3, 4, 5, 6, 7, 8]);
  }
});

Deno.test("idx: the real MNIST and Fashion-MNIST test files", async () => {
  const mnist = await loadDataset("mnist", "test");
  assert.equal(mnist.count, 10000);
  assert.equal(mnist.images.length, 10000 * 784);
  assert.ok(mnist.images.every((v) => v >= 0 && v <= 1));
  assert.deepEqual(mnist.labels.subarray(0, 5), new Uint8Array([7, 2, 1, 0, 4]));
  const fashion = await loadDataset("fashion", "test");
  assert.equal(fashion.count, 10000);
  assert.match(fashion.source, /fashion/);
  assert.deepEqual(fashion.labels.subarray(0, 3), new Uint8Array([9, 2, 1]));
});

Deno.test("idx: a corpus of bad files each names its defect", async (t) => {
  const good = idx([3], [1, 2, 3]);
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty", new Uint8Array(0), /shorter than the 4-byte header/],
    ["bad magic", new Uint8Array([1, 2, 8, 1, 0, 0, 0, 1, 0]), /bad magic number/],
    ["wrong type", idx([3], [1, 2, 3], 0x0d), /element type 0xd/],
    [
      "truncated data",
      good.subarray(0, good.length - 1),
      /truncated: dimensions 3 need 3 data bytes, found 2/,
    ],
    ["trailing bytes", new Uint8Array([...good, 9]), /trailing bytes/],
    ["truncated header", good.subarray(0, 6), /truncated header/],
    ["zero dimension", idx([0], []), /zero dimension/],
    ["rank mismatch", idx([1, 3], [1, 2, 3]), /rank 2 \(expected 1\)/],
    ["corrupt gzip", new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]), /corrupt or truncated gzip/],
  ];
  for (const [name, bytes, pattern] of cases) {
    await t.step(name, () => {
      assert.throws(() => parseIdx(bytes, "bad-file", 1), (e: Error) => {
        assert.ok(e instanceof SyntaxError);
        assert.match(e.message, /^bad-file: /);
        assert.match(e.message, pattern);
        return true;
      });
    });
  }
});

Deno.test("idx: readIdx names the path; loadDataset lists where it looked", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte`, idx([1, 28, 28], new Uint8Array(700)));
  await assert.rejects(
    readIdx(`${dir}/t10k-images-idx3-ubyte`, 3),
    new RegExp(`${dir}/t10k-images-idx3-ubyte: not a valid IDX file: truncated`),
  );
  await assert.rejects(
    loadDataset("mnist", "test", { dataDir: dir, download: false, cacheDir: `${dir}/cache` }).then(
      () =>
        loadDataset("fashion", "test", {
          dataDir: `${dir}/none`,
          download: false,
          cacheDir: `${dir}/cache`,
        }),
    ),
    /not a valid IDX file|not found; looked in/,
  );
  await assert.rejects(
    loadDataset("cifar", "test"),
    /invalid dataset: "cifar" \(expected mnist or fashion\)/,
  );
  await Deno.remove(dir, { recursive: true });
});
