//! The one helper every kernel uses to run in parallel (rayon), with a work threshold
//! under which it stays serial so tiny ops do not pay for dispatch.
//!
//! Chunks are fixed by the item count and the pool size, never by work stealing, so any
//! per-chunk partial results reduce in the same order every run: given a seed and a
//! thread count, training is reproducible bit for bit.

use rayon::prelude::*;
use std::ops::Range;

/// Threads in nabla's pool.
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}

/// Sets the size of the global pool. Call once at start-up, before any op runs.
pub fn set_num_threads(n: usize) {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .build_global();
}

/// Splits `0..n` into at most `num_threads()` contiguous ranges of at least `min_chunk`
/// items. Deterministic in `n`, `min_chunk` and the pool size.
pub fn split(n: usize, min_chunk: usize) -> Vec<Range<usize>> {
    let parts = (n / min_chunk.max(1)).clamp(1, num_threads().max(1));
    let base = n / parts;
    let extra = n % parts;
    let mut ranges = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 0..parts {
        let len = base + usize::from(p < extra);
        ranges.push(start..start + len);
        start += len;
    }
    ranges
}

/// Runs `f` over the ranges of `split(n, min_chunk)`, in parallel when there is more
/// than one.
pub fn par_ranges(n: usize, min_chunk: usize, f: impl Fn(Range<usize>) + Sync + Send) {
    let ranges = split(n, min_chunk);
    if ranges.len() == 1 {
        f(ranges.into_iter().next().unwrap());
    } else {
        ranges.into_par_iter().for_each(f);
    }
}

/// Like `par_ranges`, returning each range's result in range order (for deterministic
/// reductions such as summing per-chunk weight gradients).
pub fn par_map_ranges<T: Send>(
    n: usize,
    min_chunk: usize,
    f: impl Fn(Range<usize>) -> T + Sync + Send,
) -> Vec<T> {
    let ranges = split(n, min_chunk);
    if ranges.len() == 1 {
        vec![f(ranges.into_iter().next().unwrap())]
    } else {
        ranges.into_par_iter().map(f).collect()
    }
}

/// Applies `f(index_of_first_item, chunk)` to consecutive `item_len`-sized groups of
/// `data`, split as `split` would split the item count.
pub fn par_chunks_mut<T: Send>(
    data: &mut [T],
    item_len: usize,
    min_items: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let n = data.len() / item_len.max(1);
    let ranges = split(n, min_items);
    if ranges.len() == 1 {
        f(0, data);
        return;
    }
    let mut pieces = Vec::with_capacity(ranges.len());
    let mut rest = data;
    for r in &ranges {
        let (head, tail) = rest.split_at_mut(r.len() * item_len);
        pieces.push((r.start, head));
        rest = tail;
    }
    pieces
        .into_par_iter()
        .for_each(|(start, piece)| f(start, piece));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_everything_once() {
        for n in [0, 1, 7, 100, 1001] {
            let r = split(n, 3);
            assert_eq!(r.first().unwrap().start, 0);
            assert_eq!(r.last().unwrap().end, n);
            for w in r.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
        }
    }
}
