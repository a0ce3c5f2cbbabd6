//! COCO's bounding-box evaluation, reproducing pycocotools' `COCOeval` (iouType "bbox")
//! number for number: its twelve summary statistics, and AP per category.
//!
//! What pycocotools does, and so what this does, step by step:
//! - Images are all the data set's images, categories all its categories, each sorted by
//!   id. Each (image, category) is evaluated on its own, for each of four area ranges
//!   (all, small < 32^2, medium 32^2-96^2, large > 96^2; ground truth by its `area`,
//!   detections by `w * h`), keeping each image's `maxDets` = 100 best detections.
//! - Detections are ordered by score, highest first, equal scores in their input order
//!   (numpy's stable mergesort). Ground truth is ordered with the boxes to be found before
//!   the ignored ones (crowd, or outside the area range).
//! - IoU is COCO's: for a crowd region it is intersection / detection area, so one crowd
//!   region absorbs any number of detections.
//! - At each IoU threshold t (0.5:0.05:0.95), a detection takes the box with the highest
//!   IoU >= min(t, 1 - 1e-10) among those not yet matched (crowd regions stay available),
//!   preferring boxes to be found over ignored ones. Matched to an ignored box: ignored.
//!   Unmatched and outside the area range: ignored. Otherwise unmatched: a false positive.
//! - Per category, area range and maxDets (1, 10, 100): the images' first maxDets
//!   detections are pooled and sorted by score; precision = tp / (tp + fp + eps) and
//!   recall = tp / (boxes to be found); the precision envelope is read at recall 0, 0.01,
//!   ..., 1 (the first detection reaching each; 0 past the end). A category with no box
//!   to be found in the range is -1 (left out of the means): a class without ground truth
//!   does not count. Images without detections contribute their boxes as misses.
//! - The summary: means over the entries > -1 of precision (AP) or final recall (AR).
//!
//! One deliberate difference: pycocotools marks a match by the matched annotation's id,
//! so a ground-truth annotation with id 0 is taken for "unmatched"; here a match is a
//! flag, so ids do not matter. Detections of an image or a category that the data set
//! does not have are errors (pycocotools asserts on the first, silently drops the second).

use super::ap::{coco_iou_thresholds, coco_recall_thresholds};
use super::boxes::BBox;
use super::dataset::{Detection, DetectionDataset};
use crate::error::{Error, Result};

/// The per-image detection caps COCO reports.
pub const MAX_DETS: [usize; 3] = [1, 10, 100];
/// COCO's area ranges: all, small, medium, large (in square pixels).
pub const AREA_RANGES: [(f64, f64); 4] = [
    (0.0, 1e10),
    (0.0, 32.0 * 32.0),
    (32.0 * 32.0, 96.0 * 96.0),
    (96.0 * 96.0, 1e10),
];
/// What each of [`CocoEvaluation::stats`] is, in pycocotools' order.
pub const STAT_NAMES: [&str; 12] = [
    "AP@[.5:.95]",
    "AP@.5",
    "AP@.75",
    "AP small",
    "AP medium",
    "AP large",
    "AR@1",
    "AR@10",
    "AR@100",
    "AR small",
    "AR medium",
    "AR large",
];

/// `np.spacing(1)`: what pycocotools adds to a precision's denominator.
const EPS: f64 = f64::EPSILON;

/// The result of [`coco_evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct CocoEvaluation {
    /// The twelve numbers `COCOeval.summarize()` prints ([`STAT_NAMES`]); -1 where nothing
    /// could be measured.
    pub stats: [f64; 12],
    /// The category ids, sorted (the K axis).
    pub category_ids: Vec<i64>,
    /// `precision[t][r][k][a][m]`, flattened; -1 where undefined.
    pub precision: Vec<f64>,
    /// `recall[t][k][a][m]`, flattened; -1 where undefined.
    pub recall: Vec<f64>,
}

