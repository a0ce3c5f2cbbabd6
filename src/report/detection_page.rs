//! A detection run's `report.html`: one self-contained page as the classification
//! report is (CSS inline, pictures as PNG data URIs, each linking to its SVG), with
//! sections `overview` (mAP figures), `ap` (the AP table per class), `pr-curves` (one
//! precision/recall curve per class, operating points at confidence thresholds marked),
//! `images` (test images with predicted and true boxes) and `curves` (the training loss
//! per epoch, and a table of it with the mAP@0.5 on the first test images after each
//! epoch, when the run has a history).

use super::html::{escape, figure_markup, STYLE};
use super::Picture;
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One class's row of the AP table.
#[derive(Clone, Debug, Serialize)]
pub struct ApRow {
    pub name: String,
    pub objects: usize,
    pub ap50: Option<f64>,
    pub ap75: Option<f64>,
    pub ap: Option<f64>,
}

/// One epoch of training: its mean loss and the mAP@0.5 on the first test images.
#[derive(Clone, Debug, Serialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub loss: Option<f32>,
    pub val_map50: Option<f32>,
}

/// What the page shows (also saved as `report.json`).
#[derive(Clone, Debug, Serialize)]
pub struct DetectionReportData {
    pub model: String,
    pub dataset: String,
    pub test_images: usize,
    pub test_objects: usize,
    pub detections: usize,
    pub map50: f64,
    pub map75: f64,
    pub map: f64,
    pub classes: Vec<ApRow>,
    /// The confidence thresholds marked on the PR curves.
    pub thresholds: Vec<f64>,
    pub epochs: Vec<EpochRow>,
    pub pictures: Vec<String>,
}

pub struct DetectionReport {
    pub data: DetectionReportData,
    pub pictures: Vec<Picture>,
}

impl DetectionReport {
    fn figure(&self, name: &str, alt: &str, caption: &str) -> String {
        match self.pictures.iter().find(|p| p.name == name) {
            Some(p) => figure_markup(p, name, alt, caption),
            None => format!(
                "<p class=\"note\">{} is not available for this run.</p>\n",
                escape(alt)
            ),
        }
    }

    pub fn html(&self) -> String {
        let d = &self.data;
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        let mut s = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>nabla report: {} on {}</title>\n<style>{STYLE}</style>\n</head>\n\
             <body>\n<main>\n<h1>{} on {}: object detection</h1>\n",
            escape(&d.model),
            escape(&d.dataset),
            escape(&d.model),
            escape(&d.dataset)
        );
        s += &format!(
            "<section id=\"overview\"><h2>Test split</h2><div class=\"kpi\">\
             <div>mAP@0.5<b>{:.4}</b></div><div>AP@0.75<b>{:.4}</b></div>\
             <div>AP@[.5:.95]<b>{:.4}</b></div><div>images<b>{}</b></div>\
             <div>objects<b>{}</b></div><div>detections<b>{}</b></div></div>\
             <p class=\"muted\">COCO evaluation (101-point interpolation, at most 100 \
             detections per image); a class without ground truth is left out of the means.</p>\
             </section>\n",
            d.map50, d.map75, d.map, d.test_images, d.test_objects, d.detections
        );
        s += "<section id=\"ap\"><h2>AP per class</h2><table><thead><tr>\
              <th class=\"name\">class</th><th>objects</th><th>AP@0.5</th><th>AP@0.75</th>\
              <th>AP@[.5:.95]</th></tr></thead><tbody>\n";
        for r in &d.classes {
            s += &format!(
                "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&r.name),
                r.objects,
                f(r.ap50),
                f(r.ap75),
                f(r.ap)
            );
        }
        s += &format!(
            "</tbody><tfoot><tr><td class=\"name\">mean</td><td>{}</td><td>{:.4}</td>\
             <td>{:.4}</td><td>{:.4}</td></tr></tfoot></table></section>\n",
            d.test_objects, d.map50, d.map75, d.map
        );
        let marks: Vec<String> = d.thresholds.iter().map(|t| t.to_string()).collect();
        s += &format!(
            "<section id=\"pr-curves\"><h2>Precision and recall</h2>\
             <p class=\"muted\">Each detection, best first, adds a point: recall is the share \
             of the class's boxes found so far (IoU &ge; 0.5), precision the share of \
             detections so far that found one. The marks are the operating points when only \
             detections with confidence &ge; {} are kept (circle, square, triangle): a higher \
             threshold trades recall for precision. AP here is VOC's all-point area.</p>{}</section>\n",
            escape(&marks.join(", ")),
            self.figure("pr_curves", "precision/recall curves", "PR curve per class")
        );
        s += &format!(
            "<section id=\"images\"><h2>Test images</h2><p class=\"muted\">Predicted boxes \
             coloured by class with their confidence; true boxes as thin white frames.</p>{}\
             </section>\n",
            self.figure("test_images", "test images with boxes", "first test images")
        );
        s += &format!(
            "<section id=\"curves\"><h2>Training</h2>{}",
            self.figure("loss_curves", "training loss", "training loss per epoch")
        );
        if !d.epochs.is_empty() {
            s += "<table><thead><tr><th>epoch</th><th>loss</th>\
                  <th>mAP@0.5, first test images</th></tr></thead><tbody>\n";
            let g = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
            for e in &d.epochs {
                s += &format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    e.epoch,
                    g(e.loss),
                    g(e.val_map50)
                );
            }
            s += "</tbody></table>\n";
        }
        s += "</section>\n";
        s += "</main>\n</body>\n</html>\n";
        s
    }

    /// Writes the pictures (PNG and SVG), `report.json` and `report.html` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for p in &self.pictures {
            p.save(dir)?;
        }
        let json = serde_json::to_string_pretty(&self.data).expect("report data serializes");
        crate::formats::atomic::write_bytes_atomic(dir.join("report.json"), json.as_bytes())?;
        let page = dir.join("report.html");
        crate::formats::atomic::write_bytes_atomic(&page, self.html().as_bytes())?;
        Ok(page)
    }
}
