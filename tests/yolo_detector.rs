//! `tiny-yolo` learns: a small configuration overfits a handful of synthetic canvases
//! (white squares = class 0, wide bars = class 1, on black 48x48) and then finds their
//! boxes again, scored by the project's own AP (mAP@0.5 >= 0.9). Also: the model saves
//! and loads with its custom loss, and bad batches are errors, not panics.
//!
//! Timing (release, 2 threads): see the report of the commit that added this file.

use nabla::detection::{
    evaluate_ap, BBox, Category, Detection, DetectionDataset, ImageRecord, Interpolation, Object,
};
use nabla::models::yolo::{
    decode, tiny_yolo_with, DecodeOptions, DetectionTargets, TargetBox, TinyYoloConfig, YoloLoss,
};
use nabla::{Optimizer, Rng, Target, Tensor};

const SIDE: usize = 48;

/// `n` canvases with 1-3 non-overlapping shapes each, and their targets.
fn canvases(n: usize, seed: u64) -> (Tensor, DetectionTargets) {
    let mut rng = Rng::new(seed);
    let mut pixels = vec![0.0f32; n * SIDE * SIDE];
    let mut images = Vec::new();
    for im in 0..n {
        let count = 1 + (rng.uniform() * 3.0) as usize % 3;
        let mut boxes: Vec<TargetBox> = Vec::new();
        let mut tries = 0;
        while boxes.len() < count && tries < 1000 {
            tries += 1;
            let class = (rng.uniform() * 2.0) as usize % 2;
            let (w, h) = if class == 0 {
                let s = 8 + (rng.uniform() * 9.0) as usize; // squares 8..16
                (s, s)
            } else {
                (
                    16 + (rng.uniform() * 9.0) as usize,
                    4 + (rng.uniform() * 3.0) as usize,
                )
            };
            let x = (rng.uniform() * (SIDE - w) as f32) as usize;
            let y = (rng.uniform() * (SIDE - h) as f32) as usize;
            let b = BBox::new(x as f64, y as f64, (x + w) as f64, (y + h) as f64);
            // At least 2 pixels apart, so every shape is its own connected blob.
            let apart = boxes.iter().all(|o| {
                b.x1 >= o.bbox.x2 + 2.0
                    || o.bbox.x1 >= b.x2 + 2.0
                    || b.y1 >= o.bbox.y2 + 2.0
                    || o.bbox.y1 >= b.y2 + 2.0
            });
            if apart {
                for yy in y..y + h {
                    for xx in x..x + w {
                        pixels[(im * SIDE + yy) * SIDE + xx] = 1.0;
                    }
                }
                boxes.push(TargetBox { bbox: b, class });
            }
        }
        images.push(boxes);
    }
    (
        Tensor::from_vec(pixels, &[n, 1, SIDE, SIDE]),
        DetectionTargets::new(images),
    )
}

fn dataset(t: &DetectionTargets) -> DetectionDataset {
    let mut id = 0;
    DetectionDataset {
        images: t
            .images
            .iter()
            .enumerate()
            .map(|(i, boxes)| ImageRecord {
                id: i as i64,
                path: format!("canvas{i}").into(),
                width: SIDE as u32,
                height: SIDE as u32,
                objects: boxes
                    .iter()
                    .map(|b| {
                        id += 1;
                        Object {
                            id,
                            category_id: b.class as i64,
                            bbox: b.bbox,
                            crowd: false,
                            area: b.bbox.area(),
                        }
                    })
                    .collect(),
            })
            .collect(),
        categories: vec![
            Category {
                id: 0,
                name: "square".into(),
            },
            Category {
                id: 1,
                name: "bar".into(),
            },
        ],
    }
}

fn small_config() -> TinyYoloConfig {
    TinyYoloConfig {
        width: 8,
        residual: false,
        ..TinyYoloConfig::new(&[1, SIDE, SIDE], 2)
    }
}

