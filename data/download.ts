/**
 * Downloading one IDX file: streamed with a progress line, checked against the SHA-256 of its
 * decompressed content, and written atomically.
 * @module
 */

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Downloads `<base><file>.gz`, checks the SHA-256 of its decompressed content and writes it
 * atomically into `dir`.
 * @returns the path written
 */
export async function downloadIdx(
  base: string,
  file: string,
  expectedSha256: string,
  dir: string,
  log: (line: string) => void = console.log,
): Promise<string> {
  const url = `${base}${file}.gz`;
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotCapable)) throw e;
    const host = new URL(url).host;
    throw new Deno.errors.NotCapable(
      `downloading ${url} needs network access: run with --allow-net=${host}, or fetch the ` +
        "datasets once with `deno task data` in the wna checkout, or pass a folder of IDX files " +
        "(--data-dir, or dataDir in the library)",
      { cause: e },
    );
  }
  if (!res.ok || !res.body) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get("content-length") ?? 0);
  const chunks: Uint8Array[] = [];
  let got = 0, shown = -1;
  for await (const chunk of res.body) {
    chunks.push(chunk);
    got += chunk.length;
    const tenth = total ? Math.floor((10 * got) / total) : -1;
    if (tenth > shown) {
      shown = tenth;
      log(`  ${file}.gz: ${(got / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`);
    }
  }
  const gz = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) gz.set(c, (at += c.length) - c.length);
  const { gunzipSync } = await import("node:zlib");
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = new Uint8Array(gunzipSync(gz));
  } catch (e) {
    throw new SyntaxError(`${url}: not a gzip file (${(e as Error).message})`, { cause: e });
  }
  const hash = await sha256Hex(raw);
  if (hash !== expectedSha256) {
    throw new Error(`${url}: checksum mismatch (sha256 ${hash}, expected ${expectedSha256})`);
  }
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${file}.gz`;
  const tmp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeFile(tmp, gz);
  await Deno.rename(tmp, path);
  return path;
}
