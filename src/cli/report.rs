//! `nabla report DIR`: pictures of a trained model and one self-contained HTML page
//! (curves, confusion matrix, per-class figures, misclassified images, filters, feature
//! maps, summary), written into DIR/report (see `nabla::report`). For a text run
//! (DIR holds `vocabulary.json`) the test texts are read again as in `evaluate`, and
//! the misclassified samples are shown as texts with their top 3 classes.

use super::common::{self, EVAL_BATCH};
use clap::Args;
use nabla::data::Dataset;
use nabla::error::{Error, Result};
use nabla::report::{self, ReportOptions};
use nabla::Sequential;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ReportArgs {
    /// A directory written by `nabla train` (or `Sequential::save`).
    dir: PathBuf,
    /// Default: the data set the model was trained on (from DIR/run.json).
    #[arg(long)]
    dataset: Option<String>,
    /// How many misclassified test images to show (the first ones).
    #[arg(long, default_value_t = 25)]
    misclassified: usize,
    /// The test image whose feature maps are drawn.
    #[arg(long, default_value_t = 0)]
    image_index: usize,
    /// Where to write the report. Default: DIR/report.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: ReportArgs) -> Result<i32> {
    if let Some(info) = super::detection_run::RunInfo::load(&a.dir)? {
        let mut model = super::detection_run::load_model(&a.dir, &info)?;
        let out = a.out.unwrap_or_else(|| a.dir.join(report::REPORT_DIR));
        let page = super::detection_report::write_to(&a.dir, &mut model, &info, &out)?;
        println!("Wrote the report to {}", page.display());
        return Ok(0);
    }
    let mut model = common::load_saved(&a.dir)?;
    let name = a
        .dataset
        .clone()
        .or_else(|| report::trained_on(&a.dir))
        .ok_or_else(|| Error::invalid("no --dataset given and DIR/run.json does not name one"))?;
    let opts = ReportOptions {
        misclassified: a.misclassified,
        image_index: a.image_index,
        batch_size: EVAL_BATCH,
    };
    let out = a.out.unwrap_or_else(|| a.dir.join(report::REPORT_DIR));
    // A text run: its test texts through its saved vocabulary (as `evaluate` does),
    // unless --dataset names another data set.
    let text =
        super::text::reload_test_texts(&a.dir, &model.name)?.filter(|(ds, _)| ds.name == name);
    if nabla::models::autoencoder::is_autoencoder(&model) {
        let ds = common::load_dataset(&name)?;
        let page = write_autoencoder(&mut model, &a.dir, &ds, &out)?;
        println!("Wrote the report to {}", page.display());
        return Ok(0);
    }
    let page = match text {
        Some((ds, texts)) => write(&mut model, &a.dir, &ds, Some(&texts), &out, &opts)?,
        None => {
            let ds = common::load_dataset(&name)?;
            write(&mut model, &a.dir, &ds, None, &out, &opts)?
        }
    };
    println!("Wrote the report to {}", page.display());
    Ok(0)
}

/// Reports on `model` (saved in `dir`, with its history) on `ds`'s test split, into
/// `out`; `texts`: a text run's test texts (`ds` holds them vectorized). Shared with
/// `nabla train --report`.
pub fn write(
    model: &mut Sequential,
    dir: &Path,
    ds: &Dataset,
    texts: Option<&[String]>,
    out: &Path,
    opts: &ReportOptions,
) -> Result<PathBuf> {
    common::check_fits(model, ds)?;
    let history = report::load_history(dir)?;
    if let Some(texts) = texts {
        let r = report::build_text_report(model, history.as_ref(), ds, texts, opts)?;
        return r.save(out);
    }
    let n = ds.x_test.shape()[0];
    if opts.image_index >= n {
        return Err(Error::invalid(format!(
            "--image-index {} is out of range: the test set of {} has {n} images",
            opts.image_index, ds.name
        )));
    }
    let r = report::build_report(model, history.as_ref(), ds, opts)?;
    r.save(out)
}

/// The autoencoder page (reconstructions, generated images, code space) of `model`,
/// saved in `dir` with its code statistics, on `ds`'s test split (`y_test`: labels).
pub fn write_autoencoder(
    model: &mut Sequential,
    dir: &Path,
    ds: &Dataset,
    out: &Path,
) -> Result<PathBuf> {
    common::check_fits(model, ds)?;
    report::autoencoder::write_autoencoder_report(model, dir, ds, out)
}
