//! Max and average pooling on NCHW tensors, and their global forms.
//!
//! Dims: `N` batch, `C` channels, `H, W` input height and width, `KH, KW` window,
//! `SH, SW` stride, `OH, OW` output height and width, `P = N * C` planes. Every kernel
//! works plane by plane; planes are independent and split across threads.
//!
//! Any window and stride are supported, including overlapping windows (stride < kernel)
//! and kernel != stride, with zero padding on each side given separately (TensorFlow's
//! asymmetric "same" comes from `Padding2d::same`). Padded cells never win a max and are
//! not counted in a mean (Keras/TensorFlow semantics), so each side's padding must be
//! smaller than the window, or a window could hold only padding.
//!
//! Max pooling records, in the same pass as the forward, the index of each window's
//! winner (first maximum in row-major order; a NaN wins so it propagates). The backward
//! scatters each output gradient to exactly that one input, so the gradient does not
//! depend on how ties are re-resolved, and overlapping windows accumulate.
//!
//! Files: `cpu.rs` holds the fast kernels, `naive.rs` the reference loops they are tested
//! against (the tests are at the bottom of this file).
//!
//! Fast paths (see `cpu.rs`):
//! - 2x2 window, stride 2, no padding (the MNIST nets' pool), max and avg forward;
//!   max-pool forward + backward on `[64, 32, 26, 26]` runs in about 0.5 ms on 2 cores
//!   (`bench_max_pool_2x2`).
//! - backward kernels scatter into one L1-resident plane at a time.
//! - parallel over planes when a call has enough work.
//!
//! ```
//! use nabla::ops::{pool::{max_pool2d, Pool2dSpec}, Padding2d};
//! use nabla::{Tensor, Var};
//!
//! let x = Var::parameter(Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4]));
//! let spec = Pool2dSpec { kernel: (2, 2), stride: (2, 2), padding: Padding2d::default() };
//! let y = max_pool2d(&x, &spec).unwrap(); // [1, 1, 2, 2]
//! assert_eq!(y.value().data(), &[5.0, 7.0, 13.0, 15.0]);
//! ```

pub mod cpu;
pub mod naive;

use super::{window_out_len, Padding2d};
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// Window geometry of a pooling op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dSpec {
    /// Window size `(KH, KW)`.
    pub kernel: (usize, usize),
    /// Step between windows `(SH, SW)`; smaller than the kernel means overlapping windows.
    pub stride: (usize, usize),
    /// Zero padding per side; padded cells never win a max and do not count in a mean.
    pub padding: Padding2d,
}

/// Everything a pooling kernel needs to know about the shapes, computed once at the op
/// boundary. The bottom and right padding are implied by `OH` and `OW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dDims {
    pub planes: usize, // N * C
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Pool2dDims {
    /// Validates an NCHW `shape` against `spec` for the op named `op`; returns the dims
    /// and the output shape `[N, C, OH, OW]`.
    pub fn new(shape: &[usize], spec: &Pool2dSpec, op: &str) -> Result<(Pool2dDims, Vec<usize>)> {
        let &[n, c, h, w] = shape else {
            return Err(Error::shape(format!(
                "{op}: expected a 4-D NCHW input [N, C, H, W], got {shape:?}"
            )));
        };
        let (kh, kw) = spec.kernel;
        let (sh, sw) = spec.stride;
        let p = spec.padding;
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return Err(Error::shape(format!(
                "{op}: kernel {:?} and stride {:?} must be positive",
                spec.kernel, spec.stride
            )));
        }
        if p.top >= kh || p.bottom >= kh || p.left >= kw || p.right >= kw {
            return Err(Error::shape(format!(
                "{op}: padding {p:?} must be smaller than the kernel {:?} on every side \
                 (a window would hold only padding)",
                spec.kernel
            )));
        }
        if h == 0 || w == 0 {
            return Err(Error::shape(format!(
                "{op}: input {shape:?} has an empty spatial axis"
            )));
        }
        let (Some(oh), Some(ow)) = (
            window_out_len(h, p.top, p.bottom, kh, sh, 1),
            window_out_len(w, p.left, p.right, kw, sw, 1),
        ) else {
            return Err(Error::shape(format!(
                "{op}: kernel {:?} does not fit input {shape:?} with padding {p:?}",
                spec.kernel
            )));
        };
        // Argmax indices are stored as u32 within a plane.
        if h.checked_mul(w).is_none_or(|hw| hw > u32::MAX as usize) {
            return Err(Error::shape(format!(
                "{op}: a {h}x{w} plane is too large (at most 2^32 cells)"
            )));
        }
        let dims = Pool2dDims {
            planes: n * c,
            h,
            w,
            kh,
            kw,
            sh,
            sw,
            pad_top: p.top,
            pad_left: p.left,
            oh,
            ow,
        };
        Ok((dims, vec![n, c, oh, ow]))
    }

    /// The hot case with its own kernel: 2x2 window, stride 2, and no window that reaches
    /// into padding (no top/left padding, and bottom/right padding, if any, unused).
    pub fn is_2x2_s2_unpadded(&self) -> bool {
        self.kh == 2
            && self.kw == 2
            && self.sh == 2
            && self.sw == 2
            && self.pad_top == 0
            && self.pad_left == 0
            && 2 * self.oh <= self.h
            && 2 * self.ow <= self.w
    }
}

