//! Data augmentation with torchvision's semantics (v0.20), batched and seeded: ColorJitter's
//! brightness and contrast, RandomAffine, RandomPerspective, RandomErasing and RandomVerticalFlip
//! on single-channel images in [0, 1]. Warps sample bilinearly with zeros outside, through the
//! same pixel-centre grids as torchvision's `affine` and `perspective` on tensors;
//! `native/tests/augment.rs` checks each against torchvision's output for fixed parameters.
//!
//! Each image draws its parameters from its own Philox stream keyed by (seed, epoch, image), so
//! the same seed gives the same images whatever the thread count. The draws follow torchvision's
//! recipes (ranges, rounding, retries), not its random number generator.

use crate::error::Result;
use crate::philox::Philox;
use rayon::prelude::*;
use serde::Deserialize;

/// One transform, as the JSON options name it. Ranges are `[low, high]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// Brightness then contrast factors, applied in a random order as torchvision does.
    ColorJitter {
        brightness: [f32; 2],
        contrast: [f32; 2],
    },
    /// Degrees in [-degrees, degrees]; translate as fractions of the width and height; shear
    /// as `[x_low, x_high, y_low, y_high]` degrees.
    Affine {
        degrees: f32,
        #[serde(default)]
        translate: Option<[f32; 2]>,
        #[serde(default)]
        scale: Option<[f32; 2]>,
        #[serde(default)]
        shear: Option<[f32; 4]>,
    },
    Perspective {
        p: f32,
        distortion: f32,
    },
    Erasing {
        p: f32,
        scale: [f32; 2],
        ratio: [f32; 2],
        #[serde(default)]
        value: f32,
    },
    VerticalFlip {
        p: f32,
    },
}

/// Uniform draws for one image, one word after another.
struct Draws {
    rng: Philox,
    next: u64,
}

impl Draws {
    fn uniform(&mut self) -> f32 {
        let u = self.rng.uniform_at(self.next);
        self.next += 1;
        u
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }
    /// An integer in `lo..hi` (torch.randint's half-open range).
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        (lo + ((hi - lo) as f32 * self.uniform()) as i64).min(hi - 1)
    }
}

/// Applies `transforms` in order to every `h x w` image of `pixels`.
pub fn augment(
    pixels: &[f32],
    h: usize,
    w: usize,
    transforms: &[Transform],
    seed: u64,
    epoch: u64,
) -> Result<Vec<f32>> {
    check(transforms)?;
    let mut out = pixels.to_vec();
    out.par_chunks_mut(h * w).enumerate().for_each(|(i, img)| {
        let mut draws = Draws {
            rng: Philox::new(seed, 0xa06_0000 ^ epoch as u32, i as u64),
            next: 0,
        };
        for t in transforms {
            apply(t, img, h, w, &mut draws);
        }
    });
    Ok(out)
}

fn check(transforms: &[Transform]) -> Result<()> {
    let prob = |p: f32| (0.0..=1.0).contains(&p);
    let ordered = |r: [f32; 2]| r[0].is_finite() && r[1].is_finite() && r[0] <= r[1];
    for t in transforms {
        let ok = match t {
            Transform::ColorJitter {
                brightness,
                contrast,
            } => ordered(*brightness) && ordered(*contrast) && brightness[0] >= 0.0,
            Transform::Affine {
                degrees,
                translate,
                scale,
                shear,
            } => {
                degrees.is_finite()
                    && *degrees >= 0.0
                    && translate.is_none_or(|t| t.iter().all(|v| (0.0..=1.0).contains(v)))
                    && scale.is_none_or(|s| ordered(s) && s[0] > 0.0)
                    && shear.is_none_or(|s| ordered([s[0], s[1]]) && ordered([s[2], s[3]]))
            }
            Transform::Perspective { p, distortion } => prob(*p) && prob(*distortion),
            Transform::Erasing {
                p, scale, ratio, ..
            } => prob(*p) && ordered(*scale) && ordered(*ratio) && ratio[0] > 0.0,
            Transform::VerticalFlip { p } => prob(*p),
        };
        if !ok {
            crate::bail!(
                InvalidArgument,
                "augment: {t:?} is out of range (probabilities in [0, 1], ranges low <= high, \
                 scales > 0)"
            );
        }
    }
    Ok(())
}

