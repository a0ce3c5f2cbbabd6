//! Indexing ops: narrow (slice), stack, split, gather, index_select and embedding
//! lookup. (Concatenation along any axis is `shape::concat`.)
//!
//! Backward: narrow pads `dy` with zeros back to the input's extent; gather,
//! index_select and embedding scatter-add `dy` into the source, serially in index order,
//! so repeated indices sum the same way every run. Stack and split are compositions
//! (reshape + concat, narrows) and inherit those backwards.
//!
//! Fast paths: narrow and index_select copy contiguous `[inner]` blocks (an embedding
//! lookup is an index_select of whole rows); gather walks the index tensor once.
//! Index tensors hold whole numbers in f32 (see `axes::indices`).

use super::axes::{check_axis, indices, split_at_axis, strides, walk};
use super::shape::{concat, reshape};
use crate::engine::tensor::numel;
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// Kernel: copies positions `start..start + len` of the middle axis of a
/// `[outer, n, inner]` buffer into `out` (`[outer, len, inner]`).
pub fn narrow_forward(
    out: &mut [f32],
    x: &[f32],
    outer: usize,
    n: usize,
    inner: usize,
    start: usize,
    len: usize,
) {
    for o in 0..outer {
        let src = (o * n + start) * inner;
        out[o * len * inner..(o + 1) * len * inner].copy_from_slice(&x[src..src + len * inner]);
    }
}

/// Kernel: the backward of `narrow_forward`, `dy` written into a zeroed `dx`.
pub fn narrow_backward(
    dx: &mut [f32],
    dy: &[f32],
    outer: usize,
    n: usize,
    inner: usize,
    start: usize,
    len: usize,
) {
    for o in 0..outer {
        let dst = (o * n + start) * inner;
        dx[dst..dst + len * inner].copy_from_slice(&dy[o * len * inner..(o + 1) * len * inner]);
    }
}

/// Positions `start..start + len` along `axis` (a copy; the tensor helper's views will
/// make it free later).
pub fn narrow(x: &Var, axis: usize, start: usize, len: usize) -> Result<Var> {
    let shape = x.shape();
    check_axis("narrow", &shape, axis)?;
    if start + len > shape[axis] {
        return Err(Error::shape(format!(
            "narrow: positions {start}..{} along axis {axis} of shape {shape:?}",
            start + len
        )));
    }
    let (outer, n, inner) = split_at_axis(&shape, axis);
    let xv = x.value().contiguous_f32();
    let mut oshape = shape.clone();
    oshape[axis] = len;
    let mut out = vec![0.0f32; numel(&oshape)];
    narrow_forward(&mut out, xv.data(), outer, n, inner, start, len);
    Ok(Var::from_op(
        Tensor::from_vec(out, &oshape),
        "narrow",
        &[x],
        move |dy| {
            let dy = dy.contiguous_f32();
            let mut dx = vec![0.0f32; numel(&shape)];
            narrow_backward(&mut dx, dy.data(), outer, n, inner, start, len);
            vec![Some(Tensor::from_vec(dx, &shape))]
        },
    ))
}

/// Positions `start..end` along `axis` (Python's `x[..., start:end, ...]`).
pub fn slice(x: &Var, axis: usize, start: usize, end: usize) -> Result<Var> {
    if end < start {
        return Err(Error::shape(format!(
            "slice: end {end} before start {start} on axis {axis} of shape {:?}",
            x.shape()
        )));
    }
    narrow(x, axis, start, end - start)
}

/// Splits `x` along `axis` into pieces of the given sizes (which must add up to the
/// axis' length).
pub fn split(x: &Var, axis: usize, sizes: &[usize]) -> Result<Vec<Var>> {
    let shape = x.shape();
    check_axis("split", &shape, axis)?;
    if sizes.iter().sum::<usize>() != shape[axis] {
        return Err(Error::shape(format!(
            "split: sizes {sizes:?} do not add up to axis {axis} of shape {shape:?}"
        )));
    }
    let mut start = 0;
    sizes
        .iter()
        .map(|&len| {
            let piece = narrow(x, axis, start, len);
            start += len;
            piece
        })
        .collect()
}

