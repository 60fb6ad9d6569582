import assert from "node:assert/strict";
import { runFgsm } from "../lib/fgsm.ts";
import { trainModel } from "../lib/training.ts";

const quiet = { progress: false, log: () => {} };

Deno.test("fgsm: accuracy falls with eps, white box beats transfer, outputs are complete", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Three different nets, trained briefly on a subset: enough for FGSM to bite.
    const nets = [
      { model: "smaller", seed: 1 },
      { model: "n1", seed: 2 },
      { model: "mlp", seed: 3 },
    ] as const;
    const checkpoints: string[] = [];
    for (const n of nets) {
      const r = await trainModel({
        model: n.model,
        dataset: "mnist",
        limit: 3000,
        epochs: 2,
        lrMax: 1e-3,
        seed: n.seed,
        outDir: `${dir}/${n.model}`,
        ...quiet,
      });
      checkpoints.push(r.checkpoint);
    }
    const eps = [0, 0.05, 0.1, 0.3, 0.5];
    const s = await runFgsm({
      checkpoints,
      eps,
      testImages: 500,
      exampleEps: [0.3],
      exampleImages: 4,
      outDir: `${dir}/out`,
      ...quiet,
    });
    const labels = s.nets.map((n) => n.label);
    assert.deepEqual(labels, ["smaller", "n1", "mlp"]);
    // eps 0 changes nothing: the white-box accuracy is the clean accuracy, exactly.
    for (const l of labels) assert.equal(s.accuracy[l][0], s.cleanAccuracy[l]);
    // Non-increasing in eps, on average over the attacked nets.
    const mean = eps.map((_, e) =>
      labels.reduce((t, l) => t + s.accuracy[l][e], 0) / labels.length
    );
    for (let e = 1; e < eps.length; e++) {
      assert.ok(mean[e] <= mean[e - 1] + 1e-9, `mean accuracy rose at eps ${eps[e]}: ${mean}`);
    }
    // White box (diagonal) below transfer (off-diagonal) for eps >= 0.3.
    for (const m of s.matrices.filter((m) => m.eps >= 0.3)) {
      m.matrix.forEach((row, a) => {
        const others = row.filter((_, b) => b !== a);
        const transfer = others.reduce((t, v) => t + v, 0) / others.length;
        assert.ok(
          row[a] < transfer,
          `eps ${m.eps}: ${labels[a]} white box ${row[a]} >= ${transfer}`,
        );
      });
    }
    // The smaller CNN: far below clean at eps 0.3.
    const at03 = s.accuracy.smaller[eps.indexOf(0.3)];
    assert.ok(s.cleanAccuracy.smaller > 0.9, `clean ${s.cleanAccuracy.smaller}`);
    assert.ok(at03 < 0.5, `smaller at eps 0.3: ${at03}`);
    // Outputs: one CSV per eps with a header and a row per net, summary, report, figures.
    const csv = await Deno.readTextFile(`${dir}/out/matrix-eps0p3.csv`);
    const rows = csv.trim().split("\n");
    assert.equal(rows.length, 4);
    assert.equal(rows[0], "attacked\\evaluated,smaller,n1,mlp");
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/out/summary.json`));
    for (const key of ["nets", "eps", "cleanAccuracy", "accuracy", "matrices", "seconds"]) {
      assert.ok(key in summary, `summary.json lacks ${key}`);
    }
    const png = await Deno.readFile(`${dir}/out/matrix-eps0p3.png`);
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    const report = await Deno.readTextFile(`${dir}/out/report.html`);
    for (
      const part of ["Transfer matrix at eps = 0.3", "Saliency of mlp", "Adversarial examples"]
    ) {
      assert.ok(report.includes(part), `report lacks "${part}"`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fgsm: an eps outside [0, 1] is a clear error", async () => {
  await assert.rejects(
    () => runFgsm({ checkpoints: ["x"], eps: [0.1, 2], outDir: "unused", ...quiet }),
    /invalid --eps: each must be in \[0, 1\]/,
  );
});
