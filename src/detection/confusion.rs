//! A confusion matrix for detection: what each detection was and what became of each
//! ground-truth box, as plain counts.
//!
//! Convention, per image, with the detections scoring at least `score_threshold` taken
//! by score (equal scores in input order), in three passes so a correct match is never
//! lost to a worse one:
//! 1. **correct**: IoU >= `iou_threshold` with a box of its class not yet taken (the best
//!    such box; it is taken).
//! 2. **wrong class**: IoU >= `iou_threshold` with a box of another class not yet taken.
//! 3. **poor box**: IoU in [`poor_iou`, `iou_threshold`) with a box of its class not yet
//!    taken (right class, poorly placed).
//! 4. Otherwise: on a crowd region of its class (COCO's IoU, over the detection's area,
//!    at least `iou_threshold`): ignored; else **background** (a false positive: nothing
//!    there, or a duplicate of a box already taken).
//!
//! Every ground-truth box not taken by 1-3 (crowd regions excepted) is **missed**. So each
//! detection is counted once (correct, wrong class, poor box, background or ignored) and
//! each box once (found, found as another class, poorly placed, missed).

use super::boxes::BBox;
use super::coco_eval::coco_iou;
use super::dataset::{Detection, DetectionDataset};
use super::iou::iou;
use crate::error::{Error, Result};

/// Thresholds of [`confusion_matrix`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConfusionOptions {
    pub iou_threshold: f64,
    /// Below this IoU a detection is not about the box at all.
    pub poor_iou: f64,
    pub score_threshold: f64,
}

impl Default for ConfusionOptions {
    fn default() -> ConfusionOptions {
        ConfusionOptions {
            iou_threshold: 0.5,
            poor_iou: 0.1,
            score_threshold: 0.25,
        }
    }
}

/// The counts of [`confusion_matrix`]; classes are indices into `category_ids`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DetectionConfusion {
    /// The category ids, sorted.
    pub category_ids: Vec<i64>,
    /// `matrix[true][predicted]`: correct detections on the diagonal, wrong-class ones
    /// off it.
    pub matrix: Vec<Vec<u64>>,
    /// Per predicted class: right class, box too far off.
    pub poor_box: Vec<u64>,
    /// Per predicted class: false positives on background (or duplicates).
    pub background: Vec<u64>,
    /// Per true class: boxes no detection reached.
    pub missed: Vec<u64>,
    /// Detections on crowd regions, not counted.
    pub ignored: u64,
}

impl DetectionConfusion {
    pub fn correct(&self) -> u64 {
        (0..self.matrix.len()).map(|c| self.matrix[c][c]).sum()
    }

    pub fn wrong_class(&self) -> u64 {
        let all: u64 = self.matrix.iter().flatten().sum();
        all - self.correct()
    }
}