/// Stacks same-shape tensors along a new axis `axis` (0..=rank).
pub fn stack(xs: &[&Var], axis: usize) -> Result<Var> {
    let first = xs
        .first()
        .ok_or_else(|| Error::invalid("stack of no tensors"))?
        .shape();
    if axis > first.len() {
        return Err(Error::shape(format!(
            "stack: new axis {axis} for tensors of shape {first:?}"
        )));
    }
    let mut expanded_shape = first.clone();
    expanded_shape.insert(axis, 1);
    let mut expanded = Vec::with_capacity(xs.len());
    for x in xs {
        if x.shape() != first {
            return Err(Error::shape(format!(
                "stack: shapes {first:?} and {:?} differ",
                x.shape()
            )));
        }
        expanded.push(reshape(x, &expanded_shape)?);
    }
    let refs: Vec<&Var> = expanded.iter().collect();
    concat(&refs, axis)
}

/// Kernel: `out[o, p, :] = x[o, idx[p], :]` over `[outer, n, inner]` -> `[outer, k, inner]`.
pub fn index_select_forward(
    out: &mut [f32],
    x: &[f32],
    idx: &[usize],
    outer: usize,
    n: usize,
    inner: usize,
) {
    let k = idx.len();
    for o in 0..outer {
        for (p, &i) in idx.iter().enumerate() {
            let src = (o * n + i) * inner;
            let dst = (o * k + p) * inner;
            out[dst..dst + inner].copy_from_slice(&x[src..src + inner]);
        }
    }
}

/// Kernel: scatter-add, `dx[o, idx[p], :] += dy[o, p, :]`, in index order.
pub fn index_select_backward(
    dx: &mut [f32],
    dy: &[f32],
    idx: &[usize],
    outer: usize,
    n: usize,
    inner: usize,
) {
    let k = idx.len();
    for o in 0..outer {
        for (p, &i) in idx.iter().enumerate() {
            let dst = (o * n + i) * inner;
            let src = (o * k + p) * inner;
            for (d, &g) in dx[dst..dst + inner].iter_mut().zip(&dy[src..src + inner]) {
                *d += g;
            }
        }
    }
}

/// The entries of `x` at positions `index` (1-D) along `axis`; repeats allowed.
pub fn index_select(x: &Var, axis: usize, index: &Tensor) -> Result<Var> {
    let shape = x.shape();
    check_axis("index_select", &shape, axis)?;
    if index.ndim() != 1 {
        return Err(Error::shape(format!(
            "index_select: indices must be 1-D, got {:?} for input {shape:?}",
            index.shape()
        )));
    }
    let idx = indices("index_select", index, shape[axis], &shape)?;
    let (outer, n, inner) = split_at_axis(&shape, axis);
    let xv = x.value().contiguous_f32();
    let mut oshape = shape.clone();
    oshape[axis] = idx.len();
    let mut out = vec![0.0f32; numel(&oshape)];
    index_select_forward(&mut out, xv.data(), &idx, outer, n, inner);
    Ok(Var::from_op(
        Tensor::from_vec(out, &oshape),
        "index_select",
        &[x],
        move |dy| {
            let dy = dy.contiguous_f32();
            let mut dx = vec![0.0f32; numel(&shape)];
            index_select_backward(&mut dx, dy.data(), &idx, outer, n, inner);
            vec![Some(Tensor::from_vec(dx, &shape))]
        },
    ))
}

/// Embedding lookup: `table` `[V, D]`, `ids` of any shape `S` holding row numbers ->
/// `S + [D]`. The table's gradient is the scatter-add of the rows' gradients.
pub fn embedding(table: &Var, ids: &Tensor) -> Result<Var> {
    let ts = table.shape();
    if ts.len() != 2 {
        return Err(Error::shape(format!(
            "embedding: the table must be [vocabulary, dim], got {ts:?} (ids {:?})",
            ids.shape()
        )));
    }
    // Checked here, not only by `index_select`, so the message names the id's position
    // in `ids` (a layer adds its own name) rather than the flattened lookup.
    let idc = ids.contiguous_f32();
    let bad = idc
        .data()
        .iter()
        .position(|&v| !(v.fract() == 0.0 && v >= 0.0 && (v as usize) < ts[0]));
    if let Some(p) = bad {
        let mut at = vec![0usize; ids.ndim()];
        let mut rest = p;
        for (a, &d) in at.iter_mut().zip(ids.shape()).rev() {
            *a = rest % d;
            rest /= d;
        }
        return Err(Error::invalid(format!(
            "embedding: id {} at {at:?} of ids {:?} is not a whole number in 0..{} (the \
             table {ts:?} has {} rows)",
            idc.data()[p],
            ids.shape(),
            ts[0],
            ts[0]
        )));
    }
    let flat = idc.reshape(&[ids.numel()])?;
    let rows = index_select(table, 0, &flat)?;
    let mut oshape = ids.shape().to_vec();
    oshape.push(ts[1]);
    reshape(&rows, &oshape)
}

