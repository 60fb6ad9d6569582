//! The C ABI that `ffi/native.ts` binds. Every export returns a status code (`error::Code`) and
//! writes its message into a caller-owned buffer, never a thread-local, because Deno runs
//! `nonblocking` calls on other threads. Panics are caught here and never cross the boundary.
//! Objects live in a registry keyed by integer handles, so a stale or freed handle is an error
//! rather than a dangling pointer.
//!
//! Safety contract of every export: each pointer is null or valid for the length passed with it
//! for the whole call, and `err` has `err_cap` writable bytes.
#![allow(clippy::missing_safety_doc)]

use crate::arrays::Arrays;
use crate::attribution::{self, AttributionOptions};
use crate::error::{Code, Error, Result};
use crate::feature_vis::{self, FeatureVisOptions};
use crate::frechet;
use crate::gan;
use crate::grad;
use crate::metanet::{self, MetaOptions};
use crate::model::{self, Model, Stimulation};
use crate::noise::{self, DataNoise};
use crate::optim::Kind;
use crate::options::{
    self, AnalyseOptions, ClassifyOptions, GanOptions, ModelOptions, OnnxOptions, TrainOptions,
};
use crate::population::pairs::{self, PairOptions};
use crate::population::{Population, PopulationOptions};
use crate::progress::Progress;
use crate::train;
use crate::tsne::{self, TsneOptions};
use serde_json::Value;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

enum Object {
    Model(Box<Model>),
    Arrays(Arrays),
    Population(Population),
}

#[derive(Default)]
struct Registry {
    next: u64,
    objects: HashMap<u64, Arc<Mutex<Object>>>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn insert(object: Object) -> u64 {
    let mut r = registry();
    r.next += 1;
    let h = r.next;
    r.objects.insert(h, Arc::new(Mutex::new(object)));
    h
}

fn lookup(handle: u64) -> Result<Arc<Mutex<Object>>> {
    registry().objects.get(&handle).cloned().ok_or_else(|| {
        Error::BadHandle(format!(
            "handle {handle} is not open (already closed, or never created)"
        ))
    })
}

fn with_model<T>(handle: u64, f: impl FnOnce(&mut Model) -> Result<T>) -> Result<T> {
    let obj = lookup(handle)?;
    let mut guard = obj.lock().unwrap_or_else(|e| e.into_inner());
    match &mut *guard {
        Object::Model(m) => f(m),
        other => Err(Error::BadHandle(format!(
            "handle {handle} is {}, not a model",
            other.what()
        ))),
    }
}

fn with_arrays<T>(handle: u64, f: impl FnOnce(&Arrays) -> Result<T>) -> Result<T> {
    let obj = lookup(handle)?;
    let guard = obj.lock().unwrap_or_else(|e| e.into_inner());
    match &*guard {
        Object::Arrays(a) => f(a),
        other => Err(Error::BadHandle(format!(
            "handle {handle} is {}, not an array set",
            other.what()
        ))),
    }
}

fn with_population<T>(handle: u64, f: impl FnOnce(&mut Population) -> Result<T>) -> Result<T> {
    let obj = lookup(handle)?;
    let mut guard = obj.lock().unwrap_or_else(|e| e.into_inner());
    match &mut *guard {
        Object::Population(p) => f(p),
        other => Err(Error::BadHandle(format!(
            "handle {handle} is {}, not a population",
            other.what()
        ))),
    }
}

impl Object {
    fn what(&self) -> &'static str {
        match self {
            Object::Model(_) => "a model",
            Object::Arrays(_) => "an array set",
            Object::Population(_) => "a population",
        }
    }
}

/// Runs `f`, turning errors and panics into a status code plus a message in `err`.
fn guarded(err: *mut u8, err_cap: usize, f: impl FnOnce() -> Result<()>) -> i32 {
    let (code, message) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return Code::Ok as i32,
        Ok(Err(e)) => (e.code(), e.to_string()),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            (
                Code::Panic,
                format!("internal error (a bug in wna, please report it): {what}"),
            )
        }
    };
    if !err.is_null() && err_cap > 0 {
        let bytes = message.as_bytes();
        let n = bytes.len().min(err_cap - 1);
        // SAFETY: the caller owns `err_cap` writable bytes at `err`.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), err, n);
            *err.add(n) = 0;
        }
    }
    code as i32
}

