//! Object detection's plain data and plain functions: boxes, their overlap, non-maximum
//! suppression, matching detections to ground truth, precision/recall, average precision
//! by the VOC and COCO conventions, COCO's evaluator, and a detection confusion matrix.
//!
//! Depends on nothing but `error`: no tensors, so the metrics can score any detector's
//! output (also one read from a COCO results file). Readers of COCO JSON and YOLO folders
//! are in `data::detection`.
//!
//! - `boxes`: [`BBox`] (corners in pixels, continuous coordinates), [`BoxFormat`] (xyxy,
//!   xywh, cxcywh; pixels or normalised), conversions, area, clipping, validity.
//! - `iou`: IoU and GIoU, one pair or a matrix.
//! - `nms`: class-aware or class-agnostic NMS with score threshold, top-k before the loop
//!   and a cap after; deterministic on ties.
//! - `dataset`: [`DetectionDataset`] (images, their objects, categories) and [`Detection`].
//! - `matching`: VOC's greedy matching at one IoU threshold; precision and recall at every
//!   confidence.
//! - `ap`: AP with all-point (VOC2010+), 11-point (VOC2007) or 101-point (COCO)
//!   interpolation; AP per class at COCO's ten IoU thresholds, mAP@0.5, @0.75, @[.5:.95].
//! - `coco_eval`: pycocotools' `COCOeval` for boxes, number for number.
//! - `confusion`: correct, wrong class, poor box, background, missed, as counts.
//!
//! ```
//! use nabla::detection::{iou, nms, BBox, NmsOptions};
//! let boxes = [BBox::new(0., 0., 10., 10.), BBox::new(1., 1., 10., 10.)];
//! assert!((iou(&boxes[0], &boxes[1]) - 0.81).abs() < 1e-12);
//! let keep = nms(&boxes, &[0.9, 0.8], &[0, 0], &NmsOptions::default()).unwrap();
//! assert_eq!(keep, [0]);
//! ```

pub mod ap;
pub mod boxes;
pub mod coco_eval;
pub mod confusion;
pub mod dataset;
pub mod iou;
pub mod matching;
pub mod nms;

pub use ap::{evaluate_ap, ApReport, Interpolation};
pub use boxes::{BBox, BoxFormat, BoxLayout};
pub use coco_eval::{coco_evaluate, CocoEvaluation};
pub use confusion::{confusion_matrix, ConfusionOptions, DetectionConfusion};
pub use dataset::{Category, Detection, DetectionDataset, ImageRecord, Object};
pub use iou::{giou, iou, iou_matrix};
pub use matching::{match_detections, precision_recall, GtBox, Matches, PrCurve, ScoredBox};
pub use nms::{nms, NmsOptions};
