//! The fused white-noise path for two-block conv nets such as `smaller`: which nets it takes, and
//! everything about it that is not a launch. The kernels are `cuda/white_noise.cu`; the GPU runs
//! them through `fused_ops.rs`, and the tests run the same source on the CPU in a host emulator
//! (`tests/cuda_emulated.rs`), against `analyse` on the CPU.
//!
//! A net qualifies when it is, layer for layer: conv (stride 1) [+ batch norm] + ReLU + 2x2
//! max-pool, twice, on a 1x28x28 input; flatten; then linear layers, each optionally followed by
//! batch norm and ReLU, ending in the logits. Anything else keeps the general path.

pub use super::fused_geometry::*;
use super::fused_ops::{shared_limit, FusedClassSums, FusedFeatures, NoiseDraw};
use super::stimuli::NoiseKind;
use super::PIXELS;
use crate::error::Result;
use crate::kernels::inference_affine;
use crate::layers::{invstd, BN_EPS};
use crate::model::Model;
use crate::spec::{LayerSpec, Output};
use candle_core::{DType, Tensor};

/// One linear layer of the head, with what follows it.
pub struct Dense {
    weight: Tensor,
    bias: Option<Tensor>,
    /// Batch norm's inference scale and shift.
    affine: Option<(Tensor, Tensor)>,
    relu: bool,
}

/// A net the fused kernels can run: the conv geometry, the packed conv parameters, the head.
pub struct FusedPlan {
    pub geometry: Geometry,
    pub params: Vec<f32>,
    pub head: Vec<Dense>,
    pub classes: usize,
}

/// The spec's layers, read in order.
struct Layers<'a> {
    specs: &'a [LayerSpec],
    at: usize,
}

impl<'a> Layers<'a> {
    fn next(&mut self) -> Option<(usize, &'a LayerSpec)> {
        let s = self.specs.get(self.at)?;
        self.at += 1;
        Some((self.at - 1, s))
    }
    fn peek(&self) -> Option<&'a LayerSpec> {
        self.specs.get(self.at)
    }
    /// The name of a batch norm that comes next, consumed.
    fn batch_norm(&mut self) -> Option<String> {
        match self.peek() {
            Some(l @ LayerSpec::BatchNorm { .. }) => {
                let name = l.param_name(self.at);
                self.at += 1;
                name
            }
            _ => None,
        }
    }
    fn relu(&mut self) -> bool {
        let yes = matches!(self.peek(), Some(LayerSpec::Relu { .. }));
        self.at += yes as usize;
        yes
    }
}

/// A conv block: (name, out channels, kernel, padding, batch norm's name).
type ConvBlock = (String, usize, usize, usize, Option<String>);

fn conv_block(layers: &mut Layers) -> Option<ConvBlock> {
    let (i, conv) = layers.next()?;
    let LayerSpec::Conv2d {
        out,
        kernel,
        stride: 1,
        padding,
        ..
    } = conv
    else {
        return None;
    };
    let bn = layers.batch_norm();
    if !layers.relu() {
        return None;
    }
    let (
        _,
        LayerSpec::MaxPool {
            size: 2,
            stride: None | Some(2),
            ..
        },
    ) = layers.next()?
    else {
        return None;
    };
    Some((conv.param_name(i)?, *out, *kernel, *padding, bn))
}

