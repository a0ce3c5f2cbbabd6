//! Overlap of boxes: intersection over union (IoU) and generalised IoU (GIoU), for one
//! pair and as a matrix.
//!
//! Conventions:
//! - Continuous coordinates (no VOC "+1 pixel"): boxes that only touch overlap by 0.
//! - A union of area 0 (two zero-area boxes) gives IoU 0, not NaN: such a box matches
//!   nothing.
//! - GIoU = IoU - (C - U) / C with C the area of the smallest box enclosing both (Rezatofighi
//!   et al. 2019); it lies in (-1, 1]. When C is 0 the penalty term is taken as 0.
//! - Matrices are row-major `[a.len(), b.len()]`: `m[i * b.len() + j]` is the overlap of
//!   `a[i]` and `b[j]`.

use super::boxes::BBox;

/// The area of the intersection of two boxes (0 when they are apart or only touch).
pub fn intersection(a: &BBox, b: &BBox) -> f64 {
    let w = a.x2.min(b.x2) - a.x1.max(b.x1);
    let h = a.y2.min(b.y2) - a.y1.max(b.y1);
    if w <= 0.0 || h <= 0.0 {
        0.0
    } else {
        w * h
    }
}

/// Intersection over union; 0 when the union is empty.
pub fn iou(a: &BBox, b: &BBox) -> f64 {
    let inter = intersection(a, b);
    let union = a.area() + b.area() - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Generalised IoU: IoU minus the part of the enclosing box that neither box covers.
pub fn giou(a: &BBox, b: &BBox) -> f64 {
    let inter = intersection(a, b);
    let union = a.area() + b.area() - inter;
    let iou = if union <= 0.0 { 0.0 } else { inter / union };
    let enclosing = (a.x2.max(b.x2) - a.x1.min(b.x1)) * (a.y2.max(b.y2) - a.y1.min(b.y1));
    if enclosing <= 0.0 {
        iou
    } else {
        iou - (enclosing - union) / enclosing
    }
}

/// IoU of every box of `a` with every box of `b`, row-major `[a.len(), b.len()]`.
pub fn iou_matrix(a: &[BBox], b: &[BBox]) -> Vec<f64> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| iou(x, y)))
        .collect()
}

/// GIoU of every box of `a` with every box of `b`, row-major `[a.len(), b.len()]`.
pub fn giou_matrix(a: &[BBox], b: &[BBox]) -> Vec<f64> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| giou(x, y)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f64, y1: f64, x2: f64, y2: f64) -> BBox {
        BBox::new(x1, y1, x2, y2)
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn hand_worked_iou_and_giou() {
        // Disjoint: 2x2 boxes 2 apart; enclosing 6x2 = 12, union 8 -> GIoU = -4/12.
        close(iou(&b(0., 0., 2., 2.), &b(4., 0., 6., 2.)), 0.0);
        close(giou(&b(0., 0., 2., 2.), &b(4., 0., 6., 2.)), -1.0 / 3.0);
        // Touching along an edge: no overlap, enclosing = union -> GIoU 0.
        close(iou(&b(0., 0., 2., 2.), &b(2., 0., 4., 2.)), 0.0);
        close(giou(&b(0., 0., 2., 2.), &b(2., 0., 4., 2.)), 0.0);
        // Nested: 1x1 inside 2x2 -> 1/4; enclosing is the outer box -> GIoU = IoU.
        close(iou(&b(0., 0., 2., 2.), &b(0.5, 0.5, 1.5, 1.5)), 0.25);
        close(giou(&b(0., 0., 2., 2.), &b(0.5, 0.5, 1.5, 1.5)), 0.25);
        // Identical.
        close(iou(&b(1., 2., 3., 5.), &b(1., 2., 3., 5.)), 1.0);
        close(giou(&b(1., 2., 3., 5.), &b(1., 2., 3., 5.)), 1.0);
        // Half overlap: 2x2 shifted by 1 -> inter 2, union 6 -> 1/3; enclosing 3x2 = 6.
        close(iou(&b(0., 0., 2., 2.), &b(1., 0., 3., 2.)), 1.0 / 3.0);
        close(giou(&b(0., 0., 2., 2.), &b(1., 0., 3., 2.)), 1.0 / 3.0);
        // Diagonal: inter 1, union 7, enclosing 9 -> 1/7 - 2/9.
        close(iou(&b(0., 0., 2., 2.), &b(1., 1., 3., 3.)), 1.0 / 7.0);
        close(
            giou(&b(0., 0., 2., 2.), &b(1., 1., 3., 3.)),
            1.0 / 7.0 - 2.0 / 9.0,
        );
        // Zero-area boxes: no NaN.
        close(iou(&b(1., 1., 1., 1.), &b(1., 1., 1., 1.)), 0.0);
        close(giou(&b(1., 1., 1., 1.), &b(1., 1., 1., 1.)), 0.0);
        close(iou(&b(1., 1., 1., 3.), &b(0., 0., 2., 2.)), 0.0);
        // Zero-area line vs a box: enclosing 2x3 = 6, union 4 -> -2/6.
        close(giou(&b(1., 1., 1., 3.), &b(0., 0., 2., 2.)), -1.0 / 3.0);
    }

    #[test]
    fn matrices_are_row_major() {
        let a = [b(0., 0., 2., 2.), b(1., 0., 3., 2.)];
        let c = [b(0., 0., 2., 2.), b(4., 0., 6., 2.), b(1., 1., 3., 3.)];
        let m = iou_matrix(&a, &c);
        assert_eq!(m.len(), 6);
        let g = giou_matrix(&a, &c);
        for (i, x) in a.iter().enumerate() {
            for (j, y) in c.iter().enumerate() {
                close(m[i * 3 + j], iou(x, y));
                close(g[i * 3 + j], giou(x, y));
            }
        }
        assert!(iou_matrix(&[], &c).is_empty());
    }
}
