//! `nabla train`: build, compile, fit, save, and evaluate on the test split.

use super::common::{self, test_line, ModelSource, EVAL_BATCH};
use super::detection_run;
use super::text;
use super::user_data;
use clap::Args;
use nabla::data::Augmentation;
use nabla::error::{Error, Result};
use nabla::training::{
    ClassWeights, EarlyStopping, FitArgs, LearningRateScheduler, ModelCheckpoint,
    ReduceLROnPlateau, Schedule,
};
use nabla::{models, KerasLoss, Optimizer};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct TrainArgs {
    /// A built-in model (perceptron, xor-mlp, mlp, simple-convnet, deep-convnet,
    /// keras-cnn, mlp-bn), an autoencoder (autoencoder, conv-autoencoder: trained input
    /// -> input), a deep net built for the data set's shape (vgg11/13/16/19,
    /// vgg-small, resnet18/34/50/101/152, resnet20/32/56, se-resnet18/50/20,
    /// inception-mini), a text model (text-bow, text-cnn, text-lstm,
    /// text-bilstm, text-gru), a JSON model config file, or
    /// a saved model's folder. With a data file (--dataset table.csv, .npz, .mat) it may
    /// be left out: an MLP with the task's output; with text data: text-bow.
    #[arg(long)]
    model: Option<String>,
    /// mnist, fashion-mnist, cifar10, a truth table (xor, and, or, nand), a folder with
    /// one sub-folder of images per class, or a data file: a CSV table, a NumPy .npz or a
    /// MATLAB .mat (see --target, --task, --x, --y); text: debian-sections or a
    /// label<TAB>text .tsv file. Default: the model's own.
    #[arg(long)]
    dataset: Option<String>,
    #[command(flatten)]
    user_data: super::user_data::UserDataArgs,
    #[command(flatten)]
    text: text::TextArgs,
    /// For an image folder: the shape C,H,W every image is resized to. Default: the
    /// model's input shape (3,32,32 for the deep nets).
    #[arg(long, value_delimiter = ',')]
    image_shape: Option<Vec<usize>>,
    /// For an image folder, a data file or a .tsv text file: the fraction held out as the
    /// test set (of each class; a file's split is seeded by --seed).
    #[arg(long, default_value_t = 0.2)]
    test_split: f64,
    /// Default: 1 (tiny-yolo's recipe: 5).
    #[arg(long)]
    epochs: Option<usize>,
    /// tiny-yolo: the filters of its stem (each downsampling doubles them). Default 8.
    #[arg(long)]
    width: Option<usize>,
    /// Default: the model's recipe (keras-cnn 64, the book's nets 100, else 32).
    #[arg(long)]
    batch_size: Option<usize>,
    /// sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw. Default: the recipe's.
    #[arg(long)]
    optimizer: Option<String>,
    /// Decoupled weight decay for any optimizer (adamw's default is 0.01, the others' 0):
    /// before each update w -= lr * WD * w, with the scheduled lr. Kernels only: biases
    /// and batch norm's gamma/beta are not decayed.
    #[arg(long, value_name = "WD", allow_negative_numbers = true)]
    weight_decay: Option<f32>,
    /// Learning rate. Default: the recipe's (adam 0.001).
    #[arg(long)]
    lr: Option<f32>,
    /// Transfer learning: start from the weights of a saved run (its folder), loaded
    /// by layer name. A layer whose name is not in the run, or whose weights have other
    /// shapes there (a new top), starts fresh; what was loaded and skipped is printed.
    /// A .pth, .pt or .safetensors file is a torchvision state dict, mapped onto the
    /// zoo's resnet18/34/50/101/152 and vgg11/13/16/19 by the model's name.
    #[arg(long, value_name = "RUN_DIR|FILE.pth")]
    init_from: Option<PathBuf>,
    /// With --init-from: only the layers up to and including LAYER take the run's
    /// weights; the ones after it keep their fresh initialization, a new top (Keras'
    /// `include_top=False` plus new layers). Without it a top of the same shape, such
    /// as a 10-class head for 10 other classes, is loaded too.
    #[arg(long, value_name = "LAYER", requires = "init_from")]
    init_until: Option<String>,
    /// Feature extraction: freeze every layer up to and including LAYER (a layer name,
    /// as `nabla summary` lists them); the layers after it train. A frozen
    /// BatchNormalization keeps its moving statistics.
    #[arg(long, value_name = "LAYER", conflicts_with = "fine_tune_from")]
    freeze_until: Option<String>,
    /// Fine-tuning: LAYER and every layer after it train, the layers before it are
    /// frozen (usually with a low --lr, from a run given by --init-from).
    #[arg(long, value_name = "LAYER")]
    fine_tune_from: Option<String>,
    /// sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy, mse,
    /// huber, log_cosh, kl_divergence, hinge, squared_hinge, categorical_hinge.
    #[arg(long)]
    loss: Option<String>,
    /// Label smoothing EPS in [0, 1) for the categorical cross-entropies: targets become
    /// y (1 - EPS) + EPS / classes.
    #[arg(long, value_name = "EPS", allow_negative_numbers = true)]
    label_smoothing: Option<f32>,
    /// Weigh each training sample's loss by its class (Keras' class_weight): `balanced`
    /// (n_samples / (n_classes * count of the class), from the training labels) or
    /// CLASS:WEIGHT pairs, e.g. 0:1,1:5 (classes not named weigh 1). Validation and the
    /// test evaluation stay unweighted.
    #[arg(long, value_name = "SPEC", allow_hyphen_values = true)]
    class_weight: Option<String>,
    /// Seeds weights, shuffling and dropout: the same seed gives the same run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction of the training set held out for validation (taken from its end).
    #[arg(long, default_value_t = 0.0)]
    validation_split: f64,
    /// Stop when the monitored metric has not improved for this many epochs.
    #[arg(long)]
    early_stopping: Option<usize>,
    /// Metric watched by early stopping and checkpoints.
    #[arg(long, default_value = "val_loss")]
    monitor: String,
    /// With --early-stopping: end with the weights of the best epoch.
    #[arg(long)]
    restore_best_weights: bool,
    /// Learning-rate schedule: step:EVERY:FACTOR, exp:RATE, cosine:EPOCHS[:WARMUP],
    /// onecycle:EPOCHS.
    #[arg(long)]
    schedule: Option<String>,
    /// Divide the learning rate by 10 when --monitor has not improved for this many epochs.
    #[arg(long)]
    reduce_lr_on_plateau: Option<usize>,
    /// Save the best model (by --monitor) to OUT/checkpoint during training.
    #[arg(long)]
    checkpoint: bool,
    /// Augment the training batches on the fly (never validation or test data), seeded by
    /// --seed. Comma-separated keys, e.g. crop=4,flip,rotate=10 (all of them:
    /// crop=4,flip,rotate=10,shift=0.1,scale=0.1,brightness=0.2,contrast=0.2). crop=P
    /// pads P zero pixels on every side and crops a random window back to size; flip mirrors half the images left-right; rotate=D turns
    /// by up to D degrees; shift=F moves by up to F of the width and height; scale=S zooms
    /// by a factor in [1-S, 1+S]; brightness=B adds up to +-B; contrast=C scales the
    /// distances from the image's mean by a factor in [1-C, 1+C]. Image data sets only.
    #[arg(long, value_name = "SPEC")]
    augment: Option<String>,
    /// Train on the first N training samples only (quick runs).
    #[arg(long)]
    limit: Option<usize>,
    /// Train on N samples of each class only, drawn at random with --seed (a small
    /// labelled set, as in transfer-learning experiments). The test set stays whole.
    #[arg(long, value_name = "N")]
    per_class: Option<usize>,
    /// Autoencoders: train a denoising autoencoder, adding Gaussian noise of this
    /// standard deviation (e.g. 0.5) to the training inputs, clipped to [0, 1]; the
    /// targets stay the clean images.
    #[arg(long, value_name = "SIGMA")]
    denoise: Option<f32>,
    /// Directory for the model, history.json and run.json. Default: runs/MODEL-DATASET.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON object with the final results instead of the epoch lines.
    #[arg(long)]
    json: bool,
    /// After training, write the report (pictures, report.html) into OUT/report.
    #[arg(long)]
    report: bool,
    /// Continue the run in OUT that was killed: its command line again, from the state
    /// saved after its last complete epoch (weights, optimizer, epoch, schedule,
    /// history, random generators). A run killed at an epoch boundary ends bit-identical
    /// to one that was not.
    #[arg(long, value_name = "OUT", conflicts_with = "model")]
    resume: Option<PathBuf>,
    /// Write TensorBoard event files (per-epoch scalars) into this folder.
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
    #[command(flatten)]
    distributed: super::distributed::DistributedArgs,
}

