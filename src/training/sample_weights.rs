//! Keras' `class_weight` and `sample_weight` for `fit`: how much each training sample
//! counts in the loss.
//!
//! - [`ClassWeights`] is plain data, a map class index -> weight: from a list
//!   (`ClassWeights::new(&[(0, 1.0), (1, 5.0)])`, `from_list(&[1.0, 5.0])`) or
//!   `ClassWeights::balanced(&labels, n_classes)`, scikit-learn's and Keras'
//!   `n_samples / (n_classes * count_c)`. A class the map does not name weighs 1.
//! - A sample's class is read from its label ([`class_of_rows`]): an integer label
//!   `[N]`, the argmax of a one-hot or probability row `[N, C]`, or the rounded value
//!   of a single column `[N, 1]` (a binary label), as Keras does.
//! - A sample's weight is its class weight times its `sample_weight` (both default 1).
//!   The weights are computed once per `fit`, gathered with the batches in the
//!   shuffled order, and multiply each sample's loss: the batch loss is
//!   `sum_i w_i loss_i / N` (Keras' `sum_over_batch_size`, see `losses`).
//! - Validation and `evaluate` stay unweighted, as Keras' default
//!   (`validation_data` without sample weights).

use crate::engine::Tensor;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A weight per class index (see the module docs). A class absent from the map
/// weighs 1.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClassWeights {
    weights: BTreeMap<usize, f32>,
}

fn check_weight(what: &str, w: f32) -> Result<()> {
    if w.is_finite() && w >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what}: a weight must be a finite number >= 0, got {w}"
        )))
    }
}

impl ClassWeights {
    /// From `(class index, weight)` pairs; a class given twice or a weight that is
    /// negative or not finite is an error.
    pub fn new(pairs: &[(usize, f32)]) -> Result<ClassWeights> {
        let mut weights = BTreeMap::new();
        for &(c, w) in pairs {
            check_weight(&format!("class_weight of class {c}"), w)?;
            if weights.insert(c, w).is_some() {
                return Err(Error::invalid(format!(
                    "class_weight: class {c} is given twice"
                )));
            }
        }
        Ok(ClassWeights { weights })
    }

    /// The weight of class `i` is `weights[i]`.
    pub fn from_list(weights: &[f32]) -> Result<ClassWeights> {
        let pairs: Vec<(usize, f32)> = weights.iter().copied().enumerate().collect();
        ClassWeights::new(&pairs)
    }

    /// Weights that balance the classes of `labels` (any form [`class_of_rows`]
    /// reads): `n_samples / (n_classes * count_c)` for each class `c` that occurs, as
    /// scikit-learn's `compute_class_weight("balanced")`. A class with no sample gets
    /// no entry (it has nothing to weigh).
    pub fn balanced(labels: &Tensor, n_classes: usize) -> Result<ClassWeights> {
        if n_classes == 0 {
            return Err(Error::invalid(
                "class_weight balanced: n_classes must be >= 1",
            ));
        }
        let classes = class_of_rows(labels)?;
        let mut counts = vec![0usize; n_classes];
        for (i, &c) in classes.iter().enumerate() {
            if c >= n_classes {
                return Err(Error::invalid(format!(
                    "class_weight balanced: sample {i} is of class {c}, but there are \
                     {n_classes} classes"
                )));
            }
            counts[c] += 1;
        }
        let n = classes.len() as f64;
        let weights = counts
            .iter()
            .enumerate()
            .filter(|(_, &k)| k > 0)
            .map(|(c, &k)| (c, (n / (n_classes as f64 * k as f64)) as f32))
            .collect();
        Ok(ClassWeights { weights })
    }

    /// The weight of class `c` (1 if the map does not name it).
    pub fn get(&self, c: usize) -> f32 {
        self.weights.get(&c).copied().unwrap_or(1.0)
    }

    /// The classes named and their weights, by class index.
    pub fn iter(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        self.weights.iter().map(|(&c, &w)| (c, w))
    }

    /// The largest class index named (`None` for an empty map).
    pub fn max_class(&self) -> Option<usize> {
        self.weights.keys().next_back().copied()
    }

    /// Fails, naming the class, unless every class named is below `n_classes`.
    pub fn check_classes(&self, n_classes: usize) -> Result<()> {
        match self.max_class() {
            Some(c) if c >= n_classes => Err(Error::invalid(format!(
                "class_weight names class {c}, but the model has {n_classes} classes \
                 (0..{})",
                n_classes - 1
            ))),
            _ => Ok(()),
        }
    }

