//! Shape ops: reshape (a free view), concatenation along an axis, and zero padding of
//! NCHW images (whose backward crops `dy` back to the input's extent).

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
        let v = x.value().contiguous_f32();
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

/// Zero-pads the two spatial axes of an NCHW tensor: `pad = [top, bottom, left, right]`.
/// `[N, C, H, W] -> [N, C, top + H + bottom, left + W + right]`.
pub fn zero_pad2d(x: &Var, pad: [usize; 4]) -> Result<Var> {
    let s = x.shape();
    if s.len() != 4 {
        return Err(Error::shape(format!(
            "zero_pad2d expects [batch, channels, height, width], got {s:?}"
        )));
    }
    let [top, bottom, left, right] = pad;
    let (planes, h, w) = (s[0] * s[1], s[2], s[3]);
    let (oh, ow) = (top + h + bottom, left + w + right);
    let v = x.value().contiguous_f32();
    let mut out = vec![0.0f32; planes * oh * ow];
    for (src, dst) in v
        .data()
        .chunks_exact(h * w)
        .zip(out.chunks_exact_mut(oh * ow))
    {
        for (r, row) in src.chunks_exact(w).enumerate() {
            let at = (top + r) * ow + left;
            dst[at..at + w].copy_from_slice(row);
        }
    }
    let out_shape = [s[0], s[1], oh, ow];
    Ok(Var::from_op(
        Tensor::from_vec(out, &out_shape),
        "zero_pad2d",
        &[x],
        move |dy| {
            let mut g = vec![0.0f32; planes * h * w];
            for (src, dst) in dy
                .data()
                .chunks_exact(oh * ow)
                .zip(g.chunks_exact_mut(h * w))
            {
                for (r, row) in dst.chunks_exact_mut(w).enumerate() {
                    let at = (top + r) * ow + left;
                    row.copy_from_slice(&src[at..at + w]);
                }
            }
            vec![Some(Tensor::from_vec(g, &s))]
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

    #[test]
    fn zero_pad2d_values_and_gradcheck() {
        let x = Var::constant(Tensor::from_vec(
            vec![1., 2., 3., 4., 5., 6.],
            &[1, 1, 2, 3],
        ));
        let y = zero_pad2d(&x, [1, 0, 0, 2]).unwrap();
        assert_eq!(y.shape(), vec![1, 1, 3, 5]);
        #[rustfmt::skip]
        let want = [
            0., 0., 0., 0., 0.,
            1., 2., 3., 0., 0.,
            4., 5., 6., 0., 0.,
        ];
        assert_eq!(y.value().data(), &want);
        assert!(zero_pad2d(&x, [0, 0, 0, 0]).unwrap().value().data() == x.value().data());
        let flat = Var::constant(Tensor::from_vec(vec![1., 2.], &[1, 2]));
        assert!(zero_pad2d(&flat, [1, 1, 1, 1]).is_err());

        let mut rng = Rng::new(5);
        let a = gradcheck::random_away_from_zero(&[2, 3, 3, 4], &mut rng, 0.1);
        for pad in [[1, 1, 1, 1], [2, 0, 1, 3], [0, 0, 0, 0]] {
            let r = gradcheck::check(
                |v| zero_pad2d(&v[0], pad).unwrap(),
                std::slice::from_ref(&a),
                gradcheck::DEFAULT_STEP,
                4,
            );
            assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{pad:?}: {r:?}");
        }
    }
}