unsafe fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        crate::bail!(
            InvalidArgument,
            "ffi: {what} is a null pointer with length {len}"
        );
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize, what: &str) -> Result<&'a mut [T]> {
    if ptr.is_null() || len == 0 {
        crate::bail!(
            InvalidArgument,
            "ffi: {what} is an empty or null output buffer"
        );
    }
    Ok(std::slice::from_raw_parts_mut(ptr, len))
}

unsafe fn text<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str> {
    std::str::from_utf8(slice(ptr, len, what)?)
        .map_err(|_| Error::InvalidArgument(format!("ffi: {what} is not UTF-8")))
}

fn copy_out(dst: &mut [f32], src: &[f32], what: &str) -> Result<()> {
    if dst.len() != src.len() {
        return Err(Error::Shape {
            op: "output",
            expected: format!("{what} buffer of {} values", src.len()),
            got: dst.len().to_string(),
        });
    }
    dst.copy_from_slice(src);
    Ok(())
}

/// Writes a string result: its length always goes to `len_out`; the bytes only if they fit.
unsafe fn write_text(s: &str, buf: *mut u8, cap: usize, len_out: *mut usize) -> Result<()> {
    if len_out.is_null() {
        crate::bail!(InvalidArgument, "ffi: length output is a null pointer");
    }
    *len_out = s.len();
    if s.len() <= cap && !buf.is_null() {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf, s.len());
    }
    Ok(())
}

