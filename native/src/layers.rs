//! The layers the networks are built from. On the CPU they run wna's kernels (`kernels.rs`);
//! on other devices candle's own ops, with the backward passes candle gets wrong replaced
//! (`backward_fixes.rs`). Parameter names match candle-nn's, so checkpoints are the same either way.

use crate::backward_fixes;
use crate::error::Result;
use crate::kernels;
use crate::philox::Philox;
use candle_core::{Tensor, Var};
use candle_nn::{Init, VarBuilder};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether wna's kernels may take a tensor at all: f32, unless `WNA_CANDLE_OPS` asks for
/// candle's own ops (the bench and the kernel tests compare the two).
fn kernels_allowed(x: &Tensor) -> bool {
    x.dtype() == candle_core::DType::F32 && std::env::var_os("WNA_CANDLE_OPS").is_none()
}

/// Whether a tensor takes wna's CPU kernels.
fn use_kernels(x: &Tensor) -> bool {
    x.device().is_cpu() && kernels_allowed(x)
}

/// Whether a tensor takes the CUDA twins of wna's kernels (`kernels/*/gpu.rs`), in a `cuda`
/// build.
fn use_cuda_kernels(x: &Tensor) -> bool {
    cfg!(feature = "cuda") && x.device().is_cuda() && kernels_allowed(x)
}

/// Whether a layer whose kernel has a CUDA twin (conv, max-pool) takes wna's kernels: on CUDA
/// the twins replace candle's im2col conv forward, its `conv_transpose2d` input gradient, its
/// wrong conv weight gradient and its mis-scaled max-pool backward.
fn use_kernels_or_twins(x: &Tensor) -> bool {
    use_kernels(x) || use_cuda_kernels(x)
}

/// `WNA_CANDLE_OPS=raw`: candle's ops exactly as they are, wrong gradients included (to show
/// the bugs in the kernel tests). Any other value keeps the gradient fixes.
fn candle_ops_only() -> bool {
    std::env::var("WNA_CANDLE_OPS").is_ok_and(|v| v == "raw")
}

/// A 2-D convolution with square stride and zero padding.
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// PyTorch's default init: kaiming-uniform weights and uniform bias, both in ±1/sqrt(fan_in).
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let fan_in = c_in * kernel * kernel;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let weight = vb.get_with_hints(
            (c_out, c_in, kernel, kernel),
            "weight",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        let bias = if bias {
            Some(vb.get_with_hints(
                c_out,
                "bias",
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            stride,
            padding,
        })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `train` says whether the weight gradient is wanted: on candle's ops it costs an extra
    /// zero-valued term (see `backward_fixes::ConvWeightGradient`).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if use_kernels_or_twins(x) {
            let bias = match &self.bias {
                Some(b) => b.clone(),
                None => Tensor::zeros(self.weight.dim(0)?, x.dtype(), x.device())?,
            };
            let op = kernels::Conv2d {
                stride: self.stride,
                padding: self.padding,
            };
            return Ok(x.contiguous()?.apply_op3(&self.weight, &bias, op)?);
        }
        let y = if train && !candle_ops_only() {
            let y = x.conv2d(&self.weight.detach(), self.padding, self.stride, 1, 1)?;
            let fix = backward_fixes::ConvWeightGradient {
                stride: self.stride,
                padding: self.padding,
                out: y.dims4()?,
            };
            (&y + x.detach().apply_op2(&self.weight, fix)?)?
        } else {
            x.conv2d(&self.weight, self.padding, self.stride, 1, 1)?
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
            None => y,
        })
    }

    /// Inference with no gradient wanted: this convolution, then `bn` (if any) with its running
    /// statistics, then `skip` added (a residual input of the output's shape), then the ReLU, as
    /// one fused op with the same bits as the layers run one by one. `None` where the CPU kernels
    /// do not apply (other devices, `WNA_CANDLE_OPS`): the caller then runs the layers.
    pub fn forward_inference(
        &self,
        x: &Tensor,
        bn: Option<&BatchNorm>,
        skip: Option<&Tensor>,
        relu: bool,
    ) -> Result<Option<Tensor>> {
        if !use_kernels(x) {
            return Ok(None);
        }
        let bias = match &self.bias {
            Some(b) => b.to_vec1::<f32>()?,
            None => vec![0.0; self.weight.dim(0)?],
        };
        let op = kernels::Conv2dInference {
            conv: kernels::Conv2d {
                stride: self.stride,
                padding: self.padding,
            },
            epilogue: kernels::Epilogue {
                bias,
                affine: bn.map(BatchNorm::inference_affine).transpose()?,
                relu,
            },
        };
        let x = x.contiguous()?;
        Ok(Some(match skip {
            Some(s) => x.apply_op3_no_bwd(&self.weight, &s.contiguous()?, &op)?,
            None => x.apply_op2_no_bwd(&self.weight, &op)?,
        }))
    }
}

