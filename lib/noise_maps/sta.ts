/**
 * Spike-triggered averages of every conv channel and mean activation maps over white (uniform,
 * independent-pixel) noise and over real images; for conv1, how well the STA recovers each
 * channel's own kernel; for hidden fc and recurrent units, their reverse correlation with the
 * noise. Both need white noise: with correlated noise they would show the filter blurred by the
 * pixel covariance.
 * @module
 */
import type { AnalysisResult, NdArray } from "../../ffi/model.ts";
import type { MapGrid, Table } from "../figures.ts";
import { readSafetensors } from "../safetensors.ts";
import { type RunContext, saveFigure, saveNpy, type Section } from "./context.ts";

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb + 1e-30);
}

/**
 * The effective conv1 kernels (sign-corrected by the batch-norm scale when there is one) and
 * their cosine similarity with the conv1 position-averaged STA, noise mean removed.
 */
export async function conv1KernelCosine(
  checkpoint: string,
  staPatch: NdArray,
  noiseMean: number,
): Promise<number[]> {
  const weights = await readSafetensors(checkpoint);
  const kernel = weights["conv1.weight"] ?? weights["stem.weight"];
  if (!kernel) return [];
  const [channels, , kh, kw] = kernel.shape;
  const [, ph, pw] = staPatch.shape;
  if (kh !== ph || kw !== pw) return [];
  const gamma = weights["bn1.weight"]?.data;
  return Array.from({ length: channels }, (_, c) => {
    const k = kernel.data.subarray(c * kh * kw, (c + 1) * kh * kw);
    const sign = gamma ? Math.sign(gamma[c]) || 1 : 1;
    const sta = Array.from(
      staPatch.data.subarray(c * kh * kw, (c + 1) * kh * kw),
      (v) => v - noiseMean,
    );
    return cosine(sta, Array.from(k, (v) => v * sign));
  });
}

/** Hidden units drawn per fc or recurrent layer: those whose reverse correlation is strongest. */
export const UNITS_SHOWN = 32;

/** The `count` maps of `maps` (`[n, 784]`) with the largest energy, strongest first. */
export function strongestMaps(maps: Float32Array, count: number): number[] {
  const n = maps.length / 784;
  const energy = Array.from({ length: n }, (_, u) => {
    let e = 0;
    for (const v of maps.subarray(u * 784, (u + 1) * 784)) e += v * v;
    return e;
  });
  return energy.map((_, u) => u).sort((a, b) => energy[b] - energy[a] || a - b).slice(0, count);
}

/**
 * The reverse correlation of each hidden fc or recurrent unit with white noise, saved whole and
 * drawn for the strongest units. Unlike the activation-weighted STA it is defined for units of
 * either sign, such as an RNN's tanh state.
 */
async function hiddenUnitMaps(ctx: RunContext, r: AnalysisResult): Promise<MapGrid[]> {
  const hidden = ctx.info.layers.filter((l) => l.kind === "fc" && l.name !== "logits");
  const grids: MapGrid[] = [];
  for (const layer of hidden) {
    const cov = r.layers[layer.name]?.staCentreCov;
    if (!cov) continue;
    const file = layer.name.replaceAll(".", "_");
    await saveNpy(ctx, `rc-${file}`, cov);
    const units = strongestMaps(cov.data, UNITS_SHOWN);
    const maps = new Float32Array(units.length * 784);
    units.forEach((u, i) => maps.set(cov.data.subarray(u * 784, (u + 1) * 784), i * 784));
    grids.push(
      await saveFigure<MapGrid>(ctx, {
        kind: "maps",
        name: `rc-${file}`,
        title: `${layer.name}: reverse correlation of the ${units.length} strongest of ` +
          `${layer.channels} units`,
        caption:
          "For each unit, E[a x] - E[a] E[x] over white noise: the pixels whose brightness " +
          "raises (red) or lowers (blue) the unit's output, its linear receptive field (colours " +
          "diverge around each map's mean, near 0). Units ordered by the energy of this map; all " +
          `${layer.channels} are in rc-${file}.npy.`,
        maps,
        count: units.length,
        titles: units.map((u) => `unit ${u}`),
        height: 28,
        width: 28,
        columns: 16,
        scale: 2,
      }),
    );
  }
  return grids;
}

