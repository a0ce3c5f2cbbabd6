//! The input gradient of a strided convolution on the direct kernels of `direct.rs`
//! (AVX-512); its reference is `naive::conv2d_backward_input_naive`, and the forward and
//! weight gradient of strided convs run `direct.rs` itself (through its `Phases`).
//! Dimension letters as in `mod.rs`; no dilation.
//!
//! Fast path: `dx` split by phase. The input row `y` receives output row `oy` through
//! tap `ki` when `y + PT = oy*SH + ki`, so the rows with `(y + PT) % SH = a` (phase `a`,
//! row `i = (y + PT) / SH` of it) receive only the taps `ki = a + SH*m`, from output row
//! `oy = i - m`: a stride-1 correlation of `dy` with that sub-kernel flipped. Likewise
//! for columns. So each phase `(a, b)` of `dx` is one `fwd_gemm` over one shared padded
//! copy of `dy`, with its own taps and packed weights, and the phases are interleaved
//! into `dx` at the end. Against im2col + GEMM + col2im this skips the column matrix and
//! its scatter; against zero-stuffing `dy` (the transposed conv as a stride-1 conv) it
//! skips the `SH*SW - 1` of every `SH*SW` products that would multiply zeros. Phases no
//! tap reaches (`a >= KH`, e.g. a 1x1 stride-2 conv) get zeros.

use super::direct::{fwd_gemm, Avx512, Planes, Taps, V};
use super::Conv2dDims;

/// The taps of one phase `(a, b)` of `dx`.
struct Phase {
    a: usize,
    b: usize,
    /// `OCG * ma * nb` offsets into a group's padded `dy` planes; none for a phase no tap
    /// reaches.
    taps: Taps,
    /// Where this phase's packed weights start (`[G][taps][CG]`).
    woff: usize,
    /// The first row and column of the phase grid that hold an input row and column
    /// (those before lie in the padding and are not computed): the phase's output
    /// position `q` is grid position `(i0, j0) + (q / wq, q % wq)`.
    i0: usize,
    j0: usize,
}

/// The layout of a strided conv's input gradient.
pub(crate) struct StridedInput {
    /// `dy` padded by `mmax - 1` rows above and `nmax - 1` columns left (`mmax`, `nmax`:
    /// the most taps of a phase along each axis), rows and columns of `wq`.
    dy: Planes,
    /// Rows and columns of a phase grid, enough for every input row and column.
    rows: usize,
    cols: usize,
    /// Width of the wide grid (`cols + nmax - 1`) and positions per phase plane (its rows
    /// from `i0` on), rounded up to whole vectors: the `lq` of `fwd_gemm`.
    wq: usize,
    pub(crate) lq: usize,
    phases: Vec<Phase>,
}