/// The command line of a run, saved with each backup so that `--resume OUT` can repeat it.
const COMMAND_FILE: &str = "train_command.json";
/// The per-epoch `BackupAndRestore` folder inside OUT.
const BACKUP_DIR: &str = "backup";

/// Parses `nabla train` arguments (for the saved command line of `--resume`).
#[derive(clap::Parser)]
#[command(name = "nabla train")]
struct SavedCommand {
    #[command(flatten)]
    args: TrainArgs,
}

pub fn run(a: TrainArgs) -> Result<i32> {
    let Some(out) = a.resume.clone() else {
        return train(a, None);
    };
    let path = out.join(BACKUP_DIR).join(COMMAND_FILE);
    // Finishes or discards a backup that a kill interrupted.
    nabla::formats::file_set::recover(&out.join(BACKUP_DIR))?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::invalid(format!(
            "--resume {}: cannot read {} ({e}); only a run of `nabla train --out {}` that \
             completed an epoch and did not finish can be resumed",
            out.display(),
            path.display(),
            out.display()
        ))
    })?;
    let argv: Vec<String> = serde_json::from_str(&text)
        .map_err(|e| Error::format(&path, format!("unreadable command line: {e}")))?;
    let saved = <SavedCommand as clap::Parser>::try_parse_from(
        std::iter::once("nabla train".to_string()).chain(argv.iter().cloned()),
    )
    .map_err(|e| {
        Error::format(
            &path,
            e.to_string().lines().next().unwrap_or("").to_string(),
        )
    })?;
    let mut args = saved.args;
    args.out = Some(out);
    train(args, Some(argv))
}

