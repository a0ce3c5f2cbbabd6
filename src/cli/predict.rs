//! `nabla predict DIR INPUT`: predictions of a saved model.
//!
//! - INPUT an image (PNG/JPEG): its class probabilities, the top ones printed.
//! - INPUT a CSV table (a model trained on a table): one output row per input row,
//!   encoded and standardised as in training (DIR/preprocessing.json).
//! - INPUT a folder of images: one output row per image (sorted by path).
//! - INPUT a text (a model trained on text, DIR/vocabulary.json): the top classes
//!   (default 3) with their probabilities, or one JSON object with `--json`.
//!
//! Tables and folders give a CSV (to stdout, or to `--output FILE`): `row` (or `file`),
//! then `prediction` for regression, `probability,predicted` for binary, and
//! `predicted,p_CLASS...` for classes.

use super::common;
use super::user_data::{self, Task};
use clap::Args;
use nabla::data::csv_table::parse_csv_with_schema;
use nabla::data::image::{load_image, ImageOptions};
use nabla::error::{Error, Result};
use nabla::formats::atomic::write_bytes_atomic;
use nabla::layers::Dim;
use nabla::{Sequential, Tensor};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct PredictArgs {
    /// A directory written by `nabla train`.
    dir: PathBuf,
    /// A PNG or JPEG (any size: converted to the model's input like the training data),
    /// a folder of them, a CSV table with the columns the model was trained on, or for a
    /// text model the text itself ("Real-time strategy game").
    // Any string, the empty one included (a text model answers it with a clear error).
    #[arg(value_name = "INPUT", value_parser = any_string())]
    image: PathBuf,
    /// Invert the grey levels (for dark digits on a light background; MNIST is light on dark).
    #[arg(long)]
    invert: bool,
    /// How many classes to list (one image: default 10; a text: default 3).
    #[arg(long)]
    top: Option<usize>,
    /// A text: print one JSON object (predicted class, top classes and probabilities).
    #[arg(long)]
    json: bool,
    /// Write the CSV of predictions (tables, folders) here instead of to stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// INPUT as given, the empty string included (clap's path parser refuses "").
fn any_string() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser;
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}

pub fn run(a: PredictArgs) -> Result<i32> {
    let mut model = common::load_saved(&a.dir)?;
    if let Some(tv) = super::text::load_vectorizer(&a.dir)? {
        let text = a.image.to_string_lossy();
        return super::text::predict(&mut model, &tv, &text, a.top.unwrap_or(3), a.json);
    }
    if a.json {
        return Err(Error::invalid(
            "--json is for a text model's prediction; tables and folders give a CSV",
        ));
    }
    let is_csv = a
        .image
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        return predict_table(&mut model, &a);
    }
    let shape = model.input_shape().to_vec();
    let [Dim(Some(c)), Dim(Some(h)), Dim(Some(w))] = shape[..] else {
        return Err(Error::invalid(format!(
            "model '{}' takes inputs {:?}, not images",
            model.name, shape
        )));
    };
    let opts = ImageOptions::new(c, h, w).invert(a.invert);
    if a.image.is_dir() {
        return predict_folder(&mut model, &a, &opts);
    }
    let x = load_image(&a.image, &opts)?;
    let probs = model.predict(&x, 1)?;
    let p = probs.to_f32_vec();
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
    let name = |i: usize| class_name(&model, i);
    println!("{}: {}", a.image.display(), name(order[0]));
    for &i in order.iter().take(a.top.unwrap_or(10)) {
        println!("  {:>12}  {:.4}", name(i), p[i]);
    }
    Ok(0)
}

fn class_name(model: &Sequential, i: usize) -> String {
    model
        .class_names
        .get(i)
        .cloned()
        .unwrap_or_else(|| i.to_string())
}

