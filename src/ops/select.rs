//! Selection and comparison: `where_`, `masked_fill`, `clamp`, and the comparisons
//! eq/ne/lt/le/gt/ge (no gradient; 1.0 where true, 0.0 where false).
//!
//! Local derivatives:
//! | op                    | d y / d a        | d y / d b        |
//! |-----------------------|------------------|------------------|
//! | where(c, a, b)        | c != 0           | c == 0           |
//! | masked_fill(x, m, v)  | m == 0           |                  |
//! | clamp(x, lo, hi)      | lo <= x <= hi    |                  |
//!
//! Conditions and masks broadcast to the values (NumPy's rules; `broadcast_to` first,
//! so the gradients sum over broadcast axes); comparisons broadcast their operands
//! through the broadcasting kernel of `broadcast.rs`.

use super::broadcast::{binary_forward, broadcast_shape, broadcast_to};
use crate::engine::tensor::numel;
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// `cond != 0 ? a : b`, elementwise; `cond`, `a` and `b` broadcast together.
pub fn where_(cond: &Tensor, a: &Var, b: &Var) -> Result<Var> {
    let ab = broadcast_shape("where", &a.shape(), &b.shape())?;
    let shape = broadcast_shape("where (condition)", cond.shape(), &ab)?;
    let a = broadcast_to(a, &shape)?;
    let b = broadcast_to(b, &shape)?;
    let c = broadcast_to(&Var::constant(cond.clone()), &shape)?
        .value()
        .contiguous_f32();
    let pick: Vec<bool> = c.data().iter().map(|&v| v != 0.0).collect();
    let (av, bv) = (a.value().contiguous_f32(), b.value().contiguous_f32());
    let out: Vec<f32> = pick
        .iter()
        .zip(av.data().iter().zip(bv.data()))
        .map(|(&p, (&x, &y))| if p { x } else { y })
        .collect();
    let oshape = shape.clone();
    Ok(Var::from_op(
        Tensor::from_vec(out, &shape),
        "where",
        &[&a, &b],
        move |dy| {
            let dy = dy.contiguous_f32();
            let part = |want: bool| {
                let g = dy
                    .data()
                    .iter()
                    .zip(&pick)
                    .map(|(&g, &p)| if p == want { g } else { 0.0 })
                    .collect();
                Some(Tensor::from_vec(g, &oshape))
            };
            vec![part(true), part(false)]
        },
    ))
}

/// `x` with `value` where `mask != 0` (the mask broadcasts to `x`'s shape).
pub fn masked_fill(x: &Var, mask: &Tensor, value: f32) -> Result<Var> {
    let shape = x.shape();
    let out = broadcast_shape("masked_fill", mask.shape(), &shape)?;
    if out != shape {
        return Err(Error::shape(format!(
            "masked_fill: mask {:?} does not broadcast to the input {shape:?}",
            mask.shape()
        )));
    }
    let fill = Var::constant(Tensor::scalar(value));
    where_(mask, &fill, x)
}

/// Limits `x` to `[min, max]` (either bound optional). The gradient passes where `x` is
/// inside the bounds, bounds included (PyTorch's rule).
pub fn clamp(x: &Var, min: Option<f32>, max: Option<f32>) -> Result<Var> {
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(Error::invalid(format!(
                "clamp: min {lo} above max {hi} (input {:?})",
                x.shape()
            )));
        }
    }
    let (lo, hi) = (
        min.unwrap_or(f32::NEG_INFINITY),
        max.unwrap_or(f32::INFINITY),
    );
    let xv = x.value().contiguous_f32();
    let y = xv.map(|v| v.max(lo).min(hi));
    Ok(Var::from_op(y, "clamp", &[x], move |dy| {
        let dy = dy.contiguous_f32();
        let g = dy
            .data()
            .iter()
            .zip(xv.data())
            .map(|(&g, &v)| if v >= lo && v <= hi { g } else { 0.0 })
            .collect();
        vec![Some(Tensor::from_vec(g, xv.shape()))]
    }))
}

fn compare(a: &Var, b: &Var, name: &str, f: fn(f32, f32) -> bool) -> Result<Var> {
    let (sa, sb) = (a.shape(), b.shape());
    let shape = broadcast_shape(name, &sa, &sb)?;
    let (av, bv) = (a.value().contiguous_f32(), b.value().contiguous_f32());
    let mut out = vec![0.0f32; numel(&shape)];
    binary_forward(&mut out, av.data(), bv.data(), &shape, &sa, &sb, |x, y| {
        f32::from(f(x, y))
    });
    Ok(Var::constant(Tensor::from_vec(out, &shape)))
}

