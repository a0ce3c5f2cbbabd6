//! Matching detections to ground truth at one IoU threshold, the VOC way, and the
//! precision and recall at every confidence that follow from it.
//!
//! Convention (PASCAL VOC devkit, `VOCevaldet.m`), for one class over all images:
//! - Detections are taken by score, highest first (equal scores keep their input order).
//! - A detection's candidate is the ground-truth box of its image with the highest IoU,
//!   already-matched boxes included (the first such box on equal IoUs).
//! - IoU >= threshold with a crowd/"difficult" box: the detection is ignored (neither
//!   true nor false positive). With a box not yet matched: a true positive, and the box is
//!   matched. With a box already matched: a false positive (a duplicate). Below the
//!   threshold or no box in the image: a false positive.
//! - The number of positives is the number of non-crowd ground-truth boxes.
//!
//! (COCO's matching differs: a detection takes the best box not yet matched, and crowd
//! regions can absorb any number of detections; see `coco_eval`.)

use super::boxes::BBox;
use super::iou::iou;

/// A ground-truth box of one class: its image (any key), where, and whether it is ignored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GtBox {
    pub image: usize,
    pub bbox: BBox,
    pub crowd: bool,
}

/// A detection of one class: its image, where, and its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoredBox {
    pub image: usize,
    pub bbox: BBox,
    pub score: f64,
}

/// The outcome of matching one class: the detections that count, in score order, each
/// with whether it is a true positive, and the number of positives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matches {
    /// `(score, true positive)`, highest score first; ignored detections left out.
    pub detections: Vec<(f64, bool)>,
    /// Non-crowd ground-truth boxes.
    pub num_positives: usize,
}

/// Matches one class's detections to its ground truth at `iou_threshold` (VOC rules).
pub fn match_detections(gt: &[GtBox], dets: &[ScoredBox], iou_threshold: f64) -> Matches {
    let num_images = gt
        .iter()
        .map(|g| g.image + 1)
        .chain(dets.iter().map(|d| d.image + 1))
        .max()
        .unwrap_or(0);
    let mut by_image: Vec<Vec<usize>> = vec![Vec::new(); num_images];
    for (i, g) in gt.iter().enumerate() {
        by_image[g.image].push(i);
    }
    let mut order: Vec<usize> = (0..dets.len()).collect();
    order.sort_by(|&a, &b| dets[b].score.total_cmp(&dets[a].score));
    let mut matched = vec![false; gt.len()];
    let mut out = Vec::with_capacity(dets.len());
    for d in order {
        let det = &dets[d];
        let mut best: Option<(usize, f64)> = None;
        for &g in &by_image[det.image] {
            let o = iou(&det.bbox, &gt[g].bbox);
            if best.is_none_or(|(_, m)| o > m) {
                best = Some((g, o));
            }
        }
        match best {
            Some((g, o)) if o >= iou_threshold => {
                if gt[g].crowd {
                    continue;
                }
                out.push((det.score, !matched[g]));
                matched[g] = true;
            }
            _ => out.push((det.score, false)),
        }
    }
    Matches {
        detections: out,
        num_positives: gt.iter().filter(|g| !g.crowd).count(),
    }
}

/// Precision and recall after each detection of `m` (each confidence threshold), in score
/// order. Recall is `None` (undefined) when there are no positives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrCurve {
    /// The confidence at each point: the score of the last detection kept.
    pub scores: Vec<f64>,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
}

/// The precision/recall curve of matched detections; `None` when the class has no
/// positives (its recall is undefined and it is left out of mean AP).
pub fn precision_recall(m: &Matches) -> Option<PrCurve> {
    if m.num_positives == 0 {
        return None;
    }
    let mut curve = PrCurve::default();
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    for &(score, is_tp) in &m.detections {
        if is_tp {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        curve.scores.push(score);
        curve.recall.push(tp / m.num_positives as f64);
        curve.precision.push(tp / (tp + fp));
    }
    Some(curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt(image: usize, x: f64, crowd: bool) -> GtBox {
        GtBox {
            image,
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
            crowd,
        }
    }

    fn det(image: usize, x: f64, score: f64) -> ScoredBox {
        ScoredBox {
            image,
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
            score,
        }
    }

    #[test]
    fn voc_matching_by_hand() {
        // Image 0: boxes at 0 and 100 (crowd); image 1: a box at 0.
        let g = [gt(0, 0.0, false), gt(0, 100.0, true), gt(1, 0.0, false)];
        let d = [
            det(0, 1.0, 0.6),   // IoU 9/11 with box 0 -> duplicate of the 0.9 one: FP
            det(0, 0.0, 0.9),   // TP
            det(0, 100.0, 0.8), // on the crowd box: ignored
            det(1, 6.0, 0.7),   // IoU 4/16 = 0.25: FP
            det(2, 0.0, 0.5),   // image without ground truth: FP
        ];
        let m = match_detections(&g, &d, 0.5);
        assert_eq!(m.num_positives, 2);
        assert_eq!(
            m.detections,
            [(0.9, true), (0.7, false), (0.6, false), (0.5, false)]
        );
        let c = precision_recall(&m).unwrap();
        assert_eq!(c.recall, [0.5, 0.5, 0.5, 0.5]);
        assert_eq!(c.precision, [1.0, 0.5, 1.0 / 3.0, 0.25]);
        // At 0.2 the 0.25 overlap is a true positive.
        let m = match_detections(&g, &d, 0.2);
        assert_eq!(m.detections[1], (0.7, true));
        // No positives: no curve.
        assert!(precision_recall(&match_detections(&[gt(0, 0.0, true)], &d, 0.5)).is_none());
    }
}
