//! What `fit` needs of a data augmentation, as a trait, so that training does not depend
//! on `data/` (which implements it: `data::augment::Augmentation`).

use crate::engine::Tensor;
use crate::error::Result;

/// Transforms a batch of training inputs (never validation data) in the producer
/// thread. The result must depend only on the batch and on `(seed, epoch, batch)`, so a
/// seeded run gives the same batches however the threads are timed.
pub trait BatchTransform: Send + Sync {
    /// True when the transform changes nothing: `fit` then skips it (and draws no seed).
    fn is_identity(&self) -> bool {
        false
    }
    /// Fails, naming the shape, unless the transform can take inputs of `shape`
    /// (checked once, before training).
    fn check_input(&self, shape: &[usize]) -> Result<()>;
    /// The transformed batch `x`, from random numbers fixed by `(seed, epoch, batch)`.
    fn apply_batch(&self, x: &Tensor, seed: u64, epoch: usize, batch: usize) -> Result<Tensor>;
}

/// Where Keras' `validation_split` cuts `n` samples: the first `floor(n * (1 - split))`
/// train, the rest validate. `split` must be in (0, 1) and leave both parts non-empty.
pub fn validation_split_index(n: usize, validation_split: f64) -> Result<usize> {
    use crate::error::Error;
    if !(validation_split > 0.0 && validation_split < 1.0) {
        return Err(Error::invalid(format!(
            "validation_split must be between 0 and 1 (exclusive), got {validation_split}"
        )));
    }
    // The same arithmetic as Keras (`int(math.floor(n * (1.0 - split)))`, in f64), so
    // the same samples end up in validation.
    let split_at = (n as f64 * (1.0 - validation_split)).floor() as usize;
    if split_at == 0 || split_at >= n {
        return Err(Error::invalid(format!(
            "{n} samples cannot be split into non-empty training and validation sets \
             with validation_split={validation_split}"
        )));
    }
    Ok(split_at)
}
