//! The user's own data files on the command line: CSV tables, NumPy `.npy`/`.npz` and
//! MATLAB `.mat` arrays, turned into a train/test `Dataset` by a seeded (stratified for
//! classes) split, with the preprocessing saved beside the model (`preprocessing.json`)
//! so that `evaluate` and `predict` apply the same one.
//!
//! - Tables: features standardised with the train part's mean and deviation; the target
//!   by `--target` (default: the last column); `--task` picks the output and loss.
//! - Arrays: `--x`/`--y` name the members (defaults `images`/`labels`, the notMNIST
//!   file's); samples on the first axis, or on the last (`--samples-axis last`, MATLAB's
//!   habit; `auto` takes the axis whose length is the label count); uint8 values scaled
//!   to [0, 1]; 2-D samples (H, W) get a channel axis (1, H, W).

use clap::{Args, ValueEnum};
use nabla::data::csv_table::{load_csv, CsvOptions, TableSchema};
use nabla::data::datasets::Dataset;
use nabla::data::mat::{load_mat, numeric_variable};
use nabla::data::ndarray::NdArray;
use nabla::data::npz::load_npz;
use nabla::data::split::{train_test_split, Split};
use nabla::data::standardize::Standardizer;
use nabla::error::{Error, Result};
use nabla::layers::keras::{Dense, Flatten, Relu, Sigmoid, Softmax};
use nabla::{KerasLoss, Sequential, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Saved in the model's folder by `nabla train` on a user file.
pub const PREPROCESSING_FILE: &str = "preprocessing.json";
/// The row indices of the split, for baselines that want the same one.
pub const SPLIT_FILE: &str = "split.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// One output, mean squared error; metrics MAE, RMSE, R².
    Regression,
    /// One sigmoid output, binary cross-entropy; accuracy, precision, recall, AUC.
    Binary,
    /// One softmax output per class, categorical cross-entropy.
    Multiclass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplesAxis {
    Auto,
    First,
    Last,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct UserDataArgs {
    /// For a CSV table: the target column (default: the last column).
    #[arg(long)]
    pub target: Option<String>,
    /// For a CSV table: regression, binary or multiclass. Default: binary for a 0/1
    /// target, multiclass for a text target or whole numbers with at most 20 distinct
    /// values, else regression.
    #[arg(long, value_enum)]
    pub task: Option<Task>,
    /// For a CSV table: refuse text columns instead of one-hot encoding them.
    #[arg(long)]
    pub no_one_hot: bool,
    /// For .npz/.mat: the member holding the inputs.
    #[arg(long, default_value = "images")]
    pub x: String,
    /// For .npz/.mat: the member holding the labels.
    #[arg(long, default_value = "labels")]
    pub y: String,
    /// For .npy/.npz/.mat: where the samples are in --x's axes.
    #[arg(long, value_enum, default_value = "auto")]
    pub samples_axis: SamplesAxis,
    /// For a CSV table: the column holding each row's weight in the training loss
    /// (numbers >= 0; Keras' sample_weight). It is not a feature. The test split and
    /// validation stay unweighted.
    #[arg(long, value_name = "COLUMN")]
    #[serde(default)]
    pub sample_weight: Option<String>,
}

/// How the model's inputs were made from the file, replayed by `evaluate`/`predict`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preprocessing {
    pub task: Task,
    /// Tables: the columns' encoding.
    pub schema: Option<TableSchema>,
    /// Tables: the train part's feature means and deviations.
    pub standardizer: Option<Standardizer>,
    /// Arrays: uint8 inputs divided by 255.
    pub scale_u8: bool,
    /// The file trained on, how it was read, and the split's seed and fraction.
    pub dataset: String,
    pub args: UserDataArgs,
    pub seed: u64,
    pub test_split: f64,
}

/// Whether `name` is a user data file this module reads.
pub fn is_user_file(name: &str) -> bool {
    let p = Path::new(name);
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(ext.as_str(), "csv" | "npz" | "npy" | "mat")
}

/// Loads and splits a user file; also returns the preprocessing and the split.
pub fn load(
    path: &Path,
    a: &UserDataArgs,
    test_split: f64,
    seed: u64,
) -> Result<(Dataset, Preprocessing, Split)> {
    load_weighted(path, a, test_split, seed).map(|(ds, prep, split, _)| (ds, prep, split))
}

/// Fails unless `--sample-weight` (if given) can apply to `dataset`: a CSV table.
pub fn check_sample_weight_option(a: &UserDataArgs, dataset: Option<&str>) -> Result<()> {
    let Some(col) = &a.sample_weight else {
        return Ok(());
    };
    let csv = dataset.is_some_and(|d| {
        Path::new(d)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    });
    if csv {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "--sample-weight {col}: sample weights are read from a column of a CSV data \
             file (--dataset table.csv), not from {}",
            dataset.map_or("the model's default data set".to_string(), |d| format!(
                "'{d}'"
            ))
        )))
    }
}

