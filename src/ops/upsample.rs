//! 2-D upsampling of NCHW tensors by integer factors (Keras' `UpSampling2D`).
//!
//! Dimension letters: `N` batch, `C` channels, `H`, `W` input size, `SH`, `SW` factors,
//! `OH = H*SH`, `OW = W*SW`.
//!
//! - nearest: `y[n, c, oy, ox] = x[n, c, oy / SH, ox / SW]`;
//! - bilinear with half-pixel centres (Keras 3 / TensorFlow `half_pixel_centers`,
//!   PyTorch `align_corners=False`): the source coordinate of output `o` is
//!   `max((o + 0.5) / S - 0.5, 0)`, interpolated between its floor `i0` and
//!   `min(i0 + 1, in - 1)`.
//!
//! Fast path: the per-axis source indices and weights are tabulated once per call
//! (`AxisTaps`), so the inner loops are two reads and a blend per row; `naive.rs`-style
//! reference `upsample2d_forward_naive` recomputes every coordinate from the formula.
//! Backward: each output gradient is scattered back with the same weights.

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    Nearest,
    Bilinear,
}

/// For each output position along one axis: the two source indices and the weight of
/// the second.
struct AxisTaps {
    i0: Vec<usize>,
    i1: Vec<usize>,
    w1: Vec<f32>,
}

fn source(o: usize, scale: usize, len: usize, mode: Interpolation) -> (usize, usize, f32) {
    match mode {
        Interpolation::Nearest => (o / scale, o / scale, 0.0),
        Interpolation::Bilinear => {
            let src = ((o as f32 + 0.5) / scale as f32 - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(len - 1);
            let i1 = (i0 + 1).min(len - 1);
            (i0, i1, src - i0 as f32)
        }
    }
}

impl AxisTaps {
    fn new(len: usize, scale: usize, mode: Interpolation) -> AxisTaps {
        let mut t = AxisTaps {
            i0: Vec::new(),
            i1: Vec::new(),
            w1: Vec::new(),
        };
        for o in 0..len * scale {
            let (a, b, w) = source(o, scale, len, mode);
            t.i0.push(a);
            t.i1.push(b);
            t.w1.push(w);
        }
        t
    }
}

/// `out [N*C, OH, OW]` from `inp [N*C, H, W]`.
pub fn upsample2d_forward(
    out: &mut [f32],
    inp: &[f32],
    (h, w): (usize, usize),
    (sh, sw): (usize, usize),
    mode: Interpolation,
) {
    let (ty, tx) = (AxisTaps::new(h, sh, mode), AxisTaps::new(w, sw, mode));
    let (oh, ow) = (h * sh, w * sw);
    for (plane, dst) in inp.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
        for oy in 0..oh {
            let (r0, r1, wy) = (ty.i0[oy] * w, ty.i1[oy] * w, ty.w1[oy]);
            let row = &mut dst[oy * ow..(oy + 1) * ow];
            for (ox, o) in row.iter_mut().enumerate() {
                let (c0, c1, wx) = (tx.i0[ox], tx.i1[ox], tx.w1[ox]);
                let top = plane[r0 + c0] * (1.0 - wx) + plane[r0 + c1] * wx;
                let bottom = plane[r1 + c0] * (1.0 - wx) + plane[r1 + c1] * wx;
                *o = top * (1.0 - wy) + bottom * wy;
            }
        }
    }
}

/// `dinp [N*C, H, W]` (zeroed) += the transpose of the forward applied to `dout`.
pub fn upsample2d_backward(
    dinp: &mut [f32],
    dout: &[f32],
    (h, w): (usize, usize),
    (sh, sw): (usize, usize),
    mode: Interpolation,
) {
    let (ty, tx) = (AxisTaps::new(h, sh, mode), AxisTaps::new(w, sw, mode));
    let (oh, ow) = (h * sh, w * sw);
    for (dplane, src) in dinp.chunks_exact_mut(h * w).zip(dout.chunks_exact(oh * ow)) {
        for oy in 0..oh {
            let (r0, r1, wy) = (ty.i0[oy] * w, ty.i1[oy] * w, ty.w1[oy]);
            for ox in 0..ow {
                let g = src[oy * ow + ox];
                let (c0, c1, wx) = (tx.i0[ox], tx.i1[ox], tx.w1[ox]);
                dplane[r0 + c0] += g * (1.0 - wy) * (1.0 - wx);
                dplane[r0 + c1] += g * (1.0 - wy) * wx;
                dplane[r1 + c0] += g * wy * (1.0 - wx);
                dplane[r1 + c1] += g * wy * wx;
            }
        }
    }
}

