//! Named f32 arrays with shapes, plus a typed summary: how a long computation hands its results
//! to the caller. Counts and sums that must stay exact (a histogram, a sample count, softmax
//! mass a merge adds up) go in the summary as u64 and f64, never through an f32 array.

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Arrays {
    arrays: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    summary: serde_json::Map<String, serde_json::Value>,
}

/// One array as the manifest describes it.
#[derive(Serialize)]
struct ArrayEntry<'a> {
    name: &'a str,
    dtype: &'static str,
    shape: &'a [usize],
}

/// What `ffi/arrays.ts` reads before it copies the arrays out.
#[derive(Serialize)]
struct Manifest<'a> {
    arrays: Vec<ArrayEntry<'a>>,
    summary: &'a serde_json::Map<String, serde_json::Value>,
}

impl Arrays {
    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        self.arrays.insert(name.into(), (shape, data));
    }

    pub fn get(&self, name: &str) -> Option<&(Vec<usize>, Vec<f32>)> {
        self.arrays.get(name)
    }

    /// Sets the typed summary: a struct whose fields become the manifest's `summary`.
    pub fn set_summary<T: Serialize>(&mut self, summary: &T) -> crate::error::Result<()> {
        match serde_json::to_value(summary)? {
            serde_json::Value::Object(map) => {
                self.summary = map;
                Ok(())
            }
            _ => crate::bail!(InvalidArgument, "arrays: a summary must be a struct"),
        }
    }

    /// A field of the summary, for Rust callers (tests, merges).
    pub fn summary(&self, field: &str) -> Option<&serde_json::Value> {
        self.summary.get(field)
    }

    /// `{"arrays": [{name, dtype, shape}], "summary": {...}}` for the TypeScript side.
    pub fn manifest(&self) -> String {
        let arrays = self
            .arrays
            .iter()
            .map(|(name, (shape, _))| ArrayEntry {
                name,
                dtype: "f32",
                shape,
            })
            .collect();
        let m = Manifest {
            arrays,
            summary: &self.summary,
        };
        serde_json::to_string(&m).expect("a manifest of names, numbers and JSON values")
    }
}