fn predict_table(model: &mut Sequential, a: &PredictArgs) -> Result<i32> {
    let prep = user_data::load_preprocessing(&a.dir)?.ok_or_else(|| {
        Error::invalid(format!(
            "{}: no {} (the model was not trained on a table), so CSV rows cannot be encoded",
            a.dir.display(),
            user_data::PREPROCESSING_FILE
        ))
    })?;
    let schema = prep.schema.as_ref().ok_or_else(|| {
        Error::invalid(format!(
            "{}: the model was trained on arrays, not a table",
            a.dir.display()
        ))
    })?;
    let bytes = std::fs::read(&a.image).map_err(|e| Error::io(&a.image, e))?;
    let table = parse_csv_with_schema(&bytes, schema).map_err(|e| match e {
        Error::Invalid(m) => Error::format(&a.image, m),
        other => other,
    })?;
    let mut features = table.features;
    if let Some(s) = &prep.standardizer {
        s.apply(&mut features);
    }
    let x = Tensor::try_from_vec(features, &[table.rows, schema.feature_names().len()])?;
    let out = model.predict(&x, common::EVAL_BATCH)?;
    let keys: Vec<String> = (0..table.rows).map(|i| (i + 1).to_string()).collect();
    write_predictions(model, prep.task, "row", &keys, &out, a.output.as_deref())
}

/// Images in `dir` and its sub-folders, sorted by path.
fn image_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            image_files(&p, out)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        {
            out.push(p);
        }
    }
    Ok(())
}

fn predict_folder(model: &mut Sequential, a: &PredictArgs, opts: &ImageOptions) -> Result<i32> {
    let mut files = Vec::new();
    image_files(&a.image, &mut files)?;
    if files.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no PNG or JPEG images in this folder",
            a.image.display()
        )));
    }
    let mut outputs = Vec::with_capacity(files.len());
    let mut keys = Vec::with_capacity(files.len());
    for f in &files {
        match load_image(f, opts) {
            Ok(x) => {
                outputs.extend(model.predict(&x, 1)?.to_f32_vec());
                keys.push(f.display().to_string());
            }
            Err(e) => eprintln!("warning: skipped {}: {e}", f.display()),
        }
    }
    let cols = outputs.len().checked_div(keys.len()).unwrap_or(0);
    let out = Tensor::try_from_vec(outputs, &[keys.len(), cols])?;
    let task = if cols == 1 {
        Task::Binary
    } else {
        Task::Multiclass
    };
    write_predictions(model, task, "file", &keys, &out, a.output.as_deref())
}

/// The CSV of predictions (see the module docs).
fn write_predictions(
    model: &Sequential,
    task: Task,
    key: &str,
    keys: &[String],
    out: &Tensor,
    to: Option<&Path>,
) -> Result<i32> {
    let values = out.to_f32_vec();
    let cols = values.len().checked_div(keys.len()).unwrap_or(1).max(1);
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::invalid(format!("writing the predictions: {e}"));
    let mut header = vec![key.to_string()];
    match task {
        Task::Regression => header.push("prediction".into()),
        Task::Binary if cols == 1 => header.extend(["probability".into(), "predicted".into()]),
        _ => {
            header.push("predicted".into());
            header.extend((0..cols).map(|i| format!("p_{}", class_name(model, i))));
        }
    }
    w.write_record(&header).map_err(csv_err)?;
    for (k, row) in keys.iter().zip(values.chunks(cols)) {
        let mut rec = vec![k.clone()];
        match task {
            Task::Regression => rec.extend(row.iter().map(|v| v.to_string())),
            Task::Binary if cols == 1 => {
                rec.push(row[0].to_string());
                rec.push(class_name(model, usize::from(row[0] > 0.5)));
            }
            _ => {
                let best = (0..cols)
                    .max_by(|&i, &j| row[i].total_cmp(&row[j]))
                    .unwrap_or(0);
                rec.push(class_name(model, best));
                rec.extend(row.iter().map(|v| v.to_string()));
            }
        }
        w.write_record(&rec).map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::invalid(format!("writing the predictions: {e}")))?;
    match to {
        Some(path) => {
            write_bytes_atomic(path, &bytes)?;
            eprintln!("Wrote {} predictions to {}", keys.len(), path.display());
        }
        None => print!("{}", String::from_utf8_lossy(&bytes)),
    }
    Ok(0)
}
