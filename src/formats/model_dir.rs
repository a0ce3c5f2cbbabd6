//! A saved model is a directory:
//! - `model.json`: the architecture (`ModelConfig`: input shape, layers, compile
//!   settings, class names), so `nabla evaluate DIR` rebuilds the model with no code;
//! - `weights.safetensors`: every weight under its layer-qualified name
//!   (`conv2d/kernel`, `batch_normalization/moving_mean`, ...);
//! - `optimizer.safetensors`: the optimizer state, to resume training.
//!
//! Loading checks names, shapes and dtypes against the architecture and says exactly
//! what does not match. A save replaces all these files as one unit
//! (`file_set`): a kill or a full disk at any instant leaves the old model or the new one.

use crate::error::{Error, Result};
use crate::nn::layers::LayerConfig;
use crate::training::{ModelConfig, NodeConfig, Sequential};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const CONFIG_FILE: &str = "model.json";
pub const WEIGHTS_FILE: &str = "weights.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// The saved-model API on the model itself (`model.save(dir)`, `Model::load(dir)`),
/// written here so that training does not depend on file formats.
impl Sequential {
    /// Saves architecture, weights and optimizer state into a directory.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save(self, dir)
    }

    /// Loads a model saved by `save`, or a Keras 3 `.keras` file (`formats::keras`).
    pub fn load(dir: &Path) -> Result<Sequential> {
        load(dir)
    }
}

/// Files that describe one generation of weights (how they were trained and scored):
/// a save that does not bring its own removes the old ones, so they can never describe
/// other weights than those beside them.
/// (`preprocessing.json` and `split.json` are the CLI's record of a data file's encoding
/// and train/test split, `vocabulary.json` a text model's vocabulary.)
pub const RUN_FILES: [&str; 5] = [
    "run.json",
    "history.json",
    "preprocessing.json",
    "split.json",
    "vocabulary.json",
];

/// Saves the model into `dir` as one unit (see `file_set`): at every instant the folder
/// holds the old model or the new one, whole. `run.json` and `history.json` of an
/// earlier save are removed.
pub fn save(model: &Sequential, dir: &Path) -> Result<()> {
    save_with(model, dir, &[])
}

/// Saves the model together with files that describe it (`run.json`, `history.json`,
/// given as name and bytes), all in the same unit.
pub fn save_with(model: &Sequential, dir: &Path, extra: &[(&str, &[u8])]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let cfg = serde_json::to_string_pretty(&model.config()).expect("config serializes");
    let weights: Vec<_> = model
        .params()
        .into_iter()
        .map(|p| (p.name, p.var.value()))
        .collect();
    let weights = super::safetensors_io::to_bytes(&weights)?;
    let optimizer = match model.optimizer() {
        Some(opt) => Some(super::safetensors_io::to_bytes(&opt.state())?),
        None => None,
    };
    let mut files: Vec<(&str, &[u8])> =
        vec![(CONFIG_FILE, cfg.as_bytes()), (WEIGHTS_FILE, &weights)];
    if let Some(o) = &optimizer {
        files.push((OPTIMIZER_FILE, o));
    }
    files.extend_from_slice(extra);
    let mut remove: Vec<&str> = RUN_FILES.to_vec();
    if optimizer.is_none() {
        remove.push(OPTIMIZER_FILE);
    }
    super::file_set::replace_files(dir, &files, &remove)
}

/// Fails unless `dir` can take a save (created if missing): checked before training,
/// so that an unwritable `--out` does not cost an epoch. Also finishes or discards a
/// save that a kill interrupted.
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    super::file_set::recover(dir)?;
    for name in [CONFIG_FILE, WEIGHTS_FILE, OPTIMIZER_FILE]
        .into_iter()
        .chain(RUN_FILES)
    {
        let path = dir.join(name);
        if path.is_dir() {
            return Err(Error::invalid(format!(
                "{}: not a file, so a save cannot replace it",
                path.display()
            )));
        }
    }
    tempfile::Builder::new()
        .prefix(".nabla-probe.")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| Error::io(dir, e))
}

/// Reads a model config (`model.json` or a hand-written one). Errors name the file and,
/// for a layer, its position and class: `net.json: bad model config: layer 2 (Dense):
/// unknown activation "relux"; known: ...`.
pub fn load_config(path: &Path) -> Result<ModelConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_config(&text).map_err(|msg| Error::format(path, msg))
}

/// Parses a model config's text; the error says which layer is wrong and how (callers
/// add the file's name).
pub fn parse_config(text: &str) -> std::result::Result<ModelConfig, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    // Layers one by one first, so that an error can say which layer it is about.
    if let Some(layers) = value.get("layers").and_then(|l| l.as_array()) {
        for (i, layer) in layers.iter().enumerate() {
            let Err(e) = NodeConfig::deserialize(layer) else {
                continue;
            };
            let n = i + 1;
            return Err(match layer.get("class_name").and_then(|c| c.as_str()) {
                Some(c) if LayerConfig::layer_type(c).is_none() => format!(
                    "bad model config: layer {n}: unknown layer class \"{c}\"; known: {}",
                    LayerConfig::class_names().join(", ")
                ),
                Some(c) => format!("bad model config: layer {n} ({c}): {e}"),
                None => format!("bad model config: layer {n}: {e}"),
            });
        }
    }
    serde_json::from_str(text).map_err(|e| format!("bad model config: {e}"))
}

