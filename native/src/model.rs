//! A model instance: the network, its variables, input normalisation and optimiser state.

use crate::error::{Error, Result};
use crate::models::{self, LayerInfo, Net};
use crate::optim::Optimizer;
use crate::philox::Philox;
use crate::recurrent;
use crate::spec::NetSpec;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use std::collections::HashMap;

/// Adds `delta` to one channel of one layer's output in every eval forward (microstimulation).
#[derive(Debug, Clone)]
pub struct Stimulation {
    pub layer: String,
    pub channel: usize,
    pub delta: f32,
}

pub struct Model {
    pub spec: NetSpec,
    /// Width of the logits.
    pub classes: usize,
    pub net: Box<dyn Net>,
    pub varmap: VarMap,
    pub device: Device,
    /// Pixel-space mean and std the inputs are normalised with.
    pub mean: f32,
    pub std: f32,
    pub optimizer: Option<Optimizer>,
    pub stimulation: Option<Stimulation>,
}

/// Picks the device: "cpu", "cuda" or "auto" (CUDA when built with it and a GPU answers).
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !cfg!(feature = "cuda") {
                crate::bail!(
                    InvalidArgument,
                    "device: this library was built without CUDA; build it with `deno task build:cuda`"
                );
            }
            Ok(Device::new_cuda(0)?)
        }
        "auto" => Ok(Device::cuda_if_available(0)?),
        other => crate::bail!(
            InvalidArgument,
            "device: invalid device \"{other}\" (expected cpu, cuda or auto)"
        ),
    }
}

impl Model {
    pub fn new(spec: NetSpec, device: Device, seed: u64, mean: f32, std: f32) -> Result<Self> {
        if !(std.is_finite() && std > 0.0 && mean.is_finite()) {
            crate::bail!(
                InvalidArgument,
                "model: normalisation must be finite with std > 0, got mean {mean} std {std}"
            );
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let net = models::build(&spec, vb)?;
        let model = Self {
            classes: spec.classes()?,
            spec,
            net,
            varmap,
            device,
            mean,
            std,
            optimizer: None,
            stimulation: None,
        };
        model.init(seed)?;
        Ok(model)
    }

    /// PyTorch's default initialisation (uniform in ±1/sqrt(fan_in) for weights and biases, and
    /// ±1/sqrt(hidden) for recurrent layers), drawn
    /// from Philox keyed by the seed and the variable's name so that it never depends on the
    /// order of a hash map or on the device.
    fn init(&self, seed: u64) -> Result<()> {
        let vars = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            let var = &vars[name];
            let bound =
                match recurrent::init_bound(name, |n| vars.get(n).map(|v| v.dims().to_vec())) {
                    Some(bound) => bound,
                    None => {
                        let weight_name = match name.strip_suffix(".bias") {
                            Some(prefix) => format!("{prefix}.weight"),
                            None => name.clone(),
                        };
                        let Some(weight) = vars.get(&weight_name) else {
                            continue;
                        };
                        if weight.rank() < 2 {
                            continue; // batch-norm scale and shift keep their 1 and 0
                        }
                        let fan_in: usize = weight.dims()[1..].iter().product();
                        1.0 / (fan_in as f32).sqrt()
                    }
                };
            let stream = name.bytes().fold(0x811c_9dc5u32, |h, b| {
                (h ^ b as u32).wrapping_mul(0x0100_0193)
            });
            let mut values = vec![0f32; var.elem_count()];
            Philox::new(seed, stream, 0).fill_uniform(&mut values);
            for v in &mut values {
                *v = (2.0 * *v - 1.0) * bound;
            }
            var.set(&Tensor::from_vec(values, var.shape(), &self.device)?)?;
        }
        Ok(())
    }

