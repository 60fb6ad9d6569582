//! Populations of LeNet-5s trained side by side (the confidence study's thousands of models):
//! members that share a seed and a batch size see the same batches in the same order, so each
//! step gathers its batch once, and every member runs its own forward, backward and optimiser
//! step on one thread of the pool, with no per-op dispatch, allocation or autograd graph. A
//! member's arithmetic never depends on who else is in the population: trained alone it gives
//! the same bits (`native/tests/population.rs`).

pub mod init;
pub mod lenet;
#[cfg(target_arch = "x86_64")]
mod simd;

use crate::error::{Error, Result};
use crate::philox::permutation;
use crate::progress::Progress;
use init::{initial_params, Init};
use lenet::{Scratch, CLASSES};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub(crate) const PIXELS: usize = 784;
/// Images per forward when evaluating (any size gives the same numbers).
const EVAL_BATCH: usize = 256;
/// Images per forward and backward inside a batch: the largest whose buffers stay in cache.
const MICRO_BATCH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// `torch.optim.SGD(lr, weight_decay)`: no momentum.
    Sgd,
    /// `torch.optim.Adam(lr, weight_decay)`: weight decay added to the gradient (L2), not
    /// decoupled, betas (0.9, 0.999), eps 1e-8.
    Adam,
}

/// One member's hyperparameters; the seed and batch size belong to the population.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Member {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub weight_decay: f64,
    pub init: Init,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PopulationOptions {
    /// Keys every member's initial weights (with its init) and the shuffle of every epoch.
    pub seed: u64,
    pub batch_size: usize,
    pub members: Vec<Member>,
}

struct State {
    member: Member,
    params: Vec<f32>,
    /// Adam's moments (empty for SGD).
    m: Vec<f32>,
    v: Vec<f32>,
    grads: Vec<f32>,
    step: i32,
    /// The loss became NaN or infinite: the weights are NaN from then on, as PyTorch's would be,
    /// and the member costs nothing more.
    diverged: bool,
}

/// Per member: mean training loss over the epoch and training accuracy, or test loss and
/// accuracy from `evaluate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemberMetrics {
    pub loss: f64,
    pub accuracy: f64,
}

pub struct Population {
    pub seed: u64,
    pub batch_size: usize,
    states: Vec<State>,
}