/// Counts, over `data`, what each detection and each box became (see the module docs).
pub fn confusion_matrix(
    data: &DetectionDataset,
    detections: &[Detection],
    opts: &ConfusionOptions,
) -> Result<DetectionConfusion> {
    let ids = data.category_ids();
    let nk = ids.len();
    let class = |id: i64| {
        ids.binary_search(&id).map_err(|_| {
            Error::invalid(format!(
                "category {id} is not one of the data set's categories"
            ))
        })
    };
    let mut out = DetectionConfusion {
        category_ids: ids.clone(),
        matrix: vec![vec![0; nk]; nk],
        poor_box: vec![0; nk],
        background: vec![0; nk],
        missed: vec![0; nk],
        ignored: 0,
    };
    let mut per_image: std::collections::HashMap<i64, Vec<&Detection>> = Default::default();
    for d in detections {
        if !data.images.iter().any(|im| im.id == d.image_id) {
            return Err(Error::invalid(format!(
                "a detection names image {}, which the data set does not have",
                d.image_id
            )));
        }
        if d.score >= opts.score_threshold {
            per_image.entry(d.image_id).or_default().push(d);
        }
    }
    for im in &data.images {
        let gts: Vec<(usize, BBox, bool)> = im
            .objects
            .iter()
            .map(|o| Ok((class(o.category_id)?, o.bbox, o.crowd)))
            .collect::<Result<_>>()?;
        let mut dets: Vec<(usize, BBox)> = Vec::new();
        let mut list = per_image.remove(&im.id).unwrap_or_default();
        list.sort_by(|a, b| b.score.total_cmp(&a.score));
        for d in list {
            dets.push((class(d.category_id)?, d.bbox));
        }
        let mut taken = vec![false; gts.len()];
        let mut done = vec![false; dets.len()];
        // The best box not yet taken that `pred` accepts, with IoU in [lo, hi).
        let best = |d: &(usize, BBox), taken: &[bool], same: bool, lo: f64, hi: f64| {
            let mut m: Option<(usize, f64)> = None;
            for (g, gt) in gts.iter().enumerate() {
                if taken[g] || gt.2 || (gt.0 == d.0) != same {
                    continue;
                }
                let o = iou(&d.1, &gt.1);
                if o >= lo && o < hi && m.is_none_or(|(_, b)| o > b) {
                    m = Some((g, o));
                }
            }
            m.map(|(g, _)| g)
        };
        let t = opts.iou_threshold;
        for (pass, same, lo, hi) in [
            (0, true, t, f64::INFINITY),
            (1, false, t, f64::INFINITY),
            (2, true, opts.poor_iou, t),
        ] {
            for (i, d) in dets.iter().enumerate() {
                if done[i] {
                    continue;
                }
                if let Some(g) = best(d, &taken, same, lo, hi) {
                    taken[g] = true;
                    done[i] = true;
                    if pass < 2 {
                        out.matrix[gts[g].0][d.0] += 1;
                    } else {
                        out.poor_box[d.0] += 1;
                    }
                }
            }
        }
        for (i, d) in dets.iter().enumerate() {
            if done[i] {
                continue;
            }
            let on_crowd = gts
                .iter()
                .any(|g| g.2 && g.0 == d.0 && coco_iou(&d.1, &g.1, true) >= t);
            if on_crowd {
                out.ignored += 1;
            } else {
                out.background[d.0] += 1;
            }
        }
        for (g, gt) in gts.iter().enumerate() {
            if !taken[g] && !gt.2 {
                out.missed[gt.0] += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::dataset::{Category, ImageRecord, Object};

    #[test]
    fn each_kind_of_error_by_hand() {
        let b = |x: f64| BBox::new(x, 0.0, x + 10.0, 10.0);
        let obj = |id, cat, x, crowd| Object {
            id,
            category_id: cat,
            bbox: b(x),
            crowd,
            area: 100.0,
        };
        let data = DetectionDataset {
            images: vec![ImageRecord {
                id: 7,
                path: "7.png".into(),
                width: 200,
                height: 20,
                objects: vec![
                    obj(1, 1, 0.0, false),  // found
                    obj(2, 1, 20.0, false), // found as class 2
                    obj(3, 2, 40.0, false), // poorly placed
                    obj(4, 2, 60.0, false), // missed
                    obj(5, 1, 150.0, true), // crowd
                ],
            }],
            categories: vec![
                Category {
                    id: 1,
                    name: "one".into(),
                },
                Category {
                    id: 2,
                    name: "two".into(),
                },
            ],
        };
        let det = |cat, x, score| Detection {
            image_id: 7,
            category_id: cat,
            bbox: b(x),
            score,
        };
        let dets = [
            det(1, 0.0, 0.9),   // correct
            det(1, 1.0, 0.85),  // duplicate: background
            det(2, 20.0, 0.8),  // wrong class
            det(2, 46.0, 0.7),  // IoU 4/16: poor box
            det(1, 100.0, 0.6), // background
            det(1, 150.0, 0.5), // on the crowd region: ignored
            det(2, 60.0, 0.1),  // below the score threshold: not counted
        ];
        let c = confusion_matrix(&data, &dets, &ConfusionOptions::default()).unwrap();
        assert_eq!(c.matrix, vec![vec![1, 1], vec![0, 0]]);
        assert_eq!((c.correct(), c.wrong_class()), (1, 1));
        assert_eq!(c.poor_box, [0, 1]);
        assert_eq!(c.background, [2, 0]);
        assert_eq!(c.missed, [0, 1]);
        assert_eq!(c.ignored, 1);
        let bad = [Detection {
            image_id: 8,
            ..dets[0]
        }];
        assert!(confusion_matrix(&data, &bad, &ConfusionOptions::default()).is_err());
    }
}