    pub fn param_count(&self) -> usize {
        self.trainable().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Trainable variables sorted by name (batch-norm running statistics excluded).
    pub fn trainable(&self) -> Vec<(String, candle_core::Var)> {
        let vars = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = vars
            .iter()
            .filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var"))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn layers(&self) -> Vec<LayerInfo> {
        self.net.layers()
    }

    pub fn layer(&self, name: &str) -> Result<LayerInfo> {
        let layers = self.layers();
        layers
            .iter()
            .find(|l| l.name == name)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<_> = layers.iter().map(|l| l.name.as_str()).collect();
                Error::InvalidArgument(format!(
                    "model: unknown layer \"{name}\" for {} (expected one of {})",
                    self.spec.name,
                    names.join(", ")
                ))
            })
    }

    /// Pixel-space images `[n*784]` in [0, 1] to a normalised `[n, 1, 28, 28]` tensor.
    pub fn input(&self, pixels: &[f32]) -> Result<Tensor> {
        check_images("input", pixels)?;
        let n = pixels.len() / 784;
        self.normalise(&Tensor::from_slice(pixels, (n, 1, 28, 28), &self.device)?)
    }

    pub fn normalise(&self, x: &Tensor) -> Result<Tensor> {
        let (mul, add) = self.normalisation();
        Ok(x.affine(mul as f64, add as f64)?)
    }

    /// `normalise` as the f32 multiplier and addend candle's `affine` applies: `x * mul + add`.
    pub fn normalisation(&self) -> (f32, f32) {
        ((1.0 / self.std as f64) as f32, -(self.mean / self.std))
    }

    /// Eval-mode forward of a normalised batch, with the model's stimulation applied and `record`
    /// called on every named layer.
    pub fn forward_eval(
        &self,
        x: &Tensor,
        record: &mut dyn FnMut(&str, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        // A pass over a plain tensor (no input gradient wanted) records no graph. The weights are
        // variables, so without the guard every op would keep its inputs for a backward that
        // never comes: the whole pass's activations would stay alive, and so would every earlier
        // pass that a running sum (noise-maps' class and STA sums) was built from.
        let _no_grad = (!x.track_op()).then(candle_core::backprop::no_grad);
        let stim = self.stimulation.clone();
        let mut tap = |name: &str, t: Tensor| -> Result<Tensor> {
            let t = match &stim {
                Some(s) if s.layer == name => stimulate(&t, s)?,
                _ => t,
            };
            record(name, &t)?;
            Ok(t)
        };
        self.net.forward_tapped(x, false, &mut tap)
    }

    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_eval(x, &mut |_, _| Ok(()))
    }

    pub fn save(&self, path: &str) -> Result<()> {
        let vars = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let tensors: HashMap<String, Tensor> = vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        candle_core::safetensors::save(&tensors, path)
            .map_err(|e| Error::Io(format!("save: cannot write {path}: {e}")))
    }

    /// Loads weights saved by `save`, or a PyTorch `state_dict` saved as safetensors whose
    /// names follow the spec (`conv1.weight`, `0.weight` for unnamed layers, as
    /// `nn.Sequential` numbers them). A residual block's projection may also carry PyTorch's
    /// names, `downsample.0`/`downsample.1` (torchvision) or `proj.0`/`proj.1`, and
    /// `num_batches_tracked` is ignored. Every missing, unexpected and wrong-shape tensor is
    /// reported in one error.
    pub fn load(&self, path: &str) -> Result<()> {
        let mut tensors = candle_core::safetensors::load(path, &self.device)
            .map_err(|e| Error::Io(format!("load: cannot read {path}: {e}")))?;
        tensors.retain(|name, _| !name.ends_with(".num_batches_tracked"));
        let vars = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        let (mut missing, mut wrong) = (Vec::new(), Vec::new());
        let mut matched = Vec::with_capacity(names.len());
        for name in names {
            let var = &vars[name];
            let Some((found, t)) = pytorch_names(name)
                .into_iter()
                .find_map(|n| tensors.get(&n).map(|t| (n, t)))
            else {
                missing.push(name.clone());
                continue;
            };
            if t.dims() != var.dims() {
                wrong.push(format!(
                    "{found} is {:?}, the spec needs {:?}",
                    t.dims(),
                    var.dims()
                ));
                continue;
            }
            matched.push((var, found, t));
        }
        let used: std::collections::HashSet<&String> = matched.iter().map(|(_, n, _)| n).collect();
        let mut unexpected: Vec<&String> = tensors.keys().filter(|n| !used.contains(n)).collect();
        unexpected.retain(|n| !wrong.iter().any(|w| w.starts_with(&format!("{n} "))));
        unexpected.sort();
        if !missing.is_empty() || !wrong.is_empty() || !unexpected.is_empty() {
            let list = |what: &str, items: Vec<String>| {
                (!items.is_empty())
                    .then(|| format!("{what} ({}): {}", items.len(), items.join(", ")))
            };
            let problems: Vec<String> = [
                list("missing", missing),
                list("wrong shape", wrong),
                list("unexpected", unexpected.into_iter().cloned().collect()),
            ]
            .into_iter()
            .flatten()
            .collect();
            crate::bail!(
                InvalidArgument,
                "load: {path} does not fit the {} spec. {}. Was it saved from this network? A \
                 wna checkpoint whose network changed since needs retraining; a PyTorch state \
                 dict needs a spec whose layer names match its module names",
                self.spec.name,
                problems.join("; ")
            );
        }
        for (var, _, t) in matched {
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }
}

/// The names a variable may carry in a file: its own, then PyTorch's for a residual block's
/// projection (`x.proj.weight` may be `x.downsample.0.weight` or `x.proj.0.weight`;
/// `x.proj_bn.bias` may be `x.downsample.1.bias` or `x.proj.1.bias`).
fn pytorch_names(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    for (ours, index) in [(".proj_bn.", 1), (".proj.", 0)] {
        if let Some(at) = name.rfind(ours) {
            let (head, tail) = (&name[..at], &name[at + ours.len()..]);
            out.push(format!("{head}.downsample.{index}.{tail}"));
            out.push(format!("{head}.proj.{index}.{tail}"));
            break;
        }
    }
    out
}

fn stimulate(t: &Tensor, s: &Stimulation) -> Result<Tensor> {
    let channels = t.dim(1)?;
    if s.channel >= channels {
        crate::bail!(
            InvalidArgument,
            "stimulate: channel {} out of range for layer {} ({channels} channels)",
            s.channel,
            s.layer
        );
    }
    let mut shift = vec![0f32; channels];
    shift[s.channel] = s.delta;
    let mut shape = vec![1; t.rank()];
    shape[1] = channels;
    let shift = Tensor::from_vec(shift, shape, t.device())?;
    Ok(t.broadcast_add(&shift)?)
}

/// Checks a batch of pixel-space images: whole images, finite values.
pub fn check_images(op: &str, pixels: &[f32]) -> Result<()> {
    if pixels.is_empty() || !pixels.len().is_multiple_of(784) {
        return Err(Error::Shape {
            op: "images",
            expected: "a non-empty multiple of 784 values (n x 28 x 28)".into(),
            got: format!("{} values", pixels.len()),
        });
    }
    if let Some(i) = pixels.iter().position(|v| !v.is_finite()) {
        crate::bail!(
            NotFinite,
            "{op}: image {} has a non-finite pixel ({}) at index {}",
            i / 784,
            pixels[i],
            i % 784
        );
    }
    Ok(())
}
