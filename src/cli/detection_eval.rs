//! `nabla evaluate RUN` on a detection run: the detector on its test split, scored by the
//! project's COCO evaluator (`detection::coco_evaluate`, pycocotools' numbers): AP@0.5
//! per class, mAP@0.5, AP@0.75 and AP@[.5:.95]. Writes the detections as a COCO results
//! file and the test split's ground truth as a COCO instances file beside it, so any
//! COCO tool (pycocotools' `COCO(gt).loadRes(results)`) scores the same numbers.

use super::detection_run::{self, RunInfo};
use nabla::data::detection::write_coco_results;
use nabla::detection::coco_eval::CocoEvaluation;
use nabla::detection::{coco_evaluate, DetectionDataset};
use nabla::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The default file names, in the run folder.
pub const RESULTS_FILE: &str = "detections.json";
pub const GROUND_TRUTH_FILE: &str = "test_annotations.json";

/// Per class (in the run's order) its AP@0.5, AP@0.75 and AP@[.5:.95]; `None` for a
/// class without ground truth in the test split (left out of the means, as COCO does).
pub fn per_class(ev: &CocoEvaluation, info: &RunInfo) -> Vec<[Option<f64>; 3]> {
    info.categories
        .iter()
        .map(|c| {
            [
                ev.class_ap(c.id, 0..1),
                ev.class_ap(c.id, 5..6),
                ev.class_ap(c.id, 0..10),
            ]
        })
        .collect()
}

pub fn run(dir: &Path, info: &RunInfo, out: Option<PathBuf>, json: bool) -> Result<i32> {
    let mut model = detection_run::load_model(dir, info)?;
    let test = info.test_set()?;
    if test.images.is_empty() {
        return Err(Error::invalid(format!(
            "{}: the run's test split has no images",
            dir.display()
        )));
    }
    let x = detection_run::load_images(&test, info)?;
    let start = std::time::Instant::now();
    let dets = detection_run::detect_dataset(&mut model, info, &test, &x)?;
    let seconds = start.elapsed().as_secs_f64();
    let ev = coco_evaluate(&test, &dets)?;
    let results = out.unwrap_or_else(|| dir.join(RESULTS_FILE));
    write_coco_results(&results, &dets)?;
    let gt_path = results.with_file_name(GROUND_TRUTH_FILE);
    write_coco_instances(&gt_path, &test)?;
    let classes = per_class(&ev, info);
    if json {
        let v = serde_json::json!({
            "images": test.images.len(),
            "objects": test.num_objects(),
            "detections": dets.len(),
            "map50": ev.stats[1],
            "map75": ev.stats[2],
            "map": ev.stats[0],
            "stats": ev.stats,
            "per_class": info.categories.iter().zip(&classes).map(|(c, ap)| serde_json::json!({
                "category_id": c.id, "name": c.name,
                "ap50": ap[0], "ap75": ap[1], "ap": ap[2],
            })).collect::<Vec<_>>(),
            "results": results.display().to_string(),
            "ground_truth": gt_path.display().to_string(),
            "seconds": seconds,
        });
        println!("{v}");
        return Ok(0);
    }
    println!(
        "{} on its test split: {} images, {} objects, {} detections ({:.1} s), COCO evaluation",
        dir.display(),
        test.images.len(),
        test.num_objects(),
        dets.len(),
        seconds
    );
    print!("{}", ap_table(info, &classes));
    println!("mAP@0.5      {:.4}", ev.stats[1]);
    println!("AP@0.75      {:.4}", ev.stats[2]);
    println!("AP@[.5:.95]  {:.4}", ev.stats[0]);
    println!(
        "Wrote the detections (COCO results JSON) to {} and the test split's ground truth \
         (COCO instances JSON) to {}",
        results.display(),
        gt_path.display()
    );
    Ok(0)
}

/// The AP table, one line per class.
pub fn ap_table(info: &RunInfo, classes: &[[Option<f64>; 3]]) -> String {
    let f = |v: Option<f64>| v.map_or("     -".to_string(), |v| format!("{v:.4}"));
    let mut s = format!(
        "{:<12} {:>8} {:>8} {:>11}\n",
        "class", "AP@0.5", "AP@0.75", "AP@[.5:.95]"
    );
    for (c, ap) in info.categories.iter().zip(classes) {
        s += &format!(
            "{:<12} {:>8} {:>8} {:>11}\n",
            c.name,
            f(ap[0]),
            f(ap[1]),
            f(ap[2])
        );
    }
    s
}

/// Writes `ds` as a COCO instances file (images with their paths, annotations with
/// `[x, y, w, h]` boxes in pixels, categories).
pub fn write_coco_instances(path: &Path, ds: &DetectionDataset) -> Result<()> {
    let images: Vec<_> = ds
        .images
        .iter()
        .map(|im| {
            serde_json::json!({
                "id": im.id,
                "file_name": im.path.display().to_string(),
                "width": im.width,
                "height": im.height,
            })
        })
        .collect();
    let annotations: Vec<_> = ds
        .images
        .iter()
        .flat_map(|im| {
            im.objects.iter().map(move |o| {
                serde_json::json!({
                    "id": o.id,
                    "image_id": im.id,
                    "category_id": o.category_id,
                    "bbox": [o.bbox.x1, o.bbox.y1, o.bbox.width(), o.bbox.height()],
                    "area": o.area,
                    "iscrowd": u8::from(o.crowd),
                })
            })
        })
        .collect();
    let categories: Vec<_> = ds
        .categories
        .iter()
        .map(|c| serde_json::json!({"id": c.id, "name": c.name}))
        .collect();
    let v = serde_json::json!({
        "images": images,
        "annotations": annotations,
        "categories": categories,
    });
    nabla::formats::atomic::write_bytes_atomic(path, v.to_string().as_bytes())
}
