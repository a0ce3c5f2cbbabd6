//! Weight initializers with Keras' names and definitions.
//!
//! Fans: a dense kernel `[in, out]` has fan_in = in, fan_out = out; a conv kernel
//! `[OC, C, KH, KW]` has fan_in = C*KH*KW and fan_out = OC*KH*KW.
//! The `*_normal` variance-scaling initializers draw from a normal truncated at two
//! standard deviations, with the std divided by 0.8796 so the variance is as stated
//! (Keras' VarianceScaling).

use crate::engine::{Rng, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Initializer {
    /// U(-l, l), l = sqrt(6 / (fan_in + fan_out)). Keras' default for kernels.
    #[default]
    GlorotUniform,
    /// Truncated N(0, 2 / (fan_in + fan_out)).
    GlorotNormal,
    /// Truncated N(0, 2 / fan_in): suits ReLU.
    HeNormal,
    /// U(-l, l), l = sqrt(6 / fan_in).
    HeUniform,
    /// N(0, stddev^2), untruncated (the book's `0.01 * randn`).
    Normal {
        stddev: f32,
    },
    /// U(minval, maxval) (Keras' `RandomUniform`; `Embedding`'s default is
    /// U(-0.05, 0.05)).
    Uniform {
        minval: f32,
        maxval: f32,
    },
    Zeros,
    Ones,
    /// A matrix with orthonormal rows or columns (Keras' `Orthogonal`, gain 1; its
    /// default for recurrent kernels): the Q of a QR factorization of a Gaussian
    /// matrix, see `orthogonal`.
    Orthogonal,
}

/// Std correction of a normal truncated at +-2 std (Keras' constant).
const TRUNCATED_STD: f32 = 0.879_625_7;

/// (fan_in, fan_out) of a weight shape, as Keras computes them for our layouts.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [i, o] => (*i, *o),
        [oc, c, rest @ ..] => {
            let receptive: usize = rest.iter().product();
            (c * receptive, oc * receptive)
        }
    }
}

impl Initializer {
    pub fn init(&self, shape: &[usize], rng: &mut Rng) -> Tensor {
        let n: usize = shape.iter().product();
        let (fan_in, fan_out) = fans(shape);
        let (fi, fo) = (fan_in as f32, fan_out as f32);
        let data: Vec<f32> = match *self {
            Initializer::GlorotUniform => {
                let l = (6.0 / (fi + fo)).sqrt();
                (0..n).map(|_| rng.uniform_range(-l, l)).collect()
            }
            Initializer::HeUniform => {
                let l = (6.0 / fi).sqrt();
                (0..n).map(|_| rng.uniform_range(-l, l)).collect()
            }
            Initializer::GlorotNormal => {
                let s = (2.0 / (fi + fo)).sqrt() / TRUNCATED_STD;
                (0..n).map(|_| s * rng.truncated_normal()).collect()
            }
            Initializer::HeNormal => {
                let s = (2.0 / fi).sqrt() / TRUNCATED_STD;
                (0..n).map(|_| s * rng.truncated_normal()).collect()
            }
            Initializer::Normal { stddev } => (0..n).map(|_| stddev * rng.normal()).collect(),
            Initializer::Uniform { minval, maxval } => {
                (0..n).map(|_| rng.uniform_range(minval, maxval)).collect()
            }
            Initializer::Zeros => vec![0.0; n],
            Initializer::Ones => vec![1.0; n],
            Initializer::Orthogonal => orthogonal(shape, rng),
        };
        Tensor::from_vec(data, shape)
    }

    pub fn zeros() -> Initializer {
        Initializer::Zeros
    }
}

