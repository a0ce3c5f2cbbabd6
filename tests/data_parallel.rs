//! Data-parallel `fit` without MPI: two ranks as two threads of this process, joined by a
//! `Collective` over shared memory, so the default `cargo test --release` checks what
//! `tests/distributed.rs` checks under `mpirun` (feature `mpi`): two ranks with a global
//! batch of 16 end with one process's weights (batch 16) up to float reduction order,
//! dropout included, with validation and logs summed over the ranks. Also: synchronized
//! batch norm (`BnStats::Sync`) trains as one process while `Local` does not, and
//! `fit_source` on two ranks trains as one process.

use nabla::distributed::Collective;
use nabla::layers::{Activation, DenseConfig, DropoutConfig};
use nabla::training::{BnStats, DataParallel};
use nabla::{FitArgs, KerasLoss, Optimizer, Rng, Sequential, Tensor};
use std::rc::Rc;
use std::sync::{Arc, Barrier, Mutex};

/// Ranks as threads: each collective puts its buffer in its slot, waits for all, then
/// reads the slots (in rank order, so every rank sums in the same order).
struct Threads {
    rank: usize,
    size: usize,
    slots: Arc<Mutex<Vec<Vec<f32>>>>,
    bytes: Arc<Mutex<Vec<u8>>>,
    barrier: Arc<Barrier>,
}

impl Collective for Threads {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_reduce_sum(&self, buf: &mut [f32]) -> nabla::Result<()> {
        self.slots.lock().unwrap()[self.rank] = buf.to_vec();
        self.barrier.wait();
        {
            let slots = self.slots.lock().unwrap();
            for (i, v) in buf.iter_mut().enumerate() {
                *v = slots.iter().map(|s| s[i]).sum();
            }
        }
        self.barrier.wait();
        Ok(())
    }
    fn broadcast(&self, buf: &mut [f32]) -> nabla::Result<()> {
        if self.rank == 0 {
            self.slots.lock().unwrap()[0] = buf.to_vec();
        }
        self.barrier.wait();
        buf.copy_from_slice(&self.slots.lock().unwrap()[0]);
        self.barrier.wait();
        Ok(())
    }
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) -> nabla::Result<()> {
        if self.rank == 0 {
            *self.bytes.lock().unwrap() = bytes.clone();
        }
        self.barrier.wait();
        *bytes = self.bytes.lock().unwrap().clone();
        self.barrier.wait();
        Ok(())
    }
    fn barrier(&self) -> nabla::Result<()> {
        self.barrier.wait();
        Ok(())
    }
    fn describe(&self) -> String {
        format!("thread rank {} of {}", self.rank, self.size)
    }
}

fn data(n: usize) -> (Tensor, Tensor) {
    let mut rng = Rng::new(9);
    let x: Vec<f32> = (0..n * 8).map(|_| rng.normal()).collect();
    let y: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
    (Tensor::from_vec(x, &[n, 8]), Tensor::from_vec(y, &[n]))
}

/// Weights after 3 epochs, and the last epoch's logged loss and val_loss. `seed` differs
/// between the ranks: rank 0's initial weights and generator must win.
fn train(world: Option<Rc<dyn Collective>>, seed: u64, n: usize) -> (Vec<f32>, f32, f32) {
    let (x, y) = data(n);
    let mut m = Sequential::with_seed(&[8], seed);
    m.add(DenseConfig::new(16).activation(Activation::Relu))
        .unwrap();
    m.add(DropoutConfig {
        name: None,
        rate: 0.3,
    })
    .unwrap();
    m.add(DenseConfig::new(3).activation(Activation::Softmax))
        .unwrap();
    let loss = KerasLoss::from_name("sparse_categorical_crossentropy").unwrap();
    m.compile(loss, Optimizer::adam(0.01), &["accuracy"])
        .unwrap();
    let mut args = FitArgs::new()
        .epochs(3)
        .batch_size(16)
        .verbose(0)
        .validation_split(0.2);
    if let Some(w) = world {
        args = args.distributed(DataParallel::new(w));
    }
    let h = m.fit(&x, &y, args).unwrap();
    let w = m
        .params()
        .iter()
        .flat_map(|p| p.var.value().to_f32_vec())
        .collect();
    let last = |k: &str| *h.history[k].last().unwrap();
    (w, last("loss"), last("val_loss"))
}

/// One process, then two thread ranks (rank 1 from other initial weights), on `n` samples.
type Run = (Vec<f32>, f32, f32);
fn one_and_two(n: usize) -> (Run, Vec<Run>) {
    let one = train(None, 1, n);
    let slots = Arc::new(Mutex::new(vec![Vec::new(); 2]));
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(2));
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            let (slots, bytes, barrier) = (slots.clone(), bytes.clone(), barrier.clone());
            std::thread::spawn(move || {
                let world = Threads {
                    rank,
                    size: 2,
                    slots,
                    bytes,
                    barrier,
                };
                // Rank 1 starts from other weights: the broadcast replaces them.
                train(Some(Rc::new(world)), 1 + 100 * rank as u64, n)
            })
        })
        .collect();
    (one, ranks.into_iter().map(|t| t.join().unwrap()).collect())
}

