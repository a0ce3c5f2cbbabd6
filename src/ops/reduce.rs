//! Reductions along a set of axes, with `keepdim`: sum, mean, max, min, and argmax /
//! argmin (no gradient).
//!
//! Local derivatives: sum sends `dy` to every reduced element; mean sends `dy / count`;
//! max and min send `dy` to the arg position only (ties go to the first element in
//! row-major order, as PyTorch's `max(dim)` does).
//!
//! Fast path (`reduce_forward`): the reduced axes are the trailing ones (softmax-style
//! "over the last axis"): one contiguous row per output, summed with eight partial sums
//! so the loop vectorises. Everything else: one strided walk over the input
//! (`axes::walk`), adding each element into its output slot in row-major order.
//! `reduce_naive` is the reference (index decoding, sequential sums).
//!
//! argmax / argmin return indices along one axis as an f32 tensor holding whole numbers
//! (until the tensor gains I64 storage; exact below 2^24).

use super::axes::{check_axes, check_axis, split_at_axis, strides, walk};
use crate::engine::tensor::numel;
use crate::engine::{Tensor, Var};
use crate::error::Result;

/// What a reduction computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Max,
    Min,
}

/// The output shape (`keepdim`: reduced axes kept as 1) and the output strides seen from
/// the input (0 on reduced axes).
fn plan(shape: &[usize], axes: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let kept: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(d, &n)| if axes.contains(&d) { 1 } else { n })
        .collect();
    let st = strides(&kept);
    let out_strides = (0..shape.len())
        .map(|d| if axes.contains(&d) { 0 } else { st[d] })
        .collect();
    (kept, out_strides)
}

/// Reduces `x` (shape `shape`) over the sorted, valid `axes` into `out` (the kept
/// shape's size). For Max/Min also writes the flat input index of each winner into
/// `arg`.
pub fn reduce_forward(
    out: &mut [f32],
    arg: &mut [usize],
    x: &[f32],
    shape: &[usize],
    axes: &[usize],
    kind: Reduce,
) {
    let rank = shape.len();
    let trailing = axes
        .iter()
        .enumerate()
        .all(|(k, &a)| a == rank - axes.len() + k);
    let (_, out_strides) = plan(shape, axes);
    if trailing {
        let row: usize = axes.iter().map(|&a| shape[a]).product();
        for (r, o) in out.iter_mut().enumerate() {
            let xs = &x[r * row..(r + 1) * row];
            match kind {
                Reduce::Sum => *o = sum_row(xs),
                Reduce::Max | Reduce::Min => {
                    let mut best = 0;
                    for (k, &v) in xs.iter().enumerate() {
                        if better(kind, v, xs[best]) {
                            best = k;
                        }
                    }
                    *o = xs.get(best).copied().unwrap_or(0.0);
                    arg[r] = r * row + best;
                }
            }
        }
        return;
    }
    let mut seen = vec![false; out.len()];
    walk(shape, &out_strides, |i, j| match kind {
        Reduce::Sum => out[j] += x[i],
        Reduce::Max | Reduce::Min => {
            if !seen[j] || better(kind, x[i], out[j]) {
                seen[j] = true;
                out[j] = x[i];
                arg[j] = i;
            }
        }
    });
}

/// Strictly better (so the first of equal values wins). NaN never wins after the first.
fn better(kind: Reduce, v: f32, best: f32) -> bool {
    match kind {
        Reduce::Max => v > best,
        Reduce::Min => v < best,
        Reduce::Sum => false,
    }
}

/// Sum of a row with eight partial sums (vectorises), then the tail.
fn sum_row(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    let mut s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for &v in tail {
        s += v;
    }
    s
}

/// The reference: for each output element, visit its inputs by decoding every input
/// index; sequential sum; first winner kept. Returns values and (for max/min) arg
/// positions.
pub fn reduce_naive(
    x: &[f32],
    shape: &[usize],
    axes: &[usize],
    kind: Reduce,
) -> (Vec<f32>, Vec<usize>) {
    let (kept, _) = plan(shape, axes);
    let n_out = numel(&kept);
    let mut out = vec![f32::NAN; n_out];
    let mut arg = vec![usize::MAX; n_out];
    let ks = strides(&kept);
    for (i, &v) in x.iter().enumerate() {
        let (mut rest, mut j) = (i, 0);
        for d in (0..shape.len()).rev() {
            let k = rest % shape[d];
            rest /= shape[d];
            if !axes.contains(&d) {
                j += k * ks[d];
            }
        }
        let first = arg[j] == usize::MAX;
        match kind {
            Reduce::Sum => out[j] = if first { v } else { out[j] + v },
            Reduce::Max | Reduce::Min => {
                if first || better(kind, v, out[j]) {
                    out[j] = v;
                    arg[j] = i;
                }
            }
        }
        if first {
            arg[j] = i;
        }
    }
    (out, arg)
}

