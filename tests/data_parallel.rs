//! Data-parallel `fit` without MPI: two ranks as two threads of this process, joined by a
//! `Collective` over shared memory, so the default `cargo test --release` checks what
//! `tests/distributed.rs` checks under `mpirun` (feature `mpi`): two ranks with a global
//! batch of 16 end with one process's weights (batch 16) up to float reduction order,
//! dropout included, with validation and logs summed over the ranks.

use nabla::distributed::Collective;
use nabla::layers::{Activation, DenseConfig, DropoutConfig};
use nabla::training::DataParallel;
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
