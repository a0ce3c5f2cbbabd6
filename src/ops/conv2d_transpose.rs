//! Transposed 2-D convolution on NCHW tensors (Keras' `Conv2DTranspose`, PyTorch's
//! `conv_transpose2d`), built from the conv2d kernels: it is the input gradient of a
//! conv2d, so its forward runs `conv2d_backward_input`, its input gradient runs
//! `conv2d_forward` and its weight gradient `conv2d_backward_weight` (every fast path of
//! `ops/conv2d` applies; the naive conv2d kernels are its reference in the tests).
//!
//! Dimension letters: `N` batch, `C` input channels, `H`, `W` input size, `OC` output
//! channels, `KH`, `KW` kernel, `OH`, `OW` output size.
//! Shapes: `x [N, C, H, W]`, `w [C, OC, KH, KW]` (PyTorch's layout), `b [OC]` ->
//! `y [N, OC, OH, OW]`, where the conv2d of `y` with `w` (stride, `padding`) has `H x W`
//! outputs: `OH = (H - 1)*stride + KH - pad_top - pad_bottom` (plus up to `stride - 1`
//! extra rows, which only the bias reaches).

use super::conv2d::{cpu, Conv2dDims, Conv2dSpec};
use super::Padding2d;
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// The conv2d whose input gradient this is: input `[N, OC, OH, OW]`, kernel `w`.
fn dims_of(
    x: &[usize],
    w: &[usize],
    stride: (usize, usize),
    padding: Padding2d,
    (oh, ow): (usize, usize),
) -> Result<Conv2dDims> {
    let (&[n, c, h, wd], &[wc, oc, _, _]) = (x, w) else {
        return Err(Error::shape(format!(
            "conv2d_transpose: input must be [N, C, H, W] and kernel [C, OC, KH, KW], got \
             {x:?} and {w:?}"
        )));
    };
    if wc != c {
        return Err(Error::shape(format!(
            "conv2d_transpose: input {x:?} has {c} channels but kernel {w:?} expects {wc}"
        )));
    }
    let spec = Conv2dSpec {
        stride,
        padding,
        ..Default::default()
    };
    let d = Conv2dDims::new(&[n, oc, oh, ow], w, None, &spec)
        .map_err(|e| e.context("conv2d_transpose"))?;
    if (d.oh, d.ow) != (h, wd) {
        return Err(Error::shape(format!(
            "conv2d_transpose: an output of {oh}x{ow} does not map back to the {h}x{wd} \
             input {x:?} (kernel {w:?}, stride {stride:?}, padding {padding:?})"
        )));
    }
    Ok(d)
}