impl CocoEvaluation {
    fn dims(&self) -> (usize, usize, usize, usize, usize) {
        (10, 101, self.category_ids.len(), 4, 3)
    }

    /// `precision[t][r][k][a][m]`.
    pub fn precision_at(&self, t: usize, r: usize, k: usize, a: usize, m: usize) -> f64 {
        let (_, nr, nk, na, nm) = self.dims();
        self.precision[(((t * nr + r) * nk + k) * na + a) * nm + m]
    }

    /// `recall[t][k][a][m]`.
    pub fn recall_at(&self, t: usize, k: usize, a: usize, m: usize) -> f64 {
        let (_, _, nk, na, nm) = self.dims();
        self.recall[((t * nk + k) * na + a) * nm + m]
    }

    /// AP of one category (all areas, 100 detections), over the IoU thresholds `ts`
    /// (indices into 0.5, 0.55, ...); `None` for a category without ground truth.
    pub fn class_ap(&self, category_id: i64, ts: std::ops::Range<usize>) -> Option<f64> {
        let k = self.category_ids.iter().position(|&c| c == category_id)?;
        let values = ts.flat_map(|t| (0..101).map(move |r| (t, r)));
        mean_defined(values.map(|(t, r)| self.precision_at(t, r, k, 0, 2)))
    }
}

fn mean_defined(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v.filter(|&x| x > -1.0) {
        s += x;
        n += 1;
    }
    (n > 0).then(|| s / n as f64)
}

/// COCO's IoU of a detection with a ground-truth box: intersection / union, or
/// intersection / detection area for a crowd region.
pub fn coco_iou(det: &BBox, gt: &BBox, crowd: bool) -> f64 {
    let w = det.x2.min(gt.x2) - det.x1.max(gt.x1);
    if w <= 0.0 {
        return 0.0;
    }
    let h = det.y2.min(gt.y2) - det.y1.max(gt.y1);
    if h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    let da = det.width() * det.height();
    let union = if crowd {
        da
    } else {
        da + gt.width() * gt.height() - inter
    };
    inter / union
}

struct Gt {
    bbox: BBox,
    crowd: bool,
    area: f64,
}

/// One (image, category, area range) evaluated: what `evaluateImg` returns.
struct ImageEval {
    /// Scores of the detections, best first (at most 100).
    scores: Vec<f64>,
    /// `[t][d]`: matched to a box.
    matched: Vec<Vec<bool>>,
    /// `[t][d]`: ignored.
    ignored: Vec<Vec<bool>>,
    /// Per ground-truth box: ignored.
    gt_ignored: Vec<bool>,
}

fn evaluate_image(
    gts: &[Gt],
    dets: &[(BBox, f64)],
    ious: &[Vec<f64>],
    area: (f64, f64),
    thresholds: &[f64],
) -> Option<ImageEval> {
    if gts.is_empty() && dets.is_empty() {
        return None;
    }
    let out_of_range = |a: f64| a < area.0 || a > area.1;
    let ignore: Vec<bool> = gts
        .iter()
        .map(|g| g.crowd || out_of_range(g.area))
        .collect();
    // Boxes to be found first, stable.
    let mut gt_order: Vec<usize> = (0..gts.len()).collect();
    gt_order.sort_by_key(|&g| ignore[g]);
    let gt_ignored: Vec<bool> = gt_order.iter().map(|&g| ignore[g]).collect();
    let crowd: Vec<bool> = gt_order.iter().map(|&g| gts[g].crowd).collect();
    let nd = dets.len();
    let mut matched = vec![vec![false; nd]; thresholds.len()];
    let mut ignored = vec![vec![false; nd]; thresholds.len()];
    for (t, &thr) in thresholds.iter().enumerate() {
        let mut gt_taken = vec![false; gts.len()];
        for d in 0..nd {
            let mut best_iou = thr.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for (gi, &g) in gt_order.iter().enumerate() {
                if gt_taken[gi] && !crowd[gi] {
                    continue;
                }
                if let Some(mi) = m {
                    if !gt_ignored[mi] && gt_ignored[gi] {
                        break;
                    }
                }
                if ious[d][g] < best_iou {
                    continue;
                }
                best_iou = ious[d][g];
                m = Some(gi);
            }
            if let Some(mi) = m {
                ignored[t][d] = gt_ignored[mi];
                matched[t][d] = true;
                gt_taken[mi] = true;
            }
        }
        for (d, (b, _)) in dets.iter().enumerate() {
            if !matched[t][d] && out_of_range(b.width() * b.height()) {
                ignored[t][d] = true;
            }
        }
    }
    Some(ImageEval {
        scores: dets.iter().map(|d| d.1).collect(),
        matched,
        ignored,
        gt_ignored,
    })
}