impl FusedPlan {
    /// The plan for `model`, or `None` when its net is not of the fused shape or its kernels
    /// would need more than `shared_limit` bytes of shared memory per block.
    pub fn new(model: &Model, shared_limit: usize) -> Result<Option<Self>> {
        let spec = &model.spec;
        if spec.input != [1, 28, 28] || spec.output != Output::Logits {
            return Ok(None);
        }
        let mut layers = Layers {
            specs: &spec.layers,
            at: 0,
        };
        let (Some(b1), Some(b2)) = (conv_block(&mut layers), conv_block(&mut layers)) else {
            return Ok(None);
        };
        if !matches!(layers.next(), Some((_, LayerSpec::Flatten))) {
            return Ok(None);
        }
        let mut dense = Vec::new();
        while let Some((i, layer)) = layers.next() {
            let LayerSpec::Linear { .. } = layer else {
                return Ok(None);
            };
            let Some(name) = layer.param_name(i) else {
                return Ok(None);
            };
            dense.push((name, layers.batch_norm(), layers.relu()));
        }
        // The last linear layer gives the logits, bare.
        if !matches!(dense.last(), Some((_, None, false))) {
            return Ok(None);
        }
        let mut geometry = Geometry {
            c1: b1.1 as u32,
            k1: b1.2 as u32,
            p1: b1.3 as u32,
            c2: b2.1 as u32,
            k2: b2.2 as u32,
            p2: b2.3 as u32,
            c2_padded: b2.1.next_multiple_of(CHANNELS_PER_THREAD) as u32,
            group: MAX_GROUP as u32,
        };
        // Each map must outlast its kernel and pooling (checked in order: each size assumes
        // the one before it is positive).
        let g = &geometry;
        if g.side0() < b1.2 || g.pooled1() == 0 || g.side1() < b2.2 || g.pooled2() == 0 {
            return Ok(None);
        }
        // As many images per block as fit, up to MAX_GROUP.
        let Some(group) = (1..=MAX_GROUP)
            .rev()
            .find(|&n| geometry.features_shared_bytes(n) <= shared_limit)
        else {
            return Ok(None);
        };
        if class_sums_shared_bytes(model.classes) > shared_limit {
            return Ok(None);
        }
        geometry.group = group as u32;
        let params = pack_params(model, &geometry, &b1, &b2)?;
        let head = dense
            .into_iter()
            .map(|(name, bn, relu)| {
                Ok(Dense {
                    weight: param(model, &name, "weight")?.expect("linear layers have weights"),
                    bias: param(model, &name, "bias")?,
                    affine: bn
                        .map(|bn| bn_affine(model, &bn))
                        .transpose()?
                        .map(|(s, h)| -> Result<_> {
                            let d = &model.device;
                            Ok((Tensor::new(s, d)?, Tensor::new(h, d)?))
                        })
                        .transpose()?,
                    relu,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Self {
            geometry,
            params,
            head,
            classes: model.classes,
        }))
    }

    /// The logits of `[n, features]` pooled conv features: the head's linear layers, with batch
    /// norm and ReLU where the net has them.
    pub fn logits(&self, features: &Tensor) -> Result<Tensor> {
        let mut x = features.clone();
        for d in &self.head {
            x = x.matmul(&d.weight.t()?)?;
            if let Some(b) = &d.bias {
                x = x.broadcast_add(b)?;
            }
            if let Some((scale, shift)) = &d.affine {
                x = x.broadcast_mul(scale)?.broadcast_add(shift)?;
            }
            if d.relu {
                x = x.relu()?;
            }
        }
        Ok(x)
    }
}

/// A parameter of layer `layer`, if the layer has it.
fn param(model: &Model, layer: &str, what: &str) -> Result<Option<Tensor>> {
    let vars = model
        .varmap
        .data()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    Ok(vars
        .get(&format!("{layer}.{what}"))
        .map(|v| v.as_tensor().to_dtype(DType::F32))
        .transpose()?)
}

fn host(t: Option<Tensor>, len: usize, fill: f32) -> Result<Vec<f32>> {
    Ok(match t {
        Some(t) => t.flatten_all()?.to_vec1()?,
        None => vec![fill; len],
    })
}

/// Batch norm's inference scale and shift, as the layer forms them.
fn bn_affine(model: &Model, name: &str) -> Result<(Vec<f32>, Vec<f32>)> {
    let get = |what| -> Result<Vec<f32>> { host(param(model, name, what)?, 0, 0.0) };
    Ok(inference_affine(
        &get("weight")?,
        &get("bias")?,
        &get("running_mean")?,
        &invstd(&get("running_var")?, BN_EPS),
    ))
}

/// A conv block's bias, BN scale and BN shift, each `channels` long (0, 1 and 0 without them).
fn block_affine(model: &Model, block: &ConvBlock) -> Result<[Vec<f32>; 3]> {
    let c = block.1;
    let bias = host(param(model, &block.0, "bias")?, c, 0.0)?;
    let (scale, shift) = match &block.4 {
        Some(bn) => bn_affine(model, bn)?,
        None => (vec![1.0; c], vec![0.0; c]),
    };
    Ok([bias, scale, shift])
}

/// The parameters in the kernel's layout (see `param_floats` in the kernel).
fn pack_params(model: &Model, g: &Geometry, b1: &ConvBlock, b2: &ConvBlock) -> Result<Vec<f32>> {
    let (c1, c2, c2p) = (g.c1 as usize, g.c2 as usize, g.c2_padded as usize);
    let kk2 = (g.k2 * g.k2) as usize;
    let mut out = host(param(model, &b1.0, "weight")?, 0, 0.0)?;
    for v in block_affine(model, b1)? {
        out.extend(v);
    }
    // conv2's [c2][c1][k][k] weights as [c1][k][k][c2_padded], output channel fastest.
    let w2 = host(param(model, &b2.0, "weight")?, 0, 0.0)?;
    let mut t = vec![0f32; c1 * kk2 * c2p];
    for (o, w) in w2.chunks_exact(c1 * kk2).enumerate() {
        for (ik, v) in w.iter().enumerate() {
            t[ik * c2p + o] = *v;
        }
    }
    out.extend(t);
    for mut v in block_affine(model, b2)? {
        v.resize(c2p, 0.0);
        out.extend(v);
    }
    debug_assert_eq!(out.len(), g.param_floats());
    debug_assert_eq!(w2.len(), c2 * c1 * kk2);
    Ok(out)
}

/// A batch's totals (`[3 * classes + 1][ROW]`, as `wna_wn_reduce` leaves them) as `analyse`'s
/// three sums: the `[3 * classes, 784]` class images, their `[3 * classes]` weights, and the
/// `[784]` stimulus sum.
pub fn split_totals(totals: &Tensor, classes: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let rows = 3 * classes;
    let t = totals.reshape((rows + 1, ROW))?;
    let classes = t.narrow(0, 0, rows)?;
    Ok((
        classes.narrow(1, 0, PIXELS)?,
        classes.narrow(1, PIXELS, 1)?,
        t.narrow(0, rows, 1)?.narrow(1, 0, PIXELS)?,
    ))
}

/// A noise run on the fused kernels: the plan and its parameters on the device.
pub struct FusedRun {
    plan: FusedPlan,
    params: Tensor,
    noise: NoiseDraw,
    threshold: f32,
    in_mul: f32,
    in_add: f32,
}

impl FusedRun {
    /// The fused run for an analysis of pure noise on a GPU, or `None` where the general path
    /// must run it: on the CPU, for nets of other shapes, for data noise, under stimulation, or
    /// with `WNA_FUSED=0` (to compare the two paths).
    pub fn new(
        model: &Model,
        noise: &NoiseKind,
        seed: u64,
        threshold: f32,
    ) -> Result<Option<Self>> {
        if !model.device.is_cuda()
            || model.stimulation.is_some()
            || std::env::var("WNA_FUSED").is_ok_and(|v| v == "0")
        {
            return Ok(None);
        }
        let Some(noise) = NoiseDraw::of(noise, seed) else {
            return Ok(None);
        };
        let Some(plan) = FusedPlan::new(model, shared_limit(&model.device)?)? else {
            return Ok(None);
        };
        let params = Tensor::new(plan.params.as_slice(), &model.device)?;
        let (in_mul, in_add) = model.normalisation();
        Ok(Some(Self {
            plan,
            params,
            noise,
            threshold,
            in_mul,
            in_add,
        }))
    }

    /// The f64 totals of samples `first..first + count`, on the device (see `split_totals`).
    pub fn batch(&self, first: u64, count: usize) -> Result<Tensor> {
        let features = self.params.apply_op1_no_bwd(&FusedFeatures {
            geometry: self.plan.geometry,
            first,
            count,
            noise: self.noise,
            in_mul: self.in_mul,
            in_add: self.in_add,
        })?;
        let logits = self.plan.logits(&features)?.contiguous()?;
        Ok(logits.apply_op1_no_bwd(&FusedClassSums {
            classes: self.plan.classes,
            threshold: self.threshold,
            first,
            noise: self.noise,
        })?)
    }
}
