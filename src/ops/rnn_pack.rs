//! Packed sequences for the recurrent ops (what PyTorch's `PackedSequence` does): the
//! real (unmasked) steps of a padded batch `[N, T, ...]`, laid out so that the
//! recurrence never touches a padded step.
//!
//! A batch is split into groups (one per thread; see `Plan::new`). Within a group the
//! samples are ordered by their number of real steps, descending, and the rows are
//! time-major: packed step `k` holds the `k`-th real step of the first `batch_sizes[k]`
//! samples, as rows `offsets[k] .. offsets[k] + batch_sizes[k]`. So the active rows of
//! a step are contiguous (one GEMM each) and the rows of step `k + 1` are the first
//! rows of step `k`'s (the previous state of row `p` at step `k + 1` is row
//! `offsets[k] + p`).
//!
//! Keras' masking semantics, which the packed layout gives for free: a masked step
//! carries the state unchanged, so a sample's recurrence is just its real steps in
//! order. Outputs at masked steps are the carried h (Keras' default) or zeros
//! (`zero_output_for_mask`, which Keras' `Bidirectional` forces when it returns
//! sequences); the last output is h after the last real step (zeros for a sample
//! with none).

use crate::error::{Error, Result};
use crate::ops::parallel::num_threads;
use crate::ops::rnn_recurrent::RecDrop;

/// One thread's share of a batch, packed (see the module doc).
#[derive(Debug, Clone)]
pub struct Group {
    /// The samples, by number of real steps descending (ties by index).
    pub samples: Vec<usize>,
    /// `steps[p]`: the real time steps of `samples[p]`, ascending.
    pub steps: Vec<Vec<usize>>,
    /// Active rows of each packed step (non-increasing).
    pub batch_sizes: Vec<usize>,
    /// First row of each packed step; the last entry is the row count.
    pub offsets: Vec<usize>,
}

impl Group {
    /// Packed rows (real steps) in the group.
    pub fn rows(&self) -> usize {
        *self.offsets.last().unwrap_or(&0)
    }
    /// Packed steps (the longest sample's real steps).
    pub fn steps_count(&self) -> usize {
        self.batch_sizes.len()
    }
    /// `(packed row, sample, time)` of every real step.
    pub fn rows_iter(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.samples
            .iter()
            .zip(&self.steps)
            .enumerate()
            .flat_map(move |(p, (&s, ts))| {
                ts.iter()
                    .enumerate()
                    .map(move |(k, &t)| (self.offsets[k] + p, s, t))
            })
    }
}

/// What a cell's kernels get of one group besides its input rows and the weights: the
/// initial state (rows in the group's sample order, `[n0, U]` each; `None` = zeros)
/// and the recurrent dropout (`None` = off).
#[derive(Clone, Copy, Default)]
pub struct GroupExtras<'a> {
    pub h0: Option<&'a [f32]>,
    /// LSTM only.
    pub c0: Option<&'a [f32]>,
    pub drop: Option<RecDrop<'a>>,
}

impl<'a> GroupExtras<'a> {
    /// The dropout masks of packed rows `from .. from + n` (width `g`).
    pub fn drop_rows(&self, from: usize, n: usize, g: usize) -> Option<RecDrop<'a>> {
        self.drop.map(|d| d.rows(from, n, g))
    }
}

/// The gradients of one group from a cell's backward: `dx [R, F]`, `dw`, `drw`, `db`
/// (empty without bias) in the weights' shapes, and `dh0`, `dc0` `[n0, U]` (empty
/// when the group had no such initial state).
pub struct GroupGrads {
    pub dx: Vec<f32>,
    pub dw: Vec<f32>,
    pub drw: Vec<f32>,
    pub db: Vec<f32>,
    pub dh0: Vec<f32>,
    pub dc0: Vec<f32>,
}

/// How many groups (threads) to split a batch of `n` samples into: with small
/// per-step GEMMs (`[n_k, U] x [U, G]`), threads inside each GEMM mostly wait on each
/// other, so each thread runs its own samples' recurrence instead, once there are at
/// least two samples a thread. Measured on 2 cores (text-lstm, batch 64): 2.4x the
/// samples/s of the old op, against 2.0x with the same op threading inside its GEMMs.
pub fn rnn_threads(n: usize, _t: usize, _u: usize) -> usize {
    let threads = num_threads();
    if threads > 1 && n >= 2 * threads {
        threads
    } else {
        1
    }
}