#[test]
fn two_thread_ranks_match_one_process() {
    // 80 training samples: 5 batches of 16, 8 rows per rank.
    let ((one, loss1, val1), results) = one_and_two(100);
    // The ranks agree exactly (the same update from the same sums) ...
    assert_eq!(results[0].0, results[1].0);
    assert_eq!((results[0].1, results[0].2), (results[1].1, results[1].2));
    // ... and with one process up to the order of the float sums.
    let diff = one
        .iter()
        .zip(&results[0].0)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "weights differ by up to {diff}");
    assert!(
        (results[0].1 - loss1).abs() < 1e-4,
        "loss {} vs {loss1}",
        results[0].1
    );
    assert!(
        (results[0].2 - val1).abs() < 1e-4,
        "val_loss {} vs {val1}",
        results[0].2
    );
    // Training moved the weights (a broken exchange could not pass by doing nothing).
    let (start, _, _) = {
        let mut m = Sequential::with_seed(&[8], 1);
        m.add(DenseConfig::new(16).activation(Activation::Relu))
            .unwrap();
        m.add(DropoutConfig {
            name: None,
            rate: 0.3,
        })
        .unwrap();
        m.add(DenseConfig::new(3).activation(Activation::Softmax))
            .unwrap();
        let w: Vec<f32> = m
            .params()
            .iter()
            .flat_map(|p| p.var.value().to_f32_vec())
            .collect();
        (w, 0.0, 0.0)
    };
    let moved = start
        .iter()
        .zip(&one)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(moved > 1e-2, "training moved the weights by {moved}");
}

#[test]
fn a_rank_without_rows_in_the_last_batch_keeps_in_step() {
    // 42 samples, 33 for training after the 0.2 split (floor(42 * 0.8)): batches of 16,
    // 16 and 1, so rank 1 has no row in the last batch, sends zeros and still updates.
    let ((one, _, _), results) = one_and_two(42);
    assert_eq!(results[0].0, results[1].0);
    let diff = one
        .iter()
        .zip(&results[0].0)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "weights differ by up to {diff}");
}

/// Conv -> BatchNormalization -> ReLU -> Dense on `n` 8x8 images whose class is the
/// brightest of three regions: weights and moving statistics after 2 epochs of SGD.
fn train_bn(world: Option<Rc<dyn Collective>>, n: usize, batch: usize) -> nabla::Result<Vec<f32>> {
    use nabla::layers::keras::*;
    use nabla::layers::BatchNormalizationConfig;
    let mut rng = Rng::new(3);
    let x: Vec<f32> = (0..n * 64).map(|_| rng.uniform_range(0.0, 1.0)).collect();
    let y: Vec<f32> = x
        .chunks(64)
        .map(|im| {
            let s = |r: std::ops::Range<usize>| im[r].iter().sum::<f32>();
            let v = [s(0..20), s(20..42), s(42..64)];
            (0..3).fold(0, |b, i| if v[i] > v[b] { i } else { b }) as f32
        })
        .collect();
    let (x, y) = (
        Tensor::from_vec(x, &[n, 1, 8, 8]),
        Tensor::from_vec(y, &[n]),
    );
    let mut m = Sequential::with_seed(&[1, 8, 8], 7);
    m.add(Conv2D(4, 3)).unwrap();
    m.add(BatchNormalizationConfig::default()).unwrap();
    m.add(Activation(nabla::layers::Activation::Relu)).unwrap();
    m.add(Flatten()).unwrap();
    m.add(Dense(3).activation(nabla::layers::Activation::Softmax))
        .unwrap();
    let loss = KerasLoss::from_name("sparse_categorical_crossentropy").unwrap();
    m.compile(loss, Optimizer::sgd(0.1), &[]).unwrap();
    let mut args = FitArgs::new().epochs(2).batch_size(batch).verbose(0);
    if let Some(w) = world {
        let mut dp = DataParallel::new(w);
        dp.bn_stats = BN_STATS.with(|b| b.get());
        args = args.distributed(dp);
    }
    m.fit(&x, &y, args)?;
    Ok(m.params()
        .iter()
        .flat_map(|p| p.var.value().to_f32_vec())
        .collect())
}

thread_local! {
    static BN_STATS: std::cell::Cell<BnStats> = const { std::cell::Cell::new(BnStats::Local) };
}

/// `train_bn` on two thread ranks with `bn` batch statistics; rank 0's result, after
/// checking that both ranks agree exactly.
fn train_bn_on_two(bn: BnStats, n: usize, batch: usize) -> Vec<f32> {
    let slots = Arc::new(Mutex::new(vec![Vec::new(); 2]));
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(2));
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            let (slots, bytes, barrier) = (slots.clone(), bytes.clone(), barrier.clone());
            std::thread::spawn(move || {
                BN_STATS.with(|b| b.set(bn));
                let world = Threads {
                    rank,
                    size: 2,
                    slots,
                    bytes,
                    barrier,
                };
                train_bn(Some(Rc::new(world)), n, batch).unwrap()
            })
        })
        .collect();
    let mut results: Vec<Vec<f32>> = ranks.into_iter().map(|t| t.join().unwrap()).collect();
    if bn == BnStats::Sync {
        // Local: each rank keeps its own moving statistics, so only Sync agrees in all.
        assert_eq!(results[0], results[1], "{bn:?}: the ranks disagree");
    }
    results.swap_remove(0)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0f32, f32::max)
}