/// A fresh run (`resumed_from: None`) or one continued from the saved command line.
fn train(a: TrainArgs, resumed_from: Option<Vec<String>>) -> Result<i32> {
    // None (or `auto`): a default MLP for a data file.
    let model_spec = a.model.clone().filter(|m| m != "auto");
    if let Some(m) = model_spec
        .as_deref()
        .filter(|m| detection_run::is_detection_model(m))
    {
        return detection(m, a, resumed_from.is_some());
    }
    // Unknown names fail at once, before any data is loaded.
    if let Some(l) = &a.loss {
        KerasLoss::from_name(l)?;
    }
    if let Some(o) = &a.optimizer {
        Optimizer::from_name(o, a.lr)?;
    }
    if let Some(eps) = a.label_smoothing {
        if !(0.0..1.0).contains(&eps) {
            return Err(Error::invalid(format!(
                "--label-smoothing must be in [0, 1), got {eps}"
            )));
        }
    }
    if let Some(wd) = a.weight_decay {
        if !(wd.is_finite() && wd >= 0.0) {
            return Err(Error::invalid(format!(
                "--weight-decay must be a non-negative number, got {wd}"
            )));
        }
    }
    check_options(&a)?;
    // Under `mpirun ... --distributed` every rank trains; only rank 0 prints and writes.
    let dp = a.distributed.data_parallel()?;
    let class_weight_spec = a
        .class_weight
        .as_deref()
        .map(ClassWeightSpec::parse)
        .transpose()?;
    user_data::check_sample_weight_option(&a.user_data, a.dataset.as_deref())?;
    let schedule = a.schedule.as_deref().map(Schedule::parse).transpose()?;
    let augmentation = a.augment.as_deref().map(Augmentation::parse).transpose()?;
    let user_file = a
        .dataset
        .as_deref()
        .filter(|d| user_data::is_user_file(d) && Path::new(d).is_file())
        .map(PathBuf::from);
    text::check_pairing(model_spec.as_deref(), a.dataset.as_deref(), &a.text)?;
    // A text run: a text model, or a text data set (whose default model is text-bow).
    let text_model = match (&model_spec, a.dataset.as_deref()) {
        (Some(m), _) if nabla::models::text::is_text_model(m) => Some(m.clone()),
        (None, Some(d)) if text::is_text_dataset(d) => Some("text-bow".to_string()),
        _ => None,
    };
    if text_model.is_some() && augmentation.is_some() {
        return Err(Error::invalid(
            "--augment is for image data, not text models",
        ));
    }
    let model_spec = model_spec.or_else(|| text_model.clone());
    let auto_model = model_spec.is_none();
    if auto_model && user_file.is_none() {
        return Err(Error::invalid(
            "--model is required (a built-in model, a JSON config or a saved model), \
             except with a data file (--dataset table.csv, .npz, .mat)",
        ));
    }
    let model_spec = model_spec.unwrap_or_else(|| "mlp".to_string());
    let source = match &text_model {
        Some(m) => ModelSource::Builtin(m.clone()),
        None => common::model_source(&model_spec)?,
    };
    let recipe = match &source {
        ModelSource::Builtin(n) if user_file.is_none() => Some(models::recipe(n)?),
        _ => None,
    };
    let dataset_name = a
        .dataset
        .clone()
        .or_else(|| recipe.map(|r| r.dataset.to_string()))
        .unwrap_or_else(|| "mnist".to_string());
    // A data file: split (seeded, stratified for classes) and preprocessed here; the
    // preprocessing and the split are saved with the model.
    let mut user = None;
    let mut train_weights = None;
    // A text run: its vocabulary (adapted on the training texts) and where its test
    // texts come from, saved with the model.
    let mut text_run = None;
    let mut test_texts: Option<Vec<String>> = None;
    let mut ds = if text_model.is_some() {
        let (ds, tv, run, texts) = text::load_run(
            &model_spec,
            &dataset_name,
            &a.text,
            a.test_split,
            a.seed,
            a.limit,
        )?;
        // --report shows the misclassified test texts themselves.
        if a.report {
            test_texts = Some(texts);
        }
        text_run = Some((tv, run));
        ds
    } else if let Some(file) = &user_file {
        let (ds, prep, split, weights) =
            user_data::load_weighted(file, &a.user_data, a.test_split, a.seed)?;
        user = Some((prep, split));
        train_weights = weights;
        ds
    } else if common::names_a_folder(&dataset_name) {
        let shape = match (&a.image_shape, &source) {
            (Some(s), _) => s.clone(),
            (None, ModelSource::Builtin(n)) if models::is_zoo(n) => vec![3, 32, 32],
            (None, _) => {
                let m = common::build_model(&model_spec, a.seed)?;
                nabla::layers::dims::known(m.input_shape()).ok_or_else(|| {
                    Error::invalid(format!(
                        "model '{}' takes inputs {:?}; an image folder needs a fixed image \
                         size (--image-shape)",
                        m.name,
                        m.input_shape()
                    ))
                })?
            }
        };
        common::load_folder_dataset(Path::new(&dataset_name), &shape, a.test_split)?
    } else {
        common::load_dataset(&dataset_name)?
    };
    let mut model = match (&user, &text_run) {
        (_, Some((tv, _))) => text::build_model(&model_spec, tv, common::num_classes(&ds), a.seed)?,
        (Some((prep, _)), _) if auto_model => user_data::default_model(&ds, prep.task, a.seed)?,
        _ => common::build_model_for(&model_spec, &ds, a.seed)?,
    };
    common::check_fits(&model, &ds)?;
    // An empty test set would end the run with loss 0/0, after the training.
    common::check_test_set(&ds)?;
    if let Some(aug) = &augmentation {
        // Before training starts: the truth tables are not images.
        if ds.x_train.shape().len() != 4 {
            return Err(Error::invalid(format!(
                "--augment needs an image data set, but '{}' has samples of shape {:?}",
                ds.name,
                &ds.x_train.shape()[1..]
            )));
        }
        aug.check_input(ds.x_train.shape())
            .map_err(|e| Error::invalid(format!("--augment: {e}")))?;
    }
    if let Some(limit) = a.limit {
        let n = limit.min(ds.x_train.shape()[0]);
        ds.x_train = ds.x_train.slice_rows(0, n);
        ds.y_train = ds.y_train.slice_rows(0, n);
        train_weights = train_weights.map(|w| w.slice_rows(0, n));
    }
    if let Some(n) = a.per_class {
        if ds.y_train.ndim() != 1 {
            return Err(Error::invalid(
                "--per-class needs one class index per training sample",
            ));
        }
        let classes: Vec<usize> = ds
            .y_train
            .to_f32_vec()
            .iter()
            .map(|&c| c as usize)
            .collect();
        let rows = nabla::data::per_class::per_class(&classes, n, a.seed)?;
        ds.x_train = ds.x_train.gather_rows(&rows);
        ds.y_train = ds.y_train.gather_rows(&rows);
        train_weights = train_weights.map(|w| w.gather_rows(&rows));
    }
    let class_weights = match &class_weight_spec {
        Some(spec) => {
            if user
                .as_ref()
                .is_some_and(|(prep, _)| prep.task == user_data::Task::Regression)
            {
                return Err(Error::invalid(
                    "--class-weight needs classes, but the task is regression",
                ));
            }
            let classes = match common::num_classes(&ds) {
                0 | 1 => 2,
                k => k,
            };
            Some(spec.resolve(&ds.y_train, classes)?)
        }
        None => None,
    };
    model.class_names = ds.class_names.clone();
    let transfer = transfer(&mut model, &a)?;
    // An autoencoder learns to give back its input: the images are the targets, and the
    // test labels are kept for the report's code space.
    let autoencoder = models::autoencoder::is_autoencoder(&model);
    let test_labels = ds.y_test.clone();
    if autoencoder {
        ds.y_train = ds.x_train.clone();
        ds.y_test = ds.x_test.clone();
    } else if a.denoise.is_some() {
        return Err(Error::invalid(format!(
            "--denoise is for autoencoders (a model with a '{}' layer that gives back its \
             input), not '{}'",
            models::autoencoder::CODE_LAYER,
            model.name
        )));
    }

    let loss = match (&a.loss, recipe, model.loss()) {
        (Some(l), _, _) => KerasLoss::from_name(l)?,
        (None, _, _) if user.is_some() => {
            user_data::loss_and_metrics(user.as_ref().expect("some").0.task).0
        }
        (None, Some(r), _) => r.loss,
        (None, None, Some(l)) => l.keras().ok_or_else(|| {
            Error::invalid(format!(
                "the model's loss '{}' is not a Keras loss; give one with --loss",
                l.name()
            ))
        })?,
        (None, None, None) => KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
    };
    let loss = match a.label_smoothing {
        Some(eps) => loss
            .with_label_smoothing(eps)
            .map_err(|e| Error::invalid(format!("--label-smoothing: {e}")))?,
        None => loss,
    };
    let optimizer = match (&a.optimizer, recipe) {
        (Some(o), _) => Optimizer::from_name(o, a.lr)?,
        (None, Some(r)) => {
            Optimizer::from_name(r.optimizer, Some(a.lr.unwrap_or(r.learning_rate)))?
        }
        (None, None) => match model.optimizer() {
            // A saved model goes on with its optimizer, state included (Adam's moments).
            Some(o) => {
                let mut kept = Optimizer::from_config(&o.config());
                kept.load_state(&o.state())?;
                if let Some(lr) = a.lr {
                    kept.set_learning_rate(lr);
                }
                kept
            }
            None => Optimizer::from_name("adam", a.lr)?,
        },
    };
    let optimizer = match a.weight_decay {
        Some(wd) => optimizer
            .with_weight_decay(wd)
            .map_err(|e| Error::invalid(format!("--weight-decay: {e}")))?,
        None => optimizer,
    };
    // A saved model's recipe: the batch size its run.json records.
    let saved_batch = match &source {
        ModelSource::Saved(dir) => std::fs::read_to_string(dir.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["batch_size"].as_u64())
            .map(|b| b as usize),
        _ => None,
    };
    let batch_size = a
        .batch_size
        .or(recipe.map(|r| r.batch_size))
        .or(saved_batch)
        .unwrap_or(32);
    // A categorical loss takes one-hot rows: class indices are encoded here.
    if matches!(loss, KerasLoss::CategoricalCrossentropy { .. }) && ds.y_train.ndim() == 1 {
        let k = common::num_classes(&ds)
            .max(ds.y_test.to_f32_vec().into_iter().fold(0.0f32, f32::max) as usize + 1);
        ds.y_train = nabla::data::to_categorical(&ds.y_train, k)?;
        ds.y_test = nabla::data::to_categorical(&ds.y_test, k)?;
    }
    let metrics: &[&str] = match &user {
        Some((prep, _)) => user_data::loss_and_metrics(prep.task).1,
        // Accuracy means nothing for a reconstruction; the mean squared error per pixel
        // says how close it is, in the pixels' own units.
        None if autoencoder => &["mse"],
        None => &["accuracy"],
    };
    model.compile(loss, optimizer, metrics)?;

    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}", model.name, dataset_name)));
    // Created and tried now so that an unwritable --out fails before training, and
    // removed again (the folders this run created, if still empty) when training fails.
    let created = missing_dirs(&out);
    nabla::formats::model_dir::check_writable(&out)?;
    let backup_dir = out.join(BACKUP_DIR);
    // A fresh run: an old backup in OUT is not this run's.
    if resumed_from.is_none() && backup_dir.exists() {
        std::fs::remove_dir_all(&backup_dir).map_err(|e| Error::io(&backup_dir, e))?;
    }
    let argv = resumed_from.clone().unwrap_or_else(train_argv);
    let argv_json = serde_json::to_vec_pretty(&argv).expect("json");

    let root = dp.as_ref().is_none_or(|dp| dp.rank() == 0);
    let mut fit = FitArgs::new()
        .epochs(a.epochs.unwrap_or(1))
        .batch_size(batch_size)
        .validation_split(a.validation_split)
        .verbose(if a.json { 0 } else { 1 });
    if let Some(dp) = &dp {
        fit = fit.distributed(dp.clone());
    }
    if let Some(patience) = a.early_stopping {
        fit = fit.callback(
            EarlyStopping::new(&a.monitor, patience).restore_best_weights(a.restore_best_weights),
        );
    }
    if let Some(s) = schedule {
        fit = fit.callback(LearningRateScheduler::new(s));
    }
    if let Some(patience) = a.reduce_lr_on_plateau {
        fit = fit.callback(ReduceLROnPlateau::new(&a.monitor, 0.1, patience));
    }
    if a.checkpoint && root {
        fit = fit.callback(
            ModelCheckpoint::new(out.join("checkpoint"))
                .monitor(&a.monitor)
                .save_best_only(true),
        );
    }
    if let Some(dir) = a.tensorboard.as_ref().filter(|_| root) {
        fit = fit.callback(nabla::TensorBoard::new(dir));
    }
    // Last, so that it saves every other callback's state of the epoch. Rank 0's only:
    // its backup is the one a resumed run broadcasts.
    if root {
        fit = fit.callback(
            nabla::BackupAndRestore::new(&backup_dir)
                .delete_checkpoint(false)
                .best_effort(true)
                .with_file(COMMAND_FILE, argv_json),
        );
    }
    if let Some(k) = std::env::var("NABLA_TEST_ABORT_AFTER_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        fit = fit.callback(AbortAfterEpoch(k));
    }
    if let Some(aug) = &augmentation {
        fit = fit.augmentation(aug.clone());
    }
    if let Some(cw) = &class_weights {
        fit = fit.class_weight(cw.clone());
    }
    if let Some(w) = &train_weights {
        fit = fit.sample_weight(w.clone());
    }
    if let Some(sigma) = a.denoise {
        let noise = models::autoencoder::GaussianNoise { sigma };
        nabla::training::BatchTransform::check_input(&noise, ds.x_train.shape())?;
        if augmentation.is_some() {
            return Err(Error::invalid(
                "--denoise and --augment cannot be combined (one transform of the inputs)",
            ));
        }
        fit = fit.augmentation(noise);
    }
    if let Some(dp) = dp.as_ref().filter(|_| root && !a.json) {
        println!(
            "Data-parallel over {} ranks (MPI): global batch {}, {} per rank, batch norm \
             statistics {:?}",
            dp.size(),
            dp.global_batch(batch_size),
            dp.global_batch(batch_size).div_ceil(dp.size()),
            dp.bn_stats
        );
    }
    if !a.json && root {
        println!(
            "Training {} on {} ({} samples), batch {}, {}, lr {}, seed {}",
            model.name,
            ds.name,
            ds.x_train.shape()[0],
            batch_size,
            model.optimizer().map(|o| o.describe()).unwrap_or_default(),
            model.optimizer().map(|o| o.learning_rate()).unwrap_or(0.0),
            a.seed
        );
        if let Some(aug) = &augmentation {
            println!("Augmenting the training batches: {}", aug.to_spec());
        }
        if let Some(cw) = &class_weights {
            let list: Vec<String> = cw.iter().map(|(c, w)| format!("{c}: {w:.4}")).collect();
            println!("Class weights: {}", list.join(", "));
        }
        if let Some(col) = &a.user_data.sample_weight {
            println!("Sample weights: column '{col}'");
        }
    }
    let start = Instant::now();
    let history = match model.fit(&ds.x_train, &ds.y_train, fit) {
        Ok(h) => h,
        Err(e) => {
            remove_if_empty(&created);
            match &dp {
                Some(dp) if dp.size() > 1 => super::distributed::fail(dp, e),
                _ => return Err(e),
            }
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    // The Gaussian of the training codes, which `nabla generate` samples.
    let codes_json = if autoencoder {
        let mut encoder = models::autoencoder::encoder(&mut model)?;
        let codes = encoder.predict(&ds.x_train, EVAL_BATCH)?;
        let stats = models::autoencoder::CodeStats::fit(&codes)?;
        Some(serde_json::to_string(&stats).expect("json"))
    } else {
        None
    };

    let ev = match &dp {
        Some(dp) => dp
            .evaluate(
                &mut model,
                std::slice::from_ref(&ds.x_test),
                std::slice::from_ref(&ds.y_test),
                EVAL_BATCH,
            )
            .unwrap_or_else(|e| super::distributed::fail(dp, e)),
        None => model.evaluate(&ds.x_test, &ds.y_test, EVAL_BATCH)?,
    };
    if !root {
        // Rank 0 saves the model and writes the report.
        return Ok(0);
    }
    let images: usize = history.epoch.len() * ds.x_train.shape()[0];
    let result = serde_json::json!({
        "model": model.name,
        "dataset": ds.name,
        "loss": ev.loss,
        "accuracy": ev.accuracy(),
        "metrics": ev.metrics,
        "epochs": history.epoch.len(),
        "seconds": seconds,
        "images_per_second": images as f64 / seconds,
        "seed": a.seed,
        "batch_size": batch_size,
        "augmentation": augmentation,
        "class_weight": class_weight_spec.as_ref().zip(class_weights.as_ref()).map(|(spec, cw)| {
            serde_json::json!({
                "spec": spec.text,
                "weights": cw.iter().map(|(c, w)| (c.to_string(), w)).collect::<std::collections::BTreeMap<_, _>>(),
            })
        }),
        "sample_weight": a.user_data.sample_weight,
        "out": out.display().to_string(),
        "resumed": resumed_from.is_some(),
        "text": text_run.as_ref().map(|(_, run)| run),
        "transfer": transfer,
        "denoise": a.denoise,
        "ranks": dp.as_ref().map_or(1, |dp| dp.size()),
    });
    let run_json = serde_json::to_string_pretty(&result).expect("json");
    // Model, history and run.json as one unit: run.json never describes other weights.
    let history_json = history.to_json();
    // A data file's preprocessing and split travel in the same unit: predict and
    // evaluate encode inputs with exactly what these weights were trained on.
    let user_json = user.as_ref().map(|(prep, split)| {
        (
            serde_json::to_string_pretty(prep).expect("json"),
            serde_json::to_string(split).expect("json"),
        )
    });
    let mut files: Vec<(&str, &[u8])> = vec![
        ("history.json", history_json.as_bytes()),
        ("run.json", run_json.as_bytes()),
    ];
    if let Some((prep, split)) = &user_json {
        files.push((user_data::PREPROCESSING_FILE, prep.as_bytes()));
        files.push((user_data::SPLIT_FILE, split.as_bytes()));
    }
    // The vocabulary travels with the weights it was trained with.
    let vocabulary_json = text_run.as_ref().map(|(tv, _)| tv.to_json());
    if let Some(v) = &vocabulary_json {
        files.push((text::VOCABULARY_FILE, v.as_bytes()));
    }
    if let Some(c) = &codes_json {
        files.push((models::autoencoder::CODES_FILE, c.as_bytes()));
    }
    let save = || nabla::formats::model_dir::save_with(&model, &out, &files);
    if let Err(e) = save() {
        // On a nearly full disk the per-epoch backup may be what leaves no room: the run
        // is complete, so drop it and try once more (the old model stays whole).
        if !backup_dir.exists() {
            return Err(e);
        }
        std::fs::remove_dir_all(&backup_dir).map_err(|e| Error::io(&backup_dir, e))?;
        save()?;
    }
    // The run is complete and saved: its backup is no longer needed.
    if backup_dir.exists() {
        std::fs::remove_dir_all(&backup_dir).map_err(|e| Error::io(&backup_dir, e))?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&result).expect("json"));
    } else {
        println!("{}", test_line(&ev));
        println!("Saved the model to {}", out.display());
    }
    if a.report {
        let opts = nabla::report::ReportOptions {
            batch_size: EVAL_BATCH,
            ..Default::default()
        };
        let dir = out.join(nabla::report::REPORT_DIR);
        let texts = test_texts.as_deref();
        let page = if autoencoder {
            ds.y_test = test_labels;
            super::report::write_autoencoder(&mut model, &out, &ds, &dir)?
        } else {
            super::report::write(&mut model, &out, &ds, texts, &dir, &opts)?
        };
        if !a.json {
            println!("Wrote the report to {}", page.display());
        }
    }
    Ok(0)
}

