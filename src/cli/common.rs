//! Helpers shared by the subcommands: finding a model by name, file or directory, and
//! loading a data set by name.

use nabla::data::{self, datasets::Dataset};
use nabla::error::{Error, Result};
use nabla::formats::{keras, model_dir};
use nabla::training::ModelConfig;
use nabla::{models, Sequential};
use std::path::Path;

/// What `--model` named.
pub enum ModelSource {
    Builtin(String),
    Config(Box<ModelConfig>),
    Saved(std::path::PathBuf),
}

pub fn model_source(spec: &str) -> Result<ModelSource> {
    let path = Path::new(spec);
    // A built-in name wins over a folder of the same name in the current directory
    // (`--model mlp` after `--out mlp`); `./mlp` names the folder.
    if models::check_name(spec).is_ok() {
        if path.exists() {
            eprintln!(
                "note: using the built-in model '{spec}', not the folder ./{spec} (write \
                 ./{spec} for the folder)"
            );
        }
        return Ok(ModelSource::Builtin(spec.to_string()));
    }
    // A Keras 3 `.keras` file stands for a saved model (`Model::load` reads both).
    if path.is_dir() || (keras::is_keras_model(path) && path.is_file()) {
        return Ok(ModelSource::Saved(path.to_path_buf()));
    }
    if spec.ends_with(".json") || path.is_file() {
        return Ok(ModelSource::Config(Box::new(model_dir::load_config(path)?)));
    }
    models::check_name(spec)?; // unknown names fail here, listing the known ones
    Ok(ModelSource::Builtin(spec.to_string()))
}

/// Builds (or loads) the model that `spec` names.
pub fn build_model(spec: &str, seed: u64) -> Result<Sequential> {
    match model_source(spec)? {
        ModelSource::Builtin(name) => models::build(&name, seed),
        ModelSource::Config(cfg) => {
            Sequential::from_config(&cfg, seed).map_err(|e| Error::format(spec, e.to_string()))
        }
        ModelSource::Saved(dir) => Sequential::load(&dir),
    }
}

/// Builds the model `spec` names for a data set: a zoo model for its sample shape and
/// class count, anything else as `build_model` does.
pub fn build_model_for(spec: &str, ds: &Dataset, seed: u64) -> Result<Sequential> {
    match model_source(spec)? {
        ModelSource::Builtin(name) if models::is_zoo(&name) => {
            models::build_for(&name, &ds.x_train.shape()[1..], num_classes(ds), seed)
        }
        _ => build_model(spec, seed),
    }
}

/// Classes of a data set: its class names, else the largest label + 1.
pub fn num_classes(ds: &Dataset) -> usize {
    if !ds.class_names.is_empty() {
        return ds.class_names.len();
    }
    ds.y_train.to_f32_vec().into_iter().fold(0.0f32, f32::max) as usize + 1
}

/// An image folder (one sub-folder of PNG/JPEG images per class) as a data set: every
/// image resized to `shape` (`[channels, height, width]`), the last `test_split` of each
/// class held out as the test set. Unreadable images are skipped with a warning each.
pub fn load_folder_dataset(dir: &Path, shape: &[usize], test_split: f64) -> Result<Dataset> {
    let &[c, h, w] = shape else {
        return Err(Error::invalid(format!(
            "an image folder needs an image shape C,H,W (e.g. --image-shape 3,32,32), got {shape:?}"
        )));
    };
    let folder = data::load_image_folder(dir, c, h, w)?;
    for (path, why) in &folder.skipped {
        eprintln!("warning: skipped {}: {why}", path.display());
    }
    folder.split(test_split)
}

/// Whether `name` is a built-in data set (an image set or a truth table).
pub fn is_builtin_dataset(name: &str) -> bool {
    data::toy::truth_table(name).is_some() || data::datasets::canonical_name(name).is_ok()
}

/// Whether `--dataset NAME` means a folder: a path that is a folder, unless NAME is also
/// a built-in data set's name (then the built-in is used, with a note; `./mnist` names
/// the folder).
pub fn names_a_folder(name: &str) -> bool {
    let is_dir = Path::new(name).is_dir();
    if is_dir && is_builtin_dataset(name) {
        eprintln!(
            "note: using the built-in data set '{name}', not the folder ./{name} (write \
             ./{name} for the folder)"
        );
        return false;
    }
    is_dir
}

/// Fails on a data set with no test samples (its loss and accuracy would be 0/0).
pub fn check_test_set(ds: &Dataset) -> Result<()> {
    if ds.x_test.shape()[0] == 0 {
        return Err(Error::invalid(format!(
            "data set '{}' has no test samples to evaluate on",
            ds.name
        )));
    }
    Ok(())
}

