//! Feature standardisation of tables (scikit-learn's `StandardScaler`): each feature
//! column shifted by its mean and divided by its standard deviation, both measured on the
//! training rows only and saved with the model so that evaluation and prediction apply
//! the same transform.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    /// Population standard deviation; a constant column keeps 1 so it maps to 0.
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Measures the columns of `rows` (row-major, `cols` per row).
    pub fn fit(rows: &[f32], cols: usize) -> Standardizer {
        let n = rows.len().checked_div(cols).unwrap_or(0).max(1) as f64;
        let mut mean = vec![0f64; cols];
        let mut sq = vec![0f64; cols];
        for row in rows.chunks_exact(cols.max(1)) {
            for (j, &v) in row.iter().enumerate() {
                mean[j] += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        for row in rows.chunks_exact(cols.max(1)) {
            for (j, &v) in row.iter().enumerate() {
                sq[j] += (v as f64 - mean[j]).powi(2);
            }
        }
        let std = sq
            .iter()
            .map(|s| (s / n).sqrt())
            .map(|s| if s > 1e-12 { s as f32 } else { 1.0 })
            .collect();
        Standardizer {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        }
    }

    /// `(x - mean) / std` for every row of `rows`, in place.
    pub fn apply(&self, rows: &mut [f32]) {
        let cols = self.mean.len().max(1);
        for row in rows.chunks_exact_mut(cols) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_get_zero_mean_unit_variance() {
        let rows = vec![1., 10., 5., 3., 10., 5.];
        let s = Standardizer::fit(&rows, 3);
        assert_eq!(s.mean, vec![2., 10., 5.]);
        assert_eq!(s.std, vec![1., 1., 1.]);
        let mut r = rows.clone();
        s.apply(&mut r);
        assert_eq!(r, vec![-1., 0., 0., 1., 0., 0.]);
        let s = Standardizer::fit(&[0., 4.], 1);
        assert_eq!((s.mean[0], s.std[0]), (2., 2.));
    }
}
