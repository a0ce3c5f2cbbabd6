//! A detection run: `nabla train --model tiny-yolo --dataset mnist-detect|PATH` and what
//! the other commands (`evaluate`, `detect`, `report`) need to use its folder again.
//!
//! The run folder holds the model as any run does (model.json, weights, history.json,
//! run.json) plus `detection.json` ([`RunInfo`]): the categories in the order of the
//! head's class channels (class index `i` is `categories[i]`), the input shape, the
//! decoding options, and where the data came from, so `evaluate` rebuilds the same test
//! split without being told.
//!
//! Training is its own loop over `Model::train_step`, not `fit`: `fit` batches label
//! tensors, while a detector's targets are lists of boxes per image (`DetectionTargets`),
//! and its augmentation must move the boxes with the pixels.

use nabla::data::detection::augment::{random_scale_translate, ImageDims, ScaleTranslate};
use nabla::data::detection::{
    load_detection_images, mnist_detect, read_coco_instances, read_yolo_folder, MnistDetectOptions,
    Split,
};
use nabla::detection::{Detection, DetectionDataset};
use nabla::error::{Error, Result};
use nabla::models::yolo::{
    decode, tiny_yolo_with, DecodeOptions, DetectionTargets, TargetBox, TinyYoloConfig, YoloLoss,
};
use nabla::training::History;
use nabla::{Optimizer, Rng, Sequential, Target, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The run's detection facts, saved as `detection.json` next to the model.
pub const RUN_FILE: &str = "detection.json";
/// The name the detector's loss is saved under (`losses::register`).
const LOSS_NAME: &str = "yolo";

/// The recipe's defaults (what `nabla train --model tiny-yolo` uses when not told).
pub const DEFAULT_EPOCHS: usize = 5;
pub const DEFAULT_BATCH: usize = 32;
pub const DEFAULT_LR: f32 = 0.003;
/// The network's width (filters of its stem).
pub const DEFAULT_WIDTH: usize = 8;
/// Test images scored after each epoch (the `val_map50` of the history).
const VAL_IMAGES: usize = 200;

/// Where a run's data came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataSource {
    /// The built-in set: its generator's options.
    MnistDetect {
        seed: u64,
        size: usize,
        train: usize,
        test: usize,
    },
    /// A COCO instances file or a YOLO folder; the test split is the last `test_split`
    /// of the images after a shuffle seeded by `seed`.
    Files {
        path: PathBuf,
        test_split: f64,
        seed: u64,
    },
}

/// `detection.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunInfo {
    /// Class index `i` of the head is `categories[i]` (COCO ids and names).
    pub categories: Vec<CategoryInfo>,
    /// `[C, H, W]` of the model's input.
    pub input_shape: Vec<usize>,
    pub score_threshold: f64,
    pub iou_threshold: f64,
    pub max_detections: usize,
    pub data: DataSource,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CategoryInfo {
    pub id: i64,
    pub name: String,
}

impl RunInfo {
    /// The run's `detection.json`, or `None` when `dir` is not a detection run.
    pub fn load(dir: &Path) -> Result<Option<RunInfo>> {
        let path = dir.join(RUN_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let info: RunInfo = serde_json::from_str(&text)
            .map_err(|e| Error::format(&path, format!("not a detection run file: {e}")))?;
        if info.categories.is_empty() || info.input_shape.len() != 3 {
            return Err(Error::format(
                &path,
                "a detection run needs at least one category and an input shape [C, H, W]",
            ));
        }
        Ok(Some(info))
    }

    pub fn num_classes(&self) -> usize {
        self.categories.len()
    }

    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            score_threshold: self.score_threshold,
            iou_threshold: self.iou_threshold,
            max_detections: self.max_detections,
            ..DecodeOptions::default()
        }
    }

    pub fn class_names(&self) -> Vec<String> {
        self.categories.iter().map(|c| c.name.clone()).collect()
    }

    /// The category id of class index `class`.
    pub fn category_id(&self, class: usize) -> i64 {
        self.categories[class].id
    }

    /// The test split the run was scored on, reloaded from its source.
    pub fn test_set(&self) -> Result<DetectionDataset> {
        Ok(load_split(&self.data)?.1)
    }
}

