//! 2-D convolution (cross-correlation, as every framework computes it) on NCHW tensors,
//! forward and backward, with stride, asymmetric zero padding, dilation and groups.
//!
//! Dimension letters, used in every file of this folder:
//! - `N` batch, `C` input channels, `H`, `W` input height and width;
//! - `OC` output channels, `KH`, `KW` kernel height and width, `OH`, `OW` output size;
//! - `G` groups: group `g` maps input channels `g*CG..(g+1)*CG` (`CG = C/G`) to output
//!   channels `g*OCG..(g+1)*OCG` (`OCG = OC/G`); depthwise is `G = C`;
//! - `K = CG*KH*KW` rows of a group's column matrix, `P = OH*OW` output positions.
//!
//! Shapes: `x [N, C, H, W]`, `w [OC, CG, KH, KW]`, `b [OC]` -> `y [N, OC, OH, OW]` where
//! `OH = (H + pad_top + pad_bottom - ((KH - 1)*dil_h + 1)) / stride_h + 1`, likewise `OW`,
//! and `y[n, o, oy, ox] = b[o] + sum_{ci, ki, kj} w[o, ci, ki, kj] *
//! x[n, g*CG + ci, oy*stride_h + ki*dil_h - pad_top, ox*stride_w + kj*dil_w - pad_left]`
//! (zero outside the input).
//!
//! Files: `cpu.rs` the fast kernels and the choice among them (`direct.rs`,
//! `direct_strided.rs`, `winograd.rs`, `winograd4.rs`, `winograd_weight.rs`, with `channels_last.rs` their
//! shared copies and GEMM), `naive.rs` the direct-loop reference they are tested
//! against (and the readable spec), `tests.rs`. Fast paths (details in `cpu.rs`):
//! - im2col + GEMM with several images per GEMM, so small feature maps do not make
//!   skinny GEMMs;
//! - 1x1 stride-1 unpadded convs: no im2col, no col2im, one GEMM per image and group;
//! - strided convs with 2x2+ kernels (resnet's 3x3 stride-2 ones): the same direct
//!   kernels on the input split by stride phase (`direct.rs`, `Phases`), the input
//!   gradient one stride-1 direct conv per phase of `dx` (`direct_strided.rs`);
//! - stride-1 convs: direct AVX-512 kernels (`direct.rs`), and for 3x3 ones with 8+
//!   channels each way Winograd: F(4x4, 3x3) for the forward and input gradient
//!   (`winograd4.rs`; F(2x2, 3x3) in `winograd.rs` is the simpler variant, off by
//!   default) and F(2x2, 3x3) for the weight gradient (`winograd_weight.rs`);
//! - parallel over the batch in fixed chunks (bit-reproducible for a thread count);
//! - the op skips the input gradient when `x` needs none (a network's first layer).
//!
//! ```
//! use nabla::ops::conv2d::{conv2d, Conv2dSpec};
//! use nabla::ops::Padding2d;
//! use nabla::{Tensor, Var};
//!
//! let x = Var::constant(Tensor::ones(&[2, 3, 8, 8])); // [N, C, H, W]
//! let w = Var::parameter(Tensor::ones(&[4, 3, 3, 3])); // [OC, C, KH, KW]
//! let spec = Conv2dSpec { padding: Padding2d::uniform(1), ..Default::default() };
//! let y = conv2d(&x, &w, None, &spec).unwrap();
//! assert_eq!(y.shape(), vec![2, 4, 8, 8]);
//! ```

mod channels_last;
pub mod cpu;
mod direct;
mod direct_strided;
pub mod naive;
#[cfg(test)]
mod tests;
mod winograd;
mod winograd4;
mod winograd_weight;