fn apply(t: &Transform, img: &mut [f32], h: usize, w: usize, d: &mut Draws) {
    match *t {
        Transform::ColorJitter {
            brightness,
            contrast,
        } => {
            let b = d.range(brightness[0], brightness[1]);
            let c = d.range(contrast[0], contrast[1]);
            // torchvision shuffles the order of its four adjustments; two here.
            let contrast_first = d.uniform() < 0.5;
            if contrast_first {
                adjust_contrast(img, c);
                adjust_brightness(img, b);
            } else {
                adjust_brightness(img, b);
                adjust_contrast(img, c);
            }
        }
        Transform::Affine {
            degrees,
            translate,
            scale,
            shear,
        } => {
            let angle = d.range(-degrees, degrees);
            let (tx, ty) = match translate {
                Some([fx, fy]) => {
                    let (mx, my) = (fx * w as f32, fy * h as f32);
                    (d.range(-mx, mx).round(), d.range(-my, my).round())
                }
                None => (0.0, 0.0),
            };
            let s = scale.map_or(1.0, |[lo, hi]| d.range(lo, hi));
            let (sx, sy) = match shear {
                Some([a, b, c, e]) => (d.range(a, b), d.range(c, e)),
                None => (0.0, 0.0),
            };
            let m = inverse_affine(angle, [tx, ty], s, [sx, sy]);
            let src = img.to_vec();
            warp_affine(&src, img, h, w, &m);
        }
        Transform::Perspective { p, distortion } => {
            if d.uniform() >= p {
                return;
            }
            let (hh, hw) = ((h / 2) as f32, (w / 2) as f32);
            let bh = (distortion * hh) as i64 + 1;
            let bw = (distortion * hw) as i64 + 1;
            let (wi, hi) = (w as i64, h as i64);
            let end = [
                [d.int(0, bw), d.int(0, bh)],
                [d.int(wi - bw, wi), d.int(0, bh)],
                [d.int(wi - bw, wi), d.int(hi - bh, hi)],
                [d.int(0, bw), d.int(hi - bh, hi)],
            ]
            .map(|[x, y]| [x as f64, y as f64]);
            let (wf, hf) = ((w - 1) as f64, (h - 1) as f64);
            let start = [[0.0, 0.0], [wf, 0.0], [wf, hf], [0.0, hf]];
            let coeffs = perspective_coeffs(&start, &end);
            let src = img.to_vec();
            warp_perspective(&src, img, h, w, &coeffs);
        }
        Transform::Erasing {
            p,
            scale,
            ratio,
            value,
        } => {
            if d.uniform() >= p {
                return;
            }
            let area = (h * w) as f32;
            let (lr0, lr1) = (ratio[0].ln(), ratio[1].ln());
            for _ in 0..10 {
                let erase = area * d.range(scale[0], scale[1]);
                let aspect = d.range(lr0, lr1).exp();
                let eh = (erase * aspect).sqrt().round() as usize;
                let ew = (erase / aspect).sqrt().round() as usize;
                if !(eh < h && ew < w) {
                    continue;
                }
                let i = d.int(0, (h - eh + 1) as i64) as usize;
                let j = d.int(0, (w - ew + 1) as i64) as usize;
                erase_box(img, w, [i, j, eh, ew], value);
                return;
            }
        }
        Transform::VerticalFlip { p } => {
            if d.uniform() < p {
                flip_vertical(img, h, w);
            }
        }
    }
}

/// torchvision's `adjust_brightness`: scale, clamp to [0, 1].
pub fn adjust_brightness(img: &mut [f32], factor: f32) {
    for v in img {
        *v = (*v * factor).clamp(0.0, 1.0);
    }
}

/// torchvision's `adjust_contrast`: blend with the image's mean grey level, clamp.
pub fn adjust_contrast(img: &mut [f32], factor: f32) {
    let mean = img.iter().sum::<f32>() / img.len() as f32;
    for v in img {
        *v = (factor * *v + (1.0 - factor) * mean).clamp(0.0, 1.0);
    }
}

pub fn flip_vertical(img: &mut [f32], h: usize, w: usize) {
    for r in 0..h / 2 {
        let (top, bottom) = img.split_at_mut((h - 1 - r) * w);
        top[r * w..(r + 1) * w].swap_with_slice(&mut bottom[..w]);
    }
}

