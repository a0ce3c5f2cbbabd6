//! `nabla evaluate DIR`: reload a saved model with no code and score it on a test split.
//! `nabla evaluate DIR1 DIR2 ...`: an ensemble; each model's accuracy, and that of the
//! average of their class probabilities.

use super::common::{self, test_line, EVAL_BATCH};
use clap::Args;
use nabla::data::datasets::Dataset;
use nabla::error::{Error, Result};
use nabla::report::confusion::ConfusionMatrix;
use nabla::report::predictions::{predict_classes, predict_probabilities};
use nabla::DType;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvaluateArgs {
    /// A directory written by `nabla train` (or `Sequential::save`); several make an
    /// ensemble that averages their class probabilities.
    #[arg(required = true, num_args = 1.., value_name = "DIR")]
    dirs: Vec<PathBuf>,
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
    /// A detection run: where to write its detections as a COCO results JSON (default
    /// DIR/detections.json); the test split's ground truth goes beside it
    /// (test_annotations.json).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Split the test set over the ranks that `mpirun -np N` started (a build with
    /// `--features mpi`): each rank evaluates its share, the loss and metric sums are
    /// added over the ranks and rank 0 prints. One model's loss and metrics only.
    #[arg(long)]
    distributed: bool,
}

fn trained_on(dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("run.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("dataset")?.as_str().map(|s| s.to_string())
}

pub fn run(a: EvaluateArgs) -> Result<i32> {
    // MPI starts before any data is read (without the feature: the error saying how to
    // build with it).
    let world = if a.distributed {
        refuse_distributed(&a)?;
        Some(super::distributed::mpi_world()?)
    } else {
        None
    };
    if let [dir] = &a.dirs[..] {
        if let Some(info) = super::detection_run::RunInfo::load(dir)? {
            if a.dataset.is_some() || a.confusion || a.dtype.is_some() {
                return Err(Error::invalid(
                    "a detection run is evaluated on its own test split: --dataset, \
                     --confusion and --dtype do not apply",
                ));
            }
            return super::detection_eval::run(dir, &info, a.out, a.json);
        }
    }
    if a.out.is_some() {
        return Err(Error::invalid(
            "--out is for a detection run (where its COCO results JSON goes)",
        ));
    }
    if a.dirs.len() > 1 {
        return ensemble(a);
    }
    let dir = a.dirs[0].clone();
    let mut model = common::load_saved(&dir)?;
    let name = a
        .dataset
        .or_else(|| trained_on(&dir))
        .ok_or_else(|| Error::invalid("no --dataset given and DIR/run.json does not name one"))?;
    // A text model: its test texts through its saved vocabulary. A model trained on a
    // data file: its test split, preprocessed as in training.
    let text = super::text::reload_test(&dir, &model.name)?.filter(|ds| ds.name == name);
    let ds = match (text, super::user_data::load_preprocessing(&dir)?) {
        (Some(ds), _) => ds,
        (None, Some(prep)) if prep.dataset == name => super::user_data::reload_for(&prep, &model)?,
        _ => common::load_dataset(&name)?,
    };
    common::check_fits(&model, &ds)?;
    common::check_classes(&model, &ds)?;
    common::check_test_set(&ds)?;
    if let Some(world) = world {
        return distributed(world, &mut model, &ds, a.json);
    }
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

/// `--distributed` splits one model's loss and metrics over the ranks; what needs every
/// prediction in one place (a confusion matrix, an ensemble's averaged probabilities,
/// COCO detection scores) or a second pass (--dtype) does not split, so it is refused
/// before MPI starts.
fn refuse_distributed(a: &EvaluateArgs) -> Result<()> {
    let why = if a.dirs.len() > 1 {
        Some("an ensemble (several DIRs) averages every model's probabilities in one place")
    } else if a.confusion {
        Some("--confusion needs every prediction in one place")
    } else if a.dtype.is_some() {
        Some("--dtype evaluates twice and compares; run it in one process")
    } else if a.out.is_some() || super::detection_run::RunInfo::load(&a.dirs[0])?.is_some() {
        Some("a detection run's COCO scores need every detection in one place")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::invalid(format!(
            "evaluate --distributed splits one model's test loss and metrics over the \
             ranks; {why}: evaluate without --distributed"
        ))),
        None => Ok(()),
    }
}

/// One model's test loss and metrics with the test set split over the MPI ranks
/// (`DataParallel::evaluate`): every rank gets the totals, rank 0 prints them.
fn distributed(
    world: std::rc::Rc<dyn nabla::distributed::Collective>,
    model: &mut nabla::Model,
    ds: &Dataset,
    json: bool,
) -> Result<i32> {
    let dp = nabla::training::DataParallel::new(world);
    let start = std::time::Instant::now();
    let ev = dp
        .evaluate(
            model,
            std::slice::from_ref(&ds.x_test),
            std::slice::from_ref(&ds.y_test),
            EVAL_BATCH,
        )
        .unwrap_or_else(|e| super::distributed::fail(&dp, e));
    let seconds = start.elapsed().as_secs_f64();
    if dp.rank() != 0 {
        return Ok(0);
    }
    if json {
        let v = serde_json::json!({
            "loss": ev.loss,
            "accuracy": ev.accuracy(),
            "seconds": seconds,
            "images_per_second": ds.x_test.shape()[0] as f64 / seconds,
            "ranks": dp.size(),
        });
        println!("{v}");
    } else {
        println!("{} ({} ranks)", test_line(&ev), dp.size());
    }
    Ok(0)
}

/// `nabla evaluate DIR1 DIR2 ...`: every model on the same test split, then the average of
/// their class probabilities. The models must share input shape, class count and class
/// names, and name the same data set (or `--dataset` gives it).
fn ensemble(a: EvaluateArgs) -> Result<i32> {
    if a.confusion || a.dtype.is_some() {
        return Err(Error::invalid(
            "--confusion and --dtype take one model; an ensemble (several DIRs) reports \
             accuracies only",
        ));
    }
    if let Some(dir) = a
        .dirs
        .iter()
        .find(|d| d.join(super::text::VOCABULARY_FILE).is_file())
    {
        return Err(Error::invalid(format!(
            "{} is a text model: an ensemble (several DIRs) takes image and table models;              evaluate text models one at a time",
            dir.display()
        )));
    }
    let mut models = Vec::new();
    for dir in &a.dirs {
        models.push((dir.clone(), common::load_saved(dir)?));
    }
    let name = match &a.dataset {
        Some(n) => n.clone(),
        None => {
            let names: Vec<Option<String>> = a.dirs.iter().map(|d| trained_on(d)).collect();
            let first = names[0].clone().ok_or_else(|| {
                Error::invalid(format!(
                    "no --dataset given and {}/run.json does not name one",
                    a.dirs[0].display()
                ))
            })?;
            if let Some((d, n)) = a
                .dirs
                .iter()
                .zip(&names)
                .find(|(_, n)| n.as_ref() != Some(&first))
            {
                return Err(Error::invalid(format!(
                    "{} was trained on '{first}' but {} on '{}'; give --dataset to evaluate \
                     them on one data set",
                    a.dirs[0].display(),
                    d.display(),
                    n.as_deref().unwrap_or("an unnamed data set")
                )));
            }
            first
        }
    };
    // Models trained on a data file: one test split for all, so they must share the
    // file, the preprocessing options and the split's seed.
    let preps = a
        .dirs
        .iter()
        .map(|d| super::user_data::load_preprocessing(d))
        .collect::<Result<Vec<_>>>()?;
    let ds = match &preps[0] {
        Some(prep) => {
            let key = |p: &super::user_data::Preprocessing| {
                serde_json::json!([p.dataset, p.args, p.test_split, p.seed])
            };
            for (dir, p) in a.dirs.iter().zip(&preps).skip(1) {
                if p.as_ref().map(key) != Some(key(prep)) {
                    return Err(Error::invalid(format!(
                        "{} and {} were not trained on the same split of one data file \
                         (file, options and --seed must agree): an ensemble needs one \
                         test set",
                        a.dirs[0].display(),
                        dir.display()
                    )));
                }
            }
            super::user_data::reload_for(prep, &models[0].1)?
        }
        None => common::load_dataset(&name)?,
    };
    common::check_test_set(&ds)?;
    let (first_dir, first) = &models[0];
    for (dir, m) in &models[1..] {
        if m.input_shape() != first.input_shape() || m.output_shapes() != first.output_shapes() {
            return Err(Error::shape(format!(
                "{} takes {:?} and gives {:?}, but {} takes {:?} and gives {:?}: an ensemble \
                 needs models of one input shape and one class count",
                first_dir.display(),
                first.input_shape(),
                first.output_shapes(),
                dir.display(),
                m.input_shape(),
                m.output_shapes()
            )));
        }
        if m.class_names != first.class_names {
            return Err(Error::invalid(format!(
                "{} has classes {:?} but {} has {:?}: an ensemble needs the same classes",
                first_dir.display(),
                first.class_names,
                dir.display(),
                m.class_names
            )));
        }
    }
    let labels = nabla::training::metrics::label_classes(&ds.y_test);
    let n = labels.len();
    let accuracy = |probs: &[f32], k: usize| {
        let correct = probs
            .chunks_exact(k)
            .zip(&labels)
            .filter(|(row, &l)| argmax(row) == l)
            .count();
        correct as f64 / n as f64
    };
    let mut sum: Vec<f64> = Vec::new();
    let mut each = Vec::new();
    let mut classes = 0;
    for (dir, model) in &mut models {
        common::check_fits(model, &ds)?;
        common::check_classes(model, &ds)?;
        let (probs, k) = predict_probabilities(model, &ds.x_test, EVAL_BATCH)?;
        classes = k;
        if sum.is_empty() {
            sum = vec![0.0; probs.len()];
        }
        for (s, p) in sum.iter_mut().zip(&probs) {
            *s += *p as f64;
        }
        each.push((dir.display().to_string(), accuracy(&probs, k)));
    }
    let mean: Vec<f32> = sum
        .iter()
        .map(|s| (s / models.len() as f64) as f32)
        .collect();
    let ens = accuracy(&mean, classes);
    if a.json {
        let v = serde_json::json!({
            "dataset": ds.name,
            "models": each.iter().map(|(d, acc)| serde_json::json!({"dir": d, "accuracy": acc})).collect::<Vec<_>>(),
            "ensemble_accuracy": ens,
        });
        println!("{v}");
    } else {
        let width = each.iter().map(|(d, _)| d.len()).max().unwrap_or(0).max(8);
        for (d, acc) in &each {
            println!("{d:<width$}  accuracy {acc:.4} ({:.2}%)", 100.0 * acc);
        }
        println!(
            "{:<width$}  accuracy {ens:.4} ({:.2}%) - average of {} models' probabilities on {} ({n} test samples)",
            "ensemble",
            100.0 * ens,
            models.len(),
            ds.name
        );
    }
    Ok(0)
}

/// Index of the largest value (the first on ties).
fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
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
