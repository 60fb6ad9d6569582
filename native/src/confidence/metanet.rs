//! The confidence study's meta-networks: each data-flow layer of a classifier (maxpool2, fc1,
//! fc2, fc3) is projected to one 256-wide token, the four tokens run through a tanh RNN, an LSTM
//! or a Transformer encoder (4 layers each), and an MLP reads the last token's output: one value
//! (the confidence ratio, MSE) or two logits (right or wrong, cross-entropy). Built from candle
//! ops, trained by autograd with wna's Adam; parameter names follow PyTorch's modules.

use crate::error::{Error, Result};
use crate::layers::Linear;
use crate::optim::{Kind, Optimizer};
use crate::philox::{permutation, Philox};
use crate::progress::Progress;
use crate::recurrent::{self, Cell, Recurrent};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Init, VarBuilder, VarMap};
use serde::Deserialize;

/// The data flow's widths, in token order: maxpool2, fc1, fc2, fc3.
pub const FLOW: [usize; 4] = [256, 120, 84, 10];
/// Values per pair: the four layers side by side.
pub const FEATURES: usize = 256 + 120 + 84 + 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaKind {
    Rnn,
    Lstm,
    Transformer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaTask {
    /// The confidence ratio: one output, mean squared error.
    Regression,
    /// Right or wrong: two logits, cross-entropy; predictions are P(right).
    Classification,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetaOptions {
    pub kind: MetaKind,
    pub task: MetaTask,
    #[serde(default = "width")]
    pub width: usize,
    #[serde(default = "depth")]
    pub layers: usize,
    #[serde(default = "heads")]
    pub heads: usize,
    #[serde(default = "feed_forward")]
    pub feed_forward: usize,
    #[serde(default = "epochs")]
    pub epochs: usize,
    #[serde(default = "batch_size")]
    pub batch_size: usize,
    /// Adam's learning rate; `None` takes the kind's (`MetaOptions::learning_rate`).
    #[serde(default)]
    pub lr: Option<f64>,
    #[serde(default)]
    pub seed: u64,
}

fn width() -> usize {
    256
}
fn depth() -> usize {
    4
}
fn heads() -> usize {
    8
}
fn feed_forward() -> usize {
    2048
}
fn epochs() -> usize {
    5
}
fn batch_size() -> usize {
    128
}

/// Adam's learning rate for the recurrent meta-networks.
const RECURRENT_LR: f64 = 1e-3;
/// The Transformer's: a post-norm encoder trained with Adam at 1e-3 and no warm-up collapsed to
/// one class on correctness in every seed (AUROC 0.50); at 1e-4 it trains like the LSTM.
const TRANSFORMER_LR: f64 = 1e-4;

impl MetaOptions {
    /// The learning rate this fit uses: the one given, or the kind's default.
    pub fn learning_rate(&self) -> f64 {
        self.lr.unwrap_or(match self.kind {
            MetaKind::Rnn | MetaKind::Lstm => RECURRENT_LR,
            MetaKind::Transformer => TRANSFORMER_LR,
        })
    }
}

/// A post-norm Transformer encoder layer, as PyTorch's `TransformerEncoderLayer` with ReLU and
/// no dropout.
struct Encoder {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    ff1: Linear,
    ff2: Linear,
    norm1: (Tensor, Tensor),
    norm2: (Tensor, Tensor),
    heads: usize,
}

fn layer_norm(x: &Tensor, (w, b): &(Tensor, Tensor)) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
    Ok(normed.broadcast_mul(w)?.broadcast_add(b)?)
}

impl Encoder {
    fn new(d: usize, ff: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        let norm = |name: &str| -> Result<(Tensor, Tensor)> {
            Ok((
                vb.get_with_hints(d, &format!("{name}.weight"), Init::Const(1.0))?,
                vb.get_with_hints(d, &format!("{name}.bias"), Init::Const(0.0))?,
            ))
        };
        Ok(Self {
            q: Linear::new(d, d, vb.pp("self_attn.q"))?,
            k: Linear::new(d, d, vb.pp("self_attn.k"))?,
            v: Linear::new(d, d, vb.pp("self_attn.v"))?,
            out: Linear::new(d, d, vb.pp("self_attn.out_proj"))?,
            ff1: Linear::new(d, ff, vb.pp("linear1"))?,
            ff2: Linear::new(ff, d, vb.pp("linear2"))?,
            norm1: norm("norm1")?,
            norm2: norm("norm2")?,
            heads,
        })
    }

    /// `x`: `[batch, tokens, d]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let dh = d / self.heads;
        let flat = x.reshape((b * t, d))?;
        let split = |l: &Linear| -> Result<Tensor> {
            Ok(l.forward(&flat)?
                .reshape((b, t, self.heads, dh))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (split(&self.q)?, split(&self.k)?, split(&self.v)?);
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (dh as f64).sqrt())?;
        let attention = candle_nn::ops::softmax(&scores, D::Minus1)?.matmul(&v)?;
        let attention = attention
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * t, d))?;
        let x = layer_norm(&(flat + self.out.forward(&attention)?)?, &self.norm1)?;
        let ff = self.ff2.forward(&self.ff1.forward(&x)?.relu()?)?;
        Ok(layer_norm(&(x + ff)?, &self.norm2)?.reshape((b, t, d))?)
    }
}

