//! The report of a detection run (`nabla report RUN`, `nabla train ... --report`): the
//! detector on its test split, its AP table, PR curves per class with operating points,
//! a grid of test images with predicted and true boxes, and the training curves; the
//! page itself is built by `nabla::report::detection_page`.

use super::detection_run::{self, RunInfo};
use nabla::detection::coco_evaluate;
use nabla::error::Result;
use nabla::report::detection::{
    boxed_grid_picture, class_curves, pr_curves_picture, BoxedImage, LabelledBox,
};
use nabla::report::detection_page::{ApRow, DetectionReport, DetectionReportData, EpochRow};
use nabla::Sequential;
use std::path::{Path, PathBuf};

/// The confidence thresholds marked on the PR curves.
pub const THRESHOLDS: [f64; 3] = [0.25, 0.5, 0.75];
/// Test images shown with their boxes.
const GRID_IMAGES: usize = 16;
/// Boxes drawn on the grid: those at least this confident.
const DRAW_THRESHOLD: f64 = 0.3;

/// Builds the report of the run in `run` into `run/report`; returns the page's path.
pub fn write(run: &Path, model: &mut Sequential, info: &RunInfo) -> Result<PathBuf> {
    write_to(run, model, info, &run.join(nabla::report::REPORT_DIR))
}

pub fn write_to(run: &Path, model: &mut Sequential, info: &RunInfo, out: &Path) -> Result<PathBuf> {
    let test = info.test_set()?;
    let x = detection_run::load_images(&test, info)?;
    let dets = detection_run::detect_dataset(model, info, &test, &x)?;
    let ev = coco_evaluate(&test, &dets)?;
    let ids: Vec<i64> = info.categories.iter().map(|c| c.id).collect();
    let aps = super::detection_eval::per_class(&ev, info);
    let classes: Vec<ApRow> = info
        .categories
        .iter()
        .zip(&aps)
        .map(|(c, ap)| ApRow {
            name: c.name.clone(),
            objects: test
                .images
                .iter()
                .flat_map(|im| &im.objects)
                .filter(|o| o.category_id == c.id && !o.crowd)
                .count(),
            ap50: ap[0],
            ap75: ap[1],
            ap: ap[2],
        })
        .collect();
    let mut pictures = Vec::new();
    let curves = class_curves(&test, &dets, &ids, 0.5, &THRESHOLDS);
    pictures.push(pr_curves_picture("pr_curves", &curves, 0.5, 5)?);

    let (c, h, w) = (
        info.input_shape[0],
        info.input_shape[1],
        info.input_shape[2],
    );
    let per_image = c * h * w;
    let shown = GRID_IMAGES.min(test.images.len());
    let pixels = x.slice_rows(0, shown).to_f32_vec();
    let scale = (192 / h.max(w)).max(1) as u32;
    let images: Vec<BoxedImage> = test.images[..shown]
        .iter()
        .enumerate()
        .map(|(i, im)| {
            let mut b = BoxedImage::new(
                &pixels[i * per_image..(i + 1) * per_image],
                (c, h, w),
                scale,
            );
            b.truth = im.objects.iter().map(|o| o.bbox).collect();
            b.predicted = dets
                .iter()
                .filter(|d| d.image_id == im.id && d.score >= DRAW_THRESHOLD)
                .map(|d| {
                    let class = ids.iter().position(|&id| id == d.category_id).unwrap_or(0);
                    LabelledBox {
                        bbox: d.bbox,
                        class,
                        label: format!("{} {:.2}", info.categories[class].name, d.score),
                    }
                })
                .collect();
            b.title = Some(format!("image {}", im.id));
            b
        })
        .collect();
    pictures.push(boxed_grid_picture(
        "test_images",
        &format!(
            "Test images: predicted boxes (confidence >= {DRAW_THRESHOLD}), true boxes in white"
        ),
        &images,
        4,
    )?);
    let mut epochs = Vec::new();
    if let Some(history) = nabla::report::load_history(run)? {
        if !history.epoch.is_empty() {
            pictures.push(nabla::report::curves::loss_curves(&history)?);
            let loss = history.get("loss").unwrap_or(&[]);
            let map = history.get("val_map50").unwrap_or(&[]);
            epochs = (0..history.epoch.len())
                .map(|i| EpochRow {
                    epoch: i + 1,
                    loss: loss.get(i).copied(),
                    val_map50: map.get(i).copied(),
                })
                .collect();
        }
    }
    let dataset = nabla::report::trained_on(run).unwrap_or_else(|| "?".into());
    let report = DetectionReport {
        data: DetectionReportData {
            model: "tiny-yolo".into(),
            dataset,
            test_images: test.images.len(),
            test_objects: test.num_objects(),
            detections: dets.len(),
            map50: ev.stats[1],
            map75: ev.stats[2],
            map: ev.stats[0],
            classes,
            thresholds: THRESHOLDS.to_vec(),
            epochs,
            pictures: pictures.iter().map(|p| p.name.clone()).collect(),
        },
        pictures,
    };
    report.save(out)
}
