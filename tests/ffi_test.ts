import assert from "node:assert/strict";
import { LibraryNotFoundError, NativeError, StatusCode } from "../ffi/errors.ts";
import { resolveLibrary } from "../ffi/library.ts";
import { type AnalysisOptions, Model, MODEL_DEFAULTS, modelNames } from "../ffi/model.ts";
import { native, nativeVersion } from "../ffi/native.ts";

/** An error buffer for calling the raw symbols. */
const errorBuffer = () => new Uint8Array(4096);
const message = (err: Uint8Array) => new TextDecoder().decode(err.subarray(0, err.indexOf(0)));

const isCode = (code: number, pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof NativeError, `expected NativeError, got ${e}`);
  assert.equal(e.code, code);
  assert.match(e.message, pattern);
  return true;
};

Deno.test("ffi: version names the build variant", () => {
  assert.match(nativeVersion(), /^\d+\.\d+\.\d+ (cpu|cuda)$/);
});

Deno.test("ffi: unknown model names the choices", () => {
  assert.throws(
    () => Model.create("resnet50"),
    isCode(StatusCode.UnknownModel, /unknown model "resnet50".*smaller/),
  );
  // The native side checks too, not only the TypeScript wrapper.
  const spec = new TextEncoder().encode(JSON.stringify({ model: "vgg", ...MODEL_DEFAULTS }));
  const err = errorBuffer();
  const status = native().wna_model_new(
    spec,
    BigInt(spec.length),
    new BigUint64Array(1),
    err,
    BigInt(err.length),
  );
  assert.equal(status, StatusCode.UnknownModel);
  // Both sides name every built-in, from the one list the library keeps.
  for (const name of modelNames()) assert.match(message(err), new RegExp(`\\b${name}\\b`));
  assert.equal(modelNames().length, 10);
});

Deno.test("ffi: double free and use after free are errors, not crashes", async () => {
  const model = Model.create("logreg");
  const handle = model.handle;
  model.close();
  model.close(); // idempotent at the class level
  const err = errorBuffer();
  assert.equal(native().wna_free(handle, err, BigInt(err.length)), StatusCode.BadHandle);
  assert.throws(() => model.info(), isCode(StatusCode.BadHandle, /used after close/));
  // A stale handle straight at the native side, through a non-blocking call.
  const out = new Float32Array(10);
  const px = new Float32Array(784);
  const status = await native().wna_predict(handle, px, 784n, out, 10n, err, BigInt(err.length));
  assert.equal(status, StatusCode.BadHandle);
  assert.match(new TextDecoder().decode(err.subarray(0, err.indexOf(0))), /handle \d+ is not open/);
});

