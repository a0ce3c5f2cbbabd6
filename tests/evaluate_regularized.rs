//! `evaluate` reports the objective training minimizes, weight penalties included, as
//! Keras' `evaluate` and `val_loss` do.

use nabla::layers::keras::*;
use nabla::layers::Regularizer;
use nabla::{FitArgs, KerasLoss, Optimizer, Rng, Sequential, Tensor};

const L2: f32 = 0.05;

/// A Dense net without dropout or batch norm (so training and inference forwards agree),
/// with or without an L2 kernel regularizer on both layers; the seed gives both the same
/// weights.
fn model(regularized: bool) -> Sequential {
    let reg = |d: nabla::layers::DenseConfig| {
        if regularized {
            d.kernel_regularizer(Regularizer::L2 { l2: L2 })
        } else {
            d
        }
    };
    let mut m = Sequential::with_seed(&[6], 5);
    m.add(reg(Dense(5).activation(Tanh)))
        .unwrap()
        .add(reg(Dense(3).activation(Softmax)))
        .unwrap();
    m.compile(
        KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
        // lr 0: the one training step below leaves the weights as they were.
        Optimizer::sgd(0.0),
        &["accuracy"],
    )
    .unwrap();
    m
}

#[test]
fn evaluate_loss_is_the_training_objective_with_l2_penalties() {
    let n = 20;
    let mut rng = Rng::new(9);
    let x = Tensor::from_vec((0..n * 6).map(|_| rng.normal()).collect(), &[n, 6]);
    let y = Tensor::from_vec((0..n).map(|_| rng.below(3) as f32).collect(), &[n]);

    let mut plain = model(false);
    let mut reg = model(true);
    let data_loss = plain.evaluate(&x, &y, 7).unwrap().loss;
    let evaluated = reg.evaluate(&x, &y, 7).unwrap().loss;

    // The penalty by hand: l2 * sum(w^2) over the two kernels (not the biases).
    let penalty: f64 = reg
        .params()
        .iter()
        .filter(|p| p.name.ends_with("/kernel"))
        .flat_map(|p| p.var.value().data().to_vec())
        .map(|w| L2 as f64 * (w as f64).powi(2))
        .sum();
    assert!(penalty > 0.05, "the penalty must be visible: {penalty}");
    let want = data_loss as f64 + penalty;
    assert!(
        (evaluated as f64 - want).abs() < 1e-5,
        "evaluate {evaluated} vs loss {data_loss} + penalty {penalty}"
    );

    // And the same number fit logs for one full batch: the objective it differentiates.
    let history = reg
        .fit(&x, &y, FitArgs::new().epochs(1).batch_size(n).verbose(0))
        .unwrap();
    let trained = history.get("loss").unwrap()[0];
    assert!(
        (trained - evaluated).abs() < 1e-5,
        "fit's loss {trained} vs evaluate's {evaluated}"
    );
}
