//! Decoding `tiny-yolo`'s output into detections: per cell one box (the scheme in
//! `models::yolo`'s docs) scored `sigmoid(objectness) * max softmax(class logits)` with
//! that class, in pixels and clipped to the image; candidates below the score threshold
//! dropped, then class-aware NMS (`detection::nms`, with its top-k cap before the O(n^2)
//! loop and a cap on what it returns).

use super::{check_output_shape, BOX_CHANNELS, STRIDE};
use crate::detection::{nms, BBox, Detection, NmsOptions};
use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::ops::activation::sigmoid_scalar;

/// How [`decode`] turns cells into detections.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeOptions {
    /// Cells scoring below this give no detection.
    pub score_threshold: f64,
    /// NMS: a box overlapping a better one of its class by more than this is dropped.
    pub iou_threshold: f64,
    /// NMS: at most this many candidates per image enter suppression.
    pub top_k: usize,
    /// At most this many detections per image.
    pub max_detections: usize,
}

impl Default for DecodeOptions {
    fn default() -> DecodeOptions {
        DecodeOptions {
            score_threshold: 0.05,
            iou_threshold: 0.5,
            top_k: 1000,
            max_detections: 100,
        }
    }
}

/// The detections of each image of `output` (`[N, 5 + K, S_h, S_w]`, `K` =
/// `num_classes`), best first. A detection's `image_id` is the image's index in the batch
/// and its `category_id` the class index; boxes are in pixels of the `8 S_w x 8 S_h`
/// input. Errors on an output of another shape or options out of range.
pub fn decode(
    output: &Tensor,
    num_classes: usize,
    opts: &DecodeOptions,
) -> Result<Vec<Vec<Detection>>> {
    let (n, rows, cols) = check_output_shape("decode", output.shape(), num_classes)?;
    if !(0.0..=1.0).contains(&opts.score_threshold) || opts.score_threshold.is_nan() {
        return Err(Error::invalid(format!(
            "decode: score_threshold {} is not in [0, 1]",
            opts.score_threshold
        )));
    }
    let ch = BOX_CHANNELS + num_classes;
    let plane = rows * cols;
    let v = output.to_f32_vec();
    let s = STRIDE as f64;
    let (width, height) = (cols as f64 * s, rows as f64 * s);
    let nms_opts = NmsOptions {
        iou_threshold: opts.iou_threshold,
        score_threshold: opts.score_threshold,
        top_k: Some(opts.top_k),
        max_detections: Some(opts.max_detections),
        class_aware: true,
    };
    let mut out = Vec::with_capacity(n);
    for im in 0..n {
        let at = |c: usize, cell: usize| v[(im * ch + c) * plane + cell] as f64;
        let (mut boxes, mut scores, mut classes) = (Vec::new(), Vec::new(), Vec::new());
        for cell in 0..plane {
            let (i, j) = (cell / cols, cell % cols);
            let logits: Vec<f64> = (0..num_classes)
                .map(|k| at(BOX_CHANNELS + k, cell))
                .collect();
            let (best, best_logit) =
                logits
                    .iter()
                    .copied()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |b, (k, l)| if l > b.1 { (k, l) } else { b },
                    );
            // max softmax = 1 / sum_k exp(l_k - l_max).
            let prob = 1.0 / logits.iter().map(|l| (l - best_logit).exp()).sum::<f64>();
            let score = sigmoid_scalar(at(0, cell) as f32) as f64 * prob;
            if score.is_nan() || score < opts.score_threshold {
                continue;
            }
            let cx = (j as f64 + sigmoid_scalar(at(1, cell) as f32) as f64) * s;
            let cy = (i as f64 + sigmoid_scalar(at(2, cell) as f32) as f64) * s;
            let w = at(3, cell).clamp(-8.0, 8.0).exp() * s;
            let h = at(4, cell).clamp(-8.0, 8.0).exp() * s;
            let b = BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0);
            boxes.push(b.clip(width, height));
            scores.push(score);
            classes.push(best);
        }
        let keep = nms(&boxes, &scores, &classes, &nms_opts)?;
        out.push(
            keep.into_iter()
                .map(|k| Detection {
                    image_id: im as i64,
                    category_id: classes[k] as i64,
                    bbox: boxes[k],
                    score: scores[k],
                })
                .collect(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::iou;
    use crate::models::yolo::{DetectionTargets, GridTargets, TargetBox};

    #[test]
    fn a_perfect_output_decodes_back_to_its_targets() {
        let tb = |x1, y1, x2, y2, class| TargetBox {
            bbox: BBox::new(x1, y1, x2, y2),
            class,
        };
        let t = DetectionTargets::new(vec![
            vec![
                tb(10.0, 12.0, 40.0, 30.0, 3),
                tb(50.0, 50.0, 62.0, 90.0, 7),
                tb(0.0, 0.0, 96.0, 96.0, 0),
            ],
            vec![],
            vec![tb(81.0, 2.0, 95.5, 17.0, 9)],
        ]);
        let grid = GridTargets::encode(&t, 3, 12, 12, 10).unwrap();
        let out = grid.perfect_output(10, 12.0);
        let dets = decode(&out, 10, &DecodeOptions::default()).unwrap();
        assert_eq!(dets.len(), 3);
        for (im, (want, got)) in t.images.iter().zip(&dets).enumerate() {
            assert_eq!(got.len(), want.len(), "image {im}: {got:?}");
            for w in want {
                let d = got
                    .iter()
                    .find(|d| d.category_id == w.class as i64)
                    .unwrap_or_else(|| panic!("image {im}: no class {}", w.class));
                assert!(iou(&d.bbox, &w.bbox) > 0.99, "{:?} vs {:?}", d.bbox, w.bbox);
                assert!(d.score > 0.99 && d.image_id == im as i64);
            }
        }
    }

    #[test]
    fn thresholds_caps_and_bad_input() {
        // Every cell of a 2x2 grid claims the same class with falling confidence.
        let mut v = vec![0.0f32; 7 * 4];
        for cell in 0..4 {
            v[cell] = 3.0 - cell as f32; // objectness
            v[5 * 4 + cell] = 5.0; // class 0
        }
        let out = Tensor::from_vec(v, &[1, 7, 2, 2]);
        let all = decode(&out, 2, &DecodeOptions::default()).unwrap();
        assert_eq!(all[0].len(), 4); // 8x8 boxes in different cells: no overlap
        assert!(all[0].windows(2).all(|w| w[0].score >= w[1].score));
        let opts = DecodeOptions {
            score_threshold: 0.7,
            ..DecodeOptions::default()
        };
        assert_eq!(decode(&out, 2, &opts).unwrap()[0].len(), 3);
        let opts = DecodeOptions {
            max_detections: 1,
            ..DecodeOptions::default()
        };
        assert_eq!(decode(&out, 2, &opts).unwrap()[0].len(), 1);
        let e = decode(&out, 3, &DecodeOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("[1, 7, 2, 2]"), "{e}");
        let e = decode(&Tensor::zeros(&[7, 2, 2]), 2, &DecodeOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("decode"), "{e}");
        let opts = DecodeOptions {
            score_threshold: f64::NAN,
            ..DecodeOptions::default()
        };
        assert!(decode(&out, 2, &opts).is_err());
    }
}
