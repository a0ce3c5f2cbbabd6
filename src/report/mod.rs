//! Seeing what a network learned: pictures of a trained model and one HTML page of them.
//!
//! One function per picture, each returning a [`Picture`] (PNG and SVG, drawn with
//! plotters; `Picture::save` writes `<name>.png` and `<name>.svg`):
//! - [`curves::loss_curves`], [`curves::accuracy_curves`]: per epoch, training vs
//!   validation, the best epoch and an early stop marked;
//! - [`confusion::confusion_plot`]: the confusion matrix as a heat map with counts;
//! - [`confusion::per_class_plot`]: per-class precision, recall and F1 (the numbers are
//!   plain data: [`confusion::ConfusionMatrix::per_class`]);
//! - [`misclassified::misclassified_grid`]: the first misclassified test images,
//!   captioned "label -> prediction (confidence)"; for a text run
//!   ([`build_text_report`]) the first misclassified texts instead, as a table
//!   ([`misclassified_text`]: the text, its label, the prediction and the top 3);
//! - [`filters::first_conv_filters`]: the first Conv2D layer's filters;
//! - [`feature_maps::feature_maps_plot`]: one image through every Conv2D layer.
//!
//! [`build_report`] computes all of them for a model and a data set's test split
//! ([`build_text_report`]: with the test texts, for a text classifier);
//! [`Report::save`] writes the pictures, `report.json` (the confusion matrix, per-class
//! figures, the misclassified samples shown) and `report.html` (self-contained, see
//! [`html`]). [`write_report`] does it for a model directory written by `nabla train`.
//! An autoencoder run gets its own page instead ([`autoencoder`]: reconstructions,
//! generated images, the code space).
//! [`tensorboard`] writes TensorBoard event files during training.
//!
//! ```no_run
//! # fn main() -> nabla::Result<()> {
//! use nabla::report::{write_report, ReportOptions};
//! let html = write_report(std::path::Path::new("runs/keras-cnn-mnist"), None, None,
//!                         &ReportOptions::default())?;
//! println!("open {}", html.display());
//! # Ok(())
//! # }
//! ```
//!
//! Limits: PNG text uses a bundled Latin-1 font, so class names outside Latin-1 show as
//! boxes there (the HTML and SVG use the browser's fonts). Images are drawn for inputs
//! `[C, H, W]` with 1 or 3 channels in [0, 1]; other inputs get the numbers but no
//! image sections.

pub mod autoencoder;
pub mod confusion;
pub mod curves;
pub mod detection;
pub mod detection_page;
pub mod feature_maps;
pub mod filters;
pub mod html;
pub mod misclassified;
pub mod misclassified_text;
pub mod picture;
pub mod predictions;
pub mod tensorboard;

pub use picture::Picture;
pub use tensorboard::TensorBoard;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::training::{History, Sequential};
use confusion::{Averages, ClassMetrics, ConfusionMatrix};
use curves::BestEpoch;
use misclassified::Misclassified;
use misclassified_text::MisclassifiedText;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The folder under a model directory that `nabla report` writes by default.
pub const REPORT_DIR: &str = "report";

/// What to show.
#[derive(Debug, Clone, Serialize)]
pub struct ReportOptions {
    /// How many misclassified test images the grid shows (the first ones, in order).
    pub misclassified: usize,
    /// Test image whose feature maps are drawn.
    pub image_index: usize,
    /// Batch size for running the test set.
    pub batch_size: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            misclassified: 25,
            image_index: 0,
            batch_size: 500,
        }
    }
}

/// Test-set totals; `correct + misclassified == samples`.
#[derive(Debug, Clone, Serialize)]
pub struct TestTotals {
    pub samples: usize,
    pub correct: usize,
    pub misclassified: usize,
    pub accuracy: f64,
    /// The compiled loss on the test set (as `nabla evaluate` prints it).
    pub loss: Option<f32>,
}

/// How training went, from `history.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingInfo {
    pub epochs: usize,
    pub best_epoch: Option<BestEpoch>,
    pub stopped_epoch: Option<usize>,
    /// The last epoch's logs.
    pub last: BTreeMap<String, f32>,
}

/// The image whose feature maps are drawn.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureMapInfo {
    pub image_index: usize,
    pub label: usize,
    pub label_name: String,
    pub prediction: usize,
    pub prediction_name: String,
    pub confidence: f32,
    /// The Conv2D layers shown, in order.
    pub layers: Vec<String>,
}

/// Everything the report says in numbers (`report.json`).
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    pub model: String,
    pub dataset: String,
    pub class_names: Vec<String>,
    pub test: TestTotals,
    /// `confusion_matrix[true][predicted]`.
    pub confusion_matrix: Vec<Vec<usize>>,
    pub per_class: Vec<ClassMetrics>,
    pub macro_avg: Averages,
    pub weighted_avg: Averages,
    /// The misclassified samples the grid (or, for texts, the table) shows.
    pub misclassified: Vec<Misclassified>,
    /// A text run: the inputs are texts, shown as text (no image sections).
    pub text: bool,
    /// A text run's misclassified samples with their texts and top classes (the same
    /// samples as `misclassified`); empty otherwise.
    pub misclassified_texts: Vec<MisclassifiedText>,
    pub training: Option<TrainingInfo>,
    pub first_conv_layer: Option<String>,
    pub feature_maps: Option<FeatureMapInfo>,
    /// Names of the pictures written (`<name>.png`, `<name>.svg`).
    pub pictures: Vec<String>,
    /// Sections left out, and why.
    pub notes: Vec<String>,
    pub options: ReportOptions,
}

