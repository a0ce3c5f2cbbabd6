//! Broadcasting binary ops (NumPy's rules): add, sub, mul, div, maximum, minimum, pow,
//! and `broadcast_to` (expand). Shapes are aligned at the right; each pair of dimensions
//! must be equal or one of them 1; the output takes the larger. The backward of each
//! operand sums the gradient over the axes it was broadcast along.
//!
//! Local derivatives (y = a op b):
//! | op      | d y / d a          | d y / d b                     |
//! |---------|--------------------|-------------------------------|
//! | a + b   | 1                  | 1                             |
//! | a - b   | 1                  | -1                            |
//! | a * b   | b                  | a                             |
//! | a / b   | 1 / b              | -a / b^2                      |
//! | max     | 1 if a >= b        | 1 if a < b (ties go to a)     |
//! | min     | 1 if a <= b        | 1 if a > b (ties go to a)     |
//! | a ^ b   | b a^(b - 1)        | y ln a (0 where a = 0)        |
//!
//! Fast paths of the kernels (`binary_forward`, `binary_backward`), by how each operand
//! covers the output:
//! - both the output's shape: one zipped loop (vectorised);
//! - one operand the output's shape, the other a trailing block repeated (`[N, C] + [C]`,
//!   a bias): a loop per row;
//! - one operand the output's shape, the other constant over trailing runs
//!   (`[N, C, H, W] * [N, C, 1, 1]`, a channel scale): a loop per run;
//! - anything else: one strided walk over the output (`axes::walk2`).
//!
//! Gradients are reduced serially in output order, so they are the same every run.

use super::axes::{strides, walk, walk2};
use crate::engine::tensor::numel;
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// The broadcast shape of `a` and `b`, or an error naming `op` and both shapes.
pub fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0usize; rank];
    for (d, o) in out.iter_mut().enumerate() {
        let da = aligned_dim(a, rank, d);
        let db = aligned_dim(b, rank, d);
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(format!(
                "{op}: shapes {a:?} and {b:?} do not broadcast (dimension {da} against {db} \
                 at axis {d} counted from the left of the {rank}-axis result)"
            )));
        };
    }
    Ok(out)
}

fn aligned_dim(shape: &[usize], rank: usize, d: usize) -> usize {
    let pad = rank - shape.len();
    if d < pad {
        1
    } else {
        shape[d - pad]
    }
}

/// Strides of `shape` aligned at the right to `out`, 0 on broadcast axes.
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let rank = out.len();
    let pad = rank - shape.len();
    let own = strides(shape);
    (0..rank)
        .map(|d| {
            if d < pad || shape[d - pad] == 1 {
                0
            } else {
                own[d - pad]
            }
        })
        .collect()
}

/// How one operand covers the output (see the module's list of fast paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cover {
    /// The output's own shape.
    Same,
    /// A trailing block of this many elements, repeated: element `i % n`.
    Repeat(usize),
    /// Constant over runs of this many elements: element `i / run`.
    Run(usize),
    General,
}

fn cover(shape: &[usize], out: &[usize]) -> Cover {
    let aligned: Vec<usize> = (0..out.len())
        .map(|d| aligned_dim(shape, out.len(), d))
        .collect();
    if aligned == out {
        // Leading ones only: the same elements in the same order.
        return Cover::Same;
    }
    let n = numel(shape);
    // Leading ones, then the output's trailing dims.
    let first = aligned.iter().position(|&d| d != 1).unwrap_or(out.len());
    if aligned[first..] == out[first..] {
        return Cover::Repeat(n);
    }
    // The output's leading dims, then trailing ones.
    let last = aligned.iter().rposition(|&d| d != 1).map_or(0, |p| p + 1);
    if aligned[..last] == out[..last] && n > 0 && numel(out) > 0 {
        return Cover::Run(numel(out) / n);
    }
    Cover::General
}

