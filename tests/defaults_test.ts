/**
 * Every default of the native options lives in `ffi/`: the library requires each field, so it
 * cannot hold a second value that could drift from the TypeScript one. These tests drop each
 * default in turn and expect the library to name the missing field.
 */
import assert from "node:assert/strict";
import { StatusCode } from "../ffi/errors.ts";
import { GAN_EPOCH_DEFAULTS } from "../ffi/gan.ts";
import { Model, MODEL_DEFAULTS } from "../ffi/model.ts";
import { native, optionsJson } from "../ffi/native.ts";
import { ANALYSIS_DEFAULTS, STREAM_DEFAULTS } from "../ffi/noise.ts";
import { EPOCH_DEFAULTS } from "../ffi/train.ts";

const message = (err: Uint8Array) => new TextDecoder().decode(err.subarray(0, err.indexOf(0)));

/** Each key of `defaults` left out of `full` in turn, with the native call's error. */
async function eachLeftOut(
  defaults: object,
  full: Record<string, unknown>,
  run: (options: Uint8Array<ArrayBuffer>, err: Uint8Array<ArrayBuffer>) => number | Promise<number>,
) {
  const keys = Object.keys(defaults);
  assert.ok(keys.length >= 4, `only ${keys.length} defaults`);
  for (const key of keys) {
    const { [key]: _, ...rest } = full;
    const err = new Uint8Array(4096);
    const status = await run(optionsJson("test", rest), err);
    assert.equal(status, StatusCode.InvalidArgument, `without ${key}: status ${status}`);
    assert.match(message(err), new RegExp(`missing field \`${key}\``), `without ${key}`);
  }
}

Deno.test("defaults: the library requires every model option ffi/model.ts defaults", async () => {
  await eachLeftOut(MODEL_DEFAULTS, { model: "logreg", ...MODEL_DEFAULTS }, (o, err) => {
    const out = new BigUint64Array(1);
    return native().wna_model_new(o, BigInt(o.length), out, err, BigInt(err.length));
  });
});

Deno.test("defaults: the library requires every analysis and stream option", async () => {
  using model = Model.create("logreg");
  const full = { ...ANALYSIS_DEFAULTS, samples: 10, dataNoise: null };
  await eachLeftOut(ANALYSIS_DEFAULTS, full, (o, err) => {
    const args = [model.handle, null, 0n, o, BigInt(o.length), null, new BigUint64Array(1)];
    return native().wna_analyse(
      ...args as [bigint, null, bigint, Uint8Array, bigint, null, BigUint64Array],
      err,
      BigInt(err.length),
    );
  });
  await eachLeftOut(
    STREAM_DEFAULTS,
    { ...STREAM_DEFAULTS, samples: 10, dataNoise: null },
    (o, err) => {
      const out = new Uint32Array(10);
      return native().wna_classify(
        model.handle,
        null,
        0n,
        null,
        0n,
        null,
        0n,
        o,
        BigInt(o.length),
        null,
        out,
        10n,
        err,
        BigInt(err.length),
      );
    },
  );
});

Deno.test("defaults: the library requires every training and GAN epoch option", async () => {
  using model = Model.create("logreg");
  const images = new Float32Array(2 * 784);
  const labels = new Uint8Array([0, 1]);
  const metrics = new Float64Array(4);
  await eachLeftOut(
    EPOCH_DEFAULTS,
    { ...EPOCH_DEFAULTS, epoch: 0, totalSteps: 1 },
    (o, err) =>
      native().wna_train_epoch(
        model.handle,
        images,
        BigInt(images.length),
        labels,
        2n,
        o,
        BigInt(o.length),
        null,
        metrics,
        err,
        BigInt(err.length),
      ),
  );
  using other = Model.create("logreg");
  await eachLeftOut(
    GAN_EPOCH_DEFAULTS,
    { ...GAN_EPOCH_DEFAULTS, epoch: 0 },
    (o, err) =>
      native().wna_gan_train_epoch(
        model.handle,
        other.handle,
        images,
        BigInt(images.length),
        o,
        BigInt(o.length),
        null,
        metrics,
        err,
        BigInt(err.length),
      ),
  );
});
