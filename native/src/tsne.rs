//! t-SNE (van der Maaten and Hinton, 2008) with scikit-learn's defaults, on the `bhtsne` crate.
//!
//! The crate does the optimisation (Barnes-Hut, or exact for small sets). What it leaves to the
//! caller, and what this module adds so that a run matches `sklearn.manifold.TSNE`:
//! - PCA to `pca_dims` dimensions first (50, the usual recipe for images), natively;
//! - the exact nearest neighbours (3 x perplexity of them) from blocked matrix products, instead
//!   of the crate's vantage-point tree, which degrades in 50 dimensions; the result is the same
//!   neighbour set and runs on the gemm kernel;
//! - PCA initialisation, scaled so the first coordinate has standard deviation 1e-4 (sklearn's
//!   `init="pca"`), or a seeded N(0, 1e-4) start: the crate's own random start is not seeded;
//! - trustworthiness (Venna and Kaski, 2001; sklearn's `trustworthiness`), computed exactly.
//!
//! - the learning rate in sklearn's convention: sklearn multiplies its gradient by 4 (the
//!   `2 (dof + 1) / dof` of Student-t with one degree of freedom) and the crate does not, so the
//!   crate gets 4 x the rate. `auto` is sklearn's `max(n / early_exaggeration / 4, 50)`, which is
//!   n / 12 in the crate's convention (Belkina et al., 2019). Left at the crate's own `auto` the
//!   steps are 4 times too short: 1,000 iterations on 10,000 MNIST digits then reach
//!   trustworthiness 0.969 instead of sklearn's 0.993;
//! - the exact KL divergence of the result (the crate reports a tree estimate).

use crate::arrays::Arrays;
use crate::error::{Error, Result};
use crate::philox::Philox;
use crate::progress::Progress;
use bhtsne::{tSNE, Neighbor};
use candle_core::{DType, Device, Tensor, D};
use rayon::prelude::*;
use serde::Deserialize;

/// Options of [`tsne`]; every default is scikit-learn's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TsneOptions {
    /// Columns per row of the input matrix.
    pub dims: usize,
    #[serde(default = "defaults::perplexity")]
    pub perplexity: f32,
    #[serde(default = "defaults::early_exaggeration")]
    pub early_exaggeration: f32,
    /// In sklearn's convention; none: sklearn's `auto`, `max(n / early_exaggeration / 4, 50)`.
    pub learning_rate: Option<f32>,
    /// Total iterations, the first 250 with early exaggeration.
    #[serde(default = "defaults::iterations")]
    pub iterations: usize,
    /// Barnes-Hut's opening angle; sklearn's `angle`.
    #[serde(default = "defaults::theta")]
    pub theta: f32,
    /// `barnes-hut` or `exact`.
    #[serde(default = "defaults::method")]
    pub method: String,
    /// PCA to this many dimensions first when the input has more; 0: never.
    #[serde(default = "defaults::pca_dims")]
    pub pca_dims: usize,
    /// `pca` or `random`.
    #[serde(default = "defaults::init")]
    pub init: String,
    #[serde(default)]
    pub seed: u64,
    /// Neighbours for the trustworthiness of the result; 0: not computed.
    #[serde(default = "defaults::trust_neighbours")]
    pub trust_neighbours: usize,
}

mod defaults {
    pub fn perplexity() -> f32 {
        30.0
    }
    pub fn early_exaggeration() -> f32 {
        12.0
    }
    pub fn iterations() -> usize {
        1000
    }
    pub fn theta() -> f32 {
        0.5
    }
    pub fn method() -> String {
        "barnes-hut".into()
    }
    pub fn pca_dims() -> usize {
        50
    }
    pub fn init() -> String {
        "pca".into()
    }
    pub fn trust_neighbours() -> usize {
        5
    }
}

/// Iterations with early exaggeration (sklearn's fixed `_EXPLORATION_MAX_ITER`).
const EXPLORATION_ITERATIONS: usize = 250;