/// `--init-from`, `--freeze-until`, `--fine-tune-from`: loads the run's weights by name
/// (shapes that differ are skipped) and freezes layers; prints what it did (unless
/// `--json`) and returns it for run.json.
fn transfer(model: &mut nabla::Sequential, a: &TrainArgs) -> Result<Option<serde_json::Value>> {
    if a.init_from.is_none() && a.freeze_until.is_none() && a.fine_tune_from.is_none() {
        return Ok(None);
    }
    let mut out = serde_json::Map::new();
    if let Some(dir) = &a.init_from {
        // A PyTorch state dict (torchvision names, mapped by the model's zoo name), or
        // the folder of a saved run.
        let torch = dir.is_file() && nabla::formats::torch_names::is_torch_file(dir);
        if !dir.is_dir() && !torch {
            return Err(Error::invalid(format!(
                "--init-from {}: no such folder or PyTorch weights file (give the folder \
                 of a saved run, or a torchvision state dict: .pth, .pt, .safetensors)",
                dir.display()
            )));
        }
        // The new top's fresh weights, put back after loading (--init-until).
        let top = match &a.init_until {
            Some(layer) => fresh_top(model, layer)?,
            None => Vec::new(),
        };
        let mut report = if torch {
            model.load_torch_state_dict(dir, true, true)
        } else {
            model.load_weights(dir, true, true)
        }
        .map_err(|e| Error::invalid(format!("--init-from {}: {e}", dir.display())))?;
        for (_, var, value) in &top {
            var.set_value(value.clone());
        }
        let fresh: Vec<String> = top.into_iter().map(|(name, _, _)| name).collect();
        report.loaded.retain(|n| !fresh.contains(n));
        if report.loaded.is_empty() {
            return Err(Error::invalid(format!(
                "--init-from {}: no weight of model '{}' matches the file's by name and \
                 shape, so nothing would be transferred",
                dir.display(),
                model.name
            )));
        }
        if !a.json {
            print!("{}", report.describe());
            if let Some(layer) = &a.init_until {
                println!(
                    "New top after '{layer}': {} weights keep their fresh initialization",
                    fresh.len()
                );
            }
        }
        out.insert("init_from".into(), dir.display().to_string().into());
        if let Some(layer) = &a.init_until {
            out.insert("init_until".into(), layer.clone().into());
            out.insert("fresh".into(), fresh.into());
        }
        out.insert("loaded".into(), report.loaded.into());
        out.insert(
            "skipped".into(),
            report
                .skipped
                .iter()
                .map(|(n, why)| serde_json::json!({"weight": n, "reason": why}))
                .collect(),
        );
        out.insert("missing".into(), report.missing.into());
    }
    let named = |opt: &str, e: Error| Error::invalid(format!("{opt}: {e}"));
    if let Some(layer) = &a.freeze_until {
        model
            .freeze_until(layer.as_str())
            .map_err(|e| named("--freeze-until", e))?;
        out.insert("freeze_until".into(), layer.clone().into());
    }
    if let Some(layer) = &a.fine_tune_from {
        model
            .fine_tune_from(layer.as_str())
            .map_err(|e| named("--fine-tune-from", e))?;
        out.insert("fine_tune_from".into(), layer.clone().into());
    }
    let (trainable, fixed) = model.count_params();
    if !a.json && (a.freeze_until.is_some() || a.fine_tune_from.is_some()) {
        println!("Trainable params: {trainable}, non-trainable params: {fixed}");
    }
    out.insert("trainable_params".into(), trainable.into());
    out.insert("non_trainable_params".into(), fixed.into());
    Ok(Some(serde_json::Value::Object(out)))
}