/// `[N, C, H, W] -> [N, C, OH, OW]`, the max of each window (padding never wins).
pub fn max_pool2d(x: &Var, spec: &Pool2dSpec) -> Result<Var> {
    let in_shape = x.shape();
    let (d, out_shape) = Pool2dDims::new(&in_shape, spec, "max_pool2d")?;
    let n_out = d.planes * d.oh * d.ow;
    let mut out = vec![0.0f32; n_out]; // [N, C, OH, OW]
    let kinks = crate::engine::kinks::active();
    let backward = kinks || (crate::engine::is_grad_enabled() && x.requires_grad());
    if !backward {
        // No backward will run: the values alone.
        cpu::max_pool2d_forward_values(&mut out, x.value().contiguous_f32().data(), &d);
        return Ok(Var::constant(Tensor::from_vec(out, &out_shape)));
    }
    let mut argmax = vec![0u32; n_out]; // [N, C, OH, OW], index within the input plane
    cpu::max_pool2d_forward(&mut out, &mut argmax, x.value().contiguous_f32().data(), &d);
    if kinks {
        // Gradient checking: reuse the recorded winners (see engine::kinks).
        let (chosen, changed) = crate::engine::kinks::choose(argmax);
        argmax = chosen;
        if changed {
            let xv = x.value().contiguous_f32();
            let (plane_out, plane_in) = (d.oh * d.ow, d.h * d.w);
            for (i, o) in out.iter_mut().enumerate() {
                *o = xv.data()[(i / plane_out) * plane_in + argmax[i] as usize];
            }
        }
    }
    Ok(Var::from_op(
        Tensor::from_vec(out, &out_shape),
        "max_pool2d",
        &[x],
        move |dy| {
            let mut dx = vec![0.0f32; d.planes * d.h * d.w];
            cpu::max_pool2d_backward(&mut dx, dy.data(), &argmax, &d);
            vec![Some(Tensor::from_vec(dx, &in_shape))]
        },
    ))
}

/// `[N, C, H, W] -> [N, C, OH, OW]`, the mean of each window over its real (unpadded)
/// cells, as Keras/TensorFlow count them.
pub fn avg_pool2d(x: &Var, spec: &Pool2dSpec) -> Result<Var> {
    let in_shape = x.shape();
    let (d, out_shape) = Pool2dDims::new(&in_shape, spec, "avg_pool2d")?;
    let mut out = vec![0.0f32; d.planes * d.oh * d.ow]; // [N, C, OH, OW]
    cpu::avg_pool2d_forward(&mut out, x.value().contiguous_f32().data(), &d);
    Ok(Var::from_op(
        Tensor::from_vec(out, &out_shape),
        "avg_pool2d",
        &[x],
        move |dy| {
            let mut dx = vec![0.0f32; d.planes * d.h * d.w];
            cpu::avg_pool2d_backward(&mut dx, dy.data(), &d);
            vec![Some(Tensor::from_vec(dx, &in_shape))]
        },
    ))
}