/// sklearn's gradient carries this factor and the crate's does not (see the module docs).
const SKLEARN_GRADIENT_FACTOR: f32 = 4.0;

/// Rows per block of the pairwise distances: bounds memory at `ROW_BLOCK x n` floats.
const ROW_BLOCK: usize = 512;

impl TsneOptions {
    fn check(&self, n_values: usize) -> Result<usize> {
        let d = self.dims;
        if d == 0 || n_values == 0 || !n_values.is_multiple_of(d) {
            crate::bail!(
                InvalidArgument,
                "tsne: {n_values} values are not a whole number of rows of {d} columns"
            );
        }
        let n = n_values / d;
        let p = self.perplexity;
        if !(p.is_finite() && p >= 1.0) {
            crate::bail!(InvalidArgument, "tsne: perplexity must be >= 1, got {p}");
        }
        let needed = (3.0 * p).ceil() as usize + 1;
        if n < needed {
            crate::bail!(
                InvalidArgument,
                "tsne: perplexity {p} needs at least {needed} points (3 x perplexity + 1), got \
                 {n}; lower --perplexity or embed more points"
            );
        }
        for (name, v) in [
            ("earlyExaggeration", self.early_exaggeration),
            ("theta", self.theta),
            ("learningRate", self.learning_rate.unwrap_or(1.0)),
        ] {
            if !(v.is_finite() && v > 0.0) {
                crate::bail!(InvalidArgument, "tsne: {name} must be > 0, got {v}");
            }
        }
        if self.iterations <= EXPLORATION_ITERATIONS {
            crate::bail!(
                InvalidArgument,
                "tsne: iterations must exceed the {EXPLORATION_ITERATIONS} of early \
                 exaggeration, got {}",
                self.iterations
            );
        }
        if !matches!(self.method.as_str(), "barnes-hut" | "exact") {
            crate::bail!(
                InvalidArgument,
                "tsne: unknown method \"{}\" (expected barnes-hut or exact)",
                self.method
            );
        }
        if !matches!(self.init.as_str(), "pca" | "random") {
            crate::bail!(
                InvalidArgument,
                "tsne: unknown init \"{}\" (expected pca or random)",
                self.init
            );
        }
        if self.trust_neighbours >= n / 2 {
            crate::bail!(
                InvalidArgument,
                "tsne: trustworthiness needs fewer than n / 2 = {} neighbours, got {}",
                n / 2,
                self.trust_neighbours
            );
        }
        Ok(n)
    }
}

