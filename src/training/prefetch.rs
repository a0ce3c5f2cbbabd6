//! Training batches prepared on a background thread, so the next batch is ready when a
//! step ends.
//!
//! For each epoch, `fit` starts one producer thread (a scoped thread: it borrows the
//! training tensors and the epoch's shuffled order). The producer gathers each batch's
//! rows, augments them when a [`BatchTransform`] (data augmentation) is configured, and sends the batch down a
//! bounded channel of depth [`DEPTH`], so it runs at most that many batches ahead and
//! holds at most `DEPTH + 1` batches in memory. The main thread receives them in order.
//!
//! The batches are exactly those of the old in-line loop: the order is shuffled by the
//! main thread before the producer starts (so the model's generator is drawn in the same
//! sequence), the producer splits it into the same chunks, and augmentation draws from
//! `batch_rng(seed, epoch, batch)`, which does not depend on timing.
//!
//! The producer is a plain thread doing serial work (copies and per-pixel loops), outside
//! the rayon pool the kernels use. An error it meets is sent to the main thread as the
//! batch's result; if it dies without sending (a panic), the main thread gets an error
//! saying so instead of waiting forever.
//!
//! Both sides are timed: the producer reports how long it spent preparing each batch,
//! and the main thread how long it waited for it. A wait near zero while preparing takes
//! real time means the preparation is hidden behind the steps.

use super::transform::BatchTransform;
use crate::distributed::shard;
use crate::engine::Tensor;
use crate::error::{Error, Result};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

/// How many prepared batches may wait in the channel. Two covers a step that is briefly
/// faster than the preparation; more only holds more memory.
pub const DEPTH: usize = 2;

/// One batch as the producer hands it over.
pub struct PreparedBatch {
    /// One tensor per model input.
    pub xs: Vec<Tensor>,
    /// One tensor of labels per model output.
    pub ys: Vec<Tensor>,
    /// One weight per sample (`fit`'s class and sample weights), gathered in the same
    /// order as the rows; `None` without weights.
    pub weights: Option<Tensor>,
    /// Samples in the batch (the last one may be short).
    pub size: usize,
    /// Samples in the global batch this one is a rank's share of (data-parallel
    /// training, `Prefetcher::start_share`); `size` when it is the whole batch.
    pub global: usize,
    /// Time the producer spent gathering (and augmenting) it.
    pub prepare: Duration,
}

/// What the producer needs to augment: the config and the run's augmentation seed.
#[derive(Clone, Copy)]
pub struct AugmentWith<'a> {
    pub augmentation: &'a dyn BatchTransform,
    pub seed: u64,
}

/// The main thread's end of one epoch's producer.
pub struct Prefetcher<'scope> {
    rx: Receiver<Result<PreparedBatch>>,
    handle: Option<ScopedJoinHandle<'scope, ()>>,
}

