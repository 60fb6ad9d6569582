//! The path a GPU takes (candle's ops with wna's gradient fixes and one-pass batch norm), run on
//! the CPU with `WNA_CANDLE_OPS=1`, against wna's CPU kernels. CI has no GPU; this keeps the
//! CUDA path's logic checked there. One test in its own binary: it sets a process-wide variable.

mod common;

use candle_core::Device;
use common::max_rel_diff;
use std::sync::atomic::AtomicU64;
use wna::model::Model;
use wna::models::builtin;
use wna::noise::{analyse, AnalysisConfig, NoiseKind};
use wna::progress::Progress;

#[test]
fn gpu_path_matches_kernels_on_gradients_and_maps() {
    let spec = builtin::spec("smaller", 10, None).unwrap();
    let model = Model::new(spec, Device::Cpu, 5, 0.1307, 0.3081).unwrap();
    // Coarse pixel levels, so max-pool windows hold tied maxima as on real digits.
    let mut pixels = vec![0f32; 64 * 784];
    wna::philox::Philox::new(3, 1, 0).fill_uniform(&mut pixels);
    pixels
        .iter_mut()
        .for_each(|p| *p = (*p * 3.0).floor() / 2.0);
    let labels: Vec<u8> = (0..64).map(|i| (i % 10) as u8).collect();
    let cfg = AnalysisConfig {
        samples: 1000,
        batch_size: 250,
        seed: 2,
        noise: NoiseKind::Uniform,
        gamma: 0.0,
        threshold: 0.9,
        sta_samples: 300,
        layers: Vec::new(),
        keep_stimuli: 0,
    };
    let run = || {
        let (grads, _) = wna::grad::input_gradients(&model, &pixels, &labels).unwrap();
        let counters = [AtomicU64::new(0), AtomicU64::new(0)];
        let maps = analyse(&model, None, &cfg, Progress::new(&counters)).unwrap();
        (grads, maps)
    };
    std::env::remove_var("WNA_CANDLE_OPS");
    let (g_kernels, m_kernels) = run();
    std::env::set_var("WNA_CANDLE_OPS", "1");
    let (g_path, m_path) = run();
    std::env::remove_var("WNA_CANDLE_OPS");
    let d = max_rel_diff(&g_kernels, &g_path);
    assert!(d < 1e-4, "input gradients differ by {d} of the largest");
    assert_eq!(m_kernels.summary("counts"), m_path.summary("counts"));
    for name in [
        "classImages",
        "sta/conv1/centre",
        "sta/conv2/patch",
        "act/fc1/mean",
    ] {
        let (a, b) = (
            &m_kernels.get(name).unwrap().1,
            &m_path.get(name).unwrap().1,
        );
        let d = max_rel_diff(a, b);
        assert!(d < 1e-4, "{name} differs by {d}");
    }
}