#[no_mangle]
pub unsafe extern "C" fn wna_version(buf: *mut u8, cap: usize, len_out: *mut usize) -> i32 {
    guarded(std::ptr::null_mut(), 0, || {
        let features = if cfg!(feature = "cuda") {
            "cuda"
        } else {
            "cpu"
        };
        write_text(
            &format!("{} {features}", env!("CARGO_PKG_VERSION")),
            buf,
            cap,
            len_out,
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_model_new(
    spec: *const u8,
    spec_len: usize,
    handle_out: *mut u64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let o: ModelOptions = options::parse(text(spec, spec_len, "model spec")?, "model")?;
        let spec = o.net_spec()?;
        let device = model::device(o.device.as_deref().unwrap_or("cpu"))?;
        let m = Model::new(
            spec,
            device,
            o.seed.unwrap_or(0),
            o.mean.unwrap_or(0.0),
            o.std.unwrap_or(1.0),
        )?;
        *handle_out = insert(Object::Model(Box::new(m)));
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_free(handle: u64, err: *mut u8, err_cap: usize) -> i32 {
    guarded(err, err_cap, || {
        registry()
            .objects
            .remove(&handle)
            .map(|_| ())
            .ok_or_else(|| {
                Error::BadHandle(format!("handle {handle} is not open (already closed?)"))
            })
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_model_info(
    handle: u64,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let info =
            with_model(handle, |m| {
                let layers: Vec<Value> = m.layers().iter().map(|l| serde_json::json!({
                "name": l.name, "kind": l.kind, "channels": l.channels, "height": l.height,
                "width": l.width, "rf": l.rf, "stride": l.stride, "offset": l.offset,
            })).collect();
                Ok(serde_json::json!({
                    "model": m.spec.name, "classes": m.classes, "spec": m.spec,
                    "parameters": m.param_count(), "layers": layers, "mean": m.mean, "std": m.std,
                    "device": if m.device.is_cuda() { "cuda" } else { "cpu" },
                    "step": m.optimizer.as_ref().map_or(0, |o| o.step),
                })
                .to_string())
            })?;
        write_text(&info, buf, cap, len_out)
    })
}

/// `what`: 0 weights, 1 optimiser state. `save`: 1 to save, 0 to load.
#[no_mangle]
pub unsafe extern "C" fn wna_model_io(
    handle: u64,
    path: *const u8,
    path_len: usize,
    what: u32,
    save: u32,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let path = text(path, path_len, "path")?;
        with_model(handle, |m| match (what, save) {
            (0, 1) => m.save(path),
            (0, _) => m.load(path),
            (_, 1) => match &m.optimizer {
                Some(o) => o.save(path),
                None => crate::bail!(
                    InvalidArgument,
                    "optimizer: nothing to save before the first training epoch"
                ),
            },
            (_, _) => {
                // `load` sets the kind the file records.
                let mut o = crate::optim::Optimizer::new(Kind::ADAM, 0.0);
                o.load(path, &m.device.clone())?;
                m.optimizer = Some(o);
                Ok(())
            }
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_predict(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    out: *mut f32,
    out_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let px = slice(pixels, n_values, "images")?;
        let out = slice_mut(out, out_len, "logits")?;
        with_model(handle, |m| {
            model::check_images("predict", px)?;
            let mut logits = Vec::with_capacity(out.len());
            for chunk in px.chunks(1000 * 784) {
                logits.extend(
                    m.logits(&m.input(chunk)?)?
                        .flatten_all()?
                        .to_vec1::<f32>()?,
                );
            }
            copy_out(out, &logits, "logits")
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_activations(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    layer: *const u8,
    layer_len: usize,
    out: *mut f32,
    out_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let px = slice(pixels, n_values, "images")?;
        let layer = text(layer, layer_len, "layer")?;
        let out = slice_mut(out, out_len, "activations")?;
        with_model(handle, |m| {
            m.layer(layer)?;
            let mut acts = Vec::with_capacity(out.len());
            for chunk in px.chunks(1000 * 784) {
                m.forward_eval(&m.input(chunk)?, &mut |name, t| {
                    if name == layer {
                        acts.extend(t.flatten_all()?.to_vec1::<f32>()?);
                    }
                    Ok(())
                })?;
            }
            copy_out(out, &acts, "activations")
        })
    })
}

/// `channel` < 0 clears the stimulation.
#[no_mangle]
pub unsafe extern "C" fn wna_set_stimulation(
    handle: u64,
    layer: *const u8,
    layer_len: usize,
    channel: i64,
    delta: f32,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let layer = text(layer, layer_len, "layer")?.to_string();
        with_model(handle, |m| {
            if channel < 0 {
                m.stimulation = None;
                return Ok(());
            }
            let info = m.layer(&layer)?;
            if channel as usize >= info.channels || !delta.is_finite() {
                crate::bail!(InvalidArgument, "stimulate: need channel < {} and a finite delta for {layer}, got {channel} and {delta}", info.channels);
            }
            m.stimulation = Some(Stimulation {
                layer,
                channel: channel as usize,
                delta,
            });
            Ok(())
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_train_epoch(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    labels: *const u8,
    n_labels: usize,
    options: *const u8,
    options_len: usize,
    progress: *mut u64,
    metrics_out: *mut f64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let px = slice(pixels, n_values, "images")?;
        let lb = slice(labels, n_labels, "labels")?;
        let cfg = options::parse::<TrainOptions>(text(options, options_len, "options")?, "train")?
            .config();
        let out = slice_mut(metrics_out, 2, "metrics")?;
        let metrics = with_model(handle, |m| {
            train::train_epoch(m, px, lb, &cfg, Progress::from_ptr(progress))
        })?;
        out.copy_from_slice(&[metrics.loss, metrics.accuracy]);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_evaluate(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    labels: *const u8,
    n_labels: usize,
    progress: *mut u64,
    metrics_out: *mut f64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let px = slice(pixels, n_values, "images")?;
        let lb = slice(labels, n_labels, "labels")?;
        let out = slice_mut(metrics_out, 2, "metrics")?;
        let metrics = with_model(handle, |m| {
            train::evaluate(m, px, lb, Progress::from_ptr(progress))
        })?;
        out.copy_from_slice(&[metrics.loss, metrics.accuracy]);
        Ok(())
    })
}

/// Runs `noise::analyse`; `pixels` may be null (pure noise). Returns an array-set handle.
#[no_mangle]
pub unsafe extern "C" fn wna_analyse(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    options: *const u8,
    options_len: usize,
    progress: *mut u64,
    handle_out: *mut u64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let o: AnalyseOptions = options::parse(text(options, options_len, "options")?, "analyse")?;
        let images = if pixels.is_null() {
            None
        } else {
            Some(slice(pixels, n_values, "images")?)
        };
        let arrays = with_model(handle, |m| {
            let cfg = o.config(m)?;
            noise::analyse(m, images, &cfg, Progress::from_ptr(progress))
        })?;
        *handle_out = insert(Object::Arrays(arrays));
        Ok(())
    })
}

/// Runs `attribution::attribute` on `n_values / 784` images (options: method, one target per
/// image, and the method's settings). Returns an array-set handle.
#[no_mangle]
pub unsafe extern "C" fn wna_attribute(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    options: *const u8,
    options_len: usize,
    progress: *mut u64,
    handle_out: *mut u64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let o: AttributionOptions =
            options::parse(text(options, options_len, "options")?, "attribute")?;
        let images = slice(pixels, n_values, "images")?;
        let arrays = with_model(handle, |m| {
            attribution::attribute(m, images, &o, Progress::from_ptr(progress))
        })?;
        *handle_out = insert(Object::Arrays(arrays));
        Ok(())
    })
}

/// Runs `feature_vis::maximise`; `reference` (may be null) holds images whose best value per
/// target is reported. Returns an array-set handle.
#[no_mangle]
pub unsafe extern "C" fn wna_visualise(
    handle: u64,
    reference: *const f32,
    n_values: usize,
    options: *const u8,
    options_len: usize,
    progress: *mut u64,
    handle_out: *mut u64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let mut o: FeatureVisOptions =
            options::parse(text(options, options_len, "options")?, "visualise")?;
        if !reference.is_null() {
            o.reference = Some(slice(reference, n_values, "reference images")?.to_vec());
        }
        let arrays = with_model(handle, |m| {
            feature_vis::maximise(m, &o, Progress::from_ptr(progress))
        })?;
        *handle_out = insert(Object::Arrays(arrays));
        Ok(())
    })
}

/// Runs `noise::classify`: the predicted class of each stimulus (`pixels` null for pure noise),
/// once per weight of `pattern` (null for none). `out` holds `max(1, n_weights) * n` classes.
#[no_mangle]
pub unsafe extern "C" fn wna_classify(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    pattern: *const f32,
    pattern_len: usize,
    weights: *const f32,
    n_weights: usize,
    options: *const u8,
    options_len: usize,
    progress: *mut u64,
    out: *mut u32,
    out_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let o: ClassifyOptions =
            options::parse(text(options, options_len, "options")?, "classify")?;
        let images = if pixels.is_null() {
            None
        } else {
            Some(slice(pixels, n_values, "images")?)
        };
        let pattern = if pattern.is_null() {
            None
        } else {
            Some(slice(pattern, pattern_len, "pattern")?)
        };
        let weights = slice(weights, n_weights, "weights")?;
        let out = slice_mut(out, out_len, "predictions")?;
        let classes = with_model(handle, |m| {
            let cfg = o.config(m)?;
            noise::classify(
                m,
                images,
                pattern,
                weights,
                &cfg,
                Progress::from_ptr(progress),
            )
        })?;
        if out.len() != classes.len() {
            return Err(Error::Shape {
                op: "classify",
                expected: format!("a predictions buffer of {} values", classes.len()),
                got: out.len().to_string(),
            });
        }
        out.copy_from_slice(&classes);
        Ok(())
    })
}

/// Fits `NoiseKind::Data` to `pixels` and keeps it in the model; returns an array set with the
/// fitted `mean` (28 x 28) and Cholesky `factor` (784 x 784).
#[no_mangle]
pub unsafe extern "C" fn wna_fit_data_noise(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    handle_out: *mut u64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let px = slice(pixels, n_values, "images")?;
        let arrays = with_model(handle, |m| {
            let fit = DataNoise::fit(px, &m.device)?;
            let mut out = Arrays::default();
            out.insert("mean", vec![28, 28], fit.mean.clone());
            out.insert("factor", vec![784, 784], fit.factor.clone());
            out.insert("images", vec![1], vec![fit.images as f32]);
            m.data_noise = Some(std::sync::Arc::new(fit));
            Ok(out)
        })?;
        *handle_out = insert(Object::Arrays(arrays));
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_arrays_manifest(
    handle: u64,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let manifest = with_arrays(handle, |a| Ok(a.manifest()))?;
        write_text(&manifest, buf, cap, len_out)
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_arrays_read(
    handle: u64,
    name: *const u8,
    name_len: usize,
    out: *mut f32,
    out_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let name = text(name, name_len, "array name")?;
        let out = slice_mut(out, out_len, "array")?;
        with_arrays(handle, |a| {
            let (_, data) = a.get(name).ok_or_else(|| {
                Error::InvalidArgument(format!("arrays: no array named \"{name}\""))
            })?;
            copy_out(out, data, name)
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_template_scores(
    templates: *const f32,
    classes: usize,
    pixels: *const f32,
    n_values: usize,
    centre: *const f32,
    centre_len: usize,
    out: *mut f32,
    out_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let t = slice(templates, classes * 784, "templates")?;
        let px = slice(pixels, n_values, "images")?;
        let out = slice_mut(out, out_len, "scores")?;
        let centre = if centre.is_null() {
            None
        } else {
            Some(slice(centre, centre_len, "centre")?)
        };
        let scores = noise::template_scores(t, classes, px, centre, &candle_core::Device::Cpu)?;
        copy_out(out, &scores.flatten_all()?.to_vec1::<f32>()?, "scores")
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_input_gradients(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    labels: *const u8,
    n_labels: usize,
    out: *mut f32,
    out_len: usize,
    loss_out: *mut f64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let px = slice(pixels, n_values, "images")?;
        let lb = slice(labels, n_labels, "labels")?;
        let out = slice_mut(out, out_len, "gradients")?;
        let (g, loss) = with_model(handle, |m| grad::input_gradients(m, px, lb))?;
        copy_out(out, &g, "gradients")?;
        if !loss_out.is_null() {
            *loss_out = loss;
        }
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_fgsm(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    labels: *const u8,
    n_labels: usize,
    eps: f32,
    out: *mut f32,
    out_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let px = slice(pixels, n_values, "images")?;
        let lb = slice(labels, n_labels, "labels")?;
        let out = slice_mut(out, out_len, "adversarial images")?;
        let adv = with_model(handle, |m| grad::fgsm(m, px, lb, eps))?;
        copy_out(out, &adv, "adversarial images")
    })
}

/// Augments `n` 28x28 images with `options` = `{transforms, seed, epoch}` (see `augment`).
#[no_mangle]
pub unsafe extern "C" fn wna_augment(
    pixels: *const f32,
    n_values: usize,
    options: *const u8,
    options_len: usize,
    out: *mut f32,
    out_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let px = slice(pixels, n_values, "images")?;
        let o: options::AugmentOptions =
            options::parse(text(options, options_len, "options")?, "augment")?;
        let out = slice_mut(out, out_len, "augmented images")?;
        model::check_images("augment", px)?;
        let images = crate::augment::augment(px, 28, 28, &o.transforms, o.seed, o.epoch)?;
        copy_out(out, &images, "augmented images")
    })
}

/// Runs `tsne::tsne` on the rows of `data` (`options.dims` columns each) and returns its arrays
/// (`embedding`, `klDivergence`, `trustworthiness`, `explainedVariance`) as a handle.
#[no_mangle]
pub unsafe extern "C" fn wna_tsne(
    data: *const f32,
    n_values: usize,
    options: *const u8,
    options_len: usize,
    progress: *mut u64,
    handle_out: *mut u64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let o: TsneOptions = options::parse(text(options, options_len, "options")?, "tsne")?;
        let data = slice(data, n_values, "data")?;
        let arrays = tsne::tsne(data, &o, Progress::from_ptr(progress))?;
        *handle_out = insert(Object::Arrays(arrays));
        Ok(())
    })
}

/// `tsne::trustworthiness` of `embedded` (rows of `embedded_dims`) against `original` (rows of
/// `dims`) with `k` neighbours, written to `out[0]`.
#[no_mangle]
pub unsafe extern "C" fn wna_trustworthiness(
    original: *const f32,
    n_original: usize,
    dims: usize,
    embedded: *const f32,
    n_embedded: usize,
    embedded_dims: usize,
    k: usize,
    out: *mut f64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let x = slice(original, n_original, "original")?;
        let y = slice(embedded, n_embedded, "embedded")?;
        let out = slice_mut(out, 1, "trustworthiness")?;
        out[0] = tsne::trustworthiness(x, dims, y, embedded_dims, k)?;
        Ok(())
    })
}

/// One epoch of `gan::train_epoch` of generator `g` against discriminator `d` on `pixels`;
/// writes discriminator loss, generator loss, mean D(x) and mean D(G(z)) to `metrics_out[0..4]`.
#[no_mangle]
pub unsafe extern "C" fn wna_gan_train_epoch(
    g: u64,
    d: u64,
    pixels: *const f32,
    n_values: usize,
    options: *const u8,
    options_len: usize,
    progress: *mut u64,
    metrics_out: *mut f64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        if g == d {
            crate::bail!(
                InvalidArgument,
                "gan: the generator and the discriminator are the same model (handle {g})"
            );
        }
        let px = slice(pixels, n_values, "images")?;
        let cfg =
            options::parse::<GanOptions>(text(options, options_len, "options")?, "gan")?.config();
        let out = slice_mut(metrics_out, 4, "metrics")?;
        let m = with_model(g, |gm| {
            with_model(d, |dm| {
                gan::train_epoch(gm, dm, px, &cfg, Progress::from_ptr(progress))
            })
        })?;
        out.copy_from_slice(&[m.d_loss, m.g_loss, m.d_real, m.d_fake]);
        Ok(())
    })
}

/// `gan::generate`: pixels `[n * 784]` from latents `[n * dim]`.
#[no_mangle]
pub unsafe extern "C" fn wna_generate(
    handle: u64,
    latent: *const f32,
    n_values: usize,
    out: *mut f32,
    out_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let z = slice(latent, n_values, "latent")?;
        let out = slice_mut(out, out_len, "images")?;
        with_model(handle, |m| copy_out(out, &gan::generate(m, z)?, "images"))
    })
}