fn out_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    let (kept, _) = plan(shape, axes);
    if keepdim {
        kept
    } else {
        shape
            .iter()
            .enumerate()
            .filter(|(d, _)| !axes.contains(d))
            .map(|(_, &n)| n)
            .collect()
    }
}

fn reduce(x: &Var, axes: &[usize], keepdim: bool, kind: Reduce, name: &'static str) -> Result<Var> {
    let shape = x.shape();
    let axes = check_axes(name, &shape, axes)?;
    let xv = x.value().contiguous_f32();
    let oshape = out_shape(&shape, &axes, keepdim);
    let n_out = numel(&oshape);
    let mut out = vec![0.0f32; n_out];
    let mut arg = vec![0usize; if kind == Reduce::Sum { 0 } else { n_out }];
    reduce_forward(&mut out, &mut arg, xv.data(), &shape, &axes, kind);
    let (_, out_strides) = plan(&shape, &axes);
    Ok(Var::from_op(
        Tensor::from_vec(out, &oshape),
        name,
        &[x],
        move |dy| {
            let dy = dy.contiguous_f32();
            let g = dy.data();
            let mut dx = vec![0.0f32; numel(&shape)];
            match kind {
                // Every input element reads its output slot's gradient.
                Reduce::Sum => walk(&shape, &out_strides, |i, j| dx[i] = g[j]),
                Reduce::Max | Reduce::Min => {
                    for (&a, &gj) in arg.iter().zip(g) {
                        dx[a] += gj;
                    }
                }
            }
            vec![Some(Tensor::from_vec(dx, &shape))]
        },
    ))
}

/// Sum over `axes` (each once, any order). `[2, 3, 4]` over `[1]` -> `[2, 4]`, or
/// `[2, 1, 4]` with `keepdim`.
pub fn sum(x: &Var, axes: &[usize], keepdim: bool) -> Result<Var> {
    reduce(x, axes, keepdim, Reduce::Sum, "sum")
}

/// Mean over `axes`.
pub fn mean(x: &Var, axes: &[usize], keepdim: bool) -> Result<Var> {
    let s = sum(x, axes, keepdim)?;
    let shape = x.shape();
    let count: usize = axes.iter().map(|&a| shape[a]).product();
    Ok(super::elementwise::scale(&s, 1.0 / count.max(1) as f32))
}

/// Maximum over `axes`; the gradient goes to the first maximal element.
pub fn max(x: &Var, axes: &[usize], keepdim: bool) -> Result<Var> {
    reduce(x, axes, keepdim, Reduce::Max, "max")
}

/// Minimum over `axes`; the gradient goes to the first minimal element.
pub fn min(x: &Var, axes: &[usize], keepdim: bool) -> Result<Var> {
    reduce(x, axes, keepdim, Reduce::Min, "min")
}

fn arg_along(x: &Var, axis: usize, keepdim: bool, kind: Reduce, name: &str) -> Result<Var> {
    let shape = x.shape();
    check_axis(name, &shape, axis)?;
    let xv = x.value().contiguous_f32();
    let oshape = out_shape(&shape, &[axis], keepdim);
    let mut out = vec![0.0f32; numel(&oshape)];
    let mut arg = vec![0usize; out.len()];
    reduce_forward(&mut out, &mut arg, xv.data(), &shape, &[axis], kind);
    // Flat input index -> position along the axis.
    let (_, len, inner) = split_at_axis(&shape, axis);
    let idx = arg.iter().map(|&a| ((a / inner) % len) as f32).collect();
    Ok(Var::constant(Tensor::from_vec(idx, &oshape)))
}

