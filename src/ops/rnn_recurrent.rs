//! The recurrent product of the recurrent ops, `h_{t-1} @ U` over `[n, U] x [U, G]`
//! (`G = gates * U`, gate blocks of `U` columns), with Keras' recurrent dropout as an
//! option: Keras 3 then runs its cells as "implementation 1", one product per gate
//! with its own mask, `(h_{t-1} * m_k) @ U_k`. Its adjoints for the backward through
//! time (dL/dh_{t-1}) and for the recurrent kernel's gradient are here too.
//!
//! Fast paths:
//! - no dropout: ONE GEMM each (what the ops did before dropout existed, so that path
//!   costs the same as it did).
//! - dropout: one `[n, U] x [U, U]` GEMM per gate on the masked copy of h, against the
//!   gate's block of the kernel copied out once per call (`RecDrop::blocks`), since the
//!   GEMM takes contiguous operands only.

use crate::ops::matmul::sgemm;

/// The recurrent dropout of one packed group: `masks [R, G]` (the mask row of the
/// sample of each packed row, Keras' per-gate masks side by side, already scaled by
/// `1 / (1 - rate)`) and `blocks [gates, U, U]` (the recurrent kernel's gate blocks,
/// each contiguous).
#[derive(Clone, Copy)]
pub struct RecDrop<'a> {
    pub masks: &'a [f32],
    pub blocks: &'a [f32],
}

impl<'a> RecDrop<'a> {
    /// The masks of packed rows `from .. from + n`, width `g`.
    pub fn rows(&self, from: usize, n: usize, g: usize) -> RecDrop<'a> {
        RecDrop {
            masks: &self.masks[from * g..(from + n) * g],
            blocks: self.blocks,
        }
    }
}

/// The recurrent kernel `[U, G]` as `gates` contiguous `[U, U]` blocks.
pub fn kernel_blocks(rw: &[f32], u: usize, gates: usize) -> Vec<f32> {
    let g = gates * u;
    let mut out = Vec::with_capacity(u * g);
    for k in 0..gates {
        for q in 0..u {
            out.extend_from_slice(&rw[q * g + k * u..q * g + (k + 1) * u]);
        }
    }
    out
}

/// `dst[r] = src[r] * m[r, block k]` for each of the `n` rows (`src`, `dst` `[n, U]`).
fn masked_copy(dst: &mut [f32], src: &[f32], m: &[f32], u: usize, g: usize, k: usize) {
    for ((d, s), mr) in dst
        .chunks_exact_mut(u)
        .zip(src.chunks_exact(u))
        .zip(m.chunks_exact(g))
    {
        for ((a, &b), &c) in d.iter_mut().zip(s).zip(&mr[k * u..(k + 1) * u]) {
            *a = b * c;
        }
    }
}

/// Block `k` of `[n, G]` rows as a contiguous `[n, U]`.
fn block_copy(dst: &mut [f32], src: &[f32], u: usize, g: usize, k: usize) {
    for (d, s) in dst.chunks_exact_mut(u).zip(src.chunks_exact(g)) {
        d.copy_from_slice(&s[k * u..(k + 1) * u]);
    }
}

/// `out [n, G]` (+)= `hp [n, U] @ rw [U, G]`, or with `drop` per gate
/// `(hp * m_k) @ U_k` into block `k` (`drop` holds these `n` rows' masks).
#[allow(clippy::too_many_arguments)]
pub fn rec_product(
    n: usize,
    u: usize,
    gates: usize,
    hp: &[f32],
    rw: &[f32],
    drop: Option<RecDrop>,
    out: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    let g = gates * u;
    let Some(d) = drop else {
        return sgemm(n, u, g, hp, false, rw, false, out, accumulate, parallel);
    };
    let mut hm = vec![0.0f32; n * u];
    let mut ok = vec![0.0f32; n * u];
    for k in 0..gates {
        masked_copy(&mut hm, &hp[..n * u], d.masks, u, g, k);
        let wk = &d.blocks[k * u * u..(k + 1) * u * u];
        sgemm(n, u, u, &hm, false, wk, false, &mut ok, false, parallel);
        for (row, src) in out.chunks_exact_mut(g).zip(ok.chunks_exact(u)) {
            let dst = &mut row[k * u..(k + 1) * u];
            if accumulate {
                for (a, &b) in dst.iter_mut().zip(src) {
                    *a += b;
                }
            } else {
                dst.copy_from_slice(src);
            }
        }
    }
}

