//! Seeded random numbers. One `Rng` (ChaCha8, portable and reproducible across machines)
//! feeds weight initialization, shuffling and dropout, so a seed fixes a whole run.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

pub struct Rng {
    inner: ChaCha8Rng,
    /// Set while a rank of a data-parallel run trains on rows `[lo, hi)` of a batch of
    /// `n` rows (`set_shard`): per-row draws (dropout masks) then take exactly the
    /// numbers one process would have drawn for those rows.
    shard: Option<Shard>,
}

/// Rows `[lo, hi)` of a batch of `n` rows (see `Rng::set_shard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub lo: usize,
    pub hi: usize,
    pub n: usize,
}

/// Where a generator stands (key, stream and position in it), to continue it exactly
/// after a restart (`BackupAndRestore`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RngState {
    pub seed: Vec<u8>,
    pub stream: u64,
    /// The position in 32-bit words, in decimal (a u128 does not fit a JSON number).
    pub word_pos: String,
}

impl Rng {
    /// The generator's exact state.
    pub fn state(&self) -> RngState {
        RngState {
            seed: self.inner.get_seed().to_vec(),
            stream: self.inner.get_stream(),
            word_pos: self.inner.get_word_pos().to_string(),
        }
    }

    /// A generator continuing exactly where `state` was taken.
    pub fn from_state(state: &RngState) -> crate::error::Result<Rng> {
        let bad = || crate::error::Error::invalid("invalid random generator state");
        let seed: [u8; 32] = state.seed.as_slice().try_into().map_err(|_| bad())?;
        let pos: u128 = state.word_pos.parse().map_err(|_| bad())?;
        let mut inner = ChaCha8Rng::from_seed(seed);
        inner.set_stream(state.stream);
        inner.set_word_pos(pos);
        Ok(Rng { inner, shard: None })
    }

    pub fn new(seed: u64) -> Rng {
        Rng {
            inner: ChaCha8Rng::seed_from_u64(seed),
            shard: None,
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

    /// Declares that the batches of the coming forward passes are rows `[lo, hi)` of a
    /// batch of `n` (data-parallel training), or clears it (`None`).
    pub fn set_shard(&mut self, shard: Option<Shard>) {
        self.shard = shard;
    }

    /// `rows * per_row` uniforms in [0, 1), one row after another. In a shard of a
    /// batch of `rows` rows, the generator skips the words of the rows before the shard,
    /// draws the shard's and skips those after it: every rank of a data-parallel run
    /// then draws what one process draws for the same rows of the whole batch, and all
    /// ranks' generators end at the same position. Each uniform is one 32-bit word.
    pub fn uniform_rows(&mut self, rows: usize, per_row: usize) -> Vec<f32> {
        let window = self.shard.filter(|s| s.hi - s.lo == rows);
        if let Some(s) = window {
            self.skip_words((s.lo * per_row) as u128);
        }
        let values = (0..rows * per_row).map(|_| self.uniform()).collect();
        if let Some(s) = window {
            self.skip_words(((s.n - s.hi) * per_row) as u128);
        }
        values
    }

    fn skip_words(&mut self, words: u128) {
        if words > 0 {
            let pos = self.inner.get_word_pos();
            self.inner.set_word_pos(pos + words);
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.inner.gen_range(0..=i);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generator_continues_exactly_from_its_state() {
        let mut a = Rng::new(7);
        for _ in 0..13 {
            a.uniform();
        }
        let mut b = Rng::from_state(&a.state()).unwrap();
        let xs: Vec<u64> = (0..50).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..50).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn shards_draw_what_the_whole_batch_draws() {
        let mut whole = Rng::new(3);
        let all = whole.uniform_rows(5, 3);
        let after = whole.next_u64();
        for (lo, hi) in [(0, 2), (2, 5)] {
            let mut part = Rng::new(3);
            part.set_shard(Some(Shard { lo, hi, n: 5 }));
            assert_eq!(part.uniform_rows(hi - lo, 3), all[lo * 3..hi * 3]);
            assert_eq!(part.next_u64(), after, "rows {lo}..{hi}");
        }
    }
}