    /// One weight per sample of `labels`: its class's weight.
    pub fn per_sample(&self, labels: &Tensor) -> Result<Vec<f32>> {
        Ok(class_of_rows(labels)?
            .into_iter()
            .map(|c| self.get(c))
            .collect())
    }
}

/// The class index of each sample of `labels`: the label itself for `[N]` (a
/// whole number >= 0), the argmax of each row for `[N, C]` with `C > 1` (one-hot or
/// probabilities; the first of equal maxima), the rounded value for `[N, 1]` (binary).
pub fn class_of_rows(labels: &Tensor) -> Result<Vec<usize>> {
    let v = labels.to_f32_vec();
    let index = |i: usize, x: f32| -> Result<usize> {
        if x.is_finite() && x >= 0.0 && x.fract() == 0.0 {
            Ok(x as usize)
        } else {
            Err(Error::invalid(format!(
                "class_weight: label {x} of sample {i} is not a class index (a whole \
                 number >= 0)"
            )))
        }
    };
    match labels.shape() {
        [_] => v.iter().enumerate().map(|(i, &x)| index(i, x)).collect(),
        [_, 1] => v
            .iter()
            .enumerate()
            .map(|(i, &x)| index(i, x.round()))
            .collect(),
        [_, c] => Ok(v
            .chunks_exact(*c)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (k, &x)| {
                        if x > best.1 {
                            (k, x)
                        } else {
                            best
                        }
                    })
                    .0
            })
            .collect()),
        s => Err(Error::shape(format!(
            "class_weight: labels of shape {s:?} name no class per sample; give class \
             indices [N] or one-hot rows [N, C]"
        ))),
    }
}

/// Checks `fit`'s `sample_weight` against `n` samples: one finite weight >= 0 per
/// sample (shape `[n]` or `[n, 1]`). Returns the weights.
pub fn check_sample_weight(w: &Tensor, n: usize) -> Result<Vec<f32>> {
    let s = w.shape();
    if !(s == [n] || s == [n, 1]) {
        return Err(Error::shape(format!(
            "fit: sample_weight has shape {s:?}, but there are {n} samples: give one weight \
             per sample, shape [{n}]"
        )));
    }
    let v = w.to_f32_vec();
    if let Some((i, bad)) = v
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return Err(Error::invalid(format!(
            "fit: sample_weight of sample {i} is {bad}; weights must be finite and >= 0"
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_is_sklearns_formula() {
        // 6 samples: 4 of class 0, 2 of class 1, none of class 2 (3 classes).
        let y = Tensor::from_vec(vec![0., 0., 1., 0., 1., 0.], &[6]);
        let cw = ClassWeights::balanced(&y, 3).unwrap();
        assert_eq!(cw.get(0), 6.0 / (3.0 * 4.0));
        assert_eq!(cw.get(1), 6.0 / (3.0 * 2.0));
        assert_eq!(cw.iter().count(), 2);
        assert_eq!(cw.get(2), 1.0);
        // The same classes read from one-hot rows and from a binary column.
        let onehot = crate::ops::loss::dense_targets(&y, 6, 3).unwrap();
        assert_eq!(ClassWeights::balanced(&onehot, 3).unwrap(), cw);
        let col = Tensor::from_vec(vec![0.1, 0.0, 0.9, 0.2, 1.0, 0.0], &[6, 1]);
        assert_eq!(ClassWeights::balanced(&col, 3).unwrap(), cw);
        assert_eq!(
            cw.per_sample(&y).unwrap(),
            vec![0.5, 0.5, 1.0, 0.5, 1.0, 0.5]
        );
        assert!(ClassWeights::balanced(&y, 1).is_err());
    }

    #[test]
    fn bad_weights_and_labels_are_refused() {
        for bad in [-1.0, f32::NAN, f32::INFINITY] {
            let e = ClassWeights::new(&[(0, bad)]).unwrap_err().to_string();
            assert!(e.contains("class 0") && e.contains(">= 0"), "{e}");
        }
        assert!(ClassWeights::new(&[(1, 2.0), (1, 3.0)]).is_err());
        let cw = ClassWeights::from_list(&[1.0, 5.0]).unwrap();
        assert!(cw.check_classes(2).is_ok());
        let e = cw.check_classes(1).unwrap_err().to_string();
        assert!(e.contains("class 1"), "{e}");
        let e = class_of_rows(&Tensor::from_vec(vec![0.5], &[1]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a class index"), "{e}");
        let e = check_sample_weight(&Tensor::ones(&[3]), 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[3]") && e.contains("4 samples"), "{e}");
        let e = check_sample_weight(&Tensor::from_vec(vec![1.0, -2.0], &[2]), 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sample 1 is -2"), "{e}");
    }
}