/// Loads a detection run's model (its loss registered first, so the model loads).
pub fn load_model(dir: &Path, info: &RunInfo) -> Result<Sequential> {
    let k = info.num_classes();
    nabla::losses::register(LOSS_NAME, move || std::sync::Arc::new(YoloLoss::new(k)))?;
    super::common::load_saved(dir)
}

/// Whether `--model NAME` asks for a detection run.
pub fn is_detection_model(name: &str) -> bool {
    name == "tiny-yolo"
}

/// What `nabla train` passes on to a detection run.
pub struct TrainOptions {
    pub dataset: String,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub lr: Option<f32>,
    pub seed: u64,
    pub limit: Option<usize>,
    pub test_split: f64,
    pub augment: Option<String>,
    pub out: Option<PathBuf>,
    pub json: bool,
    pub report: bool,
    pub width: Option<usize>,
}

/// Reads a data source into its train and test splits.
pub fn load_split(src: &DataSource) -> Result<(DetectionDataset, DetectionDataset)> {
    match src {
        DataSource::MnistDetect {
            seed,
            size,
            train,
            test,
        } => {
            let opts = MnistDetectOptions {
                seed: *seed,
                size: *size,
                train: *train,
                test: *test,
                cache_dir: None,
            };
            Ok((
                mnist_detect(Split::Train, &opts)?,
                mnist_detect(Split::Test, &opts)?,
            ))
        }
        DataSource::Files {
            path,
            test_split,
            seed,
        } => {
            let all = read_labelled(path)?;
            split_images(all, *test_split, *seed, path)
        }
    }
}

/// A COCO instances JSON file or a YOLO folder.
pub fn read_labelled(path: &Path) -> Result<DetectionDataset> {
    if path.is_dir() {
        read_yolo_folder(path)
    } else if path.is_file() {
        // Image file names are relative to an `images/` folder beside the JSON file if
        // there is one, else to the JSON file's folder; every image must exist.
        let dir = path.parent().unwrap_or(Path::new("."));
        let images = if dir.join("images").is_dir() {
            dir.join("images")
        } else {
            dir.to_path_buf()
        };
        read_coco_instances(path, Some(&images))
    } else {
        Err(Error::invalid(format!(
            "--dataset {}: no such file or folder (give mnist-detect, a COCO instances \
             JSON file or a YOLO folder with images/ and labels/)",
            path.display()
        )))
    }
}

/// Shuffles the images (seeded) and holds out the last `test_split` of them.
fn split_images(
    mut all: DetectionDataset,
    test_split: f64,
    seed: u64,
    path: &Path,
) -> Result<(DetectionDataset, DetectionDataset)> {
    if !(test_split > 0.0 && test_split < 1.0) {
        return Err(Error::invalid(format!(
            "--test-split must be in (0, 1) for a labelled folder or file, got {test_split}"
        )));
    }
    let n = all.images.len();
    let n_test = ((n as f64 * test_split).round() as usize).max(1);
    if n < 2 || n_test >= n {
        return Err(Error::format(
            path,
            format!("{n} images are too few to hold out a test split of {test_split}"),
        ));
    }
    let mut rng = Rng::new(seed);
    for i in (1..n).rev() {
        all.images.swap(i, rng.below(i + 1));
    }
    let test_images = all.images.split_off(n - n_test);
    let test = DetectionDataset {
        images: test_images,
        categories: all.categories.clone(),
    };
    Ok((all, test))
}

/// Per image its boxes as targets: category ids mapped to class indices.
fn targets_of(ds: &DetectionDataset, ids: &[i64]) -> Result<Vec<Vec<TargetBox>>> {
    ds.images
        .iter()
        .map(|im| {
            im.objects
                .iter()
                .filter(|o| !o.crowd)
                .map(|o| {
                    let class = ids
                        .iter()
                        .position(|&c| c == o.category_id)
                        .ok_or_else(|| {
                            Error::format(
                                &im.path,
                                format!(
                                    "category id {} is not one of the data set's",
                                    o.category_id
                                ),
                            )
                        })?;
                    Ok(TargetBox {
                        bbox: o.bbox,
                        class,
                    })
                })
                .collect()
        })
        .collect()
}

/// The channels a data set's images are loaded with: grey for mnist-detect, RGB else.
fn channels_for(src: &DataSource) -> usize {
    match src {
        DataSource::MnistDetect { .. } => 1,
        DataSource::Files { .. } => 3,
    }
}