impl Population {
    pub fn new(o: PopulationOptions) -> Result<Self> {
        if o.members.is_empty() {
            crate::bail!(InvalidArgument, "population: needs at least one member");
        }
        if o.batch_size == 0 {
            crate::bail!(
                InvalidArgument,
                "population: batch size must be >= 1, got 0"
            );
        }
        let (_, total) = lenet::offsets();
        let states = o
            .members
            .iter()
            .enumerate()
            .map(|(i, &member)| {
                if !(member.lr > 0.0 && member.lr.is_finite()) {
                    crate::bail!(
                        InvalidArgument,
                        "population: member {i}: lr must be > 0, got {}",
                        member.lr
                    );
                }
                if !(member.weight_decay >= 0.0 && member.weight_decay.is_finite()) {
                    crate::bail!(
                        InvalidArgument,
                        "population: member {i}: weight decay must be >= 0, got {}",
                        member.weight_decay
                    );
                }
                let moments = if member.optimizer == Optimizer::Adam {
                    total
                } else {
                    0
                };
                Ok(State {
                    member,
                    params: initial_params(member.init, o.seed),
                    m: vec![0.0; moments],
                    v: vec![0.0; moments],
                    grads: vec![0.0; total],
                    step: 0,
                    diverged: false,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            seed: o.seed,
            batch_size: o.batch_size,
            states,
        })
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// A member's parameters in `lenet::PARAMS` order.
    pub fn params(&self, index: usize) -> Result<&[f32]> {
        Ok(&self.state(index)?.params)
    }

    fn state(&self, index: usize) -> Result<&State> {
        self.states.get(index).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "population: member {index} out of range for {} members",
                self.states.len()
            ))
        })
    }

    /// One epoch over `pixels` (n x 784 in [0, 1], no normalisation) in the order keyed by the
    /// population's seed and `epoch`; the last batch may be short, as with PyTorch's
    /// `DataLoader(shuffle=True)`.
    pub fn train_epoch(
        &mut self,
        pixels: &[f32],
        labels: &[u8],
        epoch: u64,
        progress: Progress,
    ) -> Result<Vec<MemberMetrics>> {
        let n = check_data(pixels, labels)?;
        let order = permutation(n, self.seed, 0x5eed_0000 ^ epoch as u32);
        let batch = self.batch_size;
        let mut images = vec![0f32; batch * PIXELS];
        let mut sums = vec![(0f64, 0usize); self.states.len()];
        progress.start(n as u64);
        for chunk in order.chunks(batch) {
            let b = chunk.len();
            let batch_labels: Vec<u8> = chunk.iter().map(|&i| labels[i as usize]).collect();
            for (dst, &i) in images.chunks_exact_mut(PIXELS).zip(chunk) {
                dst.copy_from_slice(&pixels[i as usize * PIXELS..][..PIXELS]);
            }
            let batch_images = &images[..b * PIXELS];
            self.states
                .par_iter_mut()
                .zip(sums.par_iter_mut())
                .with_max_len(1)
                .for_each(|(state, sum)| {
                    with_scratch(|s| {
                        if let Some((loss, correct)) = state.step(batch_images, &batch_labels, s) {
                            sum.0 += loss;
                            sum.1 += correct;
                        }
                    })
                });
            progress.advance(b as u64);
        }
        Ok(self
            .states
            .iter()
            .zip(sums)
            .map(|(state, (loss, correct))| MemberMetrics {
                loss: if state.diverged {
                    f64::NAN
                } else {
                    loss / n as f64
                },
                accuracy: correct as f64 / n as f64,
            })
            .collect())
    }

    /// Test loss and accuracy of every member.
    pub fn evaluate(
        &self,
        pixels: &[f32],
        labels: &[u8],
        progress: Progress,
    ) -> Result<Vec<MemberMetrics>> {
        let n = check_data(pixels, labels)?;
        let mut sums = vec![(0f64, 0usize); self.states.len()];
        progress.start(n as u64);
        for start in (0..n).step_by(EVAL_BATCH) {
            let b = EVAL_BATCH.min(n - start);
            let batch_images = &pixels[start * PIXELS..(start + b) * PIXELS];
            let batch_labels = &labels[start..start + b];
            self.states
                .par_iter()
                .zip(sums.par_iter_mut())
                .with_max_len(1)
                .for_each(|(state, sum)| {
                    with_scratch(|s| {
                        for (images, labels) in micro_batches(batch_images, batch_labels) {
                            lenet::forward(&state.params, images, labels.len(), s);
                            let (loss, correct) = lenet::loss(labels, labels.len(), s);
                            sum.0 += loss;
                            sum.1 += correct;
                        }
                    })
                });
            progress.advance(b as u64);
        }
        Ok(sums
            .into_iter()
            .map(|(loss, correct)| MemberMetrics {
                loss: loss / n as f64,
                accuracy: correct as f64 / n as f64,
            })
            .collect())
    }

    /// Writes member `index` as a safetensors `state_dict` (the built-in `lenet5` loads it), through
    /// a temporary file and a rename so a reader never sees half a file.
    pub fn save(&self, index: usize, path: &str) -> Result<()> {
        let params = &self.state(index)?.params;
        let (at, _) = lenet::offsets();
        let mut tensors = std::collections::HashMap::new();
        for (i, (name, shape)) in lenet::PARAMS.iter().enumerate() {
            let len: usize = shape.iter().product();
            let t = candle_core::Tensor::from_slice(
                &params[at[i]..at[i] + len],
                shape.to_vec(),
                &candle_core::Device::Cpu,
            )?;
            tensors.insert(name.to_string(), t);
        }
        let partial = format!("{path}.partial");
        candle_core::safetensors::save(&tensors, &partial)
            .map_err(|e| Error::Io(format!("population: cannot write {partial}: {e}")))?;
        std::fs::rename(&partial, path)
            .map_err(|e| Error::Io(format!("population: cannot move {partial} to {path}: {e}")))
    }
}