/// Calls `f(i, ia, ib)` for every output element `i` with the elements of `a` and `b`
/// it reads, by the fastest applicable path. Output order, always.
fn for_each_pair(out: &[usize], a: &[usize], b: &[usize], mut f: impl FnMut(usize, usize, usize)) {
    let n = numel(out);
    match (cover(a, out), cover(b, out)) {
        (Cover::Same, Cover::Same) => (0..n).for_each(|i| f(i, i, i)),
        (Cover::Same, Cover::Repeat(m)) if m > 0 => {
            for r in (0..n).step_by(m) {
                (0..m).for_each(|j| f(r + j, r + j, j));
            }
        }
        (Cover::Repeat(m), Cover::Same) if m > 0 => {
            for r in (0..n).step_by(m) {
                (0..m).for_each(|j| f(r + j, j, r + j));
            }
        }
        (Cover::Same, Cover::Run(run)) if run > 0 => {
            for (jb, r) in (0..n).step_by(run).enumerate() {
                (r..r + run).for_each(|i| f(i, i, jb));
            }
        }
        (Cover::Run(run), Cover::Same) if run > 0 => {
            for (ja, r) in (0..n).step_by(run).enumerate() {
                (r..r + run).for_each(|i| f(i, ja, i));
            }
        }
        _ => walk2(
            out,
            &broadcast_strides(a, out),
            &broadcast_strides(b, out),
            f,
        ),
    }
}

/// `out[i] = f(a[ia], b[ib])` over the broadcast of `a_shape` and `b_shape` to
/// `out_shape` (a valid broadcast, checked by the caller).
pub fn binary_forward(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    out_shape: &[usize],
    a_shape: &[usize],
    b_shape: &[usize],
    f: impl Fn(f32, f32) -> f32,
) {
    if a_shape == out_shape && b_shape == out_shape {
        // The common case, kept as a plain zip so it vectorises.
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
        return;
    }
    if a_shape == out_shape {
        if let Cover::Repeat(m) = cover(b_shape, out_shape) {
            for (orow, arow) in out.chunks_exact_mut(m.max(1)).zip(a.chunks_exact(m.max(1))) {
                for ((o, &x), &y) in orow.iter_mut().zip(arow).zip(b) {
                    *o = f(x, y);
                }
            }
            return;
        }
    }
    for_each_pair(out_shape, a_shape, b_shape, |i, ia, ib| {
        out[i] = f(a[ia], b[ib])
    });
}

/// The reference: every output index decoded by division, no fast path.
pub fn binary_forward_naive(
    a: &[f32],
    b: &[f32],
    out_shape: &[usize],
    a_shape: &[usize],
    b_shape: &[usize],
    f: impl Fn(f32, f32) -> f32,
) -> Vec<f32> {
    let (sa, sb) = (
        broadcast_strides(a_shape, out_shape),
        broadcast_strides(b_shape, out_shape),
    );
    (0..numel(out_shape))
        .map(|i| {
            let (mut rest, mut ia, mut ib) = (i, 0, 0);
            for d in (0..out_shape.len()).rev() {
                let k = rest % out_shape[d];
                rest /= out_shape[d];
                ia += k * sa[d];
                ib += k * sb[d];
            }
            f(a[ia], b[ib])
        })
        .collect()
}

/// `da[ia] += dy[i] * ga(a, b, y)`, `db[ib] += dy[i] * gb(a, b, y)` over the output, in
/// output order (so the sums over broadcast axes are deterministic). `da`, `db` start
/// at zero.
#[allow(clippy::too_many_arguments)]
pub fn binary_backward(
    da: &mut [f32],
    db: &mut [f32],
    dy: &[f32],
    a: &[f32],
    b: &[f32],
    y: &[f32],
    out_shape: &[usize],
    a_shape: &[usize],
    b_shape: &[usize],
    ga: impl Fn(f32, f32, f32) -> f32,
    gb: impl Fn(f32, f32, f32) -> f32,
) {
    for_each_pair(out_shape, a_shape, b_shape, |i, ia, ib| {
        let (x, z, g) = (a[ia], b[ib], dy[i]);
        da[ia] += g * ga(x, z, y[i]);
        db[ib] += g * gb(x, z, y[i]);
    });
}

