//! The optimisers against PyTorch's own update rules: three steps from the same start with the
//! same gradients, in f32 (the fused CPU path) and f64 (the tensor-op path every device uses).
//!
//! Reference numbers from torch 2.5.1:
//! ```python
//! theta0 = [0.5, -1.0, 2.0, 0.0]
//! grads = [[0.1, -0.2, 0.3, 0.0], [1.0, 0.5, -0.5, 2.0], [-0.3, 0.0, 0.7, -1.0]]
//! cases = {
//!     "adam": lambda p: torch.optim.AdamW([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8,
//!                                         weight_decay=0.01),
//!     "sgd": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01),
//!     "sgd_nesterov": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True,
//!                                               weight_decay=0.01),
//!     "adadelta": lambda p: torch.optim.Adadelta([p], lr=1.0, rho=0.9, eps=1e-6,
//!                                                weight_decay=0.01),
//! }
//! for name, make in cases.items():
//!     p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
//!     opt = make(p)
//!     for g in grads:
//!         opt.zero_grad()
//!         (p * torch.tensor(g, dtype=torch.float64)).sum().backward()
//!         opt.step()
//!         print(name, p.detach().tolist())
//! ```

use candle_core::{DType, Device, Tensor, Var};
use wna::optim::{Kind, Optimizer};

const THETA0: [f64; 4] = [0.5, -1.0, 2.0, 0.0];
const GRADS: [[f64; 4]; 3] = [
    [0.1, -0.2, 0.3, 0.0],
    [1.0, 0.5, -0.5, 2.0],
    [-0.3, 0.0, 0.7, -1.0],
];

fn run(kind: Kind, lr: f64, dtype: DType) -> wna::Result<Vec<Vec<f64>>> {
    let var = Var::from_tensor(&Tensor::new(&THETA0, &Device::Cpu)?.to_dtype(dtype)?)?;
    let vars = vec![("theta".to_string(), var.clone())];
    let mut optimizer = Optimizer::new(kind, 0.01);
    let mut out = Vec::new();
    for g in GRADS {
        let g = Tensor::new(&g, &Device::Cpu)?.to_dtype(dtype)?;
        let grads = (var.as_tensor() * g)?.sum_all()?.backward()?;
        optimizer.apply(&vars, &grads, lr)?;
        out.push(var.as_tensor().to_dtype(DType::F64)?.to_vec1::<f64>()?);
    }
    Ok(out)
}

fn check(kind: Kind, lr: f64, expected: [[f64; 4]; 3]) -> wna::Result<()> {
    for (dtype, tol) in [(DType::F32, 2e-6), (DType::F64, 1e-8)] {
        let got = run(kind, lr, dtype)?;
        for (step, (g, e)) in got.iter().zip(&expected).enumerate() {
            for (a, b) in g.iter().zip(e) {
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "{kind:?} {dtype:?} step {}: got {g:?}, PyTorch {e:?}",
                    step + 1
                );
            }
        }
    }
    Ok(())
}

#[test]
fn adam_matches_pytorch_adamw() -> wna::Result<()> {
    let kind = Kind::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    check(
        kind,
        0.1,
        [
            [0.39950001, -0.899000005, 1.898, 0.0],
            [0.318391736, -0.94232253, 1.92545812, -0.0744136818],
            [0.276575421, -0.975563575, 1.88895509, -0.0972033055],
        ],
    )
}

#[test]
fn sgd_momentum_matches_pytorch() -> wna::Result<()> {
    let plain = Kind::Sgd {
        momentum: 0.9,
        nesterov: false,
    };
    check(
        plain,
        0.1,
        [
            [0.4895, -0.979, 1.968, 0.0],
            [0.3795605, -1.009121, 1.987232, -0.2],
            [0.310235389, -1.03522078, 1.93255357, -0.2798],
        ],
    )?;
    let nesterov = Kind::Sgd {
        momentum: 0.9,
        nesterov: true,
    };
    check(
        nesterov,
        0.1,
        [
            [0.48005, -0.9601, 1.9392, 0.0],
            [0.280632905, -1.03626581, 2.00459552, -0.38],
            [0.248056362, -1.05871022, 1.88338804, -0.351278],
        ],
    )
}

#[test]
fn adadelta_matches_pytorch() -> wna::Result<()> {
    check(
        Kind::Adadelta {
            rho: 0.9,
            eps: 1e-6,
        },
        1.0,
        [
            [0.496839156, -0.996838081, 1.99683788, 0.0],
            [0.492389858, -1.00098062, 2.00061744, -0.00316227371],
            [0.494223039, -1.0008607, 1.99599844, -0.00107708153],
        ],
    )
}

/// The state must not hold the op graph: with weight decay it is built from the variable, and a
/// tracked state kept every earlier step alive (net 7 of the zoo ran out of 24 GB on Adadelta).
#[test]
fn optimiser_state_is_detached_from_the_graph() -> wna::Result<()> {
    for kind in [
        Kind::ADADELTA,
        Kind::Sgd {
            momentum: Kind::SGD_MOMENTUM,
            nesterov: false,
        },
    ] {
        let w = Var::from_tensor(&Tensor::new(&[0.5f64, -1.0, 2.0], &Device::Cpu)?)?;
        let mut opt = Optimizer::new(kind, 0.01);
        let vars = vec![("w".to_string(), w.clone())];
        for _ in 0..3 {
            let loss = w.as_tensor().sqr()?.sum_all()?;
            opt.apply(&vars, &loss.backward()?, 0.1)?;
        }
        let (a, b) = opt.state("w").expect("state after a step");
        assert!(
            !a.track_op() && !b.track_op(),
            "{kind:?}: the state tracks the graph"
        );
    }
    Ok(())
}
