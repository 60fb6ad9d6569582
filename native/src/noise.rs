//! White-noise analysis (Borji & Lin, "White Noise Analysis of Neural Networks", ICLR 2020,
//! https://arxiv.org/abs/1912.12106): stream stimuli through a model in batches and accumulate
//! per-class sums (classification images, bias histogram) and per-channel activation-weighted
//! sums (spike-triggered averages). Memory is fixed by the batch size, not the sample count.

use crate::arrays::Arrays;
use crate::error::{Error, Result};
use crate::model::{check_images, Model};
use crate::models::LayerInfo;
use crate::philox::Philox;
use crate::progress::Progress;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, D};
use rayon::prelude::*;
use std::collections::HashMap;

const NOISE_STREAM: u32 = 0x4e01_5e00;
const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseKind {
    Uniform,
    Gaussian { mean: f32, std: f32 },
}

#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// Noise samples when no images are given.
    pub samples: u64,
    pub batch_size: usize,
    pub seed: u64,
    pub noise: NoiseKind,
    /// Stimulus = gamma * image + (1 - gamma) * noise + weight * pattern (gamma = 0 without images).
    pub gamma: f32,
    pub pattern: Option<Vec<f32>>,
    pub weight: f32,
    /// Top softmax above which a sample enters the thresholded classification image.
    pub threshold: f32,
    /// Samples (from the first) whose layer activations feed STA and activation statistics.
    pub sta_samples: u64,
    /// Layers to analyse; empty means every layer but the logits.
    pub layers: Vec<String>,
    /// The first this many stimuli are returned as `stimuli`, to show what the network saw.
    pub keep_stimuli: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            samples: 10_000,
            batch_size: 500,
            seed: 0,
            noise: NoiseKind::Uniform,
            gamma: 0.0,
            pattern: None,
            weight: 0.0,
            threshold: 0.9,
            sta_samples: 10_000,
            layers: Vec::new(),
            keep_stimuli: 0,
        }
    }
}

/// Fills `out` with the noise images of samples `first..first + out.len() / 784`.
pub fn noise_batch(out: &mut [f32], first: u64, seed: u64, kind: NoiseKind) {
    out.par_chunks_mut(PIXELS).enumerate().for_each(|(i, img)| {
        let rng = Philox::new(seed, NOISE_STREAM, first + i as u64);
        match kind {
            NoiseKind::Uniform => rng.fill_uniform(img),
            NoiseKind::Gaussian { mean, std } => rng.fill_normal(img, mean, std),
        }
    });
}

/// The noise of samples `first..first + count` as a `[count, 784]` tensor, made on the device
/// of the (otherwise unused) input: on a GPU by `cuda/noise.cu`, so the pixels never cross the
/// bus, and bit-identical to `noise_batch` for uniform noise.
struct DeviceNoise {
    first: u64,
    count: usize,
    seed: u64,
    kind: NoiseKind,
}

#[cfg(feature = "cuda")]
const NOISE_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/noise.ptx"));

impl CustomOp1 for DeviceNoise {
    fn name(&self) -> &'static str {
        "wna-noise"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let mut v = vec![0f32; self.count * PIXELS];
        noise_batch(&mut v, self.first, self.seed, self.kind);
        Ok((CpuStorage::F32(v), Shape::from((self.count, PIXELS))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        use cudarc::driver::{LaunchConfig, PushKernelArg};
        let dev = s.device().clone();
        let name = match self.kind {
            NoiseKind::Uniform => "wna_noise_uniform",
            NoiseKind::Gaussian { .. } => "wna_noise_normal",
        };
        let func = dev.get_or_load_custom_func(name, "wna_noise", NOISE_PTX)?;
        let n_blocks = (self.count * PIXELS / 4) as u64;
        // SAFETY: the kernel writes every element (one float4 per thread, n_blocks threads).
        let mut out = unsafe { dev.alloc::<f32>(self.count * PIXELS)? };
        let (seed_lo, seed_hi) = (self.seed as u32, (self.seed >> 32) as u32);
        let (mean, std) = match self.kind {
            NoiseKind::Gaussian { mean, std } => (mean, std),
            NoiseKind::Uniform => (0.0, 1.0),
        };
        let mut b = func.builder();
        b.arg(&mut out);
        b.arg(&self.first);
        b.arg(&seed_lo);
        b.arg(&seed_hi);
        b.arg(&NOISE_STREAM);
        b.arg(&n_blocks);
        if matches!(self.kind, NoiseKind::Gaussian { .. }) {
            b.arg(&mean);
            b.arg(&std);
        }
        let cfg = LaunchConfig {
            grid_dim: (n_blocks.div_ceil(256) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments match the kernel's signature in cuda/noise.cu.
        unsafe { b.launch(cfg) }
            .map_err(|e| candle_core::Error::Msg(format!("{name}: launch failed: {e}")))?;
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev),
            Shape::from((self.count, PIXELS)),
        ))
    }
}

