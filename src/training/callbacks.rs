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
    /// What this callback has learnt during the run (a best value, a patience count), for
    /// `BackupAndRestore`; `None` when it keeps nothing across epochs.
    fn state(&self) -> Option<serde_json::Value> {
        None
    }
    /// Takes back what `state` returned, when a run is resumed (after `on_train_begin`).
    fn set_state(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
    /// Before the first epoch: the state of an interrupted run to continue, if this
    /// callback keeps one (`BackupAndRestore` restores the model and returns it).
    fn resume(&mut self, _model: &mut Sequential) -> Result<Option<FitState>> {
        Ok(None)
    }
    /// After each epoch's `on_epoch_end` (of every callback): the whole state of `fit`.
    fn on_epoch_state(&mut self, _state: &FitState, _model: &mut Sequential) -> Result<()> {
        Ok(())
    }
}

/// Everything `fit` needs, besides the model's weights and optimizer, to continue a run
/// exactly where it stood at the end of an epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FitState {
    /// The epoch to run next (0-based).
    pub next_epoch: usize,
    /// The shuffled sample order (each epoch shuffles the previous one further).
    pub order: Vec<usize>,
    /// The augmentation seed drawn at the start of the run.
    pub augment_seed: Option<u64>,
    /// The model's generator (shuffling, dropout).
    pub rng: crate::engine::RngState,
    pub history: super::history::History,
    /// Each callback's `state()`, in the order the callbacks were given.
    pub callbacks: Vec<Option<serde_json::Value>>,
    /// Whether a callback stopped the run (early stopping).
    pub stopped: bool,
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

    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "best": self.best,
            "wait": self.wait,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": self.best_weights.as_ref().map(|ws| {
                ws.iter().map(|w| (w.shape().to_vec(), w.to_f32_vec())).collect::<Vec<_>>()
            }),
        }))
    }

    fn set_state(&mut self, s: &serde_json::Value) -> Result<()> {
        let bad = || Error::invalid("EarlyStopping: unreadable saved state");
        self.best = serde_json::from_value(s["best"].clone()).map_err(|_| bad())?;
        self.wait = serde_json::from_value(s["wait"].clone()).map_err(|_| bad())?;
        self.best_epoch = serde_json::from_value(s["best_epoch"].clone()).map_err(|_| bad())?;
        self.stopped_epoch =
            serde_json::from_value(s["stopped_epoch"].clone()).map_err(|_| bad())?;
        let weights: Option<Vec<(Vec<usize>, Vec<f32>)>> =
            serde_json::from_value(s["best_weights"].clone()).map_err(|_| bad())?;
        self.best_weights = weights.map(|ws| {
            ws.into_iter()
                .map(|(shape, v)| Tensor::from_vec(v, &shape))
                .collect()
        });
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

/// Saves the model (architecture, weights, optimizer state) to a directory after each
/// epoch, or only when `monitor` improves with `save_best_only`, as Keras'
/// `ModelCheckpoint`. The path may hold `{epoch}` / `{epoch:02d}` (1-based, as Keras
/// numbers epochs) and any logged value, `{val_loss:.4f}`, `{accuracy}`, to keep one
/// directory per epoch. Each save replaces its directory as one unit.
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
    pub fn mode(mut self, m: Mode) -> Self {
        self.mode = m;
        self
    }

    /// The directory for `epoch` (0-based) with these logs: the template filled in.
    pub fn path_for(&self, epoch: usize, logs: &Logs) -> Result<PathBuf> {
        let template = self.dir.to_string_lossy();
        fill_template(&template, epoch + 1, logs).map(PathBuf::from)
    }
}

/// Fills `{epoch}`, `{epoch:02d}`, `{key}` and `{key:.Nf}` in `template`.
fn fill_template(template: &str, epoch: usize, logs: &Logs) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map(|c| open + c).ok_or_else(|| {
            Error::invalid(format!(
                "ModelCheckpoint path '{template}': a '{{' is not closed"
            ))
        })?;
        let field = &rest[open + 1..close];
        let (key, spec) = field.split_once(':').unwrap_or((field, ""));
        let bad_spec = || {
            Error::invalid(format!(
                "ModelCheckpoint path '{template}': unknown format '{{{field}}}'; use \
                 {{epoch}}, {{epoch:02d}}, {{val_loss}} or {{val_loss:.4f}}"
            ))
        };
        let text = if key == "epoch" {
            match spec {
                "" | "d" => epoch.to_string(),
                s if s.ends_with('d') => {
                    let width: usize = s[..s.len() - 1]
                        .trim_start_matches('0')
                        .parse()
                        .map_err(|_| bad_spec())?;
                    format!("{epoch:0width$}")
                }
                _ => return Err(bad_spec()),
            }
        } else {
            let v = logs.get(key).ok_or_else(|| {
                Error::invalid(format!(
                    "ModelCheckpoint path '{template}' names '{key}', which this training \
                     does not report (available: epoch, {})",
                    logs.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            match spec {
                "" => v.to_string(),
                s if s.starts_with('.') && s.ends_with('f') => {
                    let p: usize = s[1..s.len() - 1].parse().map_err(|_| bad_spec())?;
                    format!("{v:.p$}")
                }
                _ => return Err(bad_spec()),
            }
        };
        out.push_str(&text);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, _model: &mut Sequential) -> Result<()> {
        // A bad template fails before the first epoch, not after it.
        let mut logs = Logs::new();
        logs.insert(self.monitor.clone(), 0.0);
        let template = self.dir.to_string_lossy().into_owned();
        if template.contains('{') {
            for key in ["loss", "accuracy", "val_loss", "val_accuracy", "lr"] {
                logs.entry(key.to_string()).or_insert(0.0);
            }
            fill_template(&template, 1, &logs).map(|_| ())
        } else {
            Ok(())
        }
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Sequential) -> Result<()> {
        if self.save_best_only {
            let current = monitored(logs, &self.monitor)?;
            let better = match (self.best, self.mode.resolve(&self.monitor)) {
                _ if current.is_nan() => false,
                (None, _) => true,
                (Some(b), Mode::Max) => current > b,
                (Some(b), _) => current < b,
            };
            if !better {
                return Ok(());
            }
            self.best = Some(current);
        }
        model.save(&self.path_for(epoch, logs)?)
    }

    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "best": self.best }))
    }

    fn set_state(&mut self, s: &serde_json::Value) -> Result<()> {
        self.best = serde_json::from_value(s["best"].clone())
            .map_err(|_| Error::invalid("ModelCheckpoint: unreadable saved state"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_paths_fill_epoch_and_logged_values() {
        let mut logs = Logs::new();
        logs.insert("val_loss".into(), 0.123456);
        let fill = |t: &str| fill_template(t, 3, &logs);
        assert_eq!(fill("ckpt/{epoch:02d}").unwrap(), "ckpt/03");
        assert_eq!(fill("e{epoch}-{val_loss:.4f}").unwrap(), "e3-0.1235");
        assert_eq!(fill("plain").unwrap(), "plain");
        let e = fill("x/{acc}").unwrap_err().to_string();
        assert!(e.contains("names 'acc'") && e.contains("val_loss"), "{e}");
        assert!(fill("x/{epoch:xx}")
            .unwrap_err()
            .to_string()
            .contains("unknown format"));
        assert!(fill("x/{epoch").is_err());
    }
}
