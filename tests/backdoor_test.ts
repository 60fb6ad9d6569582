import assert from "node:assert/strict";
import { runBackdoor, stampTrigger, triggerPixels } from "../lib/backdoor.ts";
import type { Dataset } from "../data/datasets.ts";

Deno.test("backdoor: the trigger sits one pixel in from the bottom-right corner", () => {
  assert.deepEqual(triggerPixels(2), [25 * 28 + 25, 25 * 28 + 26, 26 * 28 + 25, 26 * 28 + 26]);
  assert.throws(() => triggerPixels(0), /invalid patch: 0/);
  const ds = { images: new Float32Array(2 * 784), labels: new Uint8Array([3, 4]) } as Dataset;
  const stamped = stampTrigger(ds, [1], triggerPixels(2), 7);
  assert.deepEqual([...stamped.labels], [3, 7]);
  assert.equal(stamped.images[784 + 26 * 28 + 26], 1);
  assert.equal(stamped.images[26 * 28 + 26], 0, "image 0 untouched");
  assert.equal(ds.images[784 + 26 * 28 + 26], 0, "the input is not modified");
});

Deno.test("backdoor: the poisoned target is flagged, the clean model flags nothing", async () => {
  const dir = await Deno.makeTempDir();
  const s = await runBackdoor({
    outDir: dir,
    limit: 6000,
    fraction: 0.1,
    epochs: 2,
    samples: 20_000,
    target: 0,
    log: () => {},
  });
  assert.ok(s.poisoned.triggerSuccess > 0.9, `trigger success ${s.poisoned.triggerSuccess}`);
  assert.ok(s.clean.triggerSuccess < 0.2, `clean trigger success ${s.clean.triggerSuccess}`);
  assert.ok(s.poisoned.cleanAccuracy > 0.9, `poisoned clean accuracy ${s.poisoned.cleanAccuracy}`);
  assert.deepEqual(s.poisoned.flagged, [0]);
  assert.deepEqual(s.clean.flagged, []);
  await Deno.remove(dir, { recursive: true });
});
