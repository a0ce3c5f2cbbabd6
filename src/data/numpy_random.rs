//! NumPy's legacy `np.random.RandomState(seed).shuffle`, bit for bit: Keras' data sets
//! (`imdb`, `reuters`) shuffle with it, so the same order needs the same generator.
//!
//! - The generator is MT19937 seeded as `init_genrand(seed)` (RandomState's legacy
//!   seeding of a 32-bit int seed).
//! - `shuffle` is Fisher-Yates from the end: for i = n-1 down to 1, swap i with
//!   j = `random_interval(i)`, which draws 32-bit words masked to the smallest
//!   all-ones mask covering i and rejects values above i (numpy's
//!   `_shuffle_raw` / `random_interval`, for i < 2^32).
//!
//! Checked against numpy in `tests/keras_text_datasets.rs` (golden file from
//! `scripts/golden/keras_text_datasets.py`).

const N: usize = 624;
const M: usize = 397;

/// MT19937, as numpy's `RandomState` holds it.
pub struct Mt19937 {
    state: [u32; N],
    pos: usize,
}

impl Mt19937 {
    /// `RandomState(seed)` for an integer seed.
    pub fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, pos: N }
    }

    fn twist(&mut self) {
        for i in 0..N {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % N] & 0x7fff_ffff);
            let mut v = self.state[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            self.state[i] = v;
        }
        self.pos = 0;
    }

    /// The next 32-bit word (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.twist();
        }
        let mut y = self.state[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A uniform integer in `0..=max` by masked rejection (numpy's `random_interval`).
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// Shuffles `items` in place as `RandomState.shuffle` does a 1-D array (at most
    /// 2^32 items).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.interval(i as u32) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_mt19937_output() {
        // The reference implementation's init_genrand(5489) stream starts so.
        let mut mt = Mt19937::new(5489);
        assert_eq!(mt.next_u32(), 3_499_211_612);
        assert_eq!(mt.next_u32(), 581_869_302);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..1000).collect();
        Mt19937::new(113).shuffle(&mut v);
        let mut s = v.clone();
        s.sort_unstable();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_ne!(v, s);
    }
}
