//! wna's CUDA kernels (`src/cuda/*.cu`), compiled for the CPU by the host emulator in
//! `tests/cuda_emulator` and run with the launch arguments the GPU path builds, against the CPU:
//! the fused white-noise kernels must give what `analyse` gives (the same class counts, maps
//! within 1e-4), the noise kernels the CPU's Philox stream, the batch-norm kernel the CPU op's
//! bits. CI has no GPU; this runs the kernels' own source there.

mod common;
#[path = "common/emulator.rs"]
mod emulator;

use candle_core::{Device, Tensor};
use common::max_rel_diff;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use wna::model::Model;
use wna::models::builtin;
use wna::noise::fused::{
    class_sums_shared_bytes, split_totals, sum_width, FusedPlan, CHUNK, THREADS,
};
use wna::noise::fused_ops::{NoiseArgs, NoiseDraw};
use wna::noise::{analyse, noise_tensor, AnalysisConfig, NoiseKind, NOISE_STREAM};
use wna::progress::Progress;
use wna::spec::NetSpec;

/// Shared memory an H100 block may opt in to: the plans of these tests are an H100's.
const H100_SHARED: usize = 227 * 1024;

type Features = unsafe extern "C" fn(
    u32,
    u32,
    u64,
    *const f32,
    *mut f32,
    u64,
    u32,
    *const wna::noise::fused::Geometry,
    u32,
    u32,
    u32,
    u32,
    f32,
    f32,
    f32,
    f32,
);
type ClassSums = unsafe extern "C" fn(
    u32,
    u32,
    u64,
    *const f32,
    *mut f32,
    u64,
    u32,
    u32,
    f32,
    u32,
    u32,
    u32,
    u32,
    u32,
    f32,
    f32,
);
type Reduce = unsafe extern "C" fn(u32, u32, *const f32, u32, u32, *mut f64);
type NoiseUniform = unsafe extern "C" fn(u32, u32, *mut f32, u64, u32, u32, u32, u64);
type NoiseNormal = unsafe extern "C" fn(u32, u32, *mut f32, u64, u32, u32, u32, u64, f32, f32);
type ScaleShift = unsafe extern "C" fn(
    u32,
    u32,
    *const f32,
    *const f32,
    *const f32,
    *mut f32,
    u64,
    u32,
    u32,
    u32,
);

struct Emulator {
    features: Features,
    class_sums: ClassSums,
    reduce: Reduce,
    noise_uniform: NoiseUniform,
    noise_normal: NoiseNormal,
    scale_shift: ScaleShift,
}

/// The emulated kernels' launchers.
fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        let lib = emulator::library();
        // SAFETY: each type above is its launcher's C signature in tests/cuda_emulator.
        unsafe {
            Emulator {
                features: lib.launcher("emu_wn_features"),
                class_sums: lib.launcher("emu_wn_class_sums"),
                reduce: lib.launcher("emu_wn_reduce"),
                noise_uniform: lib.launcher("emu_noise_uniform"),
                noise_normal: lib.launcher("emu_noise_normal"),
                scale_shift: lib.launcher("emu_scale_shift"),
            }
        }
    })
}