/// `--init-until LAYER`: the weights of the layers after LAYER with copies of their
/// fresh values, to put back once the run's weights are loaded.
fn fresh_top(
    model: &nabla::Sequential,
    layer: &str,
) -> Result<Vec<(String, nabla::Var, nabla::Tensor)>> {
    let last = model
        .layer_index(layer)
        .map_err(|e| Error::invalid(format!("--init-until: {e}")))?;
    Ok(model.layers()[last + 1..]
        .iter()
        .flat_map(|l| l.params())
        .map(|p| {
            let value = p.var.value();
            (p.name, p.var, value)
        })
        .collect())
}

/// The arguments after `train` on this process's command line (what `--resume` repeats).
fn train_argv() -> Vec<String> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    match all.iter().position(|a| a == "train") {
        Some(i) => all[i + 1..].to_vec(),
        None => all,
    }
}

/// For the resume tests: dies (abort, no clean-up, like a kill) once epoch `.0` (1-based)
/// is backed up, when `NABLA_TEST_ABORT_AFTER_EPOCH` is set.
struct AbortAfterEpoch(usize);

impl nabla::training::Callback for AbortAfterEpoch {
    fn on_epoch_state(
        &mut self,
        state: &nabla::training::FitState,
        _model: &mut nabla::Sequential,
    ) -> Result<()> {
        if state.next_epoch == self.0 {
            std::process::abort();
        }
        Ok(())
    }
}