/// Embeds the rows of `data` (n x `options.dims`) in 2-D.
///
/// Returns `embedding` (n x 2), `klDivergence` and `trustworthiness` (one value each; the
/// latter against `data` as given, before PCA) and `explainedVariance` (the PCA's fraction of
/// variance per kept component; empty when no PCA ran).
pub fn tsne(data: &[f32], options: &TsneOptions, progress: Progress) -> Result<Arrays> {
    let n = options.check(data.len())?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        crate::bail!(
            NotFinite,
            "tsne: value {i} (row {}, column {}) is {}; t-SNE needs finite inputs",
            i / options.dims,
            i % options.dims,
            data[i]
        );
    }
    let trust = options.trust_neighbours > 0;
    progress.start(options.iterations as u64 + 2 + trust as u64);
    // PCA first, as sklearn users do for images; the components also seed the embedding.
    let k = if options.pca_dims > 0 && options.pca_dims < options.dims {
        options.pca_dims
    } else {
        options.dims.min(n)
    };
    let pca = pca(data, n, options.dims, k)?;
    progress.advance(1);
    let reduced: &[f32] = if k < options.dims {
        &pca.projected
    } else {
        data
    };
    let d = if k < options.dims { k } else { options.dims };
    let init = match options.init.as_str() {
        "pca" => {
            // sklearn: the first two principal components, scaled so column 0 has std 1e-4.
            let mut y = vec![0f32; n * 2];
            for i in 0..n {
                y[2 * i] = pca.projected[i * k];
                y[2 * i + 1] = pca.projected[i * k + 1.min(k - 1)];
            }
            let sd = std_dev(y.iter().step_by(2).copied(), n).max(f32::MIN_POSITIVE);
            y.iter_mut().for_each(|v| *v *= 1e-4 / sd);
            y
        }
        _ => {
            let mut y = vec![0f32; n * 2];
            Philox::new(options.seed, 0x7453_4e45, 0).fill_normal(&mut y, 0.0, 1e-4);
            y
        }
    };
    let rows: Vec<&[f32]> = reduced.chunks(d).collect();
    let mut t: tSNE<f32, &[f32], 2> = tSNE::new(&rows);
    t.perplexity(options.perplexity)
        .epochs(options.iterations)
        .early_exaggeration(options.early_exaggeration)
        .stop_lying_epoch(EXPLORATION_ITERATIONS)
        .momentum_switch_epoch(EXPLORATION_ITERATIONS)
        .initial_embedding(init)
        .epoch_callback(|_, _| progress.advance(1));
    let lr = options
        .learning_rate
        .unwrap_or_else(|| (n as f32 / options.early_exaggeration / 4.0).max(50.0));
    t.learning_rate(SKLEARN_GRADIENT_FACTOR * lr);
    if options.method == "exact" {
        t.exact(|a, b| euclidean(a, b));
    } else {
        let k_nn = ((3.0 * options.perplexity) as usize).min(n - 1);
        let neighbours = nearest_neighbours(reduced, n, d, k_nn)?;
        progress.advance(1);
        t.barnes_hut_with_neighbors(options.theta, &neighbours);
    }
    let embedding = t.embedding();
    let kl = match t.affinities() {
        Some(p) => exact_kl_divergence(p.rows(), p.columns(), p.values(), &embedding),
        None => t.kl_divergence().unwrap_or(f32::NAN), // exact mode: already exact
    };
    drop(t);
    if let Some(i) = embedding.iter().position(|v| !v.is_finite()) {
        crate::bail!(
            NotFinite,
            "tsne: the embedding diverged (coordinate {i} is {}); lower the learning rate",
            embedding[i]
        );
    }
    let mut out = Arrays::default();
    let trustworthiness = if trust {
        let t = trustworthiness(data, options.dims, &embedding, 2, options.trust_neighbours)?;
        progress.advance(1);
        Some(t)
    } else {
        None
    };
    out.set_summary(&TsneSummary {
        kl_divergence: kl as f64,
        trustworthiness,
    })?;
    out.insert("embedding", vec![n, 2], embedding);
    let explained = if k < options.dims {
        pca.explained
    } else {
        vec![]
    };
    out.insert("explainedVariance", vec![explained.len()], explained);
    Ok(out)
}

/// The scalars of a t-SNE run: the final KL divergence and, when asked for, the
/// trustworthiness of the embedding.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TsneSummary {
    kl_divergence: f64,
    trustworthiness: Option<f64>,
}

/// KL(P || Q) for a sparse P (CSR rows; normalised here) and the exact Student-t Q of the 2-D
/// embedding `y`, whose normaliser sums over all n^2 pairs.
fn exact_kl_divergence(rows: &[usize], columns: &[u32], values: &[f32], y: &[f32]) -> f32 {
    let n = y.len() / 2;
    let z: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let (a, b) = (y[2 * i], y[2 * i + 1]);
            let mut s = 0f32;
            for (j, q) in y.chunks_exact(2).enumerate() {
                let (dx, dy) = (a - q[0], b - q[1]);
                s += if j == i {
                    0.0
                } else {
                    1.0 / (1.0 + dx * dx + dy * dy)
                };
            }
            f64::from(s)
        })
        .sum();
    let total: f64 = values.iter().map(|&v| f64::from(v)).sum();
    let kl: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            (rows[i]..rows[i + 1])
                .map(|e| {
                    let p = f64::from(values[e]) / total;
                    if p <= 0.0 {
                        return 0.0;
                    }
                    let j = columns[e] as usize;
                    let (dx, dy) = (y[2 * i] - y[2 * j], y[2 * i + 1] - y[2 * j + 1]);
                    let q = 1.0 / (1.0 + f64::from(dx * dx + dy * dy)) / z;
                    p * (p / q).ln()
                })
                .sum::<f64>()
        })
        .sum();
    kl as f32
}

