import assert from "node:assert/strict";
import { encodeSafetensors, parseSafetensors } from "../lib/safetensors.ts";
import { readSidecar } from "../lib/checkpoint.ts";

/** A safetensors file whose header is `header` (as given) over `data` bytes. */
function withHeader(header: unknown, data: number): Uint8Array {
  const head = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const bytes = new Uint8Array(8 + head.length + data);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(head.length), true);
  bytes.set(head, 8);
  return bytes;
}

Deno.test("safetensors: a well-formed file round-trips", () => {
  const w = { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) };
  const back = parseSafetensors(encodeSafetensors({ w }), "w.safetensors");
  assert.deepEqual(back.w.shape, [2, 3]);
  assert.deepEqual(Array.from(back.w.data), [1, 2, 3, 4, 5, 6]);
});

Deno.test("safetensors: corrupt files get named errors", () => {
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "offsets past the end",
      withHeader({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, 8),
      /w's data_offsets \[0, 16\] lie outside the 8 data bytes/,
    ],
    [
      "offsets backwards",
      withHeader({ w: { dtype: "F32", shape: [1], data_offsets: [8, 4] } }, 8),
      /w's data_offsets \[8, 4\] lie outside/,
    ],
    [
      "a shape that does not match its bytes",
      withHeader({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8),
      /w has shape \[3\] \(12 bytes of F32\) but data_offsets \[0, 8\] hold 8 bytes/,
    ],
    ["a header that is not JSON", withHeader("{not json", 0), /header is not valid JSON/],
    ["a header that is not an object", withHeader("[1, 2]", 0), /header is not a JSON object/],
    [
      "an entry without offsets",
      withHeader({ w: { dtype: "F32", shape: [1] } }, 4),
      /w needs a dtype, a shape and two data_offsets/,
    ],
    ["a truncated header", withHeader({ w: 1 }, 0).subarray(0, 12), /truncated safetensors header/],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(() => parseSafetensors(bytes, "bad.safetensors"), (e: Error) => {
      assert.ok(e instanceof SyntaxError, `${what}: ${e.name}`);
      assert.match(e.message, /^bad\.safetensors: /, what);
      assert.match(e.message, message, what);
      return true;
    });
  }
});

Deno.test("checkpoint: a missing or corrupt sidecar gets a named error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const weights = `${dir}/m.safetensors`;
    await assert.rejects(readSidecar(weights), /no sidecar .*m\.json beside/);
    await Deno.writeTextFile(`${dir}/m.json`, "{truncated");
    await assert.rejects(readSidecar(weights), (e: Error) => {
      assert.ok(e instanceof SyntaxError);
      assert.match(e.message, /m\.json is not a valid sidecar/);
      return true;
    });
    await Deno.writeTextFile(`${dir}/m.json`, JSON.stringify({ model: "smaller" }));
    await assert.rejects(
      readSidecar(weights),
      /not a valid sidecar \(model or normalisation missing\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
