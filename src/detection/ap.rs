//! Average precision: the area under a precision/recall curve, by the three conventions in
//! use, and its mean over classes and IoU thresholds (VOC-style evaluation).
//!
//! Conventions:
//! - [`Interpolation::AllPoint`]: VOC2010+ devkit (`VOCevaldet.m`, `voc_ap` in
//!   py-faster-rcnn): the precision envelope (precision made non-increasing from the
//!   right), integrated exactly over the recall steps, the curve closed at (0, 0) and
//!   (1, 0).
//! - [`Interpolation::ElevenPoint`]: VOC2007: the mean over recall `t = 0, 0.1, ..., 1`
//!   (computed as `i * 0.1`, as `np.arange(0, 1.1, 0.1)` does) of the best precision at
//!   recall >= t (0 if none).
//! - [`Interpolation::Coco101`]: COCO: the envelope sampled at recall
//!   `0, 0.01, ..., 1` (`np.linspace`), at the first point whose recall reaches each (0
//!   past the end of the curve), averaged.
//! - A class without ground truth has no AP (`None`) and is left out of every mean, as
//!   both COCO and the VOC devkit do; a class with ground truth and no detections has AP 0.
//! - IoU thresholds for AP@[0.5:0.95] are COCO's ten, bit for bit ([`coco_iou_thresholds`]).

use super::dataset::{Detection, DetectionDataset};
use super::matching::{match_detections, precision_recall, GtBox, ScoredBox};

/// How a precision/recall curve becomes one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// VOC2010+: the exact area under the precision envelope.
    AllPoint,
    /// VOC2007: eleven recall points.
    ElevenPoint,
    /// COCO: 101 recall points.
    Coco101,
}

/// `np.linspace(start, stop, num)`, bit for bit: `start + i * step`, the last value `stop`.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// COCO's IoU thresholds 0.5, 0.55, ..., 0.95 (`np.linspace(.5, .95, 10)`).
pub fn coco_iou_thresholds() -> Vec<f64> {
    linspace(0.5, 0.95, 10)
}

/// COCO's recall points 0, 0.01, ..., 1 (`np.linspace(0, 1, 101)`).
pub fn coco_recall_thresholds() -> Vec<f64> {
    linspace(0.0, 1.0, 101)
}

/// The precision envelope: each precision raised to the best at any higher recall.
fn envelope(precision: &[f64]) -> Vec<f64> {
    let mut p = precision.to_vec();
    for i in (1..p.len()).rev() {
        if p[i] > p[i - 1] {
            p[i - 1] = p[i];
        }
    }
    p
}

/// VOC2010+ all-point AP of a curve (`recall` non-decreasing, one entry per detection).
pub fn ap_all_point(recall: &[f64], precision: &[f64]) -> f64 {
    let mut mrec = Vec::with_capacity(recall.len() + 2);
    mrec.push(0.0);
    mrec.extend_from_slice(recall);
    mrec.push(1.0);
    let mut mpre = Vec::with_capacity(precision.len() + 2);
    mpre.push(0.0);
    mpre.extend_from_slice(precision);
    mpre.push(0.0);
    for i in (1..mpre.len()).rev() {
        mpre[i - 1] = mpre[i - 1].max(mpre[i]);
    }
    let mut ap = 0.0;
    for (i, r) in mrec.windows(2).enumerate() {
        if r[1] != r[0] {
            ap += (r[1] - r[0]) * mpre[i + 1];
        }
    }
    ap
}

/// VOC2007 eleven-point AP.
pub fn ap_11_point(recall: &[f64], precision: &[f64]) -> f64 {
    let mut ap = 0.0;
    for i in 0..11 {
        let t = i as f64 * 0.1;
        let p = recall
            .iter()
            .zip(precision)
            .filter(|(r, _)| **r >= t)
            .map(|(_, p)| *p)
            .fold(f64::NEG_INFINITY, f64::max);
        ap += if p.is_finite() { p } else { 0.0 } / 11.0;
    }
    ap
}

/// COCO's 101-point AP.
pub fn ap_101_point(recall: &[f64], precision: &[f64]) -> f64 {
    let pr = envelope(precision);
    let thresholds = coco_recall_thresholds();
    let mut sum = 0.0;
    for r in &thresholds {
        // searchsorted(recall, r, side='left'): the first index with recall >= r.
        let i = recall.partition_point(|x| x < r);
        if i < pr.len() {
            sum += pr[i];
        }
    }
    sum / thresholds.len() as f64
}

/// AP of a curve by the chosen convention.
pub fn average_precision(recall: &[f64], precision: &[f64], interp: Interpolation) -> f64 {
    match interp {
        Interpolation::AllPoint => ap_all_point(recall, precision),
        Interpolation::ElevenPoint => ap_11_point(recall, precision),
        Interpolation::Coco101 => ap_101_point(recall, precision),
    }
}

/// AP per class at each IoU threshold, VOC-style matching ([`match_detections`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ApReport {
    pub interpolation: Interpolation,
    /// The IoU thresholds: COCO's ten.
    pub iou_thresholds: Vec<f64>,
    /// The category ids, sorted.
    pub category_ids: Vec<i64>,
    /// `ap[c][t]`: AP of category `category_ids[c]` at `iou_thresholds[t]`; `None` for a
    /// category without ground truth.
    pub ap: Vec<Vec<Option<f64>>>,
}

impl ApReport {
    fn threshold_index(&self, iou: f64) -> Option<usize> {
        self.iou_thresholds
            .iter()
            .position(|t| (t - iou).abs() < 1e-9)
    }

