//! t-SNE, PCA, nearest neighbours and trustworthiness against direct loops and known answers.

use wna::philox::Philox;
use wna::progress::Progress;
use wna::tsne::{nearest_neighbours, pca, trustworthiness, tsne, TsneOptions};

fn options(json: &str) -> TsneOptions {
    serde_json::from_str(json).unwrap()
}

/// `classes` Gaussian blobs of `per` points in `d` dimensions, centres 10 apart on the axes.
fn blobs(classes: usize, per: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut x = vec![0f32; classes * per * d];
    Philox::new(seed, 1, 0).fill_normal(&mut x, 0.0, 1.0);
    let mut labels = Vec::new();
    for i in 0..classes * per {
        let c = i % classes;
        x[i * d + c % d] += 10.0;
        x[i * d + (c + 1) % d] -= 10.0 * (c / d) as f32;
        labels.push(c);
    }
    (x, labels)
}

fn sq(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum()
}

/// sklearn's trustworthiness written the slow, obvious way: full sorts, f64 distances.
fn trustworthiness_direct(x: &[f32], d: usize, y: &[f32], e: usize, k: usize) -> f64 {
    let n = x.len() / d;
    let mut penalty = 0.0;
    for i in 0..n {
        let mut by_x: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        by_x.sort_by(|&a, &b| {
            sq(&x[i * d..][..d], &x[a * d..][..d])
                .total_cmp(&sq(&x[i * d..][..d], &x[b * d..][..d]))
        });
        let mut by_y: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        by_y.sort_by(|&a, &b| {
            sq(&y[i * e..][..e], &y[a * e..][..e])
                .total_cmp(&sq(&y[i * e..][..e], &y[b * e..][..e]))
        });
        for &j in &by_y[..k] {
            let rank = 1 + by_x.iter().position(|&l| l == j).unwrap();
            penalty += rank.saturating_sub(k) as f64;
        }
    }
    let (n, k) = (n as f64, k as f64);
    1.0 - 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)) * penalty
}

#[test]
fn trustworthiness_matches_the_definition_and_its_bounds() {
    let (n, d) = (300, 12);
    let mut x = vec![0f32; n * d];
    Philox::new(3, 0, 0).fill_normal(&mut x, 0.0, 1.0);
    // A faithful embedding (the first two coordinates) and a random one.
    let faithful: Vec<f32> = x.chunks(d).flat_map(|r| [r[0], r[1]]).collect();
    let mut random = vec![0f32; n * 2];
    Philox::new(4, 0, 0).fill_normal(&mut random, 0.0, 1.0);
    for y in [&faithful, &random] {
        let fast = trustworthiness(&x, d, y, 2, 5).unwrap();
        let direct = trustworthiness_direct(&x, d, y, 2, 5);
        assert!((fast - direct).abs() < 1e-9, "{fast} vs {direct}");
    }
    // The data as its own embedding is perfectly trustworthy; noise sits near 0.5.
    assert!((trustworthiness(&x, d, &x, d, 5).unwrap() - 1.0).abs() < 1e-12);
    let r = trustworthiness(&x, d, &random, 2, 5).unwrap();
    assert!((0.4..0.6).contains(&r), "random embedding: {r}");
    assert!(trustworthiness(&x, d, &random[2..], 2, 5).is_err());
    assert!(trustworthiness(&x, d, &random, 2, n / 2).is_err());
}

#[test]
fn nearest_neighbours_are_the_exact_ones_nearest_first() {
    let (n, d, k) = (700, 9, 15);
    let mut x = vec![0f32; n * d];
    Philox::new(5, 0, 0).fill_normal(&mut x, 0.0, 1.0);
    let got = nearest_neighbours(&x, n, d, k).unwrap();
    for i in [0, 1, 511, 512, 699] {
        let mut want: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        want.sort_by(|&a, &b| {
            sq(&x[i * d..][..d], &x[a * d..][..d])
                .total_cmp(&sq(&x[i * d..][..d], &x[b * d..][..d]))
        });
        let idx: Vec<usize> = got[i].iter().map(|nb| nb.index).collect();
        assert_eq!(idx, want[..k].to_vec(), "row {i}");
        let d0 = sq(&x[i * d..][..d], &x[want[0] * d..][..d]).sqrt();
        assert!((got[i][0].distance as f64 - d0).abs() < 1e-4 * d0.max(1.0));
    }
}