Deno.test("ffi: wrong shapes and NaN input are typed errors from non-blocking calls", async () => {
  using model = Model.create("smaller", { seed: 3 });
  await assert.rejects(
    model.predict(new Float32Array(100)),
    /expected a non-empty Float32Array of n x 784/,
  );
  const nan = new Float32Array(2 * 784);
  nan[784 + 5] = NaN;
  await assert.rejects(
    model.predict(nan),
    isCode(StatusCode.NotFinite, /image 1 has a non-finite pixel \(NaN\) at index 5/),
  );
  await assert.rejects(
    model.trainEpoch(new Float32Array(4 * 784), new Uint8Array(3), { epoch: 0, totalSteps: 1 }),
    isCode(StatusCode.Shape, /expected 4 labels \(one per image\), got 3/),
  );
  await assert.rejects(
    model.trainEpoch(new Float32Array(4 * 784), new Uint8Array([0, 1, 2, 12]), {
      epoch: 0,
      totalSteps: 1,
    }),
    isCode(StatusCode.InvalidArgument, /label 12 out of range for 10 classes/),
  );
  await assert.rejects(
    model.analyse(null, { samples: 0 }),
    isCode(StatusCode.InvalidArgument, /samples must be > 0, got 0/),
  );
  await assert.rejects(
    model.analyse(null, { samples: 10, noise: "pink" as "uniform" }),
    isCode(
      StatusCode.InvalidArgument,
      /unknown variant `pink`, expected one of `uniform`, `gaussian`, `data`/,
    ),
  );
  await assert.rejects(
    model.analyse(null, { samples: 10, sampels: 5 } as AnalysisOptions),
    isCode(StatusCode.InvalidArgument, /analyse: invalid options: unknown field `sampels`/),
  );
  // JSON would carry NaN as null, which the native side would read as "the default".
  await assert.rejects(
    model.analyse(null, { samples: 10, seed: NaN }),
    /analyse: option seed must be a finite number, got NaN/,
  );
  await assert.rejects(
    model.classify(null, { samples: Infinity }),
    /classify: option samples must be a finite number, got Infinity/,
  );
  await assert.rejects(
    model.fgsm(new Float32Array(784), new Uint8Array(1), 2),
    isCode(StatusCode.InvalidArgument, /eps must be in \[0, 1\] \(pixel units\), got 2/),
  );
  await assert.rejects(
    model.analyse(null, { samples: 10, noise: "data" }),
    isCode(StatusCode.InvalidArgument, /needs the data's statistics first: call fitDataNoise/),
  );
  await assert.rejects(
    model.classify(null, { samples: 10, pattern: new Float32Array(784), weights: [NaN] }),
    isCode(StatusCode.NotFinite, /pattern or its weight is not finite/),
  );
  await assert.rejects(model.activations(new Float32Array(784), "conv9"), /unknown layer "conv9"/);
  assert.throws(
    () => model.setStimulation("conv1", 99, 1),
    isCode(StatusCode.InvalidArgument, /channel < 32/),
  );
  assert.throws(
    () => model.loadWeights("/nonexistent.safetensors"),
    isCode(StatusCode.Io, /cannot read \/nonexistent.safetensors/),
  );
});

Deno.test("ffi: a panic inside the library becomes an error", () => {
  const err = errorBuffer();
  assert.equal(native().wna_debug_panic(err, BigInt(err.length)), StatusCode.Panic);
  assert.match(
    new TextDecoder().decode(err.subarray(0, err.indexOf(0))),
    /internal error.*debug panic requested/,
  );
});

Deno.test("ffi: a missing library names the override and the fix", () => {
  const before = Deno.env.get("WNA_NATIVE_LIB");
  Deno.env.set("WNA_NATIVE_LIB", "/nowhere/libwna.so");
  try {
    assert.throws(
      () => resolveLibrary(),
      (e: Error) =>
        e instanceof LibraryNotFoundError &&
        /WNA_NATIVE_LIB points at \/nowhere\/libwna.so.*deno task build/.test(e.message),
    );
  } finally {
    if (before === undefined) Deno.env.delete("WNA_NATIVE_LIB");
    else Deno.env.set("WNA_NATIVE_LIB", before);
  }
});

Deno.test("ffi: models report parameters and layers with the documented shapes", () => {
  using smaller = Model.create("smaller");
  const info = smaller.info();
  const conv = Object.fromEntries(
    info.layers.map((l) => [l.name, [l.channels, l.height, l.width]]),
  );
  assert.deepEqual(conv.conv1, [32, 26, 26]);
  assert.deepEqual(conv.conv2, [64, 11, 11]);
  using larger = Model.create("larger");
  const names = larger.info().layers.map((l) => l.name);
  assert.equal(names.filter((n) => /^stage\d\.\d$/.test(n)).length, 2 + 1 + 3 + 2);
  const widths = larger.info().layers.filter((l) => /^stage\d\.0$/.test(l.name)).map((
    l,
  ) => [l.channels, l.height]);
  assert.deepEqual(widths, [[16, 14], [32, 14], [64, 7], [128, 7]]);
  using mlp = Model.create("mlp");
  assert.equal(mlp.info().parameters, 784 * 1000 + 1000 + 1000 * 10 + 10);
  using logreg = Model.create("logreg");
  assert.equal(logreg.info().parameters, 7850);
});