/// `dx[j] += dy[i]` for each output element `i` reading `x[j]`: the gradient of a
/// broadcast, summed over the broadcast axes (`x_shape` broadcasts to `out_shape`).
pub fn sum_to_shape(dy: &[f32], out_shape: &[usize], x_shape: &[usize]) -> Vec<f32> {
    let mut dx = vec![0.0f32; numel(x_shape)];
    match cover(x_shape, out_shape) {
        Cover::Same => dx.copy_from_slice(dy),
        Cover::Repeat(m) if m > 0 => {
            for row in dy.chunks_exact(m) {
                for (d, &g) in dx.iter_mut().zip(row) {
                    *d += g;
                }
            }
        }
        _ => walk(out_shape, &broadcast_strides(x_shape, out_shape), |i, j| {
            dx[j] += dy[i]
        }),
    }
    dx
}

/// The binary ops with a gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Pow,
}

impl Binary {
    fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Max => "maximum",
            Binary::Min => "minimum",
            Binary::Pow => "pow",
        }
    }
}

fn binary(a: &Var, b: &Var, op: Binary) -> Result<Var> {
    let (a_shape, b_shape) = (a.shape(), b.shape());
    let out_shape = broadcast_shape(op.name(), &a_shape, &b_shape)?;
    let (av, bv) = (a.value().contiguous_f32(), b.value().contiguous_f32());
    let mut out = vec![0.0f32; numel(&out_shape)];
    let run = |out: &mut [f32], f: fn(f32, f32) -> f32| {
        binary_forward(out, av.data(), bv.data(), &out_shape, &a_shape, &b_shape, f)
    };
    match op {
        Binary::Add => run(&mut out, |x, y| x + y),
        Binary::Sub => run(&mut out, |x, y| x - y),
        Binary::Mul => run(&mut out, |x, y| x * y),
        Binary::Div => run(&mut out, |x, y| x / y),
        Binary::Max => run(&mut out, |x, y| if x >= y { x } else { y }),
        Binary::Min => run(&mut out, |x, y| if x <= y { x } else { y }),
        Binary::Pow => run(&mut out, f32::powf),
    }
    let y = Tensor::from_vec(out, &out_shape);
    let yk = y.clone();
    Ok(Var::from_op(y, op.name(), &[a, b], move |dy| {
        let dy = dy.contiguous_f32();
        let (g, os) = (dy.data(), out_shape.as_slice());
        // Add and sub need no products: the gradients are dy summed to each shape.
        let (da, db) = match op {
            Binary::Add | Binary::Sub => {
                let da = sum_to_shape(g, os, &a_shape);
                let mut db = sum_to_shape(g, os, &b_shape);
                if op == Binary::Sub {
                    db.iter_mut().for_each(|v| *v = -*v);
                }
                (da, db)
            }
            _ => {
                let mut da = vec![0.0f32; av.numel()];
                let mut db = vec![0.0f32; bv.numel()];
                let (x, z, y) = (av.data(), bv.data(), yk.data());
                let mut back = |ga: fn(f32, f32, f32) -> f32, gb: fn(f32, f32, f32) -> f32| {
                    binary_backward(&mut da, &mut db, g, x, z, y, os, &a_shape, &b_shape, ga, gb)
                };
                match op {
                    Binary::Mul => back(|_, b, _| b, |a, _, _| a),
                    Binary::Div => back(|_, b, _| 1.0 / b, |a, b, _| -a / (b * b)),
                    Binary::Max => back(|a, b, _| f32::from(a >= b), |a, b, _| f32::from(a < b)),
                    Binary::Min => back(|a, b, _| f32::from(a <= b), |a, b, _| f32::from(a > b)),
                    Binary::Pow => back(
                        |a, b, _| b * a.powf(b - 1.0),
                        |a, _, y| if a == 0.0 { 0.0 } else { y * a.ln() },
                    ),
                    Binary::Add | Binary::Sub => unreachable!(),
                }
                (da, db)
            }
        };
        vec![
            Some(Tensor::from_vec(da, &a_shape)),
            Some(Tensor::from_vec(db, &b_shape)),
        ]
    }))
}

/// `a + b`, broadcasting.
pub fn add(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, Binary::Add)
}

/// `a - b`, broadcasting.
pub fn sub(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, Binary::Sub)
}