/**
 * STA and activation maps of every conv layer, and the reverse correlation of hidden fc and
 * recurrent units, from a white-noise analysis `r`.
 */
export async function staSection(
  ctx: RunContext,
  r: AnalysisResult,
  checkpoint: string,
): Promise<{ conv1StaKernelCosine: number[]; section: Section }> {
  const { model, info, evalImages } = ctx;
  const evalN = evalImages.length / 784;
  const conv = info.layers.filter((l) => l.kind === "conv");
  // Compute: activation statistics over real images, and conv1's STA against its kernels.
  const real = await model.analyse(evalImages, {
    gamma: 1,
    staSamples: evalN,
    layers: conv.map((l) => l.name),
  });
  const firstPatch = conv.length ? r.layers[conv[0].name]?.staPatch : undefined;
  const noiseMean = r.stimulusMean.data.reduce((a, b) => a + b, 0) / 784;
  const conv1StaKernelCosine = firstPatch
    ? await conv1KernelCosine(checkpoint, firstPatch, noiseMean)
    : [];
  // Draw.
  const items: (MapGrid | Table)[] = [];
  if (conv1StaKernelCosine.length) {
    const sorted = [...conv1StaKernelCosine].sort((a, b) => a - b);
    ctx.log(
      `conv1 STA vs kernel cosine: median ${sorted[sorted.length >> 1].toFixed(3)}, ${
        sorted.filter((v) => v > 0.8).length
      }/${sorted.length} above 0.8`,
    );
    items.push({
      title: "conv1: cosine similarity of each channel's STA with its own kernel",
      caption:
        "STA minus the noise mean against the kernel, sign-corrected by the batch-norm scale. " +
        "Near 1: the STA recovers the filter.",
      header: ["channel", "cosine"],
      rows: conv1StaKernelCosine.map((v, c) => [c, v.toFixed(3)]),
    });
  }
  const channelTitles = (n: number) => Array.from({ length: n }, (_, c) => `ch ${c}`);
  for (const layer of conv) {
    const stats = r.layers[layer.name];
    const file = layer.name.replaceAll(".", "_");
    await saveNpy(ctx, `sta-${file}-centre`, stats.staCentre);
    if (stats.staPatch) await saveNpy(ctx, `sta-${file}-patch`, stats.staPatch);
    await saveNpy(ctx, `act-${file}-noise`, stats.activationMean);
    await saveNpy(ctx, `act-${file}-real`, real.layers[layer.name].activationMean);
    const grid = (g: Omit<MapGrid, "kind" | "count" | "titles" | "columns">) =>
      saveFigure<MapGrid>(ctx, {
        kind: "maps",
        count: layer.channels,
        titles: channelTitles(layer.channels),
        columns: 16,
        ...g,
      });
    if (stats.staPatch) {
      const p = stats.staPatch.shape[1];
      items.push(
        await grid({
          name: `sta-${file}-patch`,
          title: `${layer.name}: STA averaged over positions (${p}x${p} receptive field)`,
          caption:
            "For each channel, the activation-weighted mean of the noise patch each unit sees, " +
            "summed over all unit positions: the input pattern that drives the channel.",
          maps: stats.staPatch.data,
          height: p,
          width: p,
          scale: Math.max(3, Math.floor(42 / p)),
        }),
      );
    }
    items.push(
      await grid({
        name: `sta-${file}-centre`,
        title: `${layer.name}: STA of the centre unit`,
        caption: "The activation-weighted mean noise image for the unit at the centre of each " +
          "channel's map; structure appears only inside the unit's receptive field.",
        maps: stats.staCentre.data,
        height: 28,
        width: 28,
        scale: 2,
      }),
    );
    for (const [kind, res] of [["noise", r], ["real", real]] as const) {
      items.push(
        await grid({
          name: `act-${file}-${kind}`,
          title: `${layer.name}: mean activation per channel over ${
            kind === "noise" ? "noise" : `${evalN} test images`
          }`,
          caption: "Where in the image each channel responds on average (each map relative to " +
            "its own mean).",
          maps: res.layers[layer.name].activationMean.data,
          height: layer.height,
          width: layer.width,
          scale: Math.max(2, Math.floor(40 / layer.width)),
        }),
      );
    }
  }
  items.push(...await hiddenUnitMaps(ctx, r));
  return { conv1StaKernelCosine, section: { heading: "Spike-triggered analysis", items } };
}
