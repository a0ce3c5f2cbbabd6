//! Gradient buckets: many small gradients fused into a few large messages (Horovod's
//! tensor fusion, PyTorch DDP's buckets), because an all-reduce costs a latency per
//! message plus its bytes over the bandwidth: one 4 MB message instead of 20 small
//! ones saves 19 latencies, while buckets far larger than that gain nothing and need
//! one more full copy of the gradients in memory.

/// The default bucket size: 4 MB of f32 (a million values). Large enough that the
/// latency is a small share of a bucket's time over shared memory or Ethernet, small
/// enough that the built-in nets with over a million weights get several buckets.
pub const DEFAULT_BUCKET_BYTES: usize = 4 << 20;

/// Which consecutive tensors (by their lengths) go into which bucket: tensors are kept
/// whole and in order, and a bucket is closed when adding the next tensor would pass
/// the size (a tensor larger than a bucket gets one of its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Per bucket, the range of tensor indices it holds.
    pub ranges: Vec<std::ops::Range<usize>>,
}

impl Buckets {
    pub fn plan(lengths: &[usize], bucket_bytes: usize) -> Buckets {
        let cap = (bucket_bytes / 4).max(1);
        let mut ranges = Vec::new();
        let (mut start, mut filled) = (0, 0);
        for (i, &len) in lengths.iter().enumerate() {
            if filled > 0 && filled + len > cap {
                ranges.push(start..i);
                start = i;
                filled = 0;
            }
            filled += len;
        }
        if start < lengths.len() {
            ranges.push(start..lengths.len());
        }
        Buckets { ranges }
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_tensors_whole_and_in_order() {
        // Caps of 10 values: [4, 4] fit, 4 more would not; 20 alone; [3].
        let b = Buckets::plan(&[4, 4, 4, 20, 3], 40);
        assert_eq!(b.ranges, vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(Buckets::plan(&[1, 2, 3], 1 << 20).ranges, vec![0..3]);
        assert!(Buckets::plan(&[], 40).is_empty());
    }
}