/// A batch `[N, T]` split into packed groups.
#[derive(Debug, Clone)]
pub struct Plan {
    pub n: usize,
    pub t: usize,
    pub groups: Vec<Group>,
}

/// Checks a mask's shape against `[n, t]` (`op` names the caller in the error).
pub fn check_mask(op: &str, shape: &[usize], n: usize, t: usize) -> Result<()> {
    if shape != [n, t] {
        return Err(Error::shape(format!(
            "{op}: mask {shape:?} does not fit input of batch {n} and {t} steps \
             (expected [{n}, {t}])"
        )));
    }
    Ok(())
}

impl Plan {
    /// The plan for `mask` (`[n, t]`, nonzero = real step; `None` = every step real),
    /// split into at most `parts` groups balanced by real steps: samples, longest
    /// first, each go to the group with the fewest steps so far (lowest index on a
    /// tie), so the split is deterministic. Samples with no real step are in no group.
    pub fn new(mask: Option<&[f32]>, n: usize, t: usize, parts: usize) -> Plan {
        let steps: Vec<Vec<usize>> = (0..n)
            .map(|s| match mask {
                Some(m) => (0..t).filter(|&k| m[s * t + k] != 0.0).collect(),
                None => (0..t).collect(),
            })
            .collect();
        let mut order: Vec<usize> = (0..n).filter(|&s| !steps[s].is_empty()).collect();
        order.sort_by(|&a, &b| steps[b].len().cmp(&steps[a].len()).then(a.cmp(&b)));
        let parts = parts.clamp(1, order.len().max(1));
        let mut members: Vec<Vec<usize>> = vec![vec![]; parts];
        let mut load = vec![0usize; parts];
        for &s in &order {
            let g = (0..parts).min_by_key(|&g| (load[g], g)).unwrap_or(0);
            load[g] += steps[s].len();
            members[g].push(s);
        }
        let groups = members
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(|samples| {
                let steps: Vec<Vec<usize>> = samples.iter().map(|&s| steps[s].clone()).collect();
                let k_max = steps[0].len();
                let batch_sizes: Vec<usize> = (0..k_max)
                    .map(|k| steps.iter().take_while(|ts| ts.len() > k).count())
                    .collect();
                let mut offsets = vec![0];
                for &b in &batch_sizes {
                    offsets.push(offsets.last().unwrap() + b);
                }
                Group {
                    samples,
                    steps,
                    batch_sizes,
                    offsets,
                }
            })
            .collect();
        Plan { n, t, groups }
    }
}

/// The packed rows `[R, width]` of a group, gathered from `[N, T, width]`.
pub fn gather(src: &[f32], width: usize, t: usize, g: &Group) -> Vec<f32> {
    let mut out = vec![0.0f32; g.rows() * width];
    for (r, s, k) in g.rows_iter() {
        let from = (s * t + k) * width;
        out[r * width..(r + 1) * width].copy_from_slice(&src[from..from + width]);
    }
    out
}

/// Writes a group's packed rows `[R, width]` to their places in `dst [N, T, width]`.
pub fn scatter(dst: &mut [f32], packed: &[f32], width: usize, t: usize, g: &Group) {
    for (r, s, k) in g.rows_iter() {
        let to = (s * t + k) * width;
        dst[to..to + width].copy_from_slice(&packed[r * width..(r + 1) * width]);
    }
}

