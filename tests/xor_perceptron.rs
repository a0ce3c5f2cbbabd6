//! The first lesson: a single perceptron cannot learn XOR; a 2-2-1 MLP can.

use nabla::layers::keras::*;
use nabla::{models, FitArgs, KerasLoss, Optimizer, Sequential, Tensor};

fn table(outputs: [f32; 4]) -> (Tensor, Tensor) {
    let x = Tensor::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2]);
    (x, Tensor::from_vec(outputs.to_vec(), &[4, 1]))
}

fn train(mut m: Sequential, outputs: [f32; 4], epochs: usize) -> f32 {
    let (x, y) = table(outputs);
    m.compile(
        KerasLoss::BinaryCrossentropy { from_logits: false },
        Optimizer::sgd(1.0),
        &["accuracy"],
    )
    .unwrap();
    m.fit(
        &x,
        &y,
        FitArgs::new().epochs(epochs).batch_size(4).verbose(0),
    )
    .unwrap();
    m.evaluate(&x, &y, 4).unwrap().accuracy().unwrap()
}

const XOR: [f32; 4] = [0., 1., 1., 0.];
const AND: [f32; 4] = [0., 0., 0., 1.];

#[test]
fn xor_mlp_learns_xor() {
    assert_eq!(train(models::xor_mlp(0).unwrap(), XOR, 3000), 1.0);
    // A 2-2-1 sigmoid net falls into a local minimum from some starting points (the
    // classic result); measured here, 14 of 20 seeds reach 100%.
    let solved = (0..20)
        .filter(|&s| train(models::xor_mlp(s).unwrap(), XOR, 3000) == 1.0)
        .count();
    assert!(solved >= 12, "only {solved}/20 seeds learned XOR");
}

#[test]
fn perceptron_learns_and_but_not_xor() {
    assert_eq!(train(models::perceptron(1).unwrap(), AND, 500), 1.0);
    for seed in 0..5 {
        let acc = train(models::perceptron(seed).unwrap(), XOR, 2000);
        assert!(
            acc <= 0.75,
            "a single neuron cannot separate XOR, got {acc}"
        );
    }
}

/// The book's chapter 2: a step perceptron with hand-set weights computes AND, and no
/// weights on a grid compute XOR.
#[test]
fn step_perceptron_by_hand() {
    let (x, _) = table(AND);
    let run = |w1: f32, w2: f32, b: f32| -> Vec<f32> {
        let mut m = Sequential::new(&[2]);
        m.add(Dense(1).activation(Step)).unwrap();
        m.set_weights(&[
            Tensor::from_vec(vec![w1, w2], &[2, 1]),
            Tensor::from_vec(vec![b], &[1]),
        ])
        .unwrap();
        m.predict(&x, 4).unwrap().into_vec()
    };
    assert_eq!(run(0.5, 0.5, -0.7), AND.to_vec());
    let grid: Vec<f32> = (-10..=10).map(|i| i as f32 * 0.25).collect();
    for &w1 in &grid {
        for &w2 in &grid {
            for &b in &grid {
                assert_ne!(run(w1, w2, b), XOR.to_vec(), "XOR by ({w1}, {w2}, {b})?");
            }
        }
    }
}

/// ModelCheckpoint(save_best_only) writes a loadable model only when the monitored
/// metric improves; validation_data is used as given.
#[test]
fn checkpoint_saves_the_best_model() {
    use nabla::ModelCheckpoint;
    let (x, y) = table(XOR);
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("best");
    let mut m = models::xor_mlp(0).unwrap();
    m.compile(
        KerasLoss::BinaryCrossentropy { from_logits: false },
        Optimizer::sgd(1.0),
        &["accuracy"],
    )
    .unwrap();
    let h = m
        .fit(
            &x,
            &y,
            FitArgs::new()
                .epochs(200)
                .batch_size(4)
                .verbose(0)
                .validation_data(x.clone(), y.clone())
                .callback(
                    ModelCheckpoint::new(&ckpt)
                        .monitor("val_loss")
                        .save_best_only(true),
                ),
        )
        .unwrap();
    let val = h.get("val_loss").unwrap();
    let best = val.iter().cloned().fold(f32::INFINITY, f32::min);
    let mut saved = Sequential::load(&ckpt).unwrap();
    let ev = saved.evaluate(&x, &y, 4).unwrap();
    assert!((ev.loss - best).abs() < 1e-6, "{} vs {best}", ev.loss);
}

/// A schedule sets the learning rate each epoch, and History logs the rate in use.
#[test]
fn learning_rate_schedule_is_applied_and_logged() {
    use nabla::training::{LearningRateScheduler, Schedule};
    let (x, y) = table(XOR);
    let mut m = models::xor_mlp(0).unwrap();
    m.compile(
        KerasLoss::BinaryCrossentropy { from_logits: false },
        Optimizer::sgd(1.0),
        &["accuracy"],
    )
    .unwrap();
    let h = m
        .fit(
            &x,
            &y,
            FitArgs::new()
                .epochs(5)
                .batch_size(4)
                .verbose(0)
                .callback(LearningRateScheduler::new(Schedule::Step {
                    every: 2,
                    factor: 0.5,
                })),
        )
        .unwrap();
    assert_eq!(h.get("lr").unwrap(), &[1.0, 1.0, 0.5, 0.5, 0.25]);
}
