//! Binary cross-entropy (on probabilities and fused with the sigmoid on logits) and mean
//! squared error against values computed by hand, not by the library: each expected
//! number below is written out from its formula (natural logarithms, f64), with Keras'
//! conventions:
//! - on probabilities, `p` is clipped to `[1e-7, 1 - 1e-7]` in f32 before the logarithms
//!   (Keras' `backend.epsilon()`); `1 - 1e-7` is not an f32, the nearest is
//!   `1 - 2^-23 = 0.99999988`, so a probability of exactly 1 for a negative label costs
//!   `-ln(2^-23) = 23 ln 2 = 15.9423852`, and a clipped entry has zero gradient;
//! - on logits nothing is clipped: `max(z, 0) - z t + ln(1 + e^-|z|)`, so a confident
//!   wrong logit of 30 costs 30;
//! - every loss is the mean over all elements (Keras: the mean over the last axis, then
//!   over the batch, which is the same for equal rows).
//!
//! The gradients are checked against hand values too (the gradient checks elsewhere only
//! show that backward agrees with forward, not that forward is the right function).

use nabla::ops::loss::{binary_cross_entropy, mean_squared_error, sigmoid_binary_cross_entropy};
use nabla::{Tensor, Var};

fn close(got: f32, want: f64, what: &str) {
    let tol = 1e-6 * want.abs().max(1.0);
    assert!(
        (got as f64 - want).abs() <= tol,
        "{what}: got {got}, want {want}"
    );
}

/// The loss value and the gradient of the loss with respect to the predictions.
fn value_and_grad(
    loss: impl Fn(&Var, &Tensor) -> nabla::Result<Var>,
    pred: &[f32],
    shape: &[usize],
    target: Tensor,
) -> (f32, Vec<f32>) {
    let x = Var::parameter(Tensor::from_vec(pred.to_vec(), shape));
    let l = loss(&x, &target).unwrap();
    l.backward();
    (l.value().item(), x.grad().unwrap().data().to_vec())
}

#[test]
fn binary_cross_entropy_on_probabilities_clips_as_keras_does() {
    let p = [0.9, 0.2, 0.0, 1.0, 0.6];
    let t = Tensor::from_vec(vec![1.0, 0.0, 1.0, 0.0, 0.25], &[5, 1]);
    let (loss, grad) = value_and_grad(binary_cross_entropy, &p, &[5, 1], t);
    // Per element, -(t ln p + (1 - t) ln(1 - p)) with p clipped:
    let terms = [
        0.105_360_542,  // -ln 0.9 (0.9 as an f32: 0.89999998)
        0.223_143_551,  // -ln 0.8
        16.118_095_639, // p = 0 clipped to 1e-7 (as an f32): -ln 1e-7
        15.942_385_153, // p = 1 clipped to 1 - 2^-23: 23 ln 2
        0.814_924_490,  // -(0.25 ln 0.6 + 0.75 ln 0.4) = 0.25 * 0.5108256 + 0.75 * 0.9162907
    ];
    let want: f64 = terms.iter().sum::<f64>() / 5.0;
    close(loss, want, "mean BCE");
    close(loss, 6.640_781_875, "mean BCE, the sum done by hand");
    // d/dp = (p - t) / (p (1 - p)) / N, and 0 where the clip is active.
    let want_grad = [
        -0.1 / (0.9 * 0.1) / 5.0, // -0.2222
        0.2 / (0.2 * 0.8) / 5.0,  // 0.25
        0.0,                      // clipped at 1e-7
        0.0,                      // clipped at 1 - 2^-23
        0.35 / (0.6 * 0.4) / 5.0, // 0.2917
    ];
    for (i, (&g, &w)) in grad.iter().zip(&want_grad).enumerate() {
        assert!((g as f64 - w).abs() < 1e-5, "d/dp[{i}]: got {g}, want {w}");
    }
}