/// A data set by name: the truth tables (`xor`, `and`, ...) or an image set.
pub fn load_dataset(name: &str) -> Result<Dataset> {
    if let Some(d) = data::toy::truth_table(name) {
        return Ok(d);
    }
    if data::datasets::canonical_name(name).is_err() {
        // load_data lists only the image sets; the command line also takes the tables.
        let known: Vec<&str> = data::datasets::KNOWN_DATASETS
            .iter()
            .chain(data::toy::NAMES.iter())
            .copied()
            .collect();
        return Err(Error::invalid(format!(
            "unknown data set \"{name}\"; known data sets: {}",
            known.join(", ")
        )));
    }
    data::load_data(name)
}

/// Loads a model directory written by `nabla train`, saying so plainly when `dir` is not
/// one (rather than failing on the first file inside it).
pub fn load_saved(dir: &Path) -> Result<Sequential> {
    if keras::is_keras_model(dir) && dir.is_file() {
        return Sequential::load(dir);
    }
    if !dir.is_dir() {
        let problem = if dir.exists() {
            "not a directory"
        } else {
            "no such directory"
        };
        return Err(Error::invalid(format!(
            "{}: {problem}; expected a model directory written by `nabla train` \
             (model.json, weights.safetensors), or a Keras 3 .keras file",
            dir.display()
        )));
    }
    Sequential::load(dir)
}

/// Fails clearly when a model's input does not fit a data set's samples.
pub fn check_fits(model: &Sequential, ds: &Dataset) -> Result<()> {
    let (inputs, outputs) = (model.inputs().len(), model.output_shapes().len());
    if inputs != 1 || outputs != 1 {
        return Err(Error::invalid(format!(
            "model '{}' has {inputs} inputs and {outputs} outputs, but a data set gives one \
             image and one label per sample; the command line takes one-input, one-output \
             models (train others from Rust with Model::fit_many)",
            model.name
        )));
    }
    let sample = &ds.x_train.shape()[1..];
    if !nabla::layers::dims::fits(model.input_shape(), sample) {
        return Err(Error::shape(format!(
            "model '{}' takes inputs {:?} but data set '{}' has samples {:?}",
            model.name,
            model.input_shape(),
            ds.name,
            sample
        )));
    }
    Ok(())
}

/// Fails when a saved model's classes are not the data set's: different class names, or
/// labels beyond the model's outputs.
pub fn check_classes(model: &Sequential, ds: &Dataset) -> Result<()> {
    if !model.class_names.is_empty()
        && !ds.class_names.is_empty()
        && model.class_names != ds.class_names
    {
        let show = |c: &[String]| {
            let mut s = c.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            if c.len() > 5 {
                s += &format!(", ... ({} in all)", c.len());
            }
            s
        };
        return Err(Error::invalid(format!(
            "model '{}' was trained on the classes [{}] but data set '{}' has the classes [{}]",
            model.name,
            show(&model.class_names),
            ds.name,
            show(&ds.class_names)
        )));
    }
    // Labels are classes only under a cross-entropy (a regression's targets are not).
    let classifies = matches!(
        model.loss().and_then(|l| l.keras()),
        Some(
            nabla::KerasLoss::SparseCategoricalCrossentropy { .. }
                | nabla::KerasLoss::CategoricalCrossentropy { .. }
                | nabla::KerasLoss::BinaryCrossentropy { .. }
        )
    );
    if !classifies {
        return Ok(());
    }
    let outputs = nabla::layers::dims::numel(model.output_shape()).unwrap_or(0);
    let classes = if outputs == 1 { 2 } else { outputs };
    let labels = nabla::training::metrics::label_classes(&ds.y_test);
    if let Some(&max) = labels.iter().max() {
        if outputs > 0 && max >= classes {
            return Err(Error::invalid(format!(
                "data set '{}' has labels up to {max}, but model '{}' predicts {classes} classes",
                ds.name, model.name
            )));
        }
    }
    Ok(())
}

/// The line `train` and `evaluate` both print for the test split, so they can be
/// compared digit for digit.
pub fn test_line(ev: &nabla::training::Evaluation) -> String {
    // Metrics other than accuracy (r2, auc, ...) follow, in name order.
    let others: String = ev
        .metrics
        .iter()
        .filter(|(k, _)| *k != "accuracy")
        .map(|(k, v)| format!(" - {k} {v:.4}"))
        .collect();
    let line = match ev.accuracy() {
        Some(a) => format!(
            "Test: loss {:.6} - accuracy {:.4} ({:.2}%)",
            ev.loss,
            a,
            100.0 * a
        ),
        None => format!("Test: loss {:.6}", ev.loss),
    };
    line + &others
}

/// Batch size used for every evaluation, so train and evaluate compute identically.
pub const EVAL_BATCH: usize = 500;
