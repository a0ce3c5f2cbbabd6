//! Feeding data to training: mini-batch index order, pixel scaling, one-hot labels, and
//! the train/validation split.
//!
//! ```
//! use nabla::data::batches::{to_categorical, Batches};
//! use nabla::{Rng, Tensor};
//! let mut rng = Rng::new(42);
//! let batches: Vec<Vec<usize>> = Batches::shuffled(10, 4, &mut rng).unwrap().collect();
//! assert_eq!(batches.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![4, 4, 2]);
//! let y = to_categorical(&Tensor::from_vec(vec![2.0, 0.0], &[2]), 3).unwrap();
//! assert_eq!(y.data(), &[0., 0., 1., 1., 0., 0.]);
//! ```

use crate::engine::{Rng, Tensor};
use crate::error::{Error, Result};

/// Iterator over the sample indices of each mini-batch of one epoch. Every index in
/// `0..n` appears exactly once; the last batch is smaller when `batch_size` does not
/// divide `n` (Keras keeps that partial batch too).
#[derive(Debug, Clone)]
pub struct Batches {
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
}

impl Batches {
    /// Batches in the samples' order: `[0..bs), [bs..2bs), ...`.
    pub fn sequential(n: usize, batch_size: usize) -> Result<Batches> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size must be at least 1"));
        }
        Ok(Batches {
            order: (0..n).collect(),
            batch_size,
            pos: 0,
        })
    }

    /// Batches over a random permutation of `0..n` drawn from `rng`. A seeded `Rng` gives
    /// the same order on every machine; calling again with the same `rng` (next epoch)
    /// gives a new order.
    pub fn shuffled(n: usize, batch_size: usize, rng: &mut Rng) -> Result<Batches> {
        let mut b = Batches::sequential(n, batch_size)?;
        rng.shuffle(&mut b.order);
        Ok(b)
    }

    /// Number of samples the batches cover.
    pub fn num_samples(&self) -> usize {
        self.order.len()
    }
}

