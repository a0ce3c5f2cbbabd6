//! Non-maximum suppression: of boxes that overlap, keep the highest-scoring one.
//!
//! Conventions:
//! - Candidates are those with a score at or above `score_threshold` (a NaN score is never
//!   a candidate). They are ordered by score, highest first; equal scores keep their input
//!   order, so the result is deterministic and the same on every machine.
//! - `top_k` caps the candidates (over all classes) BEFORE the O(n^2) loop: the cost is at
//!   most `top_k^2` IoUs however many boxes a detector proposes.
//! - A kept box suppresses every later candidate whose IoU with it is strictly greater
//!   than `iou_threshold` (torchvision's rule), only of its own class when `class_aware`.
//! - `max_detections` caps what is returned, after suppression.
//! - The result is the indices of the kept boxes, highest score first.

use super::boxes::BBox;
use super::iou::iou;
use crate::error::{Error, Result};

/// What [`nms`] keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NmsOptions {
    /// Suppress a box whose IoU with a kept one is above this.
    pub iou_threshold: f64,
    /// Boxes scoring below this are dropped first.
    pub score_threshold: f64,
    /// At most this many candidates (the best-scoring) enter suppression.
    pub top_k: Option<usize>,
    /// At most this many boxes are returned.
    pub max_detections: Option<usize>,
    /// Boxes of different classes never suppress each other.
    pub class_aware: bool,
}

impl Default for NmsOptions {
    fn default() -> NmsOptions {
        NmsOptions {
            iou_threshold: 0.5,
            score_threshold: 0.0,
            top_k: Some(1000),
            max_detections: Some(100),
            class_aware: true,
        }
    }
}