enum Body {
    Recurrent(Recurrent),
    Transformer(Vec<Encoder>),
}

pub struct MetaNet {
    projections: Vec<Linear>,
    body: Body,
    decoder: (Linear, Linear),
}

impl MetaNet {
    pub fn new(o: &MetaOptions, vb: VarBuilder) -> Result<Self> {
        let d = o.width;
        let projections = FLOW
            .iter()
            .enumerate()
            .map(|(i, &w)| Linear::new(w, d, vb.pp(format!("proj{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let body = match o.kind {
            MetaKind::Rnn | MetaKind::Lstm => {
                let cell = if o.kind == MetaKind::Lstm {
                    Cell::Lstm
                } else {
                    Cell::Tanh
                };
                Body::Recurrent(Recurrent::new(cell, d, d, o.layers, true, vb.pp("rnn"))?)
            }
            MetaKind::Transformer => Body::Transformer(
                (0..o.layers)
                    .map(|l| {
                        Encoder::new(d, o.feed_forward, o.heads, vb.pp(format!("encoder.{l}")))
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        let outputs = match o.task {
            MetaTask::Regression => 1,
            MetaTask::Classification => 2,
        };
        Ok(Self {
            projections,
            body,
            decoder: (
                Linear::new(d, d / 2, vb.pp("decoder.0"))?,
                Linear::new(d / 2, outputs, vb.pp("decoder.2"))?,
            ),
        })
    }

    /// `x`: `[batch, 470]` standardised data flow; returns `[batch, outputs]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut tokens = Vec::with_capacity(FLOW.len());
        let mut at = 0;
        for (p, &w) in self.projections.iter().zip(&FLOW) {
            tokens.push(p.forward(&x.narrow(1, at, w)?.contiguous()?)?);
            at += w;
        }
        let last = match &self.body {
            Body::Recurrent(r) => r.forward_last(&Tensor::stack(&tokens, 1)?)?,
            Body::Transformer(layers) => {
                let mut x = Tensor::stack(&tokens, 1)?;
                for layer in layers {
                    x = layer.forward(&x)?;
                }
                x.narrow(1, FLOW.len() - 1, 1)?.squeeze(1)?
            }
        };
        self.decoder
            .1
            .forward(&self.decoder.0.forward(&last)?.relu()?)
    }
}

/// Per-column mean and standard deviation over the training rows (a constant column gets 1).
fn standardiser(features: &[f32], rows: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let mut mean = vec![0f64; FEATURES];
    let mut sq = vec![0f64; FEATURES];
    for &r in rows {
        let row = &features[r as usize * FEATURES..][..FEATURES];
        for ((m, s), &v) in mean.iter_mut().zip(&mut sq).zip(row) {
            *m += v as f64;
            *s += (v as f64) * (v as f64);
        }
    }
    let n = rows.len().max(1) as f64;
    let std = mean
        .iter()
        .zip(&sq)
        .map(|(m, s)| {
            let var = s / n - (m / n) * (m / n);
            if var > 1e-12 {
                var.sqrt() as f32
            } else {
                1.0
            }
        })
        .collect();
    (mean.iter().map(|m| (m / n) as f32).collect(), std)
}

fn gather(features: &[f32], rows: &[u32], mean: &[f32], std: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * FEATURES);
    for &r in rows {
        let row = &features[r as usize * FEATURES..][..FEATURES];
        out.extend(row.iter().zip(mean).zip(std).map(|((v, m), s)| (v - m) / s));
    }
    out
}

/// Trains a meta-network on the `train` rows and returns its predictions for the `test` rows:
/// the ratio (regression) or P(right) (classification).
pub fn fit(
    o: &MetaOptions,
    features: &[f32],
    targets: &[f32],
    train: &[u32],
    test: &[u32],
    progress: Progress,
) -> Result<Vec<f32>> {
    let n = targets.len();
    if features.len() != n * FEATURES {
        return Err(Error::Shape {
            op: "metanet",
            expected: format!("{n} rows of {FEATURES} data-flow values for {n} targets"),
            got: format!("{} values", features.len()),
        });
    }
    if let Some(&bad) = train.iter().chain(test).find(|&&r| r as usize >= n) {
        crate::bail!(
            InvalidArgument,
            "metanet: row {bad} out of range for {n} pairs"
        );
    }
    if train.is_empty() || test.is_empty() || o.epochs == 0 || o.batch_size == 0 {
        crate::bail!(
            InvalidArgument,
            "metanet: needs training and test rows, epochs >= 1 and batch size >= 1"
        );
    }
    if o.heads == 0 || !o.width.is_multiple_of(o.heads) || o.width < 2 {
        crate::bail!(
            InvalidArgument,
            "metanet: width {} must be >= 2 and divisible by {} heads",
            o.width,
            o.heads
        );
    }
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let net = MetaNet::new(o, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
    seed_init(&varmap, o.seed)?;
    let mut vars: Vec<_> = varmap
        .data()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let (mean, std) = standardiser(features, train);
    let mut optimizer = Optimizer::new(Kind::ADAM, 0.0);
    let lr = o.learning_rate();
    progress.start((o.epochs * train.len()) as u64);
    for epoch in 0..o.epochs {
        let order = permutation(train.len(), o.seed, 0x3e7a_0000 ^ epoch as u32);
        for chunk in order.chunks(o.batch_size) {
            let rows: Vec<u32> = chunk.iter().map(|&i| train[i as usize]).collect();
            let x = Tensor::from_vec(
                gather(features, &rows, &mean, &std),
                (rows.len(), FEATURES),
                &device,
            )?;
            let out = net.forward(&x)?;
            let loss = match o.task {
                MetaTask::Regression => {
                    let y = Tensor::from_vec(
                        rows.iter()
                            .map(|&r| targets[r as usize])
                            .collect::<Vec<_>>(),
                        (rows.len(), 1),
                        &device,
                    )?;
                    (out - y)?.sqr()?.mean_all()?
                }
                MetaTask::Classification => {
                    let y = Tensor::from_vec(
                        rows.iter()
                            .map(|&r| u32::from(targets[r as usize] > 0.5))
                            .collect::<Vec<_>>(),
                        rows.len(),
                        &device,
                    )?;
                    candle_nn::loss::cross_entropy(&out, &y)?
                }
            };
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                crate::bail!(
                    NotFinite,
                    "metanet: loss became {value} in epoch {epoch}; lower the learning rate"
                );
            }
            optimizer.apply(&vars, &loss.backward()?, lr)?;
            progress.advance(rows.len() as u64);
        }
    }
    let mut predictions = Vec::with_capacity(test.len());
    for chunk in test.chunks(1024) {
        let x = Tensor::from_vec(
            gather(features, chunk, &mean, &std),
            (chunk.len(), FEATURES),
            &device,
        )?;
        let out = net.forward(&x)?;
        let p = match o.task {
            MetaTask::Regression => out.squeeze(1)?,
            MetaTask::Classification => candle_nn::ops::softmax(&out, D::Minus1)?
                .narrow(1, 1, 1)?
                .squeeze(1)?,
        };
        predictions.extend(p.to_vec1::<f32>()?);
    }
    Ok(predictions)
}

/// Redraws every variable from Philox keyed by the seed and its name's rank in sorted order
/// (candle's own draws are not seeded), with PyTorch's bounds: 1/sqrt(hidden) for recurrent
/// layers, 1/sqrt(fan_in) for linear weights and their biases. Layer-norm scales stay 1 and
/// shifts 0.
fn seed_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let vars = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for (i, name) in names.into_iter().enumerate() {
        if name.contains("norm") {
            continue;
        }
        let var = &vars[name];
        let bound = match recurrent::init_bound(name, |n| vars.get(n).map(|v| v.dims().to_vec())) {
            Some(bound) => bound,
            None => {
                let fan = if var.rank() == 2 {
                    var.dim(1)?
                } else {
                    let weight = name.replace(".bias", ".weight");
                    vars.get(&weight).map_or(Ok(1), |w| w.dim(1))?
                };
                1.0 / (fan as f32).sqrt()
            }
        };
        let mut values = vec![0f32; var.elem_count()];
        Philox::new(seed, 0x3e7a_1000, i as u64).fill_uniform(&mut values);
        values
            .iter_mut()
            .for_each(|v| *v = (*v * 2.0 - 1.0) * bound);
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}