/// `WNA_PROFILE=1`: time the phases of each batch (waiting for the device at each step, which
/// costs some overlap) and print the totals to stderr.
struct Phases<'a> {
    device: &'a Device,
    on: bool,
    last: std::time::Instant,
    totals: Vec<(String, f64)>,
}

impl<'a> Phases<'a> {
    fn new(device: &'a Device) -> Self {
        Self {
            device,
            on: std::env::var_os("WNA_PROFILE").is_some(),
            last: std::time::Instant::now(),
            totals: Vec::new(),
        }
    }

    fn lap(&mut self, name: &str) -> Result<()> {
        if !self.on {
            return Ok(());
        }
        self.device.synchronize()?;
        let s = self.last.elapsed().as_secs_f64();
        self.last = std::time::Instant::now();
        match self.totals.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t += s,
            None => self.totals.push((name.to_string(), s)),
        }
        Ok(())
    }

    fn report(&self, samples: u64) {
        for (name, s) in &self.totals {
            eprintln!(
                "wna profile: {name}: {s:.3} s ({:.2} us/sample)",
                1e6 * s / samples.max(1) as f64
            );
        }
    }
}

/// f64 running sums of one layer's statistics.
struct LayerSums {
    info: LayerInfo,
    /// Patch size used for the position-averaged STA (the receptive field, clipped to the image).
    patch: usize,
    centre: Vec<f64>,
    centre_weight: Vec<f64>,
    patch_sum: Vec<f64>,
    patch_weight: Vec<f64>,
    act_map: Vec<f64>,
    act_sum: Vec<f64>,
    act_sq: Vec<f64>,
    count: u64,
}

impl LayerSums {
    fn new(info: LayerInfo) -> Self {
        let c = info.channels;
        let patch = if info.kind == "conv" && info.rf < SIDE {
            info.rf
        } else {
            0
        };
        Self {
            patch,
            centre: vec![0.0; c * PIXELS],
            centre_weight: vec![0.0; c],
            patch_sum: vec![0.0; c * patch * patch],
            patch_weight: vec![0.0; c],
            act_map: vec![0.0; c * info.height * info.width],
            act_sum: vec![0.0; c],
            act_sq: vec![0.0; c],
            count: 0,
            info,
        }
    }