impl StridedInput {
    pub(crate) fn new(d: &Conv2dDims) -> StridedInput {
        let (sh, sw) = d.stride;
        let (mmax, nmax) = ((d.kh - 1) / sh + 1, (d.kw - 1) / sw + 1);
        let rows = (d.pad_top + d.h).div_ceil(sh);
        let cols = (d.pad_left + d.w).div_ceil(sw);
        let wq = cols + nmax - 1;
        let hp = rows + mmax - 1;
        let ps = hp * wq;
        // Phase rows i >= i0(a) hold input rows sh*i + a - PT >= 0; likewise columns.
        let first = |pad: usize, a: usize, s: usize| pad.saturating_sub(a).div_ceil(s);
        let phase_rows = (0..sh).map(|a| rows - first(d.pad_top, a, sh)).max();
        let lq = (phase_rows.unwrap_or(rows) * wq).div_ceil(V) * V;
        let (cg, ocg) = (d.cg(), d.ocg());
        let mut phases = Vec::with_capacity(sh * sw);
        let mut woff = 0;
        let mut max_tap = 0;
        for a in 0..sh {
            for b in 0..sw {
                // Taps ki = a + sh*m < KH, kj = b + sw*n < KW.
                let ma = if a < d.kh { (d.kh - 1 - a) / sh + 1 } else { 0 };
                let nb = if b < d.kw { (d.kw - 1 - b) / sw + 1 } else { 0 };
                let mut offs = Vec::with_capacity(ocg * ma * nb);
                for o in 0..ocg {
                    for m in 0..ma {
                        for n in 0..nb {
                            offs.push(o * ps + (mmax - 1 - m) * wq + (nmax - 1 - n));
                        }
                    }
                }
                let taps = Taps::new(offs);
                let (i0, j0) = (first(d.pad_top, a, sh), first(d.pad_left, b, sw));
                max_tap = max_tap.max(i0 * wq + j0 + taps.max);
                phases.push(Phase {
                    a,
                    b,
                    taps,
                    woff,
                    i0,
                    j0,
                });
                woff += d.groups * ocg * ma * nb * cg;
            }
        }
        // Every tile reads up to `max tap + lq` past a group's first plane (max tap
        // including the phase's start).
        let reach = (d.oc - ocg) * ps + max_tap + lq;
        StridedInput {
            dy: Planes {
                nch: d.oc,
                h: d.oh,
                w: d.ow,
                hp,
                wp: wq,
                top: mmax as isize - 1,
                left: nmax as isize - 1,
                ps,
                len: (d.oc * ps).max(reach),
            },
            rows,
            cols,
            wq,
            lq,
            phases,
        }
    }

    /// Floats of scratch `backward_input_images` needs.
    pub(crate) fn scratch(&self, d: &Conv2dDims) -> usize {
        self.dy.len + self.phases.len() * d.cg() * self.lq
    }

    /// The weights of every phase, `[phase][G][taps][CG]`: tap `(o, m, n)` of phase
    /// `(a, b)` is `w[o, ci, a + SH*m, b + SW*n]`, input channel contiguous.
    pub(crate) fn pack(&self, w: &[f32], d: &Conv2dDims) -> Vec<f32> {
        let (sh, sw) = d.stride;
        let (cg, ocg) = (d.cg(), d.ocg());
        let mut wt = vec![0.0; w.len()];
        for ph in &self.phases {
            let ntaps = ph.taps.offs.len();
            if ntaps == 0 {
                continue;
            }
            let (ma, nb) = ((d.kh - 1 - ph.a) / sh + 1, (d.kw - 1 - ph.b) / sw + 1);
            for g in 0..d.groups {
                let dst = &mut wt[ph.woff + g * ntaps * cg..][..ntaps * cg];
                for o in 0..ocg {
                    for m in 0..ma {
                        for n in 0..nb {
                            let t = (o * ma + m) * nb + n;
                            let (ki, kj) = (ph.a + sh * m, ph.b + sw * n);
                            for ci in 0..cg {
                                dst[t * cg + ci] =
                                    w[(((g * ocg + o) * cg + ci) * d.kh + ki) * d.kw + kj];
                            }
                        }
                    }
                }
            }
        }
        wt
    }