/// Batch norm's `1 / sqrt(var + eps)` per channel, in f32 as every kernel takes it.
pub(crate) fn invstd(var: &[f32], eps: f64) -> Vec<f32> {
    var.iter().map(|&v| 1.0 / (v + eps as f32).sqrt()).collect()
}

/// Batch norm's epsilon (PyTorch's default); the ONNX importer folds a file's own into the
/// running variance against it.
pub const BN_EPS: f64 = 1e-5;

/// Batch normalisation over dimension 1 (PyTorch's `BatchNorm1d`/`2d`): batch statistics while
/// training (running statistics updated with momentum 0.1, unbiased variance), running ones in
/// inference. `forward(x, train, relu)` fuses the ReLU that follows it in most of our nets.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
}

impl BatchNorm {
    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
        let running_mean = vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?;
        let running_var = vb.get_with_hints(channels, "running_var", Init::Const(1.0))?;
        Ok(Self {
            weight,
            bias,
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            eps: BN_EPS,
            momentum: 0.1,
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let channels = self.weight.dim(0)?;
        let count = x.elem_count() / channels.max(1);
        // On CUDA only training takes the kernels: inference's one pass (`ScaleShift` below)
        // needs no statistics on the host.
        if use_kernels(x) || (train && use_cuda_kernels(x)) {
            let x = x.contiguous()?;
            let (mean, var) = if train {
                let both = x
                    .apply_op1_no_bwd(&kernels::ChannelStatistics)?
                    .to_vec1::<f32>()?;
                let (mean, var) = both.split_at(channels);
                self.update_running(mean, var, count)?;
                (mean.to_vec(), var.to_vec())
            } else {
                (
                    self.running_mean.as_tensor().to_vec1::<f32>()?,
                    self.running_var.as_tensor().to_vec1::<f32>()?,
                )
            };
            let invstd = self.invstd(&var);
            let op = kernels::BatchNorm {
                mean,
                invstd,
                batch_statistics: train,
                relu,
            };
            return Ok(x.apply_op3(&self.weight, &self.bias, op)?);
        }
        if !train {
            // Inference folds the statistics into one scale and shift per channel: one pass
            // over the activations instead of a transpose and six.
            let scale = (&self.weight / (self.running_var.as_tensor() + self.eps)?.sqrt()?)?;
            let shift = (&self.bias - (self.running_mean.as_tensor() * &scale)?)?;
            let op = kernels::ScaleShift { relu };
            return Ok(x.contiguous()?.apply_op3(&scale, &shift, op)?);
        }
        // Training: batch statistics with candle ops on [c, rest], one broadcast shape for every
        // rank.
        let shape = x.shape().clone();
        let xt = x.transpose(0, 1)?.contiguous()?;
        let t_shape = xt.shape().clone();
        let xt = xt.flatten_from(1)?;
        let mean = xt.mean_keepdim(1)?;
        let var = xt.broadcast_sub(&mean)?.sqr()?.mean_keepdim(1)?;
        self.update_running(
            &mean.flatten_all()?.to_vec1()?,
            &var.flatten_all()?.to_vec1()?,
            count,
        )?;
        let y = xt
            .broadcast_sub(&mean)?
            .broadcast_div(&(var + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.weight.reshape(((), 1))?)?
            .broadcast_add(&self.bias.reshape(((), 1))?)?;
        let y = y.reshape(t_shape)?.transpose(0, 1)?.reshape(shape)?;
        Ok(if relu { y.relu()? } else { y })
    }

    fn invstd(&self, var: &[f32]) -> Vec<f32> {
        invstd(var, self.eps)
    }

    /// The running statistics and the affine parameters as one scale and shift per channel,
    /// exactly as the inference kernel forms them.
    fn inference_affine(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let var = self.running_var.as_tensor().to_vec1::<f32>()?;
        Ok(kernels::inference_affine(
            &self.weight.to_vec1::<f32>()?,
            &self.bias.to_vec1::<f32>()?,
            &self.running_mean.as_tensor().to_vec1::<f32>()?,
            &self.invstd(&var),
        ))
    }

    fn update_running(&self, mean: &[f32], var: &[f32], count: usize) -> Result<()> {
        let m = self.momentum as f32;
        let unbias = count as f32 / (count.max(2) - 1) as f32;
        let device = self.running_mean.device();
        let old_mean = self.running_mean.as_tensor().to_vec1::<f32>()?;
        let old_var = self.running_var.as_tensor().to_vec1::<f32>()?;
        let new_mean: Vec<f32> = old_mean
            .iter()
            .zip(mean)
            .map(|(o, b)| (1.0 - m) * o + m * b)
            .collect();
        let new_var: Vec<f32> = old_var
            .iter()
            .zip(var)
            .map(|(o, b)| (1.0 - m) * o + m * b * unbias)
            .collect();
        self.running_mean.set(&Tensor::new(new_mean, device)?)?;
        self.running_var.set(&Tensor::new(new_var, device)?)?;
        Ok(())
    }
}

/// 2x2 max-pooling, stride 2: wna's kernel on the CPU and CUDA, else candle's forward with the
/// portable backward.
pub fn max_pool2(x: &Tensor) -> Result<Tensor> {
    if use_kernels_or_twins(x) {
        return Ok(x.contiguous()?.apply_op1(kernels::MaxPool2)?);
    }
    if candle_ops_only() {
        return Ok(x.max_pool2d(2)?);
    }
    Ok(x.apply_op1(backward_fixes::MaxPool2)?)
}

/// Average pooling with a `size` window and stride (PyTorch's `AvgPool2d(size)`, floor mode).
/// On the CPU, [`kernels::AvgPool`]. Elsewhere a ragged edge is cut off first: candle's backward
/// upsamples the gradient to the input size by nearest neighbour, which misroutes it whenever the
/// size is not a multiple of the window (25 -> 12 in `n1`), and is right when it is.
pub fn avg_pool(x: &Tensor, size: usize) -> Result<Tensor> {
    if use_kernels(x) {
        return Ok(x.contiguous()?.apply_op1(kernels::AvgPool { size })?);
    }
    let (_, _, h, w) = x.dims4()?;
    let (h_used, w_used) = (h / size * size, w / size * size);
    let x = if (h_used, w_used) == (h, w) {
        x.clone()
    } else {
        x.narrow(2, 0, h_used)?.narrow(3, 0, w_used)?
    };
    Ok(x.avg_pool2d(size)?)
}

/// A fully connected layer `x . w^T + b`, weight `[out, in]` as in candle-nn and PyTorch.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn new(fan_in: usize, out: usize, vb: VarBuilder) -> Result<Self> {
        Self::with_bias(fan_in, out, true, vb)
    }

