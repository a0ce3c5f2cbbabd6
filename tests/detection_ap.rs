//! Detection metrics against pycocotools and the VOC devkit: the fixed detection sets and
//! the numbers in `tests/golden/detection_ap.json`, written by
//! `scripts/golden/detection_ap.py` (see there for what each case holds). Every number
//! must agree to 1e-6:
//! - COCOeval's twelve summary statistics, and AP / AP@0.5 per category (`null` for the
//!   category without ground truth), from nabla's `coco_evaluate`;
//! - per category with ground truth, at each of COCO's ten IoU thresholds, the VOC
//!   devkit's all-point and 11-point AP and COCO's 101-point AP of the VOC-matched curve,
//!   from `evaluate_ap`; the recall/precision curve at 0.5 from `match_detections` and
//!   `precision_recall`; mAP@0.5, @0.75 and @[.5:.95] by each interpolation.
//!
//! The data go through nabla's COCO readers (instances and results), so they are tested
//! on the same files.

use std::path::Path;

use nabla::data::detection::{parse_coco_instances, parse_coco_results};
use nabla::detection::{
    coco_evaluate, evaluate_ap, match_detections, precision_recall, GtBox, Interpolation, ScoredBox,
};
use serde_json::Value;

const TOL: f64 = 1e-6;

fn close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOL,
        "{what}: nabla {got}, reference {want}"
    );
}

fn close_opt(what: &str, got: Option<f64>, want: &Value) {
    match (got, want.as_f64()) {
        (Some(g), Some(w)) => close(what, g, w),
        (None, None) => {}
        (g, _) => panic!("{what}: nabla {g:?}, reference {want}"),
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn detection_metrics_match_pycocotools_and_the_voc_devkit() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/detection_ap.json"
    );
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    let mut checked = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let data = parse_coco_instances(&case["gt"].to_string(), Path::new(name), None).unwrap();
        let dets = parse_coco_results(&case["detections"].to_string(), Path::new(name)).unwrap();

        // COCO.
        let ev = coco_evaluate(&data, &dets).unwrap();
        let stats = floats(&case["coco"]["stats"]);
        for (i, (g, w)) in ev.stats.iter().zip(&stats).enumerate() {
            close(&format!("{name}: COCO stats[{i}]"), *g, *w);
            checked += 1;
        }
        for &c in &data.category_ids() {
            let key = c.to_string();
            close_opt(
                &format!("{name}: COCO AP of category {c}"),
                ev.class_ap(c, 0..10),
                &case["coco"]["class_ap"][&key],
            );
            close_opt(
                &format!("{name}: COCO AP@0.5 of category {c}"),
                ev.class_ap(c, 0..1),
                &case["coco"]["class_ap50"][&key],
            );
            checked += 2;
        }

        // VOC-style matching, three interpolations.
        let voc = &case["voc"];
        for (interp, key) in [
            (Interpolation::AllPoint, "ap_all"),
            (Interpolation::ElevenPoint, "ap_11"),
            (Interpolation::Coco101, "ap_101"),
        ] {
            let report = evaluate_ap(&data, &dets, interp).unwrap();
            for &c in &data.category_ids() {
                let want = &voc["classes"][c.to_string()];
                if want.is_null() {
                    assert_eq!(report.class_ap(c, 0.5), None, "{name}: category {c}");
                    continue;
                }
                for (t, w) in floats(&want[key]).iter().enumerate() {
                    let iou = report.iou_thresholds[t];
                    let got = report.class_ap(c, iou).unwrap();
                    close(&format!("{name}: {key} of category {c} at {iou}"), got, *w);
                    checked += 1;
                }
            }
            close(
                &format!("{name}: mAP@0.5 {key}"),
                report.map_at(0.5).unwrap(),
                voc[format!("map50_{key}")].as_f64().unwrap(),
            );
            close(
                &format!("{name}: mAP@0.75 {key}"),
                report.map_at(0.75).unwrap(),
                voc[format!("map75_{key}")].as_f64().unwrap(),
            );
            close(
                &format!("{name}: mAP@[.5:.95] {key}"),
                report.map_50_95().unwrap(),
                voc[format!("map_{key}")].as_f64().unwrap(),
            );
            checked += 3;
        }

        // The curve itself at IoU 0.5.
        for &c in &data.category_ids() {
            let want = &voc["classes"][c.to_string()];
            if want.is_null() {
                continue;
            }
            let mut gt = Vec::new();
            for (i, im) in data.images.iter().enumerate() {
                for o in im.objects.iter().filter(|o| o.category_id == c) {
                    gt.push(GtBox {
                        image: i,
                        bbox: o.bbox,
                        crowd: o.crowd,
                    });
                }
            }
            let scored: Vec<ScoredBox> = dets
                .iter()
                .filter(|d| d.category_id == c)
                .map(|d| ScoredBox {
                    image: data
                        .images
                        .iter()
                        .position(|im| im.id == d.image_id)
                        .unwrap(),
                    bbox: d.bbox,
                    score: d.score,
                })
                .collect();
            let curve = precision_recall(&match_detections(&gt, &scored, 0.5)).unwrap();
            let (rec, prec) = (floats(&want["recall50"]), floats(&want["precision50"]));
            assert_eq!(
                curve.recall.len(),
                rec.len(),
                "{name}: category {c} curve length"
            );
            for i in 0..rec.len() {
                close(
                    &format!("{name}: recall[{i}] of {c}"),
                    curve.recall[i],
                    rec[i],
                );
                close(
                    &format!("{name}: precision[{i}] of {c}"),
                    curve.precision[i],
                    prec[i],
                );
                checked += 2;
            }
        }
    }
    assert!(checked > 500, "only {checked} numbers compared");
}
