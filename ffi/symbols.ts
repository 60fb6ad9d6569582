/**
 * The native library's exports, as `native/src/abi/*.rs` declares them. Every function returns
 * an i32 status (see `errors.ts`) and ends with the error buffer and its capacity, which
 * `call()` in `native.ts` appends.
 */
export const symbols = {
  /** (buf: *mut u8, cap: usize, len_out: *mut usize, err, err_cap) */
  wna_version: { parameters: ["buffer", "usize", "buffer", "buffer", "usize"], result: "i32" },
  /** (buf: *mut u8, cap: usize, len_out: *mut usize, err, err_cap): the built-in model names */
  wna_models: { parameters: ["buffer", "usize", "buffer", "buffer", "usize"], result: "i32" },
  /** (spec: *const u8, spec_len: usize, handle_out: *mut u64, err: *mut u8, err_cap: usize) */
  wna_model_new: { parameters: ["buffer", "usize", "buffer", "buffer", "usize"], result: "i32" },
  /** (handle: u64, err: *mut u8, err_cap: usize) */
  wna_free: { parameters: ["u64", "buffer", "usize"], result: "i32" },
  /** (handle: u64, buf: *mut u8, cap: usize, len_out: *mut usize, err: *mut u8, err_cap: usize) */
  wna_model_info: {
    parameters: ["u64", "buffer", "usize", "buffer", "buffer", "usize"],
    result: "i32",
  },
  /** (handle: u64, path: *const u8, path_len: usize, what: u32, save: u32, err, err_cap) */
  wna_model_io: {
    parameters: ["u64", "buffer", "usize", "u32", "u32", "buffer", "usize"],
    result: "i32",
  },
  /** (handle: u64, pixels: *const f32, n: usize, out: *mut f32, out_len: usize, err, err_cap) */
  wna_predict: {
    parameters: ["u64", "buffer", "usize", "buffer", "usize", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, pixels: *const f32, n: usize, layer: *const u8, layer_len: usize,
   *  out: *mut f32, out_len: usize, err, err_cap) */
  wna_activations: {
    parameters: ["u64", "buffer", "usize", "buffer", "usize", "buffer", "usize", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, layer: *const u8, layer_len: usize, channel: i64, delta: f32, err, err_cap) */
  wna_set_stimulation: {
    parameters: ["u64", "buffer", "usize", "i64", "f32", "buffer", "usize"],
    result: "i32",
  },
  /** (handle: u64, pixels: *const f32, n: usize, labels: *const u8, n_labels: usize,
   *  options: *const u8, options_len: usize, progress: *mut u64, metrics_out: *mut f64, err, cap) */
  wna_train_epoch: {
    parameters: [
      "u64",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, pixels: *const f32, n: usize, labels: *const u8, n_labels: usize,
   *  progress: *mut u64, metrics_out: *mut f64, err, err_cap) */
  wna_evaluate: {
    parameters: [
      "u64",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, pixels: *const f32 (nullable), n: usize, options: *const u8, options_len: usize,
   *  progress: *mut u64, handle_out: *mut u64, err, err_cap) */
  wna_attribute: {
    parameters: [
      "u64",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  wna_visualise: {
    parameters: [
      "u64",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  wna_analyse: {
    parameters: [
      "u64",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, pixels: *const f32 (nullable), n: usize, pattern: *const f32 (nullable),
   *  pattern_len: usize, weights: *const f32, n_weights: usize, options: *const u8,
   *  options_len: usize, progress: *mut u64, out: *mut u32, out_len: usize, err, err_cap) */
  wna_classify: {
    parameters: [
      "u64",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
      "usize",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, pixels: *const f32, n: usize, fit_out: *mut u64, arrays_out: *mut u64,
   *  err, err_cap) */
  wna_fit_data_noise: {
    parameters: ["u64", "buffer", "usize", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, buf: *mut u8, cap: usize, len_out: *mut usize, err, err_cap) */
  wna_arrays_manifest: {
    parameters: ["u64", "buffer", "usize", "buffer", "buffer", "usize"],
    result: "i32",
  },
  /** (handle: u64, name: *const u8, name_len: usize, out: *mut f32, out_len: usize, err, cap) */
  wna_arrays_read: {
    parameters: ["u64", "buffer", "usize", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
  /** (pixels: *const f32, n: usize, options: *const u8, options_len: usize, out: *mut f32,
   *  out_len: usize, err, err_cap) */
  /** (data: *const f32, n_values: usize, options: *const u8, options_len: usize,
   *  progress: *mut u64, handle_out: *mut u64, err, err_cap) */
  wna_tsne: {
    parameters: ["buffer", "usize", "buffer", "usize", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** (original: *const f32, n: usize, dims: usize, embedded: *const f32, n_embedded: usize,
   *  embedded_dims: usize, k: usize, out: *mut f64, err, err_cap) */
  wna_trustworthiness: {
    parameters: [
      "buffer",
      "usize",
      "usize",
      "buffer",
      "usize",
      "usize",
      "usize",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  wna_augment: {
    parameters: ["buffer", "usize", "buffer", "usize", "buffer", "usize", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** (templates: *const f32, classes: usize, pixels: *const f32, n: usize,
   *  centre: *const f32 (nullable), centre_len: usize, out: *mut f32, out_len: usize, err, cap) */
  wna_template_scores: {
    parameters: [
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, pixels: *const f32, n: usize, labels: *const u8, n_labels: usize,
   *  out: *mut f32, out_len: usize, loss_out: *mut f64, err, err_cap) */
  wna_input_gradients: {
    parameters: [
      "u64",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, pixels: *const f32, n: usize, labels: *const u8, n_labels: usize, eps: f32,
   *  out: *mut f32, out_len: usize, err, err_cap) */
  wna_fgsm: {
    parameters: [
      "u64",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "f32",
      "buffer",
      "usize",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  /** (g: u64, d: u64, pixels: *const f32, n: usize, options: *const u8, options_len: usize,
   *  progress: *mut u64, metrics_out: *mut f64, err, err_cap) */
  wna_gan_train_epoch: {
    parameters: [
      "u64",
      "u64",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, latent: *const f32, n: usize, out: *mut f32, out_len: usize, err, err_cap) */
  wna_generate: {
    parameters: ["u64", "buffer", "usize", "buffer", "usize", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, pixels: *const f32, n: usize, out: *mut f32, out_len: usize, err, err_cap) */
  wna_discriminate: {
    parameters: ["u64", "buffer", "usize", "buffer", "usize", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** (a: *const f32, n_a: usize, b: *const f32, n_b: usize, dims: usize, out: *mut f64, err, cap) */
  wna_frechet: {
    parameters: ["buffer", "usize", "buffer", "usize", "usize", "buffer", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** (request: *const u8, request_len: usize, buf: *mut u8, cap: usize, len_out: *mut usize,
   *  err, err_cap) */
  wna_onnx_import: {
    parameters: ["buffer", "usize", "buffer", "usize", "buffer", "buffer", "usize"],
    result: "i32",
  },
  /** (err: *mut u8, err_cap: usize): panics on purpose, for the tests. */
  wna_debug_panic: { parameters: ["buffer", "usize"], result: "i32" },
  /** (options: *const u8, options_len: usize, handle_out: *mut u64, err: *mut u8, err_cap: usize) */
  wna_population_new: {
    parameters: ["buffer", "usize", "buffer", "buffer", "usize"],
    result: "i32",
  },
  /** (handle: u64, pixels: *const f32, n: usize, labels: *const u8, n_labels: usize,
   *  epoch: u64 (u64::MAX: evaluate), progress: *mut u64, metrics_out: *mut f64,
   *  metrics_len: usize, err, err_cap) */
  wna_population_run: {
    parameters: [
      "u64",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "u64",
      "buffer",
      "buffer",
      "usize",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  /** (handle: u64, index: u64, path: *const u8, path_len: usize, err: *mut u8, err_cap: usize) */
  wna_population_save: {
    parameters: ["u64", "u64", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
  /** (options: *const u8, options_len: usize, test: *const f32, test_len: usize,
   *  test_labels: *const u8, test_count: usize, reference: *const f32, reference_len: usize,
   *  reference_labels: *const u8, reference_count: usize, progress: *mut u64,
   *  handle_out: *mut u64, err, err_cap) */
  wna_lenet_pairs: {
    parameters: [
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
  /** (options: *const u8, options_len: usize, features: *const f32, n_values: usize,
   *  targets: *const f32, n: usize, train: *const u32, n_train: usize, test: *const u32,
   *  n_test: usize, progress: *mut u64, predictions_out: *mut f32, predictions_len: usize,
   *  err, err_cap) */
  wna_metanet_fit: {
    parameters: [
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
      "usize",
      "buffer",
      "usize",
    ],
    result: "i32",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;