/// `--class-weight`: `balanced` or `CLASS:WEIGHT,...`, parsed before any data is loaded.
struct ClassWeightSpec {
    /// As given (recorded in run.json).
    text: String,
    /// `None`: balanced.
    pairs: Option<Vec<(usize, f32)>>,
}

impl ClassWeightSpec {
    fn parse(text: &str) -> Result<ClassWeightSpec> {
        let bad = |why: String| {
            Error::invalid(format!(
                "--class-weight {text:?}: {why}; give `balanced` or CLASS:WEIGHT pairs \
                 such as 0:1,1:5"
            ))
        };
        let t = text.trim();
        if t == "balanced" {
            return Ok(ClassWeightSpec {
                text: t.to_string(),
                pairs: None,
            });
        }
        let mut pairs = Vec::new();
        for item in t.split(',') {
            let Some((c, w)) = item.split_once(':') else {
                return Err(bad(format!("{item:?} is not CLASS:WEIGHT")));
            };
            let c: usize = c.trim().parse().map_err(|_| {
                bad(format!(
                    "class {:?} is not a class index (0, 1, ...)",
                    c.trim()
                ))
            })?;
            let w: f32 = w.trim().parse().map_err(|_| {
                bad(format!(
                    "weight {:?} of class {c} is not a number",
                    w.trim()
                ))
            })?;
            if !(w.is_finite() && w >= 0.0) {
                return Err(bad(format!(
                    "the weight of class {c} is {w}; weights must be finite and >= 0"
                )));
            }
            if pairs.iter().any(|&(k, _)| k == c) {
                return Err(bad(format!("class {c} is given twice")));
            }
            pairs.push((c, w));
        }
        Ok(ClassWeightSpec {
            text: t.to_string(),
            pairs: Some(pairs),
        })
    }

