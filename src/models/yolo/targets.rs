//! What `tiny-yolo` learns from: per image its boxes in pixels and class ids
//! ([`DetectionTargets`], given to the loss as `losses::Target::new(targets)`), and their
//! encoding onto the output grid ([`GridTargets`]; the scheme is in `models::yolo`'s
//! docs): the responsible cell of each box, its class, its corners and its encoded
//! centre offset and log size.

use super::{BOX_CHANNELS, STRIDE};
use crate::detection::BBox;
use crate::engine::Tensor;
use crate::error::{Error, Result};

/// One labelled box of an image: corners in pixels, class id in `0..num_classes`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetBox {
    pub bbox: BBox,
    pub class: usize,
}

/// A batch's ground truth: `images[i]` holds image `i`'s boxes (none is allowed: a
/// background image teaches "no object" everywhere).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DetectionTargets {
    pub images: Vec<Vec<TargetBox>>,
}

impl DetectionTargets {
    pub fn new(images: Vec<Vec<TargetBox>>) -> DetectionTargets {
        DetectionTargets { images }
    }
}

/// [`DetectionTargets`] encoded onto a grid of `rows x cols` cells for a batch of `n`
/// images. Cells are numbered `(image * rows + row) * cols + col`, the row order of the
/// output permuted to `[N, S_h, S_w, 5 + K]`.
#[derive(Clone, Debug, PartialEq)]
pub struct GridTargets {
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
    /// The responsible cells, ascending.
    pub positives: Vec<usize>,
    /// Per positive: its box's class.
    pub classes: Vec<usize>,
    /// Per positive: its cell's column and row (`j`, `i`).
    pub cell_xy: Vec<[f32; 2]>,
    /// Per positive: its box's corners `x1, y1, x2, y2` in units of the stride.
    pub corners: Vec<[f32; 4]>,
    /// Per positive: the encoded box `ox, oy, ln(w / stride), ln(h / stride)`, where
    /// `ox = cx / stride - j` in `[0, 1)`.
    pub encoded: Vec<[f32; 4]>,
    /// Boxes left out because a smaller box of the same image centres in their cell.
    pub dropped: usize,
}

impl GridTargets {
    /// Encodes `targets` for an output of `n` images on a `rows x cols` grid (an image of
    /// `8 rows x 8 cols` pixels) with `num_classes` classes. Errors (naming the image and
    /// the box) on: a count of images other than `n`, a box that is not finite, has zero
    /// area or lies outside the image, a class id `>= num_classes`.
    pub fn encode(
        targets: &DetectionTargets,
        n: usize,
        rows: usize,
        cols: usize,
        num_classes: usize,
    ) -> Result<GridTargets> {
        if targets.images.len() != n {
            return Err(Error::invalid(format!(
                "detection targets: {} images of boxes for a batch of {n} outputs",
                targets.images.len()
            )));
        }
        let s = STRIDE as f64;
        let (width, height) = (cols as f64 * s, rows as f64 * s);
        // Per cell: the index of the box it holds, by (area, then input order).
        let mut owner: Vec<Option<(usize, usize)>> = vec![None; n * rows * cols];
        let mut dropped = 0;
        for (im, boxes) in targets.images.iter().enumerate() {
            for (b, t) in boxes.iter().enumerate() {
                t.bbox
                    .check_in_image(width, height, 1e-3)
                    .map_err(|e| Error::invalid(format!("image {im}, box {b}: {e}")))?;
                if t.class >= num_classes {
                    return Err(Error::invalid(format!(
                        "image {im}, box {b}: class {} is not in 0..{num_classes}",
                        t.class
                    )));
                }
                let cx = (t.bbox.x1 + t.bbox.x2) / 2.0 / s;
                let cy = (t.bbox.y1 + t.bbox.y2) / 2.0 / s;
                let j = (cx.floor() as usize).min(cols - 1);
                let i = (cy.floor() as usize).min(rows - 1);
                let cell = (im * rows + i) * cols + j;
                match owner[cell] {
                    Some((_, other)) if boxes[other].bbox.area() <= t.bbox.area() => dropped += 1,
                    Some(_) => {
                        dropped += 1;
                        owner[cell] = Some((im, b));
                    }
                    None => owner[cell] = Some((im, b)),
                }
            }
        }
        let mut g = GridTargets {
            n,
            rows,
            cols,
            positives: Vec::new(),
            classes: Vec::new(),
            cell_xy: Vec::new(),
            corners: Vec::new(),
            encoded: Vec::new(),
            dropped,
        };
        for (cell, o) in owner.iter().enumerate() {
            let Some((im, b)) = *o else { continue };
            let t = targets.images[im][b];
            let (i, j) = ((cell / cols) % rows, cell % cols);
            let c = [t.bbox.x1 / s, t.bbox.y1 / s, t.bbox.x2 / s, t.bbox.y2 / s];
            let (cx, cy) = ((c[0] + c[2]) / 2.0, (c[1] + c[3]) / 2.0);
            g.positives.push(cell);
            g.classes.push(t.class);
            g.cell_xy.push([j as f32, i as f32]);
            g.corners.push(c.map(|v| v as f32));
            g.encoded.push([
                (cx - j as f64) as f32,
                (cy - i as f64) as f32,
                (c[2] - c[0]).ln() as f32,
                (c[3] - c[1]).ln() as f32,
            ]);
        }
        Ok(g)
    }

