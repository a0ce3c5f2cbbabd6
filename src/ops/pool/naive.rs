//! Reference pooling: the textbook loops, written to be obviously right rather than fast.
//! They are the spec the kernels in `cpu.rs` are tested against.
//!
//! Each window is walked over all `KH x KW` of its positions in the padded frame, with
//! signed coordinates; positions that fall in the padding are skipped (never a max, not
//! counted in a mean). Sums are in f64.

use super::Pool2dDims;

/// The input cell at padded-frame position (`py`, `px`), or `None` in the padding.
fn cell(d: &Pool2dDims, py: usize, px: usize) -> Option<(usize, usize)> {
    let y = py as isize - d.pad_top as isize;
    let x = px as isize - d.pad_left as isize;
    if y < 0 || x < 0 || y >= d.h as isize || x >= d.w as isize {
        None
    } else {
        Some((y as usize, x as usize))
    }
}

/// The (index in plane, value) of each window's first maximum, NaN beating numbers.
fn window_max(plane: &[f32], d: &Pool2dDims, oy: usize, ox: usize) -> (usize, f32) {
    let mut best: Option<(usize, f32)> = None;
    for ky in 0..d.kh {
        for kx in 0..d.kw {
            let Some((y, x)) = cell(d, oy * d.sh + ky, ox * d.sw + kx) else {
                continue;
            };
            let v = plane[y * d.w + x];
            let better = match best {
                None => true,
                Some((_, b)) => v > b || (v.is_nan() && !b.is_nan()),
            };
            if better {
                best = Some((y * d.w + x, v));
            }
        }
    }
    best.expect("every window holds a real cell")
}

/// `[P, H, W] -> [P, OH, OW]`.
pub fn max_pool2d_forward(inp: &[f32], d: &Pool2dDims) -> Vec<f32> {
    let mut out = Vec::with_capacity(d.planes * d.oh * d.ow);
    for p in 0..d.planes {
        let plane = &inp[p * d.h * d.w..(p + 1) * d.h * d.w];
        for oy in 0..d.oh {
            for ox in 0..d.ow {
                out.push(window_max(plane, d, oy, ox).1);
            }
        }
    }
    out
}

/// Gradient of max pooling: each window's gradient goes to its first maximum (found
/// again here from the input, independently of the fast kernel's recorded argmax).
pub fn max_pool2d_backward(inp: &[f32], dout: &[f32], d: &Pool2dDims) -> Vec<f32> {
    let mut dinp = vec![0.0f32; inp.len()];
    for p in 0..d.planes {
        let off = p * d.h * d.w;
        let plane = &inp[off..off + d.h * d.w];
        for oy in 0..d.oh {
            for ox in 0..d.ow {
                let (i, _) = window_max(plane, d, oy, ox);
                dinp[off + i] += dout[(p * d.oh + oy) * d.ow + ox];
            }
        }
    }
    dinp
}

/// `[P, H, W] -> [P, OH, OW]`, mean over the real cells of each window.
pub fn avg_pool2d_forward(inp: &[f32], d: &Pool2dDims) -> Vec<f32> {
    let mut out = Vec::with_capacity(d.planes * d.oh * d.ow);
    for p in 0..d.planes {
        let plane = &inp[p * d.h * d.w..(p + 1) * d.h * d.w];
        for oy in 0..d.oh {
            for ox in 0..d.ow {
                let (mut s, mut count) = (0.0f64, 0usize);
                for ky in 0..d.kh {
                    for kx in 0..d.kw {
                        if let Some((y, x)) = cell(d, oy * d.sh + ky, ox * d.sw + kx) {
                            s += plane[y * d.w + x] as f64;
                            count += 1;
                        }
                    }
                }
                out.push((s / count as f64) as f32);
            }
        }
    }
    out
}

/// Gradient of average pooling: each window spreads `dout / count` over its real cells.
pub fn avg_pool2d_backward(dout: &[f32], d: &Pool2dDims) -> Vec<f32> {
    let mut dinp = vec![0.0f64; d.planes * d.h * d.w];
    for p in 0..d.planes {
        let off = p * d.h * d.w;
        for oy in 0..d.oh {
            for ox in 0..d.ow {
                let cells: Vec<(usize, usize)> = (0..d.kh)
                    .flat_map(|ky| (0..d.kw).map(move |kx| (ky, kx)))
                    .filter_map(|(ky, kx)| cell(d, oy * d.sh + ky, ox * d.sw + kx))
                    .collect();
                let g = dout[(p * d.oh + oy) * d.ow + ox] as f64 / cells.len() as f64;
                for (y, x) in cells {
                    dinp[off + y * d.w + x] += g;
                }
            }
        }
    }
    dinp.into_iter().map(|v| v as f32).collect()
}