/// The adjoint of `rec_product` in `hp`: `dh [n, U]` (+)= `dz [n, G] @ rw^T`, or with
/// `drop` the sum over gates of `(dz_k @ U_k^T) * m_k`.
#[allow(clippy::too_many_arguments)]
pub fn rec_product_t(
    n: usize,
    u: usize,
    gates: usize,
    dz: &[f32],
    rw: &[f32],
    drop: Option<RecDrop>,
    dh: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    let g = gates * u;
    let Some(d) = drop else {
        return sgemm(n, g, u, dz, false, rw, true, dh, accumulate, parallel);
    };
    if !accumulate {
        dh[..n * u].fill(0.0);
    }
    let mut dzk = vec![0.0f32; n * u];
    let mut tmp = vec![0.0f32; n * u];
    for k in 0..gates {
        block_copy(&mut dzk, &dz[..n * g], u, g, k);
        let wk = &d.blocks[k * u * u..(k + 1) * u * u];
        sgemm(n, u, u, &dzk, false, wk, true, &mut tmp, false, parallel);
        for ((dr, tr), mr) in dh
            .chunks_exact_mut(u)
            .zip(tmp.chunks_exact(u))
            .zip(d.masks.chunks_exact(g))
        {
            for ((a, &b), &c) in dr.iter_mut().zip(tr).zip(&mr[k * u..(k + 1) * u]) {
                *a += b * c;
            }
        }
    }
}

/// The recurrent kernel's gradient over `n` rows: `drw [U, G] = hprev^T @ dz`, or with
/// `drop` block `k` = `(hprev * m_k)^T @ dz_k`.
#[allow(clippy::too_many_arguments)]
pub fn rec_weight_grad(
    n: usize,
    u: usize,
    gates: usize,
    hprev: &[f32],
    dz: &[f32],
    drop: Option<RecDrop>,
    drw: &mut [f32],
    parallel: bool,
) {
    let g = gates * u;
    let Some(d) = drop else {
        return sgemm(u, n, g, hprev, true, dz, false, drw, false, parallel);
    };
    let mut hm = vec![0.0f32; n * u];
    let mut dzk = vec![0.0f32; n * u];
    let mut tmp = vec![0.0f32; u * u];
    for k in 0..gates {
        masked_copy(&mut hm, &hprev[..n * u], d.masks, u, g, k);
        block_copy(&mut dzk, &dz[..n * g], u, g, k);
        sgemm(u, n, u, &hm, true, &dzk, false, &mut tmp, false, parallel);
        for (q, src) in tmp.chunks_exact(u).enumerate() {
            drw[q * g + k * u..q * g + (k + 1) * u].copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With all-ones masks the per-gate path equals the one-GEMM path, and the
    /// adjoints satisfy <rec(h), dz> == <h, rec_t(dz)> with real masks.
    #[test]
    fn per_gate_path_and_adjoint() {
        let (n, u, gates) = (3, 4, 3);
        let g = gates * u;
        let f = |i: usize, s: f32| ((i as f32) * s).sin();
        let hp: Vec<f32> = (0..n * u).map(|i| f(i, 0.7)).collect();
        let rw: Vec<f32> = (0..u * g).map(|i| f(i, 0.31)).collect();
        let blocks = kernel_blocks(&rw, u, gates);
        let ones = vec![1.0; n * g];
        let mut a = vec![0.0; n * g];
        let mut b = vec![0.0; n * g];
        rec_product(n, u, gates, &hp, &rw, None, &mut a, false, false);
        let d1 = RecDrop {
            masks: &ones,
            blocks: &blocks,
        };
        rec_product(n, u, gates, &hp, &rw, Some(d1), &mut b, false, false);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
        let m: Vec<f32> = (0..n * g)
            .map(|i| if i % 3 == 0 { 0.0 } else { 1.5 })
            .collect();
        let d = RecDrop {
            masks: &m,
            blocks: &blocks,
        };
        let dz: Vec<f32> = (0..n * g).map(|i| f(i, 0.53)).collect();
        rec_product(n, u, gates, &hp, &rw, Some(d), &mut b, false, false);
        let lhs: f32 = b.iter().zip(&dz).map(|(x, y)| x * y).sum();
        let mut dh = vec![0.0; n * u];
        rec_product_t(n, u, gates, &dz, &rw, Some(d), &mut dh, false, false);
        let rhs: f32 = dh.iter().zip(&hp).map(|(x, y)| x * y).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
        // <rec(h; W), dz> is linear in W: its gradient is rec_weight_grad.
        let mut drw = vec![0.0; u * g];
        rec_weight_grad(n, u, gates, &hp, &dz, Some(d), &mut drw, false);
        let lhs2: f32 = drw.iter().zip(&rw).map(|(x, y)| x * y).sum();
        assert!((lhs - lhs2).abs() < 1e-4, "{lhs} vs {lhs2}");
    }
}