impl State {
    /// One optimiser step on a batch, run in micro-batches whose gradients add up (the
    /// buffers of a 256-image batch would not stay in cache); `None` once diverged. Returns the
    /// summed loss and the number right.
    fn step(&mut self, images: &[f32], labels: &[u8], s: &mut Scratch) -> Option<(f64, usize)> {
        if self.diverged {
            return None;
        }
        self.grads.fill(0.0);
        let (mut loss, mut correct) = (0f64, 0);
        for (images, part) in micro_batches(images, labels) {
            lenet::forward(&self.params, images, part.len(), s);
            let (l, c) = lenet::loss(part, labels.len(), s);
            lenet::backward(&self.params, images, part.len(), s, &mut self.grads);
            loss += l;
            correct += c;
        }
        if !loss.is_finite() {
            self.diverged = true;
            self.params.fill(f32::NAN);
            return None;
        }
        self.update();
        Some((loss, correct))
    }

    /// PyTorch's update rules, weight decay added to the gradient first.
    fn update(&mut self) {
        self.step += 1;
        let Member {
            optimizer,
            lr,
            weight_decay: wd,
            ..
        } = self.member;
        let (lr, wd) = (lr as f32, wd as f32);
        match optimizer {
            Optimizer::Sgd => {
                for (p, &g) in self.params.iter_mut().zip(&self.grads) {
                    *p -= lr * (g + wd * *p);
                }
            }
            Optimizer::Adam => {
                let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
                let correction1 = 1.0 - beta1.powi(self.step);
                let correction2_sqrt = (1.0 - beta2.powi(self.step)).sqrt();
                let step_size = lr / correction1;
                for (((p, &g), m), v) in self
                    .params
                    .iter_mut()
                    .zip(&self.grads)
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                {
                    let g = g + wd * *p;
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    *p -= step_size * *m / (v.sqrt() / correction2_sqrt + eps);
                }
            }
        }
    }
}

/// Runs `f` with this thread's scratch buffers: each pool thread keeps one set for good, and
/// members are handed out one at a time, so a population of any size keeps every core busy.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let _ftz = FlushDenormals::new();
    thread_local! {
        static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
    }
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        f(slot.get_or_insert_with(|| Scratch::new(MICRO_BATCH)))
    })
}

/// Flushes denormal floats to zero (x86's FTZ and DAZ) until dropped. Weight decay drives many
/// weights and gradients of a small net towards zero, and x86 computes on denormals up to 100x
/// slower: without this, a population with weight decay trained at half the speed. A denormal
/// is below 1.2e-38, far under anything that changes a prediction; the mode is restored after
/// each member's step, so the rest of wna keeps IEEE arithmetic.
pub(crate) struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushDenormals {
    const FTZ_DAZ: u32 = 0x8040;

    #[allow(deprecated)] // _mm_getcsr/_mm_setcsr: the plain way to reach MXCSR
    pub(crate) fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
            // SAFETY: SSE is part of x86_64; only the FTZ and DAZ bits change.
            let saved = unsafe { _mm_getcsr() };
            unsafe { _mm_setcsr(saved | Self::FTZ_DAZ) };
            Self { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Drop for FlushDenormals {
    #[allow(deprecated)]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the value read in `new`.
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved)
        };
    }
}

fn micro_batches<'a>(
    images: &'a [f32],
    labels: &'a [u8],
) -> impl Iterator<Item = (&'a [f32], &'a [u8])> {
    images
        .chunks(MICRO_BATCH * PIXELS)
        .zip(labels.chunks(MICRO_BATCH))
}

pub(crate) fn check_data(pixels: &[f32], labels: &[u8]) -> Result<usize> {
    let n = labels.len();
    if n == 0 || pixels.len() != n * PIXELS {
        return Err(Error::Shape {
            op: "population",
            expected: format!("{n} images of 784 pixels for {n} labels, n >= 1"),
            got: format!("{} pixel values", pixels.len()),
        });
    }
    if let Some(bad) = labels.iter().find(|&&l| l as usize >= CLASSES) {
        crate::bail!(
            InvalidArgument,
            "population: label {bad} out of range for {CLASSES} classes"
        );
    }
    if let Some(bad) = pixels.iter().find(|v| !v.is_finite()) {
        crate::bail!(
            NotFinite,
            "population: the images hold a non-finite pixel ({bad})"
        );
    }
    Ok(n)
}
