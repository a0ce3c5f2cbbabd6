//! Dropout, inverted (Keras' convention): while training each value is zeroed with
//! probability `rate` and survivors are scaled by `1 / (1 - rate)`, so inference is the
//! identity and needs no rescaling.

use crate::engine::{Rng, Tensor, Var};

pub fn dropout(x: &Var, rate: f32, rng: &mut Rng) -> Var {
    if rate <= 0.0 {
        return x.clone();
    }
    let keep = 1.0 - rate;
    let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
    let shape = x.shape();
    let mask: Vec<f32> = (0..x.value_ref().numel())
        .map(|_| if rng.uniform() < keep { scale } else { 0.0 })
        .collect();
    let mask = Tensor::from_vec(mask, &shape);
    let y = x.value().zip_map(&mask, |a, m| a * m);
    Var::from_op(y, "dropout", &[x], move |dy| {
        vec![Some(dy.zip_map(&mask, |g, m| g * m))]
    })
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
}
