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
//! | max(a + b, 0) | 1 if out > 0 else 0 | same  |

use super::channel_scale;
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

/// `max(a + b, 0)`: a residual block's sum and the ReLU after it (`nn::Graph::run` fuses
/// the pair), one pass forward and one backward instead of two each. The same values as
/// `relu(add(a, b))` bit for bit, gradients too (the mask is `out > 0` in both).
pub fn add_relu(a: &Var, b: &Var) -> Result<Var> {
    same_shape(a, b, "add_relu")?;
    if crate::engine::kinks::active() {
        // Gradient checking with frozen ReLU masks: the relu op records and replays them.
        return Ok(crate::ops::activation::relu(&add(a, b)?));
    }
    let out = a.value().zip_map(&b.value(), |x, y| (x + y).max(0.0));
    let yk = out.clone();
    Ok(Var::from_op(out, "add_relu", &[a, b], move |dy| {
        let g = dy.zip_map(&yk, |g, y| if y > 0.0 { g } else { 0.0 });
        vec![Some(g.clone()), Some(g)]
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
    let (av, bv) = (a.value().contiguous_f32(), b.value().contiguous_f32());
    let out = av.zip_map(&bv, |x, y| x * y);
    Ok(Var::from_op(out, "mul", &[a, b], move |dy| {
        vec![
            Some(dy.zip_map(&bv, |g, y| g * y)),
            Some(dy.zip_map(&av, |g, x| g * x)),
        ]
    }))
}

/// `a * b` where `b` broadcasts to `a`'s shape: same rank, each of `b`'s dimensions equal
/// to `a`'s or 1 (NumPy's rule, one direction). The channel rescale of a
/// squeeze-and-excitation block, `[N, C, H, W] * [N, C, 1, 1]`, takes the fast path
/// (`ops::channel_scale`): each entry of `b` scales one contiguous run of `a`.
pub fn mul_broadcast(a: &Var, b: &Var) -> Result<Var> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa == sb {
        return mul(a, b);
    }
    if sa.len() != sb.len() || sa.iter().zip(&sb).any(|(&x, &y)| y != x && y != 1) {
        return Err(Error::shape(format!(
            "multiply: {sb:?} does not broadcast to {sa:?} (same rank, each dimension equal or 1)"
        )));
    }
    let (av, bv) = (a.value().contiguous_f32(), b.value().contiguous_f32());
    // Trailing axes where b is 1: each entry of b scales one run of a (the SE rescale).
    let k = sb.iter().rposition(|&d| d != 1).map_or(0, |p| p + 1);
    if sa[..k] == sb[..k] {
        let run: usize = sa[k..].iter().product();
        let mut out = vec![0.0f32; av.numel()];
        channel_scale::forward(&mut out, av.data(), bv.data(), run);
        return Ok(Var::from_op(
            Tensor::from_vec(out, &sa),
            "mul_broadcast",
            &[a, b],
            move |dy| {
                let mut da = vec![0.0f32; av.numel()];
                let mut db = vec![0.0f32; bv.numel()];
                channel_scale::backward(&mut da, &mut db, dy.data(), av.data(), bv.data(), run);
                vec![
                    Some(Tensor::from_vec(da, &sa)),
                    Some(Tensor::from_vec(db, &sb)),
                ]
            },
        ));
    }
    let map = BroadcastMap::new(&sa, &sb);
    let mut out = vec![0.0f32; av.numel()];
    map.for_each(|i, j| out[i] = av.data()[i] * bv.data()[j]);
    Ok(Var::from_op(
        Tensor::from_vec(out, &sa),
        "mul_broadcast",
        &[a, b],
        move |dy| {
            let mut da = vec![0.0f32; av.numel()];
            let mut db = vec![0.0f32; bv.numel()];
            map.for_each(|i, j| {
                da[i] = dy.data()[i] * bv.data()[j];
                db[j] += dy.data()[i] * av.data()[i];
            });
            vec![
                Some(Tensor::from_vec(da, &map.a_shape)),
                Some(Tensor::from_vec(db, &map.b_shape)),
            ]
        },
    ))
}

/// Pairs each index of a tensor of `a_shape` with the index of the tensor of `b_shape`
/// (which broadcasts to it) that it reads.
struct BroadcastMap {
    a_shape: Vec<usize>,
    b_shape: Vec<usize>,
}

impl BroadcastMap {
    fn new(a: &[usize], b: &[usize]) -> BroadcastMap {
        BroadcastMap {
            a_shape: a.to_vec(),
            b_shape: b.to_vec(),
        }
    }

    /// Calls `f(index in a, index in b)` for every element of `a`, in order.
    fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        let (a, b) = (&self.a_shape, &self.b_shape);
        // b's strides, 0 on broadcast axes.
        let mut strides = vec![0usize; b.len()];
        let mut s = 1;
        for d in (0..b.len()).rev() {
            strides[d] = if b[d] == 1 { 0 } else { s };
            s *= b[d];
        }
        let mut idx = vec![0usize; a.len()];
        let mut j = 0;
        for i in 0..crate::engine::tensor::numel(a) {
            f(i, j);
            for d in (0..a.len()).rev() {
                idx[d] += 1;
                j += strides[d];
                if idx[d] < a[d] {
                    break;
                }
                j -= strides[d] * a[d];
                idx[d] = 0;
            }
        }
    }
}

/// Elementwise maximum; the gradient goes to the larger input (to `a` on ties).
pub fn maximum(a: &Var, b: &Var) -> Result<Var> {
    pick(a, b, "maximum", |x, y| x >= y)
}

/// Elementwise minimum; the gradient goes to the smaller input (to `a` on ties).
pub fn minimum(a: &Var, b: &Var) -> Result<Var> {
    pick(a, b, "minimum", |x, y| x <= y)
}

fn pick(a: &Var, b: &Var, op: &'static str, take_a: fn(f32, f32) -> bool) -> Result<Var> {
    same_shape(a, b, op)?;
    let (av, bv) = (a.value().contiguous_f32(), b.value().contiguous_f32());
    let from_a: Vec<bool> = av
        .data()
        .iter()
        .zip(bv.data())
        .map(|(&x, &y)| take_a(x, y))
        .collect();
    let out: Vec<f32> = from_a
        .iter()
        .zip(av.data().iter().zip(bv.data()))
        .map(|(&t, (&x, &y))| if t { x } else { y })
        .collect();
    Ok(Var::from_op(
        Tensor::from_vec(out, av.shape()),
        op,
        &[a, b],
        move |dy| {
            let part = |want: bool| {
                let g = dy
                    .data()
                    .iter()
                    .zip(&from_a)
                    .map(|(&g, &t)| if t == want { g } else { 0.0 })
                    .collect();
                Some(Tensor::from_vec(g, dy.shape()))
            };
            vec![part(true), part(false)]
        },
    ))
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
    let av = a.value().contiguous_f32();
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
            ("maximum", |v| {
                add(&maximum(&v[0], &v[1]).unwrap(), &v[0]).unwrap()
            }),
            ("minimum", |v| minimum(&v[0], &v[1]).unwrap()),
            ("add_relu", |v| add_relu(&v[0], &v[1]).unwrap()),
            ("sum_squares", |v| {
                add(&sum_squares(&v[0]), &sum(&v[1])).unwrap()
            }),
        ];
        for (name, f) in cases {
            let r = gradcheck::check(f, &[a.clone(), b.clone()], gradcheck::DEFAULT_STEP, 1);
            assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{name}: {r:?}");
        }
    }

    /// The fused residual sum + ReLU against the two ops it replaces: the same values and
    /// gradients, bit for bit, with entries on both sides of the kink and exactly at it.
    #[test]
    fn add_relu_is_relu_of_add() {
        let mut rng = Rng::new(11);
        let n = 4 * 3 * 5 * 5;
        let draw = |rng: &mut Rng| (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
        let (av, mut bv): (Vec<f32>, Vec<f32>) = (draw(&mut rng), draw(&mut rng));
        bv[0] = -av[0]; // a + b = 0 exactly: the derivative there is 0 on both paths
        let dy = Tensor::from_vec(draw(&mut rng), &[4, 3, 5, 5]);
        let run = |fused: bool| {
            let a = Var::parameter(Tensor::from_vec(av.clone(), &[4, 3, 5, 5]));
            let b = Var::parameter(Tensor::from_vec(bv.clone(), &[4, 3, 5, 5]));
            let y = if fused {
                add_relu(&a, &b).unwrap()
            } else {
                crate::ops::activation::relu(&add(&a, &b).unwrap())
            };
            let out = y.value().into_vec();
            y.backward_with(dy.clone());
            [
                out,
                a.grad().unwrap().into_vec(),
                b.grad().unwrap().into_vec(),
            ]
        };
        let (fused, plain) = (run(true), run(false));
        assert_eq!(fused, plain);
        assert!(fused[0].contains(&0.0) && fused[0].iter().any(|&v| v > 0.0));
        assert!(add_relu(
            &Var::constant(Tensor::zeros(&[2])),
            &Var::constant(Tensor::zeros(&[3]))
        )
        .is_err());
    }

    #[test]
    fn broadcast_multiply_gradchecks_on_both_paths() {
        let mut rng = Rng::new(9);
        let x = gradcheck::random_away_from_zero(&[2, 3, 2, 2], &mut rng, 0.1);
        // [N, C, 1, 1]: the channel-rescale fast path; [1, C, 2, 1]: the general path.
        for b_shape in [[2, 3, 1, 1], [1, 3, 2, 1], [2, 1, 2, 2]] {
            let s = gradcheck::random_away_from_zero(&b_shape, &mut rng, 0.1);
            let f = |v: &[Var]| sum_squares(&mul_broadcast(&v[0], &v[1]).unwrap());
            let r = gradcheck::check(f, &[x.clone(), s], gradcheck::DEFAULT_STEP, 1);
            assert!(
                r.worst() < gradcheck::DEFAULT_TOLERANCE,
                "{b_shape:?}: {r:?}"
            );
        }
    }

    #[test]
    fn broadcast_multiply_matches_the_loops() {
        let a = Var::constant(Tensor::from_vec(
            (0..12).map(|i| i as f32).collect(),
            &[1, 2, 3, 2],
        ));
        let b = Var::constant(Tensor::from_vec(vec![10.0, 100.0, 1000.0], &[1, 1, 3, 1]));
        let y = mul_broadcast(&a, &b).unwrap().value();
        let mut want = Vec::new();
        for c in 0..2 {
            for h in 0..3 {
                for w in 0..2 {
                    want.push((c * 6 + h * 2 + w) as f32 * [10.0, 100.0, 1000.0][h]);
                }
            }
        }
        assert_eq!(y.data(), &want[..]);
        let bad = Var::constant(Tensor::zeros(&[1, 2, 2, 1]));
        let e = mul_broadcast(&a, &bad).unwrap_err().to_string();
        assert!(e.contains("does not broadcast"), "{e}");
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
