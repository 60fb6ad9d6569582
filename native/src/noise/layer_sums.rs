//! Per-layer running sums of a noise run: spike-triggered averages (centre unit and averaged
//! over positions), the centre unit's reverse correlation, and activation statistics, in f64.

use super::device_sum::DeviceSum;
use super::{PIXELS, SIDE};
use crate::arrays::Arrays;
use crate::error::Result;
use crate::models::LayerInfo;
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

/// f64 running sums of one layer's statistics, on the model's device until written.
pub(crate) struct LayerSums {
    info: LayerInfo,
    /// Patch size used for the position-averaged STA (the receptive field, clipped to the image).
    patch: usize,
    centre: DeviceSum,
    centre_weight: DeviceSum,
    /// Sum of the stimuli, for the reverse correlation's `E[a] E[x]` term.
    stimulus: DeviceSum,
    patch_sum: DeviceSum,
    patch_weight: DeviceSum,
    act_map: DeviceSum,
    act_sum: DeviceSum,
    act_sq: DeviceSum,
    count: u64,
}

impl LayerSums {
    pub(crate) fn new(info: LayerInfo, device: &Device) -> Result<Self> {
        let c = info.channels;
        let patch = if info.kind == "conv" && info.rf < SIDE {
            info.rf
        } else {
            0
        };
        let zeros = |len| DeviceSum::zeros(len, device);
        Ok(Self {
            patch,
            centre: zeros(c * PIXELS)?,
            centre_weight: zeros(c)?,
            stimulus: zeros(PIXELS)?,
            patch_sum: zeros(c * patch * patch)?,
            patch_weight: zeros(c)?,
            act_map: zeros(c * info.height * info.width)?,
            act_sum: zeros(c)?,
            act_sq: zeros(c)?,
            count: 0,
            info,
        })
    }

    /// Adds one batch: `act` is `[b, c, h, w]` (or `[b, c]`), `x` the pixel-space stimuli
    /// `[b, 784]` in f64.
    pub(crate) fn add(&mut self, act: &Tensor, x: &Tensor, pixels: &[f32]) -> Result<()> {
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
        self.centre.add(&centre.t()?.matmul(x)?)?;
        self.centre_weight.add(&centre.sum(0)?)?;
        self.stimulus.add(&x.sum(0)?)?;
        // Activation statistics per channel and per position.
        self.act_map.add(&act.sum(0)?)?;
        self.act_sum.add(&act.sum((0, 2))?)?;
        self.act_sq.add(&act.sqr()?.sum((0, 2))?)?;
        self.count += b as u64;
        if self.patch > 0 {
            // STA averaged over positions: sum_p a[c, p] * patch_p(x) as one matmul of the
            // activations [c, b*h*w] with the unfolded stimuli [b*h*w, rf*rf].
            let unfolded = unfold(pixels, &self.info, self.patch);
            let unfolded =
                Tensor::from_vec(unfolded, (b * h * w, self.patch * self.patch), act.device())?
                    .to_dtype(DType::F64)?;
            let a = act.transpose(0, 1)?.reshape((c, b * h * w))?;
            self.patch_sum.add(&a.matmul(&unfolded)?)?;
            self.patch_weight.add(&a.sum(1)?)?;
        }
        Ok(())
    }

    /// Downloads the sums and writes the layer's arrays.
    pub(crate) fn write(&self, out: &mut Arrays) -> Result<()> {
        let (centre, centre_weight, stimulus) = (
            self.centre.read()?,
            self.centre_weight.read()?,
            self.stimulus.read()?,
        );
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
            weighted_mean(&centre, &centre_weight, PIXELS),
        );
        // The activation-weighted mean above needs activations of one sign (ReLU units); the
        // reverse correlation E[a x] - E[a] E[x] is defined for any unit (tanh, LSTM, logits):
        // under white noise it is the unit's linear receptive field, up to scale.
        out.insert(
            format!("sta/{name}/centreCov"),
            vec![c, SIDE, SIDE],
            centre
                .chunks(PIXELS)
                .zip(&centre_weight)
                .flat_map(|(ax, &a)| {
                    ax.iter()
                        .zip(&stimulus)
                        .map(move |(&ax, &x)| (ax / n - (a / n) * (x / n)) as f32)
                })
                .collect(),
        );
        out.insert(
            format!("sta/{name}/centreWeight"),
            vec![c],
            centre_weight.iter().map(|&v| (v / n) as f32).collect(),
        );
        if self.patch > 0 {
            let p = self.patch;
            out.insert(
                format!("sta/{name}/patch"),
                vec![c, p, p],
                weighted_mean(&self.patch_sum.read()?, &self.patch_weight.read()?, p * p),
            );
        }
        out.insert(
            format!("act/{name}/mean"),
            vec![c, h, w],
            self.act_map
                .read()?
                .iter()
                .map(|&v| (v / n) as f32)
                .collect(),
        );
        let per = n * (h * w) as f64;
        let mean: Vec<f64> = self.act_sum.read()?.iter().map(|&s| s / per).collect();
        out.insert(
            format!("act/{name}/channelMean"),
            vec![c],
            mean.iter().map(|&m| m as f32).collect(),
        );
        let std = self
            .act_sq
            .read()?
            .iter()
            .zip(&mean)
            .map(|(&q, &m)| ((q / per - m * m).max(0.0)).sqrt() as f32)
            .collect();
        out.insert(format!("act/{name}/channelStd"), vec![c], std);
        Ok(())
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

/// Row-wise `sum / weight`, 0 where nothing was accumulated.
pub(crate) fn weighted_mean(sum: &[f64], weight: &[f64], row: usize) -> Vec<f32> {
    sum.chunks(row)
        .zip(weight)
        .flat_map(|(s, &w)| {
            s.iter()
                .map(move |&v| if w > 0.0 { (v / w) as f32 } else { 0.0 })
        })
        .collect()
}