/// `load`, also returning the weights of the train part's rows (`--sample-weight`,
/// CSV tables only), in the order of `x_train`.
pub fn load_weighted(
    path: &Path,
    a: &UserDataArgs,
    test_split: f64,
    seed: u64,
) -> Result<(Dataset, Preprocessing, Split, Option<Tensor>)> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = path.display().to_string();
    if ext == "csv" {
        let opts = CsvOptions {
            target: a.target.clone(),
            one_hot: !a.no_one_hot,
            weight: a.sample_weight.clone(),
        };
        let table = load_csv(path, &opts).map_err(|e| match &a.sample_weight {
            Some(col) if e.to_string().contains(&format!("'{col}'")) => {
                Error::invalid(format!("--sample-weight {col}: {e}"))
            }
            _ => e,
        })?;
        let task = match a.task {
            Some(t) => t,
            None if !table.schema.target_classes.is_empty() => Task::Multiclass,
            None if table.target.iter().all(|&v| v == 0.0 || v == 1.0) => Task::Binary,
            None if looks_like_classes(&table.target) => Task::Multiclass,
            None => Task::Regression,
        };
        let (y, class_names) = targets_for(task, &table.target, &table.schema.target_classes)
            .map_err(|e| Error::format(path, e.to_string()))?;
        let cols = table.num_features();
        let classes = class_indices(task, &y);
        let split = train_test_split(table.rows, classes.as_deref(), test_split, seed)?;
        let rows = |idx: &[usize]| -> Vec<f32> {
            idx.iter()
                .flat_map(|&i| table.features[i * cols..(i + 1) * cols].iter().copied())
                .collect()
        };
        let mut x_train = rows(&split.train);
        let mut x_test = rows(&split.test);
        let standardizer = Standardizer::fit(&x_train, cols);
        standardizer.apply(&mut x_train);
        standardizer.apply(&mut x_test);
        let pick = |idx: &[usize]| idx.iter().map(|&i| y[i]).collect::<Vec<f32>>();
        let weights = (a.sample_weight.is_some())
            .then(|| {
                Tensor::try_from_vec(
                    split.train.iter().map(|&i| table.weights[i]).collect(),
                    &[split.train.len()],
                )
            })
            .transpose()?;
        let ds = Dataset {
            x_train: Tensor::try_from_vec(x_train, &[split.train.len(), cols])?,
            y_train: Tensor::try_from_vec(pick(&split.train), &[split.train.len()])?,
            x_test: Tensor::try_from_vec(x_test, &[split.test.len(), cols])?,
            y_test: Tensor::try_from_vec(pick(&split.test), &[split.test.len()])?,
            class_names,
            name: name.clone(),
        };
        let prep = Preprocessing {
            task,
            schema: Some(table.schema),
            standardizer: Some(standardizer),
            scale_u8: false,
            dataset: name,
            args: a.clone(),
            seed,
            test_split,
        };
        return Ok((ds, prep, split, weights));
    }
    check_sample_weight_option(a, Some(&name))?;
    let (x, y) = match ext.as_str() {
        "npz" => {
            let arrays = load_npz(path)?;
            let get = |key: &str| {
                arrays
                    .iter()
                    .find(|(n, _)| n == key)
                    .map(|(_, a)| a.clone())
                    .ok_or_else(|| {
                        let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
                        Error::format(
                            path,
                            format!(
                                "no array '{key}' (give --x/--y); it holds: {}",
                                names.join(", ")
                            ),
                        )
                    })
            };
            (get(&a.x)?, get(&a.y)?)
        }
        "mat" => {
            let vars = load_mat(path)?;
            let get = |key: &str| {
                numeric_variable(&vars, key).map_err(|e| Error::format(path, e.to_string()))
            };
            (get(&a.x)?, get(&a.y)?)
        }
        _ => {
            return Err(Error::invalid(format!(
                "{name}: a .npy file holds one array; put inputs and labels in one .npz \
                 (np.savez(path, images=x, labels=y)) and give --x/--y"
            )))
        }
    };
    let (ds, prep, split) = array_dataset(path, x, y, a, test_split, seed)?;
    Ok((ds, prep, split, None))
}