/// `x [N, C, H, W]`, `w [C, OC, KH, KW]`, `b [OC]` -> `[N, OC, OH, OW]` (see the module
/// docs for how `out_hw`, `stride` and `padding` fit together).
pub fn conv2d_transpose(
    x: &Var,
    w: &Var,
    b: Option<&Var>,
    stride: (usize, usize),
    padding: Padding2d,
    out_hw: (usize, usize),
) -> Result<Var> {
    let d = dims_of(&x.shape(), &w.shape(), stride, padding, out_hw)?;
    let (n, oc, oh, ow) = (d.n, d.c, d.h, d.w);
    if let Some(b) = b {
        if b.shape() != [oc] {
            return Err(Error::shape(format!(
                "conv2d_transpose: bias {:?} does not fit kernel {:?} (expected [{oc}])",
                b.shape(),
                w.shape()
            )));
        }
    }
    let xv = x.value().contiguous_f32();
    let wv = w.value().contiguous_f32();
    let mut out = vec![0.0f32; n * oc * oh * ow]; // [N, OC, OH, OW]
    cpu::conv2d_backward_input(&mut out, xv.data(), wv.data(), &d);
    if let Some(b) = b {
        let bv = b.value().contiguous_f32();
        for img in out.chunks_exact_mut(oc * oh * ow) {
            for (plane, &bias) in img.chunks_exact_mut(oh * ow).zip(bv.data()) {
                plane.iter_mut().for_each(|v| *v += bias);
            }
        }
    }
    let need_dx = x.requires_grad();
    let need_dw = w.requires_grad();
    let has_bias = b.is_some();
    let x_saved = need_dw.then_some(xv);
    let w_saved = need_dx.then_some(wv);
    let mut parents = vec![x, w];
    parents.extend(b);
    Ok(Var::from_op(
        Tensor::from_vec(out, &[n, oc, oh, ow]),
        "conv2d_transpose",
        &parents,
        move |dy| {
            // dx = conv2d(dy, w): the forward of the conv this transposes.
            let dx = w_saved.as_ref().map(|wv| {
                let mut dx = vec![0.0f32; n * d.oc * d.oh * d.ow];
                cpu::conv2d_forward(&mut dx, dy.data(), wv.data(), None, &d);
                Tensor::from_vec(dx, &[n, d.oc, d.oh, d.ow])
            });
            // dw: the conv's weight gradient with `x` as its output gradient.
            let dw = x_saved.as_ref().map(|xv| {
                let mut dw = vec![0.0f32; d.oc * d.k()];
                cpu::conv2d_backward_weight(&mut dw, None, xv.data(), dy.data(), &d);
                Tensor::from_vec(dw, &[d.oc, d.cg(), d.kh, d.kw])
            });
            let mut grads = vec![dx, dw];
            if has_bias {
                let mut db = vec![0.0f32; oc];
                for img in dy.data().chunks_exact(oc * oh * ow) {
                    for (acc, plane) in db.iter_mut().zip(img.chunks_exact(oh * ow)) {
                        *acc += plane.iter().sum::<f32>();
                    }
                }
                grads.push(Some(Tensor::from_vec(db, &[oc])));
            }
            grads
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};
    use crate::ops::conv2d::naive;

    /// The definition: every input value scatters `x * w` into the output window.
    fn scatter_reference(
        x: &Tensor,
        w: &Tensor,
        b: &[f32],
        stride: (usize, usize),
        p: Padding2d,
        (oh, ow): (usize, usize),
    ) -> Vec<f32> {
        let &[n, c, h, wd] = x.shape() else { panic!() };
        let &[_, oc, kh, kw] = w.shape() else {
            panic!()
        };
        let mut out = vec![0.0; n * oc * oh * ow];
        for i in 0..n {
            for o in 0..oc {
                for y in 0..oh {
                    for xx in 0..ow {
                        out[((i * oc + o) * oh + y) * ow + xx] = b[o];
                    }
                }
                for ci in 0..c {
                    for iy in 0..h {
                        for ix in 0..wd {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let y = (iy * stride.0 + ky) as isize - p.top as isize;
                                    let xx = (ix * stride.1 + kx) as isize - p.left as isize;
                                    if y < 0 || xx < 0 || y >= oh as isize || xx >= ow as isize {
                                        continue;
                                    }
                                    let v = x.data()[((i * c + ci) * h + iy) * wd + ix]
                                        * w.data()[((ci * oc + o) * kh + ky) * kw + kx];
                                    out[((i * oc + o) * oh + y as usize) * ow + xx as usize] += v;
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Input shape, kernel shape, stride, padding, output size.
    type Case = (
        [usize; 4],
        [usize; 4],
        (usize, usize),
        Padding2d,
        (usize, usize),
    );

    fn cases() -> Vec<Case> {
        let same = |h: usize, w: usize, k, s| {
            let (oh, ow) = (h * s, w * s);
            (Padding2d::same((oh, ow), (k, k), (s, s), (1, 1)), (oh, ow))
        };
        let (p1, o1) = same(3, 4, 3, 2);
        let (p2, o2) = same(4, 4, 4, 2);
        vec![
            (
                [2, 3, 3, 4],
                [3, 2, 3, 3],
                (1, 1),
                Padding2d::default(),
                (5, 6),
            ),
            (
                [2, 3, 3, 4],
                [3, 2, 3, 3],
                (2, 2),
                Padding2d::default(),
                (7, 9),
            ),
            ([1, 2, 3, 4], [2, 4, 3, 3], (2, 2), p1, o1),
            ([1, 2, 4, 4], [2, 3, 4, 4], (2, 2), p2, o2),
            // kernel smaller than the stride: the last rows get only the bias.
            (
                [1, 2, 3, 3],
                [2, 2, 1, 1],
                (2, 2),
                Padding2d::default(),
                (6, 6),
            ),
        ]
    }

    #[test]
    fn matches_the_scatter_definition() {
        let mut rng = Rng::new(8);
        for (xs, ws, s, p, o) in cases() {
            let x = gradcheck::random_away_from_zero(&xs, &mut rng, 0.1);
            let w = gradcheck::random_away_from_zero(&ws, &mut rng, 0.1);
            let b = gradcheck::random_away_from_zero(&[ws[1]], &mut rng, 0.1);
            let y = conv2d_transpose(
                &Var::constant(x.clone()),
                &Var::constant(w.clone()),
                Some(&Var::constant(b.clone())),
                s,
                p,
                o,
            )
            .unwrap();
            let want = scatter_reference(&x, &w, b.data(), s, p, o);
            for (a, r) in y.value().data().iter().zip(&want) {
                assert!(
                    (a - r).abs() < 1e-4,
                    "{xs:?} {ws:?} {s:?} {p:?}: {a} vs {r}"
                );
            }
            // And the naive conv2d input gradient is the same thing.
            let d = dims_of(&xs, &ws, s, p, o).unwrap();
            let mut naive_out = vec![0.0; d.n * d.in_image()];
            naive::conv2d_backward_input_naive(&mut naive_out, x.data(), w.data(), &d);
            let plane = o.0 * o.1;
            for (i, (v, r)) in naive_out.iter().zip(&want).enumerate() {
                let bias = b.data()[(i / plane) % ws[1]];
                assert!((v + bias - r).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn gradients_check() {
        let mut rng = Rng::new(9);
        for (xs, ws, s, p, o) in cases() {
            let x = gradcheck::random_away_from_zero(&xs, &mut rng, 0.1);
            let w = gradcheck::random_away_from_zero(&ws, &mut rng, 0.1);
            let b = gradcheck::random_away_from_zero(&[ws[1]], &mut rng, 0.1);
            let r = gradcheck::check(
                |v| conv2d_transpose(&v[0], &v[1], Some(&v[2]), s, p, o).unwrap(),
                &[x, w, b],
                1e-2,
                2,
            );
            assert!(r.worst() < 1e-2, "{xs:?} {ws:?} {s:?}: {r:?}");
        }
    }

    #[test]
    fn shapes_that_do_not_fit_are_errors() {
        let x = Var::constant(Tensor::zeros(&[1, 3, 4, 4]));
        let w = Var::constant(Tensor::zeros(&[2, 5, 3, 3]));
        let e = conv2d_transpose(&x, &w, None, (1, 1), Padding2d::default(), (6, 6)).unwrap_err();
        assert!(e.to_string().contains("3 channels"), "{e}");
        let w = Var::constant(Tensor::zeros(&[3, 5, 3, 3]));
        let e = conv2d_transpose(&x, &w, None, (1, 1), Padding2d::default(), (9, 9)).unwrap_err();
        assert!(e.to_string().contains("does not map back"), "{e}");
    }
}
