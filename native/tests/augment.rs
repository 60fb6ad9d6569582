//! The augmentations against torchvision 0.20.1 for fixed parameters, on a 7x6 image (height
//! and width differ, so a swapped axis shows), and the seeded batch: same seed, same images.
//!
//! ```python
//! import torch, torchvision
//! import torchvision.transforms.functional as F
//! from torchvision.transforms import InterpolationMode
//! h, w = 7, 6
//! img = torch.tensor([[((r * 7 + c * 3) % 11) / 10.0 for c in range(w)] for r in range(h)]).reshape(1, h, w)
//! def show(name, t):
//!     print(name, "[" + ", ".join(f"{v:.6f}" for v in t.flatten().tolist()) + "]")
//! show("affine", F.affine(img, angle=17.0, translate=[1, -2], scale=0.9, shear=[12.0, -7.0],
//!                         interpolation=InterpolationMode.BILINEAR))
//! start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
//! end = [[1, 0], [4, 1], [5, 5], [0, 6]]
//! show("perspective", F.perspective(img, start, end, interpolation=InterpolationMode.BILINEAR))
//! show("brightness", F.adjust_brightness(img, 1.4))
//! show("contrast", F.adjust_contrast(img, 0.6))
//! ```

use wna::augment::{
    adjust_brightness, adjust_contrast, augment, erase_box, flip_vertical, inverse_affine,
    perspective_coeffs, warp_affine, warp_perspective, Transform,
};

const H: usize = 7;
const W: usize = 6;

fn image() -> Vec<f32> {
    (0..H * W)
        .map(|i| ((i / W * 7 + i % W * 3) % 11) as f32 / 10.0)
        .collect()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() < 2e-5,
            "{what} pixel ({}, {}): {a} vs torchvision {b}",
            i / W,
            i % W
        );
    }
}

const AFFINE: [f32; 42] = [
    0.000000, 0.518189, 0.545168, 0.660468, 0.493583, 0.504194, 0.043424, 0.570343, 0.654924,
    0.414068, 0.639789, 0.275695, 0.418001, 0.389855, 0.603624, 0.289012, 0.521124, 0.385052,
    0.265931, 0.123273, 0.508826, 0.221579, 0.393133, 0.826724, 0.000000, 0.000000, 0.150246,
    0.629057, 0.507627, 0.189380, 0.000000, 0.000000, 0.000000, 0.000000, 0.023235, 0.000000,
    0.000000, 0.000000, 0.000000, 0.000000, 0.000000, 0.000000,
];
const PERSPECTIVE: [f32; 42] = [
    0.031309, 0.123953, 0.240000, 0.000000, 0.000000, 0.000000, 0.093977, 0.521846, 0.640367,
    0.571051, 0.147300, 0.000000, 0.422295, 0.686339, 0.445206, 0.513018, 0.495634, 0.000000,
    0.367888, 0.713511, 0.534993, 0.367748, 0.647152, 0.000000, 0.236719, 0.461531, 0.609165,
    0.381910, 0.289459, 0.189506, 0.297253, 0.407618, 0.400000, 0.510501, 0.758574, 0.165169,
    0.661179, 0.478186, 0.166235, 0.315509, 0.352284, 0.070460,
];
const BRIGHTNESS: [f32; 42] = [
    0.000000, 0.420000, 0.840000, 1.000000, 0.140000, 0.560000, 0.980000, 1.000000, 0.280000,
    0.700000, 1.000000, 0.000000, 0.420000, 0.840000, 1.000000, 0.140000, 0.560000, 0.980000,
    1.000000, 0.280000, 0.700000, 1.000000, 0.000000, 0.420000, 0.840000, 1.000000, 0.140000,
    0.560000, 0.980000, 1.000000, 0.280000, 0.700000, 1.000000, 0.000000, 0.420000, 0.840000,
    1.000000, 0.140000, 0.560000, 0.980000, 1.000000, 0.280000,
];
const CONTRAST: [f32; 42] = [
    0.197143, 0.377143, 0.557143, 0.737143, 0.257143, 0.437143, 0.617143, 0.797143, 0.317143,
    0.497143, 0.677143, 0.197143, 0.377143, 0.557143, 0.737143, 0.257143, 0.437143, 0.617143,
    0.797143, 0.317143, 0.497143, 0.677143, 0.197143, 0.377143, 0.557143, 0.737143, 0.257143,
    0.437143, 0.617143, 0.797143, 0.317143, 0.497143, 0.677143, 0.197143, 0.377143, 0.557143,
    0.737143, 0.257143, 0.437143, 0.617143, 0.797143, 0.317143,
];

