//! Named f32 arrays with shapes: how a long computation hands its results to the caller.

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Arrays(pub BTreeMap<String, (Vec<usize>, Vec<f32>)>);

impl Arrays {
    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        self.0.insert(name.into(), (shape, data));
    }

    pub fn get(&self, name: &str) -> Option<&(Vec<usize>, Vec<f32>)> {
        self.0.get(name)
    }

    /// `{"name": [shape...], ...}` for the TypeScript side.
    pub fn manifest(&self) -> String {
        let m: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(k, (shape, _))| (k.clone(), serde_json::json!(shape)))
            .collect();
        serde_json::Value::Object(m).to_string()
    }
}