/// Sets rows `i..i+h`, columns `j..j+w` to `value`.
pub fn erase_box(img: &mut [f32], width: usize, [i, j, h, w]: [usize; 4], value: f32) {
    for r in i..i + h {
        img[r * width + j..r * width + j + w].fill(value);
    }
}

/// torchvision's `_get_inverse_affine_matrix` about the image centre: maps an output position
/// (relative to the centre) to the input position it samples. Angles in degrees.
pub fn inverse_affine(angle: f32, translate: [f32; 2], scale: f32, shear: [f32; 2]) -> [f64; 6] {
    let rot = (angle as f64).to_radians();
    let (sx, sy) = (
        (shear[0] as f64).to_radians(),
        (shear[1] as f64).to_radians(),
    );
    let (tx, ty) = (translate[0] as f64, translate[1] as f64);
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let s = scale as f64;
    let mut m = [d / s, -b / s, 0.0, -c / s, a / s, 0.0];
    m[2] += m[0] * -tx + m[1] * -ty;
    m[5] += m[3] * -tx + m[4] * -ty;
    m
}

/// Bilinear sample at pixel coordinates (x, y), zeros outside (grid_sample, align_corners
/// false, padding zeros).
fn bilinear(src: &[f32], h: usize, w: usize, x: f64, y: f64) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = ((x - x0) as f32, (y - y0) as f32);
    let at = |xi: f64, yi: f64| -> f32 {
        if xi < 0.0 || yi < 0.0 || xi >= w as f64 || yi >= h as f64 {
            0.0
        } else {
            src[yi as usize * w + xi as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// torchvision's tensor `affine`: output pixel (x, y) samples the input at
/// `m . (x - (w-1)/2, y - (h-1)/2, 1) + ((w-1)/2, (h-1)/2)`.
pub fn warp_affine(src: &[f32], dst: &mut [f32], h: usize, w: usize, m: &[f64; 6]) {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    for y in 0..h {
        for x in 0..w {
            let (u, v) = (x as f64 - cx, y as f64 - cy);
            let sx = m[0] * u + m[1] * v + m[2] + cx;
            let sy = m[3] * u + m[4] * v + m[5] + cy;
            dst[y * w + x] = bilinear(src, h, w, sx, sy);
        }
    }
}

/// torchvision's `_get_perspective_coeffs`: the 8 coefficients of the homography that maps each
/// `end` point to its `start` point (so the output, in end space, samples the input).
pub fn perspective_coeffs(start: &[[f64; 2]; 4], end: &[[f64; 2]; 4]) -> [f64; 8] {
    let mut a = [[0f64; 9]; 8];
    for (i, (p1, p2)) in end.iter().zip(start).enumerate() {
        a[2 * i] = [
            p1[0],
            p1[1],
            1.0,
            0.0,
            0.0,
            0.0,
            -p2[0] * p1[0],
            -p2[0] * p1[1],
            p2[0],
        ];
        a[2 * i + 1] = [
            0.0,
            0.0,
            0.0,
            p1[0],
            p1[1],
            1.0,
            -p2[1] * p1[0],
            -p2[1] * p1[1],
            p2[1],
        ];
    }
    // Gaussian elimination with partial pivoting on the augmented 8x9 system.
    for col in 0..8 {
        let pivot = (col..8)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .expect("non-empty range");
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (v, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *v -= f * p;
                }
            }
        }
    }
    std::array::from_fn(|i| a[i][8] / a[i][i])
}

/// torchvision's tensor `perspective`: output pixel (x, y) samples the input at
/// `H(x + 0.5, y + 0.5) - 0.5`.
pub fn warp_perspective(src: &[f32], dst: &mut [f32], h: usize, w: usize, c: &[f64; 8]) {
    for y in 0..h {
        for x in 0..w {
            let (u, v) = (x as f64 + 0.5, y as f64 + 0.5);
            let den = c[6] * u + c[7] * v + 1.0;
            let sx = (c[0] * u + c[1] * v + c[2]) / den - 0.5;
            let sy = (c[3] * u + c[4] * v + c[5]) / den - 0.5;
            dst[y * w + x] = bilinear(src, h, w, sx, sy);
        }
    }
}