    /// Adds one batch: `act` is `[b, c, h, w]` (or `[b, c]`), `x` the pixel-space stimuli
    /// `[b, 784]` in f64.
    fn add(&mut self, act: &Tensor, x: &Tensor, pixels: &[f32]) -> Result<()> {
        let b = act.dim(0)?;
        let (c, h, w) = (self.info.channels, self.info.height, self.info.width);
        // f64 from here: sums over a batch's millions of unit activations in f32 would depend on
        // each device's summation order in the fourth digit.
        let act = act.to_dtype(DType::F64)?.reshape((b, c, h * w))?;
        // Centre unit (the whole unit for fc layers): activation-weighted sum of the stimuli.
        // Contiguous, so that its transpose is a plain strided matrix to every matmul backend.
        let centre = act
            .narrow(2, (h / 2) * w + w / 2, 1)?
            .squeeze(2)?
            .contiguous()?; // [b, c]
        add_into(&mut self.centre, &centre.t()?.matmul(x)?)?;
        add_into(&mut self.centre_weight, &centre.sum(0)?)?;
        // Activation statistics per channel and per position.
        add_into(&mut self.act_map, &act.sum(0)?)?;
        add_into(&mut self.act_sum, &act.sum((0, 2))?)?;
        add_into(&mut self.act_sq, &act.sqr()?.sum((0, 2))?)?;
        self.count += b as u64;
        if self.patch > 0 {
            // STA averaged over positions: sum_p a[c, p] * patch_p(x) as one matmul of the
            // activations [c, b*h*w] with the unfolded stimuli [b*h*w, rf*rf].
            let unfolded = unfold(pixels, &self.info, self.patch);
            let unfolded =
                Tensor::from_vec(unfolded, (b * h * w, self.patch * self.patch), act.device())?
                    .to_dtype(DType::F64)?;
            let a = act.transpose(0, 1)?.reshape((c, b * h * w))?;
            add_into(&mut self.patch_sum, &a.matmul(&unfolded)?)?;
            add_into(&mut self.patch_weight, &a.sum(1)?)?;
        }
        Ok(())
    }

    fn write(&self, out: &mut Arrays) {
        let LayerInfo {
            name,
            channels: c,
            height: h,
            width: w,
            ..
        } = &self.info;
        let (c, h, w) = (*c, *h, *w);
        let n = self.count.max(1) as f64;
        out.insert(
            format!("sta/{name}/centre"),
            vec![c, SIDE, SIDE],
            weighted_mean(&self.centre, &self.centre_weight, PIXELS),
        );
        out.insert(
            format!("sta/{name}/centreWeight"),
            vec![c],
            self.centre_weight.iter().map(|&v| (v / n) as f32).collect(),
        );
        if self.patch > 0 {
            let p = self.patch;
            out.insert(
                format!("sta/{name}/patch"),
                vec![c, p, p],
                weighted_mean(&self.patch_sum, &self.patch_weight, p * p),
            );
        }
        out.insert(
            format!("act/{name}/mean"),
            vec![c, h, w],
            self.act_map.iter().map(|&v| (v / n) as f32).collect(),
        );
        let per = n * (h * w) as f64;
        let mean: Vec<f64> = self.act_sum.iter().map(|&s| s / per).collect();
        out.insert(
            format!("act/{name}/channelMean"),
            vec![c],
            mean.iter().map(|&m| m as f32).collect(),
        );
        let std = self
            .act_sq
            .iter()
            .zip(&mean)
            .map(|(&q, &m)| ((q / per - m * m).max(0.0)).sqrt() as f32)
            .collect();
        out.insert(format!("act/{name}/channelStd"), vec![c], std);
    }
}

/// Receptive-field patches of each unit position, zero outside the image: `[b*h*w, p*p]`.
fn unfold(pixels: &[f32], info: &LayerInfo, p: usize) -> Vec<f32> {
    let (h, w) = (info.height, info.width);
    // Centre the clipped patch on the receptive field's centre.
    let start = info.offset + ((info.rf - p) / 2) as isize;
    let mut out = vec![0f32; pixels.len() / PIXELS * h * w * p * p];
    out.par_chunks_mut(h * w * p * p)
        .zip(pixels.par_chunks(PIXELS))
        .for_each(|(dst, img)| {
            for (pos, patch) in dst.chunks_mut(p * p).enumerate() {
                let y0 = start + ((pos / w) * info.stride) as isize;
                let x0 = start + ((pos % w) * info.stride) as isize;
                for dy in 0..p {
                    let y = y0 + dy as isize;
                    if !(0..SIDE as isize).contains(&y) {
                        continue;
                    }
                    for dx in 0..p {
                        let x = x0 + dx as isize;
                        if (0..SIDE as isize).contains(&x) {
                            patch[dy * p + dx] = img[y as usize * SIDE + x as usize];
                        }
                    }
                }
            }
        });
    out
}

