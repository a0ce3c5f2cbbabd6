//! Reference conv2d: the definition written as direct loops, one output (or one scatter)
//! at a time, accumulating in f64. Slow and obviously right; the fast kernels in `cpu.rs`
//! are tested against it. Dimension letters as in `mod.rs`.

use super::Conv2dDims;

/// Input position `(iy, ix)` that kernel tap `(ki, kj)` reads for output `(oy, ox)`, or
/// `None` in the zero padding.
fn input_pos(d: &Conv2dDims, oy: usize, ox: usize, ki: usize, kj: usize) -> Option<(usize, usize)> {
    let iy = (oy * d.stride.0 + ki * d.dilation.0).checked_sub(d.pad_top)?;
    let ix = (ox * d.stride.1 + kj * d.dilation.1).checked_sub(d.pad_left)?;
    (iy < d.h && ix < d.w).then_some((iy, ix))
}

/// `out [N, OC, OH, OW] = conv(inp [N, C, H, W], w [OC, CG, KH, KW]) + b [OC]`.
pub fn conv2d_forward_naive(
    out: &mut [f32],
    inp: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    d: &Conv2dDims,
) {
    let (cg, ocg) = (d.cg(), d.ocg());
    for n in 0..d.n {
        for o in 0..d.oc {
            let g = o / ocg;
            for oy in 0..d.oh {
                for ox in 0..d.ow {
                    let mut acc = b.map_or(0.0, |b| b[o] as f64);
                    for ci in 0..cg {
                        let c = g * cg + ci;
                        for ki in 0..d.kh {
                            for kj in 0..d.kw {
                                if let Some((iy, ix)) = input_pos(d, oy, ox, ki, kj) {
                                    let x = inp[((n * d.c + c) * d.h + iy) * d.w + ix];
                                    let wt = w[((o * cg + ci) * d.kh + ki) * d.kw + kj];
                                    acc += x as f64 * wt as f64;
                                }
                            }
                        }
                    }
                    out[((n * d.oc + o) * d.oh + oy) * d.ow + ox] = acc as f32;
                }
            }
        }
    }
}

/// `dinp [N, C, H, W]` from `dout [N, OC, OH, OW]` and `w`: every output's gradient
/// flows back to the inputs it read, weighted by the tap that read them.
pub fn conv2d_backward_input_naive(dinp: &mut [f32], dout: &[f32], w: &[f32], d: &Conv2dDims) {
    let (cg, ocg) = (d.cg(), d.ocg());
    let mut acc = vec![0.0f64; dinp.len()];
    for n in 0..d.n {
        for o in 0..d.oc {
            let g = o / ocg;
            for oy in 0..d.oh {
                for ox in 0..d.ow {
                    let dy = dout[((n * d.oc + o) * d.oh + oy) * d.ow + ox] as f64;
                    for ci in 0..cg {
                        let c = g * cg + ci;
                        for ki in 0..d.kh {
                            for kj in 0..d.kw {
                                if let Some((iy, ix)) = input_pos(d, oy, ox, ki, kj) {
                                    let wt = w[((o * cg + ci) * d.kh + ki) * d.kw + kj];
                                    acc[((n * d.c + c) * d.h + iy) * d.w + ix] += dy * wt as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    for (dx, a) in dinp.iter_mut().zip(acc) {
        *dx = a as f32;
    }
}

/// `dw [OC, CG, KH, KW]` (and `db [OC]`) from `dout [N, OC, OH, OW]` and `inp`.
pub fn conv2d_backward_weight_naive(
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    d: &Conv2dDims,
) {
    let (cg, ocg) = (d.cg(), d.ocg());
    for o in 0..d.oc {
        let g = o / ocg;
        for ci in 0..cg {
            let c = g * cg + ci;
            for ki in 0..d.kh {
                for kj in 0..d.kw {
                    let mut acc = 0.0f64;
                    for n in 0..d.n {
                        for oy in 0..d.oh {
                            for ox in 0..d.ow {
                                if let Some((iy, ix)) = input_pos(d, oy, ox, ki, kj) {
                                    let dy = dout[((n * d.oc + o) * d.oh + oy) * d.ow + ox];
                                    let x = inp[((n * d.c + c) * d.h + iy) * d.w + ix];
                                    acc += dy as f64 * x as f64;
                                }
                            }
                        }
                    }
                    dw[((o * cg + ci) * d.kh + ki) * d.kw + kj] = acc as f32;
                }
            }
        }
    }
    if let Some(db) = db {
        let p = d.p();
        for (o, db) in db.iter_mut().enumerate() {
            let mut acc = 0.0f64;
            for n in 0..d.n {
                acc += dout[(n * d.oc + o) * p..][..p]
                    .iter()
                    .map(|&v| v as f64)
                    .sum::<f64>();
            }
            *db = acc as f32;
        }
    }
}