/// The reference: every output from the formula in the module docs, no tables.
pub fn upsample2d_forward_naive(
    inp: &[f32],
    (h, w): (usize, usize),
    (sh, sw): (usize, usize),
    mode: Interpolation,
) -> Vec<f32> {
    let (oh, ow) = (h * sh, w * sw);
    let planes = inp.len() / (h * w);
    let mut out = vec![0.0; planes * oh * ow];
    for p in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let (y0, y1, wy) = source(oy, sh, h, mode);
                let (x0, x1, wx) = source(ox, sw, w, mode);
                let at = |y: usize, x: usize| inp[p * h * w + y * w + x];
                out[p * oh * ow + oy * ow + ox] = (1.0 - wy) * (1.0 - wx) * at(y0, x0)
                    + (1.0 - wy) * wx * at(y0, x1)
                    + wy * (1.0 - wx) * at(y1, x0)
                    + wy * wx * at(y1, x1);
            }
        }
    }
    out
}

/// `x [N, C, H, W] -> [N, C, H*SH, W*SW]`.
pub fn upsample2d(x: &Var, size: (usize, usize), mode: Interpolation) -> Result<Var> {
    let shape = x.shape();
    let &[n, c, h, w] = &shape[..] else {
        return Err(Error::shape(format!(
            "upsample2d: input must be 4-D [N, C, H, W], got {shape:?}"
        )));
    };
    if size.0 == 0 || size.1 == 0 || h == 0 || w == 0 {
        return Err(Error::invalid(format!(
            "upsample2d: size {size:?} and the input's planes ({shape:?}) must be non-empty"
        )));
    }
    let (oh, ow) = (h * size.0, w * size.1);
    let mut out = vec![0.0f32; n * c * oh * ow];
    upsample2d_forward(
        &mut out,
        x.value().contiguous_f32().data(),
        (h, w),
        size,
        mode,
    );
    Ok(Var::from_op(
        Tensor::from_vec(out, &[n, c, oh, ow]),
        "upsample2d",
        &[x],
        move |dy| {
            let mut dx = vec![0.0f32; n * c * h * w];
            upsample2d_backward(&mut dx, dy.data(), (h, w), size, mode);
            vec![Some(Tensor::from_vec(dx, &[n, c, h, w]))]
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    #[test]
    fn fast_matches_naive_and_nearest_repeats() {
        let mut rng = Rng::new(4);
        for mode in [Interpolation::Nearest, Interpolation::Bilinear] {
            for &(h, w, sh, sw) in &[(3, 5, 2, 2), (4, 1, 3, 2), (1, 1, 2, 3), (5, 4, 1, 4)] {
                let x = gradcheck::random_away_from_zero(&[2, 3, h, w], &mut rng, 0.1);
                let mut out = vec![0.0; 6 * h * sh * w * sw];
                upsample2d_forward(&mut out, x.data(), (h, w), (sh, sw), mode);
                let want = upsample2d_forward_naive(x.data(), (h, w), (sh, sw), mode);
                for (a, b) in out.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-6, "{mode:?} {h}x{w} by {sh}x{sw}");
                }
            }
        }
        let x = Var::constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]));
        let y = upsample2d(&x, (2, 2), Interpolation::Nearest).unwrap();
        assert_eq!(
            y.value().data(),
            [1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]
        );
        // Bilinear, half-pixel: 1-D [1, 2] by 2 is [1, 1.25, 1.75, 2].
        let x = Var::constant(Tensor::from_vec(vec![1.0, 2.0], &[1, 1, 1, 2]));
        let y = upsample2d(&x, (1, 2), Interpolation::Bilinear).unwrap();
        assert_eq!(y.value().data(), [1.0, 1.25, 1.75, 2.0]);
    }

    #[test]
    fn gradients_check() {
        let mut rng = Rng::new(5);
        for mode in [Interpolation::Nearest, Interpolation::Bilinear] {
            let x = gradcheck::random_away_from_zero(&[2, 2, 3, 4], &mut rng, 0.1);
            let r = gradcheck::check(|v| upsample2d(&v[0], (2, 3), mode).unwrap(), &[x], 1e-2, 1);
            assert!(r.worst() < 1e-2, "{mode:?}: {r:?}");
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = Var::constant(Tensor::zeros(&[2, 3, 4]));
        let e = upsample2d(&x, (2, 2), Interpolation::Nearest).unwrap_err();
        assert!(e.to_string().contains("[2, 3, 4]"), "{e}");
    }
}
