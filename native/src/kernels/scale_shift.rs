//! Inference batch norm as one op, `y = x * scale[c] + shift[c]` over dimension 1, ReLU'd when
//! asked: one pass on the CPU, one kernel on CUDA (`cuda/layers.cu`), where candle would run
//! three broadcast passes.

#[cfg(feature = "cuda")]
use candle_core::backend::{BackendDevice, BackendStorage};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, Layout, Result as CResult, Shape, Tensor};

/// Inference batch norm as one pass: `y = x * scale[c] + shift[c]` over dimension 1, ReLU'd
/// when asked. On CUDA one kernel (`cuda/layers.cu`) replaces candle's three broadcast passes.
#[derive(Debug, Clone, Copy)]
pub struct ScaleShift {
    pub relu: bool,
}

#[cfg(feature = "cuda")]
const LAYERS_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/layers.ptx"));

fn channel_geometry(l: &Layout) -> CResult<(usize, usize)> {
    let dims = l.shape().dims();
    if dims.len() < 2 {
        candle_core::bail!("scale-shift: expected at least 2 dimensions, got {dims:?}")
    }
    Ok((dims[1], dims[2..].iter().product()))
}

/// The f32 elements of a contiguous tensor on the CPU.
fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> CResult<&'a [f32]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("scale-shift: non-contiguous".into()))?;
    Ok(&s.as_slice::<f32>()?[a..b])
}

impl candle_core::CustomOp3 for ScaleShift {
    fn name(&self) -> &'static str {
        "wna-scale-shift"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ss: &CpuStorage,
        sl: &Layout,
        hs: &CpuStorage,
        hl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (channels, spatial) = channel_geometry(xl)?;
        let (x, scale, shift) = (slice(xs, xl)?, slice(ss, sl)?, slice(hs, hl)?);
        let y = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / spatial) % channels;
                let y = v.mul_add(scale[c], shift[c]);
                if self.relu && y < 0.0 {
                    0.0
                } else {
                    y
                }
            })
            .collect();
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        ss: &CudaStorage,
        sl: &Layout,
        hs: &CudaStorage,
        hl: &Layout,
    ) -> CResult<(CudaStorage, Shape)> {
        use cudarc::driver::{LaunchConfig, PushKernelArg};
        let (channels, spatial) = channel_geometry(xl)?;
        let n = xl.shape().elem_count();
        let dev = xs.device().clone();
        use crate::kernels::cuda_f32_view as view;
        let (x, scale, shift) = (
            view(xs, xl, "scale-shift")?,
            view(ss, sl, "scale-shift")?,
            view(hs, hl, "scale-shift")?,
        );
        let func = dev.get_or_load_custom_func("wna_scale_shift", "wna_layers", LAYERS_PTX)?;
        // SAFETY: the kernel writes all n elements.
        let mut y = unsafe { dev.alloc::<f32>(n)? };
        let (n64, c32, s32, relu) = (n as u64, channels as u32, spatial as u32, self.relu as u32);
        let mut b = func.builder();
        b.arg(&x);
        b.arg(&scale);
        b.arg(&shift);
        b.arg(&mut y);
        b.arg(&n64);
        b.arg(&c32);
        b.arg(&s32);
        b.arg(&relu);
        let blocks = n.div_ceil(256).min(65_535 * 8) as u32;
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments match the kernel's signature in cuda/layers.cu.
        unsafe { b.launch(cfg) }
            .map_err(|e| candle_core::Error::Msg(format!("wna_scale_shift: {e}")))?;
        Ok((CudaStorage::wrap_cuda_slice(y, dev), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        scale: &Tensor,
        _shift: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let mut bshape = vec![1usize; x.rank()];
        bshape[1] = scale.dim(0)?;
        let grad = if self.relu {
            (grad * res.gt(0.0)?.to_dtype(grad.dtype())?)?
        } else {
            grad.clone()
        };
        let gx = grad.broadcast_mul(&scale.reshape(bshape.as_slice())?)?;
        // Sum over every dimension but the channel one.
        let per_channel = |t: &Tensor| -> CResult<Tensor> {
            let t = t.transpose(0, 1)?.contiguous()?;
            t.flatten_from(1)?.sum(1)
        };
        let gscale = per_channel(&(&grad * x)?)?;
        let gshift = per_channel(&grad)?;
        Ok((Some(gx), Some(gscale), Some(gshift)))
    }
}
