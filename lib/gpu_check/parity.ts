/**
 * Parity of the device under test with the CPU: one set of weights and one noise seed through
 * every analysis array, the fused white-noise kernels against the general path, input
 * gradients and FGSM, and a training epoch from the same seed.
 * @module
 */
import { analysisArrays, Model } from "../../ffi/model.ts";
import { type Check, maxAbsDiff, MEAN, STD, timed } from "./check.ts";

/** Analysis, fused-kernel and input-gradient parity; failures go to `c.failures`. */
export async function parity(c: Check): Promise<void> {
  const { train, test, device, outDir, report, failures, log } = c;
  // (a) Parity: one set of weights, the same noise seed, CPU against CUDA.
  const cpu = Model.create("smaller", { seed: 0, mean: MEAN, std: STD, device: "cpu" });
  await cpu.trainEpoch(train.images, train.labels, {
    totalSteps: Math.ceil(train.count / 128),
    epoch: 0,
  });
  const weights = `${outDir}/parity.safetensors`;
  cpu.saveWeights(weights);
  const gpu = Model.create("smaller", { mean: MEAN, std: STD, device });
  gpu.loadWeights(weights);
  // Every array analyse returns: the class maps and the STA and activation statistics of all
  // three hidden layers, so the CUDA path of each accumulator is checked, not only the logits.
  const opts = { samples: 50_000, seed: 1, batchSize: 5000, staSamples: 5000 };
  const a = await cpu.analyse(null, opts);
  const b = await gpu.analyse(null, opts);
  const countDiff = a.counts.data.reduce((t, v, i) => t + Math.abs(v - b.counts.data[i]), 0);
  const arrays: Record<string, { maxAbsDiff: number; maxAbs: number }> = {};
  let worstMap = 0;
  const bArrays = analysisArrays(b);
  for (const [key, x] of Object.entries(analysisArrays(a))) {
    const d = maxAbsDiff(x.data, bArrays[key].data);
    const scale = x.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    arrays[key] = { maxAbsDiff: d, maxAbs: scale };
    // Maps are compared in absolute terms; sums such as counts and activation sums relatively.
    worstMap = Math.max(worstMap, scale > 1 ? d / scale : d);
  }
  const mapDiff = maxAbsDiff(a.classImages.data, b.classImages.data);
  const logitDiff = maxAbsDiff(
    await cpu.predict(test.images.subarray(0, 1000 * 784)),
    await gpu.predict(test.images.subarray(0, 1000 * 784)),
  );
  report.parity = {
    samples: opts.samples,
    countDifferences: countDiff,
    classImageMaxAbsDiff: mapDiff,
    worstArrayDiff: worstMap,
    logitMaxAbsDiff: logitDiff,
    arrays,
  };
  const parityOk = countDiff === 0 && worstMap <= 1e-4;
  if (!parityOk) failures.push("analysis parity");
  log(
    `parity: counts differ in ${countDiff} of ${opts.samples} samples; class images within ${
      mapDiff.toExponential(2)
    }, all ${Object.keys(arrays).length} arrays within ${worstMap.toExponential(2)} ` +
      `(${parityOk ? "PASS" : "FAIL"} at 1e-4); logits within ${logitDiff.toExponential(2)}`,
  );
  // The fused white-noise kernels (cuda/white_noise.cu) against the general path on the same
  // device: pure noise without STA, where every batch takes the fused kernels.
  const pure = { samples: 50_000, seed: 2, batchSize: 5000, staSamples: 0, layers: [] };
  const fused = await gpu.analyse(null, pure);
  Deno.env.set("WNA_FUSED", "0");
  const general = await gpu.analyse(null, pure);
  Deno.env.delete("WNA_FUSED");
  const fusedCounts = fused.counts.data.reduce(
    (t, v, i) => t + Math.abs(v - general.counts.data[i]),
    0,
  );
  const fusedMaps = ["classImages", "weightedImages", "thresholdImages"] as const;
  const fusedDiff = Math.max(
    ...fusedMaps.map((k) => maxAbsDiff(fused[k].data, general[k].data)),
  );
  const fusedOk = fusedCounts === 0 && fusedDiff <= 1e-4;
  if (!fusedOk) failures.push("fused parity");
  report.fusedParity = {
    samples: pure.samples,
    countDifferences: fusedCounts,
    mapMaxAbsDiff: fusedDiff,
  };
  log(
    `fused kernels against the general path: counts differ in ${fusedCounts} of ${pure.samples}; ` +
      `class, weighted and threshold images within ${fusedDiff.toExponential(2)} ` +
      `(${fusedOk ? "PASS" : "FAIL"} at 1e-4)`,
  );
  // Input gradients (FGSM's engine) through the backward pass of each device.
  const probe = test.images.subarray(0, 1000 * 784);
  const probeLabels = test.labels.subarray(0, 1000);
  const ga = await cpu.inputGradients(probe, probeLabels);
  const gb = await gpu.inputGradients(probe, probeLabels);
  const gradScale = ga.gradients.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const gradDiff = maxAbsDiff(ga.gradients, gb.gradients) / gradScale;
  const adversarial = async (m: Model) =>
    (await m.evaluate(await m.fgsm(probe, probeLabels, 0.1), probeLabels)).accuracy;
  const [fa, fb] = [await adversarial(cpu), await adversarial(gpu)];
  if (gradDiff > 1e-4) failures.push("input-gradient parity");
  report.gradientParity = { relativeMaxDiff: gradDiff, fgsmAccuracy: { cpu: fa, cuda: fb } };
  log(
    `input gradients: within ${gradDiff.toExponential(2)} of the largest ` +
      `(${gradDiff <= 1e-4 ? "PASS" : "FAIL"} at 1e-4); FGSM eps 0.1 accuracy cpu ${
        (100 * fa).toFixed(2)
      }%, ${device} ${(100 * fb).toFixed(2)}%`,
  );
  cpu.close();
  gpu.close();
}