/// A model with batch-norm statistics and affine parameters far from their defaults, so the
/// kernels' batch norm is exercised, and logits centred on noise, so that noise is not all given
/// one class.
fn model(spec: NetSpec) -> Model {
    let last = spec.layers.len() - 1;
    let logits_bias = format!("{}.bias", spec.layers[last].param_name(last).unwrap());
    let model = Model::new(spec, Device::Cpu, 7, 0.1307, 0.3081).unwrap();
    let vars = model.varmap.data().lock().unwrap();
    let mut names: Vec<_> = vars.keys().cloned().collect();
    names.sort();
    for (i, name) in names.iter().enumerate() {
        let var = &vars[name];
        let n = var.as_tensor().elem_count();
        let mut r = vec![0f32; n];
        wna::philox::Philox::new(11, i as u32, 0).fill_uniform(&mut r);
        let v: Vec<f32> = if *name == logits_bias {
            vec![0.0; n]
        } else if name.ends_with("running_var") {
            r.iter().map(|u| 0.3 + 2.0 * u).collect()
        } else if name.ends_with("running_mean") || name.ends_with(".bias") {
            r.iter().map(|u| 0.4 * (u - 0.5)).collect()
        } else if name.starts_with("bn") && name.ends_with(".weight") {
            r.iter().map(|u| 0.5 + u).collect()
        } else {
            continue;
        };
        var.set(&Tensor::from_vec(v, var.as_tensor().shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    // Logits centred per class over a batch of noise, so that the samples' differences, not a
    // constant offset, pick the class.
    let x = noise_tensor(1_000_000, 200, 3, &NoiseKind::Uniform, &Device::Cpu).unwrap();
    drop(vars);
    let logits = model
        .logits(
            &model
                .normalise(&x.reshape((200, 1, 28, 28)).unwrap())
                .unwrap(),
        )
        .unwrap();
    let centre = (logits.mean(0).unwrap() * -1.0).unwrap();
    model.varmap.data().lock().unwrap()[&logits_bias]
        .set(&centre)
        .unwrap();
    model
}

/// What the GPU path computes for `samples` samples in batches of `batch`, with the kernels
/// emulated: `analyse`'s class sums, weights and stimulus sum.
fn emulated_run(
    model: &Model,
    plan: &FusedPlan,
    samples: usize,
    batch: usize,
    noise: NoiseDraw,
    threshold: f32,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f32>) {
    let emu = emulator();
    let (g, c) = (plan.geometry, plan.classes);
    let args = NoiseArgs::from(noise);
    let (in_mul, in_add) = model.normalisation();
    let width = sum_width(c);
    let mut totals = vec![0f64; width];
    let mut first_logits = Vec::new();
    let mut first = 0usize;
    while first < samples {
        let count = batch.min(samples - first);
        let mut features = vec![f32::NAN; count * g.features()];
        // Two blocks, so the grid-stride loop and a short last group are both taken.
        let blocks = 2u32;
        // SAFETY: buffers of the sizes the kernel reads and writes.
        unsafe {
            (emu.features)(
                blocks,
                THREADS,
                g.features_shared_bytes(g.group as usize) as u64,
                plan.params.as_ptr(),
                features.as_mut_ptr(),
                first as u64,
                count as u32,
                &g,
                args.seed_lo,
                args.seed_hi,
                args.stream,
                args.normal,
                args.mean,
                args.std,
                in_mul,
                in_add,
            )
        };
        assert!(
            features.iter().all(|v| v.is_finite()),
            "a feature was not written"
        );
        let features = Tensor::from_vec(features, (count, g.features()), &Device::Cpu).unwrap();
        let logits = plan.logits(&features).unwrap();
        if first == 0 {
            first_logits = logits.flatten_all().unwrap().to_vec1().unwrap();
        }
        let logits: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
        // Blocks of 2 chunks: several blocks, and a short last chunk when count % 32 != 0.
        let per_block = 2 * CHUNK;
        let blocks = count.div_ceil(per_block);
        let mut partials = vec![f32::NAN; blocks * width];
        let mut batch_totals = vec![0f64; width];
        // SAFETY: as above.
        unsafe {
            (emu.class_sums)(
                blocks as u32,
                THREADS,
                class_sums_shared_bytes(c) as u64,
                logits.as_ptr(),
                partials.as_mut_ptr(),
                first as u64,
                count as u32,
                c as u32,
                threshold,
                per_block as u32,
                args.seed_lo,
                args.seed_hi,
                args.stream,
                args.normal,
                args.mean,
                args.std,
            );
            (emu.reduce)(
                width.div_ceil(256) as u32,
                256,
                partials.as_ptr(),
                blocks as u32,
                width as u32,
                batch_totals.as_mut_ptr(),
            );
        }
        totals
            .iter_mut()
            .zip(&batch_totals)
            .for_each(|(t, b)| *t += b);
        first += count;
    }
    let totals = Tensor::from_vec(totals, width, &Device::Cpu).unwrap();
    let (class_sums, counts, stimulus) = split_totals(&totals, c).unwrap();
    let host = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    (host(class_sums), host(counts), host(stimulus), first_logits)
}

/// Means per class, as `analyse` forms them from sums and weights.
fn means(sums: &[f64], weights: &[f64]) -> Vec<f32> {
    sums.chunks_exact(784)
        .zip(weights)
        .flat_map(|(s, &w)| {
            s.iter()
                .map(move |v| if w > 0.0 { (v / w) as f32 } else { 0.0 })
        })
        .collect()
}

fn check(spec: NetSpec, noise: NoiseKind) {
    let model = model(spec);
    let plan = FusedPlan::new(&model, H100_SHARED)
        .unwrap()
        .expect("a net of the fused shape");
    let (samples, batch, seed) = (150usize, 70usize, 5u64);
    let draw = NoiseDraw::of(&noise, seed).expect("noise the kernels draw");
    // A threshold that some samples pass and others do not: the median top softmax of the
    // first batch on the CPU.
    let x = noise_tensor(0, batch, seed, &noise, &Device::Cpu).unwrap();
    let cpu_logits = model
        .logits(
            &model
                .normalise(&x.reshape((batch, 1, 28, 28)).unwrap())
                .unwrap(),
        )
        .unwrap();
    let mut top: Vec<f32> = candle_nn::ops::softmax_last_dim(&cpu_logits)
        .unwrap()
        .max(1)
        .unwrap()
        .to_vec1()
        .unwrap();
    top.sort_by(f32::total_cmp);
    let threshold = top[batch / 2];

    let (class_sums, counts, stimulus, logits) =
        emulated_run(&model, &plan, samples, batch, draw, threshold);
    let cpu_logits: Vec<f32> = cpu_logits.flatten_all().unwrap().to_vec1().unwrap();
    let d = max_rel_diff(&cpu_logits, &logits);
    assert!(
        d < 1e-4,
        "logits differ from the CPU model's by {d} of the largest"
    );

    let cfg = AnalysisConfig {
        samples: samples as u64,
        batch_size: batch,
        seed,
        noise,
        threshold,
        gamma: 0.0,
        sta_samples: 0,
        layers: Vec::new(),
        keep_stimuli: 0,
    };
    let counters = [AtomicU64::new(0), AtomicU64::new(0)];
    let cpu = analyse(&model, None, &cfg, Progress::new(&counters)).unwrap();
    let c = plan.classes;
    let get = |name: &str| cpu.get(name).unwrap().1.clone();
    let as_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    let summary = |name: &str| -> Vec<f64> {
        let values = cpu.summary(name).unwrap().as_array().unwrap();
        values.iter().map(|v| v.as_f64().unwrap()).collect()
    };
    assert_eq!(summary("counts"), counts[..c], "class counts");
    assert_eq!(summary("thresholdCounts"), counts[2 * c..]);
    let predicted = counts[..c].iter().filter(|&&n| n > 0.0).count();
    assert!(
        predicted >= 2,
        "only {predicted} class predicted ({counts:?}): a weak test"
    );
    let confident: f64 = counts[2 * c..].iter().sum();
    assert!(
        0.0 < confident && confident < samples as f64,
        "{confident} above the threshold"
    );
    let d = max_rel_diff(&as_f32(&summary("weightSums")), &as_f32(&counts[c..2 * c]));
    assert!(d < 1e-5, "weightSums differ by {d}");
    for (name, k) in [
        ("classImages", 0),
        ("weightedImages", 1),
        ("thresholdImages", 2),
    ] {
        let part = |v: &[f64], n: usize| v[k * c * n..(k + 1) * c * n].to_vec();
        let ours = means(&part(&class_sums, 784), &part(&counts, 1));
        let d = max_rel_diff(&get(name), &ours);
        assert!(d < 1e-4, "{name} differs by {d} of the largest");
    }
    let mean: Vec<f32> = stimulus
        .iter()
        .map(|v| (v / samples as f64) as f32)
        .collect();
    let d = max_rel_diff(&get("stimulusMean"), &mean);
    assert!(d < 1e-5, "stimulusMean differs by {d}");
}

#[test]
fn smaller_matches_analyse_with_uniform_noise() {
    check(
        builtin::spec("smaller", 10, None).unwrap(),
        NoiseKind::Uniform,
    );
}

/// Another geometry: padded convs, 5x5 and 3x3 kernels, conv2's 12 channels not a multiple of
/// the 8 a thread computes, a bias-less conv, a conv block without batch norm, and a head of
/// three linear layers; with normal noise.
#[test]
fn other_geometry_matches_analyse_with_gaussian_noise() {
    let layers = serde_json::json!([
        {"kind": "conv2d", "name": "a", "out": 6, "kernel": 5, "padding": 2},
        {"kind": "relu"},
        {"kind": "max_pool", "size": 2},
        {"kind": "conv2d", "name": "b", "out": 12, "kernel": 3, "padding": 1, "bias": false},
        {"kind": "batch_norm", "name": "bnb"},
        {"kind": "relu"},
        {"kind": "max_pool", "size": 2},
        {"kind": "flatten"},
        {"kind": "linear", "name": "h1", "out": 24},
        {"kind": "batch_norm", "name": "bnh"},
        {"kind": "relu"},
        {"kind": "linear", "name": "h2", "out": 16},
        {"kind": "relu"},
        {"kind": "linear", "name": "out", "out": 10},
    ]);
    let spec = NetSpec {
        name: "fused-geometry".into(),
        input: vec![1, 28, 28],
        output: wna::spec::Output::Logits,
        layers: serde_json::from_value(layers).unwrap(),
    };
    spec.shapes().unwrap();
    check(
        spec,
        NoiseKind::Gaussian {
            mean: 0.5,
            std: 0.25,
        },
    );
}

#[test]
fn only_nets_of_the_fused_shape_get_a_plan() {
    for (name, fused) in [
        ("smaller", true),
        ("larger", false),
        ("mlp", false),
        ("lenet5", true),
        ("rnn", false),
    ] {
        let spec = builtin::spec(name, 10, None).unwrap();
        let model = Model::new(spec, Device::Cpu, 1, 0.1307, 0.3081).unwrap();
        let plan = FusedPlan::new(&model, H100_SHARED).unwrap();
        assert_eq!(plan.is_some(), fused, "{name}");
        if let Some(plan) = plan {
            assert_eq!(plan.params.len(), plan.geometry.param_floats());
            let features = if name == "smaller" {
                64 * 5 * 5
            } else {
                16 * 4 * 4
            };
            assert_eq!(plan.geometry.features(), features, "{name}");
        }
    }
}

/// The stimulus kernels draw the CPU's stream: uniform noise bit for bit, normal noise within
/// float rounding of the transcendental functions; from a first sample past 2^32, so the
/// counter's high word counts.
#[test]
fn noise_kernels_draw_the_cpu_stream() {
    let emu = emulator();
    let (first, count, seed) = ((1u64 << 32) + 5, 3usize, 0x1234_5678_9abc_def0u64);
    let n_blocks = (count * 784 / 4) as u64;
    let grid = n_blocks.div_ceil(256) as u32;
    let (lo, hi) = (seed as u32, (seed >> 32) as u32);
    let cpu = |kind: &NoiseKind| -> Vec<f32> {
        let t = noise_tensor(first, count, seed, kind, &Device::Cpu).unwrap();
        t.flatten_all().unwrap().to_vec1().unwrap()
    };
    let mut out = vec![f32::NAN; count * 784];
    // SAFETY: n_blocks float4s, as the kernel writes.
    unsafe {
        (emu.noise_uniform)(
            grid,
            256,
            out.as_mut_ptr(),
            first,
            lo,
            hi,
            NOISE_STREAM,
            n_blocks,
        )
    };
    assert_eq!(out, cpu(&NoiseKind::Uniform), "uniform noise");
    let (mean, std) = (0.5, 0.25);
    let mut out = vec![f32::NAN; count * 784];
    // SAFETY: as above.
    unsafe {
        (emu.noise_normal)(
            grid,
            256,
            out.as_mut_ptr(),
            first,
            lo,
            hi,
            NOISE_STREAM,
            n_blocks,
            mean,
            std,
        )
    };
    let d = max_rel_diff(&cpu(&NoiseKind::Gaussian { mean, std }), &out);
    assert!(d < 1e-6, "normal noise differs by {d} of the largest");
}

/// The one-pass inference batch norm gives the CPU op's bits, with and without ReLU, through
/// its grid-stride loop (216 values, 128 threads).
#[test]
fn scale_shift_kernel_matches_the_cpu_op() {
    let emu = emulator();
    let (n, c, spatial) = (4usize, 6usize, 9usize);
    let mut x = vec![0f32; n * c * spatial];
    wna::philox::Philox::new(2, 0, 0).fill_normal(&mut x, 0.0, 1.0);
    let mut scale = vec![0f32; c];
    wna::philox::Philox::new(2, 1, 0).fill_normal(&mut scale, 0.0, 1.0);
    let mut shift = vec![0f32; c];
    wna::philox::Philox::new(2, 2, 0).fill_normal(&mut shift, 0.0, 1.0);
    for relu in [false, true] {
        let t = |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &Device::Cpu).unwrap();
        let cpu: Vec<f32> = t(&x, &[n, c, 3, 3])
            .apply_op3(
                &t(&scale, &[c]),
                &t(&shift, &[c]),
                wna::kernels::ScaleShift { relu },
            )
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mut out = vec![f32::NAN; x.len()];
        // SAFETY: x and out hold n * c * spatial values, scale and shift c.
        unsafe {
            (emu.scale_shift)(
                2,
                64,
                x.as_ptr(),
                scale.as_ptr(),
                shift.as_ptr(),
                out.as_mut_ptr(),
                x.len() as u64,
                c as u32,
                spatial as u32,
                relu as u32,
            )
        };
        assert_eq!(out, cpu, "relu {relu}");
        assert_eq!(out.iter().any(|&v| v < 0.0), !relu);
    }
}
