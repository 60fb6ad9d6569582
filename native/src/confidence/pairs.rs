//! Steps 2 to 4 of the confidence study for one trained LeNet-5: pick the test images (the first
//! `per_digit` right and the first `per_digit` wrong of each digit, in test-set order), label
//! each model-image pair with its confidence ratio (the share of 1,000 noisy copies, x + N(0,
//! 0.9^2) without clipping, the same copies for every pair, whose prediction equals the clean
//! one) and its correctness, and record its data flow (maxpool2, fc1, fc2, fc3) with two
//! baselines: the max-softmax probability and a trust score (Jiang et al., 2018).

use super::population::lenet::{self, Scratch, CLASSES, FC2, PARAMS};
use super::population::{check_data, FlushDenormals, PIXELS};
use crate::arrays::Arrays;
use crate::error::{Error, Result};
use crate::philox::Philox;
use crate::progress::Progress;

/// The scalar of a checkpoint's pairs: its accuracy on the whole test set.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PairsSummary {
    test_accuracy: f64,
}
use rayon::prelude::*;
use serde::Deserialize;

/// Inputs per forward while labelling.
const CHUNK: usize = 64;
/// Philox stream of the shared noise copies.
const NOISE_STREAM: u32 = 0x0c0f_0000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PairOptions {
    /// A LeNet-5 `state_dict` as safetensors (a population member's checkpoint).
    pub weights: String,
    #[serde(default = "per_digit")]
    pub per_digit: usize,
    #[serde(default = "copies")]
    pub copies: usize,
    #[serde(default = "noise_std")]
    pub noise_std: f32,
    #[serde(default)]
    pub noise_seed: u64,
    /// The trust score's distance to a class is to its k-th nearest reference point.
    #[serde(default = "trust_k")]
    pub trust_k: usize,
}

fn per_digit() -> usize {
    10
}
fn copies() -> usize {
    1000
}
fn noise_std() -> f32 {
    0.9
}
fn trust_k() -> usize {
    10
}

/// Reads a LeNet-5 checkpoint into the population's flat parameter order.
pub fn load_params(path: &str) -> Result<Vec<f32>> {
    let tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu).map_err(|e| {
        Error::Io(format!(
            "pairs: cannot read {path} as safetensors ({e}); train the population again"
        ))
    })?;
    let mut params = Vec::with_capacity(lenet::offsets().1);
    for (name, shape) in PARAMS {
        let t = tensors.get(name).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "pairs: {path} has no tensor {name}; is it a LeNet-5 checkpoint?"
            ))
        })?;
        if t.dims() != shape {
            return Err(Error::Shape {
                op: "pairs",
                expected: format!("{name} of shape {shape:?} in {path}"),
                got: format!("{:?}", t.dims()),
            });
        }
        params.extend(
            t.to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?,
        );
    }
    Ok(params)
}

/// Logits of every image, forwarded in chunks on every core.
fn logits(params: &[f32], pixels: &[f32]) -> Vec<f32> {
    let n = pixels.len() / PIXELS;
    let mut out = vec![0f32; n * CLASSES];
    out.par_chunks_mut(CHUNK * CLASSES)
        .zip(pixels.par_chunks(CHUNK * PIXELS))
        .for_each_init(
            || Scratch::new(CHUNK),
            |s, (dst, src)| {
                let _ftz = FlushDenormals::new();
                let m = src.len() / PIXELS;
                lenet::forward(params, src, m, s);
                dst.copy_from_slice(s.logits(m));
            },
        );
    out
}

/// Test-set indices: the first `per_digit` right and wrong predictions of each true digit.
fn select(predictions: &[usize], labels: &[u8], per_digit: usize) -> Vec<usize> {
    let mut taken = [[0usize; 2]; CLASSES];
    let mut chosen = Vec::new();
    for (i, (&p, &y)) in predictions.iter().zip(labels).enumerate() {
        let slot = &mut taken[y as usize][usize::from(p == y as usize)];
        if *slot < per_digit {
            *slot += 1;
            chosen.push(i);
        }
    }
    chosen
}

fn softmax_max(z: &[f32]) -> f32 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    1.0 / z.iter().map(|&v| (v - max).exp()).sum::<f32>()
}

/// Jiang et al.'s trust score in fc2 space: the distance to the nearest other class over the
/// distance to the predicted class, each the distance to that class's k-th nearest reference.
fn trust_scores(
    features: &[f32],
    predictions: &[usize],
    reference: &[f32],
    reference_labels: &[u8],
    k: usize,
) -> Vec<f32> {
    features
        .par_chunks(FC2)
        .zip(predictions)
        .map(|(f, &pred)| {
            let mut by_class: Vec<Vec<f32>> = vec![Vec::new(); CLASSES];
            for (r, &y) in reference.chunks(FC2).zip(reference_labels) {
                let d2: f32 = r.iter().zip(f).map(|(a, b)| (a - b) * (a - b)).sum();
                by_class[y as usize].push(d2);
            }
            let kth = |mut d: Vec<f32>| -> f32 {
                if d.is_empty() {
                    return f32::INFINITY;
                }
                let i = (k - 1).min(d.len() - 1);
                d.select_nth_unstable_by(i, f32::total_cmp);
                d[i].sqrt()
            };
            let dist: Vec<f32> = by_class.into_iter().map(kth).collect();
            let other = (0..CLASSES)
                .filter(|&c| c != pred)
                .map(|c| dist[c])
                .fold(f32::INFINITY, f32::min);
            other / dist[pred].max(1e-12)
        })
        .collect()
}