    /// The weights for training labels `y` of `classes` classes; a class index out of
    /// range is an error naming the option.
    fn resolve(&self, y: &nabla::Tensor, classes: usize) -> Result<ClassWeights> {
        let named = |e: Error| Error::invalid(format!("--class-weight {:?}: {e}", self.text));
        let cw = match &self.pairs {
            None => ClassWeights::balanced(y, classes).map_err(named)?,
            Some(pairs) => ClassWeights::new(pairs).map_err(named)?,
        };
        if let Some(c) = cw.max_class().filter(|&c| c >= classes) {
            return Err(Error::invalid(format!(
                "--class-weight {:?}: unknown class {c}; the data has {classes} classes \
                 (0..{})",
                self.text,
                classes - 1
            )));
        }
        Ok(cw)
    }
}

/// Ranges of the numeric options, checked before any data is loaded.
fn check_options(a: &TrainArgs) -> Result<()> {
    if let Some(lr) = a.lr {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::invalid(format!(
                "--lr must be a number > 0, got {lr}"
            )));
        }
    }
    let split = |flag: &str, v: f64, zero_ok: bool| {
        if v.is_finite() && (0.0..1.0).contains(&v) && (zero_ok || v > 0.0) {
            Ok(())
        } else {
            let range = if zero_ok { "[0, 1)" } else { "(0, 1)" };
            Err(Error::invalid(format!(
                "{flag} must be in {range}, got {v}"
            )))
        }
    };
    split("--validation-split", a.validation_split, true)?;
    split("--test-split", a.test_split, false)?;
    if a.batch_size == Some(0) {
        return Err(Error::invalid("--batch-size must be at least 1"));
    }
    if a.epochs == Some(0) {
        return Err(Error::invalid("--epochs must be at least 1"));
    }
    if a.limit == Some(0) {
        return Err(Error::invalid("--limit must be at least 1"));
    }
    // Callbacks watching a validation metric need a validation split, known before the
    // first epoch rather than found missing after it.
    let watches_val =
        a.early_stopping.is_some() || a.checkpoint || a.reduce_lr_on_plateau.is_some();
    if watches_val && a.monitor.starts_with("val_") && a.validation_split == 0.0 {
        let flag = if a.checkpoint {
            "--checkpoint"
        } else if a.early_stopping.is_some() {
            "--early-stopping"
        } else {
            "--reduce-lr-on-plateau"
        };
        return Err(Error::invalid(format!(
            "{flag} watches '{}', which needs a validation split: add --validation-split \
             (e.g. 0.1) or --monitor loss",
            a.monitor
        )));
    }
    Ok(())
}

