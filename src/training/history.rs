//! `History`: what `fit` returns, Keras' `history.history` plus the epochs that matter
//! for reading the curves (the best epoch of an EarlyStopping monitor, the early stop).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    /// Per-epoch values: `loss`, `accuracy`, `val_loss`, `val_accuracy`, `lr`, `seconds`,
    /// `images_per_second`.
    pub history: BTreeMap<String, Vec<f32>>,
    /// Epoch numbers (0-based) in the order they ran.
    pub epoch: Vec<usize>,
    /// Epoch whose weights were restored by EarlyStopping(restore_best_weights).
    #[serde(default)]
    pub best_epoch: Option<usize>,
    /// Epoch after which EarlyStopping stopped training.
    #[serde(default)]
    pub stopped_epoch: Option<usize>,
}

impl History {
    pub fn push(&mut self, epoch: usize, logs: &BTreeMap<String, f32>) {
        self.epoch.push(epoch);
        for (k, v) in logs {
            self.history.entry(k.clone()).or_default().push(*v);
        }
    }

    pub fn get(&self, key: &str) -> Option<&[f32]> {
        self.history.get(key).map(|v| v.as_slice())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("history serializes")
    }

    pub fn load(path: &Path) -> Result<History> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::format(path, e.to_string()))
    }
}
