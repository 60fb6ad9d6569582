/**
 * wna — white-noise analysis of neural networks, on a native candle engine.
 *
 * @example
 * ```ts ignore
 * import { loadDataset, Model } from "./mod.ts";
 * const test = await loadDataset("mnist", "test", { limit: 100 });
 * using model = Model.create("smaller", { mean: test.mean, std: test.std });
 * const maps = await model.analyse(null, { samples: 1000 });
 * console.log(maps.counts.data);
 * ```
 * @module
 */
export { type Dataset, DATASET_NAMES, DatasetNotFoundError, loadDataset } from "./data/datasets.ts";
export { type Prepared, prepareDataset, type PrepareOptions } from "./data/prepare.ts";
export { parseIdx, readIdx } from "./data/idx.ts";
export { LibraryNotFoundError, NativeError, StatusCode } from "./ffi/errors.ts";
export {
  analysisArrays,
  type AnalysisOptions,
  type AnalysisResult,
  type ClassifyOptions,
  type DataNoiseFit,
  type EpochOptions,
  type LayerInfo,
  type Metrics,
  Model,
  MODEL_DEFAULTS,
  type ModelInfo,
  modelNames,
  type ModelOptions,
  type NdArray,
  type NoiseName,
  type OptimizerName,
  type StreamOptions,
  templateScores,
} from "./ffi/model.ts";
export { nativeVersion } from "./ffi/native.ts";
export {
  attribute,
  type AttributionMethod,
  type AttributionOptions,
  type Attributions,
  type FeatureVis,
  type FeatureVisOptions,
  maximiseActivation,
  type Target,
} from "./ffi/attribution.ts";
export { runVisualise, type VisualiseOptions, type VisualiseSummary } from "./lib/visualise.ts";
export { trustworthiness, tsne, type TsneOptions, type TsneResult } from "./ffi/tsne.ts";
export { runTsne, type TsneRunOptions, type TsneSummary } from "./lib/tsne.ts";
export {
  discriminate,
  frechetDistance,
  type GanEpochMetrics,
  type GanEpochOptions,
  ganTrainEpoch,
  generate,
} from "./ffi/gan.ts";
export {
  type ImportMeta,
  importMeta,
  importOnnx,
  type ImportOptions,
  importPytorch,
  type ImportResult,
  metaPath,
  type OnnxImportOptions,
} from "./lib/import.ts";
export { convertOnnx, type OnnxConversion } from "./ffi/onnx.ts";
export { type GanEpoch, type GanRunOptions, type GanSummary, runGan } from "./lib/gan.ts";
export { GAN_DEFAULTS, GAN_SPECS, type GanSpecs, LATENT_DIM } from "./lib/gan/specs.ts";
export { inceptionScore, klToUniform, measureQuality, type Quality } from "./lib/gan/quality.ts";
export { activationAtlas, type Atlas, type AtlasOptions } from "./lib/atlas.ts";
export type { LayerSpec, NetSpec } from "./ffi/spec.ts";
export { loadCheckpoint, saveCheckpoint, type Sidecar } from "./lib/checkpoint.ts";
export { trainModel, type TrainOptions, type TrainResult } from "./lib/training.ts";
export { type NoiseMapsOptions, type NoiseMapsSummary, runNoiseMaps } from "./lib/noise_maps.ts";
export {
  CASE_STUDY_NETS,
  DEFAULT_EPS,
  type FgsmOptions,
  type FgsmSummary,
  runFgsm,
} from "./lib/fgsm.ts";
export { decodeNpy, encodeNpy, encodeNpz, type NpyArray, readNpy } from "./lib/npy.ts";
export {
  lenetPairs,
  type MemberMetrics,
  type ModelPairs,
  type PairOptions,
  Population,
  type PopulationMember,
  type PopulationOptions,
} from "./ffi/confidence.ts";
export { type ConfidenceOptions, type ConfidenceSummary, runConfidence } from "./lib/confidence.ts";
export {
  fitMetaNet,
  META_FEATURES,
  type MetaKind,
  type MetaOptions,
  type MetaTask,
} from "./ffi/confidence.ts";
export { type MetaResult, runMetaNets } from "./lib/confidence/metanets.ts";