/// `a * b`, broadcasting.
pub fn mul(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, Binary::Mul)
}

/// `a / b`, broadcasting.
pub fn div(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, Binary::Div)
}

/// Elementwise maximum, broadcasting; the gradient goes to `a` on ties.
pub fn maximum(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, Binary::Max)
}

/// Elementwise minimum, broadcasting; the gradient goes to `a` on ties.
pub fn minimum(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, Binary::Min)
}

/// `a ^ b`, broadcasting. The gradient in `b` is `y ln a`: NaN for negative `a` (as
/// in PyTorch), 0 where `a` is 0.
pub fn pow(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, Binary::Pow)
}

/// `x` expanded to `shape` by NumPy's rules (a copy); the backward sums over the
/// expanded axes.
pub fn broadcast_to(x: &Var, shape: &[usize]) -> Result<Var> {
    let x_shape = x.shape();
    let out = broadcast_shape("broadcast_to", &x_shape, shape)?;
    if out != shape {
        return Err(Error::shape(format!(
            "broadcast_to: {x_shape:?} cannot be expanded to {shape:?}"
        )));
    }
    let xv = x.value().contiguous_f32();
    let mut data = vec![0.0f32; numel(&out)];
    let src = xv.data();
    walk(&out, &broadcast_strides(&x_shape, &out), |i, j| {
        data[i] = src[j]
    });
    Ok(Var::from_op(
        Tensor::from_vec(data, &out),
        "broadcast_to",
        &[x],
        move |dy| {
            let dy = dy.contiguous_f32();
            vec![Some(Tensor::from_vec(
                sum_to_shape(dy.data(), &out, &x_shape),
                &x_shape,
            ))]
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    /// Shape pairs covering every path: same, repeat (both sides), run (both sides),
    /// scalar, rank-extending and general.
    fn pairs() -> Vec<(Vec<usize>, Vec<usize>)> {
        [
            (vec![2, 3], vec![2, 3]),
            (vec![4, 3], vec![3]),
            (vec![3], vec![4, 3]),
            (vec![2, 3, 2, 2], vec![2, 3, 1, 1]),
            (vec![2, 3, 1, 1], vec![2, 3, 2, 2]),
            (vec![2, 3], vec![]),
            (vec![], vec![2, 3]),
            (vec![2, 1, 3], vec![4, 1]),
            (vec![1, 3, 2], vec![2, 1, 1]),
            (vec![2, 3, 4], vec![1, 3, 1]),
        ]
        .into_iter()
        .collect()
    }

    fn positive(shape: &[usize], rng: &mut Rng) -> Tensor {
        Tensor::from_vec(
            (0..numel(shape))
                .map(|_| rng.uniform_range(0.5, 2.0))
                .collect(),
            shape,
        )
    }

    #[test]
    fn broadcast_shapes_follow_numpy() {
        assert_eq!(broadcast_shape("add", &[4, 3], &[3]).unwrap(), vec![4, 3]);
        assert_eq!(
            broadcast_shape("add", &[2, 1, 3], &[4, 1]).unwrap(),
            vec![2, 4, 3]
        );
        assert_eq!(broadcast_shape("add", &[], &[2]).unwrap(), vec![2]);
        let e = broadcast_shape("add", &[2, 3], &[4])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("add") && e.contains("[2, 3]") && e.contains("[4]"),
            "{e}"
        );
        let a = Var::constant(Tensor::zeros(&[2, 3]));
        let b = Var::constant(Tensor::zeros(&[2]));
        assert!(mul(&a, &b).is_err());
        assert!(broadcast_to(&a, &[3, 3]).is_err());
        assert!(broadcast_to(&Var::constant(Tensor::zeros(&[4, 3])), &[3]).is_err());
    }

    #[test]
    fn fast_paths_match_the_naive_kernel() {
        let mut rng = Rng::new(2);
        let f = |x: f32, y: f32| x * 3.0 - y;
        for (sa, sb) in pairs() {
            let out = broadcast_shape("t", &sa, &sb).unwrap();
            let a = positive(&sa, &mut rng);
            let b = positive(&sb, &mut rng);
            let mut got = vec![0.0f32; numel(&out)];
            binary_forward(&mut got, a.data(), b.data(), &out, &sa, &sb, f);
            let want = binary_forward_naive(a.data(), b.data(), &out, &sa, &sb, f);
            assert_eq!(got, want, "{sa:?} {sb:?}");
        }
    }

    #[test]
    fn sum_over_broadcast_axes_matches_an_explicit_sum() {
        // [2, 3] from [3] and from [2, 1].
        let dy: Vec<f32> = (1..=6).map(|v| v as f32).collect();
        assert_eq!(sum_to_shape(&dy, &[2, 3], &[3]), vec![5.0, 7.0, 9.0]);
        assert_eq!(sum_to_shape(&dy, &[2, 3], &[2, 1]), vec![6.0, 15.0]);
        assert_eq!(sum_to_shape(&dy, &[2, 3], &[]), vec![21.0]);
        assert_eq!(sum_to_shape(&dy, &[2, 3], &[1, 3]), vec![5.0, 7.0, 9.0]);
    }

    #[test]
    fn every_op_gradchecks_on_every_broadcast_path() {
        type F = fn(&Var, &Var) -> Result<Var>;
        let ops: [(&str, F); 7] = [
            ("add", add),
            ("sub", sub),
            ("mul", mul),
            ("div", div),
            ("maximum", maximum),
            ("minimum", minimum),
            ("pow", pow),
        ];
        let mut rng = Rng::new(7);
        for (name, op) in ops {
            for (sa, sb) in pairs() {
                // Positive inputs (pow's ln); max/min need values apart by more than h.
                let a = positive(&sa, &mut rng);
                let b = if matches!(name, "maximum" | "minimum") {
                    // Far from a's range on alternate elements: no near-ties.
                    Tensor::from_vec(
                        (0..numel(&sb))
                            .map(|i| if i % 2 == 0 { 0.1 } else { 3.0 })
                            .collect(),
                        &sb,
                    )
                } else {
                    positive(&sb, &mut rng)
                };
                let r = gradcheck::check(|v| op(&v[0], &v[1]).unwrap(), &[a, b], 1e-3, 1);
                assert!(
                    r.worst() < gradcheck::DEFAULT_TOLERANCE,
                    "{name} {sa:?} {sb:?}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn broadcast_to_copies_and_its_gradient_sums() {
        let x = Var::constant(Tensor::from_vec(vec![1.0, 2.0], &[2, 1]));
        let y = broadcast_to(&x, &[2, 2, 3]).unwrap();
        assert_eq!(y.shape(), vec![2, 2, 3]);
        assert_eq!(
            y.value().data(),
            &[1., 1., 1., 2., 2., 2., 1., 1., 1., 2., 2., 2.]
        );
        let mut rng = Rng::new(1);
        let x = gradcheck::random_away_from_zero(&[3, 1], &mut rng, 0.1);
        let r = gradcheck::check(
            |v| broadcast_to(&v[0], &[2, 3, 4]).unwrap(),
            &[x],
            gradcheck::DEFAULT_STEP,
            1,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{r:?}");
    }

    #[test]
    fn values_and_ties() {
        let a = Var::constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]));
        let b = Var::constant(Tensor::from_vec(vec![10.0, 2.0], &[2]));
        assert_eq!(add(&a, &b).unwrap().value().data(), &[11., 4., 13., 6.]);
        assert_eq!(div(&a, &b).unwrap().value().data(), &[0.1, 1., 0.3, 2.]);
        assert_eq!(pow(&a, &b).unwrap().value().data()[1], 4.0);
        // Tie at a = b = 2: the gradient goes to a.
        let a = Var::parameter(Tensor::from_vec(vec![2.0, 1.0], &[2]));
        let b = Var::parameter(Tensor::from_vec(vec![2.0], &[1]));
        crate::ops::elementwise::sum(&maximum(&a, &b).unwrap()).backward();
        assert_eq!(a.grad().unwrap().data(), &[1.0, 0.0]);
        assert_eq!(b.grad().unwrap().data(), &[1.0]);
    }
}
