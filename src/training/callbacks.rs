//! Callbacks: code that runs at fixed points of `fit`. `EarlyStopping` and
//! `ModelCheckpoint` behave as in Keras.

use super::model::Sequential;
use crate::engine::Tensor;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Metric values at the end of an epoch (`loss`, `val_loss`, `accuracy`, ...).
pub type Logs = BTreeMap<String, f32>;

pub trait Callback {
    fn on_train_begin(&mut self, _model: &mut Sequential) -> Result<()> {
        Ok(())
    }
    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut Sequential) -> Result<()> {
        Ok(())
    }
    /// After each training step (the optimizer has updated the weights); `step` counts
    /// from 0 within the epoch. `nabla bench` times steps with it.
    fn on_train_batch_end(&mut self, _step: usize, _model: &mut Sequential) -> Result<()> {
        Ok(())
    }
    /// Set `model.stop_training = true` to stop after this epoch.
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, _model: &mut Sequential) -> Result<()> {
        Ok(())
    }
    fn on_train_end(&mut self, _model: &mut Sequential) -> Result<()> {
        Ok(())
    }
    /// (best epoch, stopped epoch) for the History, if this callback decides them.
    fn early_stop_epochs(&self) -> (Option<usize>, Option<usize>) {
        (None, None)
    }
}

/// Whether smaller or larger values of the monitored quantity are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Min,
    Max,
    /// Max for names containing "acc", min otherwise (Keras' rule).
    Auto,
}

impl Mode {
    fn resolve(self, monitor: &str) -> Mode {
        match self {
            Mode::Auto if monitor.contains("acc") => Mode::Max,
            Mode::Auto => Mode::Min,
            m => m,
        }
    }
    pub fn from_name(name: &str) -> Result<Mode> {
        match name {
            "min" => Ok(Mode::Min),
            "max" => Ok(Mode::Max),
            "auto" => Ok(Mode::Auto),
            o => Err(Error::invalid(format!(
                "unknown mode '{o}'; known: min, max, auto"
            ))),
        }
    }
}

fn monitored(logs: &Logs, monitor: &str) -> Result<f32> {
    logs.get(monitor).copied().ok_or_else(|| {
        Error::invalid(format!(
            "callback monitors '{monitor}', which this training does not report (available: {})",
            logs.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Stops training when `monitor` has not improved by more than `min_delta` for
/// `patience` epochs. With `restore_best_weights`, the model ends training with the
/// weights of the best epoch (whether or not it stopped early).
pub struct EarlyStopping {
    pub monitor: String,
    pub min_delta: f32,
    pub patience: usize,
    pub mode: Mode,
    pub restore_best_weights: bool,
    best: Option<f32>,
    wait: usize,
    best_weights: Option<Vec<Tensor>>,
    pub best_epoch: Option<usize>,
    pub stopped_epoch: Option<usize>,
}

impl EarlyStopping {
    pub fn new(monitor: &str, patience: usize) -> EarlyStopping {
        EarlyStopping {
            monitor: monitor.to_string(),
            min_delta: 0.0,
            patience,
            mode: Mode::Auto,
            restore_best_weights: false,
            best: None,
            wait: 0,
            best_weights: None,
            best_epoch: None,
            stopped_epoch: None,
        }
    }
    pub fn min_delta(mut self, d: f32) -> Self {
        self.min_delta = d.abs();
        self
    }
    pub fn mode(mut self, m: Mode) -> Self {
        self.mode = m;
        self
    }
    pub fn restore_best_weights(mut self, r: bool) -> Self {
        self.restore_best_weights = r;
        self
    }

    fn improved(&self, current: f32) -> bool {
        match (self.best, self.mode.resolve(&self.monitor)) {
            (None, _) => true,
            (Some(best), Mode::Max) => current - self.min_delta > best,
            (Some(best), _) => current + self.min_delta < best,
        }
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _model: &mut Sequential) -> Result<()> {
        self.best = None;
        self.wait = 0;
        self.best_weights = None;
        self.best_epoch = None;
        self.stopped_epoch = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Sequential) -> Result<()> {
        let current = monitored(logs, &self.monitor)?;
        if current.is_nan() {
            return Ok(());
        }
        if self.improved(current) {
            self.best = Some(current);
            self.best_epoch = Some(epoch);
            self.wait = 0;
            if self.restore_best_weights {
                self.best_weights = Some(model.get_weights());
            }
        } else {
            self.wait += 1;
            if self.wait >= self.patience {
                model.stop_training = true;
                self.stopped_epoch = Some(epoch);
            }
        }
        Ok(())
    }

    fn on_train_end(&mut self, model: &mut Sequential) -> Result<()> {
        if let Some(w) = self.best_weights.take() {
            model.set_weights(&w)?;
        }
        Ok(())
    }

    fn early_stop_epochs(&self) -> (Option<usize>, Option<usize>) {
        (
            if self.restore_best_weights {
                self.best_epoch
            } else {
                None
            },
            self.stopped_epoch,
        )
    }
}

/// Saves the model (architecture + weights) to a directory after each epoch, or only
/// when `monitor` improves with `save_best_only`.
pub struct ModelCheckpoint {
    pub dir: PathBuf,
    pub monitor: String,
    pub save_best_only: bool,
    pub mode: Mode,
    best: Option<f32>,
}

impl ModelCheckpoint {
    pub fn new(dir: impl Into<PathBuf>) -> ModelCheckpoint {
        ModelCheckpoint {
            dir: dir.into(),
            monitor: "val_loss".into(),
            save_best_only: false,
            mode: Mode::Auto,
            best: None,
        }
    }
    pub fn monitor(mut self, m: &str) -> Self {
        self.monitor = m.to_string();
        self
    }
    pub fn save_best_only(mut self, b: bool) -> Self {
        self.save_best_only = b;
        self
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, model: &mut Sequential) -> Result<()> {
        if self.save_best_only {
            let current = monitored(logs, &self.monitor)?;
            let better = match (self.best, self.mode.resolve(&self.monitor)) {
                (None, _) => true,
                (Some(b), Mode::Max) => current > b,
                (Some(b), _) => current < b,
            };
            if !better {
                return Ok(());
            }
            self.best = Some(current);
        }
        model.save(&self.dir)
    }
}