fn add_into(acc: &mut [f64], t: &Tensor) -> Result<()> {
    let v = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    if v.len() != acc.len() {
        return Err(Error::Shape {
            op: "accumulate",
            expected: format!("{} values", acc.len()),
            got: format!("{}", v.len()),
        });
    }
    for (a, b) in acc.iter_mut().zip(v) {
        *a += b;
    }
    Ok(())
}

/// Row-wise `sum / weight`, 0 where nothing was accumulated.
fn weighted_mean(sum: &[f64], weight: &[f64], row: usize) -> Vec<f32> {
    sum.chunks(row)
        .zip(weight)
        .flat_map(|(s, &w)| {
            s.iter()
                .map(move |&v| if w > 0.0 { (v / w) as f32 } else { 0.0 })
        })
        .collect()
}

fn check_config(model: &Model, cfg: &AnalysisConfig, images: Option<&[f32]>) -> Result<()> {
    if cfg.batch_size == 0 || cfg.batch_size > 65_536 {
        crate::bail!(
            InvalidArgument,
            "noise-maps: batch size must be in 1..=65536, got {}",
            cfg.batch_size
        );
    }
    if images.is_none() && cfg.samples == 0 {
        crate::bail!(InvalidArgument, "noise-maps: samples must be > 0, got 0");
    }
    if !(0.0..=1.0).contains(&cfg.gamma) || !cfg.weight.is_finite() || !cfg.threshold.is_finite() {
        crate::bail!(
            InvalidArgument,
            "noise-maps: need gamma in [0, 1] and finite weight and threshold, got {} {} {}",
            cfg.gamma,
            cfg.weight,
            cfg.threshold
        );
    }
    if let NoiseKind::Gaussian { mean, std } = cfg.noise {
        if !(mean.is_finite() && std.is_finite() && std > 0.0) {
            crate::bail!(
                InvalidArgument,
                "noise-maps: gaussian noise needs a finite mean and std > 0, got {mean} and {std}"
            );
        }
    }
    if let Some(p) = &cfg.pattern {
        if p.len() != PIXELS {
            return Err(Error::Shape {
                op: "pattern",
                expected: "784 values".into(),
                got: format!("{}", p.len()),
            });
        }
    }
    if let Some(images) = images {
        check_images("noise-maps", images)?;
    }
    for l in &cfg.layers {
        model.layer(l)?;
    }
    Ok(())
}