/// A report in memory: its numbers, its pictures, and the model summary.
pub struct Report {
    pub data: ReportData,
    pub pictures: Vec<Picture>,
    pub summary: String,
    /// A text run: every test text's prediction, saved as `predictions.tsv`
    /// ([`misclassified_text::predictions_tsv`]).
    pub predictions_tsv: Option<String>,
}

impl Report {
    pub fn picture(&self, name: &str) -> Option<&Picture> {
        self.pictures.iter().find(|p| p.name == name)
    }

    /// The page (see [`html`]).
    pub fn html(&self) -> String {
        html::render(self)
    }

    /// Writes every picture (PNG and SVG), `report.json`, `report.html` (and for a text
    /// run `predictions.tsv`) into `dir`
    /// (created if needed); returns the page's path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for p in &self.pictures {
            p.save(dir)?;
        }
        let json = serde_json::to_string_pretty(&self.data).expect("report data serializes");
        crate::formats::atomic::write_bytes_atomic(dir.join("report.json"), json.as_bytes())?;
        if let Some(tsv) = &self.predictions_tsv {
            crate::formats::atomic::write_bytes_atomic(
                dir.join("predictions.tsv"),
                tsv.as_bytes(),
            )?;
        }
        let page = dir.join("report.html");
        crate::formats::atomic::write_bytes_atomic(&page, self.html().as_bytes())?;
        Ok(page)
    }
}

/// The class names to show: the model's, else the data set's, else the indices.
fn names_for(model: &Sequential, ds: &Dataset, k: usize) -> Vec<String> {
    if model.class_names.len() == k {
        model.class_names.clone()
    } else if ds.class_names.len() == k {
        ds.class_names.clone()
    } else {
        (0..k).map(|i| i.to_string()).collect()
    }
}

/// Computes the report of `model` on `ds`'s test split; `history` gives the curves.
pub fn build_report(
    model: &mut Sequential,
    history: Option<&History>,
    ds: &Dataset,
    opts: &ReportOptions,
) -> Result<Report> {
    build(model, history, ds, None, opts)
}

/// The report of a text classifier: `ds` holds the vectorized test split (what the
/// model reads) and `test_texts` the same samples as text, in the same order. The
/// misclassified samples are shown as texts with their top classes, and the image
/// sections (grid, filters, feature maps) are left out.
pub fn build_text_report(
    model: &mut Sequential,
    history: Option<&History>,
    ds: &Dataset,
    test_texts: &[String],
    opts: &ReportOptions,
) -> Result<Report> {
    let n = ds.x_test.shape().first().copied().unwrap_or(0);
    if test_texts.len() != n {
        return Err(Error::shape(format!(
            "text report on '{}': {} test texts for {n} vectorized test samples",
            ds.name,
            test_texts.len()
        )));
    }
    build(model, history, ds, Some(test_texts), opts)
}