#[test]
fn pca_recovers_the_axes_of_a_stretched_cloud() {
    // Variances 16, 4 and 1 along three rotated orthonormal axes.
    let n = 4000;
    let axes = [[0.6f32, 0.8, 0.0], [-0.8, 0.6, 0.0], [0.0, 0.0, 1.0]];
    let mut z = vec![0f32; n * 3];
    Philox::new(6, 0, 0).fill_normal(&mut z, 0.0, 1.0);
    let mut x = vec![0f32; n * 3];
    for i in 0..n {
        for (a, s) in axes.iter().zip([4.0f32, 2.0, 1.0]) {
            let c = z[i * 3 + axes.iter().position(|b| b == a).unwrap()] * s;
            for j in 0..3 {
                x[i * 3 + j] += c * a[j] + 5.0;
            }
        }
    }
    let p = pca(&x, n, 3, 2).unwrap();
    for (c, a) in axes.iter().take(2).enumerate() {
        let dot: f32 = (0..3).map(|j| p.components[c * 3 + j] * a[j]).sum();
        assert!(
            dot.abs() > 0.999,
            "component {c}: {:?}",
            &p.components[c * 3..][..3]
        );
    }
    assert!(
        (p.explained[0] - 16.0 / 21.0).abs() < 0.02,
        "{:?}",
        p.explained
    );
    assert!(
        (p.explained[1] - 4.0 / 21.0).abs() < 0.02,
        "{:?}",
        p.explained
    );
    // Projections are centred, with the component's variance.
    let mean: f32 = p.projected.iter().step_by(2).sum::<f32>() / n as f32;
    assert!(mean.abs() < 1e-3);
}

#[test]
fn blobs_embed_as_separate_trustworthy_clusters_twice() {
    let (x, labels) = blobs(5, 100, 20, 7);
    let o = options(r#"{"dims": 20, "perplexity": 20, "seed": 1}"#);
    let a = tsne(&x, &o, Progress::default()).unwrap();
    let t = a.summary("trustworthiness").unwrap().as_f64().unwrap();
    assert!(t > 0.95, "trustworthiness {t}");
    let y = &a.get("embedding").unwrap().1;
    assert_eq!(y.len(), 1000);
    // Every point's nearest embedded neighbour is of its own blob.
    let near = nearest_neighbours(y, 500, 2, 1).unwrap();
    let agree = (0..500)
        .filter(|&i| labels[near[i][0].index] == labels[i])
        .count();
    assert_eq!(agree, 500);
    let kl = a.summary("klDivergence").unwrap().as_f64().unwrap();
    assert!(kl.is_finite() && kl > 0.0, "KL {kl}");
    // No PCA for 20 columns (< 50).
    assert_eq!(a.get("explainedVariance").unwrap().0, vec![0]);
    // Not bit for bit: the crate's parallel sums follow thread scheduling.
    let b = tsne(&x, &o, Progress::default()).unwrap();
    assert!((b.summary("trustworthiness").unwrap().as_f64().unwrap() - t).abs() < 0.02);
    // The exact method agrees on the structure.
    let exact = options(r#"{"dims": 20, "perplexity": 20, "method": "exact", "iterations": 500}"#);
    let e = tsne(&x, &exact, Progress::default()).unwrap();
    assert!(e.summary("trustworthiness").unwrap().as_f64().unwrap() > 0.95);
}

#[test]
fn pca_runs_first_for_wide_inputs() {
    let (x, _) = blobs(4, 60, 80, 8);
    let o = options(r#"{"dims": 80, "perplexity": 10, "pcaDims": 10, "iterations": 300}"#);
    let a = tsne(&x, &o, Progress::default()).unwrap();
    let (shape, ev) = a.get("explainedVariance").unwrap();
    assert_eq!(shape, &vec![10]);
    assert!(ev.windows(2).all(|w| w[0] >= w[1]) && ev.iter().sum::<f32>() <= 1.0 + 1e-5);
    assert!(a.summary("trustworthiness").unwrap().as_f64().unwrap() > 0.9);
}

#[test]
fn bad_input_names_the_problem() {
    let (x, _) = blobs(2, 20, 4, 9);
    let msg = |json: &str, data: &[f32]| {
        tsne(data, &options(json), Progress::default())
            .unwrap_err()
            .to_string()
    };
    assert!(msg(r#"{"dims": 4}"#, &x).contains("needs at least 91 points"));
    assert!(msg(r#"{"dims": 3}"#, &x).contains("whole number of rows"));
    assert!(msg(r#"{"dims": 4, "perplexity": 5, "method": "fast"}"#, &x).contains("unknown method"));
    assert!(msg(r#"{"dims": 4, "perplexity": 5, "iterations": 100}"#, &x).contains("250"));
    let mut bad = x.clone();
    bad[9] = f32::NAN;
    assert!(msg(r#"{"dims": 4, "perplexity": 5}"#, &bad).contains("row 2, column 1"));
    assert!(serde_json::from_str::<TsneOptions>(r#"{"dims": 4, "perplex": 5}"#).is_err());
}