/// The pairs of one model.
pub fn pairs(
    o: &PairOptions,
    test: (&[f32], &[u8]),
    reference: (&[f32], &[u8]),
    progress: Progress,
) -> Result<Arrays> {
    check_data(test.0, test.1)?;
    check_data(reference.0, reference.1)?;
    if o.copies == 0 || o.per_digit == 0 || o.trust_k == 0 {
        crate::bail!(
            InvalidArgument,
            "pairs: copies, perDigit and trustK must be >= 1, got {}, {} and {}",
            o.copies,
            o.per_digit,
            o.trust_k
        );
    }
    if !(o.noise_std.is_finite() && o.noise_std >= 0.0) {
        crate::bail!(
            InvalidArgument,
            "pairs: noiseStd must be >= 0, got {}",
            o.noise_std
        );
    }
    let params = load_params(&o.weights)?;

    // 2. Which images: the model's predictions over the whole test set.
    let test_logits = logits(&params, test.0);
    let predictions: Vec<usize> = test_logits.chunks(CLASSES).map(lenet::argmax).collect();
    let accuracy = predictions
        .iter()
        .zip(test.1)
        .filter(|(&p, &y)| p == y as usize)
        .count() as f32
        / test.1.len() as f32;
    let chosen = select(&predictions, test.1, o.per_digit);
    let m = chosen.len();
    let images: Vec<f32> = chosen
        .iter()
        .flat_map(|&i| test.0[i * PIXELS..][..PIXELS].iter().copied())
        .collect();
    let clean: Vec<usize> = chosen.iter().map(|&i| predictions[i]).collect();

    // 4. The data flow of the clean images, and the baselines.
    let mut flow: [Vec<f32>; 4] = Default::default();
    let mut s = Scratch::new(CHUNK);
    for part in images.chunks(CHUNK * PIXELS) {
        let n = part.len() / PIXELS;
        lenet::forward(&params, part, n, &mut s);
        for (dst, src) in flow.iter_mut().zip(s.flow(n)) {
            dst.extend_from_slice(src);
        }
    }
    let max_softmax: Vec<f32> = flow[3].chunks(CLASSES).map(softmax_max).collect();
    let mut reference_fc2 = Vec::with_capacity(reference.1.len() * FC2);
    for part in reference.0.chunks(CHUNK * PIXELS) {
        let n = part.len() / PIXELS;
        lenet::forward(&params, part, n, &mut s);
        reference_fc2.extend_from_slice(s.flow(n)[2]);
    }
    let trust = trust_scores(&flow[2], &clean, &reference_fc2, reference.1, o.trust_k);

    // 3. The confidence ratio: the same noisy copies for every image, in chunks on every core.
    let mut noise = vec![0f32; o.copies * PIXELS];
    Philox::new(o.noise_seed, NOISE_STREAM, 0).fill_normal(&mut noise, 0.0, o.noise_std);
    progress.start(m as u64);
    let ratio: Vec<f32> = images
        .par_chunks(PIXELS)
        .zip(&clean)
        .map_init(
            || (Scratch::new(CHUNK), vec![0f32; CHUNK * PIXELS]),
            |(s, batch), (image, &pred)| {
                let _ftz = FlushDenormals::new();
                let mut agree = 0usize;
                for copies in noise.chunks(CHUNK * PIXELS) {
                    let n = copies.len() / PIXELS;
                    for (dst, z) in batch.chunks_exact_mut(PIXELS).zip(copies.chunks(PIXELS)) {
                        dst.iter_mut()
                            .zip(image.iter().zip(z))
                            .for_each(|(d, (x, z))| *d = x + z);
                    }
                    lenet::forward(&params, &batch[..n * PIXELS], n, s);
                    agree += s
                        .logits(n)
                        .chunks(CLASSES)
                        .filter(|z| lenet::argmax(z) == pred)
                        .count();
                }
                progress.advance(1);
                agree as f32 / o.copies as f32
            },
        )
        .collect();

    let mut out = Arrays::default();
    let ints = |v: Vec<usize>| v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
    let labels: Vec<usize> = chosen.iter().map(|&i| test.1[i] as usize).collect();
    let correct: Vec<f32> = clean
        .iter()
        .zip(&labels)
        .map(|(p, y)| f32::from(u8::from(p == y)))
        .collect();
    out.insert("imageId", vec![m], ints(chosen));
    out.insert("label", vec![m], ints(labels));
    out.insert("prediction", vec![m], ints(clean));
    out.insert("correct", vec![m], correct);
    out.insert("ratio", vec![m], ratio);
    out.insert("maxSoftmax", vec![m], max_softmax);
    out.insert("trust", vec![m], trust);
    let [pool2, fc1, fc2, fc3] = flow;
    out.insert("pool2", vec![m, lenet::FLAT], pool2);
    out.insert("fc1", vec![m, lenet::FC1], fc1);
    out.insert("fc2", vec![m, FC2], fc2);
    out.insert("fc3", vec![m, CLASSES], fc3);
    out.set_summary(&PairsSummary {
        test_accuracy: accuracy as f64,
    })?;
    Ok(out)
}
