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
        };
        Tensor::from_vec(data, shape)
    }

    pub fn zeros() -> Initializer {
        Initializer::Zeros
    }
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
    fn serde_names_are_kerass() {
        let i: Initializer = serde_json::from_str("\"he_normal\"").unwrap();
        assert_eq!(i, Initializer::HeNormal);
        let i: Initializer = serde_json::from_str("{\"normal\":{\"stddev\":0.01}}").unwrap();
        assert_eq!(i, Initializer::Normal { stddev: 0.01 });
        assert!(serde_json::from_str::<Initializer>("\"he_normul\"").is_err());
    }
}