    /// Backward to the input of the images of `dout [imgs, OC, OH, OW]` (masked by
    /// `relu_y > 0` when given, see `Planes::fill`) into `dinp [imgs, C, H, W]`
    /// (overwritten), with `wt` from `pack`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_input_images(
        &self,
        cpu: Avx512,
        dinp: &mut [f32],
        dout: &[f32],
        relu_y: Option<&[f32]>,
        wt: &[f32],
        d: &Conv2dDims,
        scratch: &mut [f32],
    ) {
        // SAFETY: `cpu` proves the CPU has AVX-512F, all `images_avx512` requires.
        unsafe { self.images_avx512(cpu, dinp, dout, relu_y, wt, d, scratch) }
    }

    /// The same, compiled with AVX-512 enabled, so the copies around the kernels (plain
    /// Rust loops) vectorize 16 wide (the crate's baseline is SSE2).
    #[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
    #[allow(clippy::too_many_arguments)]
    fn images_avx512(
        &self,
        cpu: Avx512,
        dinp: &mut [f32],
        dout: &[f32],
        relu_y: Option<&[f32]>,
        wt: &[f32],
        d: &Conv2dDims,
        scratch: &mut [f32],
    ) {
        let (sh, sw) = d.stride;
        let (cg, ocg) = (d.cg(), d.ocg());
        let (dyp, rest) = scratch.split_at_mut(self.dy.len);
        let dxp = &mut rest[..self.phases.len() * cg * self.lq]; // [phase][CG][lq]
        let plane = d.h * d.w;
        for (img, (dy, dx)) in dout
            .chunks_exact(d.out_image())
            .zip(dinp.chunks_exact_mut(d.in_image()))
            .enumerate()
        {
            let mask = relu_y.map(|y| &y[img * d.out_image()..][..d.out_image()]);
            self.dy.fill(dyp, dy, mask);
            for g in 0..d.groups {
                for (ph, out) in self.phases.iter().zip(dxp.chunks_exact_mut(cg * self.lq)) {
                    let ntaps = ph.taps.offs.len();
                    if ntaps > 0 {
                        let a = &wt[ph.woff + g * ntaps * cg..][..ntaps * cg];
                        let b = &dyp[g * ocg * self.dy.ps + ph.i0 * self.wq + ph.j0..];
                        fwd_gemm(cpu, a, cg, &ph.taps, b, out, self.lq);
                    }
                }
                // Interleave the phases: dx[ci, y, x] is row (y + PT) / SH, column
                // (x + PL) / SW of phase ((y + PT) % SH, (x + PL) % SW).
                for (ci, dst) in dx[g * cg * plane..][..cg * plane]
                    .chunks_exact_mut(plane)
                    .enumerate()
                {
                    for (y, row) in dst.chunks_exact_mut(d.w).enumerate() {
                        let (a, i) = ((y + d.pad_top) % sh, (y + d.pad_top) / sh);
                        debug_assert!(i < self.rows);
                        // Where grid column 0 of row i of phase (a, b) would be in `dxp`
                        // (plus the first used column, which is at least `j0`).
                        let at = |b: usize, j: usize| {
                            let ph = &self.phases[a * sw + b];
                            ((a * sw + b) * cg + ci) * self.lq + (i - ph.i0) * self.wq + j - ph.j0
                        };
                        if sw == 2
                            && self.phases[a * sw..][..2]
                                .iter()
                                .all(|p| !p.taps.is_empty())
                        {
                            // Column x is column (x + PL) / 2 of phase (x + PL) % 2: pairs
                            // of columns from the two phases, which vectorizes.
                            let (b0, j0) = (d.pad_left % 2, d.pad_left / 2);
                            let (b1, j1) = (1 - b0, d.pad_left.div_ceil(2));
                            let first = &dxp[at(b0, j0)..][..d.w.div_ceil(2)];
                            let second = &dxp[at(b1, j1)..][..d.w / 2];
                            for ((pair, &u), &v) in row.chunks_exact_mut(2).zip(first).zip(second) {
                                pair[0] = u;
                                pair[1] = v;
                            }
                            if d.w % 2 == 1 {
                                row[d.w - 1] = first[d.w / 2];
                            }
                            continue;
                        }
                        for b in 0..sw {
                            // Columns x = j*SW + b - PL inside 0..W, for j < cols.
                            let j0 = d.pad_left.saturating_sub(b).div_ceil(sw);
                            let x0 = (j0 * sw + b).wrapping_sub(d.pad_left);
                            if j0 >= self.cols || x0 >= d.w {
                                continue;
                            }
                            let ph = &self.phases[a * sw + b];
                            let dst = row[x0..].iter_mut().step_by(sw);
                            if ph.taps.is_empty() {
                                dst.for_each(|v| *v = 0.0);
                                continue;
                            }
                            let src = &dxp[at(b, j0)..][..self.cols - j0];
                            for (v, &s) in dst.zip(src) {
                                *v = s;
                            }
                        }
                    }
                }
            }
        }
    }
}
