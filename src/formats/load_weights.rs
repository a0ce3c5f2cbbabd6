//! `Model::load_weights(path, by_name, skip_mismatch)`: weights from a saved model into
//! a model built another way, for transfer learning (Keras' `load_weights`).
//!
//! Weights match by their layer-qualified names (`conv2d_1/kernel`, nested models'
//! `MODEL/LAYER/WEIGHT`), the keys of `weights.safetensors`:
//! - `by_name = false`: the file must be this model's: every weight present, nothing
//!   else in the file (what `Model::load` checks).
//! - `by_name = true`: the layers whose names are found take their weights; a weight of
//!   the model not in the file keeps its value and is reported as missing, a tensor of
//!   the file not in the model is reported as unused. A new top with other layer names
//!   starts fresh.
//! - `skip_mismatch = true`: a weight whose shape differs from the file's (a new top
//!   with the old names and another number of classes) keeps its value and is reported
//!   as skipped, with both shapes, instead of failing the load.
//!
//! A layer loads whole or not at all: if one of its weights is skipped or missing, none
//! of its weights is loaded (a kernel from one model and a bias from another is no
//! layer of either). Errors name the file and every weight at fault.

use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::training::Sequential;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What `load_weights` did, weight by weight (layer-qualified names).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// The file the weights came from.
    pub path: PathBuf,
    /// Weights that took the file's values.
    pub loaded: Vec<String>,
    /// Weights left as they were, with the reason (shape mismatch, or another weight of
    /// the same layer skipped or missing).
    pub skipped: Vec<(String, String)>,
    /// Weights of the model that the file does not hold (left as they were).
    pub missing: Vec<String>,
    /// Tensors of the file that no weight of the model takes.
    pub unused: Vec<String>,
}

impl LoadReport {
    /// A few lines for people: counts, then every weight skipped, missing or unused.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "Loaded {} weights from {}; skipped {}, missing {}, unused {}\n",
            self.loaded.len(),
            self.path.display(),
            self.skipped.len(),
            self.missing.len(),
            self.unused.len()
        );
        for (name, why) in &self.skipped {
            s += &format!("  skipped {name}: {why}\n");
        }
        for name in &self.missing {
            s += &format!("  missing {name}: not in the file, starts fresh\n");
        }
        for name in &self.unused {
            s += &format!("  unused  {name}: no such weight in the model\n");
        }
        s
    }
}

/// `path` is a weights file, or a saved model's folder (its `weights.safetensors`).
fn weights_path(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let file = path.join(super::model_dir::WEIGHTS_FILE);
        if !file.is_file() {
            return Err(Error::invalid(format!(
                "{} holds no {} (a folder saved by `nabla train --out` or Model::save)",
                path.display(),
                super::model_dir::WEIGHTS_FILE
            )));
        }
        return Ok(file);
    }
    Ok(path.to_path_buf())
}

/// The layer a weight belongs to: its name without the last component.
fn layer_of(name: &str) -> &str {
    name.rsplit_once('/').map_or(name, |(layer, _)| layer)
}

impl Sequential {
    /// Loads weights from a safetensors file or a saved model's folder; see the module
    /// docs for `by_name` and `skip_mismatch`. Returns what was loaded, skipped and
    /// missing; nothing is changed when it returns an error.
    pub fn load_weights(
        &mut self,
        path: impl AsRef<Path>,
        by_name: bool,
        skip_mismatch: bool,
    ) -> Result<LoadReport> {
        let path = weights_path(path.as_ref())?;
        let tensors = super::safetensors_io::load(&path)?.into_iter().collect();
        self.load_named_tensors(
            &path,
            tensors,
            Vec::new(),
            &BTreeMap::new(),
            by_name,
            skip_mismatch,
        )
    }

    /// The core of `load_weights` for tensors already named as this model's weights
    /// (`formats::torch_names` renames PyTorch's): `unmapped` are tensors of the file
    /// that have no name here (reported as unused, or errors unless `by_name`), and
    /// `origin` gives a weight's name in the file where it differs, for messages and the
    /// report's unused list.
    pub(crate) fn load_named_tensors(
        &mut self,
        path: &Path,
        mut tensors: BTreeMap<String, Tensor>,
        unmapped: Vec<String>,
        origin: &BTreeMap<String, String>,
        by_name: bool,
        skip_mismatch: bool,
    ) -> Result<LoadReport> {
        let label = |name: &str| match origin.get(name) {
            Some(o) => format!("'{o}' (nabla's '{name}')"),
            None => format!("'{name}'"),
        };
        let params = self.params();
        let mut report = LoadReport {
            path: path.to_path_buf(),
            ..Default::default()
        };
        let mut problems = Vec::new();
        // The layers that cannot load whole (see the module docs).
        let mut broken: BTreeSet<&str> = BTreeSet::new();
        let mut found = Vec::new();
        for p in &params {
            let want = p.var.shape();
            match tensors.remove(&p.name) {
                None if by_name => {
                    report.missing.push(p.name.clone());
                    broken.insert(layer_of(&p.name));
                }
                None => problems.push(format!("missing tensor {} {:?}", label(&p.name), want)),
                Some(t) if t.shape() != want.as_slice() => {
                    let why = format!(
                        "the file has shape {:?}, the model needs {want:?}",
                        t.shape()
                    );
                    if skip_mismatch {
                        report.skipped.push((p.name.clone(), why));
                        broken.insert(layer_of(&p.name));
                    } else {
                        problems.push(format!("tensor {}: {why}", label(&p.name)));
                    }
                }
                Some(t) => found.push((p, t)),
            }
        }
        report.unused = tensors
            .into_keys()
            .map(|n| origin.get(&n).cloned().unwrap_or(n))
            .collect();
        report.unused.extend(unmapped);
        if !by_name {
            for name in &report.unused {
                problems.push(format!(
                    "unexpected tensor '{name}' (no such weight in the model; load by name \
                     to leave it out)"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(Error::format(path, problems.join("; ")));
        }
        for (p, t) in found {
            if broken.contains(layer_of(&p.name)) {
                report.skipped.push((
                    p.name.clone(),
                    "another weight of its layer was skipped or missing".into(),
                ));
                continue;
            }
            // A weight saved in another element type (a half-precision copy) loads into
            // the model's own.
            let dtype = p.var.value_ref().dtype();
            p.var.set_value(t.to_dtype(dtype));
            report.loaded.push(p.name.clone());
        }
        Ok(report)
    }
}