/// `gan::discriminate`: the probability that each image is real.
#[no_mangle]
pub unsafe extern "C" fn wna_discriminate(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    out: *mut f32,
    out_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let px = slice(pixels, n_values, "images")?;
        let out = slice_mut(out, out_len, "scores")?;
        with_model(handle, |m| {
            copy_out(out, &gan::discriminate(m, px)?, "scores")
        })
    })
}

/// `frechet::frechet_distance` of two feature sets with `dims` columns, written to `out[0]`.
#[no_mangle]
pub unsafe extern "C" fn wna_frechet(
    a: *const f32,
    n_a: usize,
    b: *const f32,
    n_b: usize,
    dims: usize,
    out: *mut f64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let a = slice(a, n_a, "first features")?;
        let b = slice(b, n_b, "second features")?;
        let out = slice_mut(out, 1, "distance")?;
        out[0] = frechet::frechet_distance(a, b, dims)?;
        Ok(())
    })
}

/// Converts an ONNX classifier (`OnnxOptions`) to a wna spec, writes its weights under wna's
/// names as safetensors at `weights` (whole or not at all), and returns JSON: `spec`, the
/// graph's own normalisation `shift` and `scale`, `notes`, `producer` and `opset`.
#[no_mangle]
pub unsafe extern "C" fn wna_onnx_import(
    request: *const u8,
    request_len: usize,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let o: OnnxOptions = options::parse(text(request, request_len, "onnx request")?, "onnx")?;
        let c = crate::onnx::import(&o.path, &o.name)?;
        let mut tensors = HashMap::new();
        for w in c.weights {
            let t = candle_core::Tensor::from_vec(w.values, w.shape, &candle_core::Device::Cpu)?;
            tensors.insert(w.name, t);
        }
        let partial = format!("{}.partial", o.weights);
        candle_core::safetensors::save(&tensors, &partial)
            .and_then(|_| std::fs::rename(&partial, &o.weights).map_err(Into::into))
            .map_err(|e| Error::Io(format!("onnx: cannot write {}: {e}", o.weights)))?;
        let summary = serde_json::json!({
            "spec": c.spec, "shift": c.shift, "scale": c.scale, "notes": c.notes,
            "producer": c.producer, "opset": c.opset,
        });
        write_text(&summary.to_string(), buf, cap, len_out)
    })
}

