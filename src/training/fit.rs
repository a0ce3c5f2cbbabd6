//! The training loop behind `Sequential::fit`.
//!
//! One training step (see ARCHITECTURE.md for the data flow):
//! receive the next shuffled (and, if configured, augmented) batch from the producer
//! thread (`prefetch`) -> forward (training mode, logits if the loss fuses the output
//! activation) -> loss (+ L2 penalties) -> NaN check -> zero grads -> backward ->
//! optimizer step -> running loss/accuracy for the progress bar.

use super::callbacks::{Callback, Logs};
use super::history::History;
use super::metrics;
use super::model::{check_labels_len, Sequential};
use super::prefetch::{AugmentWith, Prefetcher};
use crate::data::augment::Augmentation;
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

/// Arguments of `fit`, with Keras' defaults (`epochs=1, batch_size=32, shuffle=True,
/// verbose=1`).
pub struct FitArgs {
    pub epochs: usize,
    pub batch_size: usize,
    /// Fraction of the samples, taken from the end before shuffling, held out for
    /// validation (ignored when `validation_data` is given).
    pub validation_split: f64,
    pub validation_data: Option<(Tensor, Tensor)>,
    pub shuffle: bool,
    /// 0: silent, 1: progress bar and a line per epoch, 2: a line per epoch.
    pub verbose: u8,
    pub callbacks: Vec<Box<dyn Callback>>,
    pub initial_epoch: usize,
    /// Augmentation of the training batches (never of validation data). Its random
    /// numbers are seeded by one draw from the model's generator at the start of `fit`,
    /// so a seeded model gives the same augmented batches on every run.
    pub augmentation: Option<Augmentation>,
}

impl Default for FitArgs {
    fn default() -> Self {
        FitArgs {
            epochs: 1,
            batch_size: 32,
            validation_split: 0.0,
            validation_data: None,
            shuffle: true,
            verbose: 1,
            callbacks: Vec::new(),
            initial_epoch: 0,
            augmentation: None,
        }
    }
}

impl FitArgs {
    pub fn new() -> FitArgs {
        FitArgs::default()
    }
    pub fn epochs(mut self, e: usize) -> Self {
        self.epochs = e;
        self
    }
    pub fn batch_size(mut self, b: usize) -> Self {
        self.batch_size = b;
        self
    }
    pub fn validation_split(mut self, f: f64) -> Self {
        self.validation_split = f;
        self
    }
    pub fn validation_data(mut self, x: Tensor, y: Tensor) -> Self {
        self.validation_data = Some((x, y));
        self
    }
    pub fn shuffle(mut self, s: bool) -> Self {
        self.shuffle = s;
        self
    }
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    pub fn callback(mut self, c: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(c));
        self
    }
    pub fn augmentation(mut self, a: Augmentation) -> Self {
        self.augmentation = Some(a);
        self
    }
}

/// Where an epoch's time went, summed over its batches: the producer preparing them, the
/// main thread waiting for them, and the main thread running the steps.
#[derive(Default)]
struct BatchTiming {
    prepare: Duration,
    wait: Duration,
    step: Duration,
}

fn format_logs(logs: &Logs) -> String {
    const ORDER: [&str; 4] = ["loss", "accuracy", "val_loss", "val_accuracy"];
    ORDER
        .iter()
        .filter_map(|k| logs.get(*k).map(|v| format!("{k}: {v:.4}")))
        .collect::<Vec<_>>()
        .join(" - ")
}