/// Runs the detector on `x` (`[N, C, H, W]`) and returns per image its detections with
/// `image_id` the index in `x` and `category_id` the category's id.
pub fn detect_batch(
    model: &mut Sequential,
    info: &RunInfo,
    x: &Tensor,
) -> Result<Vec<Vec<Detection>>> {
    let out = model.predict(x, 64)?;
    let mut per_image = decode(&out, info.num_classes(), &info.decode_options())?;
    for dets in &mut per_image {
        for d in dets.iter_mut() {
            d.category_id = info.category_id(d.category_id as usize);
        }
    }
    Ok(per_image)
}

/// The detections of every image of `ds` (its pixels `x`), image ids from `ds`.
pub fn detect_dataset(
    model: &mut Sequential,
    info: &RunInfo,
    ds: &DetectionDataset,
    x: &Tensor,
) -> Result<Vec<Detection>> {
    let per_image = detect_batch(model, info, x)?;
    Ok(per_image
        .into_iter()
        .zip(&ds.images)
        .flat_map(|(dets, im)| {
            dets.into_iter().map(move |d| Detection {
                image_id: im.id,
                ..d
            })
        })
        .collect())
}

/// The data set's images as a batch, in the run's input shape (an error names the first
/// image of another size).
pub fn load_images(ds: &DetectionDataset, info: &RunInfo) -> Result<Tensor> {
    let x = load_detection_images(ds, info.input_shape[0])?;
    if x.shape()[1..] != info.input_shape[..] {
        return Err(Error::invalid(format!(
            "the images are {:?} (C, H, W), the detector takes {:?}",
            &x.shape()[1..],
            info.input_shape
        )));
    }
    Ok(x)
}

/// The augmentation of a detection run: `none`, or `scale=S,shift=T` (zoom by a factor
/// in [1-S, 1+S] about the centre, shift by up to T of the side). Default: scale=0.25,
/// shift=0.1. No flips: mirrored digits are other digits.
fn parse_augment(spec: Option<&str>) -> Result<Option<ScaleTranslate>> {
    let mut st = ScaleTranslate::default();
    let Some(spec) = spec else {
        return Ok(Some(st));
    };
    if spec == "none" {
        return Ok(None);
    }
    for part in spec.split(',') {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let v: f64 = value.parse().map_err(|_| {
            Error::invalid(format!(
                "--augment for a detector: '{part}' is not scale=S or shift=T (or none)"
            ))
        })?;
        match key {
            "scale" if (0.0..1.0).contains(&v) => st.scale = (1.0 - v, 1.0 + v),
            "shift" if (0.0..=1.0).contains(&v) => st.translate = v,
            _ => {
                return Err(Error::invalid(format!(
                    "--augment for a detector: '{part}' is not scale=S (0 <= S < 1) or \
                     shift=T (0 <= T <= 1), or none"
                )))
            }
        }
    }
    Ok(Some(st))
}

