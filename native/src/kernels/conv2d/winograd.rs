//! Winograd's minimal filtering F(4x4, 3x3) for 3x3, stride-1, padding-1 convolutions (Lavin and
//! Gray, "Fast Algorithms for Convolutional Neural Networks", https://arxiv.org/abs/1509.09308):
//! each 4x4 block of outputs comes from a 6x6 block of input through 36 products per channel
//! pair instead of 144, a quarter of the multiplications of im2col's product.
//!
//! The input is cut into overlapping 6x6 tiles, each transformed to `B^T d B`; the kernel to
//! `G g G^T`. Then each of the 36 points is one matrix product over the channels,
//! `[c_out, c_in] . [c_in, tiles]`, and `A^T m A` turns each tile's 36 sums back into 4x4
//! outputs. The transforms run on eight tiles at a time, one per SIMD lane.
//!
//! The transforms round, so results differ from im2col's in the last bits: about 1e-6 of the
//! terms' size, against 1e-7 (`native/tests/winograd.rs` bounds it against f64 loops). Every
//! forward of a qualifying convolution takes this path, fused or not, training or not: the
//! choice depends on the shapes alone, so a forward has the same bits wherever it runs. The
//! backward keeps im2col.
//!
//! On `larger`'s 7x7 planes the 64- and 128-channel convolutions ran 1.35-1.45x faster than
//! through im2col (`cargo run --release --example conv_layers`, fastest of seven, 2026-12-03).
//! Of a 128-channel convolution's time, the 36 products took 43%, the transforms and padding
//! 34%.

use super::{ConvGeometry, Epilogue};
use crate::kernels::matmul;

/// Outputs per tile side, and input values per tile side (4 + 3 - 1).
const OUT: usize = 4;
const IN: usize = 6;
/// Transform points per tile: one matrix product each.
const POINTS: usize = IN * IN;
/// Tiles transformed together, one per SIMD lane: eight floats, one AVX2 register.
const LANES: usize = 8;
/// Tiles a product aims for.
const GROUP_TILES: usize = 64;
/// Fewest input channels for which the transforms pay off: with 16 or 32 the products are too
/// thin to win back the transforms' passes (`larger`'s 14x14 convolutions ran 1.0-1.5x slower
/// this way, 2026-12-03).
const MIN_CHANNELS: usize = 64;

type Lanes = [f32; LANES];

/// Whether a convolution takes this path: a 3x3 kernel, stride 1, padding 1, and enough
/// channels.
pub(super) fn applies(g: &ConvGeometry) -> bool {
    (g.kernel_h, g.kernel_w, g.stride, g.padding) == (3, 3, 1, 1) && g.c_in >= MIN_CHANNELS
}

/// How a batch is cut into tiles, and the scratch one group of images needs. Tiles go to the
/// SIMD lanes by image: lane `l` of a block holds the same tile of image `8b + l`, so that the
/// padded input (images interleaved by eights) and the transformed tiles are read and written
/// eight floats at a time, with no gathers.
#[derive(Clone, Copy)]
struct Tiles {
    c_in: usize,
    c_out: usize,
    height: usize,
    width: usize,
    /// Tiles per image side.
    across: usize,
    down: usize,
    /// Sides of one zero-padded input plane: the tiles' extent plus the 2-value halo.
    padded_w: usize,
    padded_h: usize,
}

impl Tiles {
    fn new(g: &ConvGeometry) -> Self {
        let (across, down) = (g.width.div_ceil(OUT), g.height.div_ceil(OUT));
        Self {
            c_in: g.c_in,
            c_out: g.c_out,
            height: g.height,
            width: g.width,
            across,
            down,
            padded_w: across * OUT + 2,
            padded_h: down * OUT + 2,
        }
    }
    fn per_image(&self) -> usize {
        self.across * self.down
    }
    /// Floats of one channel's padded planes for a block of eight images.
    fn padded_plane(&self) -> usize {
        self.padded_w * self.padded_h * LANES
    }
    /// Images per product, whole lane blocks: enough tiles for wide products.
    fn group(&self) -> usize {
        (GROUP_TILES / self.per_image())
            .clamp(1, 64)
            .next_multiple_of(LANES)
    }
    /// Columns of the products for `images` images: every tile of whole lane blocks.
    fn stride(&self, images: usize) -> usize {
        images.next_multiple_of(LANES) * self.per_image()
    }
    /// Floats of the padded planes of `images` images: whole lane blocks.
    fn padded_len(&self, images: usize) -> usize {
        images.div_ceil(LANES) * self.c_in * self.padded_plane()
    }
    /// Scratch of one group: padded planes, transformed tiles, point products, raw outputs.
    fn scratch(&self) -> [usize; 4] {
        let (n, stride) = (self.group(), self.stride(self.group()));
        [
            self.padded_len(n),
            POINTS * self.c_in * stride,
            POINTS * self.c_out * stride,
            n * self.c_out * self.height * self.width,
        ]
    }