/// `a == b` as 1.0 / 0.0, broadcasting; no gradient.
pub fn eq(a: &Var, b: &Var) -> Result<Var> {
    compare(a, b, "eq", |x, y| x == y)
}
/// `a != b`.
pub fn ne(a: &Var, b: &Var) -> Result<Var> {
    compare(a, b, "ne", |x, y| x != y)
}
/// `a < b`.
pub fn lt(a: &Var, b: &Var) -> Result<Var> {
    compare(a, b, "lt", |x, y| x < y)
}
/// `a <= b`.
pub fn le(a: &Var, b: &Var) -> Result<Var> {
    compare(a, b, "le", |x, y| x <= y)
}
/// `a > b`.
pub fn gt(a: &Var, b: &Var) -> Result<Var> {
    compare(a, b, "gt", |x, y| x > y)
}
/// `a >= b`.
pub fn ge(a: &Var, b: &Var) -> Result<Var> {
    compare(a, b, "ge", |x, y| x >= y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    #[test]
    fn comparisons_broadcast_and_record_no_gradient() {
        let a = Var::parameter(Tensor::from_vec(vec![1., 2., 3., 4.], &[2, 2]));
        let b = Var::constant(Tensor::from_vec(vec![2., 3.], &[2]));
        let v = |r: Result<Var>| r.unwrap().value().data().to_vec();
        assert_eq!(v(eq(&a, &b)), [0., 0., 0., 0.]);
        assert_eq!(v(lt(&a, &b)), [1., 1., 0., 0.]);
        assert_eq!(v(le(&a, &b)), [1., 1., 0., 0.]);
        assert_eq!(v(gt(&a, &b)), [0., 0., 1., 1.]);
        assert_eq!(v(ge(&a, &b)), [0., 0., 1., 1.]);
        assert_eq!(v(ne(&a, &b)), [1., 1., 1., 1.]);
        assert!(!gt(&a, &b).unwrap().requires_grad());
        let e = eq(&a, &Var::constant(Tensor::zeros(&[3])))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[2, 2]") && e.contains("[3]"), "{e}");
    }

    #[test]
    fn where_masked_fill_clamp_values() {
        let a = Var::constant(Tensor::from_vec(vec![1., 2., 3., 4.], &[2, 2]));
        let b = Var::constant(Tensor::from_vec(vec![-1.], &[1]));
        let c = Tensor::from_vec(vec![1., 0.], &[2]);
        assert_eq!(
            where_(&c, &a, &b).unwrap().value().data(),
            &[1., -1., 3., -1.]
        );
        let m = Tensor::from_vec(vec![0., 1.], &[2, 1]);
        assert_eq!(
            masked_fill(&a, &m, 9.).unwrap().value().data(),
            &[1., 2., 9., 9.]
        );
        assert!(masked_fill(&a, &Tensor::zeros(&[3]), 0.).is_err());
        assert_eq!(
            clamp(&a, Some(2.), Some(3.)).unwrap().value().data(),
            &[2., 2., 3., 3.]
        );
        assert_eq!(
            clamp(&a, None, Some(2.5)).unwrap().value().data(),
            &[1., 2., 2.5, 2.5]
        );
        assert!(clamp(&a, Some(3.), Some(2.)).is_err());
    }

    #[test]
    fn gradchecks() {
        let mut rng = Rng::new(2);
        let a = gradcheck::random_away_from_zero(&[2, 3], &mut rng, 0.1);
        let b = gradcheck::random_away_from_zero(&[3], &mut rng, 0.1);
        let cond = Tensor::from_vec(vec![1., 0., 1., 0., 0., 1.], &[2, 3]);
        let r = gradcheck::check(
            |v| where_(&cond, &v[0], &v[1]).unwrap(),
            &[a.clone(), b],
            1e-2,
            1,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "where: {r:?}");
        let mask = Tensor::from_vec(vec![0., 1., 0.], &[3]);
        let r = gradcheck::check(
            |v| masked_fill(&v[0], &mask, 5.).unwrap(),
            std::slice::from_ref(&a),
            1e-2,
            1,
        );
        assert!(
            r.worst() < gradcheck::DEFAULT_TOLERANCE,
            "masked_fill: {r:?}"
        );
        // The kink at each bound must be farther than h from every input, or the
        // central difference straddles it: checked, not assumed.
        assert!(a
            .data()
            .iter()
            .all(|&v| (v + 0.5).abs() > 0.02 && (v - 0.55).abs() > 0.02));
        assert!(
            a.data().iter().any(|&v| !(-0.5..=0.55).contains(&v)),
            "no clamped input"
        );
        let r = gradcheck::check(
            |v| clamp(&v[0], Some(-0.5), Some(0.55)).unwrap(),
            &[a],
            1e-2,
            1,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "clamp: {r:?}");
    }
}