impl<'scope> Prefetcher<'scope> {
    /// Starts the producer for one epoch: batches of `batch_size` rows of each of `xs`
    /// and `ys` taken in `order`, the inputs augmented with `augment` if given.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        xs: &'env [Tensor],
        ys: &'env [Tensor],
        order: &'env [usize],
        batch_size: usize,
        epoch: usize,
        augment: Option<AugmentWith<'env>>,
    ) -> Prefetcher<'scope> {
        Prefetcher::start_share(scope, xs, ys, None, order, batch_size, epoch, augment, None)
    }

    /// `start`, with one weight per sample (`weights`: `[N]`) gathered into each batch
    /// by the same indices as its rows (augmentation changes only the inputs), and with
    /// `share = Some((rank, ranks))` only that rank's rows of each batch
    /// (`distributed::shard`; data-parallel training): without augmentation only those
    /// rows are gathered; with it the whole batch is gathered and augmented first, since
    /// a transform may draw its numbers over the whole batch.
    #[allow(clippy::too_many_arguments)]
    pub fn start_share<'env>(
        scope: &'scope Scope<'scope, 'env>,
        xs: &'env [Tensor],
        ys: &'env [Tensor],
        weights: Option<&'env Tensor>,
        order: &'env [usize],
        batch_size: usize,
        epoch: usize,
        augment: Option<AugmentWith<'env>>,
        share: Option<(usize, usize)>,
    ) -> Prefetcher<'scope> {
        let (tx, rx) = sync_channel(DEPTH);
        let handle = std::thread::Builder::new()
            .name("nabla-batches".into())
            .spawn_scoped(scope, move || {
                for (batch, all) in order.chunks(batch_size).enumerate() {
                    let start = Instant::now();
                    let (lo, hi) = match share {
                        Some((rank, ranks)) => shard(all.len(), rank, ranks),
                        None => (0, all.len()),
                    };
                    // The rows gathered: the share's, or all when augmenting.
                    let idx = if augment.is_some() { all } else { &all[lo..hi] };
                    let prepared = prepare(xs, ys, idx, epoch, batch, augment).map(|(xs, ys)| {
                        let (xs, ys) = if idx.len() == hi - lo {
                            (xs, ys)
                        } else {
                            let rows = |ts: Vec<Tensor>| -> Vec<Tensor> {
                                ts.iter().map(|t| t.slice_rows(lo, hi)).collect()
                            };
                            (rows(xs), rows(ys))
                        };
                        PreparedBatch {
                            xs,
                            ys,
                            weights: weights.map(|w| w.gather_rows(&all[lo..hi])),
                            size: hi - lo,
                            global: all.len(),
                            prepare: start.elapsed(),
                        }
                    });
                    let failed = prepared.is_err();
                    // A send fails only when the main thread has stopped listening (it
                    // returned early with an error): nothing left to do.
                    if tx.send(prepared).is_err() || failed {
                        return;
                    }
                }
            });
        match handle {
            Ok(handle) => Prefetcher {
                rx,
                handle: Some(handle),
            },
            Err(e) => {
                // The system refused a thread: report it as the first batch's result.
                let (tx, rx) = sync_channel(1);
                let _ = tx.send(Err(Error::invalid(format!(
                    "could not start the batch producer thread: {e}"
                ))));
                Prefetcher { rx, handle: None }
            }
        }
    }

    /// The next batch and how long the main thread waited for it.
    pub fn next_batch(&mut self) -> Result<(PreparedBatch, Duration)> {
        let start = Instant::now();
        match self.rx.recv() {
            Ok(batch) => Ok((batch?, start.elapsed())),
            Err(_) => {
                // The producer hung up before the epoch's last batch: it panicked.
                let why = match self.handle.take().map(|h| h.join()) {
                    Some(Err(panic)) => panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_string()),
                    _ => "no reason given".to_string(),
                };
                Err(Error::invalid(format!(
                    "the batch producer thread stopped before the end of the epoch: {why}"
                )))
            }
        }
    }
}