/// Deliberately panics: lets the tests prove a panic becomes an error, not a crash.
#[no_mangle]
pub unsafe extern "C" fn wna_population_new(
    options: *const u8,
    options_len: usize,
    handle_out: *mut u64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let o: PopulationOptions =
            options::parse(text(options, options_len, "options")?, "population")?;
        *handle_out = insert(Object::Population(Population::new(o)?));
        Ok(())
    })
}

/// `epoch`: the 0-based epoch to train, or u64::MAX to evaluate. `metrics_out`: loss and
/// accuracy per member, `2 * members` values.
#[no_mangle]
pub unsafe extern "C" fn wna_population_run(
    handle: u64,
    pixels: *const f32,
    n_values: usize,
    labels: *const u8,
    n_labels: usize,
    epoch: u64,
    progress: *mut u64,
    metrics_out: *mut f64,
    metrics_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let px = slice(pixels, n_values, "images")?;
        let lb = slice(labels, n_labels, "labels")?;
        let out = slice_mut(metrics_out, metrics_len, "metrics")?;
        let progress = Progress::from_ptr(progress);
        let metrics = with_population(handle, |p| {
            if out.len() != 2 * p.len() {
                return Err(Error::Shape {
                    op: "population",
                    expected: format!("a metrics buffer of {} values", 2 * p.len()),
                    got: out.len().to_string(),
                });
            }
            if epoch == u64::MAX {
                p.evaluate(px, lb, progress)
            } else {
                p.train_epoch(px, lb, epoch, progress)
            }
        })?;
        for (slot, m) in out.chunks_exact_mut(2).zip(metrics) {
            slot.copy_from_slice(&[m.loss, m.accuracy]);
        }
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_population_save(
    handle: u64,
    index: u64,
    path: *const u8,
    path_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let path = text(path, path_len, "path")?;
        with_population(handle, |p| p.save(index as usize, path))
    })
}