    /// The number of cells, `n * rows * cols`.
    pub fn cells(&self) -> usize {
        self.n * self.rows * self.cols
    }

    /// The output a perfect detector would give, `[N, 5 + K, rows, cols]`: objectness
    /// logit `+confidence` on the responsible cells and `-confidence` elsewhere, the class
    /// logit `+confidence` on the true class (0 on the others), and the box numbers that
    /// decode exactly to the target (offsets kept within `1e-4` of the cell's border, so
    /// their logits are finite). For tests and as the worked inverse of decoding.
    pub fn perfect_output(&self, num_classes: usize, confidence: f32) -> Tensor {
        let ch = BOX_CHANNELS + num_classes;
        let plane = self.rows * self.cols;
        let mut out = vec![0.0f32; self.n * ch * plane];
        let at = |cell: usize, c: usize| (cell / plane * ch + c) * plane + cell % plane;
        for cell in 0..self.cells() {
            out[at(cell, 0)] = -confidence;
        }
        let logit = |p: f32| {
            let p = p.clamp(1e-4, 1.0 - 1e-4);
            (p / (1.0 - p)).ln()
        };
        for (k, &cell) in self.positives.iter().enumerate() {
            let e = self.encoded[k];
            out[at(cell, 0)] = confidence;
            out[at(cell, 1)] = logit(e[0]);
            out[at(cell, 2)] = logit(e[1]);
            out[at(cell, 3)] = e[2];
            out[at(cell, 4)] = e[3];
            out[at(cell, BOX_CHANNELS + self.classes[k])] = confidence;
        }
        Tensor::from_vec(out, &[self.n, ch, self.rows, self.cols])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tb(x1: f64, y1: f64, x2: f64, y2: f64, class: usize) -> TargetBox {
        TargetBox {
            bbox: BBox::new(x1, y1, x2, y2),
            class,
        }
    }

    #[test]
    fn the_cell_of_the_centre_is_responsible_and_the_smaller_box_wins_a_cell() {
        let t = DetectionTargets::new(vec![
            vec![tb(4.0, 4.0, 20.0, 12.0, 1)], // centre (12, 8): cell row 1, col 1
            vec![
                tb(0.0, 0.0, 16.0, 16.0, 0), // centre (8, 8): cell (1, 1)
                tb(6.0, 6.0, 10.0, 10.0, 2), // same cell, smaller: wins
                tb(24.0, 0.0, 32.0, 4.0, 0), // centre (28, 2): cell (0, 3)
            ],
            vec![],
        ]);
        let g = GridTargets::encode(&t, 3, 4, 4, 3).unwrap();
        assert_eq!(g.positives, [5, 16 + 3, 16 + 5]);
        assert_eq!(g.classes, [1, 0, 2]);
        assert_eq!(g.dropped, 1);
        assert_eq!(g.cell_xy[0], [1.0, 1.0]);
        assert_eq!(g.corners[0], [0.5, 0.5, 2.5, 1.5]);
        let e = g.encoded[0];
        assert!((e[0] - 0.5).abs() < 1e-6 && e[1].abs() < 1e-6, "{e:?}");
        assert!(
            (e[2] - 2f32.ln()).abs() < 1e-6 && e[3].abs() < 1e-6,
            "{e:?}"
        );
    }

    #[test]
    fn bad_targets_are_errors_that_name_the_box() {
        let enc = |b: TargetBox| {
            GridTargets::encode(&DetectionTargets::new(vec![vec![b]]), 1, 2, 2, 3)
                .unwrap_err()
                .to_string()
        };
        let e = enc(tb(0.0, 0.0, 17.0, 8.0, 0));
        assert!(e.contains("image 0, box 0") && e.contains("outside"), "{e}");
        let e = enc(tb(4.0, 4.0, 4.0, 8.0, 0));
        assert!(e.contains("zero area"), "{e}");
        let e = enc(tb(0.0, 0.0, 4.0, 4.0, 3));
        assert!(e.contains("class 3 is not in 0..3"), "{e}");
        let e = enc(tb(f64::NAN, 0.0, 4.0, 4.0, 0));
        assert!(e.contains("non-finite"), "{e}");
        let e = GridTargets::encode(&DetectionTargets::default(), 2, 2, 2, 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 images of boxes for a batch of 2"), "{e}");
    }
}
