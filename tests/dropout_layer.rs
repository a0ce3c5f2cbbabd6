//! The Dropout layer inside a model: in training it drops `rate` of the values (counted,
//! within binomial bounds) and scales the survivors by `1 / (1 - rate)`; at inference
//! (`forward(.., false)`, `predict`) it is the identity, with no rescaling, as in Keras.
//! The op's own test (`ops::dropout`) covers more rates and the backward.

use nabla::layers::keras::Dropout;
use nabla::{Sequential, Tensor, Var};

#[test]
fn dropout_scales_in_training_and_is_the_identity_at_inference() {
    let (n, rate) = (40_000, 0.25f32);
    let mut m = Sequential::with_seed(&[n], 1);
    m.add(Dropout(rate)).unwrap();
    // Values 1, 2, 3, ... so a survivor's scale can be read off each position.
    let x = Tensor::from_vec((0..n).map(|i| (i % 7 + 1) as f32).collect(), &[1, n]);

    let y = m.forward(&Var::constant(x.clone()), true).unwrap().value();
    let mut dropped = 0;
    for (&yi, &xi) in y.data().iter().zip(x.data()) {
        if yi == 0.0 {
            dropped += 1;
        } else {
            assert_eq!(
                yi,
                xi * (1.0 / (1.0 - rate)),
                "a survivor scaled by 1/(1 - rate)"
            );
        }
    }
    // Binomial(n, rate): sd = sqrt(40000 * 0.25 * 0.75) = 86.6; 5 sd are missed by a
    // correct layer with probability below 1e-6, and by a swapped rate (30,000 dropped)
    // or a no-op (0) by thousands.
    let (mean, sd) = (n as f64 * 0.25, (n as f64 * 0.25 * 0.75).sqrt());
    assert!(
        (dropped as f64 - mean).abs() < 5.0 * sd,
        "{dropped} of {n} dropped at rate {rate}"
    );

    // Inference: exactly the input, in both entry points.
    let inferred = m.forward(&Var::constant(x.clone()), false).unwrap().value();
    assert_eq!(inferred.data(), x.data());
    let predicted = m.predict(&x, 1).unwrap();
    assert_eq!(predicted.data(), x.data());
}