/// Kernel: `out[p] = x[p with its axis coordinate replaced by idx[p]]`, walking the
/// index tensor's shape (`x_strides` with 0 on the axis give each position's base).
pub fn gather_forward(
    out: &mut [f32],
    x: &[f32],
    idx: &[usize],
    idx_shape: &[usize],
    base_strides: &[usize],
    axis_stride: usize,
) {
    walk(idx_shape, base_strides, |p, base| {
        out[p] = x[base + idx[p] * axis_stride]
    });
}

/// Kernel: scatter-add, `dx[base + idx[p] * axis_stride] += dy[p]`, in index order.
pub fn gather_backward(
    dx: &mut [f32],
    dy: &[f32],
    idx: &[usize],
    idx_shape: &[usize],
    base_strides: &[usize],
    axis_stride: usize,
) {
    walk(idx_shape, base_strides, |p, base| {
        dx[base + idx[p] * axis_stride] += dy[p]
    });
}

/// PyTorch's `gather`: `index` has `x`'s rank, each dimension other than `axis` at most
/// `x`'s; the output has `index`'s shape and `out[..., p, ...] = x[..., index[..., p,
/// ...], ...]` along `axis`.
pub fn gather(x: &Var, axis: usize, index: &Tensor) -> Result<Var> {
    let shape = x.shape();
    check_axis("gather", &shape, axis)?;
    let ishape = index.shape().to_vec();
    let fits = ishape.len() == shape.len()
        && ishape
            .iter()
            .zip(&shape)
            .enumerate()
            .all(|(d, (&i, &n))| d == axis || i <= n);
    if !fits {
        return Err(Error::shape(format!(
            "gather: index {ishape:?} does not fit input {shape:?} along axis {axis} (same \
             rank, other dimensions no larger)"
        )));
    }
    let idx = indices("gather", index, shape[axis], &shape)?;
    let xs = strides(&shape);
    let axis_stride = xs[axis];
    let mut base = xs;
    base[axis] = 0;
    let xv = x.value().contiguous_f32();
    let mut out = vec![0.0f32; idx.len()];
    gather_forward(&mut out, xv.data(), &idx, &ishape, &base, axis_stride);
    Ok(Var::from_op(
        Tensor::from_vec(out, &ishape),
        "gather",
        &[x],
        move |dy| {
            let dy = dy.contiguous_f32();
            let mut dx = vec![0.0f32; numel(&shape)];
            gather_backward(&mut dx, dy.data(), &idx, &ishape, &base, axis_stride);
            vec![Some(Tensor::from_vec(dx, &shape))]
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    fn arange(shape: &[usize]) -> Var {
        Var::constant(Tensor::from_vec(
            (0..numel(shape)).map(|i| i as f32).collect(),
            shape,
        ))
    }

    fn ok(r: gradcheck::GradCheck, what: &str) {
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{what}: {r:?}");
    }

    #[test]
    fn narrow_split_stack_values() {
        let x = arange(&[2, 3, 2]);
        let y = narrow(&x, 1, 1, 2).unwrap();
        assert_eq!(y.value().data(), &[2., 3., 4., 5., 8., 9., 10., 11.]);
        assert_eq!(
            slice(&x, 2, 1, 2).unwrap().value().data(),
            &[1., 3., 5., 7., 9., 11.]
        );
        let parts = split(&x, 0, &[1, 1]).unwrap();
        assert_eq!(parts[1].value().data(), &[6., 7., 8., 9., 10., 11.]);
        let s = stack(&[&parts[0], &parts[1]], 3).unwrap();
        assert_eq!(s.shape(), vec![1, 3, 2, 2]);
        assert_eq!(&s.value().data()[..4], &[0., 6., 1., 7.]);
        let e = narrow(&x, 1, 2, 2).unwrap_err().to_string();
        assert!(e.contains("[2, 3, 2]"), "{e}");
        assert!(split(&x, 1, &[1, 1]).is_err());
        assert!(stack(&[&x, &parts[0]], 0).is_err());
    }

    #[test]
    fn index_ops_match_naive_loops() {
        // gather along axis 1 of [2, 4, 3] with an index of [2, 2, 3].
        let x = arange(&[2, 4, 3]);
        let ids: Vec<f32> = vec![3., 0., 1., 1., 1., 2., 0., 3., 3., 2., 2., 0.];
        let y = gather(&x, 1, &Tensor::from_vec(ids.clone(), &[2, 2, 3])).unwrap();
        let mut want = Vec::new();
        for b in 0..2 {
            for p in 0..2 {
                for c in 0..3 {
                    let i = ids[(b * 2 + p) * 3 + c] as usize;
                    want.push((b * 12 + i * 3 + c) as f32);
                }
            }
        }
        assert_eq!(y.value().data(), &want[..]);
        // index_select on axis 2 with repeats.
        let y = index_select(&x, 2, &Tensor::from_vec(vec![2., 2., 0.], &[3])).unwrap();
        assert_eq!(&y.value().data()[..6], &[2., 2., 0., 5., 5., 3.]);
        // embedding of a [2, 2] id tensor from a [4, 3] table.
        let table = arange(&[4, 3]);
        let e = embedding(&table, &Tensor::from_vec(vec![3., 0., 0., 1.], &[2, 2])).unwrap();
        assert_eq!(e.shape(), vec![2, 2, 3]);
        assert_eq!(
            e.value().data(),
            &[9., 10., 11., 0., 1., 2., 0., 1., 2., 3., 4., 5.]
        );
        let bad = Tensor::from_vec(vec![4.], &[1]);
        assert!(embedding(&table, &bad)
            .unwrap_err()
            .to_string()
            .contains("[4, 3]"));
        for (v, what) in [(2.5, "id 2.5 at [1, 0]"), (-1.0, "id -1 at [1, 0]")] {
            let ids = Tensor::from_vec(vec![0., 1., v, 3.], &[2, 2]);
            let e = embedding(&table, &ids).unwrap_err().to_string();
            assert!(e.contains(what) && e.contains("0..4"), "{e}");
        }
        assert!(gather(&x, 1, &Tensor::zeros(&[2, 2])).is_err());
        assert!(gather(&x, 1, &Tensor::zeros(&[3, 2, 3])).is_err());
    }

    #[test]
    fn repeated_indices_scatter_add() {
        let table = Var::parameter(Tensor::zeros(&[3, 2]));
        let e = embedding(&table, &Tensor::from_vec(vec![1., 1., 2.], &[3])).unwrap();
        crate::ops::elementwise::sum(&e).backward();
        assert_eq!(table.grad().unwrap().data(), &[0., 0., 2., 2., 1., 1.]);
    }

    #[test]
    fn gradchecks() {
        let mut rng = Rng::new(3);
        let x = gradcheck::random_away_from_zero(&[2, 4, 3], &mut rng, 0.1);
        let one = std::slice::from_ref(&x);
        for axis in 0..3 {
            ok(
                gradcheck::check(|v| narrow(&v[0], axis, 1, 1).unwrap(), one, 1e-2, 1),
                "narrow",
            );
            ok(
                gradcheck::check(
                    |v| {
                        let p = split(&v[0], axis, &[1, v[0].shape()[axis] - 1]).unwrap();
                        stack(&[&p[1], &p[1]], axis).unwrap()
                    },
                    one,
                    1e-2,
                    1,
                ),
                "split+stack",
            );
            let idx = Tensor::from_vec(vec![1., 0., 1., 1.], &[4]);
            ok(
                gradcheck::check(|v| index_select(&v[0], axis, &idx).unwrap(), one, 1e-2, 1),
                "index_select",
            );
        }
        let ids = Tensor::from_vec(
            vec![3., 0., 1., 1., 1., 2., 0., 3., 3., 2., 2., 0.],
            &[2, 2, 3],
        );
        ok(
            gradcheck::check(|v| gather(&v[0], 1, &ids).unwrap(), one, 1e-2, 1),
            "gather",
        );
        let ids2 = Tensor::from_vec(vec![1., 0., 1., 1., 0., 0.], &[2, 1, 3]);
        ok(
            gradcheck::check(|v| gather(&v[0], 0, &ids2).unwrap(), one, 1e-2, 1),
            "gather axis 0",
        );
        let table = gradcheck::random_away_from_zero(&[5, 3], &mut rng, 0.1);
        let ids = Tensor::from_vec(vec![4., 0., 4., 2.], &[2, 2]);
        ok(
            gradcheck::check(|v| embedding(&v[0], &ids).unwrap(), &[table], 1e-2, 1),
            "embedding",
        );
    }
}