/// Non-maximum suppression over `boxes` with their `scores` and `classes` (all the same
/// length; `classes` is read only when `opts.class_aware`). Returns the kept indices,
/// highest score first.
pub fn nms(
    boxes: &[BBox],
    scores: &[f64],
    classes: &[usize],
    opts: &NmsOptions,
) -> Result<Vec<usize>> {
    if scores.len() != boxes.len() || (opts.class_aware && classes.len() != boxes.len()) {
        return Err(Error::invalid(format!(
            "nms: {} boxes, {} scores and {} classes; they must be as many",
            boxes.len(),
            scores.len(),
            classes.len()
        )));
    }
    if !(0.0..=1.0).contains(&opts.iou_threshold) {
        return Err(Error::invalid(format!(
            "nms: iou_threshold {} is not in [0, 1]",
            opts.iou_threshold
        )));
    }
    let mut order: Vec<usize> = (0..boxes.len())
        .filter(|&i| scores[i] >= opts.score_threshold)
        .collect();
    // Stable: ties keep input order.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    if let Some(k) = opts.top_k {
        order.truncate(k);
    }
    let max = opts.max_detections.unwrap_or(usize::MAX);
    let mut suppressed = vec![false; order.len()];
    let mut keep = Vec::new();
    for (i, &a) in order.iter().enumerate() {
        if keep.len() >= max {
            break;
        }
        if suppressed[i] {
            continue;
        }
        keep.push(a);
        for (j, &b) in order.iter().enumerate().skip(i + 1) {
            if suppressed[j] || (opts.class_aware && classes[a] != classes[b]) {
                continue;
            }
            if iou(&boxes[a], &boxes[b]) > opts.iou_threshold {
                suppressed[j] = true;
            }
        }
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f64, y1: f64, x2: f64, y2: f64) -> BBox {
        BBox::new(x1, y1, x2, y2)
    }

    fn opts(iou_threshold: f64, class_aware: bool) -> NmsOptions {
        NmsOptions {
            iou_threshold,
            score_threshold: 0.0,
            top_k: None,
            max_detections: None,
            class_aware,
        }
    }

    // Box 0 and 1 overlap with IoU 1/3 (2x2 shifted by 1), box 2 overlaps 1 by 0.81/1.0
    // ... worked out below; box 3 is apart.
    fn scene() -> Vec<BBox> {
        vec![
            b(0., 0., 2., 2.),     // 0
            b(1., 0., 3., 2.),     // 1: IoU with 0 = 2/6
            b(0., 0., 2., 1.8),    // 2: IoU with 0 = 3.6/4 = 0.9
            b(10., 10., 12., 12.), // 3: apart
        ]
    }

    #[test]
    fn suppresses_by_iou_in_score_order() {
        let boxes = scene();
        let scores = [0.9, 0.8, 0.95, 0.1];
        let classes = [0, 0, 0, 0];
        // 2 (0.95) kept; 0 (IoU 0.9 with 2) suppressed; 1: IoU with 2 = 1.8/(2*1.8+4-1.8)
        // = 1.8/5.8 = 0.31 -> kept at 0.5; 3 kept.
        assert_eq!(
            nms(&boxes, &scores, &classes, &opts(0.5, true)).unwrap(),
            [2, 1, 3]
        );
        // At 0.3 box 1 goes too.
        assert_eq!(
            nms(&boxes, &scores, &classes, &opts(0.3, true)).unwrap(),
            [2, 3]
        );
        // Strictly greater: IoU exactly at the threshold is not suppressed.
        let two = [b(0., 0., 2., 2.), b(1., 0., 3., 2.)];
        let keep = nms(&two, &[0.9, 0.8], &[0, 0], &opts(1.0 / 3.0, true)).unwrap();
        assert_eq!(keep, [0, 1]);
    }

    #[test]
    fn class_aware_and_agnostic() {
        let boxes = scene();
        let scores = [0.9, 0.8, 0.95, 0.1];
        let classes = [1, 0, 0, 0];
        // Class-aware: box 0 (class 1) is not suppressed by box 2 (class 0).
        assert_eq!(
            nms(&boxes, &scores, &classes, &opts(0.5, true)).unwrap(),
            [2, 0, 1, 3]
        );
        assert_eq!(
            nms(&boxes, &scores, &classes, &opts(0.5, false)).unwrap(),
            [2, 1, 3]
        );
        // Agnostic ignores the classes slice entirely.
        assert_eq!(
            nms(&boxes, &scores, &[], &opts(0.5, false)).unwrap(),
            [2, 1, 3]
        );
    }

    #[test]
    fn thresholds_caps_and_ties() {
        let boxes = scene();
        let classes = [0, 0, 0, 0];
        let mut o = opts(0.5, true);
        o.score_threshold = 0.85;
        assert_eq!(
            nms(&boxes, &[0.9, 0.8, 0.95, 0.1], &classes, &o).unwrap(),
            [2]
        );
        // top_k = 2 before suppression: only 2 and 0 enter; 0 is suppressed.
        let mut o = opts(0.5, true);
        o.top_k = Some(2);
        assert_eq!(
            nms(&boxes, &[0.9, 0.8, 0.95, 0.1], &classes, &o).unwrap(),
            [2]
        );
        let mut o = opts(0.5, true);
        o.max_detections = Some(2);
        assert_eq!(
            nms(&boxes, &[0.9, 0.8, 0.95, 0.1], &classes, &o).unwrap(),
            [2, 1]
        );
        // Ties: the earlier index wins, every time.
        let same = [b(0., 0., 2., 2.), b(0., 0., 2., 1.9), b(0., 0., 1.9, 2.)];
        for _ in 0..3 {
            let keep = nms(&same, &[0.5, 0.5, 0.5], &[0, 0, 0], &opts(0.5, true)).unwrap();
            assert_eq!(keep, [0]);
        }
        let keep = nms(&same, &[0.5, 0.7, 0.7], &[0, 0, 0], &opts(0.5, true)).unwrap();
        assert_eq!(keep, [1]);
        // NaN scores are never candidates.
        let keep = nms(
            &boxes,
            &[f64::NAN, 0.8, 0.95, 0.1],
            &classes,
            &opts(0.5, true),
        );
        assert_eq!(keep.unwrap(), [2, 1, 3]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let boxes = scene();
        assert!(nms(&boxes, &[0.1], &[0, 0, 0, 0], &opts(0.5, true)).is_err());
        assert!(nms(&boxes, &[0.1; 4], &[0], &opts(0.5, true)).is_err());
        assert!(nms(&boxes, &[0.1; 4], &[0; 4], &opts(1.5, true)).is_err());
        assert!(nms(&[], &[], &[], &opts(0.5, true)).unwrap().is_empty());
    }
}