/// `nabla train --model tiny-yolo ...`.
pub fn train(a: TrainOptions) -> Result<i32> {
    let augment = parse_augment(a.augment.as_deref())?;
    let epochs = a.epochs.unwrap_or(DEFAULT_EPOCHS);
    let batch_size = a.batch_size.unwrap_or(DEFAULT_BATCH).max(1);
    let lr = a.lr.unwrap_or(DEFAULT_LR);
    if !(lr.is_finite() && lr > 0.0) || epochs == 0 {
        return Err(Error::invalid(format!(
            "a detector needs a positive --lr and at least one epoch, got lr {lr}, {epochs} \
             epochs"
        )));
    }
    let data = if a.dataset == "mnist-detect" {
        let d = MnistDetectOptions::default();
        DataSource::MnistDetect {
            seed: 0,
            size: d.size,
            train: d.train,
            test: d.test,
        }
    } else {
        DataSource::Files {
            path: PathBuf::from(&a.dataset),
            test_split: a.test_split,
            seed: a.seed,
        }
    };
    let (mut train_ds, test_ds) = load_split(&data)?;
    if let Some(n) = a.limit {
        train_ds.images.truncate(n.max(1));
    }
    let ids = train_ds.category_ids();
    if ids.is_empty() {
        return Err(Error::invalid(format!(
            "--dataset {}: no categories, nothing to detect",
            a.dataset
        )));
    }
    let categories: Vec<CategoryInfo> = ids
        .iter()
        .map(|&id| CategoryInfo {
            id,
            name: train_ds.category_name(id).unwrap_or("?").to_string(),
        })
        .collect();
    let channels = channels_for(&data);
    let x_train = load_detection_images(&train_ds, channels)?;
    let input_shape = x_train.shape()[1..].to_vec();
    let info = RunInfo {
        categories,
        input_shape: input_shape.clone(),
        score_threshold: DecodeOptions::default().score_threshold,
        iou_threshold: DecodeOptions::default().iou_threshold,
        max_detections: DecodeOptions::default().max_detections,
        data: data.clone(),
    };
    let x_test = load_images(&test_ds, &info)?;
    let train_targets = targets_of(&train_ds, &ids)?;
    let k = ids.len();
    let cfg = TinyYoloConfig {
        width: a.width.unwrap_or(DEFAULT_WIDTH),
        ..TinyYoloConfig::new(&input_shape, k)
    };
    let mut model = tiny_yolo_with(&cfg, a.seed)?;
    model.class_names = info.class_names();
    nabla::losses::register(LOSS_NAME, move || std::sync::Arc::new(YoloLoss::new(k)))?;
    model.compile(YoloLoss::new(k), Optimizer::adam(lr), &[])?;

    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/tiny-yolo-{}", dataset_tag(&a.dataset))));
    nabla::formats::model_dir::check_writable(&out)?;

    let n = train_ds.images.len();
    if !a.json {
        println!(
            "Training tiny-yolo (width {}) on {} ({n} images {:?}, {} objects, {k} classes), \
             batch {batch_size}, adam, lr {lr} (cosine to 0), {epochs} epochs, seed {}",
            cfg.width,
            a.dataset,
            input_shape,
            train_ds.num_objects(),
            a.seed
        );
        match &augment {
            Some(st) => println!(
                "Augmenting: zoom {:.2}-{:.2}, shift up to {:.2} (boxes moved with the pixels)",
                st.scale.0, st.scale.1, st.translate
            ),
            None => println!("No augmentation"),
        }
    }
    let dims = ImageDims {
        channels: input_shape[0],
        height: input_shape[1],
        width: input_shape[2],
    };
    let per_image = dims.channels * dims.height * dims.width;
    let pixels = x_train.to_f32_vec();
    let val_n = VAL_IMAGES.min(test_ds.images.len());
    let val_ds = DetectionDataset {
        images: test_ds.images[..val_n].to_vec(),
        categories: test_ds.categories.clone(),
    };
    let x_val = x_test.slice_rows(0, val_n);

    let mut rng = Rng::new(a.seed ^ 0x5eed_de7e);
    let mut history = History::default();
    let batches = n.div_ceil(batch_size);
    let total_steps = epochs * batches;
    let start = Instant::now();
    let mut step = 0usize;
    for epoch in 0..epochs {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let epoch_start = Instant::now();
        let mut loss_sum = 0.0f64;
        for (b, chunk) in order.chunks(batch_size).enumerate() {
            // Cosine decay over the whole run, per step.
            let t = step as f64 / total_steps as f64;
            let lr_now = lr * (0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32;
            if let Some(o) = model.optimizer_mut() {
                o.set_learning_rate(lr_now);
            }
            let mut xb = Vec::with_capacity(chunk.len() * per_image);
            let mut tb = Vec::with_capacity(chunk.len());
            for &i in chunk {
                let img = &pixels[i * per_image..(i + 1) * per_image];
                let boxes = &train_targets[i];
                match &augment {
                    Some(st) => {
                        let bbs: Vec<_> = boxes.iter().map(|t| t.bbox).collect();
                        let aug = random_scale_translate(img, dims, &bbs, st, &mut rng)?;
                        xb.extend_from_slice(&aug.image);
                        tb.push(
                            aug.kept
                                .iter()
                                .zip(&aug.boxes)
                                .map(|(&j, &bbox)| TargetBox {
                                    bbox,
                                    class: boxes[j].class,
                                })
                                .filter(|t| t.bbox.width() >= 1.0 && t.bbox.height() >= 1.0)
                                .collect(),
                        );
                    }
                    None => {
                        xb.extend_from_slice(img);
                        tb.push(boxes.clone());
                    }
                }
            }
            let xb = Tensor::from_vec(xb, &[chunk.len(), dims.channels, dims.height, dims.width]);
            let loss = model
                .train_step(&[xb], &[Target::new(DetectionTargets::new(tb))])?
                .loss;
            loss_sum += loss as f64;
            step += 1;
            if !a.json {
                progress(
                    epoch,
                    epochs,
                    b + 1,
                    batches,
                    loss_sum / (b + 1) as f64,
                    &epoch_start,
                );
            }
        }
        let mut logs = BTreeMap::new();
        logs.insert("loss".to_string(), (loss_sum / batches as f64) as f32);
        let dets = detect_dataset(&mut model, &info, &val_ds, &x_val)?;
        let ev = nabla::detection::coco_evaluate(&val_ds, &dets)?;
        logs.insert("val_map50".to_string(), ev.stats[1] as f32);
        logs.insert("val_map".to_string(), ev.stats[0] as f32);
        history.push(epoch, &logs);
        if !a.json {
            println!(
                " - {:.0}s - loss {:.4} - val mAP@0.5 {:.4} ({val_n} test images) - {:.1} min total",
                epoch_start.elapsed().as_secs_f64(),
                logs["loss"],
                ev.stats[1],
                start.elapsed().as_secs_f64() / 60.0
            );
        }
    }
    let seconds = start.elapsed().as_secs_f64();

    let dets = detect_dataset(&mut model, &info, &test_ds, &x_test)?;
    let ev = nabla::detection::coco_evaluate(&test_ds, &dets)?;
    let result = serde_json::json!({
        "model": "tiny-yolo",
        "dataset": a.dataset,
        "task": "detection",
        "epochs": epochs,
        "seconds": seconds,
        "images_per_second": (epochs * n) as f64 / seconds,
        "seed": a.seed,
        "batch_size": batch_size,
        "lr": lr,
        "width": cfg.width,
        "augment": augment.map(|st| serde_json::json!({"scale": [st.scale.0, st.scale.1], "shift": st.translate})),
        "train_images": n,
        "test_images": test_ds.images.len(),
        "map50": ev.stats[1],
        "map75": ev.stats[2],
        "map": ev.stats[0],
        "out": out.display().to_string(),
    });
    let run_json = serde_json::to_string_pretty(&result).expect("json");
    let history_json = history.to_json();
    let info_json = serde_json::to_string_pretty(&info).expect("json");
    let files: Vec<(&str, &[u8])> = vec![
        ("history.json", history_json.as_bytes()),
        ("run.json", run_json.as_bytes()),
        (RUN_FILE, info_json.as_bytes()),
    ];
    nabla::formats::model_dir::save_with(&model, &out, &files)?;
    if a.json {
        println!("{}", serde_json::to_string(&result).expect("json"));
    } else {
        println!(
            "Test ({} images): mAP@0.5 {:.4}, AP@0.75 {:.4}, AP@[.5:.95] {:.4} ({:.1} min of training)",
            test_ds.images.len(),
            ev.stats[1],
            ev.stats[2],
            ev.stats[0],
            seconds / 60.0
        );
        println!("Saved the model to {}", out.display());
    }
    if a.report {
        let page = super::detection_report::write(&out, &mut model, &info)?;
        if !a.json {
            println!("Wrote the report to {}", page.display());
        }
    }
    Ok(0)
}

/// A file-name-safe tag of the data set for the default run folder.
fn dataset_tag(name: &str) -> String {
    let stem = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| name.to_string());
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One line, redrawn in place: epoch, a bar, the running loss, the time.
fn progress(epoch: usize, epochs: usize, done: usize, total: usize, loss: f64, start: &Instant) {
    let width = 30;
    let filled = done * width / total;
    let elapsed = start.elapsed().as_secs_f64();
    let eta = elapsed / done as f64 * (total - done) as f64;
    print!(
        "\rEpoch {}/{epochs} [{}{}] {done}/{total} - loss {loss:.4} - {elapsed:.0}s (eta {eta:.0}s)",
        epoch + 1,
        "=".repeat(filled),
        ".".repeat(width - filled),
    );
    let _ = std::io::stdout().flush();
}
