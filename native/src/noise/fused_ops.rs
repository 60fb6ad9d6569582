//! The launches of the fused white-noise kernels (`cuda/white_noise.cu`), as candle ops so that
//! their outputs are ordinary device tensors: the pooled features of a batch, and a batch's class
//! sums in f64. They exist on CUDA only; the CPU runs the general path (and the tests run the
//! kernels' source in a host emulator).

use super::fused_geometry::Geometry;
use super::stimuli::{NoiseKind, NOISE_STREAM};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};

/// The noise a run draws: the stream's seed, and normal `(mean, std)` or uniform.
#[derive(Debug, Clone, Copy)]
pub struct NoiseDraw {
    pub seed: u64,
    pub stream: u32,
    pub normal: Option<(f32, f32)>,
}

impl NoiseDraw {
    /// What an analysis of `noise` with `seed` draws, or `None` for noise the kernels cannot draw
    /// (data noise, which needs its fitted covariance).
    pub fn of(noise: &NoiseKind, seed: u64) -> Option<Self> {
        let normal = match noise {
            NoiseKind::Uniform => None,
            NoiseKind::Gaussian { mean, std } => Some((*mean, *std)),
            NoiseKind::Data { .. } => return None,
        };
        Some(Self {
            seed,
            stream: NOISE_STREAM,
            normal,
        })
    }
}

/// Applied to the packed parameters: the `[count, features]` pooled conv2 features of samples
/// `first..first + count`.
pub struct FusedFeatures {
    pub geometry: Geometry,
    pub first: u64,
    pub count: usize,
    pub noise: NoiseDraw,
    /// The model's normalisation, `x * mul + add`.
    pub in_mul: f32,
    pub in_add: f32,
}

/// Applied to `[count, classes]` logits: the batch's `[3 * classes + 1][ROW]` sums in f64.
pub struct FusedClassSums {
    pub classes: usize,
    pub threshold: f32,
    pub first: u64,
    pub noise: NoiseDraw,
}

/// The noise arguments every kernel ends with, as the kernels take them.
#[derive(Debug, Clone, Copy)]
pub struct NoiseArgs {
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub stream: u32,
    pub normal: u32,
    pub mean: f32,
    pub std: f32,
}

impl From<NoiseDraw> for NoiseArgs {
    fn from(n: NoiseDraw) -> Self {
        let (mean, std) = n.normal.unwrap_or((0.0, 1.0));
        Self {
            seed_lo: n.seed as u32,
            seed_hi: (n.seed >> 32) as u32,
            stream: n.stream,
            normal: n.normal.is_some() as u32,
            mean,
            std,
        }
    }
}

/// Bytes of shared memory a block may opt in to on `device`; 0 off CUDA, where nothing fuses.
pub fn shared_limit(device: &candle_core::Device) -> crate::error::Result<usize> {
    match device {
        #[cfg(feature = "cuda")]
        candle_core::Device::Cuda(dev) => Ok(launch::attribute(
            dev,
            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
        )?),
        _ => Ok(0),
    }
}

fn gpu_only(op: &str) -> candle_core::Result<(CpuStorage, Shape)> {
    candle_core::bail!("{op}: the fused white-noise kernels run on CUDA only")
}

#[cfg(feature = "cuda")]
const MODULE: &str = "wna_white_noise";
#[cfg(feature = "cuda")]
const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/white_noise.ptx"));

#[cfg(feature = "cuda")]
mod launch {
    use super::NoiseArgs;
    use candle_core::cuda_backend::CudaDevice;
    use cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute};
    use cudarc::driver::{CudaFunction, LaunchArgs, LaunchConfig, PushKernelArg};

    pub fn fail(name: &str, e: impl std::fmt::Display) -> candle_core::Error {
        candle_core::Error::Msg(format!("{name}: {e}"))
    }

    /// Kernel `name`, allowed `shared` bytes of dynamic shared memory, and the number of its
    /// blocks that fill the GPU once.
    pub fn prepare(
        dev: &CudaDevice,
        name: &str,
        shared: usize,
    ) -> candle_core::Result<(CudaFunction, usize)> {
        let func = dev
            .get_or_load_custom_func(name, super::MODULE, super::PTX)?
            .into_cuda_function();
        allow_shared(dev, &func, name, shared)?;
        let resident = resident_blocks(dev, &func, shared)?;
        Ok((func, resident))
    }

    /// Lets `func` use `shared` bytes of dynamic shared memory, if the GPU has them.
    fn allow_shared(
        dev: &CudaDevice,
        func: &CudaFunction,
        name: &str,
        shared: usize,
    ) -> candle_core::Result<()> {
        let limit = attribute(
            dev,
            CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
        )?;
        if shared > limit {
            candle_core::bail!("{name}: needs {shared} bytes of shared memory, the GPU has {limit}")
        }
        func.set_attribute(
            CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            shared as i32,
        )
        .map_err(|e| fail(name, e))
    }

    pub fn attribute(dev: &CudaDevice, a: CUdevice_attribute) -> candle_core::Result<usize> {
        let v = dev
            .cuda_stream()
            .context()
            .attribute(a)
            .map_err(|e| fail("device attribute", e))?;
        Ok(v as usize)
    }

    /// Blocks that fill the GPU once: the SMs times the blocks each can hold.
    fn resident_blocks(
        dev: &CudaDevice,
        func: &CudaFunction,
        shared: usize,
    ) -> candle_core::Result<usize> {
        let sms = attribute(
            dev,
            CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
        )?;
        let per_sm = func
            .occupancy_max_active_blocks_per_multiprocessor(
                super::super::fused_geometry::THREADS,
                shared,
                None,
            )
            .map_err(|e| fail("occupancy", e))?;
        Ok(sms * per_sm.max(1) as usize)
    }

    pub fn config(blocks: usize, threads: u32, shared: usize) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: shared as u32,
        }
    }

    /// The noise arguments every kernel ends with: seed halves, stream, normal flag, mean, std.
    pub fn noise_args<'a>(b: &mut LaunchArgs<'a>, n: &'a NoiseArgs) {
        b.arg(&n.seed_lo);
        b.arg(&n.seed_hi);
        b.arg(&n.stream);
        b.arg(&n.normal);
        b.arg(&n.mean);
        b.arg(&n.std);
    }
}