fn build(
    model: &mut Sequential,
    history: Option<&History>,
    ds: &Dataset,
    texts: Option<&[String]>,
    opts: &ReportOptions,
) -> Result<Report> {
    let (x, y) = (&ds.x_test, &ds.y_test);
    if !crate::nn::layers::dims::fits(model.input_shape(), &x.shape()[1..]) {
        return Err(Error::shape(format!(
            "model '{}' takes inputs {:?} but data set '{}' has samples {:?}",
            model.name,
            model.input_shape(),
            ds.name,
            &x.shape()[1..]
        )));
    }
    let preds = predictions::predict_classes(model, x, y, opts.batch_size)?;
    let k = preds.num_classes;
    let names = names_for(model, ds, k);
    let cm = ConfusionMatrix::from_predictions(&preds.labels, &preds.predicted, k)?;
    let per_class = cm.per_class(&names);
    let loss = match model.loss() {
        Some(_) => Some(model.evaluate(x, y, opts.batch_size)?.loss),
        None => None,
    };
    let mut pictures = Vec::new();
    let mut notes = Vec::new();

    let training = match history {
        Some(h) if !h.epoch.is_empty() => {
            pictures.push(curves::loss_curves(h)?);
            if h.get("accuracy").is_some() {
                pictures.push(curves::accuracy_curves(h)?);
            }
            Some(TrainingInfo {
                epochs: h.epoch.len(),
                best_epoch: curves::best_epoch(h),
                stopped_epoch: h.stopped_epoch,
                last: h
                    .history
                    .iter()
                    .filter_map(|(k, v)| v.last().map(|&l| (k.clone(), l)))
                    .collect(),
            })
        }
        _ => {
            notes.push("no training history: the curves are left out".to_string());
            None
        }
    };

    pictures.push(confusion::confusion_plot(&cm, &names)?);
    pictures.push(confusion::per_class_plot(&per_class)?);

    let images = texts.is_none() && x.ndim() == 4 && matches!(x.shape()[1], 1 | 3);
    let wrong = misclassified::first_misclassified(&preds, &names, opts.misclassified);
    let misclassified_texts = match texts {
        Some(texts) if !wrong.is_empty() => {
            // Probabilities of the shown samples only: a bag-of-words test split can
            // be hundreds of MB, the shown rows are a few.
            let rows: Vec<usize> = wrong.iter().map(|m| m.index).collect();
            let xw = x.gather_rows(&rows);
            let (probs, k) = predictions::predict_probabilities(model, &xw, opts.batch_size)?;
            misclassified_text::with_texts(&wrong, texts, &probs, &names, k)
        }
        _ => Vec::new(),
    };
    if texts.is_some() {
        // The misclassified texts are a table, not a picture.
    } else if images && !wrong.is_empty() {
        pictures.push(misclassified::misclassified_grid(
            x,
            &wrong,
            cm.misclassified(),
        )?);
    } else if !images {
        notes.push("the inputs are not images: no image grids".to_string());
    }

    let first_conv_layer = match filters::first_conv_kernel(model) {
        _ if texts.is_some() => None,
        Some((layer, kernel)) => {
            pictures.push(filters::conv_filters(&layer, &kernel)?);
            Some(layer)
        }
        None => {
            notes.push("the model has no Conv2D layer: no filters or feature maps".into());
            None
        }
    };

    let feature_maps = if images && first_conv_layer.is_some() {
        let i = opts.image_index;
        let maps = feature_maps::conv_feature_maps(model, x, i)?;
        let info = FeatureMapInfo {
            image_index: i,
            label: preds.labels[i],
            label_name: names[preds.labels[i]].clone(),
            prediction: preds.predicted[i],
            prediction_name: names[preds.predicted[i]].clone(),
            confidence: preds.confidence[i],
            layers: maps.iter().map(|m| m.layer.clone()).collect(),
        };
        let caption = format!(
            "test image #{}\nlabel: {}\nprediction: {} ({:.2})",
            i, info.label_name, info.prediction_name, info.confidence
        );
        pictures.push(feature_maps::feature_maps_plot(x, i, &caption, &maps)?);
        Some(info)
    } else {
        None
    };

    let predictions_tsv = texts.map(|t| misclassified_text::predictions_tsv(&preds, t, &names));
    let data = ReportData {
        model: model.name.clone(),
        dataset: ds.name.clone(),
        class_names: names,
        test: TestTotals {
            samples: cm.total(),
            correct: cm.correct(),
            misclassified: cm.misclassified(),
            accuracy: cm.accuracy(),
            loss,
        },
        confusion_matrix: cm.counts.clone(),
        macro_avg: confusion::macro_average(&per_class),
        weighted_avg: confusion::weighted_average(&per_class),
        per_class,
        misclassified: wrong,
        text: texts.is_some(),
        misclassified_texts,
        training,
        first_conv_layer,
        feature_maps,
        pictures: pictures.iter().map(|p| p.name.clone()).collect(),
        notes,
        options: opts.clone(),
    };
    Ok(Report {
        data,
        pictures,
        summary: model.summary(),
        predictions_tsv,
    })
}

/// The data set a model directory was trained on, from its `run.json`.
pub fn trained_on(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("run.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("dataset")?.as_str().map(|s| s.to_string())
}

/// The history saved beside a model (`history.json`), if there is one.
pub fn load_history(dir: &Path) -> Result<Option<History>> {
    let path = dir.join("history.json");
    if !path.exists() {
        return Ok(None);
    }
    History::load(&path).map(Some)
}

/// Reports on the model saved in `model_dir` (as `nabla report DIR` does): loads it, its
/// history, and the test split of `dataset` (default: the one in `run.json`), and writes
/// everything into `out` (default `model_dir/report`). Returns the page's path.
pub fn write_report(
    model_dir: &Path,
    dataset: Option<&str>,
    out: Option<&Path>,
    opts: &ReportOptions,
) -> Result<PathBuf> {
    let mut model = Sequential::load(model_dir)?;
    let name = dataset
        .map(|s| s.to_string())
        .or_else(|| trained_on(model_dir))
        .ok_or_else(|| {
            Error::invalid(format!(
                "no data set given and {} does not name one",
                model_dir.join("run.json").display()
            ))
        })?;
    let ds = match crate::data::toy::truth_table(&name) {
        Some(d) => d,
        None => crate::data::load_data(&name)?,
    };
    let history = load_history(model_dir)?;
    let report = build_report(&mut model, history.as_ref(), &ds, opts)?;
    let default_out = model_dir.join(REPORT_DIR);
    report.save(out.unwrap_or(&default_out))
}
