//! The detection commands end to end on a tiny YOLO folder and a tiny COCO file written
//! here (32x32 RGB canvases: white squares = `square`, red bars = `bar`):
//! `nabla train --model tiny-yolo` saves a run, `nabla evaluate` prints mAP and writes a
//! COCO results file that the project's COCO evaluator scores to the same mAP,
//! `nabla detect` draws a PNG and prints JSON, `nabla report` writes the page; bad input
//! (an unknown class in a label file, a COCO file whose images are missing) is a clear
//! error with a non-zero exit.

use nabla::data::detection::{parse_coco_instances, read_coco_results};
use nabla::detection::coco_evaluate;
use nabla::Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_nabla");
const SIDE: u32 = 32;

fn nabla(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--threads", "2"])
        .args(args)
        .output()
        .expect("runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nabla-cli-det-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A box: `(class, x, y, w, h)` in pixels.
type PixelBox = (usize, u32, u32, u32, u32);

/// `n` canvases, each with a square and a bar that do not touch; returns per image its
/// boxes.
fn canvases(dir: &Path, n: usize) -> Vec<Vec<PixelBox>> {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let mut rng = Rng::new(4);
    (0..n)
        .map(|i| {
            let mut img = image::RgbImage::new(SIDE, SIDE);
            let s = 8 + rng.below(4) as u32;
            let (sx, sy) = (rng.below(6) as u32, rng.below((SIDE - s) as usize) as u32);
            let (bw, bh) = (12 + rng.below(4) as u32, 4);
            let (bx, by) = (
                16 + rng.below((SIDE - 16 - bw) as usize + 1) as u32,
                rng.below(8) as u32,
            );
            for (x, y, w, h, c) in [
                (sx, sy, s, s, [255, 255, 255]),
                (bx, by, bw, bh, [255, 0, 0]),
            ] {
                for yy in y..y + h {
                    for xx in x..x + w {
                        img.put_pixel(xx, yy, image::Rgb(c));
                    }
                }
            }
            img.save(dir.join(format!("images/{i:03}.png"))).unwrap();
            vec![(0, sx, sy, s, s), (1, bx, by, bw, bh)]
        })
        .collect()
}

fn yolo_folder(dir: &Path, n: usize) {
    let boxes = canvases(dir, n);
    std::fs::create_dir_all(dir.join("labels")).unwrap();
    std::fs::write(dir.join("classes.txt"), "square\nbar\n").unwrap();
    let f = SIDE as f64;
    for (i, bs) in boxes.iter().enumerate() {
        let lines: Vec<String> = bs
            .iter()
            .map(|&(c, x, y, w, h)| {
                let (x, y, w, h) = (x as f64, y as f64, w as f64, h as f64);
                format!(
                    "{c} {} {} {} {}",
                    (x + w / 2.0) / f,
                    (y + h / 2.0) / f,
                    w / f,
                    h / f
                )
            })
            .collect();
        std::fs::write(dir.join(format!("labels/{i:03}.txt")), lines.join("\n")).unwrap();
    }
}

fn coco_file(dir: &Path, n: usize, missing: bool) -> PathBuf {
    let boxes = canvases(dir, n);
    let mut images = Vec::new();
    let mut annotations = Vec::new();
    for (i, bs) in boxes.iter().enumerate() {
        let name = if missing && i == 1 {
            "gone.png".to_string()
        } else {
            format!("{i:03}.png")
        };
        images.push(
            serde_json::json!({"id": i + 1, "file_name": name, "width": SIDE, "height": SIDE}),
        );
        for &(c, x, y, w, h) in bs {
            annotations.push(serde_json::json!({
                "id": annotations.len() + 1, "image_id": i + 1, "category_id": 10 + c,
                "bbox": [x, y, w, h], "iscrowd": 0,
            }));
        }
    }
    let v = serde_json::json!({
        "images": images, "annotations": annotations,
        "categories": [{"id": 10, "name": "square"}, {"id": 11, "name": "bar"}],
    });
    let path = dir.join("instances.json");
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

fn ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "stdout:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn train_evaluate_detect_and_report_on_a_yolo_folder() {
    let dir = tmp("yolo");
    let data = dir.join("data");
    yolo_folder(&data, 20);
    let run = dir.join("run");
    let text = ok(&nabla(&[
        "train",
        "--model",
        "tiny-yolo",
        "--dataset",
        data.to_str().unwrap(),
        "--epochs",
        "30",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--test-split",
        "0.2",
        "--augment",
        "none",
        "--seed",
        "1",
        "--out",
        run.to_str().unwrap(),
    ]));
    assert!(text.contains("Test (4 images): mAP@0.5"), "{text}");
    assert!(run.join("detection.json").is_file() && run.join("history.json").is_file());

    // evaluate: printed mAP = the project's COCO evaluator on the files it wrote.
    let results = dir.join("results.json");
    let out = ok(&nabla(&[
        "evaluate",
        run.to_str().unwrap(),
        "--json",
        "--out",
        results.to_str().unwrap(),
    ]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let printed = v["map50"].as_f64().unwrap();
    let dets = read_coco_results(&results).unwrap();
    let gt_path = dir.join("test_annotations.json");
    let gt =
        parse_coco_instances(&std::fs::read_to_string(&gt_path).unwrap(), &gt_path, None).unwrap();
    assert_eq!(gt.images.len(), 4);
    let ev = coco_evaluate(&gt, &dets).unwrap();
    assert!(
        printed > 0.2,
        "the detector found little: mAP@0.5 {printed}"
    );
    assert!(
        (ev.stats[1] - printed).abs() < 1e-9,
        "{} vs {printed}",
        ev.stats[1]
    );
    assert!((ev.stats[0] - v["map"].as_f64().unwrap()).abs() < 1e-9);
    // The plain output names the numbers per class.
    let plain = ok(&nabla(&["evaluate", run.to_str().unwrap()]));
    for want in ["square", "bar", "mAP@0.5", "AP@0.75", "AP@[.5:.95]"] {
        assert!(plain.contains(want), "{plain}");
    }
    assert!(run.join("detections.json").is_file());

    // detect: a PNG per image, and JSON.
    let image = data.join("images/000.png");
    let pics = dir.join("pics");
    ok(&nabla(&[
        "detect",
        run.to_str().unwrap(),
        image.to_str().unwrap(),
        "--out",
        pics.to_str().unwrap(),
    ]));
    let png = std::fs::read(pics.join("000.detections.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let json = ok(&nabla(&[
        "detect",
        run.to_str().unwrap(),
        image.to_str().unwrap(),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["width"], 32);
    assert!(v[0]["detections"].is_array());

    // report: the page with its PR curves.
    ok(&nabla(&["report", run.to_str().unwrap()]));
    let page = std::fs::read_to_string(run.join("report/report.html")).unwrap();
    for want in [
        "id=\"pr-curves\"",
        "id=\"ap\"",
        "id=\"images\"",
        "data:image/png;base64",
    ] {
        assert!(page.contains(want), "{want}");
    }
    assert!(run.join("report/pr_curves.svg").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_coco_file_trains_and_bad_input_is_a_clear_error() {
    let dir = tmp("coco");
    let data = dir.join("coco");
    let file = coco_file(&data, 6, false);
    let run = dir.join("run");
    let text = ok(&nabla(&[
        "train",
        "--model",
        "tiny-yolo",
        "--dataset",
        file.to_str().unwrap(),
        "--epochs",
        "1",
        "--test-split",
        "0.34",
        "--out",
        run.to_str().unwrap(),
    ]));
    assert!(text.contains("2 classes"), "{text}");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("detection.json")).unwrap())
            .unwrap();
    assert_eq!(info["categories"][1]["id"], 11);

    // A COCO file naming an image that is not there.
    let bad = dir.join("bad");
    let file = coco_file(&bad, 3, true);
    let out = nabla(&[
        "train",
        "--model",
        "tiny-yolo",
        "--dataset",
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("gone.png") && err.contains("instances.json"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A label file with a class the folder does not have.
    let yolo = dir.join("yolo");
    yolo_folder(&yolo, 3);
    std::fs::write(yolo.join("labels/001.txt"), "5 0.5 0.5 0.2 0.2\n").unwrap();
    let out = nabla(&[
        "train",
        "--model",
        "tiny-yolo",
        "--dataset",
        yolo.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("001.txt") && err.contains('5'), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Options the detection loop does not have are refused.
    let out = nabla(&[
        "train",
        "--model",
        "tiny-yolo",
        "--dataset",
        "mnist-detect",
        "--optimizer",
        "sgd",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--optimizer not supported"), "{err}");

    // detect on a folder that is not a detection run.
    let out = nabla(&["detect", dir.to_str().unwrap(), "x.png"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a detection run"));
    let _ = std::fs::remove_dir_all(&dir);
}
