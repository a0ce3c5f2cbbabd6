//! The hook that makes `batch_norm_train` a synchronized batch norm (PyTorch's
//! SyncBatchNorm): while a `BatchNormSync` is installed on this thread, the per-channel
//! sums of the training forward (count, sum of x, centred sum of squares) and of the
//! backward (`sum(dy)`, `sum(dy * (x - mean))`) are summed over the ranks, so every rank
//! normalizes with the statistics of the global batch and gets the exact gradient of the
//! global-batch normalization for its rows.
//!
//! Why a thread-local hook: `ops` sits below `distributed` and `training` (it may not
//! import them), and the layer API has no place for a communicator. Data-parallel
//! training installs the hook around a step (`SyncGuard`); `batch_norm_train` reads it at
//! forward time and keeps it in its backward closure, so the backward pass reduces with
//! the same hook even after the guard is gone.

use std::cell::RefCell;
use std::rc::Rc;

/// Sums of per-channel values over the ranks, in place. Every rank must call these in
/// the same order with buffers of the same length (the rule of collectives).
pub trait BatchNormSync {
    /// Replaces `buf` by its element-wise sum over the ranks (counts and sums of x).
    fn sum_stats(&self, buf: &mut [f64]);
    /// Gradient sums: each rank's `dy` is the gradient of its own share's loss, which
    /// counts in the global loss with the rank's weight `w` (its share of the batch), so
    /// this replaces `buf` by `sum over ranks of (w * buf) / w_own`: the global sum in
    /// this rank's scale.
    fn sum_grads(&self, buf: &mut [f64]);
}

/// What the kernels call on their per-channel sums (`batch_norm_train_forward`'s and
/// `_backward`'s last argument): replaces them in place by their sums over the ranks.
pub type ChannelSums<'a> = dyn Fn(&mut [f64]) + 'a;

thread_local! {
    static SYNC: RefCell<Option<Rc<dyn BatchNormSync>>> = const { RefCell::new(None) };
}

/// The hook installed on this thread, if any.
pub fn current() -> Option<Rc<dyn BatchNormSync>> {
    SYNC.with(|s| s.borrow().clone())
}

/// Installs a hook for its lifetime and restores the previous one (usually none) when
/// dropped, also on an early return with `?`.
pub struct SyncGuard {
    previous: Option<Rc<dyn BatchNormSync>>,
}

impl SyncGuard {
    pub fn install(sync: Rc<dyn BatchNormSync>) -> SyncGuard {
        let previous = SYNC.with(|s| s.borrow_mut().replace(sync));
        SyncGuard { previous }
    }
}