pub fn load(dir: &Path) -> Result<Sequential> {
    // The one place a saved model is opened: a `.keras` file is read as Keras saved it.
    if super::keras::is_keras_model(dir) && !dir.is_dir() {
        return super::keras::load_keras(dir);
    }
    // A save that a kill interrupted is finished (committed) or discarded first.
    super::file_set::recover(dir)?;
    let cfg = load_config(&dir.join(CONFIG_FILE))?;
    let mut model = Sequential::from_config(&cfg, 0)
        .map_err(|e| Error::format(dir.join(CONFIG_FILE), e.to_string()))?;
    load_weights(&mut model, &dir.join(WEIGHTS_FILE))?;
    let opt_path = dir.join(OPTIMIZER_FILE);
    if opt_path.exists() {
        if let Some(opt) = model.optimizer_mut() {
            let state = super::safetensors_io::load(&opt_path)?;
            opt.load_state(&state)
                .map_err(|e| Error::format(&opt_path, e.to_string()))?;
        }
    }
    Ok(model)
}

/// Loads weights by name into a built model: every weight must be present with its
/// shape, and the file may hold nothing else.
pub fn load_weights(model: &mut Sequential, path: &Path) -> Result<()> {
    let mut tensors: BTreeMap<String, _> = super::safetensors_io::load(path)?.into_iter().collect();
    let params = model.params();
    let mut problems = Vec::new();
    let mut values = Vec::new();
    for p in &params {
        match tensors.remove(&p.name) {
            None => problems.push(format!("missing tensor '{}' {:?}", p.name, p.var.shape())),
            Some(t) if t.shape() != p.var.shape().as_slice() => problems.push(format!(
                "tensor '{}' has shape {:?}, the model needs {:?}",
                p.name,
                t.shape(),
                p.var.shape()
            )),
            // A weight saved in another element type (a half-precision copy) loads
            // into the model's own (f32 for training).
            Some(t) => values.push(t.to_dtype(p.var.value_ref().dtype())),
        }
    }
    for name in tensors.keys() {
        problems.push(format!(
            "unexpected tensor '{name}' (no such weight in the model)"
        ));
    }
    if !problems.is_empty() {
        return Err(Error::format(path, problems.join("; ")));
    }
    model.set_weights(&values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_model(seed: u64) -> Sequential {
        let mut m = Sequential::with_seed(&[4], seed);
        m.add(crate::nn::layers::DenseConfig::new(3)).unwrap();
        m.compile(
            crate::losses::KerasLoss::MeanSquaredError,
            crate::optimizers::Optimizer::from_name("adam", None).unwrap(),
            &[],
        )
        .unwrap();
        m
    }

    #[test]
    fn a_save_killed_at_any_step_leaves_the_old_or_the_new_model_whole() {
        let (old, new) = (small_model(1), small_model(2));
        let (mut saw_old, mut saw_new) = (false, false);
        for steps in 0..12 {
            let dir = tempfile::tempdir().unwrap();
            save_with(&old, dir.path(), &[("run.json", b"old run")]).unwrap();
            super::super::file_set::fail_after(Some(steps));
            let res = save(&new, dir.path());
            super::super::file_set::fail_after(None);
            let back = load(dir.path()).unwrap();
            let run = std::fs::read(dir.path().join("run.json")).ok();
            let got: Vec<Vec<f32>> = back.get_weights().iter().map(|t| t.to_f32_vec()).collect();
            let of = |m: &Sequential| -> Vec<Vec<f32>> {
                m.get_weights().iter().map(|t| t.to_f32_vec()).collect()
            };
            if got == of(&old) {
                assert!(res.is_err(), "step {steps}");
                assert_eq!(run.as_deref(), Some(&b"old run"[..]), "step {steps}");
                saw_old = true;
            } else {
                assert_eq!(got, of(&new), "step {steps}");
                // The old run.json described the old weights: gone with them.
                assert_eq!(run, None, "step {steps}");
                saw_new = true;
            }
            let names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect();
            assert!(names.is_empty(), "step {steps}: left {names:?}");
        }
        assert!(saw_old && saw_new);
    }

    #[test]
    fn every_known_class_name_is_a_layer() {
        for c in LayerConfig::class_names() {
            let v = serde_json::json!({"class_name": c, "config": {}});
            if let Err(e) = LayerConfig::deserialize(&v) {
                assert!(!e.to_string().contains("unknown layer class"), "{c}: {e}");
            }
        }
    }

    #[test]
    fn config_errors_say_which_layer() {
        let cfg = |layer: &str| {
            format!(
                r#"{{"input_shape": [4], "layers": [{{"class_name": "Dense", "config": {{"units": 2}}}}, {layer}]}}"#
            )
        };
        let err = |text: &str| parse_config(text).unwrap_err();
        let e = err(&cfg(r#"{"class_name": "Dense2", "config": {"units": 2}}"#));
        assert!(
            e.contains("layer 2: unknown layer class \"Dense2\"; known: Dense,"),
            "{e}"
        );
        let e = err(&cfg(
            r#"{"class_name": "Dense", "config": {"units": 2, "activation": "relux"}}"#,
        ));
        assert!(
            e.contains("layer 2 (Dense): unknown activation \"relux\""),
            "{e}"
        );
        let e = err(&cfg(r#"{"config": {"units": 2}}"#));
        assert!(e.contains("layer 2: missing field `class_name`"), "{e}");
        let e = err("{\"input_shape\": [4], \"layers\": [");
        assert!(e.starts_with("invalid JSON: EOF"), "{e}");
        let e = err(r#"{"input_shape": [4], "layers": [], "nme": "x"}"#);
        assert!(e.contains("unknown field `nme`"), "{e}");
        assert!(parse_config(&cfg(r#"{"class_name": "Flatten", "config": {}}"#)).is_ok());
    }
}
