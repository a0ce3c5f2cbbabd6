//! The open training step and losses: a user's own loop with two models, two losses and
//! two optimizers (a GAN on a 1-D Gaussian), `fit` with an overridden step, and a model
//! compiled with a custom loss saved and loaded.

use nabla::layers::{Activation, DenseConfig};
use nabla::losses::{self, Target};
use nabla::training::{minimize, StepOutput};
use nabla::{ops, FitArgs, KerasLoss, Loss, Model, Optimizer, Rng, Sequential, Tensor, Var};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

const DATA_MEAN: f32 = 3.0;
const DATA_STD: f32 = 0.5;

fn gaussian(rng: &mut Rng, n: usize, mean: f32, std: f32) -> Tensor {
    Tensor::from_vec((0..n).map(|_| mean + std * rng.normal()).collect(), &[n, 1])
}

fn mean_of(t: &Tensor) -> f32 {
    t.data().iter().sum::<f32>() / t.numel() as f32
}

#[test]
fn a_gan_trains_two_models_with_two_optimizers_in_a_user_loop() {
    // Generator: z -> a z + b. Discriminator: x -> logit (16 tanh units).
    let mut gen = Sequential::with_seed(&[1], 1);
    gen.add(DenseConfig::new(1).activation(Activation::Linear))
        .unwrap();
    let mut disc = Sequential::with_seed(&[1], 2);
    disc.add(DenseConfig::new(16).activation(Activation::Tanh))
        .unwrap();
    disc.add(DenseConfig::new(1).activation(Activation::Linear))
        .unwrap();
    let trainable =
        |m: &Model| -> Vec<_> { m.params().into_iter().filter(|p| p.trainable).collect() };
    let (g_params, d_params) = (trainable(&gen), trainable(&disc));
    let mut g_opt = Optimizer::adam(0.01);
    let mut d_opt = Optimizer::adam(0.01);
    let bce = KerasLoss::BinaryCrossentropy { from_logits: true };
    let batch = 64;
    let ones: Target = Tensor::from_vec(vec![1.0; batch], &[batch, 1]).into();
    let zeros: Target = Tensor::zeros(&[batch, 1]).into();
    let mut rng = Rng::new(7);

    let generated_mean = |gen: &mut Model, rng: &mut Rng| {
        let z = Var::constant(gaussian(rng, 2000, 0.0, 1.0));
        mean_of(&gen.forward(&z, false).unwrap().value())
    };
    let before = generated_mean(&mut gen, &mut Rng::new(99));
    assert!((before - DATA_MEAN).abs() > 2.0, "starts far off: {before}");

    for _ in 0..600 {
        // Discriminator step: real rows are 1, generated rows 0; the generator's output
        // enters as a constant, so only the discriminator learns here.
        let real = Var::constant(gaussian(&mut rng, batch, DATA_MEAN, DATA_STD));
        let z = Var::constant(gaussian(&mut rng, batch, 0.0, 1.0));
        let fake = Var::constant(gen.forward(&z, true).unwrap().value());
        let d_real = bce
            .compute(&disc.forward(&real, true).unwrap(), &ones, false)
            .unwrap();
        let d_fake = bce
            .compute(&disc.forward(&fake, true).unwrap(), &zeros, false)
            .unwrap();
        let d_loss = ops::elementwise::add(&d_real, &d_fake).unwrap();
        minimize(d_loss, &d_params, &mut d_opt).unwrap();

        // Generator step (non-saturating): the gradient flows through the
        // discriminator into the generator; only the generator's optimizer steps.
        let z = Var::constant(gaussian(&mut rng, batch, 0.0, 1.0));
        let judged = disc.forward(&gen.forward(&z, true).unwrap(), true).unwrap();
        let g_loss = bce.compute(&judged, &ones, false).unwrap();
        minimize(g_loss, &g_params, &mut g_opt).unwrap();
    }
    let after = generated_mean(&mut gen, &mut Rng::new(99));
    assert!(
        (after - DATA_MEAN).abs() < 0.4,
        "the generated mean moved from {before} to {after}, data mean {DATA_MEAN}"
    );
}

