//! Adam with decoupled weight decay (Loshchilov & Hutter, 2019; PyTorch's `AdamW`), SGD with
//! (Nesterov) momentum and Adadelta (Zeiler, 2012), each following PyTorch's update rule
//! (`native/tests/optim.rs` checks them against it); the state is ours, not candle-nn's, so a
//! checkpoint can carry it for `--resume`.

use crate::error::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{Device, Storage, Tensor, Var};
use rayon::prelude::*;
use std::collections::HashMap;

/// Runs `f` on the values of contiguous f32 CPU tensors, borrowed in place; `None` when any
/// tensor is something else (another device, dtype or a strided view).
fn with_cpu_slices<R>(tensors: [&Tensor; 4], f: impl FnOnce([&[f32]; 4]) -> R) -> Option<R> {
    let guards = tensors.map(|t| t.storage_and_layout());
    let mut slices: [&[f32]; 4] = [&[]; 4];
    for (slot, (storage, layout)) in slices.iter_mut().zip(&guards) {
        let Storage::Cpu(cpu) = &**storage else {
            return None;
        };
        let data = cpu.as_slice::<f32>().ok()?;
        let (start, end) = layout.contiguous_offsets()?;
        *slot = &data[start..end];
    }
    Some(f(slices))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Adam {
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
    Sgd {
        momentum: f64,
        nesterov: bool,
    },
    /// PyTorch's defaults: rho 0.9, eps 1e-6, and a learning rate of 1.
    Adadelta {
        rho: f64,
        eps: f64,
    },
}

impl Kind {
    /// PyTorch's defaults for each optimiser, defined once here.
    pub const ADAM: Self = Self::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    pub const SGD_MOMENTUM: f64 = 0.9;
    pub const ADADELTA: Self = Self::Adadelta {
        rho: 0.9,
        eps: 1e-6,
    };

    /// The code stored with the state, so `--resume` knows which optimiser wrote it.
    fn code(self) -> f64 {
        match self {
            Self::Adam { .. } => 0.0,
            Self::Sgd { .. } => 1.0,
            Self::Adadelta { .. } => 2.0,
        }
    }

    /// Whether two kinds are the same optimiser, whatever their hyperparameters.
    pub fn same_optimizer(self, other: Self) -> bool {
        self.code() == other.code()
    }
}

pub struct Optimizer {
    pub kind: Kind,
    pub weight_decay: f64,
    pub step: u64,
    /// Per variable: Adam's first and second moments, or SGD's velocity (second unused).
    state: HashMap<String, (Tensor, Tensor)>,
}

impl Optimizer {
    pub fn new(kind: Kind, weight_decay: f64) -> Self {
        Self {
            kind,
            weight_decay,
            step: 0,
            state: HashMap::new(),
        }
    }

    /// A variable's state: Adam's moments, SGD's velocity or Adadelta's running means.
    pub fn state(&self, name: &str) -> Option<&(Tensor, Tensor)> {
        self.state.get(name)
    }

    pub fn apply(&mut self, vars: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        for (name, var) in vars {
            let Some(g) = grads.get(var) else { continue };
            let (a, b) = match self.state.remove(name) {
                Some(s) => s,
                None => (g.zeros_like()?, g.zeros_like()?),
            };
            let theta = var.as_tensor();
            if let Some((new_theta, a, b)) = self.fused_cpu(theta, g, &a, &b, lr, t)? {
                var.set(&new_theta)?;
                self.state.insert(name.clone(), (a, b));
                continue;
            }
            let (update, a, b) = match self.kind {
                Kind::Adam { beta1, beta2, eps } => {
                    let m = ((a * beta1)? + (g * (1.0 - beta1))?)?;
                    let v = ((b * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
                    let m_hat = (&m / (1.0 - beta1.powi(t)))?;
                    let v_hat = (&v / (1.0 - beta2.powi(t)))?;
                    let adam = (m_hat / (v_hat.sqrt()? + eps)?)?;
                    ((adam + (theta * self.weight_decay)?)?, m, v)
                }
                Kind::Sgd { momentum, nesterov } => {
                    let g = (g + (theta * self.weight_decay)?)?;
                    let vel = ((a * momentum)? + &g)?;
                    let step = if nesterov {
                        (g + (&vel * momentum)?)?
                    } else {
                        vel.clone()
                    };
                    (step, vel, b)
                }
                // a: running mean of g^2; b: running mean of the squared updates.
                Kind::Adadelta { rho, eps } => {
                    let g = (g + (theta * self.weight_decay)?)?;
                    let square_avg = ((a * rho)? + (g.sqr()? * (1.0 - rho))?)?;
                    let std = (&square_avg + eps)?.sqrt()?;
                    let delta = ((&b + eps)?.sqrt()? / std)?.mul(&g)?;
                    let acc_delta = ((b * rho)? + (delta.sqr()? * (1.0 - rho))?)?;
                    (delta, square_avg, acc_delta)
                }
            };
            var.set(&(theta - (update * lr)?)?)?;
            // Detached: built from the variable (weight decay), the new state would otherwise
            // keep the previous step's state alive through the op graph, and with it every
            // earlier one: memory grew by the parameter count each step (net 7 of the zoo, on
            // Adadelta, ran out of 24 GB half-way through its first 60k epoch).
            self.state.insert(name.clone(), (a.detach(), b.detach()));
        }
        Ok(())
    }

    /// The same update in one parallel pass over CPU memory: candle would run a dozen
    /// single-threaded element-wise ops, each allocating, which dominated the step time of the
    /// 12.8M-parameter N3. `None` when a tensor is not f32 on the CPU.
    fn fused_cpu(
        &self,
        theta: &Tensor,
        g: &Tensor,
        a: &Tensor,
        b: &Tensor,
        lr: f64,
        t: i32,
    ) -> Result<Option<(Tensor, Tensor, Tensor)>> {
        let kind = self.kind;
        if matches!(kind, Kind::Adadelta { .. }) {
            return Ok(None); // used by few, small nets: the tensor ops are fast enough
        }
        let (lr, wd) = (lr as f32, self.weight_decay as f32);
        let updated = with_cpu_slices([theta, g, a, b], |[theta_v, g_v, a_v, b_v]| {
            let n = theta_v.len();
            let (mut theta_out, mut a_out, mut b_out) =
                (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
            const CHUNK: usize = 1 << 14;
            match kind {
                Kind::Adam { beta1, beta2, eps } => {
                    let (b1, b2, eps) = (beta1 as f32, beta2 as f32, eps as f32);
                    let (c1, c2) = (1.0 - beta1.powi(t) as f32, 1.0 - beta2.powi(t) as f32);
                    theta_out
                        .par_chunks_mut(CHUNK)
                        .zip(a_out.par_chunks_mut(CHUNK))
                        .zip(b_out.par_chunks_mut(CHUNK))
                        .enumerate()
                        .for_each(|(c, ((th, m), v))| {
                            let r = c * CHUNK..(c * CHUNK + th.len());
                            let (th0, g, m0, v0) = (
                                &theta_v[r.clone()],
                                &g_v[r.clone()],
                                &a_v[r.clone()],
                                &b_v[r],
                            );
                            for i in 0..th.len() {
                                m[i] = b1 * m0[i] + (1.0 - b1) * g[i];
                                v[i] = b2 * v0[i] + (1.0 - b2) * g[i] * g[i];
                                let adam = (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
                                th[i] = th0[i] - lr * (adam + wd * th0[i]);
                            }
                        });
                }
                Kind::Sgd { momentum, nesterov } => {
                    let mu = momentum as f32;
                    theta_out
                        .par_chunks_mut(CHUNK)
                        .zip(a_out.par_chunks_mut(CHUNK))
                        .enumerate()
                        .for_each(|(c, (th, vel))| {
                            let r = c * CHUNK..(c * CHUNK + th.len());
                            let (th0, g, vel0) = (&theta_v[r.clone()], &g_v[r.clone()], &a_v[r]);
                            for i in 0..th.len() {
                                let gi = g[i] + wd * th0[i];
                                vel[i] = mu * vel0[i] + gi;
                                let step = if nesterov { gi + mu * vel[i] } else { vel[i] };
                                th[i] = th0[i] - lr * step;
                            }
                        });
                    b_out.copy_from_slice(b_v);
                }
                Kind::Adadelta { .. } => unreachable!("handled by the tensor ops"),
            }
            (theta_out, a_out, b_out)
        });
        let Some((theta_out, a_out, b_out)) = updated else {
            return Ok(None);
        };
        let make = |v: Vec<f32>| Tensor::from_vec(v, theta.shape(), theta.device());
        Ok(Some((make(theta_out)?, make(a_out)?, make(b_out)?)))
    }

    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (name, (a, b)) in &self.state {
            out.insert(format!("a.{name}"), a.clone());
            out.insert(format!("b.{name}"), b.clone());
        }
        out.insert(
            "step".into(),
            Tensor::new(&[self.step as f64], &Device::Cpu)?,
        );
        out.insert(
            "kind".into(),
            Tensor::new(&[self.kind.code()], &Device::Cpu)?,
        );
        Ok(out)
    }

    pub fn save(&self, path: &str) -> Result<()> {
        candle_core::safetensors::save(&self.tensors()?, path)
            .map_err(|e| Error::Io(format!("optimizer: cannot write {path}: {e}")))
    }

    pub fn load(&mut self, path: &str, device: &Device) -> Result<()> {
        let tensors = candle_core::safetensors::load(path, device)
            .map_err(|e| Error::Io(format!("optimizer: cannot read {path}: {e}")))?;
        let step = tensors
            .get("step")
            .ok_or_else(|| Error::Io(format!("optimizer: {path} has no step")))?;
        self.step = step.to_vec1::<f64>()?[0] as u64;
        // State written before the kind was stored came from Adam or SGD; the trainer keeps it
        // only when the kinds agree, so an unknown kind starts that optimiser afresh.
        let code = match tensors.get("kind") {
            Some(k) => k.to_vec1::<f64>()?[0],
            None => -1.0,
        };
        self.kind = match code {
            0.0 => Kind::ADAM,
            1.0 => Kind::Sgd {
                momentum: Kind::SGD_MOMENTUM,
                nesterov: false,
            },
            2.0 => Kind::ADADELTA,
            _ => self.kind,
        };
        self.state.clear();
        for (key, a) in &tensors {
            if let Some(name) = key.strip_prefix("a.") {
                let b = tensors
                    .get(&format!("b.{name}"))
                    .ok_or_else(|| Error::Io(format!("optimizer: {path} lacks b.{name}")))?;
                self.state.insert(name.to_string(), (a.clone(), b.clone()));
            }
        }
        Ok(())
    }
}