/// The confidence study's pairs of one LeNet-5 checkpoint (`population::pairs`), as an array set.
#[no_mangle]
pub unsafe extern "C" fn wna_lenet_pairs(
    options: *const u8,
    options_len: usize,
    test_pixels: *const f32,
    test_values: usize,
    test_labels: *const u8,
    test_count: usize,
    reference_pixels: *const f32,
    reference_values: usize,
    reference_labels: *const u8,
    reference_count: usize,
    progress: *mut u64,
    handle_out: *mut u64,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let o: PairOptions = options::parse(text(options, options_len, "options")?, "pairs")?;
        let test = (
            slice(test_pixels, test_values, "test images")?,
            slice(test_labels, test_count, "test labels")?,
        );
        let reference = (
            slice(reference_pixels, reference_values, "reference images")?,
            slice(reference_labels, reference_count, "reference labels")?,
        );
        let arrays = pairs::pairs(&o, test, reference, Progress::from_ptr(progress))?;
        *handle_out = insert(Object::Arrays(arrays));
        Ok(())
    })
}

/// Trains one meta-network (`metanet::fit`) and writes its predictions for the test rows.
#[no_mangle]
pub unsafe extern "C" fn wna_metanet_fit(
    options: *const u8,
    options_len: usize,
    features: *const f32,
    n_values: usize,
    targets: *const f32,
    n_targets: usize,
    train: *const u32,
    n_train: usize,
    test: *const u32,
    n_test: usize,
    progress: *mut u64,
    predictions_out: *mut f32,
    predictions_len: usize,
    err: *mut u8,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let o: MetaOptions = options::parse(text(options, options_len, "options")?, "metanet")?;
        let predictions = metanet::fit(
            &o,
            slice(features, n_values, "features")?,
            slice(targets, n_targets, "targets")?,
            slice(train, n_train, "training rows")?,
            slice(test, n_test, "test rows")?,
            Progress::from_ptr(progress),
        )?;
        copy_out(
            slice_mut(predictions_out, predictions_len, "predictions")?,
            &predictions,
            "predictions",
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn wna_debug_panic(err: *mut u8, err_cap: usize) -> i32 {
    guarded(err, err_cap, || panic!("debug panic requested"))
}
