//! `fit` over a batch source (Keras' `fit` on a generator): a model with a `None` time
//! axis learns a rule over whole sequences from one fit whose batches alternate between
//! lengths 5 and 17; a batch whose feature axis does not fit is a clear error; and a
//! list of batches trains exactly as `fit` does on the same tensors (one loop).

use nabla::layers::keras::*;
use nabla::training::{Batch, BatchSource, FitArgs, Model};
use nabla::{KerasLoss, Optimizer, Rng, Tensor};

const SPARSE: KerasLoss = KerasLoss::SparseCategoricalCrossentropy {
    from_logits: false,
    label_smoothing: 0.0,
};
const FEATURES: usize = 4;

/// Dense on each step of `[T, 4]`, mean over the steps, Dense to two classes.
fn sequence_model(seed: u64) -> Model {
    let inputs = Input(&[None, Some(FEATURES)]);
    let x = Dense(16).activation(Relu).call(&inputs).unwrap();
    let x = GlobalAveragePooling1D().call(&x).unwrap();
    let out = Dense(2).activation(Softmax).call(&x).unwrap();
    Model::functional(&[&inputs], &[&out], seed).unwrap()
}

/// `n` sequences of `t` steps. The class is whether feature 0 leans positive over the
/// whole sequence: each step is noise (std 1) plus +-0.4 on feature 0, so one step says
/// little and the mean over the sequence says much.
fn sequences(n: usize, t: usize, rng: &mut Rng) -> (Tensor, Tensor) {
    let mut x = Vec::with_capacity(n * t * FEATURES);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let class = rng.below(2);
        let lean = if class == 1 { 0.4 } else { -0.4 };
        for _ in 0..t {
            x.push(rng.normal() + lean);
            x.extend((1..FEATURES).map(|_| rng.normal()));
        }
        y.push(class as f32);
    }
    (
        Tensor::from_vec(x, &[n, t, FEATURES]),
        Tensor::from_vec(y, &[n]),
    )
}

/// Fresh sequences every batch: even batches 5 steps long, odd ones 17.
struct Alternating {
    batches: usize,
    features: usize,
}

impl BatchSource for Alternating {
    fn len(&self) -> usize {
        self.batches
    }
    fn batch(&mut self, epoch: usize, index: usize) -> nabla::Result<Batch> {
        let t = if index.is_multiple_of(2) { 5 } else { 17 };
        let mut rng = Rng::new((epoch * 1000 + index) as u64);
        let (x, y) = sequences(16, t, &mut rng);
        // A source may give a batch the model cannot take (the error test).
        let x = if self.features == FEATURES {
            x
        } else {
            Tensor::zeros(&[16, t, self.features])
        };
        Ok(Batch::new(x, y))
    }
}

#[test]
fn a_none_time_axis_learns_from_batches_of_lengths_5_and_17_in_one_fit() {
    let mut m = sequence_model(1);
    m.compile(SPARSE, Optimizer::adam(0.01), &["accuracy"])
        .unwrap();
    let mut source = Alternating {
        batches: 10,
        features: FEATURES,
    };
    let mut test_rng = Rng::new(99);
    let (x5, y5) = sequences(400, 5, &mut test_rng);
    let (x17, y17) = sequences(400, 17, &mut test_rng);
    let before = m.evaluate(&x17, &y17, 100).unwrap();

    let history = m
        .fit_source(&mut source, FitArgs::new().epochs(12).verbose(0))
        .unwrap();
    let loss = history.get("loss").unwrap();
    assert_eq!(loss.len(), 12);
    assert!(
        loss[11] < 0.7 * loss[0],
        "the training loss should fall clearly: {loss:?}"
    );

    // Held-out sequences of both lengths. The Bayes accuracy of the mean of feature 0
    // is Phi(0.4 sqrt(T)): 0.81 for T = 5, 0.95 for T = 17; chance is 0.5.
    let short = m.evaluate(&x5, &y5, 100).unwrap().accuracy().unwrap();
    let long = m.evaluate(&x17, &y17, 100).unwrap().accuracy().unwrap();
    eprintln!("loss per epoch {loss:?}; accuracy length 5: {short}, length 17: {long}");
    assert!(short > 0.72, "accuracy on length 5: {short}");
    assert!(
        long > 0.85,
        "accuracy on length 17: {long} (before: {before:?})"
    );
    assert!(
        long > short,
        "longer sequences carry more evidence: {short} vs {long}"
    );
}

#[test]
fn a_batch_with_the_wrong_feature_axis_is_a_clear_error() {
    let mut m = sequence_model(2);
    m.compile(SPARSE, Optimizer::adam(0.01), &[]).unwrap();
    let mut source = Alternating {
        batches: 2,
        features: 5,
    };
    let msg = m
        .fit_source(&mut source, FitArgs::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("batch 1 of 2"), "{msg}");
    assert!(msg.contains("[16, 5, 5]"), "{msg}");
    assert!(msg.contains("[batch, None, 4]"), "{msg}");

    // Options that need tensors are refused, not ignored.
    let mut ok = Alternating {
        batches: 2,
        features: FEATURES,
    };
    let msg = m
        .fit_source(&mut ok, FitArgs::new().verbose(0).validation_split(0.2))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("validation_split"), "{msg}");
    let mut empty: Vec<Batch> = Vec::new();
    assert!(m.fit_source(&mut empty, FitArgs::new().verbose(0)).is_err());
}

#[test]
fn a_list_of_batches_trains_exactly_as_fit_on_the_same_tensors() {
    let mut rng = Rng::new(5);
    let (x, y) = sequences(40, 6, &mut rng);
    let train = |by_source: bool| {
        let mut m = sequence_model(3);
        m.compile(SPARSE, Optimizer::adam(0.01), &["accuracy"])
            .unwrap();
        let args = FitArgs::new()
            .epochs(3)
            .batch_size(16)
            .shuffle(false)
            .verbose(0);
        let history = if by_source {
            let mut batches: Vec<Batch> = (0..40)
                .step_by(16)
                .map(|s| {
                    let e = (s + 16).min(40);
                    Batch::new(x.slice_rows(s, e), y.slice_rows(s, e))
                })
                .collect();
            m.fit_source(&mut batches, args).unwrap()
        } else {
            m.fit(&x, &y, args).unwrap()
        };
        let weights: Vec<Vec<f32>> = m.get_weights().iter().map(|w| w.to_f32_vec()).collect();
        (weights, history.get("loss").unwrap().to_vec())
    };
    let (w_tensors, loss_tensors) = train(false);
    let (w_source, loss_source) = train(true);
    assert_eq!(loss_tensors, loss_source);
    assert_eq!(w_tensors, w_source);
}
