//! Per-layer profile of a training step: forward and backward milliseconds per layer,
//! the layer's floating-point work, and so its achieved GFLOP/s (`nabla bench model`).
//!
//! How the time is split by layer: while profiling is on, `Sequential::forward_with`
//! times each layer's forward and sets the autodiff *scope* to the layer's index + 1
//! (`engine::autograd::set_scope`), so every node the layer records carries it; the
//! backward pass then adds each node's time to its scope. The loss is scope `n + 1`;
//! scope 0 collects what belongs to no layer (sorting the graph, parameter gradients).
//! When profiling is off, the model pays one thread-local read per forward call and the
//! engine one per recorded op (see `engine/autograd.rs`).
//!
//! The FLOP counts are analytic, from each layer's config and shapes: a convolution is
//! `2 N OC OH OW (C / groups) KH KW` forward and a dense layer `2 rows in out`; their
//! backward is the weight gradient (the same count) plus the input gradient (the same
//! again) unless the input needs no gradient (the first layer with weights reads data).
//! Bias adds, activations, pooling, dropout and reshapes are memory-bound and counted as
//! zero, so their GFLOP/s is not reported.

use super::model::Sequential;
use crate::engine::autograd::{set_backward_timing, set_scope, take_backward_seconds};
use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::nn::layer_timing;
use crate::nn::layers::{Dim, LayerConfig};
use serde::Serialize;
use std::time::Instant;

/// Turns profiling on for this thread until dropped (and clears the totals).
struct Profiling;

impl Profiling {
    fn start() -> Profiling {
        layer_timing::start();
        set_backward_timing(true);
        Profiling
    }
}

impl Drop for Profiling {
    fn drop(&mut self) {
        layer_timing::stop();
        set_backward_timing(false);
        set_scope(0);
    }
}

/// One layer's share of a training step, averaged over the profiled steps.
#[derive(Debug, Clone, Serialize)]
pub struct LayerProfile {
    pub name: String,
    pub class_name: String,
    /// Output shape without the batch axis.
    pub output_shape: Vec<usize>,
    pub forward_ms: f64,
    pub backward_ms: f64,
    /// Analytic floating-point operations per step (0 for memory-bound layers).
    pub forward_flops: f64,
    pub backward_flops: f64,
}

impl LayerProfile {
    /// Achieved GFLOP/s forward, if the layer does counted work.
    pub fn forward_gflops(&self) -> Option<f64> {
        rate(self.forward_flops, self.forward_ms)
    }
    pub fn backward_gflops(&self) -> Option<f64> {
        rate(self.backward_flops, self.backward_ms)
    }
}

fn rate(flops: f64, ms: f64) -> Option<f64> {
    (flops > 0.0 && ms > 0.0).then(|| flops / (ms * 1e-3) / 1e9)
}

/// Where a training step's time goes, per step (milliseconds, averaged).
#[derive(Debug, Clone, Serialize)]
pub struct StepProfile {
    pub batch_size: usize,
    pub steps: usize,
    pub layers: Vec<LayerProfile>,
    /// Gathering the batch (copying the shuffled rows).
    pub data_ms: f64,
    /// The loss (and weight penalties): forward and backward.
    pub loss_forward_ms: f64,
    pub loss_backward_ms: f64,
    /// Backward time outside any layer: sorting the graph, parameter gradients.
    pub autograd_other_ms: f64,
    pub optimizer_ms: f64,
    /// The whole step, wall clock.
    pub step_ms: f64,
}

impl StepProfile {
    pub fn total_flops(&self) -> f64 {
        self.layers
            .iter()
            .map(|l| l.forward_flops + l.backward_flops)
            .sum()
    }
}

/// (forward, backward) FLOPs of one layer for a batch of `n`, given its input and output
/// shapes (without batch) and whether its input needs a gradient.
pub fn layer_flops(
    cfg: &LayerConfig,
    input: &[usize],
    output: &[usize],
    n: usize,
    input_needs_grad: bool,
) -> (f64, f64) {
    // Each layer kind states its own cost (`LayerKind::flops`).
    let fwd = n as f64 * cfg.flops(&[input], output);
    // dW costs what the forward does; dX the same again, when it is computed.
    let bwd = fwd * if input_needs_grad { 2.0 } else { 1.0 };
    (fwd, bwd)
}