    /// AP of one category at one of the thresholds (0.5, 0.55, ..., 0.95).
    pub fn class_ap(&self, category_id: i64, iou: f64) -> Option<f64> {
        let c = self.category_ids.iter().position(|&c| c == category_id)?;
        self.ap[c][self.threshold_index(iou)?]
    }

    /// AP of one category averaged over the ten thresholds (its AP@[0.5:0.95]).
    pub fn class_ap_50_95(&self, category_id: i64) -> Option<f64> {
        let c = self.category_ids.iter().position(|&c| c == category_id)?;
        let v: Option<Vec<f64>> = self.ap[c].iter().copied().collect();
        v.map(|v| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// mAP at one threshold: the mean over categories with ground truth (`None` if none).
    pub fn map_at(&self, iou: f64) -> Option<f64> {
        let t = self.threshold_index(iou)?;
        mean(self.ap.iter().filter_map(|a| a[t]))
    }

    /// mAP@[0.5:0.95]: the mean over categories with ground truth and thresholds.
    pub fn map_50_95(&self) -> Option<f64> {
        mean(self.ap.iter().flatten().filter_map(|a| *a))
    }
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v {
        s += x;
        n += 1;
    }
    (n > 0).then(|| s / n as f64)
}

/// AP of every category of `data` at COCO's ten IoU thresholds, detections matched the
/// VOC way (every detection counts: no per-image cap, no size ranges). Detections of
/// images or categories the data set does not have are errors.
pub fn evaluate_ap(
    data: &DetectionDataset,
    detections: &[Detection],
    interpolation: Interpolation,
) -> crate::error::Result<ApReport> {
    let category_ids = data.category_ids();
    let image_index: std::collections::HashMap<i64, usize> = data
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.id, i))
        .collect();
    let class_of = |id: i64| category_ids.binary_search(&id).ok();
    let mut gts: Vec<Vec<GtBox>> = vec![Vec::new(); category_ids.len()];
    for (i, im) in data.images.iter().enumerate() {
        for o in &im.objects {
            let c = class_of(o.category_id).ok_or_else(|| {
                crate::error::Error::invalid(format!(
                    "object {} of image {} has category {}, which the data set does not list",
                    o.id, im.id, o.category_id
                ))
            })?;
            gts[c].push(GtBox {
                image: i,
                bbox: o.bbox,
                crowd: o.crowd,
            });
        }
    }
    let mut dets: Vec<Vec<ScoredBox>> = vec![Vec::new(); category_ids.len()];
    for d in detections {
        let image = *image_index.get(&d.image_id).ok_or_else(|| {
            crate::error::Error::invalid(format!(
                "a detection names image {}, which the data set does not have",
                d.image_id
            ))
        })?;
        let c = class_of(d.category_id).ok_or_else(|| {
            crate::error::Error::invalid(format!(
                "a detection names category {}, which the data set does not have",
                d.category_id
            ))
        })?;
        dets[c].push(ScoredBox {
            image,
            bbox: d.bbox,
            score: d.score,
        });
    }
    let iou_thresholds = coco_iou_thresholds();
    let ap = (0..category_ids.len())
        .map(|c| {
            iou_thresholds
                .iter()
                .map(|&t| {
                    precision_recall(&match_detections(&gts[c], &dets[c], t))
                        .map(|pr| average_precision(&pr.recall, &pr.precision, interpolation))
                })
                .collect()
        })
        .collect();
    Ok(ApReport {
        interpolation,
        iou_thresholds,
        category_ids,
        ap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolations_by_hand() {
        // 4 positives; detections TP, FP, TP, FP, TP:
        // recall .25 .25 .5 .5 .75, precision 1 .5 2/3 .5 .6.
        let rec = [0.25, 0.25, 0.5, 0.5, 0.75];
        let prec = [1.0, 0.5, 2.0 / 3.0, 0.5, 0.6];
        // Envelope 1, 2/3, 2/3, .6, .6: .25*1 + .25*2/3 + .25*.6.
        let all = 0.25 + 0.25 * 2.0 / 3.0 + 0.25 * 0.6;
        assert!((ap_all_point(&rec, &prec) - all).abs() < 1e-12);
        // t = 0, .1, .2: 1 (3 points); .3-.5: 2/3 (3 points); .6, .7: .6; .8-1: 0.
        let eleven = (3.0 + 2.0 + 1.2) / 11.0;
        assert!((ap_11_point(&rec, &prec) - eleven).abs() < 1e-12);
        // 101 points: r in [0, .25] -> 1 (26 points), (.25, .5] -> 2/3 (25),
        // (.5, .75] -> .6 (25), above -> 0.
        let coco = (26.0 + 25.0 * 2.0 / 3.0 + 25.0 * 0.6) / 101.0;
        assert!((ap_101_point(&rec, &prec) - coco).abs() < 1e-12);
        // No detections: AP 0 by every convention.
        for i in [
            Interpolation::AllPoint,
            Interpolation::ElevenPoint,
            Interpolation::Coco101,
        ] {
            assert_eq!(average_precision(&[], &[], i), 0.0);
        }
        // A perfect curve: 1.
        assert!((ap_all_point(&[0.5, 1.0], &[1.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((ap_11_point(&[0.5, 1.0], &[1.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((ap_101_point(&[0.5, 1.0], &[1.0, 1.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn thresholds_are_numpys() {
        let t = coco_iou_thresholds();
        assert_eq!(t.len(), 10);
        assert_eq!(t[0], 0.5);
        assert_eq!(t[5], 0.75);
        assert_eq!(t[9], 0.95);
        let r = coco_recall_thresholds();
        assert_eq!((r.len(), r[0], r[100]), (101, 0.0, 1.0));
    }
}