impl Iterator for Batches {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let batch = self.order[self.pos..end].to_vec();
        self.pos = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = num_batches(self.order.len() - self.pos, self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches {}

/// Number of mini-batches of `batch_size` that cover `n` samples (the last may be partial).
pub fn num_batches(n: usize, batch_size: usize) -> usize {
    n.div_ceil(batch_size.max(1))
}

/// Pixel bytes scaled to [0, 1] (`b / 255`), as the data sets and image loader do.
pub fn u8_to_unit(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&b| b as f32 / 255.0).collect()
}

/// A tensor of `shape` from pixel bytes scaled to [0, 1].
pub fn normalize_u8(bytes: &[u8], shape: &[usize]) -> Result<Tensor> {
    Tensor::try_from_vec(u8_to_unit(bytes), shape)
}

/// One-hot encoding of integer class labels, like `keras.utils.to_categorical`.
///
/// # Shapes
/// `labels`: `[N]` (or `[N, 1]`) class indices stored as f32 -> `[N, num_classes]`. In
/// general a trailing dimension of 1 is dropped and `num_classes` appended.
///
/// Every label must be a whole number in `0..num_classes`; the error names the first
/// one that is not, and its position.
pub fn to_categorical(labels: &Tensor, num_classes: usize) -> Result<Tensor> {
    if num_classes == 0 {
        return Err(Error::invalid(
            "to_categorical: num_classes must be at least 1",
        ));
    }
    let mut shape = labels.shape().to_vec();
    if shape.last() == Some(&1) {
        shape.pop();
    }
    shape.push(num_classes);
    let mut out = vec![0f32; labels.numel() * num_classes];
    for (i, &l) in labels.data().iter().enumerate() {
        if !(l >= 0.0 && l.fract() == 0.0 && (l as usize) < num_classes) {
            return Err(Error::invalid(format!(
                "to_categorical: label {l} at index {i} is not a class index in 0..{num_classes}"
            )));
        }
        out[i * num_classes + l as usize] = 1.0;
    }
    Ok(Tensor::from_vec(out, &shape))
}

/// Where Keras' `validation_split` cuts (it lives with `fit`, which uses it).
pub use crate::training::transform::validation_split_index;

/// Splits `(x, y)` like Keras' `fit(validation_split=...)`: the LAST fraction of the
/// samples, taken before any shuffling, becomes the validation set.
/// Returns `((x_train, y_train), (x_val, y_val))`.
///
/// # Shapes
/// `x`: `[N, ...]`, `y`: `[N, ...]` -> train parts `[N - V, ...]`, validation `[V, ...]`.
pub fn train_validation_split(
    x: &Tensor,
    y: &Tensor,
    validation_split: f64,
) -> Result<((Tensor, Tensor), (Tensor, Tensor))> {
    let n = x.shape().first().copied().unwrap_or(0);
    if y.shape().first() != Some(&n) {
        return Err(Error::shape(format!(
            "train_validation_split: x has shape {:?} but y has shape {:?} (the first \
             dimensions, the sample counts, must agree)",
            x.shape(),
            y.shape()
        )));
    }
    let k = validation_split_index(n, validation_split)?;
    Ok((
        (x.slice_rows(0, k), y.slice_rows(0, k)),
        (x.slice_rows(k, n), y.slice_rows(k, n)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_batches_cover_in_order() {
        let b: Vec<_> = Batches::sequential(7, 3).unwrap().collect();
        assert_eq!(b, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert_eq!(Batches::sequential(6, 3).unwrap().len(), 2);
        assert_eq!(Batches::sequential(0, 3).unwrap().count(), 0);
        assert!(Batches::sequential(5, 0).is_err());
        assert_eq!(num_batches(60000, 32), 1875);
        assert_eq!(num_batches(10, 32), 1);
    }

    #[test]
    fn shuffled_batches_are_a_seeded_permutation() {
        let run = |seed| -> Vec<Vec<usize>> {
            Batches::shuffled(100, 32, &mut Rng::new(seed))
                .unwrap()
                .collect()
        };
        let a = run(7);
        assert_eq!(a, run(7), "same seed, same order");
        assert_ne!(a, run(8), "another seed, another order");
        assert_eq!(
            a.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![32, 32, 32, 4]
        );
        let mut all: Vec<usize> = a.concat();
        assert_ne!(all, (0..100).collect::<Vec<_>>(), "actually shuffled");
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());

        // Two epochs from one generator differ.
        let mut rng = Rng::new(1);
        let e1: Vec<_> = Batches::shuffled(50, 50, &mut rng).unwrap().collect();
        let e2: Vec<_> = Batches::shuffled(50, 50, &mut rng).unwrap().collect();
        assert_ne!(e1, e2);
    }

    #[test]
    fn bytes_scale_to_unit_interval() {
        assert_eq!(u8_to_unit(&[0, 255, 51]), vec![0.0, 1.0, 0.2]);
        let t = normalize_u8(&[0, 255, 0, 255], &[2, 2]).unwrap();
        assert_eq!(t.shape(), &[2, 2]);
        assert!(normalize_u8(&[0, 1, 2], &[2, 2]).is_err());
    }

    #[test]
    fn to_categorical_one_hot() {
        let y = Tensor::from_vec(vec![1.0, 0.0, 2.0], &[3]);
        let c = to_categorical(&y, 3).unwrap();
        assert_eq!(c.shape(), &[3, 3]);
        assert_eq!(c.data(), &[0., 1., 0., 1., 0., 0., 0., 0., 1.]);
        let col = Tensor::from_vec(vec![1.0, 0.0], &[2, 1]);
        assert_eq!(to_categorical(&col, 2).unwrap().shape(), &[2, 2]);
    }

    #[test]
    fn to_categorical_rejects_bad_labels() {
        for (bad, what) in [
            (3.0, "label 3 at index 1"),
            (-1.0, "label -1"),
            (0.5, "label 0.5"),
            (f32::NAN, "NaN"),
        ] {
            let y = Tensor::from_vec(vec![0.0, bad], &[2]);
            let msg = to_categorical(&y, 3).unwrap_err().to_string();
            assert!(msg.contains(what), "{msg}");
        }
        assert!(to_categorical(&Tensor::zeros(&[2]), 0).is_err());
    }

    #[test]
    fn validation_split_takes_the_last_fraction() {
        // Keras: floor(60000 * 0.9) = 54000, floor(10 * 0.75) = 7.
        assert_eq!(validation_split_index(60000, 0.1).unwrap(), 54000);
        assert_eq!(validation_split_index(10, 0.25).unwrap(), 7);
        assert_eq!(validation_split_index(3, 0.5).unwrap(), 1);
        assert!(validation_split_index(1, 0.5).is_err());
        assert!(validation_split_index(100, 0.0).is_err());
        assert!(validation_split_index(100, 1.0).is_err());
        assert!(validation_split_index(100, f64::NAN).is_err());

        let x = Tensor::from_vec((0..20).map(|v| v as f32).collect(), &[10, 2]);
        let y = Tensor::from_vec((0..10).map(|v| v as f32).collect(), &[10]);
        let ((xt, yt), (xv, yv)) = train_validation_split(&x, &y, 0.2).unwrap();
        assert_eq!(xt.shape(), &[8, 2]);
        assert_eq!(yt.data(), &[0., 1., 2., 3., 4., 5., 6., 7.]);
        assert_eq!(xv.data(), &[16., 17., 18., 19.]);
        assert_eq!(yv.data(), &[8., 9.]);
        assert!(train_validation_split(&x, &Tensor::zeros(&[9]), 0.2).is_err());
    }
}