/// The op's output from a group's packed h `[R, U]`, written into `out` (zeros
/// beforehand): `[N, T, U]` with `return_sequences` (masked steps get the carried h,
/// or stay zero with `zero_output`), else `[N, U]` (h after the last real step).
pub fn scatter_output(
    out: &mut [f32],
    h: &[f32],
    u: usize,
    t: usize,
    g: &Group,
    return_sequences: bool,
    zero_output: bool,
) {
    for (p, (&s, ts)) in g.samples.iter().zip(&g.steps).enumerate() {
        for (k, &tk) in ts.iter().enumerate() {
            let r = g.offsets[k] + p;
            let src = &h[r * u..(r + 1) * u];
            if return_sequences {
                // Times tk .. next real step (or T) show this h.
                let end = if zero_output {
                    tk + 1
                } else {
                    ts.get(k + 1).copied().unwrap_or(t)
                };
                for tt in tk..end {
                    out[(s * t + tt) * u..(s * t + tt + 1) * u].copy_from_slice(src);
                }
            } else if k + 1 == ts.len() {
                out[s * u..(s + 1) * u].copy_from_slice(src);
            }
        }
    }
}

/// The adjoint of `scatter_output`: dL/dh of each packed row `[R, U]` from the
/// output's gradient `dy` (the sum over the output steps that show that row's h).
pub fn gather_output_grad(
    dy: &[f32],
    u: usize,
    t: usize,
    g: &Group,
    return_sequences: bool,
    zero_output: bool,
) -> Vec<f32> {
    let mut dh = vec![0.0f32; g.rows() * u];
    for (p, (&s, ts)) in g.samples.iter().zip(&g.steps).enumerate() {
        for (k, &tk) in ts.iter().enumerate() {
            let r = g.offsets[k] + p;
            let dst = &mut dh[r * u..(r + 1) * u];
            if return_sequences {
                let end = if zero_output {
                    tk + 1
                } else {
                    ts.get(k + 1).copied().unwrap_or(t)
                };
                for tt in tk..end {
                    let from = &dy[(s * t + tt) * u..(s * t + tt + 1) * u];
                    for (a, &b) in dst.iter_mut().zip(from) {
                        *a += b;
                    }
                }
            } else if k + 1 == ts.len() {
                dst.copy_from_slice(&dy[s * u..(s + 1) * u]);
            }
        }
    }
    dh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_longest_first_time_major() {
        // Lengths 2, 0, 3, 1 (sample 1 all masked; sample 0 has a hole).
        let m = [
            1.0, 0.0, 1.0, //
            0.0, 0.0, 0.0, //
            1.0, 1.0, 1.0, //
            0.0, 0.0, 2.0,
        ];
        let p = Plan::new(Some(&m), 4, 3, 1);
        let g = &p.groups[0];
        assert_eq!(g.samples, vec![2, 0, 3]);
        assert_eq!(g.steps, vec![vec![0, 1, 2], vec![0, 2], vec![2]]);
        assert_eq!(g.batch_sizes, vec![3, 2, 1]);
        assert_eq!(g.offsets, vec![0, 3, 5, 6]);
        let p2 = Plan::new(Some(&m), 4, 3, 2);
        let loads: Vec<usize> = p2.groups.iter().map(|g| g.rows()).collect();
        assert_eq!(loads, vec![3, 3]);
    }

    #[test]
    fn output_grad_is_the_adjoint_of_the_output() {
        let m = [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
        let (n, t, u) = (3, 3, 2);
        for parts in [1, 2] {
            let p = Plan::new(Some(&m), n, t, parts);
            for (seq, zero) in [(true, false), (true, true), (false, false)] {
                let ylen = if seq { n * t * u } else { n * u };
                let dy: Vec<f32> = (0..ylen).map(|i| (i as f32 * 0.37).sin()).collect();
                // <scatter(h), dy> == <h, gather(dy)> for any h.
                let mut lhs = 0.0;
                let mut rhs = 0.0;
                for g in &p.groups {
                    let h: Vec<f32> = (0..g.rows() * u).map(|i| (i as f32).cos()).collect();
                    let mut y = vec![0.0; ylen];
                    scatter_output(&mut y, &h, u, t, g, seq, zero);
                    lhs += y.iter().zip(&dy).map(|(a, b)| a * b).sum::<f32>();
                    let dh = gather_output_grad(&dy, u, t, g, seq, zero);
                    rhs += h.iter().zip(&dh).map(|(a, b)| a * b).sum::<f32>();
                }
                assert!((lhs - rhs).abs() < 1e-4, "{seq} {zero}: {lhs} vs {rhs}");
            }
        }
    }
}