fn array_dataset(
    path: &Path,
    x: NdArray,
    y: NdArray,
    a: &UserDataArgs,
    test_split: f64,
    seed: u64,
) -> Result<(Dataset, Preprocessing, Split)> {
    let name = path.display().to_string();
    let n = y.numel();
    let last = x.shape.last().copied();
    let x = match a.samples_axis {
        SamplesAxis::Last => x.last_axis_first(),
        SamplesAxis::Auto if x.shape.first() != Some(&n) && last == Some(n) => x.last_axis_first(),
        _ => x,
    };
    if x.shape.first() != Some(&n) {
        return Err(Error::format(
            path,
            format!(
                "'{}' has shape {:?} but '{}' holds {n} labels: the sample axis must match \
                 (see --samples-axis)",
                a.x, x.shape, a.y
            ),
        ));
    }
    let scale_u8 = x.dtype == "uint8";
    let mut shape = x.shape.clone();
    if shape.len() == 3 {
        shape.insert(1, 1); // (N, H, W) -> (N, 1, H, W)
    }
    let per = x.numel().checked_div(n).unwrap_or(0);
    let data: Vec<f32> = if scale_u8 {
        x.data.iter().map(|v| v / 255.0).collect()
    } else {
        x.data
    };
    let task = a.task.unwrap_or(Task::Multiclass);
    let (labels, class_names) = targets_for(task, &y.data, &[])?;
    let classes = class_indices(task, &labels);
    let split = train_test_split(n, classes.as_deref(), test_split, seed)?;
    let part = |idx: &[usize]| -> Result<(Tensor, Tensor)> {
        let xs: Vec<f32> = idx
            .iter()
            .flat_map(|&i| data[i * per..(i + 1) * per].iter().copied())
            .collect();
        let mut s = shape.clone();
        s[0] = idx.len();
        Ok((
            Tensor::try_from_vec(xs, &s)?,
            Tensor::try_from_vec(idx.iter().map(|&i| labels[i]).collect(), &[idx.len()])?,
        ))
    };
    let (x_train, y_train) = part(&split.train)?;
    let (x_test, y_test) = part(&split.test)?;
    let ds = Dataset {
        x_train,
        y_train,
        x_test,
        y_test,
        class_names,
        name: name.clone(),
    };
    let prep = Preprocessing {
        task,
        schema: None,
        standardizer: None,
        scale_u8,
        dataset: name,
        args: a.clone(),
        seed,
        test_split,
    };
    Ok((ds, prep, split))
}