#[test]
fn binary_cross_entropy_clip_bounds_are_the_f32_keras_bounds() {
    // Just inside the bounds nothing is clipped; at and beyond them the loss is flat.
    let t = || Tensor::from_vec(vec![1.0], &[1, 1]);
    let (at_eps, g_eps) = value_and_grad(binary_cross_entropy, &[1e-7], &[1, 1], t());
    let (below, g_below) = value_and_grad(binary_cross_entropy, &[1e-9], &[1, 1], t());
    close(at_eps, 16.118_095_639, "p = 1e-7, t = 1");
    assert_eq!(at_eps, below, "below 1e-7 the loss stays at the clip");
    assert_eq!((g_eps[0], g_below[0]), (0.0, 0.0));
    // p = 1e-6 is inside: -ln 1e-6 = 13.8155106, gradient -1 / p = -1e6.
    let (inside, g_inside) = value_and_grad(binary_cross_entropy, &[1e-6], &[1, 1], t());
    close(inside, 13.815_510_558, "p = 1e-6, t = 1");
    assert!((g_inside[0] as f64 + 1e6).abs() < 1.0, "{}", g_inside[0]);
}

#[test]
fn binary_cross_entropy_fused_with_the_sigmoid_is_not_clipped() {
    let z = [2.0, -1.0, 0.0, 30.0, -100.0, 1.0];
    let t = Tensor::from_vec(vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.25], &[6]);
    let (loss, grad) = value_and_grad(sigmoid_binary_cross_entropy, &z, &[6, 1], t);
    // Per element, max(z, 0) - z t + ln(1 + e^-|z|):
    let terms = [
        0.126_928_011, // ln(1 + e^-2)
        0.313_261_688, // ln(1 + e^-1)
        std::f64::consts::LN_2,
        30.0,          // 30 + ln(1 + e^-30), e^-30 ~ 1e-13: no clip at 15.94
        0.0,           // ln(1 + e^-100) ~ 4e-44
        1.063_261_688, // 1 - 0.25 + ln(1 + e^-1)
    ];
    let want: f64 = terms.iter().sum::<f64>() / 6.0;
    close(loss, want, "mean fused BCE");
    close(loss, 5.366_099_761, "mean fused BCE, the sum done by hand");
    // d/dz = (sigmoid(z) - t) / N, with sigmoid(2) = 0.8807971, sigmoid(-1) = 0.2689414,
    // sigmoid(1) = 0.7310586.
    let want_grad = [
        (0.880_797_078 - 1.0) / 6.0,
        0.268_941_421 / 6.0,
        -0.5 / 6.0,
        1.0 / 6.0,
        0.0,
        (0.731_058_579 - 0.25) / 6.0,
    ];
    for (i, (&g, &w)) in grad.iter().zip(&want_grad).enumerate() {
        assert!((g as f64 - w).abs() < 1e-6, "d/dz[{i}]: got {g}, want {w}");
    }
    // The unfused form on sigmoid(30) = 1 in f32 is clipped: 23 ln 2, not 30.
    let (clipped, _) = value_and_grad(
        binary_cross_entropy,
        &[1.0],
        &[1, 1],
        Tensor::from_vec(vec![0.0], &[1]),
    );
    close(clipped, 15.942_385_153, "BCE of p = 1 against t = 0");
}

#[test]
fn mean_squared_error_by_hand() {
    let t = Tensor::from_vec(vec![0.0, 2.0, 5.0, 3.5], &[2, 2]);
    let (loss, grad) = value_and_grad(mean_squared_error, &[1.0, 2.0, 3.0, 4.0], &[2, 2], t);
    // (1 + 0 + 4 + 0.25) / 4
    close(loss, 1.3125, "MSE");
    // 2 (p - t) / N
    assert_eq!(grad, [0.5, 0.0, -1.0, 0.25]);

    // A column of predictions [N, 1] against labels [N].
    let t = Tensor::from_vec(vec![1.0, 1.0, 1.0], &[3]);
    let (loss, grad) = value_and_grad(mean_squared_error, &[0.5, -1.0, 2.0], &[3, 1], t);
    // (0.25 + 4 + 1) / 3
    close(loss, 1.75, "MSE of a column");
    let want = [-1.0 / 3.0, -4.0 / 3.0, 2.0 / 3.0];
    for (g, w) in grad.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{grad:?}");
    }
}
