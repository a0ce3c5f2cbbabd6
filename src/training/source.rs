//! Training data as a source of batches (Keras' `fit` on a generator or a `tf.data`
//! dataset): `Model::fit_source` takes any `BatchSource`, so batches may differ in size
//! and in the axes a model leaves open (`Input(&[None, Some(8)])`: sequences of any
//! length). `fit` on tensors runs the same epoch loop (`fit.rs`), fed by the prefetching
//! producer instead.

use crate::engine::Tensor;
use crate::error::Result;

/// One batch: a tensor per model input and one of labels per model output, all with the
/// same number of samples (the first axis).
#[derive(Clone, Debug)]
pub struct Batch {
    pub xs: Vec<Tensor>,
    pub ys: Vec<Tensor>,
}

impl Batch {
    /// A batch of a model with one input and one output.
    pub fn new(x: Tensor, y: Tensor) -> Batch {
        Batch {
            xs: vec![x],
            ys: vec![y],
        }
    }
}

/// Where `fit_source` takes its training batches from. An epoch is batches
/// `0..len()`, asked in order; the source decides what they hold (and whether they are
/// shuffled: it gets the epoch number to seed that).
pub trait BatchSource {
    /// Batches per epoch (at least 1).
    fn len(&self) -> usize;
    /// Whether the source has no batches (`fit_source` then fails).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Batch `index` (`0..len()`) of epoch `epoch`.
    fn batch(&mut self, epoch: usize, index: usize) -> Result<Batch>;
}

/// A list of batches is a source: the same batches, in the same order, every epoch.
impl BatchSource for Vec<Batch> {
    fn len(&self) -> usize {
        <[Batch]>::len(self)
    }
    fn batch(&mut self, _epoch: usize, index: usize) -> Result<Batch> {
        Ok(self[index].clone())
    }
}