    /// `images` NCHW images into `padded`, `[image / 8, c_in, padded_h, padded_w, 8]`, each
    /// plane inside a zero halo.
    fn pad(&self, images: &[f32], padded: &mut [f32]) {
        let (plane, n) = (
            self.height * self.width,
            images.len() / (self.c_in * self.height * self.width),
        );
        padded[..self.padded_len(n)].fill(0.0);
        for (i, image) in images.chunks(self.c_in * plane).enumerate() {
            let (block, lane) = (i / LANES, i % LANES);
            for (ci, from) in image.chunks(plane).enumerate() {
                let to = &mut padded[(block * self.c_in + ci) * self.padded_plane()..];
                for (y, row) in from.chunks(self.width).enumerate() {
                    let at = ((y + 1) * self.padded_w + 1) * LANES + lane;
                    for (x, &v) in row.iter().enumerate() {
                        to[at + x * LANES] = v;
                    }
                }
            }
        }
    }
}

/// `G g G^T` for every kernel pair, as `[POINTS, c_out, c_in]`: one `[c_out, c_in]` matrix per
/// point.
fn transform_kernel(w: &[f32], t: &Tiles) -> Vec<f32> {
    const G: [[f32; 3]; IN] = [
        [1.0 / 4.0, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ];
    let pairs = t.c_out * t.c_in;
    let mut u = vec![0f32; POINTS * pairs];
    for (pair, g) in w.chunks_exact(9).enumerate() {
        let mut gg = [[0f32; 3]; IN];
        for (row, coef) in gg.iter_mut().zip(&G) {
            for (c, v) in row.iter_mut().enumerate() {
                *v = coef[0] * g[c] + coef[1] * g[3 + c] + coef[2] * g[6 + c];
            }
        }
        for (r, row) in gg.iter().enumerate() {
            for (s, coef) in G.iter().enumerate() {
                u[(r * IN + s) * pairs + pair] =
                    row[0] * coef[0] + row[1] * coef[1] + row[2] * coef[2];
            }
        }
    }
    u
}

/// `B^T d` along one side of eight tiles.
#[inline(always)]
fn input_side(d: &[Lanes; IN]) -> [Lanes; IN] {
    let mut t = [[0f32; LANES]; IN];
    for l in 0..LANES {
        let [d0, d1, d2, d3, d4, d5] = [d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]];
        t[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
        t[1][l] = (d3 + d4) - 4.0 * (d1 + d2);
        t[2][l] = (d4 - d3) + 4.0 * (d1 - d2);
        t[3][l] = (d4 - d2) + 2.0 * (d3 - d1);
        t[4][l] = (d4 - d2) - 2.0 * (d3 - d1);
        t[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
    }
    t
}

/// `A^T m` along one side of eight tiles.
#[inline(always)]
fn output_side(m: &[Lanes; IN]) -> [Lanes; OUT] {
    let mut o = [[0f32; LANES]; OUT];
    for l in 0..LANES {
        let [m0, m1, m2, m3, m4, m5] = [m[0][l], m[1][l], m[2][l], m[3][l], m[4][l], m[5][l]];
        let (sum12, diff12, sum34, diff34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
        o[0][l] = m0 + sum12 + sum34;
        o[1][l] = diff12 + 2.0 * diff34;
        o[2][l] = sum12 + 4.0 * sum34;
        o[3][l] = diff12 + 8.0 * diff34 + m5;
    }
    o
}

/// Entry `j` of each of six rows: a column of a tile, as the second pass of a transform reads it.
#[inline(always)]
fn column_of<const N: usize>(rows: &[[Lanes; N]; IN], j: usize) -> [Lanes; IN] {
    [
        rows[0][j], rows[1][j], rows[2][j], rows[3][j], rows[4][j], rows[5][j],
    ]
}

/// Every tile of a group as `[POINTS, c_in, stride]`, column `(block * per_image + tile) * 8 +
/// lane`, from the padded planes.
#[inline(always)]
fn transform_input_body(padded: &[f32], v: &mut [f32], t: &Tiles, images: usize) {
    let stride = t.stride(images);
    let pw = t.padded_w;
    for block in 0..images.div_ceil(LANES) {
        for ci in 0..t.c_in {
            let plane = &padded[(block * t.c_in + ci) * t.padded_plane()..][..t.padded_plane()];
            for tile in 0..t.per_image() {
                let (ty, tx) = (tile / t.across, tile % t.across);
                let corner = ty * OUT * pw + tx * OUT;
                // Along each row of the 6x6 tile, then down each column.
                let mut rows = [[[0f32; LANES]; IN]; IN];
                for (r, row) in rows.iter_mut().enumerate() {
                    let mut d = [[0f32; LANES]; IN];
                    for (c, lanes) in d.iter_mut().enumerate() {
                        let at = (corner + r * pw + c) * LANES;
                        lanes.copy_from_slice(&plane[at..at + LANES]);
                    }
                    *row = input_side(&d);
                }
                let column = (block * t.per_image() + tile) * LANES;
                for j in 0..IN {
                    let side = input_side(&column_of(&rows, j));
                    for (k, lanes) in side.iter().enumerate() {
                        let at = ((k * IN + j) * t.c_in + ci) * stride + column;
                        v[at..at + LANES].copy_from_slice(lanes);
                    }
                }
            }
        }
    }
}

simd_dispatch! {
    fn transform_input = transform_input_body(padded: &[f32], v: &mut [f32], t: &Tiles, images: usize) -> ()
}

/// The point products `[POINTS, c_out, stride]` back to raw outputs, written as im2col's
/// product is: `[c_out, images * positions]`, image `i` at column `i * positions`.
#[inline(always)]
fn transform_output_body(m: &[f32], raw: &mut [f32], t: &Tiles, images: usize) {
    let stride = t.stride(images);
    let positions = t.height * t.width;
    let columns = images * positions;
    // Channel by channel, so that each point's row of products is read front to back.
    for co in 0..t.c_out {
        for block in 0..images.div_ceil(LANES) {
            let used = (images - block * LANES).min(LANES);
            for tile in 0..t.per_image() {
                let (ty, tx) = (tile / t.across, tile % t.across);
                let (rows, cols) = (
                    (t.height - ty * OUT).min(OUT),
                    (t.width - tx * OUT).min(OUT),
                );
                let column = (block * t.per_image() + tile) * LANES;
                // Along each row of points, then down each column.
                let mut sides = [[[0f32; LANES]; OUT]; IN];
                for (k, side) in sides.iter_mut().enumerate() {
                    let mut points = [[0f32; LANES]; IN];
                    for (j, lanes) in points.iter_mut().enumerate() {
                        let at = ((k * IN + j) * t.c_out + co) * stride + column;
                        lanes.copy_from_slice(&m[at..at + LANES]);
                    }
                    *side = output_side(&points);
                }
                // `by_column[b][a]` is output `(a, b)` of the tile.
                let by_column: [[Lanes; OUT]; OUT] =
                    std::array::from_fn(|b| output_side(&column_of(&sides, b)));
                // Lane by lane into each image's plane, clipped at the plane's edges.
                let corner = co * columns + ty * OUT * t.width + tx * OUT;
                for l in 0..used {
                    let to = &mut raw[corner + (block * LANES + l) * positions..];
                    for a in 0..rows {
                        for (b, column) in by_column.iter().enumerate().take(cols) {
                            to[a * t.width + b] = column[a][l];
                        }
                    }
                }
            }
        }
    }
}

simd_dispatch! {
    fn transform_output = transform_output_body(m: &[f32], raw: &mut [f32], t: &Tiles, images: usize) -> ()
}

/// The forward of a 3x3 same-size convolution through F(4x4, 3x3), with `epilogue` applied on
/// the way to NCHW exactly as im2col's forward applies it.
pub(super) fn forward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    epilogue: &Epilogue,
    skip: Option<&[f32]>,
) -> Vec<f32> {
    let t = Tiles::new(g);
    let u = transform_kernel(w, &t);
    let winograd_product = |images: &[f32], [padded, v, m, raw]: &mut [&mut [f32]; 4]| {
        let n = images.len() / g.image_len();
        t.pad(images, padded);
        transform_input(padded, v, &t, n);
        let stride = t.stride(n);
        let (kernel, inputs, products) = (t.c_out * t.c_in, t.c_in * stride, t.c_out * stride);
        for p in 0..POINTS {
            matmul(
                (t.c_out, stride, t.c_in),
                &mut m[p * products..],
                (stride, 1),
                false,
                &u[p * kernel..],
                (t.c_in, 1),
                &v[p * inputs..],
                (stride, 1),
            );
        }
        transform_output(m, raw, &t, n);
    };
    super::forward_groups(
        g,
        x,
        epilogue,
        skip,
        g.tasks(t.group()),
        t.scratch(),
        winograd_product,
    )
}