/// Streams stimuli through `model` and returns the accumulated maps.
///
/// Arrays: `counts`, `classImages`, `weightSums`, `weightedImages`, `thresholdCounts`,
/// `thresholdImages`, `stimulusMean`, and per analysed layer `sta/<layer>/...` and
/// `act/<layer>/...`; with images also `predictions` and `confidence`.
pub fn analyse(
    model: &Model,
    images: Option<&[f32]>,
    cfg: &AnalysisConfig,
    progress: Progress,
) -> Result<Arrays> {
    check_config(model, cfg, images)?;
    let classes = model.spec.classes;
    let total = images.map_or(cfg.samples, |im| (im.len() / PIXELS) as u64);
    let layer_infos: Vec<LayerInfo> = model
        .layers()
        .into_iter()
        .filter(|l| l.name != "logits" && (cfg.layers.is_empty() || cfg.layers.contains(&l.name)))
        .collect();
    let mut layers: HashMap<String, LayerSums> = layer_infos
        .iter()
        .map(|l| (l.name.clone(), LayerSums::new(l.clone())))
        .collect();
    let mut class_sums = vec![0f64; 3 * classes * PIXELS];
    let mut counts = vec![0f64; 3 * classes];
    let mut stimulus_sum = vec![0f64; PIXELS];
    let mut predictions = Vec::new();
    let mut confidence = Vec::new();
    let pattern = cfg.pattern.as_deref();
    let mut buf = vec![0f32; cfg.batch_size * PIXELS];
    let mut kept = Vec::new();
    progress.start(total);
    let mut phases = Phases::new(&model.device);
    // `weight * pattern`, uploaded once, for stimuli made on the device.
    let device_pattern = match pattern {
        Some(p) if images.is_none() && !model.device.is_cpu() => {
            Some((Tensor::from_slice(p, (1, PIXELS), &model.device)? * cfg.weight as f64)?)
        }
        _ => None,
    };
    let mut first = 0u64;
    while first < total {
        let b = (total - first).min(cfg.batch_size as u64) as usize;
        let keep = (cfg.keep_stimuli as u64).min(total).saturating_sub(first) as usize;
        // Only the first `sta_samples` samples feed the layer statistics, whatever the batching.
        let sta_rows = (cfg.sta_samples.saturating_sub(first) as usize).min(b);
        let (x, pixels): (Tensor, &[f32]) = if images.is_none() && !model.device.is_cpu() {
            // Noise made on the device; only the rows the host needs come back.
            let x = Tensor::zeros(1, DType::F32, &model.device)?.apply_op1(DeviceNoise {
                first,
                count: b,
                seed: cfg.seed,
                kind: cfg.noise,
            })?;
            let x = match &device_pattern {
                Some(p) => x.broadcast_add(p)?,
                None => x,
            };
            let host = sta_rows.max(keep.min(b));
            let n = host * PIXELS;
            if host > 0 {
                buf[..n].copy_from_slice(&x.narrow(0, 0, host)?.flatten_all()?.to_vec1()?);
            }
            (x, &buf[..n])
        } else {
            let pixels = &mut buf[..b * PIXELS];
            make_stimuli(pixels, first, images, cfg, pattern);
            let x = Tensor::from_slice(pixels, (b, PIXELS), &model.device)?;
            (x, &buf[..b * PIXELS])
        };
        kept.extend_from_slice(&pixels[..keep.min(b) * PIXELS]);
        phases.lap("stimuli")?;
        // In f64 once per batch for every analysed layer (see `LayerSums::add`).
        let (x_sta, px_sta) = (
            x.narrow(0, 0, sta_rows.max(1))?.to_dtype(DType::F64)?,
            &pixels[..sta_rows * PIXELS],
        );
        let mut err = Ok(());
        let logits = model.forward_eval(
            &model.normalise(&x.reshape((b, 1, SIDE, SIDE))?)?,
            &mut |name, t| {
                if phases.on {
                    if let Err(e) = phases.lap(&format!("forward to {name}")) {
                        err = Err(e);
                    }
                }
                if sta_rows > 0 && err.is_ok() {
                    if let Some(sums) = layers.get_mut(name) {
                        err = t
                            .narrow(0, 0, sta_rows)
                            .map_err(Error::from)
                            .and_then(|t| sums.add(&t, &x_sta, px_sta));
                    }
                }
                Ok(())
            },
        )?;
        err?;
        // One matmul accumulates all three class-image variants: rows of W are the one-hot
        // prediction, the softmax, and the one-hot prediction gated by the confidence threshold.
        phases.lap("layer statistics")?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?;
        let pred = probs.argmax(D::Minus1)?;
        let top = probs.max(D::Minus1)?;
        let onehot = one_hot(&pred, classes, &model.device)?;
        let confident = top
            .gt(cfg.threshold as f64)?
            .to_dtype(DType::F32)?
            .unsqueeze(1)?;
        let w = Tensor::cat(&[&onehot, &probs, &onehot.broadcast_mul(&confident)?], 1)?; // [b, 3C]
        add_into(&mut class_sums, &w.t()?.matmul(&x)?)?;
        add_into(&mut counts, &w.sum(0)?)?;
        add_into(&mut stimulus_sum, &x.sum(0)?)?;
        if images.is_some() {
            predictions.extend(pred.to_vec1::<u32>()?.into_iter().map(|p| p as f32));
            confidence.extend(top.to_vec1::<f32>()?);
        }
        phases.lap("class sums")?;
        first += b as u64;
        progress.advance(b as u64);
    }
    phases.report(total);
    // Normalise the sums into means and name the outputs.
    let mut out = Arrays::default();
    let c = classes;
    let part = |k: usize| &class_sums[k * c * PIXELS..(k + 1) * c * PIXELS];
    let weights = |k: usize| &counts[k * c..(k + 1) * c];
    out.insert(
        "counts",
        vec![c],
        weights(0).iter().map(|&v| v as f32).collect(),
    );
    out.insert(
        "classImages",
        vec![c, SIDE, SIDE],
        weighted_mean(part(0), weights(0), PIXELS),
    );
    out.insert(
        "weightSums",
        vec![c],
        weights(1).iter().map(|&v| v as f32).collect(),
    );
    out.insert(
        "weightedImages",
        vec![c, SIDE, SIDE],
        weighted_mean(part(1), weights(1), PIXELS),
    );
    out.insert(
        "thresholdCounts",
        vec![c],
        weights(2).iter().map(|&v| v as f32).collect(),
    );
    out.insert(
        "thresholdImages",
        vec![c, SIDE, SIDE],
        weighted_mean(part(2), weights(2), PIXELS),
    );
    out.insert(
        "stimulusMean",
        vec![SIDE, SIDE],
        stimulus_sum
            .iter()
            .map(|&v| (v / total as f64) as f32)
            .collect(),
    );
    out.insert("samples", vec![1], vec![total as f32]);
    if !kept.is_empty() {
        out.insert("stimuli", vec![kept.len() / PIXELS, SIDE, SIDE], kept);
    }
    for info in &layer_infos {
        layers[&info.name].write(&mut out);
    }
    if images.is_some() {
        out.insert("predictions", vec![predictions.len()], predictions);
        out.insert("confidence", vec![confidence.len()], confidence);
    }
    Ok(out)
}

