//! Seeded random numbers. One `Rng` (ChaCha8, portable and reproducible across machines)
//! feeds weight initialization, shuffling and dropout, so a seed fixes a whole run.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

pub struct Rng {
    inner: ChaCha8Rng,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            inner: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A fresh generator derived from this one (for a layer, a worker, a stream).
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.inner.gen())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.inner.gen()
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        self.inner.gen::<f32>()
    }

    pub fn uniform_range(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.uniform()
    }

    pub fn normal(&mut self) -> f32 {
        StandardNormal.sample(&mut self.inner)
    }

    /// Normal truncated at two standard deviations (Keras' truncated_normal, used by
    /// glorot_normal and he_normal).
    pub fn truncated_normal(&mut self) -> f32 {
        loop {
            let x = self.normal();
            if x.abs() <= 2.0 {
                return x;
            }
        }
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.inner.gen_range(0..n)
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.inner.gen_range(0..=i);
            items.swap(i, j);
        }
    }
}