pub(super) fn fit(
    model: &mut Sequential,
    x: &Tensor,
    y: &Tensor,
    args: FitArgs,
) -> Result<History> {
    let FitArgs {
        epochs,
        batch_size,
        validation_split,
        validation_data,
        shuffle,
        verbose,
        mut callbacks,
        initial_epoch,
        augmentation,
    } = args;
    let (loss_fn, metric_list) = match &model.compiled {
        Some(c) => (c.loss, c.metrics.clone()),
        None => {
            return Err(Error::invalid(
                "fit: the model is not compiled (call compile first)",
            ))
        }
    };
    model.check_single_io("fit")?;
    if batch_size == 0 {
        return Err(Error::invalid("fit: batch_size must be at least 1"));
    }
    check_labels_len(x, y)?;
    loss_fn.check_labels(y, model.output_shape())?;
    // An augmentation that does nothing is no augmentation (and draws no seed, so the run
    // stays identical to one without it).
    let augmentation = augmentation.filter(|a| !a.is_identity());
    if let Some(a) = &augmentation {
        a.validate()?;
        a.check_input(x.shape())?;
    }

    // Keras takes the validation split from the end, before any shuffling.
    let (train_x, train_y, val) = match validation_data {
        Some((vx, vy)) => {
            check_labels_len(&vx, &vy)?;
            (x.clone(), y.clone(), Some((vx, vy)))
        }
        None if validation_split > 0.0 => {
            let ((tx, ty), (vx, vy)) = crate::data::train_validation_split(x, y, validation_split)?;
            (tx, ty, Some((vx, vy)))
        }
        None => (x.clone(), y.clone(), None),
    };
    let n = train_x.shape()[0];
    if n == 0 {
        return Err(Error::invalid("fit: no training samples"));
    }

    let fused = model.fuses_output_activation();
    let params = model.params();
    let trainable: Vec<_> = params.iter().filter(|p| p.trainable).cloned().collect();
    let mut history = History::default();
    model.stop_training = false;
    for cb in callbacks.iter_mut() {
        cb.on_train_begin(model)?;
    }

    let steps = n.div_ceil(batch_size);
    let mut order: Vec<usize> = (0..n).collect();
    // Drawn only when augmenting, so that runs without augmentation keep their shuffles
    // and dropout masks.
    let augment_seed = augmentation.as_ref().map(|_| model.rng.next_u64());
    let augment = augmentation
        .as_ref()
        .zip(augment_seed)
        .map(|(augmentation, seed)| AugmentWith { augmentation, seed });
    for epoch in initial_epoch..epochs {
        for cb in callbacks.iter_mut() {
            cb.on_epoch_begin(epoch, model)?;
        }
        if shuffle {
            model.rng.shuffle(&mut order);
        }
        let bar = if verbose == 1 {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} - ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("Epoch {}/{}", epoch + 1, epochs));
            bar
        } else {
            ProgressBar::hidden()
        };
        let start = Instant::now();
        let mut loss_sum = 0.0f64;
        let mut correct = 0usize;
        let mut metric_counts = vec![0usize; metric_list.len()];
        let mut seen = 0usize;
        let mut timing = BatchTiming::default();
        // The producer thread borrows the data and this epoch's order; the scope ends
        // (joining it) before the order is shuffled again.
        std::thread::scope(|scope| -> Result<()> {
            let mut batches = Prefetcher::start(
                scope, &train_x, &train_y, &order, batch_size, epoch, augment,
            );
            for step in 0..steps {
                let (batch, waited) = batches.next_batch()?;
                let step_start = Instant::now();
                timing.wait += waited;
                timing.prepare += batch.prepare;
                let batch_len = batch.size;
                let xb = Var::constant(batch.x);
                let yb = batch.y;
                let out = model.forward_with(&xb, true, fused)?;
                let loss = model.training_loss(loss_fn, &out, &yb, fused)?;
                let lv = loss.value().item();
                if !lv.is_finite() {
                    bar.abandon();
                    return Err(Error::Numerical(format!(
                        "the loss became {lv} at epoch {}, batch {} of {steps}; try a lower \
                     learning rate (now {:e}) or check the inputs for NaN",
                        epoch + 1,
                        step + 1,
                        model
                            .optimizer()
                            .map(|o| o.learning_rate())
                            .unwrap_or(f32::NAN)
                    )));
                }
                for p in &trainable {
                    p.var.zero_grad();
                }
                loss.backward();
                drop(loss);
                model
                    .compiled
                    .as_mut()
                    .expect("compiled")
                    .optimizer
                    .step(&trainable);
                loss_sum += lv as f64 * batch_len as f64;
                let out_value = out.value();
                correct += metrics::count_correct(&out_value, &yb, fused);
                for (count, m) in metric_counts.iter_mut().zip(&metric_list) {
                    *count += m.count(&out_value, &yb, fused);
                }
                seen += batch_len;
                for cb in callbacks.iter_mut() {
                    cb.on_train_batch_end(step, model)?;
                }
                if verbose == 1 && (step % 10 == 9 || step + 1 == steps) {
                    let rate = seen as f64 / start.elapsed().as_secs_f64().max(1e-9);
                    bar.set_message(format!(
                        "loss: {:.4} - accuracy: {:.4} - {:.0} img/s",
                        loss_sum / seen as f64,
                        correct as f64 / seen as f64,
                        rate
                    ));
                }
                bar.inc(1);
                timing.step += step_start.elapsed();
            }
            Ok(())
        })?;
        let seconds = start.elapsed().as_secs_f64();
        bar.finish_and_clear();

        let mut logs = Logs::new();
        logs.insert("loss".into(), (loss_sum / seen as f64) as f32);
        for (m, count) in metric_list.iter().zip(&metric_counts) {
            logs.insert(m.name(), *count as f32 / seen as f32);
        }
        if let Some((vx, vy)) = &val {
            let ev = model.evaluate(vx, vy, batch_size.max(256))?;
            logs.insert("val_loss".into(), ev.loss);
            for (k, v) in ev.metrics {
                logs.insert(format!("val_{k}"), v);
            }
        }
        logs.insert(
            "lr".into(),
            model.optimizer().map(|o| o.learning_rate()).unwrap_or(0.0),
        );
        logs.insert("seconds".into(), seconds as f32);
        logs.insert("images_per_second".into(), (seen as f64 / seconds) as f32);
        let per_batch = |d: Duration| (d.as_secs_f64() * 1e3 / steps as f64) as f32;
        logs.insert("batch_prepare_ms".into(), per_batch(timing.prepare));
        logs.insert("batch_wait_ms".into(), per_batch(timing.wait));
        logs.insert("step_ms".into(), per_batch(timing.step));
        if verbose >= 1 {
            println!(
                "Epoch {}/{} - {:.1}s - {:.0} img/s - {} - batches: prepared {:.2} ms, \
                 waited {:.2} ms, step {:.2} ms",
                epoch + 1,
                epochs,
                seconds,
                seen as f64 / seconds,
                format_logs(&logs),
                per_batch(timing.prepare),
                per_batch(timing.wait),
                per_batch(timing.step),
            );
        }
        history.push(epoch, &logs);
        for cb in callbacks.iter_mut() {
            cb.on_epoch_end(epoch, &logs, model)?;
        }
        if model.stop_training {
            break;
        }
    }
    for cb in callbacks.iter_mut() {
        cb.on_train_end(model)?;
        let (best, stopped) = cb.early_stop_epochs();
        history.best_epoch = history.best_epoch.or(best);
        history.stopped_epoch = history.stopped_epoch.or(stopped);
    }
    if verbose >= 1 {
        if let Some(s) = history.stopped_epoch {
            println!("Early stopping after epoch {}.", s + 1);
        }
        if let Some(b) = history.best_epoch {
            println!("Restored the weights of epoch {} (the best).", b + 1);
        }
    }
    Ok(history)
}