fn train_and_score(cfg: &TinyYoloConfig, images: usize, steps: usize) -> f64 {
    let (x, targets) = canvases(images, 11);
    let mut model = tiny_yolo_with(cfg, 5).unwrap();
    model
        .compile(YoloLoss::new(2), Optimizer::adam(0.01), &[])
        .unwrap();
    let y = Target::new(targets.clone());
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..steps {
        last = model
            .train_step(std::slice::from_ref(&x), std::slice::from_ref(&y))
            .unwrap()
            .loss;
        first.get_or_insert(last);
    }
    let out = model.predict(&x, images).unwrap();
    let dets: Vec<Detection> = decode(&out, 2, &DecodeOptions::default())
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    let report = evaluate_ap(&dataset(&targets), &dets, Interpolation::AllPoint).unwrap();
    let map = report.map_at(0.5).unwrap();
    eprintln!(
        "loss {:.3} -> {last:.4} after {steps} steps; {} detections for {} objects; \
         mAP@0.5 {map:.3}, AP@0.5 square {:?} bar {:?}",
        first.unwrap(),
        dets.len(),
        targets.images.iter().map(Vec::len).sum::<usize>(),
        report.class_ap(0, 0.5),
        report.class_ap(1, 0.5),
    );
    map
}

#[test]
fn tiny_yolo_overfits_a_handful_of_canvases() {
    let map = train_and_score(&small_config(), 8, 300);
    assert!(map >= 0.9, "mAP@0.5 {map}");
}

/// The full-width residual network on more canvases (slower).
#[test]
#[ignore]
fn full_tiny_yolo_overfits_more_canvases() {
    let cfg = TinyYoloConfig::new(&[1, SIDE, SIDE], 2);
    let map = train_and_score(&cfg, 32, 300);
    assert!(map >= 0.9, "mAP@0.5 {map}");
}

#[test]
fn the_model_saves_and_loads_and_bad_batches_are_errors() {
    let (x, targets) = canvases(2, 3);
    let mut model = tiny_yolo_with(&small_config(), 1).unwrap();
    model
        .compile(YoloLoss::new(2), Optimizer::adam(0.01), &[])
        .unwrap();
    // Targets for 1 image against a batch of 2.
    let one = DetectionTargets::new(vec![targets.images[0].clone()]);
    let e = model
        .train_step(std::slice::from_ref(&x), &[Target::new(one)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 images of boxes for a batch of 2"), "{e}");
    // A class the model does not have, a box past the canvas's edge.
    for (bbox, class, what) in [
        (BBox::new(1.0, 1.0, 9.0, 9.0), 2, "class 2 is not in 0..2"),
        (BBox::new(40.0, 1.0, 49.0, 9.0), 0, "outside"),
        (BBox::new(5.0, 1.0, 5.0, 9.0), 0, "zero area"),
    ] {
        let bad = DetectionTargets::new(vec![vec![TargetBox { bbox, class }], vec![]]);
        let e = model
            .train_step(std::slice::from_ref(&x), &[Target::new(bad)])
            .unwrap_err()
            .to_string();
        assert!(e.contains(what), "{e}");
    }
    // Plain labels instead of boxes.
    let e = model
        .train_step(
            std::slice::from_ref(&x),
            &[Target::from(Tensor::zeros(&[2]))],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("DetectionTargets"), "{e}");
    // Save and load: same outputs.
    model
        .train_step(std::slice::from_ref(&x), &[Target::new(targets)])
        .unwrap();
    let before = model.predict(&x, 2).unwrap().to_f32_vec();
    let dir = std::env::temp_dir().join(format!("nabla-yolo-{}", std::process::id()));
    nabla::losses::register("yolo", || std::sync::Arc::new(YoloLoss::new(2))).unwrap();
    model.save(&dir).unwrap();
    let mut loaded = nabla::Model::load(&dir).unwrap();
    let after = loaded.predict(&x, 2).unwrap().to_f32_vec();
    assert_eq!(before, after);
    let _ = std::fs::remove_dir_all(&dir);
}