/// Index of the largest value along `axis` (the first on ties), as whole numbers in an
/// f32 tensor (see the module doc). No gradient.
pub fn argmax(x: &Var, axis: usize, keepdim: bool) -> Result<Var> {
    arg_along(x, axis, keepdim, Reduce::Max, "argmax")
}

/// Index of the smallest value along `axis` (the first on ties). No gradient.
pub fn argmin(x: &Var, axis: usize, keepdim: bool) -> Result<Var> {
    arg_along(x, axis, keepdim, Reduce::Min, "argmin")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    fn axis_sets() -> Vec<Vec<usize>> {
        vec![
            vec![2],
            vec![1, 2],
            vec![0],
            vec![1],
            vec![0, 2],
            vec![0, 1, 2],
        ]
    }

    #[test]
    fn fast_and_walk_paths_match_the_naive_reduction() {
        let mut rng = Rng::new(4);
        let shape = [3, 4, 19];
        let x: Vec<f32> = (0..numel(&shape))
            .map(|_| rng.uniform_range(-1.0, 1.0))
            .collect();
        for axes in axis_sets() {
            for kind in [Reduce::Sum, Reduce::Max, Reduce::Min] {
                let (want, want_arg) = reduce_naive(&x, &shape, &axes, kind);
                let mut out = vec![0.0f32; want.len()];
                let mut arg = vec![0usize; want.len()];
                reduce_forward(&mut out, &mut arg, &x, &shape, &axes, kind);
                for (g, w) in out.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "{kind:?} {axes:?}: {g} vs {w}");
                }
                if kind != Reduce::Sum {
                    assert_eq!(arg, want_arg, "{kind:?} {axes:?}");
                }
            }
        }
    }

    #[test]
    fn shapes_keepdim_ties_and_args() {
        let x = Var::parameter(Tensor::from_vec(vec![1., 3., 3., 0., 5., 2.], &[2, 3]));
        assert_eq!(sum(&x, &[1], false).unwrap().value().data(), &[7., 7.]);
        assert_eq!(sum(&x, &[1], true).unwrap().shape(), vec![2, 1]);
        assert_eq!(
            mean(&x, &[0], false).unwrap().value().data(),
            &[0.5, 4., 2.5]
        );
        assert_eq!(max(&x, &[0, 1], false).unwrap().value().data(), &[5.]);
        assert_eq!(argmax(&x, 1, false).unwrap().value().data(), &[1., 1.]);
        assert_eq!(argmin(&x, 0, true).unwrap().value().data(), &[1., 0., 1.]);
        assert_eq!(argmin(&x, 0, true).unwrap().shape(), vec![1, 3]);
        // Tie in row 0 (3, 3): the gradient goes to the first.
        let m = max(&x, &[1], false).unwrap();
        crate::ops::elementwise::sum(&m).backward();
        assert_eq!(x.grad().unwrap().data(), &[0., 1., 0., 0., 1., 0.]);
        let e = sum(&x, &[2], false).unwrap_err().to_string();
        assert!(e.contains("[2, 3]"), "{e}");
        assert!(max(&x, &[1, 1], false).is_err());
        assert!(argmax(&x, 2, false).is_err());
    }

    #[test]
    fn reductions_gradcheck() {
        let mut rng = Rng::new(8);
        let x = gradcheck::random_away_from_zero(&[3, 4, 5], &mut rng, 0.1);
        // Distinct values spaced wider than 2h, so max/min winners do not move.
        let spaced = Tensor::from_vec(
            {
                let mut v: Vec<f32> = (0..60).map(|i| i as f32 * 0.05).collect();
                rng.shuffle(&mut v);
                v
            },
            &[3, 4, 5],
        );
        for axes in axis_sets() {
            for keepdim in [false, true] {
                type F = fn(&Var, &[usize], bool) -> Result<Var>;
                for (name, op, input) in [
                    ("sum", sum as F, &x),
                    ("mean", mean as F, &x),
                    ("max", max as F, &spaced),
                    ("min", min as F, &spaced),
                ] {
                    let r = gradcheck::check(
                        |v| op(&v[0], &axes, keepdim).unwrap(),
                        std::slice::from_ref(input),
                        1e-2,
                        3,
                    );
                    assert!(
                        r.worst() < gradcheck::DEFAULT_TOLERANCE,
                        "{name} {axes:?} {keepdim}: {r:?}"
                    );
                }
            }
        }
    }
}
