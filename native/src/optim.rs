//! Adam with decoupled weight decay (Loshchilov & Hutter, 2019) and SGD with (Nesterov)
//! momentum; the state is ours, not candle-nn's, so a checkpoint can carry it for `--resume`.

use crate::error::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Adam { beta1: f64, beta2: f64, eps: f64 },
    Sgd { momentum: f64, nesterov: bool },
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
            };
            var.set(&(theta - (update * lr)?)?)?;
            self.state.insert(name.clone(), (a, b));
        }
        Ok(())
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
