//! `nabla evaluate DIR`: reload a saved model with no code and score it on a test split.

use super::common::{self, test_line, EVAL_BATCH};
use clap::Args;
use nabla::error::{Error, Result};
use nabla::report::confusion::ConfusionMatrix;
use nabla::report::predictions::predict_classes;
use nabla::DType;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvaluateArgs {
    /// A directory written by `nabla train` (or `Sequential::save`).
    dir: PathBuf,
    /// Default: the data set the model was trained on (from DIR/run.json).
    #[arg(long)]
    dataset: Option<String>,
    #[arg(long)]
    json: bool,
    /// Also print the confusion matrix (rows: true class, columns: predicted).
    #[arg(long)]
    confusion: bool,
    /// Also evaluate in half precision (f16 or bf16): weights stored in that type,
    /// activations rounded to it between layers, sums in f32. Prints the accuracy beside
    /// the f32 one (the confusion matrix, if asked, is the half-precision one).
    #[arg(long, value_name = "f16|bf16")]
    dtype: Option<DType>,
}

fn trained_on(dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("run.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("dataset")?.as_str().map(|s| s.to_string())
}

pub fn run(a: EvaluateArgs) -> Result<i32> {
    let mut model = common::load_saved(&a.dir)?;
    let name = a
        .dataset
        .or_else(|| trained_on(&a.dir))
        .ok_or_else(|| Error::invalid("no --dataset given and DIR/run.json does not name one"))?;
    // A model trained on a data file: its test split, preprocessed as in training.
    let ds = match super::user_data::load_preprocessing(&a.dir)? {
        Some(prep) if prep.dataset == name => super::user_data::reload_for(&prep, &model)?,
        _ => common::load_dataset(&name)?,
    };
    common::check_fits(&model, &ds)?;
    let timed = |model: &mut nabla::Model| {
        let start = std::time::Instant::now();
        let ev = model.evaluate(&ds.x_test, &ds.y_test, EVAL_BATCH)?;
        Ok::<_, Error>((ev, start.elapsed().as_secs_f64()))
    };
    let (f32_ev, f32_seconds) = timed(&mut model)?;
    // With --dtype: the half-precision run is the one reported, the f32 one beside it.
    let (ev, seconds, full) = match a.dtype {
        Some(dtype) => {
            model.set_dtype(dtype)?;
            let (ev, seconds) = timed(&mut model)?;
            (ev, seconds, Some(f32_ev))
        }
        None => (f32_ev, f32_seconds, None),
    };
    let cm = if a.confusion {
        let p = predict_classes(&mut model, &ds.x_test, &ds.y_test, EVAL_BATCH)?;
        Some(ConfusionMatrix::from_predictions(
            &p.labels,
            &p.predicted,
            p.num_classes,
        )?)
    } else {
        None
    };
    if a.json {
        let mut v = serde_json::json!({
            "loss": ev.loss,
            "accuracy": ev.accuracy(),
            "seconds": seconds,
            "images_per_second": ds.x_test.shape()[0] as f64 / seconds,
        });
        if let Some(cm) = &cm {
            v["confusion_matrix"] = serde_json::json!(cm.counts);
            v["misclassified"] = serde_json::json!(cm.misclassified());
        }
        if let Some(f) = &full {
            v["dtype"] = serde_json::json!(model.dtype().name());
            v["f32_loss"] = serde_json::json!(f.loss);
            v["f32_accuracy"] = serde_json::json!(f.accuracy());
        }
        println!("{v}");
    } else if let Some(f) = &full {
        println!("f32:  {}", test_line(f));
        println!("{:<5} {}", format!("{}:", model.dtype()), test_line(&ev));
        if let (Some(a32), Some(a16)) = (f.accuracy(), ev.accuracy()) {
            println!(
                "{} accuracy - f32 accuracy: {:+.2} points",
                model.dtype(),
                100.0 * (a16 - a32)
            );
        }
        if let Some(cm) = &cm {
            print!("{}", confusion_table(cm));
        }
    } else {
        println!("{}", test_line(&ev));
        if let Some(cm) = &cm {
            print!("{}", confusion_table(cm));
        }
    }
    Ok(0)
}

/// The matrix as text: a header of predicted classes, one row per true class.
fn confusion_table(cm: &ConfusionMatrix) -> String {
    let k = cm.num_classes();
    let width = cm.total().to_string().len().max(k.to_string().len()) + 1;
    let mut s = format!(
        "Confusion matrix ({} misclassified; rows: true, columns: predicted)\n{:>6}",
        cm.misclassified(),
        ""
    );
    for p in 0..k {
        s += &format!("{p:>width$}");
    }
    s += "\n";
    for (t, row) in cm.counts.iter().enumerate() {
        s += &format!("{t:>6}");
        for c in row {
            s += &format!("{c:>width$}");
        }
        s += "\n";
    }
    s
}