/** One epoch of `model` from seed 3 on `device`: its time, rate and test accuracy. */
export async function epoch(
  c: Check,
  device: "cpu" | "cuda",
  model: "smaller" | "larger" = "smaller",
) {
  const { train, test } = c;
  using m = Model.create(model, { seed: 3, mean: MEAN, std: STD, device });
  const [, s] = await timed(() =>
    m.trainEpoch(train.images, train.labels, {
      totalSteps: Math.ceil(train.count / 128),
      epoch: 0,
    })
  );
  const accuracy = (await m.evaluate(test.images, test.labels)).accuracy;
  return { seconds: s, imagesPerSecond: train.count / s, accuracy };
}

/** Training parity: the same seed's epoch on the CPU and the device, within 1 point. */
export async function trainingParity(c: Check): Promise<Awaited<ReturnType<typeof epoch>>> {
  const { train, device, report, failures, log } = c;
  {
    // Warm-up on a throwaway model: the driver JIT-compiles candle's PTX on first use (and
    // caches it on disk), which is not training time.
    using w = Model.create("smaller", { seed: 4, mean: MEAN, std: STD, device });
    await w.trainEpoch(train.images.subarray(0, 1024 * 784), train.labels.subarray(0, 1024), {
      totalSteps: 8,
      epoch: 0,
    });
  }
  const cpuEpoch = await epoch(c, "cpu");
  const gpuEpoch = await epoch(c, device);
  report.training = { images: train.count, cpu: cpuEpoch, cuda: gpuEpoch };
  if (Math.abs(cpuEpoch.accuracy - gpuEpoch.accuracy) >= 0.01) failures.push("training parity");
  log(
    `training: one epoch of ${train.count} images — cpu ${
      (100 * cpuEpoch.accuracy).toFixed(2)
    }%, ` +
      `${device} ${(100 * gpuEpoch.accuracy).toFixed(2)}% (${
        Math.abs(cpuEpoch.accuracy - gpuEpoch.accuracy) < 0.01 ? "PASS" : "FAIL"
      } at 1 point)`,
  );

  return gpuEpoch;
}
