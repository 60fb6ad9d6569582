//! Per-layer running sums of a noise run: spike-triggered averages (centre unit and averaged
//! over positions), the centre unit's reverse correlation, and activation statistics, in f64.

use super::{PIXELS, SIDE};
use crate::arrays::Arrays;
use crate::error::{Error, Result};
use crate::models::LayerInfo;
use candle_core::{DType, Tensor};
use rayon::prelude::*;

/// f64 running sums of one layer's statistics.
pub(crate) struct LayerSums {
    info: LayerInfo,
    /// Patch size used for the position-averaged STA (the receptive field, clipped to the image).
    patch: usize,
    centre: Vec<f64>,
    centre_weight: Vec<f64>,
    /// Sum of the stimuli, for the reverse correlation's `E[a] E[x]` term.
    stimulus: Vec<f64>,
    patch_sum: Vec<f64>,
    patch_weight: Vec<f64>,
    act_map: Vec<f64>,
    act_sum: Vec<f64>,
    act_sq: Vec<f64>,
    count: u64,
}

impl LayerSums {
    pub(crate) fn new(info: LayerInfo) -> Self {
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
            stimulus: vec![0.0; PIXELS],
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
        add_into(&mut self.centre, &centre.t()?.matmul(x)?)?;
        add_into(&mut self.centre_weight, &centre.sum(0)?)?;
        add_into(&mut self.stimulus, &x.sum(0)?)?;
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

    pub(crate) fn write(&self, out: &mut Arrays) {
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
        // The activation-weighted mean above needs activations of one sign (ReLU units); the
        // reverse correlation E[a x] - E[a] E[x] is defined for any unit (tanh, LSTM, logits):
        // under white noise it is the unit's linear receptive field, up to scale.
        out.insert(
            format!("sta/{name}/centreCov"),
            vec![c, SIDE, SIDE],
            self.centre
                .chunks(PIXELS)
                .zip(&self.centre_weight)
                .flat_map(|(ax, &a)| {
                    ax.iter()
                        .zip(&self.stimulus)
                        .map(move |(&ax, &x)| (ax / n - (a / n) * (x / n)) as f32)
                })
                .collect(),
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

pub(crate) fn add_into(acc: &mut [f64], t: &Tensor) -> Result<()> {
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
pub(crate) fn weighted_mean(sum: &[f64], weight: &[f64], row: usize) -> Vec<f32> {
    sum.chunks(row)
        .zip(weight)
        .flat_map(|(s, &w)| {
            s.iter()
                .map(move |&v| if w > 0.0 { (v / w) as f32 } else { 0.0 })
        })
        .collect()
}