/// `dir` and those of its ancestors that do not exist yet, deepest first.
fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .filter(|d| !d.as_os_str().is_empty())
        .take_while(|d| !d.exists())
        .map(Path::to_path_buf)
        .collect()
}

/// Removes the folders `missing_dirs` listed, deepest first, as long as they are empty
/// (a checkpoint written before the failure is kept). Best effort.
fn remove_if_empty(dirs: &[PathBuf]) {
    for d in dirs {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
    }
}

/// `--model tiny-yolo`: a detection run (its own loop and run folder, `detection_run`).
fn detection(model: &str, a: TrainArgs, resumed: bool) -> Result<i32> {
    if resumed {
        return Err(Error::invalid(format!(
            "--resume is not supported for {model}: train it again"
        )));
    }
    // What the detection loop does not do is refused, not silently ignored.
    let unsupported = [
        ("--optimizer", a.optimizer.is_some()),
        ("--loss", a.loss.is_some()),
        ("--label-smoothing", a.label_smoothing.is_some()),
        ("--weight-decay", a.weight_decay.is_some()),
        ("--schedule", a.schedule.is_some()),
        ("--early-stopping", a.early_stopping.is_some()),
        ("--reduce-lr-on-plateau", a.reduce_lr_on_plateau.is_some()),
        ("--checkpoint", a.checkpoint),
        ("--tensorboard", a.tensorboard.is_some()),
        ("--validation-split", a.validation_split != 0.0),
        ("--class-weight", a.class_weight.is_some()),
        ("--per-class", a.per_class.is_some()),
        ("--image-shape", a.image_shape.is_some()),
        ("--init-from", a.init_from.is_some()),
        ("--freeze-until", a.freeze_until.is_some()),
        ("--fine-tune-from", a.fine_tune_from.is_some()),
        ("--denoise", a.denoise.is_some()),
        ("--distributed", a.distributed.distributed),
    ];
    let given: Vec<&str> = unsupported.iter().filter(|u| u.1).map(|u| u.0).collect();
    if !given.is_empty() {
        return Err(Error::invalid(format!(
            "{model} trains with its own recipe (Adam, cosine lr, box-aware augmentation); \
             {} not supported for it",
            given.join(", ")
        )));
    }
    let dataset = a.dataset.clone().ok_or_else(|| {
        Error::invalid(format!(
            "{model} needs --dataset: mnist-detect, a COCO instances JSON file or a YOLO folder"
        ))
    })?;
    detection_run::train(detection_run::TrainOptions {
        dataset,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        limit: a.limit,
        test_split: a.test_split,
        augment: a.augment,
        out: a.out,
        json: a.json,
        report: a.report,
        width: a.width,
    })
}
