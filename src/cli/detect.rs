//! `nabla detect RUN IMAGE...`: a detection run on images of the user's: each image
//! resized to the detector's input (grey or RGB as it was trained), its detections mapped
//! back to the image's own pixels, then drawn (a PNG per image, boxes coloured by class
//! with name and confidence) or printed as JSON.

use super::detection_run::{self, RunInfo};
use clap::Args;
use nabla::error::{Error, Result};
use nabla::report::detection::{boxed_image_picture, BoxedImage, LabelledBox};
use nabla::Tensor;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct DetectArgs {
    /// A run folder written by `nabla train --model tiny-yolo`.
    run: PathBuf,
    /// PNG or JPEG images.
    #[arg(required = true, num_args = 1..)]
    images: Vec<PathBuf>,
    /// Where the PNGs go (IMAGE's stem + `.detections.png`). Default: RUN/detect.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the detections as JSON instead of drawing them.
    #[arg(long)]
    json: bool,
    /// Keep detections scoring at least this (confidence = objectness x class
    /// probability).
    #[arg(long, default_value_t = 0.3)]
    score_threshold: f64,
}

fn decode_image(path: &Path) -> Result<image::DynamicImage> {
    image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| Error::format(path, format!("cannot decode the image: {e}")))
}

/// An image as `[C, H, W]` in [0, 1] (`C` 1: grey, else RGB).
fn planes(img: &image::DynamicImage, c: usize) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = vec![0f32; c * h * w];
    if c == 1 {
        for (o, p) in out.iter_mut().zip(img.to_luma8().pixels()) {
            *o = p.0[0] as f32 / 255.0;
        }
    } else {
        for (i, p) in img.to_rgb8().pixels().enumerate() {
            for ch in 0..3 {
                out[ch * h * w + i] = p.0[ch] as f32 / 255.0;
            }
        }
    }
    out
}

pub fn run(a: DetectArgs) -> Result<i32> {
    let info = RunInfo::load(&a.run)?.ok_or_else(|| {
        Error::invalid(format!(
            "{}: not a detection run (no {}); train one with `nabla train --model tiny-yolo`",
            a.run.display(),
            detection_run::RUN_FILE
        ))
    })?;
    if !(0.0..=1.0).contains(&a.score_threshold) {
        return Err(Error::invalid(format!(
            "--score-threshold must be in [0, 1], got {}",
            a.score_threshold
        )));
    }
    let mut model = detection_run::load_model(&a.run, &info)?;
    let (c, h, w) = (
        info.input_shape[0],
        info.input_shape[1],
        info.input_shape[2],
    );
    let out_dir = a.out.clone().unwrap_or_else(|| a.run.join("detect"));
    let mut all = Vec::new();
    for path in &a.images {
        let img = decode_image(path)?;
        let (iw, ih) = (img.width(), img.height());
        let input = if (iw, ih) == (w as u32, h as u32) {
            img.clone()
        } else {
            img.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle)
        };
        let pixels = planes(&input, c);
        let x = Tensor::from_vec(pixels, &[1, c, h, w]);
        let (sx, sy) = (iw as f64 / w as f64, ih as f64 / h as f64);
        let dets: Vec<_> = detection_run::detect_batch(&mut model, &info, &x)?
            .remove(0)
            .into_iter()
            .filter(|d| d.score >= a.score_threshold)
            .map(|mut d| {
                d.bbox = nabla::detection::BBox::new(
                    d.bbox.x1 * sx,
                    d.bbox.y1 * sy,
                    d.bbox.x2 * sx,
                    d.bbox.y2 * sy,
                );
                d
            })
            .collect();
        let name_of = |id: i64| {
            info.categories
                .iter()
                .position(|c| c.id == id)
                .map(|i| (i, info.categories[i].name.clone()))
                .unwrap_or((0, "?".into()))
        };
        if a.json {
            all.push(serde_json::json!({
                "image": path.display().to_string(),
                "width": iw,
                "height": ih,
                "detections": dets.iter().map(|d| serde_json::json!({
                    "class": name_of(d.category_id).1,
                    "category_id": d.category_id,
                    "score": d.score,
                    "bbox": [d.bbox.x1, d.bbox.y1, d.bbox.width(), d.bbox.height()],
                })).collect::<Vec<_>>(),
            }));
            continue;
        }
        // Drawn on the image itself, at its own size, scaled up to about 400 pixels.
        let pixels = planes(&img, c);
        let scale = (400 / iw.max(ih)).max(1);
        let mut boxed = BoxedImage::new(&pixels, (c, ih as usize, iw as usize), scale);
        boxed.predicted = dets
            .iter()
            .map(|d| {
                let (class, name) = name_of(d.category_id);
                LabelledBox {
                    bbox: d.bbox,
                    class,
                    label: format!("{name} {:.2}", d.score),
                }
            })
            .collect();
        let stem = path
            .file_stem()
            .map_or("image".into(), |s| s.to_string_lossy().to_string());
        let picture = boxed_image_picture(&format!("{stem}.detections"), &boxed)?;
        std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
        let file = out_dir.join(format!("{stem}.detections.png"));
        nabla::formats::atomic::write_bytes_atomic(&file, &picture.png)?;
        println!(
            "{}: {} detections -> {}",
            path.display(),
            dets.len(),
            file.display()
        );
        for d in &dets {
            println!(
                "  {:<10} {:.3}  x {:.1} y {:.1} w {:.1} h {:.1}",
                name_of(d.category_id).1,
                d.score,
                d.bbox.x1,
                d.bbox.y1,
                d.bbox.width(),
                d.bbox.height()
            );
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all).expect("json"));
    }
    Ok(0)
}