/// The targets as the task needs them: regression values as they are; classes as
/// indices 0..K (numeric labels mapped through their sorted distinct values, so labels
/// 1, 2, 3 become classes 0, 1, 2 named "1", "2", "3").
fn targets_for(
    task: Task,
    values: &[f32],
    text_classes: &[String],
) -> Result<(Vec<f32>, Vec<String>)> {
    if task == Task::Regression {
        if !text_classes.is_empty() {
            return Err(Error::invalid(
                "--task regression needs a numeric target column",
            ));
        }
        return Ok((values.to_vec(), Vec::new()));
    }
    let (idx, names) = if text_classes.is_empty() {
        let mut distinct: Vec<f32> = values.to_vec();
        distinct.sort_by(f32::total_cmp);
        distinct.dedup();
        if distinct.len() > 1000 {
            return Err(Error::invalid(format!(
                "the target has {} distinct values: a regression target? (--task regression)",
                distinct.len()
            )));
        }
        let idx = values
            .iter()
            .map(|v| distinct.binary_search_by(|d| d.total_cmp(v)).unwrap_or(0) as f32)
            .collect();
        (
            idx,
            distinct.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        )
    } else {
        (values.to_vec(), text_classes.to_vec())
    };
    if task == Task::Binary && names.len() != 2 {
        return Err(Error::invalid(format!(
            "--task binary needs a target with 2 classes, it has {} ({})",
            names.len(),
            names.join(", ")
        )));
    }
    Ok((idx, names))
}

/// Whole numbers with at most 20 distinct values: class labels rather than a quantity.
fn looks_like_classes(y: &[f32]) -> bool {
    let mut d: Vec<f32> = y.to_vec();
    d.sort_by(f32::total_cmp);
    d.dedup();
    d.len() <= 20 && d.iter().all(|v| v.fract() == 0.0)
}

fn class_indices(task: Task, y: &[f32]) -> Option<Vec<usize>> {
    (task != Task::Regression).then(|| y.iter().map(|&v| v as usize).collect())
}

/// The default model for a user data set: an MLP (64-64 ReLU) with the task's output:
/// `Dense(1)` for regression, `Dense(1, sigmoid)` for binary, `Dense(K, softmax)` for K
/// classes. Multi-axis samples are flattened first.
pub fn default_model(ds: &Dataset, task: Task, seed: u64) -> Result<Sequential> {
    let sample = &ds.x_train.shape()[1..];
    let mut m = Sequential::with_seed(sample, seed);
    m.name = "mlp".into();
    if sample.len() > 1 {
        m.add(Flatten())?;
    }
    m.add(Dense(64).activation(Relu))?
        .add(Dense(64).activation(Relu))?;
    match task {
        Task::Regression => m.add(Dense(1))?,
        Task::Binary => m.add(Dense(1).activation(Sigmoid))?,
        Task::Multiclass => m.add(Dense(ds.class_names.len().max(2)).activation(Softmax))?,
    };
    Ok(m)
}

/// The task's loss (categorical cross-entropy for classes: the labels are one-hot
/// encoded with `to_categorical` by the caller) and the metrics logged.
pub fn loss_and_metrics(task: Task) -> (KerasLoss, &'static [&'static str]) {
    match task {
        Task::Regression => (KerasLoss::MeanSquaredError, &["mae", "rmse", "r2"]),
        Task::Binary => (
            KerasLoss::BinaryCrossentropy { from_logits: false },
            &["accuracy", "precision", "recall", "auc"],
        ),
        Task::Multiclass => (
            KerasLoss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            &["accuracy"],
        ),
    }
}

/// Reads `preprocessing.json` from a model folder, if there is one.
pub fn load_preprocessing(dir: &Path) -> Result<Option<Preprocessing>> {
    let path = dir.join(PREPROCESSING_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::format(&path, e.to_string()))
}

/// The test part of the file a model was trained on, rebuilt from its preprocessing (the
/// same seeded split and standardisation), with one-hot labels if the model's loss is
/// categorical.
pub fn reload_for(prep: &Preprocessing, model: &Sequential) -> Result<Dataset> {
    let (mut ds, _, _) = load(
        Path::new(&prep.dataset),
        &prep.args,
        prep.test_split,
        prep.seed,
    )?;
    let categorical = model
        .loss()
        .and_then(|l| l.keras())
        .is_some_and(|l| matches!(l, KerasLoss::CategoricalCrossentropy { .. }));
    if categorical {
        let k = ds.class_names.len().max(2);
        ds.y_train = nabla::data::to_categorical(&ds.y_train, k)?;
        ds.y_test = nabla::data::to_categorical(&ds.y_test, k)?;
    }
    Ok(ds)
}