// SAFETY: `Geometry` is `#[repr(C)]` plain u32s, the layout of `WnGeometry`.
#[cfg(feature = "cuda")]
unsafe impl cudarc::driver::DeviceRepr for Geometry {}

impl CustomOp1 for FusedFeatures {
    fn name(&self) -> &'static str {
        "wna-fused-features"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        gpu_only(self.name())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        use cudarc::driver::PushKernelArg;
        let name = "wna_wn_features";
        let dev = s.device().clone();
        let g = self.geometry;
        if l.shape().elem_count() != g.param_floats() || !l.is_contiguous() {
            candle_core::bail!("{name}: the parameters do not match the geometry")
        }
        let params = s.as_cuda_slice::<f32>()?.slice(l.start_offset()..);
        let shared = g.features_shared_bytes(g.group as usize);
        let (func, resident) = launch::prepare(&dev, name, shared)?;
        let blocks = self.count.div_ceil(g.group as usize).min(resident);
        let n = self.count * g.features();
        // SAFETY: every (image, feature) of the batch is written (see the kernel's last loop).
        let mut out = unsafe { dev.alloc::<f32>(n)? };
        let (count, noise) = (self.count as u32, NoiseArgs::from(self.noise));
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&func);
        b.arg(&params);
        b.arg(&mut out);
        b.arg(&self.first);
        b.arg(&count);
        b.arg(&g);
        launch::noise_args(&mut b, &noise);
        b.arg(&self.in_mul);
        b.arg(&self.in_add);
        // SAFETY: the arguments match `wna_wn_features` in cuda/white_noise.cu.
        unsafe {
            b.launch(launch::config(
                blocks,
                super::fused_geometry::THREADS,
                shared,
            ))
        }
        .map_err(|e| launch::fail(name, e))?;
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev),
            Shape::from((self.count, g.features())),
        ))
    }
}

impl CustomOp1 for FusedClassSums {
    fn name(&self) -> &'static str {
        "wna-fused-class-sums"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        gpu_only(self.name())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use super::fused_geometry::{class_sums_shared_bytes, sum_width, CHUNK};
        use candle_core::backend::BackendStorage;
        use cudarc::driver::PushKernelArg;
        let name = "wna_wn_class_sums";
        let dev = s.device().clone();
        let (count, classes) = l.shape().dims2()?;
        if classes != self.classes || !l.is_contiguous() {
            candle_core::bail!("{name}: expected contiguous [n, {}] logits", self.classes)
        }
        let logits = s.as_cuda_slice::<f32>()?.slice(l.start_offset()..);
        let shared = class_sums_shared_bytes(classes);
        let (func, resident) = launch::prepare(&dev, name, shared)?;
        let per_block = count.div_ceil(resident).next_multiple_of(CHUNK).max(CHUNK);
        let blocks = count.div_ceil(per_block);
        let width = sum_width(classes);
        // SAFETY: each block writes its whole row of partial sums.
        let mut partials = unsafe { dev.alloc::<f32>(blocks * width)? };
        let noise = NoiseArgs::from(self.noise);
        let (count32, classes32, per_block32) = (count as u32, classes as u32, per_block as u32);
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&func);
        b.arg(&logits);
        b.arg(&mut partials);
        b.arg(&self.first);
        b.arg(&count32);
        b.arg(&classes32);
        b.arg(&self.threshold);
        b.arg(&per_block32);
        launch::noise_args(&mut b, &noise);
        // SAFETY: the arguments match `wna_wn_class_sums` in cuda/white_noise.cu.
        unsafe {
            b.launch(launch::config(
                blocks,
                super::fused_geometry::THREADS,
                shared,
            ))
        }
        .map_err(|e| launch::fail(name, e))?;

        let reduce = dev.get_or_load_custom_func("wna_wn_reduce", MODULE, PTX)?;
        let mut total = dev.alloc_zeros::<f64>(width)?;
        let (blocks32, width32) = (blocks as u32, width as u32);
        let mut b = reduce.builder();
        b.arg(&partials);
        b.arg(&blocks32);
        b.arg(&width32);
        b.arg(&mut total);
        // SAFETY: the arguments match `wna_wn_reduce`; one thread per element of `total`.
        unsafe { b.launch(launch::config(width.div_ceil(256), 256, 0)) }
            .map_err(|e| launch::fail("wna_wn_reduce", e))?;
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(total, dev),
            Shape::from(width),
        ))
    }
}