fn make_stimuli(
    pixels: &mut [f32],
    first: u64,
    images: Option<&[f32]>,
    cfg: &AnalysisConfig,
    pattern: Option<&[f32]>,
) {
    let gamma = if images.is_some() { cfg.gamma } else { 0.0 };
    if gamma < 1.0 {
        noise_batch(pixels, first, cfg.seed, cfg.noise);
    } else {
        pixels.fill(0.0);
    }
    let start = first as usize * PIXELS;
    pixels
        .par_chunks_mut(PIXELS)
        .enumerate()
        .for_each(|(i, px)| {
            if let Some(images) = images {
                let img = &images[start + i * PIXELS..start + (i + 1) * PIXELS];
                for (p, &v) in px.iter_mut().zip(img) {
                    *p = gamma * v + (1.0 - gamma) * *p;
                }
            }
            if let Some(pat) = pattern {
                for (p, &v) in px.iter_mut().zip(pat) {
                    *p += cfg.weight * v;
                }
            }
        });
}

fn one_hot(pred: &Tensor, classes: usize, device: &Device) -> Result<Tensor> {
    let n = pred.dim(0)?;
    let ids = Tensor::arange(0u32, classes as u32, device)?
        .reshape((1, classes))?
        .broadcast_as((n, classes))?;
    Ok(ids
        .eq(&pred.reshape((n, 1))?.broadcast_as((n, classes))?)?
        .to_dtype(DType::F32)?)
}

/// Cosine-similarity scores `[n, classes]` of images against L2-normalised, mean-removed templates.
pub fn template_scores(
    templates: &[f32],
    classes: usize,
    images: &[f32],
    device: &Device,
) -> Result<Tensor> {
    check_images("templates", images)?;
    if templates.len() != classes * PIXELS {
        return Err(Error::Shape {
            op: "templates",
            expected: format!("{classes} x 784 values"),
            got: format!("{}", templates.len()),
        });
    }
    let t = Tensor::from_slice(templates, (classes, PIXELS), device)?;
    // Removing the mean over classes drops what every map shares (the noise mean itself).
    let t = t.broadcast_sub(&t.mean_keepdim(0)?)?;
    let t = t.broadcast_div(&(t.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-12)?)?;
    let x = Tensor::from_slice(images, (images.len() / PIXELS, PIXELS), device)?;
    let x = x.broadcast_sub(&x.mean_keepdim(1)?)?;
    let x = x.broadcast_div(&(x.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-12)?)?;
    Ok(x.matmul(&t.t()?)?)
}
