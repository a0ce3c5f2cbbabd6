//! Dropout, inverted (Keras' convention): while training each value is zeroed with
//! probability `rate` and survivors are scaled by `1 / (1 - rate)`, so inference is the
//! identity and needs no rescaling.

use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};

pub fn dropout(x: &Var, rate: f32, rng: &mut Rng) -> Var {
    if rate <= 0.0 {
        return x.clone();
    }
    let keep = 1.0 - rate;
    let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
    let shape = x.shape();
    // By rows, so a rank of a data-parallel run draws its rows' share (`uniform_rows`).
    let rows = shape.first().copied().unwrap_or(1);
    let per_row = x.value_ref().numel() / rows.max(1);
    let mask: Vec<f32> = rng
        .uniform_rows(rows, per_row)
        .into_iter()
        .map(|u| if u < keep { scale } else { 0.0 })
        .collect();
    let mask = Tensor::from_vec(mask, &shape);
    let y = x.value().zip_map(&mask, |a, m| a * m);
    Var::from_op(y, "dropout", &[x], move |dy| {
        vec![Some(dy.zip_map(&mask, |g, m| g * m))]
    })
}

/// A dropout mask of `shape`: each value `1 / (1 - rate)` with probability `1 - rate`,
/// else 0 (what the recurrent ops take as Keras' `recurrent_dropout` masks).
pub fn keep_mask(shape: &[usize], rate: f32, rng: &mut Rng) -> Tensor {
    let keep = 1.0 - rate;
    let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
    let n = shape.iter().product();
    let mask: Vec<f32> = (0..n)
        .map(|_| if rng.uniform() < keep { scale } else { 0.0 })
        .collect();
    Tensor::from_vec(mask, shape)
}

/// A recurrent layer's input dropout (Keras' `dropout` argument of LSTM/GRU/SimpleRNN):
/// `x` is `[N, T, F]` and one mask `[N, 1, F]` is drawn per call, so a sample loses the
/// same features at every step (Keras' cells draw the mask once per batch and reuse it
/// at each step; Gal and Ghahramani, 2016).
pub fn dropout_steps(x: &Var, rate: f32, rng: &mut Rng) -> Result<Var> {
    let shape = x.shape();
    let &[n, _t, f] = shape.as_slice() else {
        return Err(Error::shape(format!(
            "dropout over steps: input must be [batch, steps, features], got {shape:?}"
        )));
    };
    if rate <= 0.0 {
        return Ok(x.clone());
    }
    let keep = 1.0 - rate;
    let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
    let mask: Vec<f32> = (0..n * f)
        .map(|_| if rng.uniform() < keep { scale } else { 0.0 })
        .collect();
    let mask = Var::constant(Tensor::from_vec(mask, &[n, 1, f]));
    super::elementwise::mul_broadcast(x, &mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gradcheck;

    #[test]
    fn gradcheck_with_fixed_mask_and_expectation() {
        // The same seed gives the same mask in every evaluation, so the op is a fixed
        // linear map that the central difference can check.
        let mut rng = Rng::new(3);
        let x = gradcheck::random_away_from_zero(&[4, 5], &mut rng, 0.1);
        let r = gradcheck::check(
            |v| dropout(&v[0], 0.3, &mut Rng::new(42)),
            &[x],
            gradcheck::DEFAULT_STEP,
            1,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{r:?}");
        // Inverted dropout keeps the mean.
        let ones = Var::constant(Tensor::ones(&[100_000]));
        let m = dropout(&ones, 0.2, &mut rng).value().mean();
        assert!((m - 1.0).abs() < 0.01, "{m}");
    }

    /// Zeros among `n` dropout outputs of ones, and the values of the others.
    fn dropped_and_kept(rate: f32, n: usize, seed: u64) -> (usize, Vec<f32>) {
        let ones = Var::parameter(Tensor::ones(&[n]));
        let y = dropout(&ones, rate, &mut Rng::new(seed));
        let dropped = y.value().data().iter().filter(|&&v| v == 0.0).count();
        let kept = y
            .value()
            .data()
            .iter()
            .copied()
            .filter(|&v| v != 0.0)
            .collect();
        // The backward routes the gradient through the same mask and scale.
        y.backward();
        assert_eq!(ones.grad().unwrap().data(), y.value().data(), "rate {rate}");
        (dropped, kept)
    }

    #[test]
    fn drops_the_rate_and_scales_the_rest_by_one_over_keep() {
        // The dropped count is Binomial(n, rate): within 5 standard deviations
        // (sqrt(n rate (1 - rate)), 145 for n = 1e5, rate 0.3) of n rate, which a correct
        // dropout misses with probability below 1e-6, and which a no-op (0 dropped), a
        // swapped rate and keep (70,000 dropped for 0.3) or an off-by-a-few-percent rate
        // all miss by far.
        let n = 100_000;
        for (rate, seed) in [(0.3f32, 1u64), (0.5, 2), (0.8, 3), (0.05, 4)] {
            let (dropped, kept) = dropped_and_kept(rate, n, seed);
            let mean = n as f64 * rate as f64;
            let sd = (n as f64 * rate as f64 * (1.0 - rate as f64)).sqrt();
            assert!(
                (dropped as f64 - mean).abs() < 5.0 * sd,
                "rate {rate}: {dropped} of {n} dropped, expected {mean} +- {:.0}",
                5.0 * sd
            );
            // Inverted dropout: every survivor is 1 / (1 - rate), exactly as f32 computes it.
            let scale = 1.0 / (1.0 - rate);
            assert!(
                kept.iter().all(|&v| v == scale),
                "rate {rate}: {:?}",
                &kept[..5]
            );
        }
        // Rate 0 is the identity. (Inference never calls the op: the layer returns its
        // input; `tests/dropout_layer.rs` checks that through a model.)
        let x = Var::constant(Tensor::from_vec(vec![1.0, -2.0, 3.0], &[3]));
        let y = dropout(&x, 0.0, &mut Rng::new(5));
        assert_eq!(y.value().data(), x.value().data());
    }

    #[test]
    fn step_dropout_drops_the_same_features_at_every_step() {
        let mut rng = Rng::new(5);
        let x = Var::constant(Tensor::from_vec(vec![1.0; 3 * 4 * 50], &[3, 4, 50]));
        let y = dropout_steps(&x, 0.4, &mut rng)
            .unwrap()
            .value()
            .to_f32_vec();
        let mut dropped = 0;
        for n in 0..3 {
            for f in 0..50 {
                let at = |t: usize| y[(n * 4 + t) * 50 + f];
                assert!(at(0) == 0.0 || (at(0) - 1.0 / 0.6).abs() < 1e-6);
                for t in 1..4 {
                    assert_eq!(at(t), at(0), "sample {n} feature {f} step {t}");
                }
                dropped += usize::from(at(0) == 0.0);
            }
        }
        // 150 draws at p = 0.4: 60 expected, 40..80 is about 4 standard deviations.
        assert!((40..80).contains(&dropped), "{dropped}");
        assert!(dropout_steps(&Var::constant(Tensor::zeros(&[2, 3])), 0.5, &mut rng).is_err());
        let r = gradcheck::check(
            |v| dropout_steps(&v[0], 0.3, &mut Rng::new(42)).unwrap(),
            &[gradcheck::random_away_from_zero(&[2, 3, 4], &mut rng, 0.1)],
            gradcheck::DEFAULT_STEP,
            1,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{r:?}");
    }
}