/// Scores `detections` against `data` the way pycocotools' `COCOeval` does for bounding
/// boxes (see the module docs).
pub fn coco_evaluate(data: &DetectionDataset, detections: &[Detection]) -> Result<CocoEvaluation> {
    let mut image_ids: Vec<i64> = data.images.iter().map(|i| i.id).collect();
    image_ids.sort_unstable();
    image_ids.dedup();
    let category_ids = data.category_ids();
    let (ni, nk) = (image_ids.len(), category_ids.len());
    let image_index = |id: i64| image_ids.binary_search(&id).ok();
    let cat_index = |id: i64| category_ids.binary_search(&id).ok();
    // Ground truth and detections per (category, image), in input order.
    let mut gts: Vec<Vec<Gt>> = (0..nk * ni).map(|_| Vec::new()).collect();
    for im in &data.images {
        let i = image_index(im.id).expect("listed above");
        for o in &im.objects {
            let k = cat_index(o.category_id).ok_or_else(|| {
                Error::invalid(format!(
                    "object {} of image {} has category {}, which the data set does not list",
                    o.id, im.id, o.category_id
                ))
            })?;
            gts[k * ni + i].push(Gt {
                bbox: o.bbox,
                crowd: o.crowd,
                area: o.area,
            });
        }
    }
    let mut dts: Vec<Vec<(BBox, f64)>> = vec![Vec::new(); nk * ni];
    for d in detections {
        let i = image_index(d.image_id).ok_or_else(|| {
            Error::invalid(format!(
                "a detection names image {}, which the data set does not have",
                d.image_id
            ))
        })?;
        let k = cat_index(d.category_id).ok_or_else(|| {
            Error::invalid(format!(
                "a detection names category {}, which the data set does not have",
                d.category_id
            ))
        })?;
        if !d.score.is_finite() {
            return Err(Error::invalid(format!(
                "a detection of image {} has score {}",
                d.image_id, d.score
            )));
        }
        d.bbox.check()?;
        dts[k * ni + i].push((d.bbox, d.score));
    }
    let max_det = MAX_DETS[2];
    for list in &mut dts {
        list.sort_by(|a, b| b.1.total_cmp(&a.1));
        list.truncate(max_det);
    }
    let thresholds = coco_iou_thresholds();
    let recall_thresholds = coco_recall_thresholds();
    let (nt, nr, na, nm) = (thresholds.len(), recall_thresholds.len(), 4, 3);
    // evalImgs[k][a][i].
    let mut evals: Vec<Option<ImageEval>> = Vec::with_capacity(nk * na * ni);
    for k in 0..nk {
        let ious: Vec<Vec<Vec<f64>>> = (0..ni)
            .map(|i| {
                let (g, d) = (&gts[k * ni + i], &dts[k * ni + i]);
                d.iter()
                    .map(|(db, _)| {
                        g.iter()
                            .map(|gt| coco_iou(db, &gt.bbox, gt.crowd))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        for area in AREA_RANGES {
            for i in 0..ni {
                evals.push(evaluate_image(
                    &gts[k * ni + i],
                    &dts[k * ni + i],
                    &ious[i],
                    area,
                    &thresholds,
                ));
            }
        }
    }
    let mut precision = vec![-1.0; nt * nr * nk * na * nm];
    let mut recall = vec![-1.0; nt * nk * na * nm];
    for k in 0..nk {
        for a in 0..na {
            let e: Vec<&ImageEval> = (0..ni)
                .filter_map(|i| evals[(k * na + a) * ni + i].as_ref())
                .collect();
            if e.is_empty() {
                continue;
            }
            for (m, &cap) in MAX_DETS.iter().enumerate() {
                let mut pooled: Vec<(f64, usize, usize)> = Vec::new(); // (score, image, d)
                for (ii, ev) in e.iter().enumerate() {
                    for d in 0..ev.scores.len().min(cap) {
                        pooled.push((ev.scores[d], ii, d));
                    }
                }
                pooled.sort_by(|x, y| y.0.total_cmp(&x.0));
                let npig = e
                    .iter()
                    .flat_map(|ev| ev.gt_ignored.iter())
                    .filter(|&&g| !g)
                    .count();
                if npig == 0 {
                    continue;
                }
                for t in 0..nt {
                    let (mut tp, mut fp) = (0.0f64, 0.0f64);
                    let mut rc = Vec::with_capacity(pooled.len());
                    let mut pr = Vec::with_capacity(pooled.len());
                    for &(_, ii, d) in &pooled {
                        let (is_m, is_ig) = (e[ii].matched[t][d], e[ii].ignored[t][d]);
                        if is_m && !is_ig {
                            tp += 1.0;
                        }
                        if !is_m && !is_ig {
                            fp += 1.0;
                        }
                        rc.push(tp / npig as f64);
                        pr.push(tp / (fp + tp + EPS));
                    }
                    recall[((t * nk + k) * na + a) * nm + m] = rc.last().copied().unwrap_or(0.0);
                    for i in (1..pr.len()).rev() {
                        if pr[i] > pr[i - 1] {
                            pr[i - 1] = pr[i];
                        }
                    }
                    for (r, rt) in recall_thresholds.iter().enumerate() {
                        let i = rc.partition_point(|x| x < rt);
                        let q = if i < pr.len() { pr[i] } else { 0.0 };
                        precision[(((t * nr + r) * nk + k) * na + a) * nm + m] = q;
                    }
                }
            }
        }
    }
    let mut ev = CocoEvaluation {
        stats: [0.0; 12],
        category_ids,
        precision,
        recall,
    };
    let ap = |ev: &CocoEvaluation, t: Option<usize>, a: usize| {
        let ts = t.map_or(0..nt, |t| t..t + 1);
        let v = ts.flat_map(|t| (0..nr).flat_map(move |r| (0..nk).map(move |k| (t, r, k))));
        mean_defined(v.map(|(t, r, k)| ev.precision_at(t, r, k, a, 2))).unwrap_or(-1.0)
    };
    let ar = |ev: &CocoEvaluation, a: usize, m: usize| {
        let v = (0..nt).flat_map(|t| (0..nk).map(move |k| (t, k)));
        mean_defined(v.map(|(t, k)| ev.recall_at(t, k, a, m))).unwrap_or(-1.0)
    };
    ev.stats = [
        ap(&ev, None, 0),
        ap(&ev, Some(0), 0),
        ap(&ev, Some(5), 0),
        ap(&ev, None, 1),
        ap(&ev, None, 2),
        ap(&ev, None, 3),
        ar(&ev, 0, 0),
        ar(&ev, 0, 1),
        ar(&ev, 0, 2),
        ar(&ev, 1, 2),
        ar(&ev, 2, 2),
        ar(&ev, 3, 2),
    ];
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::dataset::{Category, ImageRecord, Object};

    fn image(id: i64, objects: Vec<Object>) -> ImageRecord {
        ImageRecord {
            id,
            path: format!("{id}.png").into(),
            width: 100,
            height: 100,
            objects,
        }
    }

    fn obj(id: i64, cat: i64, b: BBox, crowd: bool) -> Object {
        Object {
            id,
            category_id: cat,
            bbox: b,
            crowd,
            area: b.area(),
        }
    }

    fn det(image_id: i64, category_id: i64, bbox: BBox, score: f64) -> Detection {
        Detection {
            image_id,
            category_id,
            bbox,
            score,
        }
    }

    #[test]
    fn crowd_iou_is_over_the_detection() {
        let d = BBox::new(0.0, 0.0, 2.0, 2.0);
        let g = BBox::new(1.0, 0.0, 11.0, 10.0);
        assert_eq!(coco_iou(&d, &g, false), 2.0 / (4.0 + 100.0 - 2.0));
        assert_eq!(coco_iou(&d, &g, true), 0.5);
    }

    #[test]
    fn perfect_detections_score_one_and_empty_classes_are_left_out() {
        let a = BBox::new(10.0, 10.0, 50.0, 50.0); // 1600: medium
        let b = BBox::new(0.0, 0.0, 20.0, 20.0); // 400: small
        let data = DetectionDataset {
            images: vec![
                image(1, vec![obj(1, 1, a, false), obj(2, 2, b, false)]),
                image(2, vec![]),
            ],
            categories: vec![
                Category {
                    id: 1,
                    name: "a".into(),
                },
                Category {
                    id: 2,
                    name: "b".into(),
                },
                Category {
                    id: 3,
                    name: "never".into(),
                },
            ],
        };
        let dets = [det(1, 1, a, 0.9), det(1, 2, b, 0.8)];
        // Precision is tp / (tp + fp + eps), as in pycocotools: 1 - 1e-16, not 1.
        let one = |x: f64| (x - 1.0).abs() < 1e-12;
        let ev = coco_evaluate(&data, &dets).unwrap();
        assert!(ev.stats[..5].iter().all(|&x| one(x)), "{:?}", ev.stats);
        assert_eq!(ev.stats[5], -1.0); // no large boxes
        assert!(ev.stats[6..11].iter().all(|&x| one(x)), "{:?}", ev.stats);
        assert_eq!(ev.class_ap(3, 0..10), None);
        assert!(one(ev.class_ap(1, 0..10).unwrap()));
        // No detections at all: AP 0, AR 0.
        let ev = coco_evaluate(&data, &[]).unwrap();
        assert_eq!(&ev.stats[..3], &[0.0, 0.0, 0.0]);
        assert_eq!(ev.stats[8], 0.0);
        // A detection on an image without that class's ground truth is a false positive.
        let ev = coco_evaluate(&data, &[det(2, 1, a, 0.95), det(1, 1, a, 0.9)]).unwrap();
        assert!((ev.class_ap(1, 0..1).unwrap() - 0.5 * 101.0 / 101.0).abs() < 1e-9);
        // Unknown image or category: errors.
        assert!(coco_evaluate(&data, &[det(9, 1, a, 0.5)]).is_err());
        assert!(coco_evaluate(&data, &[det(1, 9, a, 0.5)]).is_err());
    }

    #[test]
    fn a_crowd_region_absorbs_detections() {
        let a = BBox::new(0.0, 0.0, 40.0, 40.0);
        let crowd = BBox::new(50.0, 50.0, 100.0, 100.0);
        let data = DetectionDataset {
            images: vec![image(1, vec![obj(1, 1, a, false), obj(2, 1, crowd, true)])],
            categories: vec![Category {
                id: 1,
                name: "a".into(),
            }],
        };
        let on_crowd = |s| det(1, 1, BBox::new(60.0, 60.0, 70.0, 70.0), s);
        let dets = [on_crowd(0.99), on_crowd(0.98), det(1, 1, a, 0.5)];
        let ev = coco_evaluate(&data, &dets).unwrap();
        assert!((ev.stats[0] - 1.0).abs() < 1e-12, "{}", ev.stats[0]);
    }
}