/// The exact t-SNE's distance. The crate squares distances in its Gaussian kernel (in both
/// modes, whatever its docs say of the exact one), so it gets plain Euclidean distances, and the
/// kernel sees the squared ones, as sklearn's `metric="euclidean"` does.
fn euclidean(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

fn std_dev(values: impl Iterator<Item = f32> + Clone, n: usize) -> f32 {
    let mean = values.clone().map(f64::from).sum::<f64>() / n as f64;
    let var = values.map(|v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n as f64;
    var.sqrt() as f32
}

/// A principal component analysis: `projected` (n x k, centred rows on the components),
/// `components` (k x d) and the fraction of the variance each component explains.
pub struct Pca {
    pub projected: Vec<f32>,
    pub components: Vec<f32>,
    pub explained: Vec<f32>,
}

/// The top `k` principal components of the rows of `data` (n x d), from the eigenvectors of the
/// covariance matrix (d x d, in f64). Each component's sign is fixed so its largest entry is
/// positive, so that a seed gives one answer.
pub fn pca(data: &[f32], n: usize, d: usize, k: usize) -> Result<Pca> {
    if k == 0 || k > d {
        crate::bail!(
            InvalidArgument,
            "pca: need 1 <= k <= {d} components, got {k}"
        );
    }
    let dev = Device::Cpu;
    let x = Tensor::from_slice(data, (n, d), &dev)?;
    let mean = x.mean_keepdim(0)?;
    let centred = x.broadcast_sub(&mean)?;
    let cov = centred
        .t()?
        .matmul(&centred)?
        .to_dtype(DType::F64)?
        .affine(1.0 / (n.max(2) - 1) as f64, 0.0)?;
    let cov: Vec<f64> = cov.flatten_all()?.to_vec1()?;
    let eig = nalgebra::SymmetricEigen::new(nalgebra::DMatrix::from_row_slice(d, d, &cov));
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
    let mut components = vec![0f32; k * d];
    let mut explained = Vec::with_capacity(k);
    for (c, &j) in order.iter().take(k).enumerate() {
        let v = eig.eigenvectors.column(j);
        let peak = v
            .iter()
            .copied()
            .fold(0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        let sign = if peak < 0.0 { -1.0 } else { 1.0 };
        for (r, x) in v.iter().enumerate() {
            components[c * d + r] = (sign * x) as f32;
        }
        explained.push((eig.eigenvalues[j].max(0.0) / total.max(f64::MIN_POSITIVE)) as f32);
    }
    let w = Tensor::from_slice(&components, (k, d), &dev)?;
    let projected = centred.matmul(&w.t()?)?.flatten_all()?.to_vec1()?;
    Ok(Pca {
        projected,
        components,
        explained,
    })
}

/// Squared Euclidean distances from rows `start..start + rows` of `x` to every row:
/// `rows x n`, row-major, from `|a|^2 + |b|^2 - 2 a.b` on the gemm kernel (clamped at 0).
fn distance_block(x: &Tensor, norms: &Tensor, start: usize, rows: usize) -> Result<Vec<f32>> {
    let block = x.narrow(0, start, rows)?;
    let dots = block.matmul(&x.t()?)?;
    let d = dots
        .affine(-2.0, 0.0)?
        .broadcast_add(&norms.narrow(0, start, rows)?.unsqueeze(1)?)?
        .broadcast_add(&norms.unsqueeze(0)?)?
        .relu()?;
    Ok(d.flatten_all()?.to_vec1()?)
}

fn matrix_and_norms(data: &[f32], n: usize, d: usize) -> Result<(Tensor, Tensor)> {
    let x = Tensor::from_slice(data, (n, d), &Device::Cpu)?;
    let norms = x.sqr()?.sum(D::Minus1)?;
    Ok((x, norms))
}

/// The `k` nearest other rows of every row of `data` (n x d), nearest first, with Euclidean
/// distances; ties go to the lower index. Exact, in blocks of rows.
pub fn nearest_neighbours(
    data: &[f32],
    n: usize,
    d: usize,
    k: usize,
) -> Result<Vec<Vec<Neighbor<f32>>>> {
    let (x, norms) = matrix_and_norms(data, n, d)?;
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(ROW_BLOCK) {
        let rows = ROW_BLOCK.min(n - start);
        let dist = distance_block(&x, &norms, start, rows)?;
        let block: Vec<Vec<Neighbor<f32>>> = dist
            .par_chunks(n)
            .enumerate()
            .map(|(r, row)| {
                let me = start + r;
                let mut idx: Vec<u32> = (0..n as u32).filter(|&j| j as usize != me).collect();
                let by_distance =
                    |a: &u32, b: &u32| row[*a as usize].total_cmp(&row[*b as usize]).then(a.cmp(b));
                idx.select_nth_unstable_by(k - 1, by_distance);
                idx.truncate(k);
                idx.sort_unstable_by(by_distance);
                idx.iter()
                    .map(|&j| Neighbor {
                        index: j as usize,
                        distance: row[j as usize].sqrt(),
                    })
                    .collect()
            })
            .collect();
        out.extend(block);
    }
    Ok(out)
}

/// Trustworthiness of an embedding (sklearn's definition): 1 minus the normalised penalty for
/// every one of a point's `k` nearest neighbours in `embedded` that is not among its `k` nearest
/// in `original`, weighted by how far down the original ranking it sits. 1 means every embedded
/// neighbourhood is a true one.
pub fn trustworthiness(
    original: &[f32],
    d: usize,
    embedded: &[f32],
    e: usize,
    k: usize,
) -> Result<f64> {
    if d == 0 || e == 0 || !original.len().is_multiple_of(d) || !embedded.len().is_multiple_of(e) {
        crate::bail!(
            InvalidArgument,
            "trustworthiness: the matrices are not whole rows ({} values / {d} columns, {} \
             values / {e} columns)",
            original.len(),
            embedded.len()
        );
    }
    let n = original.len() / d;
    if embedded.len() / e != n {
        return Err(Error::Shape {
            op: "trustworthiness",
            expected: format!("{n} embedded rows (one per original row)"),
            got: format!("{}", embedded.len() / e),
        });
    }
    if k == 0 || k >= n / 2 {
        crate::bail!(
            InvalidArgument,
            "trustworthiness: need 1 <= k < n / 2 = {}, got {k}",
            n / 2
        );
    }
    let near = nearest_neighbours(embedded, n, e, k)?;
    let (x, norms) = matrix_and_norms(original, n, d)?;
    let mut penalty = 0f64;
    for start in (0..n).step_by(ROW_BLOCK) {
        let rows = ROW_BLOCK.min(n - start);
        let dist = distance_block(&x, &norms, start, rows)?;
        penalty += dist
            .par_chunks(n)
            .enumerate()
            .map(|(r, row)| {
                let me = start + r;
                near[me]
                    .iter()
                    .map(|nb| {
                        // The neighbour's rank among the others by original distance, 1 = nearest.
                        let dj = row[nb.index];
                        let rank = 1 + row
                            .iter()
                            .enumerate()
                            .filter(|&(l, &dl)| l != me && (dl < dj || (dl == dj && l < nb.index)))
                            .count();
                        rank.saturating_sub(k) as f64
                    })
                    .sum::<f64>()
            })
            .sum::<f64>();
    }
    let (nf, kf) = (n as f64, k as f64);
    Ok(1.0 - 2.0 / (nf * kf * (2.0 * nf - 3.0 * kf - 1.0)) * penalty)
}
