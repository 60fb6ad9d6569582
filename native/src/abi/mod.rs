//! The C ABI that `ffi/` binds, one file per feature, each paired with the `ffi/*.ts` of the
//! same name. Every export returns a status code (`error::Code`) and writes its message into a
//! caller-owned buffer, never a thread-local, because Deno runs `nonblocking` calls on other
//! threads. Panics are caught here and never cross the boundary. Objects live in a registry
//! keyed by integer handles, so a stale or freed handle is an error rather than a dangling
//! pointer.
//!
//! Safety contract of every export: each pointer is null or valid for the length passed with it
//! for the whole call, and `err` has `err_cap` writable bytes.
#![allow(clippy::missing_safety_doc)]

pub mod arrays;
pub mod attribution;
pub mod augment;
pub mod confidence;
pub mod gan;
pub mod model;
pub mod noise;
pub mod onnx;
pub mod train;
pub mod tsne;

use crate::arrays::Arrays;
use crate::confidence::Population;
use crate::error::{Code, Error, Result};
use crate::model::Model;
use crate::noise::DataNoise;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Declares a C export: appends the shared `err: *mut u8, err_cap: usize` parameters and runs
/// the body under [`guarded`], so each export states only its own arguments and work.
macro_rules! export {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty,)* err: *mut u8, err_cap: usize) -> i32 {
            $crate::abi::guarded(err, err_cap, || $body)
        }
    };
}
pub(crate) use export;

export! {
    /// The library's version and build variant, e.g. `0.1.0 cpu` (`ffi/native.ts`).
    fn wna_version(buf: *mut u8, cap: usize, len_out: *mut usize) {
        let variant = if cfg!(feature = "cuda") { "cuda" } else { "cpu" };
        write_text(&format!("{} {variant}", env!("CARGO_PKG_VERSION")), buf, cap, len_out)
    }
}

pub(crate) enum Object {
    Model(Box<Model>),
    Arrays(Arrays),
    Population(Population),
    DataNoise(Arc<DataNoise>),
}

impl Object {
    fn what(&self) -> &'static str {
        match self {
            Object::Model(_) => "a model",
            Object::Arrays(_) => "an array set",
            Object::Population(_) => "a population",
            Object::DataNoise(_) => "a data-noise fit",
        }
    }
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

/// Registers `object` and writes its new handle to `handle_out`.
pub(crate) unsafe fn insert(object: Object, handle_out: *mut u64) -> Result<()> {
    if handle_out.is_null() {
        crate::bail!(InvalidArgument, "ffi: handle output is a null pointer");
    }
    let mut r = registry();
    r.next += 1;
    let h = r.next;
    r.objects.insert(h, Arc::new(Mutex::new(object)));
    *handle_out = h;
    Ok(())
}

pub(crate) fn remove(handle: u64) -> Result<()> {
    registry()
        .objects
        .remove(&handle)
        .map(|_| ())
        .ok_or_else(|| Error::BadHandle(format!("handle {handle} is not open (already closed?)")))
}

/// Runs `f` on the object behind `handle` when `pick` finds the wanted kind in it.
fn with_object<T, O: ?Sized>(
    handle: u64,
    want: &str,
    pick: impl FnOnce(&mut Object) -> Option<&mut O>,
    f: impl FnOnce(&mut O) -> Result<T>,
) -> Result<T> {
    let obj = registry().objects.get(&handle).cloned().ok_or_else(|| {
        Error::BadHandle(format!(
            "handle {handle} is not open (already closed, or never created)"
        ))
    })?;
    let mut guard = obj.lock().unwrap_or_else(|e| e.into_inner());
    let what = guard.what();
    match pick(&mut guard) {
        Some(o) => f(o),
        None => Err(Error::BadHandle(format!(
            "handle {handle} is {what}, not {want}"
        ))),
    }
}

pub(crate) fn with_model<T>(handle: u64, f: impl FnOnce(&mut Model) -> Result<T>) -> Result<T> {
    with_object(
        handle,
        "a model",
        |o| match o {
            Object::Model(m) => Some(&mut **m),
            _ => None,
        },
        f,
    )
}

pub(crate) fn with_arrays<T>(handle: u64, f: impl FnOnce(&Arrays) -> Result<T>) -> Result<T> {
    with_object(
        handle,
        "an array set",
        |o| match o {
            Object::Arrays(a) => Some(a),
            _ => None,
        },
        |a| f(a),
    )
}

pub(crate) fn with_population<T>(
    handle: u64,
    f: impl FnOnce(&mut Population) -> Result<T>,
) -> Result<T> {
    with_object(
        handle,
        "a population",
        |o| match o {
            Object::Population(p) => Some(p),
            _ => None,
        },
        f,
    )
}

pub(crate) fn with_data_noise<T>(
    handle: u64,
    f: impl FnOnce(&Arc<DataNoise>) -> Result<T>,
) -> Result<T> {
    with_object(
        handle,
        "a data-noise fit",
        |o| match o {
            Object::DataNoise(d) => Some(d),
            _ => None,
        },
        |d| f(d),
    )
}

/// Runs `f`, turning errors and panics into a status code plus a message in `err`.
pub(crate) fn guarded(err: *mut u8, err_cap: usize, f: impl FnOnce() -> Result<()>) -> i32 {
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

/// An input buffer; null is allowed only when empty.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T]> {
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

/// An input buffer the caller may leave out (null).
pub(crate) unsafe fn optional<'a, T>(
    ptr: *const T,
    len: usize,
    what: &str,
) -> Result<Option<&'a [T]>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        slice(ptr, len, what).map(Some)
    }
}

pub(crate) unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize, what: &str) -> Result<&'a mut [T]> {
    if ptr.is_null() || len == 0 {
        crate::bail!(
            InvalidArgument,
            "ffi: {what} is an empty or null output buffer"
        );
    }
    Ok(std::slice::from_raw_parts_mut(ptr, len))
}

pub(crate) unsafe fn text<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str> {
    std::str::from_utf8(slice(ptr, len, what)?)
        .map_err(|_| Error::InvalidArgument(format!("ffi: {what} is not UTF-8")))
}

/// Parses the JSON options of `what`: an unknown key, a missing one or a value of the wrong
/// type is an error that names it, never silently ignored or defaulted.
pub(crate) unsafe fn options<T: DeserializeOwned>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<T> {
    parse(text(ptr, len, "options")?, what)
}

/// Parses `text` as the options of `what`.
pub fn parse<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::InvalidArgument(format!("{what}: invalid options: {e}")))
}

pub(crate) fn copy_out<T: Copy>(dst: &mut [T], src: &[T], what: &str) -> Result<()> {
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
pub(crate) unsafe fn write_text(
    s: &str,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
) -> Result<()> {
    if len_out.is_null() {
        crate::bail!(InvalidArgument, "ffi: length output is a null pointer");
    }
    *len_out = s.len();
    if s.len() <= cap && !buf.is_null() {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf, s.len());
    }
    Ok(())
}
