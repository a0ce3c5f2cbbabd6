//! Elementwise functions of one tensor.
//!
//! Local derivatives (y = f(x)):
//! | op         | y                         | d y / d x          |
//! |------------|---------------------------|--------------------|
//! | exp        | e^x                       | y                  |
//! | log        | ln x                      | 1 / x              |
//! | sqrt       | sqrt x                    | 1 / (2 y)          |
//! | abs        | abs x                     | sign x (0 at 0)    |
//! | neg        | -x                        | -1                 |
//! | reciprocal | 1 / x                     | -y^2               |
//! | softplus   | max(x, 0) + ln(1 + e^-abs x) | sigmoid x       |
//!
//! softplus is written in the stable form: `ln(1 + e^x)` overflows to inf for x > 88
//! in f32, the stable form gives x there, and ln_1p keeps precision for large negative x.

use crate::engine::{Tensor, Var};

/// One table entry: the value and the derivative (given x and y).
fn unary(x: &Var, name: &'static str, f: fn(f32) -> f32, df: fn(f32, f32) -> f32) -> Var {
    let xv = x.value().contiguous_f32();
    let y = xv.map(f);
    let yk = y.clone();
    Var::from_op(y, name, &[x], move |dy| {
        let dy = dy.contiguous_f32();
        let g: Vec<f32> = dy
            .data()
            .iter()
            .zip(xv.data().iter().zip(yk.data()))
            .map(|(&g, (&x, &y))| g * df(x, y))
            .collect();
        vec![Some(Tensor::from_vec(g, xv.shape()))]
    })
}

pub fn exp(x: &Var) -> Var {
    unary(x, "exp", f32::exp, |_, y| y)
}

pub fn log(x: &Var) -> Var {
    unary(x, "log", f32::ln, |x, _| 1.0 / x)
}

pub fn sqrt(x: &Var) -> Var {
    unary(x, "sqrt", f32::sqrt, |_, y| 0.5 / y)
}

/// `abs`; the gradient at exactly 0 is 0 (PyTorch's choice).
pub fn abs(x: &Var) -> Var {
    unary(x, "abs", f32::abs, |x, _| {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }
    })
}

pub fn neg(x: &Var) -> Var {
    unary(x, "neg", |x| -x, |_, _| -1.0)
}

pub fn reciprocal(x: &Var) -> Var {
    unary(x, "reciprocal", |x| 1.0 / x, |_, y| -y * y)
}

/// `ln(1 + e^x)` in its stable form (see the module doc).
pub fn softplus_scalar(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

pub fn softplus(x: &Var) -> Var {
    unary(x, "softplus", softplus_scalar, |x, _| {
        super::activation::sigmoid_scalar(x)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    #[test]
    fn values_and_stability() {
        let x = Var::constant(Tensor::from_vec(vec![-1000.0, 0.0, 1000.0, 2.0], &[4]));
        let y = softplus(&x).value();
        assert_eq!(y.data()[0], 0.0);
        assert!((y.data()[1] - 2f32.ln()).abs() < 1e-7);
        assert_eq!(y.data()[2], 1000.0);
        assert!((y.data()[3] - (1.0 + 2f32.exp()).ln()).abs() < 1e-6);
        let x = Var::constant(Tensor::from_vec(vec![4.0, -2.0], &[2]));
        assert_eq!(sqrt(&abs(&x)).value().data(), &[2.0, 2f32.sqrt()]);
        assert_eq!(reciprocal(&neg(&x)).value().data(), &[-0.25, 0.5]);
        assert_eq!(log(&exp(&x)).value().data(), &[4.0, -2.0]);
    }

    #[test]
    fn gradchecks() {
        let mut rng = Rng::new(6);
        let x = gradcheck::random_away_from_zero(&[3, 4], &mut rng, 0.2);
        let pos = x.map(|v| v.abs() + 0.5);
        type F = fn(&Var) -> Var;
        let cases: [(&str, F, &Tensor); 7] = [
            ("exp", exp, &x),
            ("log", log, &pos),
            ("sqrt", sqrt, &pos),
            ("abs", abs, &x),
            ("neg", neg, &x),
            ("reciprocal", reciprocal, &pos),
            ("softplus", softplus, &x),
        ];
        for (name, f, input) in cases {
            let r = gradcheck::check(|v| f(&v[0]), std::slice::from_ref(input), 1e-3, 2);
            assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{name}: {r:?}");
        }
    }
}