use super::{window_out_len, Padding2d};
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// Geometry of a convolution besides the tensors' shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dSpec {
    pub stride: (usize, usize),
    pub padding: Padding2d,
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Conv2dSpec {
            stride: (1, 1),
            padding: Padding2d::default(),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

/// Every size a conv2d kernel needs, validated once by `Conv2dDims::new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dDims {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oc: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    /// (vertical, horizontal)
    pub stride: (usize, usize),
    /// Zeros above the input; the ones below only show up through `oh`.
    pub pad_top: usize,
    /// Zeros left of the input; the ones right only show up through `ow`.
    pub pad_left: usize,
    /// (vertical, horizontal)
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Conv2dDims {
    /// Checks that `x`, `w` (and `b`) fit together under `spec`; every message names the
    /// shapes at fault.
    pub fn new(
        x: &[usize],
        w: &[usize],
        b: Option<&[usize]>,
        spec: &Conv2dSpec,
    ) -> Result<Conv2dDims> {
        let &[n, c, h, wd] = x else {
            return Err(Error::shape(format!(
                "conv2d: input must be 4-D [N, C, H, W], got {x:?}"
            )));
        };
        let &[oc, cg, kh, kw] = w else {
            return Err(Error::shape(format!(
                "conv2d: kernel must be 4-D [OC, C/groups, KH, KW], got {w:?}"
            )));
        };
        let g = spec.groups;
        if g == 0 {
            return Err(Error::invalid("conv2d: groups must be at least 1"));
        }
        if spec.stride.0 == 0 || spec.stride.1 == 0 {
            return Err(Error::invalid(format!(
                "conv2d: stride {:?} must be at least 1",
                spec.stride
            )));
        }
        if spec.dilation.0 == 0 || spec.dilation.1 == 0 {
            return Err(Error::invalid(format!(
                "conv2d: dilation {:?} must be at least 1",
                spec.dilation
            )));
        }
        if w.contains(&0) {
            return Err(Error::shape(format!(
                "conv2d: kernel {w:?} has a zero dimension (input {x:?})"
            )));
        }
        if c % g != 0 {
            return Err(Error::shape(format!(
                "conv2d: groups {g} does not divide the {c} channels of input {x:?} (kernel {w:?})"
            )));
        }
        if oc % g != 0 {
            return Err(Error::shape(format!(
                "conv2d: groups {g} does not divide the {oc} output channels of kernel {w:?} \
                 (input {x:?})"
            )));
        }
        if cg * g != c {
            let groups = if g > 1 {
                format!(" with groups {g}")
            } else {
                String::new()
            };
            return Err(Error::shape(format!(
                "conv2d: input {x:?} has {c} channels but kernel {w:?}{groups} expects {}",
                cg * g
            )));
        }
        if let Some(b) = b {
            if b != [oc] {
                return Err(Error::shape(format!(
                    "conv2d: bias {b:?} does not fit kernel {w:?} (expected [{oc}])"
                )));
            }
        }
        let p = spec.padding;
        let (sh, sw) = spec.stride;
        let (dh, dw) = spec.dilation;
        let oh = window_out_len(h, p.top, p.bottom, kh, sh, dh);
        let ow = window_out_len(wd, p.left, p.right, kw, sw, dw);
        let (Some(oh), Some(ow)) = (oh, ow) else {
            return Err(Error::shape(format!(
                "conv2d: kernel {w:?} spans {}x{} (dilation {:?}) but input {x:?} padded by \
                 {p:?} is only {}x{}",
                (kh - 1) * dh + 1,
                (kw - 1) * dw + 1,
                spec.dilation,
                h + p.top + p.bottom,
                wd + p.left + p.right
            )));
        };
        Ok(Conv2dDims {
            n,
            c,
            h,
            w: wd,
            oc,
            kh,
            kw,
            oh,
            ow,
            stride: spec.stride,
            pad_top: p.top,
            pad_left: p.left,
            dilation: spec.dilation,
            groups: g,
        })
    }

    /// `CG`: input channels per group.
    pub fn cg(&self) -> usize {
        self.c / self.groups
    }

    /// `OCG`: output channels per group.
    pub fn ocg(&self) -> usize {
        self.oc / self.groups
    }

    /// `K = CG*KH*KW`: rows of a group's column matrix, columns of its weight matrix.
    pub fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }

    /// `P = OH*OW`: output positions per image and channel.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Values of one input image, `C*H*W`.
    pub fn in_image(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Values of one output image, `OC*OH*OW`.
    pub fn out_image(&self) -> usize {
        self.oc * self.p()
    }

    /// 1x1 kernel, stride 1, no padding: the input planes are the column matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == (1, 1)
            && self.oh == self.h
            && self.ow == self.w
            && self.pad_top == 0
            && self.pad_left == 0
    }

    pub fn out_shape(&self) -> [usize; 4] {
        [self.n, self.oc, self.oh, self.ow]
    }
}

/// `x [N, C, H, W]`, `w [OC, C/groups, KH, KW]`, `b [OC]` -> `[N, OC, OH, OW]`.
pub fn conv2d(x: &Var, w: &Var, b: Option<&Var>, spec: &Conv2dSpec) -> Result<Var> {
    conv2d_impl(x, w, b, spec, false)
}