#[test]
fn affine_matches_torchvision() {
    let m = inverse_affine(17.0, [1.0, -2.0], 0.9, [12.0, -7.0]);
    let mut out = vec![0f32; H * W];
    warp_affine(&image(), &mut out, H, W, &m);
    assert_close(&out, &AFFINE, "affine");
}

#[test]
fn perspective_matches_torchvision() {
    let (w, h) = ((W - 1) as f64, (H - 1) as f64);
    let start = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
    let end = [[1.0, 0.0], [4.0, 1.0], [5.0, 5.0], [0.0, 6.0]];
    let mut out = vec![0f32; H * W];
    warp_perspective(&image(), &mut out, H, W, &perspective_coeffs(&start, &end));
    assert_close(&out, &PERSPECTIVE, "perspective");
}

#[test]
fn colour_jitter_matches_torchvision() {
    let mut b = image();
    adjust_brightness(&mut b, 1.4);
    assert_close(&b, &BRIGHTNESS, "brightness");
    let mut c = image();
    adjust_contrast(&mut c, 0.6);
    assert_close(&c, &CONTRAST, "contrast");
}

#[test]
fn flips_and_erasing_by_hand() {
    let mut f = image();
    flip_vertical(&mut f, H, W);
    let img = image();
    for r in 0..H {
        assert_eq!(f[r * W..(r + 1) * W], img[(H - 1 - r) * W..(H - r) * W]);
    }
    let mut e = image();
    erase_box(&mut e, W, [2, 1, 3, 2], 0.0);
    for (i, (&a, &b)) in e.iter().zip(&img).enumerate() {
        let inside = (2..5).contains(&(i / W)) && (1..3).contains(&(i % W));
        assert_eq!(a, if inside { 0.0 } else { b }, "pixel {i}");
    }
}

#[test]
fn batches_are_seeded_and_keep_to_their_ranges() -> wna::Result<()> {
    let n = 64;
    let batch: Vec<f32> = (0..n).flat_map(|_| image()).collect();
    let t = vec![
        Transform::Affine {
            degrees: 20.0,
            translate: Some([0.1, 0.2]),
            scale: Some([0.8, 1.0]),
            shear: Some([-30.0, 30.0, -30.0, 30.0]),
        },
        Transform::Erasing {
            p: 0.6,
            scale: [0.02, 0.1],
            ratio: [0.3, 0.5],
            value: 0.0,
        },
    ];
    let a = augment(&batch, H, W, &t, 7, 0)?;
    assert_eq!(
        a,
        augment(&batch, H, W, &t, 7, 0)?,
        "same seed, same images"
    );
    assert_ne!(
        a,
        augment(&batch, H, W, &t, 8, 0)?,
        "another seed, other images"
    );
    assert_ne!(
        a,
        augment(&batch, H, W, &t, 7, 1)?,
        "another epoch, other images"
    );
    assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
    // A vertical flip with p = 0.5 flips about half the images, and a flip never changes the
    // multiset of values.
    let flipped = augment(&batch, H, W, &[Transform::VerticalFlip { p: 0.5 }], 3, 0)?;
    let count = flipped
        .chunks(H * W)
        .filter(|c| *c != image().as_slice())
        .count();
    assert!((16..=48).contains(&count), "{count} of {n} flipped");
    let bad = augment(&batch, H, W, &[Transform::VerticalFlip { p: 1.5 }], 3, 0);
    assert!(bad.unwrap_err().to_string().contains("out of range"));
    Ok(())
}