/// Profiles `steps` training steps of batch `batch_size` after `warmup` unmeasured ones,
/// on batches drawn in a shuffled order from `(x, y)`. The model must be compiled; it
/// keeps training (its weights and optimizer state change).
pub fn profile_training(
    model: &mut Sequential,
    x: &Tensor,
    y: &Tensor,
    batch_size: usize,
    warmup: usize,
    steps: usize,
) -> Result<StepProfile> {
    if model.compiled.is_none() {
        return Err(Error::invalid("profile: the model is not compiled"));
    }
    model.check_single_io("profile")?;
    let n = x.shape()[0];
    if batch_size == 0 || n < batch_size || steps == 0 {
        return Err(Error::invalid(format!(
            "profile: need steps >= 1 and at least one batch of {batch_size} (have {n} samples)"
        )));
    }
    let nl = model.layers().len();
    // `Model::train_step` puts the loss's ops in this scope while profiling.
    let loss_scope = nl + 1;
    let mut order: Vec<usize> = (0..n).collect();
    model.rng.shuffle(&mut order);
    let mut batches = order.chunks_exact(batch_size).cycle();

    let mut data = 0.0;
    let mut loss_fwd = 0.0;
    let mut opt = 0.0;
    let mut wall = 0.0;
    let mut fwd_layers = vec![0.0; nl];
    let mut bwd_scopes: Vec<f64> = Vec::new();
    let guard = Profiling::start();
    for step in 0..warmup + steps {
        let idx = batches.next().expect("cycle never ends");
        let t_step = Instant::now();
        let xb = x.gather_rows(idx);
        let yb: crate::losses::Target = y.gather_rows(idx).into();
        let t_fwd = Instant::now();
        let out = model.train_step(std::slice::from_ref(&xb), std::slice::from_ref(&yb))?;
        let t_end = Instant::now();
        let fwd_now = layer_timing::take();
        let bwd_now = take_backward_seconds();
        if step < warmup {
            continue;
        }
        data += (t_fwd - t_step).as_secs_f64();
        loss_fwd += out.times.loss.as_secs_f64();
        opt += out.times.optimizer.as_secs_f64();
        wall += (t_end - t_step).as_secs_f64();
        for (acc, s) in fwd_layers.iter_mut().zip(fwd_now.unwrap_or_default()) {
            *acc += s;
        }
        if bwd_scopes.len() < bwd_now.len() {
            bwd_scopes.resize(bwd_now.len(), 0.0);
        }
        for (acc, s) in bwd_scopes.iter_mut().zip(bwd_now) {
            *acc += s;
        }
    }
    drop(guard);

    let per_step_ms = |s: f64| s * 1e3 / steps as f64;
    let bwd_of = |scope: usize| bwd_scopes.get(scope).copied().unwrap_or(0.0);
    let mut layers = Vec::with_capacity(nl);
    // A fused pair's time is the first layer's row ("BatchNormalization+ReLU"); the ReLU's
    // row says where its work went.
    let absorbed = model.relu_fusions();
    let fused_class = |i: usize, class: &str| -> String {
        if let Some(p) = absorbed[i] {
            format!("{class}, fused into {}", model.layers()[p].name())
        } else if absorbed.contains(&Some(i)) {
            format!("{class}+ReLU")
        } else {
            class.to_string()
        }
    };
    // The data needs no gradient; every layer after the first one with weights does.
    let mut input_needs_grad = false;
    for (i, (layer, shape)) in model
        .layers()
        .iter()
        .zip(model.layer_output_shapes())
        .enumerate()
    {
        // A further call of a shared layer costs what the layer costs.
        let cfg = layer
            .as_shared()
            .map_or_else(|| layer.config(), |s| s.layer_config());
        // An axis known only per batch counts as 0 (the profile then shows no FLOPs).
        let sizes = |s: &[Dim]| -> Vec<usize> { s.iter().map(|d| d.get().unwrap_or(0)).collect() };
        let input = sizes(model.layer_input_shapes(i)[0]);
        let shape = sizes(shape);
        let (f, b) = layer_flops(&cfg, &input, &shape, batch_size, input_needs_grad);
        layers.push(LayerProfile {
            name: layer.name().to_string(),
            class_name: fused_class(i, cfg.class_name()),
            output_shape: shape,
            forward_ms: per_step_ms(fwd_layers[i]),
            backward_ms: per_step_ms(bwd_of(i + 1)),
            forward_flops: f,
            backward_flops: b,
        });
        input_needs_grad |= layer.params().iter().any(|p| p.trainable);
    }
    Ok(StepProfile {
        batch_size,
        steps,
        layers,
        data_ms: per_step_ms(data),
        loss_forward_ms: per_step_ms(loss_fwd),
        loss_backward_ms: per_step_ms(bwd_of(loss_scope)),
        autograd_other_ms: per_step_ms(bwd_of(0)),
        optimizer_ms: per_step_ms(opt),
        step_ms: per_step_ms(wall),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::losses::KerasLoss;
    use crate::nn::layers::keras::*;
    use crate::optimizers::Optimizer;

    /// The Keras MNIST CNN (`models::keras_cnn`), built here: training sits below the zoo.
    fn keras_cnn() -> Sequential {
        let mut m = Sequential::with_seed(&[1, 28, 28], 0);
        m.add(Conv2D(32, 3).activation(Relu))
            .unwrap()
            .add(MaxPooling2D(2))
            .unwrap()
            .add(Conv2D(64, 3).activation(Relu))
            .unwrap()
            .add(MaxPooling2D(2))
            .unwrap()
            .add(Conv2D(64, 3).activation(Relu))
            .unwrap()
            .add(Flatten())
            .unwrap()
            .add(Dense(64).activation(Relu))
            .unwrap()
            .add(Dropout(0.2))
            .unwrap()
            .add(Dense(10).activation(Softmax))
            .unwrap();
        m
    }

    #[test]
    fn flops_of_the_keras_cnn_layers() {
        let m = keras_cnn();
        let cfg: Vec<_> = m.layers().iter().map(|l| l.config()).collect();
        let shapes: Vec<Vec<usize>> = m
            .layer_output_shapes()
            .iter()
            .map(|s| crate::nn::layers::dims::known(s).unwrap())
            .collect();
        // conv1: 2 * 32 * 26 * 26 * 1 * 9 per image; its input is data: no dX.
        let (f, b) = layer_flops(&cfg[0], &[1, 28, 28], &shapes[0], 2, false);
        assert_eq!(f, 2.0 * 2.0 * (32 * 26 * 26 * 9) as f64);
        assert_eq!(b, f);
        // conv2: 2 * 64 * 11 * 11 * 32 * 9 per image; dW and dX.
        let (f, b) = layer_flops(&cfg[2], &shapes[1], &shapes[2], 1, true);
        assert_eq!(f, 2.0 * (64 * 11 * 11 * 32 * 9) as f64);
        assert_eq!(b, 2.0 * f);
        let (f, _) = layer_flops(&cfg[6], &shapes[5], &shapes[6], 3, true);
        assert_eq!(f, 2.0 * (3 * 576 * 64) as f64);
        assert_eq!(
            layer_flops(&cfg[1], &shapes[0], &shapes[1], 3, true),
            (0.0, 0.0)
        );
    }

    #[test]
    fn profile_assigns_time_to_every_weighted_layer_and_turns_itself_off() {
        // `models::mlp`.
        let mut m = Sequential::with_seed(&[1, 28, 28], 0);
        m.add(Flatten())
            .unwrap()
            .add(Dense(100).activation(Relu))
            .unwrap()
            .add(Dense(100).activation(Relu))
            .unwrap()
            .add(Dense(10).activation(Softmax))
            .unwrap();
        m.compile(
            KerasLoss::SparseCategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            Optimizer::adam(1e-3),
            &["accuracy"],
        )
        .unwrap();
        let x = Tensor::from_vec(vec![0.5; 8 * 784], &[8, 1, 28, 28]);
        let y = Tensor::from_vec((0..8).map(|i| (i % 10) as f32).collect(), &[8]);
        let p = profile_training(&mut m, &x, &y, 4, 1, 2).unwrap();
        assert_eq!(p.layers.len(), 4);
        for l in p.layers.iter().filter(|l| l.class_name == "Dense") {
            assert!(l.forward_ms > 0.0 && l.backward_ms > 0.0, "{l:?}");
            assert!(l.forward_flops > 0.0);
        }
        assert!(p.step_ms > 0.0);
        assert!(!crate::nn::layer_timing::is_profiling());
    }
}