impl Drop for SyncGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        SYNC.with(|s| *s.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Double;
    impl BatchNormSync for Double {
        fn sum_stats(&self, buf: &mut [f64]) {
            buf.iter_mut().for_each(|v| *v *= 2.0);
        }
        fn sum_grads(&self, buf: &mut [f64]) {
            buf.iter_mut().for_each(|v| *v *= 2.0);
        }
    }

    #[test]
    fn the_guard_installs_and_restores() {
        assert!(current().is_none());
        {
            let _g = SyncGuard::install(Rc::new(Double));
            let mut b = [1.0];
            current().expect("installed").sum_stats(&mut b);
            assert_eq!(b, [2.0]);
        }
        assert!(current().is_none());
    }

    /// Two identical ranks (a reducer that doubles): the global batch is this batch twice,
    /// so y, the statistics and dx are the plain kernel's, and dgamma, dbeta (this rank's
    /// own) too. A reducer that the kernels ignored or applied to the wrong sums would
    /// change the count or the sums by a factor 2 and fail.
    #[test]
    fn two_identical_ranks_give_the_plain_kernels_results() {
        use crate::engine::Rng;
        use crate::ops::batchnorm::*;
        let d = BatchNormDims { n: 6, c: 3, s: 5 };
        let len = d.n * d.c * d.s;
        let mut rng = Rng::new(5);
        let mut draw = |n: usize, lo: f32, hi: f32| -> Vec<f32> {
            (0..n).map(|_| rng.uniform_range(lo, hi)).collect()
        };
        let (x, dy) = (draw(len, 1.0, 4.0), draw(len, -1.0, 1.0));
        let (gamma, beta) = (draw(d.c, 0.5, 1.5), draw(d.c, -1.0, 1.0));
        let run = |reduce: Option<&ChannelSums<'_>>, post: Post| {
            let (mut mean, mut var, mut inv) = (vec![0.0; d.c], vec![0.0; d.c], vec![0.0; d.c]);
            let y = batch_norm_train_forward(
                &mut mean, &mut var, &mut inv, &x, &gamma, &beta, 1e-3, post, &d, reduce,
            );
            let (mut dg, mut db) = (vec![0.0; d.c], vec![0.0; d.c]);
            let dx = batch_norm_train_backward(
                &mut dg, &mut db, &dy, &x, &gamma, &beta, &mean, &inv, post, &d, reduce,
            );
            [y, mean, var, dx, dg, db]
        };
        // With and without the fused ReLU (the same reductions, over the masked g).
        for post in [Post::None, Post::Relu] {
            let calls = std::cell::Cell::new(0);
            let double = |b: &mut [f64]| {
                calls.set(calls.get() + 1);
                b.iter_mut().for_each(|v| *v *= 2.0);
            };
            let plain = run(None, post);
            let synced = run(Some(&double), post);
            assert_eq!(calls.get(), 3, "two reductions forward, one backward");
            for (k, (a, b)) in plain.iter().zip(&synced).enumerate() {
                for (u, v) in a.iter().zip(b) {
                    assert!(
                        (u - v).abs() <= 1e-5 * u.abs().max(1.0),
                        "{post:?} output {k}: {u} vs {v}"
                    );
                }
            }
        }
        // A reducer that sums something else (here: adds a constant) changes dx.
        let wrong = |b: &mut [f64]| b.iter_mut().for_each(|v| *v += 1.0);
        let (plain, off) = (run(None, Post::None), run(Some(&wrong), Post::None));
        assert!(plain[3]
            .iter()
            .zip(&off[3])
            .any(|(u, v)| (u - v).abs() > 1e-3));
    }

    /// Through the op: with the hook installed, `batch_norm_train` reduces in the forward
    /// and, after the guard is gone, in the backward (the closure keeps the hook).
    #[test]
    fn the_op_keeps_the_hook_for_its_backward() {
        use crate::engine::{Tensor, Var};
        use crate::ops::batchnorm::batch_norm_train;
        struct Count(std::cell::Cell<usize>, std::cell::Cell<usize>);
        impl BatchNormSync for Count {
            fn sum_stats(&self, b: &mut [f64]) {
                self.0.set(self.0.get() + 1);
                b.iter_mut().for_each(|v| *v *= 2.0);
            }
            fn sum_grads(&self, b: &mut [f64]) {
                self.1.set(self.1.get() + 1);
                b.iter_mut().for_each(|v| *v *= 2.0);
            }
        }
        let x = Tensor::from_vec((0..24).map(|i| (i * i % 7) as f32).collect(), &[12, 2]);
        let run = |hook: Option<Rc<Count>>| {
            let xv = Var::parameter(x.clone());
            let g = Var::parameter(Tensor::from_vec(vec![1.5, 0.5], &[2]));
            let b = Var::parameter(Tensor::zeros(&[2]));
            let y = {
                let _guard = hook.map(|h| SyncGuard::install(h as Rc<dyn BatchNormSync>));
                batch_norm_train(&xv, &g, &b, 1e-3).unwrap().0
            };
            let dy = Tensor::from_vec((0..24).map(|i| (i % 5) as f32 - 2.0).collect(), &[12, 2]);
            y.backward_with(dy);
            (y.value().into_vec(), xv.grad().unwrap().into_vec())
        };
        let hook = Rc::new(Count(Default::default(), Default::default()));
        let plain = run(None);
        let synced = run(Some(hook.clone()));
        assert_eq!((hook.0.get(), hook.1.get()), (2, 1));
        for (a, b) in plain
            .0
            .iter()
            .chain(&plain.1)
            .zip(synced.0.iter().chain(&synced.1))
        {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