/// `(N, C, H * W)` of an NCHW input of a global pool with non-empty planes.
fn global_dims(shape: &[usize], op: &str) -> Result<(usize, usize, usize)> {
    match *shape {
        [n, c, h, w] if h > 0 && w > 0 && h * w <= u32::MAX as usize => Ok((n, c, h * w)),
        [_, _, _, _] => Err(Error::shape(format!(
            "{op}: input {shape:?} needs non-empty planes of at most 2^32 cells"
        ))),
        _ => Err(Error::shape(format!(
            "{op}: expected a 4-D NCHW input [N, C, H, W], got {shape:?}"
        ))),
    }
}

/// `[N, C, H, W] -> [N, C]`.
pub fn global_avg_pool2d(x: &Var) -> Result<Var> {
    let in_shape = x.shape();
    let (n, c, hw) = global_dims(&in_shape, "global_avg_pool2d")?;
    let mut out = vec![0.0f32; n * c]; // [N, C]
    cpu::global_avg_pool_forward(&mut out, x.value().contiguous_f32().data(), hw);
    Ok(Var::from_op(
        Tensor::from_vec(out, &[n, c]),
        "global_avg_pool2d",
        &[x],
        move |dy| {
            let mut dx = vec![0.0f32; n * c * hw];
            cpu::global_avg_pool_backward(&mut dx, dy.data(), hw);
            vec![Some(Tensor::from_vec(dx, &in_shape))]
        },
    ))
}