fn small_classifier(seed: u64) -> Model {
    let mut m = Sequential::with_seed(&[4], seed);
    m.add(DenseConfig::new(8).activation(Activation::Tanh))
        .unwrap();
    m.add(DenseConfig::new(3).activation(Activation::Softmax))
        .unwrap();
    m.compile(
        KerasLoss::from_name("sparse_categorical_crossentropy").unwrap(),
        Optimizer::adam(0.01),
        &["accuracy"],
    )
    .unwrap();
    m
}

fn toy_data() -> (Tensor, Tensor) {
    let mut rng = Rng::new(3);
    let n = 90;
    let y: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
    let x: Vec<f32> = y
        .iter()
        .flat_map(|&c| (0..4).map(move |j| if j == c as usize { 1.0 } else { 0.0 }))
        .map(|v| v + 0.3 * rng.normal())
        .collect();
    (Tensor::from_vec(x, &[n, 4]), Tensor::from_vec(y, &[n]))
}

#[test]
fn fit_runs_an_overridden_step_and_the_default_step_is_train_step() {
    let (x, y) = toy_data();
    let args = || FitArgs::new().epochs(3).batch_size(10).verbose(0);
    let plain = small_classifier(5).fit(&x, &y, args()).unwrap();

    let calls = Rc::new(Cell::new(0));
    let counted = calls.clone();
    let custom = small_classifier(5)
        .fit(
            &x,
            &y,
            args().train_step(move |m, xs, ys| {
                counted.set(counted.get() + 1);
                m.train_step(xs, ys)
            }),
        )
        .unwrap();
    assert_eq!(calls.get(), 3 * 9);
    // The same steps in the same order: the same history, bit for bit.
    assert_eq!(plain.get("loss"), custom.get("loss"));
    assert_eq!(plain.get("accuracy"), custom.get("accuracy"));
    let loss = plain.get("loss").unwrap();
    assert!(loss[2] < loss[0], "{loss:?}");

    // A step that reports no outputs still trains and logs its loss (no metrics).
    let h = small_classifier(5)
        .fit(
            &x,
            &y,
            args().train_step(|m, xs, ys| {
                let out = m.train_step(xs, ys)?;
                Ok(StepOutput {
                    outputs: Vec::new(),
                    ..out
                })
            }),
        )
        .unwrap();
    assert_eq!(h.get("loss"), plain.get("loss"));
    assert_eq!(h.get("accuracy").unwrap()[0], 0.0);
}

#[test]
fn a_model_with_a_custom_loss_trains_saves_and_loads_once_registered() {
    let half_mse = || {
        losses::from_fn("half_mse_custom_step", |p: &Var, t: &Target| {
            let mse = ops::loss::mean_squared_error(p, t.tensor_for("half_mse_custom_step")?)?;
            Ok(ops::elementwise::scale(&mse, 0.5))
        })
    };
    let mut m = Sequential::with_seed(&[2], 0);
    m.add(DenseConfig::new(1).activation(Activation::Linear))
        .unwrap();
    m.compile(half_mse(), Optimizer::adam(0.05), &[]).unwrap();
    let x = Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.5, 0.0], &[4, 2]);
    let y = Tensor::from_vec(vec![1.0, -1.0, 0.0, 0.5], &[4, 1]);
    let h = m
        .fit(&x, &y, FitArgs::new().epochs(100).batch_size(4).verbose(0))
        .unwrap();
    let loss = h.get("loss").unwrap();
    // A line through 4 points: the least-squares optimum is about 0.05 here.
    assert!(loss[99] < 0.25 * loss[0], "{} -> {}", loss[0], loss[99]);
    assert_eq!(m.loss().unwrap().name(), "half_mse_custom_step");

    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let json = std::fs::read_to_string(dir.path().join("model.json")).unwrap();
    assert!(
        json.contains(r#""custom": "half_mse_custom_step""#),
        "{json}"
    );
    let e = Model::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("custom loss 'half_mse_custom_step'") && e.contains("register"),
        "{e}"
    );
    losses::register("half_mse_custom_step", move || Arc::new(half_mse())).unwrap();
    let mut back = Model::load(dir.path()).unwrap();
    assert_eq!(
        back.evaluate(&x, &y, 4).unwrap().loss,
        m.evaluate(&x, &y, 4).unwrap().loss
    );
}
