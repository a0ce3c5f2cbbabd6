//! Data-parallel training's communication: a `Collective` is the group of processes
//! ("ranks") training one model together. `Solo` is a world of one (every operation a
//! no-op); `MpiWorld` (cargo feature `mpi`) is MPI's `COMM_WORLD`, so `mpirun -np N`
//! starts N ranks. `training::fit` uses only this trait: it broadcasts the initial state
//! from rank 0, all-reduces the gradients in buckets (`buckets.rs`) and sums what
//! `evaluate` counted on each rank's share of the samples.
//!
//! Uses only `error`: buffers are plain `f32`/byte slices, so this folder sits below the
//! tensors' users and any of them may call it.

pub mod buckets;
#[cfg(feature = "mpi")]
pub mod mpi_world;

pub use buckets::{Buckets, DEFAULT_BUCKET_BYTES};
#[cfg(feature = "mpi")]
pub use mpi_world::MpiWorld;

use crate::error::Result;

/// The group of ranks training one model. Every rank must make the same calls in the
/// same order with buffers of the same lengths (MPI's rule for collectives).
pub trait Collective {
    /// This process's index, 0 to `size() - 1`; rank 0 writes files and prints.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Replaces `buf` on every rank by the element-wise sum over the ranks.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()>;
    /// `all_reduce_sum` for f64 (synchronized batch norm's per-channel sums). The
    /// default goes through f32 (about 7 significant digits); `MpiWorld` sums in f64.
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<()> {
        let mut f: Vec<f32> = buf.iter().map(|&v| v as f32).collect();
        self.all_reduce_sum(&mut f)?;
        for (b, v) in buf.iter_mut().zip(f) {
            *b = v as f64;
        }
        Ok(())
    }
    /// Replaces `buf` on every rank by rank 0's.
    fn broadcast(&self, buf: &mut [f32]) -> Result<()>;
    /// Replaces `bytes` on every rank by rank 0's (whatever its length).
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) -> Result<()>;
    /// Returns when every rank has called it.
    fn barrier(&self) -> Result<()>;
    /// A short description for logs: "MPI, rank 1 of 4".
    fn describe(&self) -> String;
    /// Ends every rank's process with `code` (after an error on this one, so that the
    /// others do not wait for it in a collective).
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// A world of one process: nothing to exchange.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _buf: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn broadcast(&self, _buf: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn broadcast_bytes(&self, _bytes: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "one process".into()
    }
}

/// The rows `[lo, hi)` of a batch of `n` rows that `rank` of `size` trains on: the
/// batch cut into `size` nearly equal consecutive parts (the first `n % size` ranks
/// get one row more), so the parts in rank order are the whole batch.
pub fn shard(n: usize, rank: usize, size: usize) -> (usize, usize) {
    let (q, r) = (n / size, n % size);
    let lo = rank * q + rank.min(r);
    let hi = lo + q + usize::from(rank < r);
    (lo, hi)
}

/// Sums `values` over the ranks in place, each weighted by `count` on its rank, and
/// returns the weighted means and the total count: how per-rank means (loss, accuracy
/// over a rank's share) become the mean over all samples.
pub fn weighted_mean(world: &dyn Collective, values: &mut [f32], count: usize) -> Result<usize> {
    let mut buf: Vec<f32> = values.iter().map(|v| v * count as f32).collect();
    buf.push(count as f32);
    world.all_reduce_sum(&mut buf)?;
    let total = buf.pop().expect("pushed") as usize;
    for (v, s) in values.iter_mut().zip(&buf) {
        *v = if total > 0 { s / total as f32 } else { 0.0 };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order() {
        for n in [0, 1, 5, 128, 129] {
            for size in 1..5 {
                let mut next = 0;
                for rank in 0..size {
                    let (lo, hi) = shard(n, rank, size);
                    assert_eq!(lo, next, "n {n} size {size} rank {rank}");
                    assert!(hi - lo <= n.div_ceil(size));
                    next = hi;
                }
                assert_eq!(next, n);
            }
        }
        assert_eq!(shard(128, 1, 2), (64, 128));
        assert_eq!(shard(5, 0, 2), (0, 3));
    }

    #[test]
    fn solo_is_a_world_of_one() {
        let mut v = vec![1.0, 2.0];
        Solo.all_reduce_sum(&mut v).unwrap();
        Solo.broadcast(&mut v).unwrap();
        assert_eq!(v, [1.0, 2.0]);
        let total = weighted_mean(&Solo, &mut v, 4).unwrap();
        assert_eq!((total, v), (4, vec![1.0, 2.0]));
    }
}