/// `[N, C, H, W] -> [N, C]`.
pub fn global_max_pool2d(x: &Var) -> Result<Var> {
    let in_shape = x.shape();
    let (n, c, hw) = global_dims(&in_shape, "global_max_pool2d")?;
    let mut out = vec![0.0f32; n * c]; // [N, C]
    let mut argmax = vec![0u32; n * c]; // [N, C], index within the plane
    cpu::global_max_pool_forward(&mut out, &mut argmax, x.value().contiguous_f32().data(), hw);
    if crate::engine::kinks::active() {
        let (chosen, changed) = crate::engine::kinks::choose(argmax);
        argmax = chosen;
        if changed {
            let xv = x.value().contiguous_f32();
            for (i, o) in out.iter_mut().enumerate() {
                *o = xv.data()[i * hw + argmax[i] as usize];
            }
        }
    }
    Ok(Var::from_op(
        Tensor::from_vec(out, &[n, c]),
        "global_max_pool2d",
        &[x],
        move |dy| {
            let mut dx = vec![0.0f32; n * c * hw];
            cpu::global_max_pool_backward(&mut dx, dy.data(), &argmax, hw);
            vec![Some(Tensor::from_vec(dx, &in_shape))]
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    fn spec(kernel: (usize, usize), stride: (usize, usize), padding: Padding2d) -> Pool2dSpec {
        Pool2dSpec {
            kernel,
            stride,
            padding,
        }
    }

    fn same(hw: (usize, usize), kernel: (usize, usize), stride: (usize, usize)) -> Pool2dSpec {
        spec(kernel, stride, Padding2d::same(hw, kernel, stride, (1, 1)))
    }

    fn valid(kernel: (usize, usize), stride: (usize, usize)) -> Pool2dSpec {
        spec(kernel, stride, Padding2d::default())
    }

    /// Values on a coarse grid (multiples of 1/4 in [-2, 2]) so max windows often tie,
    /// which exercises the first-max rule against the reference.
    fn tie_prone(shape: &[usize], rng: &mut Rng) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(
            (0..n)
                .map(|_| (rng.uniform_range(-8.0, 8.0).round()) * 0.25)
                .collect(),
            shape,
        )
    }

    fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(
            (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect(),
            shape,
        )
    }

    /// Distinct values spaced 0.1 apart (a shuffled 0..n), so no window has a tie within
    /// reach of the finite-difference step and the max is differentiable.
    fn distinct(shape: &[usize], rng: &mut Rng) -> Tensor {
        let n: usize = shape.iter().product();
        let mut v: Vec<f32> = (0..n).map(|i| i as f32 * 0.1 - n as f32 * 0.05).collect();
        rng.shuffle(&mut v);
        Tensor::from_vec(v, shape)
    }

    fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "{what}: element {i}: {x} vs {y}"
            );
        }
    }

    /// Shapes and windows the fast kernels are compared with the references on.
    fn cases() -> Vec<(&'static str, [usize; 4], Pool2dSpec)> {
        vec![
            (
                "2x2 s2 even (hot path)",
                [5, 3, 8, 6],
                valid((2, 2), (2, 2)),
            ),
            (
                "2x2 s2 odd (drops last row/col)",
                [1, 2, 7, 9],
                valid((2, 2), (2, 2)),
            ),
            (
                "2x2 s2 big (parallel)",
                [4, 32, 26, 26],
                valid((2, 2), (2, 2)),
            ),
            (
                "2x2 s2 OW = 9 (row tail)",
                [2, 3, 6, 18],
                valid((2, 2), (2, 2)),
            ),
            (
                "2x2 s2 OW = 35 (two full vectors and a tail)",
                [2, 3, 6, 70],
                valid((2, 2), (2, 2)),
            ),
            (
                "2x2 s2 OW = 20, odd H and W",
                [1, 2, 5, 41],
                valid((2, 2), (2, 2)),
            ),
            (
                "3x3 s2 overlapping, odd",
                [5, 2, 9, 7],
                valid((3, 3), (2, 2)),
            ),
            ("3x3 s1 overlapping", [1, 3, 6, 5], valid((3, 3), (1, 1))),
            ("2x2 s1 overlapping", [2, 2, 5, 5], valid((2, 2), (1, 1))),
            ("3x3 s3 odd", [1, 1, 10, 11], valid((3, 3), (3, 3))),
            (
                "3x3 s3 wide (chunks, stride not 1 or 2)",
                [1, 2, 5, 40],
                valid((3, 3), (3, 3)),
            ),
            (
                "same 5x5 s1 wide (pad 2, chunks)",
                [2, 2, 6, 30],
                same((6, 30), (5, 5), (1, 1)),
            ),
            ("kernel < stride", [2, 2, 9, 9], valid((2, 2), (3, 3))),
            (
                "non-square kernel and stride",
                [5, 2, 7, 10],
                valid((2, 3), (1, 2)),
            ),
            (
                "same 2x2 s2 odd (pad bottom/right)",
                [5, 2, 7, 5],
                same((7, 5), (2, 2), (2, 2)),
            ),
            (
                "same 3x3 s2 even (pad 0/1)",
                [1, 2, 8, 6],
                same((8, 6), (3, 3), (2, 2)),
            ),
            ("same 3x3 s1", [2, 3, 5, 4], same((5, 4), (3, 3), (1, 1))),
            (
                "same 3x3 s1, inception's pool (parallel)",
                [3, 5, 28, 28],
                same((28, 28), (3, 3), (1, 1)),
            ),
            (
                "same 3x3 s2, inception's pool3 (parallel)",
                [3, 5, 28, 27],
                same((28, 27), (3, 3), (2, 2)),
            ),
            (
                "window wider than the plane",
                [2, 1, 3, 1],
                same((3, 1), (3, 3), (1, 1)),
            ),
            (
                "same 4x4 s1 (pad 1/2)",
                [1, 2, 6, 7],
                same((6, 7), (4, 4), (1, 1)),
            ),
            (
                "same 2x3 s(2,1)",
                [5, 1, 5, 6],
                same((5, 6), (2, 3), (2, 1)),
            ),
            (
                "explicit asymmetric padding",
                [2, 1, 6, 6],
                spec(
                    (3, 3),
                    (2, 2),
                    Padding2d {
                        top: 2,
                        bottom: 0,
                        left: 0,
                        right: 1,
                    },
                ),
            ),
            ("1x1 window", [2, 2, 3, 3], valid((1, 1), (1, 1))),
            ("window = plane", [2, 3, 4, 5], valid((4, 5), (1, 1))),
        ]
    }

    #[test]
    fn max_pool_fast_matches_naive() {
        let mut rng = Rng::new(11);
        for (name, shape, sp) in cases() {
            let (d, out_shape) = Pool2dDims::new(&shape, &sp, "test").unwrap();
            let x = tie_prone(&shape, &mut rng);
            let xv = Var::parameter(x.clone());
            let y = max_pool2d(&xv, &sp).unwrap();
            assert_eq!(y.shape(), out_shape, "{name}");
            // Max selects an input value: the result must be exactly the reference's.
            assert_eq!(
                y.value().data(),
                naive::max_pool2d_forward(x.data(), &d).as_slice(),
                "{name}: forward"
            );
            let dy = random(&out_shape, &mut rng);
            y.backward_with(dy.clone());
            // Same winners, same accumulation order: exact.
            let want = naive::max_pool2d_backward(x.data(), dy.data(), &d);
            assert_eq!(
                xv.grad().unwrap().data(),
                want.as_slice(),
                "{name}: backward"
            );
        }
    }

    #[test]
    fn avg_pool_fast_matches_naive() {
        let mut rng = Rng::new(12);
        for (name, shape, sp) in cases() {
            let (d, out_shape) = Pool2dDims::new(&shape, &sp, "test").unwrap();
            let x = random(&shape, &mut rng);
            let xv = Var::parameter(x.clone());
            let y = avg_pool2d(&xv, &sp).unwrap();
            assert_eq!(y.shape(), out_shape, "{name}");
            let want = naive::avg_pool2d_forward(x.data(), &d);
            assert_close(y.value().data(), &want, 1e-6, name);
            let dy = random(&out_shape, &mut rng);
            y.backward_with(dy.clone());
            let want = naive::avg_pool2d_backward(dy.data(), &d);
            assert_close(xv.grad().unwrap().data(), &want, 1e-6, name);
        }
    }

    #[test]
    fn global_pools_match_full_window_reference() {
        let mut rng = Rng::new(13);
        for shape in [[1, 1, 1, 1], [5, 3, 7, 7], [2, 4, 3, 5], [8, 64, 9, 9]] {
            let whole = valid((shape[2], shape[3]), (1, 1));
            let (d, _) = Pool2dDims::new(&shape, &whole, "test").unwrap();
            let (n, c) = (shape[0], shape[1]);
            let dy = random(&[n, c], &mut rng);

            let x = tie_prone(&shape, &mut rng);
            let xv = Var::parameter(x.clone());
            let y = global_max_pool2d(&xv).unwrap();
            assert_eq!(y.shape(), vec![n, c]);
            assert_eq!(y.value().data(), naive::max_pool2d_forward(x.data(), &d));
            y.backward_with(dy.clone());
            let want = naive::max_pool2d_backward(x.data(), dy.data(), &d);
            assert_eq!(xv.grad().unwrap().data(), want.as_slice());

            let x = random(&shape, &mut rng);
            let xv = Var::parameter(x.clone());
            let y = global_avg_pool2d(&xv).unwrap();
            assert_eq!(y.shape(), vec![n, c]);
            let want = naive::avg_pool2d_forward(x.data(), &d);
            assert_close(y.value().data(), &want, 1e-6, "global avg");
            y.backward_with(dy.clone());
            let want = naive::avg_pool2d_backward(dy.data(), &d);
            assert_close(xv.grad().unwrap().data(), &want, 1e-6, "global avg grad");
        }
    }

    #[test]
    fn max_pool_ties_padding_and_nan() {
        // All-negative input with "same" padding: a zero pad would win if it were read.
        let x = Tensor::from_vec(vec![-4., -3., -2., -1.], &[1, 1, 2, 2]);
        let sp = spec((3, 3), (1, 1), Padding2d::uniform(1));
        let xv = Var::parameter(x);
        let y = max_pool2d(&xv, &sp).unwrap();
        assert_eq!(y.value().data(), &[-1., -1., -1., -1.]);
        y.backward();
        assert_eq!(xv.grad().unwrap().data(), &[0., 0., 0., 4.]);

        // A 2x2 window of equal values: the gradient goes to the first one only.
        for sp in [valid((2, 2), (2, 2)), valid((2, 2), (1, 1))] {
            let xv = Var::parameter(Tensor::ones(&[1, 1, 2, 2]));
            max_pool2d(&xv, &sp).unwrap().backward();
            assert_eq!(xv.grad().unwrap().data(), &[1., 0., 0., 0.], "{sp:?}");
        }

        // A NaN propagates (on both the fast and the general path).
        for sp in [valid((2, 2), (2, 2)), valid((3, 3), (1, 1))] {
            let mut v = vec![1.0f32; 9];
            v[4] = f32::NAN;
            let x = Var::constant(Tensor::from_vec(v, &[1, 1, 3, 3]));
            let y = max_pool2d(&x, &sp).unwrap();
            assert!(y.value().data()[0].is_nan(), "{sp:?}");
        }

        // All -inf: every window's first real cell wins, padding or not.
        for sp in [
            valid((2, 2), (2, 2)),
            valid((3, 3), (1, 1)),
            same((3, 3), (3, 3), (1, 1)),
            same((3, 3), (3, 3), (2, 2)),
        ] {
            let x = Tensor::from_vec(vec![f32::NEG_INFINITY; 9], &[1, 1, 3, 3]);
            let (d, _) = Pool2dDims::new(&[1, 1, 3, 3], &sp, "test").unwrap();
            let xv = Var::parameter(x.clone());
            let y = max_pool2d(&xv, &sp).unwrap();
            let dy = Tensor::ones(&y.shape());
            y.backward_with(dy.clone());
            let want = naive::max_pool2d_backward(x.data(), dy.data(), &d);
            assert_eq!(xv.grad().unwrap().data(), want.as_slice(), "{sp:?}");
        }
    }

    #[test]
    fn avg_pool_same_padding_counts_only_real_cells() {
        // TensorFlow: AveragePooling2D(3, strides=1, padding="same") over ones is all ones.
        let y = avg_pool2d(
            &Var::constant(Tensor::ones(&[1, 1, 3, 4])),
            &same((3, 4), (3, 3), (1, 1)),
        )
        .unwrap();
        assert_eq!(y.value().data(), &[1.0; 12]);
        // Corner window of 0..9 in 3x3 covers 0, 1, 3, 4: mean 2.
        let x = Tensor::from_vec((0..9).map(|v| v as f32).collect(), &[1, 1, 3, 3]);
        let y = avg_pool2d(&Var::constant(x), &same((3, 3), (3, 3), (1, 1))).unwrap();
        assert_eq!(y.value().data()[0], 2.0);
        assert_eq!(y.value().data()[4], 4.0);
    }

    #[test]
    fn overlapping_windows_accumulate_gradient() {
        // The centre of a 3x3 plane is the max of all four 2x2 stride-1 windows.
        let mut v = vec![0.0f32; 9];
        v[4] = 5.0;
        let xv = Var::parameter(Tensor::from_vec(v, &[1, 1, 3, 3]));
        let y = max_pool2d(&xv, &valid((2, 2), (1, 1))).unwrap();
        y.backward_with(Tensor::from_vec(vec![1., 2., 3., 4.], &[1, 1, 2, 2]));
        assert_eq!(xv.grad().unwrap().data()[4], 10.0);
        assert_eq!(xv.grad().unwrap().sum(), 10.0);
    }

    #[test]
    fn pool_gradchecks() {
        let mut rng = Rng::new(14);
        let specs = [
            ("2x2 s2", [2, 2, 6, 6], valid((2, 2), (2, 2))),
            ("3x3 s2", [1, 2, 7, 7], valid((3, 3), (2, 2))),
            ("3x3 s1", [2, 1, 5, 4], valid((3, 3), (1, 1))),
            ("2x3 s(1,2)", [1, 2, 5, 7], valid((2, 3), (1, 2))),
            (
                "same 2x2 s2 odd",
                [1, 2, 5, 5],
                same((5, 5), (2, 2), (2, 2)),
            ),
            (
                "same 3x3 s2 even",
                [2, 1, 6, 4],
                same((6, 4), (3, 3), (2, 2)),
            ),
        ];
        for (name, shape, sp) in specs {
            let x = distinct(&shape, &mut rng);
            let r = gradcheck::check(
                |v| max_pool2d(&v[0], &sp).unwrap(),
                &[x],
                gradcheck::DEFAULT_STEP,
                3,
            );
            assert!(
                r.worst() < gradcheck::DEFAULT_TOLERANCE,
                "max {name}: {r:?}"
            );
            assert!(r.grad_scale[0] > 0.0, "max {name}: zero gradient");

            let x = random(&shape, &mut rng);
            let r = gradcheck::check(
                |v| avg_pool2d(&v[0], &sp).unwrap(),
                &[x],
                gradcheck::DEFAULT_STEP,
                4,
            );
            assert!(
                r.worst() < gradcheck::DEFAULT_TOLERANCE,
                "avg {name}: {r:?}"
            );
            assert!(r.grad_scale[0] > 0.0, "avg {name}: zero gradient");
        }

        let x = distinct(&[2, 3, 4, 5], &mut rng);
        let r = gradcheck::check(
            |v| global_max_pool2d(&v[0]).unwrap(),
            std::slice::from_ref(&x),
            gradcheck::DEFAULT_STEP,
            5,
        );
        assert!(
            r.worst() < gradcheck::DEFAULT_TOLERANCE,
            "global max: {r:?}"
        );
        assert!(r.grad_scale[0] > 0.0);
        let r = gradcheck::check(
            |v| global_avg_pool2d(&v[0]).unwrap(),
            &[x],
            gradcheck::DEFAULT_STEP,
            6,
        );
        assert!(
            r.worst() < gradcheck::DEFAULT_TOLERANCE,
            "global avg: {r:?}"
        );
        assert!(r.grad_scale[0] > 0.0);
    }

    #[test]
    fn shape_errors_are_errors() {
        let x3 = Var::constant(Tensor::zeros(&[1, 4, 4]));
        let x4 = Var::constant(Tensor::zeros(&[1, 1, 4, 4]));
        let e = max_pool2d(&x3, &valid((2, 2), (2, 2))).unwrap_err();
        assert!(e.to_string().contains("max_pool2d") && e.to_string().contains("[1, 4, 4]"));
        assert!(avg_pool2d(&x4, &valid((0, 2), (2, 2))).is_err());
        assert!(avg_pool2d(&x4, &valid((2, 2), (2, 0))).is_err());
        let e = max_pool2d(&x4, &valid((5, 2), (1, 1))).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        let e = max_pool2d(&x4, &spec((2, 2), (1, 1), Padding2d::uniform(2))).unwrap_err();
        assert!(e.to_string().contains("padding"), "{e}");
        assert!(global_avg_pool2d(&x3).is_err());
        assert!(global_max_pool2d(&Var::constant(Tensor::zeros(&[1, 1, 0, 3]))).is_err());
    }

    /// The inference path (no winners recorded) and the training path, on pools of 1 and
    /// 3 threads, against the reference: exact.
    #[test]
    fn max_pool_inference_and_threads_match_naive() {
        let mut rng = Rng::new(17);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                for (name, shape, sp) in cases() {
                    let (d, _) = Pool2dDims::new(&shape, &sp, "test").unwrap();
                    let x = tie_prone(&shape, &mut rng);
                    let want = naive::max_pool2d_forward(x.data(), &d);
                    let y = max_pool2d(&Var::constant(x.clone()), &sp).unwrap();
                    assert_eq!(y.value().data(), want.as_slice(), "{name}: constant");
                    let xv = Var::parameter(x.clone());
                    let y = {
                        let _g = crate::engine::no_grad();
                        max_pool2d(&xv, &sp).unwrap()
                    };
                    assert!(!y.requires_grad(), "{name}");
                    assert_eq!(y.value().data(), want.as_slice(), "{name}: no_grad");
                    let y = max_pool2d(&xv, &sp).unwrap();
                    assert_eq!(y.value().data(), want.as_slice(), "{name}: training");
                    let dy = random(&y.shape(), &mut rng);
                    y.backward_with(dy.clone());
                    let want = naive::max_pool2d_backward(x.data(), dy.data(), &d);
                    assert_eq!(xv.grad().unwrap().data(), want.as_slice(), "{name}: dx");
                }
            });
        }
    }

    #[test]
    fn pooling_is_deterministic() {
        let mut rng = Rng::new(15);
        let x = random(&[8, 32, 26, 26], &mut rng);
        let dy = random(&[8, 32, 13, 13], &mut rng);
        let dy_s1 = random(&[8, 32, 24, 24], &mut rng);
        let run = |sp: &Pool2dSpec, dy: &Tensor, max: bool| {
            let xv = Var::parameter(x.clone());
            let y = if max {
                max_pool2d(&xv, sp)
            } else {
                avg_pool2d(&xv, sp)
            }
            .unwrap();
            let out = y.value();
            y.backward_with(dy.clone());
            (out.into_vec(), xv.grad().unwrap().into_vec())
        };
        for max in [true, false] {
            let sp = valid((2, 2), (2, 2));
            assert_eq!(run(&sp, &dy, max), run(&sp, &dy, max));
            let sp = valid((3, 3), (1, 1));
            assert_eq!(run(&sp, &dy_s1, max), run(&sp, &dy_s1, max));
        }
    }

    /// Timing of the MNIST hot case (2x2 stride 2) and inception-mini's "same" 3x3 pools
    /// (stride 1 and 2). Run with
    /// `cargo test --release --lib bench_max_pool -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_max_pool() {
        let mut rng = Rng::new(16);
        let s2 = || valid((2, 2), (2, 2));
        for (shape, sp) in [
            ([64, 32, 26, 26], s2()),
            ([100, 30, 24, 24], s2()),
            ([100, 16, 28, 28], s2()),
            ([100, 32, 16, 16], s2()),
            ([128, 64, 28, 28], same((28, 28), (3, 3), (1, 1))),
            ([128, 120, 28, 28], same((28, 28), (3, 3), (2, 2))),
            ([128, 120, 14, 14], same((14, 14), (3, 3), (1, 1))),
            ([128, 128, 14, 14], same((14, 14), (3, 3), (2, 2))),
            ([128, 128, 7, 7], same((7, 7), (3, 3), (1, 1))),
        ] {
            let x = random(&shape, &mut rng);
            let (d, out_shape) = Pool2dDims::new(&shape, &sp, "bench").unwrap();
            let dy = random(&out_shape, &mut rng);
            let reps = 50;
            let (mut fwd, mut bwd) = (f64::MAX, f64::MAX);
            for _ in 0..reps {
                let xv = Var::parameter(x.clone());
                let t = std::time::Instant::now();
                let y = max_pool2d(&xv, &sp).unwrap();
                fwd = fwd.min(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                y.backward_with(dy.clone());
                bwd = bwd.min(t.elapsed().as_secs_f64());
            }
            // The kernels alone, on buffers allocated once (no page faults).
            let mut out = vec![0.0f32; dy.numel()];
            let mut arg = vec![0u32; dy.numel()];
            let mut dx = vec![0.0f32; x.numel()];
            let (mut kf, mut kb) = (f64::MAX, f64::MAX);
            for _ in 0..reps {
                let t = std::time::Instant::now();
                cpu::max_pool2d_forward(&mut out, &mut arg, x.data(), &d);
                kf = kf.min(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                cpu::max_pool2d_backward(&mut dx, dy.data(), &arg, &d);
                kb = kb.min(t.elapsed().as_secs_f64());
            }
            println!(
                "max_pool2d {:?} s{:?} {shape:?} ({} threads, best of {reps}): op forward {:.3} ms, \
                 op backward {:.3} ms; kernels alone {:.3} ms + {:.3} ms",
                sp.kernel,
                sp.stride,
                crate::ops::parallel::num_threads(),
                fwd * 1e3,
                bwd * 1e3,
                kf * 1e3,
                kb * 1e3,
            );
        }
    }
}