/// Gathers one batch and augments its inputs if asked.
fn prepare(
    xs: &[Tensor],
    ys: &[Tensor],
    idx: &[usize],
    epoch: usize,
    batch: usize,
    augment: Option<AugmentWith>,
) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let mut xb: Vec<Tensor> = xs.iter().map(|x| x.gather_rows(idx)).collect();
    if let Some(a) = augment {
        for x in &mut xb {
            *x = a.augmentation.apply_batch(x, a.seed, epoch, batch)?;
        }
    }
    Ok((xb, ys.iter().map(|y| y.gather_rows(idx)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_come_in_order_and_match_the_inline_gather() {
        let x = Tensor::from_vec((0..40).map(|v| v as f32).collect(), &[10, 1, 2, 2]);
        let x2 = Tensor::from_vec((0..20).map(|v| -v as f32).collect(), &[10, 2]);
        let y = Tensor::from_vec((0..10).map(|v| v as f32).collect(), &[10]);
        let (xs, ys) = (vec![x, x2], vec![y]);
        let order = vec![3, 1, 4, 0, 5, 9, 2, 6, 8, 7];
        std::thread::scope(|s| {
            let mut p = Prefetcher::start(s, &xs, &ys, &order, 4, 0, None);
            for idx in order.chunks(4) {
                let (b, _) = p.next_batch().unwrap();
                assert_eq!(b.size, idx.len());
                assert_eq!(b.xs[0].to_f32_vec(), xs[0].gather_rows(idx).to_f32_vec());
                assert_eq!(b.xs[1].to_f32_vec(), xs[1].gather_rows(idx).to_f32_vec());
                assert_eq!(b.ys[0].to_f32_vec(), ys[0].gather_rows(idx).to_f32_vec());
            }
            // Past the last batch: the producer has finished, which is an error to ask.
            assert!(p.next_batch().is_err());
        });
    }

    #[test]
    fn weights_follow_their_rows() {
        let x = Tensor::from_vec((0..10).map(|v| v as f32).collect(), &[10, 1]);
        let w = Tensor::from_vec((0..10).map(|v| 100.0 + v as f32).collect(), &[10]);
        let (xs, ys) = (vec![x.clone()], vec![x]);
        let order = vec![7, 2, 9, 0, 4, 1, 3, 8, 6, 5];
        std::thread::scope(|s| {
            let mut p = Prefetcher::start_share(s, &xs, &ys, Some(&w), &order, 3, 0, None, None);
            for _ in order.chunks(3) {
                let (b, _) = p.next_batch().unwrap();
                let rows = b.xs[0].to_f32_vec();
                let ws = b.weights.unwrap().to_f32_vec();
                assert_eq!(rows.iter().map(|r| r + 100.0).collect::<Vec<_>>(), ws);
            }
        });
    }

    #[test]
    fn a_share_is_the_ranks_rows_of_each_batch() {
        let x = Tensor::from_vec((0..20).map(|v| v as f32).collect(), &[10, 2]);
        let y = Tensor::from_vec((0..10).map(|v| v as f32).collect(), &[10]);
        let w = Tensor::from_vec((0..10).map(|v| 100.0 + v as f32).collect(), &[10]);
        let (xs, ys) = (vec![x], vec![y]);
        let order = vec![3, 1, 4, 0, 5, 9, 2, 6, 8, 7];
        for rank in 0..3 {
            std::thread::scope(|s| {
                let mut p = Prefetcher::start_share(
                    s,
                    &xs,
                    &ys,
                    Some(&w),
                    &order,
                    4,
                    0,
                    None,
                    Some((rank, 3)),
                );
                for all in order.chunks(4) {
                    let (b, _) = p.next_batch().unwrap();
                    let (lo, hi) = shard(all.len(), rank, 3);
                    let idx = &all[lo..hi];
                    assert_eq!((b.size, b.global), (idx.len(), all.len()));
                    assert_eq!(b.xs[0].to_f32_vec(), xs[0].gather_rows(idx).to_f32_vec());
                    assert_eq!(b.ys[0].to_f32_vec(), ys[0].gather_rows(idx).to_f32_vec());
                    assert_eq!(
                        b.weights.unwrap().to_f32_vec(),
                        w.gather_rows(idx).to_f32_vec()
                    );
                }
            });
        }
    }

    #[test]
    fn dropping_the_receiver_early_stops_the_producer() {
        // The scope joins the producer: this test would hang if it kept waiting to send.
        let x = Tensor::zeros(&[100, 1, 2, 2]);
        let (xs, ys) = (vec![x], vec![Tensor::zeros(&[100])]);
        let order: Vec<usize> = (0..100).collect();
        std::thread::scope(|s| {
            let mut p = Prefetcher::start(s, &xs, &ys, &order, 1, 0, None);
            p.next_batch().unwrap();
        });
    }
}
