//! Shape ops: reshape (a free view) and concatenation along an axis.

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

pub fn reshape(x: &Var, shape: &[usize]) -> Result<Var> {
    let from = x.shape();
    let y = x.value().reshape(shape)?;
    Ok(Var::from_op(y, "reshape", &[x], move |dy| {
        vec![Some(dy.reshape(&from).expect("reshape back"))]
    }))
}

/// `[N, ...] -> [N, prod(...)]`.
pub fn flatten(x: &Var) -> Result<Var> {
    let s = x.shape();
    if s.is_empty() {
        return Err(Error::shape("flatten: a scalar has no batch axis"));
    }
    reshape(x, &[s[0], s[1..].iter().product()])
}

/// Concatenates along `axis`; all other dimensions must agree.
pub fn concat(xs: &[&Var], axis: usize) -> Result<Var> {
    let first = xs
        .first()
        .ok_or_else(|| Error::invalid("concat of no tensors"))?
        .shape();
    if axis >= first.len() {
        return Err(Error::shape(format!("concat: axis {axis} of {first:?}")));
    }
    for x in xs {
        let s = x.shape();
        let ok = s.len() == first.len()
            && s.iter()
                .zip(&first)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !ok {
            return Err(Error::shape(format!(
                "concat on axis {axis}: {first:?} and {s:?}"
            )));
        }
    }
    let outer: usize = first[..axis].iter().product();
    let inner: usize = first[axis + 1..].iter().product();
    let sizes: Vec<usize> = xs.iter().map(|x| x.shape()[axis]).collect();
    let total: usize = sizes.iter().sum();
    let mut out = vec![0.0f32; outer * total * inner];
    let mut offset = 0;
    for (x, &len) in xs.iter().zip(&sizes) {
        let v = x.value();
        for o in 0..outer {
            let src = &v.data()[o * len * inner..(o + 1) * len * inner];
            let dst = (o * total + offset) * inner;
            out[dst..dst + len * inner].copy_from_slice(src);
        }
        offset += len;
    }
    let mut shape = first.clone();
    shape[axis] = total;
    let in_shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.shape()).collect();
    Ok(Var::from_op(
        Tensor::from_vec(out, &shape),
        "concat",
        xs,
        move |dy| {
            let mut grads = Vec::new();
            let mut offset = 0;
            for (s, &len) in in_shapes.iter().zip(&sizes) {
                let mut g = vec![0.0f32; outer * len * inner];
                for o in 0..outer {
                    let src = (o * total + offset) * inner;
                    g[o * len * inner..(o + 1) * len * inner]
                        .copy_from_slice(&dy.data()[src..src + len * inner]);
                }
                offset += len;
                grads.push(Some(Tensor::from_vec(g, s)));
            }
            grads
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    #[test]
    fn concat_and_reshape_gradcheck() {
        let mut rng = Rng::new(1);
        let a = gradcheck::random_away_from_zero(&[2, 3, 2], &mut rng, 0.1);
        let b = gradcheck::random_away_from_zero(&[2, 1, 2], &mut rng, 0.1);
        let r = gradcheck::check(
            |v| {
                let c = concat(&[&v[0], &v[1]], 1).unwrap();
                flatten(&c).unwrap()
            },
            &[a, b],
            gradcheck::DEFAULT_STEP,
            1,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{r:?}");
    }

    #[test]
    fn concat_values() {
        let a = Var::constant(Tensor::from_vec(vec![1., 2., 3., 4.], &[2, 2]));
        let b = Var::constant(Tensor::from_vec(vec![5., 6.], &[2, 1]));
        let c = concat(&[&a, &b], 1).unwrap();
        assert_eq!(c.value().data(), &[1., 2., 5., 3., 4., 6.]);
        assert!(concat(&[&a, &b], 0).is_err());
    }
}