    pub fn with_bias(fan_in: usize, out: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / (fan_in as f64).sqrt();
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        Ok(Self {
            weight: vb.get_with_hints((out, fan_in), "weight", init)?,
            bias: if bias {
                Some(vb.get_with_hints(out, "bias", init)?)
            } else {
                None
            },
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if use_kernels(x) && x.rank() == 2 {
            let bias = match &self.bias {
                Some(b) => b.clone(),
                None => Tensor::zeros(self.weight.dim(0)?, x.dtype(), x.device())?,
            };
            return Ok(x
                .contiguous()?
                .apply_op3(&self.weight, &bias, kernels::Linear)?);
        }
        let y = x.matmul(&self.weight.t()?)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// Inverted dropout whose mask comes from Philox keyed by the training step, so a seeded run
/// repeats exactly.
pub struct Dropout {
    p: f32,
    stream: u32,
    step_seed: AtomicU64,
}

impl Dropout {
    pub fn new(p: f32, stream: u32) -> Self {
        Self {
            p,
            stream,
            step_seed: AtomicU64::new(0),
        }
    }

    pub fn set_step_seed(&self, seed: u64) {
        self.step_seed.store(seed, Ordering::Relaxed);
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(x.clone());
        }
        let rng = Philox::new(self.step_seed.load(Ordering::Relaxed), self.stream, 0);
        let mut mask = vec![0f32; x.elem_count()];
        rng.fill_uniform(&mut mask);
        let keep = 1.0 / (1.0 - self.p);
        for m in &mut mask {
            *m = if *m >= self.p { keep } else { 0.0 };
        }
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
        Ok((x * mask)?)
    }
}

/// The element-wise activations of a spec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
    LeakyRelu(f64),
    Mish,
}

impl Activation {
    pub fn forward(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Relu => x.relu()?,
            Self::Sigmoid => candle_nn::ops::sigmoid(x)?,
            Self::Tanh => x.tanh()?,
            Self::LeakyRelu(slope) if use_kernels(x) => {
                x.contiguous()?.apply_op1(kernels::LeakyRelu {
                    slope: slope as f32,
                })?
            }
            Self::LeakyRelu(slope) => candle_nn::ops::leaky_relu(x, slope)?,
            // softplus(x) = max(x, 0) + log(1 + exp(-|x|)), which never overflows.
            Self::Mish => {
                let softplus = (x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
                (x * softplus.tanh()?)?
            }
        })
    }
}