/// `relu(conv2d(x, w, b))` as one op, bit-identical to the two ops in sequence: the
/// forward applies the ReLU to each GEMM's output block while it is in cache, and the
/// backward masks `dy` by `y > 0` before the conv backward. It saves a pass over the
/// activations, an activation-sized buffer and a graph node per layer (keras-cnn, 20k
/// samples, 2 threads: 0.94x process CPU time).
pub fn conv2d_relu(x: &Var, w: &Var, b: Option<&Var>, spec: &Conv2dSpec) -> Result<Var> {
    if crate::engine::kinks::active() {
        // Gradient checking with frozen ReLU masks: the relu op records and replays them.
        return Ok(super::activation::relu(&conv2d(x, w, b, spec)?));
    }
    conv2d_impl(x, w, b, spec, true)
}

fn conv2d_impl(x: &Var, w: &Var, b: Option<&Var>, spec: &Conv2dSpec, relu: bool) -> Result<Var> {
    let b_shape = b.map(|b| b.shape());
    let dims = Conv2dDims::new(&x.shape(), &w.shape(), b_shape.as_deref(), spec)?;
    let xv = x.value().contiguous_f32();
    let wv = w.value().contiguous_f32();
    let bv = b.map(|b| b.value().contiguous_f32());
    let out = cpu::conv2d_forward_new(
        xv.data(),
        wv.data(),
        bv.as_ref().map(|b| b.data()),
        &dims,
        relu,
        &cpu::TUNING,
    );
    let out = Tensor::from_vec(out, &dims.out_shape()); // [N, OC, OH, OW]
                                                        // With the ReLU fused, `y > 0` is the mask its backward applies to `dy`.
    let y_saved = relu.then(|| out.clone());

    // Decided now, not in the closure: a frozen kernel or a data input (the first layer)
    // costs no backward kernel, and the closure keeps only the tensors it will read.
    let need_dx = x.requires_grad();
    let need_dw = w.requires_grad();
    let need_db = b.is_some_and(|b| b.requires_grad());
    let has_bias = b.is_some();
    let x_saved = need_dw.then_some(xv);
    let w_saved = need_dx.then_some(wv);
    let mut parents = vec![x, w];
    parents.extend(b);
    let name = if relu { "conv2d_relu" } else { "conv2d" };
    Ok(Var::from_op(out, name, &parents, move |dy| {
        // With the ReLU fused, `dy` is masked by `y > 0`: inside the direct kernels' copy
        // of `dy` when they run both backward kernels (no masked tensor), else first.
        let in_place =
            y_saved.is_some() && x_saved.is_some() && cpu::masks_in_place(&dims, w_saved.is_some());
        let masked;
        let (dy, relu_y) = match &y_saved {
            Some(y) if in_place => (dy, Some(y.data())),
            Some(y) => {
                masked = dy.zip_map(y, |g, y| if y > 0.0 { g } else { 0.0 });
                (&masked, None)
            }
            None => (dy, None),
        };
        let dx = w_saved.as_ref().map(|wv| {
            let dx =
                cpu::conv2d_backward_input_new(dy.data(), relu_y, wv.data(), &dims, &cpu::TUNING);
            Tensor::from_vec(dx, &[dims.n, dims.c, dims.h, dims.w])
        });
        let mut db = need_db.then(|| vec![0.0f32; dims.oc]);
        let dw = x_saved.as_ref().map(|xv| {
            let mut dw = vec![0.0f32; dims.oc * dims.k()];
            cpu::conv2d_backward_weight_tuned(
                &mut dw,
                db.as_deref_mut(),
                dy.data(),
                relu_y,
                xv.data(),
                &dims,
                &cpu::TUNING,
            );
            Tensor::from_vec(dw, &[dims.oc, dims.cg(), dims.kh, dims.kw])
        });
        if let (Some(db), None) = (db.as_deref_mut(), &dw) {
            // Only without a kernel gradient, so `relu_y` is None here (see `in_place`).
            cpu::conv2d_backward_bias(db, dy.data(), &dims);
        }
        let mut grads = vec![dx, dw];
        if has_bias {
            grads.push(db.map(|db| Tensor::from_vec(db, &[dims.oc])));
        }
        grads
    }))
}
