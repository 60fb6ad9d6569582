import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { splitFiles } from "../data/datasets.ts";
import { downloadIdx } from "../data/download.ts";
import { prepareDataset } from "../data/prepare.ts";

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("data: a download is streamed, checked against its SHA-256 and written whole", async () => {
  const raw = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]);
  const gz = new Uint8Array(gzipSync(raw));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/t10k-labels-idx1-ubyte.gz"
        ? new Response(gz, { headers: { "content-length": String(gz.length) } })
        : new Response("no", { status: 404 }),
  );
  const base = `http://127.0.0.1:${server.addr.port}/`;
  const dir = await Deno.makeTempDir();
  const lines: string[] = [];
  try {
    const path = await downloadIdx(
      base,
      "t10k-labels-idx1-ubyte",
      await sha256(raw),
      dir,
      (l) => lines.push(l),
    );
    assert.deepEqual(await Deno.readFile(path), gz);
    assert.ok(lines.some((l) => /of 0\.0 MB/.test(l)), "a progress line");
    // A wrong checksum, a missing file and a non-gzip body each name the problem, and leave
    // nothing behind.
    await assert.rejects(
      downloadIdx(base, "t10k-labels-idx1-ubyte", "00".repeat(32), `${dir}/bad`, () => {}),
      /checksum mismatch \(sha256 [0-9a-f]{64}, expected 0{64}\)/,
    );
    await assert.rejects(
      downloadIdx(base, "train-labels-idx1-ubyte", "00", `${dir}/bad`, () => {}),
      /train-labels-idx1-ubyte\.gz: HTTP 404/,
    );
    assert.throws(() => Deno.statSync(`${dir}/bad`));
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("data: prepareDataset finds a folder with all four files, else fetches", async () => {
  const dir = await Deno.makeTempDir();
  for (const f of splitFiles()) await Deno.writeFile(`${dir}/${f}.gz`, new Uint8Array([1]));
  const found = await prepareDataset("fashion", { dataDir: dir, apt: false, log: () => {} });
  assert.deepEqual(found, { name: "fashion", folder: dir, how: "found" });
  // Three of four files is not a dataset: the folder is passed over for a system copy, or the
  // (here unreachable) download.
  await Deno.remove(`${dir}/t10k-labels-idx1-ubyte.gz`);
  const second = await prepareDataset("fashion", {
    dataDir: dir,
    cacheDir: `${dir}/cache`,
    apt: false,
    baseUrl: "http://127.0.0.1:9/",
    log: () => {},
  }).catch((e: Error) => e);
  if (second instanceof Error) assert.match(second.message, /127\.0\.0\.1:9|connect|refused/i);
  else assert.notEqual(second.folder, dir);
  await Deno.remove(dir, { recursive: true });
});
