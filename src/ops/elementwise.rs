//! Elementwise arithmetic on same-shape tensors, and with scalars.
//!
//! Local derivatives (the tinygrad-style table):
//! | op        | d out / d a | d out / d b |
//! |-----------|-------------|-------------|
//! | a + b     | 1           | 1           |
//! | a - b     | 1           | -1          |
//! | a * b     | b           | a           |
//! | a * s     | s           |             |
//! | a + s     | 1           |             |

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

fn same_shape(a: &Var, b: &Var, op: &str) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(format!(
            "{op}: {:?} and {:?} differ",
            a.shape(),
            b.shape()
        )));
    }
    Ok(())
}

pub fn add(a: &Var, b: &Var) -> Result<Var> {
    same_shape(a, b, "add")?;
    let out = a.value().zip_map(&b.value(), |x, y| x + y);
    Ok(Var::from_op(out, "add", &[a, b], |dy| {
        vec![Some(dy.clone()), Some(dy.clone())]
    }))
}

pub fn sub(a: &Var, b: &Var) -> Result<Var> {
    same_shape(a, b, "sub")?;
    let out = a.value().zip_map(&b.value(), |x, y| x - y);
    Ok(Var::from_op(out, "sub", &[a, b], |dy| {
        vec![Some(dy.clone()), Some(dy.map(|g| -g))]
    }))
}

pub fn mul(a: &Var, b: &Var) -> Result<Var> {
    same_shape(a, b, "mul")?;
    let (av, bv) = (a.value(), b.value());
    let out = av.zip_map(&bv, |x, y| x * y);
    Ok(Var::from_op(out, "mul", &[a, b], move |dy| {
        vec![
            Some(dy.zip_map(&bv, |g, y| g * y)),
            Some(dy.zip_map(&av, |g, x| g * x)),
        ]
    }))
}

pub fn scale(a: &Var, s: f32) -> Var {
    Var::from_op(a.value().map(|x| x * s), "scale", &[a], move |dy| {
        vec![Some(dy.map(|g| g * s))]
    })
}

pub fn add_scalar(a: &Var, s: f32) -> Var {
    Var::from_op(a.value().map(|x| x + s), "add_scalar", &[a], |dy| {
        vec![Some(dy.clone())]
    })
}

/// Sum of all elements -> scalar.
pub fn sum(a: &Var) -> Var {
    let shape = a.shape();
    Var::from_op(Tensor::scalar(a.value().sum()), "sum", &[a], move |dy| {
        vec![Some(Tensor::full(&shape, dy.item()))]
    })
}

/// Mean of all elements -> scalar.
pub fn mean(a: &Var) -> Var {
    let shape = a.shape();
    let n = a.value_ref().numel().max(1) as f32;
    Var::from_op(Tensor::scalar(a.value().mean()), "mean", &[a], move |dy| {
        vec![Some(Tensor::full(&shape, dy.item() / n))]
    })
}

/// Sum of squares of all elements -> scalar (L2 regularization).
pub fn sum_squares(a: &Var) -> Var {
    let av = a.value();
    let s = av
        .data()
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>() as f32;
    Var::from_op(Tensor::scalar(s), "sum_squares", &[a], move |dy| {
        let g = dy.item();
        vec![Some(av.map(|x| 2.0 * x * g))]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    #[test]
    fn gradchecks() {
        let mut rng = Rng::new(5);
        let a = gradcheck::random_away_from_zero(&[2, 3], &mut rng, 0.1);
        let b = gradcheck::random_away_from_zero(&[2, 3], &mut rng, 0.1);
        type F = fn(&[Var]) -> Var;
        let cases: Vec<(&str, F)> = vec![
            ("add", |v| add(&v[0], &v[1]).unwrap()),
            ("sub", |v| sub(&v[0], &v[1]).unwrap()),
            ("mul", |v| mul(&v[0], &v[1]).unwrap()),
            ("scale", |v| {
                add(&scale(&v[0], 3.0), &add_scalar(&v[1], 1.0)).unwrap()
            }),
            ("sum", |v| add(&sum(&v[0]), &mean(&v[1])).unwrap()),
            ("sum_squares", |v| {
                add(&sum_squares(&v[0]), &sum(&v[1])).unwrap()
            }),
        ];
        for (name, f) in cases {
            let r = gradcheck::check(f, &[a.clone(), b.clone()], gradcheck::DEFAULT_STEP, 1);
            assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{name}: {r:?}");
        }
    }

    #[test]
    fn shared_input_and_branches_accumulate() {
        // y = x*x + x  => dy/dx = 2x + 1, with x used three times.
        let x = Var::parameter(Tensor::from_vec(vec![1.0, -2.0, 3.0], &[3]));
        let y = sum(&add(&mul(&x, &x).unwrap(), &x).unwrap());
        y.backward();
        assert_eq!(x.grad().unwrap().data(), &[3.0, -3.0, 7.0]);
        // Gradients accumulate over two backward passes until zero_grad.
        let y2 = sum(&x);
        y2.backward();
        assert_eq!(x.grad().unwrap().data(), &[4.0, -2.0, 8.0]);
        x.zero_grad();
        assert!(x.grad().is_none());
    }

    #[test]
    fn no_grad_records_nothing() {
        let x = Var::parameter(Tensor::ones(&[2]));
        let y = {
            let _g = crate::engine::no_grad();
            scale(&x, 2.0)
        };
        assert!(!y.requires_grad());
        assert!(y.op_name().is_none());
        assert!(scale(&x, 2.0).requires_grad());
    }
}