#[test]
fn synchronized_batch_norm_matches_one_process() {
    // Global batch 64 (32 rows per rank), then 45 (23 and 22 rows: unequal shares, whose
    // gradient sums count with their weights in the global loss).
    for (n, batch) in [(256, 64), (200, 45)] {
        let one = train_bn(None, n, batch).unwrap();
        let sync = train_bn_on_two(BnStats::Sync, n, batch);
        let local = train_bn_on_two(BnStats::Local, n, batch);
        let (d_sync, d_local) = (max_diff(&one, &sync), max_diff(&one, &local));
        assert!(
            d_sync < 1e-5,
            "n {n} batch {batch}: sync differs from one process by {d_sync}"
        );
        // Each rank's own statistics give other gradients: the test can tell.
        assert!(
            d_local > 1e-3,
            "n {n} batch {batch}: local differs from one process by only {d_local}"
        );
    }
}

#[test]
fn synchronized_batch_norm_refuses_a_rank_without_rows() {
    // 65 samples in batches of 64: the last batch has one row for two ranks.
    let slots = Arc::new(Mutex::new(vec![Vec::new(); 2]));
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(2));
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            let (slots, bytes, barrier) = (slots.clone(), bytes.clone(), barrier.clone());
            std::thread::spawn(move || {
                BN_STATS.with(|b| b.set(BnStats::Sync));
                let world = Threads {
                    rank,
                    size: 2,
                    slots,
                    bytes,
                    barrier,
                };
                train_bn(Some(Rc::new(world)), 65, 64).map_err(|e| e.to_string())
            })
        })
        .collect();
    for t in ranks {
        let msg = t.join().unwrap().expect_err("fit must fail");
        assert!(
            msg.contains("without rows") && msg.contains("synchronized batch norm"),
            "{msg}"
        );
    }
}

/// `f(world)` on two thread ranks; each rank's result.
fn on_two_ranks<T: Send + 'static>(f: fn(Rc<dyn Collective>) -> T) -> Vec<T> {
    let slots = Arc::new(Mutex::new(vec![Vec::new(); 2]));
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(2));
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            let (slots, bytes, barrier) = (slots.clone(), bytes.clone(), barrier.clone());
            std::thread::spawn(move || {
                f(Rc::new(Threads {
                    rank,
                    size: 2,
                    slots,
                    bytes,
                    barrier,
                }))
            })
        })
        .collect();
    ranks.into_iter().map(|t| t.join().unwrap()).collect()
}

/// `fit_source` over a list of batches (16, 16, 15 and 16 rows: the batch of 15 splits
/// 8/7), with dropout and validation data: weights and the last val_loss.
fn train_source(world: Option<Rc<dyn Collective>>) -> (Vec<f32>, f32) {
    use nabla::training::Batch;
    let (x, y) = data(63);
    let mut source: Vec<Batch> = [(0, 16), (16, 32), (32, 47), (47, 63)]
        .iter()
        .map(|&(lo, hi)| Batch::new(x.slice_rows(lo, hi), y.slice_rows(lo, hi)))
        .collect();
    let (vx, vy) = data(21);
    let mut m = Sequential::with_seed(&[8], 1);
    m.add(DenseConfig::new(16).activation(Activation::Relu))
        .unwrap();
    m.add(DropoutConfig {
        name: None,
        rate: 0.3,
    })
    .unwrap();
    m.add(DenseConfig::new(3).activation(Activation::Softmax))
        .unwrap();
    let loss = KerasLoss::from_name("sparse_categorical_crossentropy").unwrap();
    // SGD: an update proportional to the gradient, so a doubled gradient (both ranks
    // training on the whole batch) would show.
    m.compile(loss, Optimizer::sgd(0.2), &["accuracy"]).unwrap();
    let mut args = FitArgs::new().epochs(3).verbose(0).validation_data(vx, vy);
    if let Some(w) = world {
        args = args.distributed(DataParallel::new(w));
    }
    let h = m.fit_source(&mut source, args).unwrap();
    let w = m
        .params()
        .iter()
        .flat_map(|p| p.var.value().to_f32_vec())
        .collect();
    (w, *h.history["val_loss"].last().unwrap())
}

#[test]
fn fit_source_on_two_thread_ranks_matches_one_process() {
    // Each rank asks the source for the whole global batch and trains on its share.
    let (one, val1) = train_source(None);
    let ranks = on_two_ranks(|w| train_source(Some(w)));
    assert_eq!(ranks[0], ranks[1], "the ranks disagree");
    let d = max_diff(&one, &ranks[0].0);
    assert!(d < 1e-5, "weights differ from one process by {d}");
    assert!(
        (ranks[0].1 - val1).abs() < 1e-4,
        "val_loss {} vs {val1}",
        ranks[0].1
    );
}
