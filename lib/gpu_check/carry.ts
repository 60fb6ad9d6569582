/**
 * What the GPU machine needs, packed into `.carry/` here (deno, the CUDA library, an MNIST
 * subset as gzipped IDX), and the subset read back there. Imports no npm package: the GPU
 * machine runs without `deno install`.
 * @module
 */
import { gzipSync } from "node:zlib";
import { readIdx } from "../../data/idx.ts";

/** An IDX file (big-endian header) of `u8` data with the given dims, gzipped. */
function idxGz(data: Uint8Array, dims: number[]): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  view.setUint8(2, 0x08);
  view.setUint8(3, dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const all = new Uint8Array(header.length + data.length);
  all.set(header);
  all.set(data, header.length);
  return gzipSync(all);
}

/** Writes `.carry/`. */
export async function prepare() {
  const { loadDataset } = await import("../../data/datasets.ts");
  await Deno.mkdir(".carry/mnist", { recursive: true });
  const toU8 = (f: Float32Array) => Uint8Array.from(f, (v) => Math.round(v * 255));
  const train = await loadDataset("mnist", "train", { limit: 12000 });
  const test = await loadDataset("mnist", "test");
  for (const [name, ds] of [["train", train], ["test", test]] as const) {
    await Deno.writeFile(
      `.carry/mnist/${name}-images.idx.gz`,
      idxGz(toU8(ds.images), [ds.count, 28, 28]),
    );
    await Deno.writeFile(`.carry/mnist/${name}-labels.idx.gz`, idxGz(ds.labels, [ds.count]));
  }
  const lib = "native/target-cuda/release/libwna.so";
  await Deno.copyFile(lib, ".carry/libwna-cuda.so").catch((cause) => {
    throw new Error(`gpu-check: no CUDA library at ${lib}; run \`deno task build:cuda\` first`, {
      cause,
    });
  });
  const xz = await new Deno.Command("xz", {
    args: ["-9", "-T0", "-c", Deno.execPath()],
    stdout: "piped",
  })
    .output();
  if (!xz.success) throw new Error("gpu-check: xz failed; install xz-utils");
  await Deno.writeFile(".carry/deno.xz", xz.stdout);
  let total = 0;
  for await (const e of Deno.readDir(".carry")) {
    if (e.isFile) total += (await Deno.stat(`.carry/${e.name}`)).size;
  }
  for await (const e of Deno.readDir(".carry/mnist")) {
    total += (await Deno.stat(`.carry/mnist/${e.name}`)).size;
  }
  console.log(`.carry/ holds ${(total / 2 ** 20).toFixed(1)} MiB (carry limit 64 MiB)`);
}

/** One split of the carried MNIST subset, in pixel units. */
export async function load(dir: string, split: "train" | "test") {
  const images = await readIdx(`${dir}/${split}-images.idx.gz`, 3);
  const labels = await readIdx(`${dir}/${split}-labels.idx.gz`, 1);
  return {
    images: Float32Array.from(images.data as Uint8Array, (v) => v / 255),
    labels: new Uint8Array(labels.data as Uint8Array),
    count: labels.dims[0],
  };
}

/** A carried split. */
export type Split = Awaited<ReturnType<typeof load>>;