/// Keras' `Orthogonal`: the shape is seen as `[rows, cols]` (`cols` the last axis);
/// a Gaussian `[max, min]` matrix `a = QR` gives `Q [max, min]` with orthonormal
/// columns, signs fixed so that `R`'s diagonal is positive (then `Q` is unique and
/// uniformly distributed); `Q` is transposed when `rows < cols`, so the result has
/// orthonormal rows or orthonormal columns, whichever the shape allows.
///
/// QR by modified Gram-Schmidt in f64, whose `R` has a positive diagonal by
/// construction, so no sign fix is needed. Deterministic from `rng`.
fn orthogonal(shape: &[usize], rng: &mut Rng) -> Vec<f32> {
    let cols = shape.last().copied().unwrap_or(1);
    let rows: usize = shape.iter().product::<usize>() / cols.max(1);
    let (big, small) = (rows.max(cols), rows.min(cols));
    // a: [big, small], stored column by column.
    let mut q: Vec<Vec<f64>> = (0..small)
        .map(|_| (0..big).map(|_| rng.normal() as f64).collect())
        .collect();
    for j in 0..small {
        for k in 0..j {
            let (done, rest) = q.split_at_mut(j);
            let dot: f64 = done[k].iter().zip(&rest[0]).map(|(a, b)| a * b).sum();
            for (v, p) in rest[0].iter_mut().zip(&done[k]) {
                *v -= dot * p;
            }
        }
        let norm = q[j].iter().map(|v| v * v).sum::<f64>().sqrt();
        // A Gaussian column lies in the span of the others with probability 0.
        for v in q[j].iter_mut() {
            *v /= norm.max(f64::MIN_POSITIVE);
        }
    }
    let mut out = vec![0.0f32; rows * cols];
    for (j, col) in q.iter().enumerate() {
        for (i, &v) in col.iter().enumerate() {
            // Q[i, j]; transposed (Q^T [small, big]) when rows < cols.
            let at = if rows >= cols {
                i * cols + j
            } else {
                j * cols + i
            };
            out[at] = v as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variance(t: &Tensor) -> f32 {
        let m = t.mean();
        t.map(|x| (x - m) * (x - m)).sum() / t.numel() as f32
    }

    #[test]
    fn variances_match_definitions() {
        let mut rng = Rng::new(0);
        let shape = [64, 32, 3, 3]; // fan_in 288, fan_out 576
        let he = Initializer::HeNormal.init(&shape, &mut rng);
        assert!((variance(&he) / (2.0 / 288.0) - 1.0).abs() < 0.05);
        let gu = Initializer::GlorotUniform.init(&[300, 200], &mut rng);
        assert!((variance(&gu) / (2.0 / 500.0) - 1.0).abs() < 0.05);
        let n = Initializer::Normal { stddev: 0.01 }.init(&[1000, 100], &mut rng);
        assert!((variance(&n).sqrt() / 0.01 - 1.0).abs() < 0.02);
    }

    #[test]
    fn orthogonal_has_orthonormal_rows_or_columns_and_is_seeded() {
        for (rows, cols) in [(8, 32), (32, 8), (6, 6)] {
            let q = Initializer::Orthogonal
                .init(&[rows, cols], &mut Rng::new(4))
                .to_f32_vec();
            let again = Initializer::Orthogonal
                .init(&[rows, cols], &mut Rng::new(4))
                .to_f32_vec();
            assert_eq!(q, again);
            // The Gram matrix of the shorter side is the identity.
            let (a, b) = (rows.min(cols), rows.max(cols));
            let at = |i: usize, k: usize| {
                if rows <= cols {
                    q[i * cols + k]
                } else {
                    q[k * cols + i]
                }
            };
            for i in 0..a {
                for j in 0..a {
                    let dot: f32 = (0..b).map(|k| at(i, k) * at(j, k)).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "{rows}x{cols} [{i},{j}] {dot}");
                }
            }
        }
        let i: Initializer = serde_json::from_str("\"orthogonal\"").unwrap();
        assert_eq!(i, Initializer::Orthogonal);
    }

    #[test]
    fn serde_names_are_kerass() {
        let i: Initializer = serde_json::from_str("\"he_normal\"").unwrap();
        assert_eq!(i, Initializer::HeNormal);
        let i: Initializer = serde_json::from_str("{\"normal\":{\"stddev\":0.01}}").unwrap();
        assert_eq!(i, Initializer::Normal { stddev: 0.01 });
        assert!(serde_json::from_str::<Initializer>("\"he_normul\"").is_err());
    }
}
