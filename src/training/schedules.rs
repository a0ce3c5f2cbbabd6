//! Learning-rate schedules, as callbacks that set the optimizer's learning rate at the
//! start of each epoch (Keras' `LearningRateScheduler`), and `ReduceLROnPlateau`, which
//! lowers it when a monitored metric stops improving. The rate in use is logged as `lr`
//! in the History.

use super::callbacks::{Callback, Logs, Mode};
use super::model::Sequential;
use crate::error::{Error, Result};
use std::f32::consts::PI;

/// A learning rate as a function of the epoch (0-based), given the base rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    Constant,
    /// `lr * factor^(epoch / every)`.
    Step {
        every: usize,
        factor: f32,
    },
    /// `lr * rate^epoch`.
    Exponential {
        rate: f32,
    },
    /// Linear warm-up over `warmup` epochs, then cosine decay to `min_lr` at `epochs`.
    Cosine {
        epochs: usize,
        warmup: usize,
        min_lr: f32,
    },
    /// Smith's one-cycle: linear up from lr/25 to lr over 30% of `epochs`, then cosine
    /// down to lr/1e4.
    OneCycle {
        epochs: usize,
    },
}

impl Schedule {
    pub fn lr(&self, base: f32, epoch: usize) -> f32 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, factor } => base * factor.powi((epoch / every.max(1)) as i32),
            Schedule::Exponential { rate } => base * rate.powi(epoch as i32),
            Schedule::Cosine {
                epochs,
                warmup,
                min_lr,
            } => {
                if epoch < warmup {
                    base * (epoch + 1) as f32 / warmup as f32
                } else {
                    let span = epochs.saturating_sub(warmup).max(1) as f32;
                    let t = ((epoch - warmup) as f32 / span).min(1.0);
                    min_lr + (base - min_lr) * 0.5 * (1.0 + (PI * t).cos())
                }
            }
            Schedule::OneCycle { epochs } => {
                let up = ((epochs as f32) * 0.3).max(1.0);
                let e = epoch as f32;
                if e < up {
                    let start = base / 25.0;
                    start + (base - start) * e / up
                } else {
                    let t = ((e - up) / (epochs as f32 - up).max(1.0)).min(1.0);
                    let end = base / 1e4;
                    end + (base - end) * 0.5 * (1.0 + (PI * t).cos())
                }
            }
        }
    }

    /// Parses the CLI form: `step:EVERY:FACTOR`, `exp:RATE`, `cosine:EPOCHS[:WARMUP]`,
    /// `onecycle:EPOCHS`, `constant`.
    pub fn parse(s: &str) -> Result<Schedule> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || {
            Error::invalid(format!(
                "bad schedule '{s}'; use step:EVERY:FACTOR, exp:RATE, cosine:EPOCHS[:WARMUP], \
                 onecycle:EPOCHS or constant"
            ))
        };
        let num =
            |i: usize| -> Result<f32> { parts.get(i).and_then(|p| p.parse().ok()).ok_or_else(bad) };
        // Epoch counts are whole numbers: "-5" or "2.5" is refused, not cast to 0 or 2.
        let count = |i: usize| -> Result<usize> {
            parts.get(i).and_then(|p| p.parse().ok()).ok_or_else(bad)
        };
        let arity = |n: std::ops::RangeInclusive<usize>| {
            if n.contains(&parts.len()) {
                Ok(())
            } else {
                Err(bad())
            }
        };
        let schedule = match parts[0] {
            "constant" => {
                arity(1..=1)?;
                Schedule::Constant
            }
            "step" => {
                arity(3..=3)?;
                Schedule::Step {
                    every: count(1)?,
                    factor: num(2)?,
                }
            }
            "exp" => {
                arity(2..=2)?;
                Schedule::Exponential { rate: num(1)? }
            }
            "cosine" => {
                arity(2..=3)?;
                Schedule::Cosine {
                    epochs: count(1)?,
                    warmup: if parts.len() > 2 { count(2)? } else { 0 },
                    min_lr: 0.0,
                }
            }
            "onecycle" => {
                arity(2..=2)?;
                Schedule::OneCycle { epochs: count(1)? }
            }
            _ => return Err(bad()),
        };
        schedule
            .validate()
            .map_err(|e| Error::invalid(format!("bad schedule '{s}': {e}")))?;
        Ok(schedule)
    }

    /// Checks the ranges that give a learning rate that is positive and finite at every
    /// epoch: a step every >= 1 epoch by a factor in (0, 1], an exponential rate in
    /// (0, 1], cosine and one-cycle over >= 1 epoch with the warm-up shorter than the run.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(Error::invalid(m));
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Step { every: 0, .. } => {
                fail("the step length EVERY must be at least 1 epoch".into())
            }
            Schedule::Step { factor, .. } if !(factor > 0.0 && factor <= 1.0) => {
                fail(format!("the step FACTOR must be in (0, 1], got {factor}"))
            }
            Schedule::Exponential { rate } if !(rate > 0.0 && rate <= 1.0) => {
                fail(format!("the decay RATE must be in (0, 1], got {rate}"))
            }
            Schedule::Cosine { epochs: 0, .. } | Schedule::OneCycle { epochs: 0 } => {
                fail("EPOCHS must be at least 1".into())
            }
            Schedule::Cosine { epochs, warmup, .. } if warmup >= epochs => fail(format!(
                "the WARMUP ({warmup} epochs) must be shorter than EPOCHS ({epochs})"
            )),
            Schedule::Cosine { min_lr, .. } if !(min_lr.is_finite() && min_lr >= 0.0) => {
                fail(format!("min_lr must be >= 0, got {min_lr}"))
            }
            _ => Ok(()),
        }
    }
}

/// Sets the learning rate from a `Schedule` before each epoch.
pub struct LearningRateScheduler {
    pub schedule: Schedule,
    base: Option<f32>,
}

impl LearningRateScheduler {
    pub fn new(schedule: Schedule) -> LearningRateScheduler {
        LearningRateScheduler {
            schedule,
            base: None,
        }
    }
}

impl Callback for LearningRateScheduler {
    fn on_train_begin(&mut self, _model: &mut Sequential) -> Result<()> {
        self.schedule
            .validate()
            .map_err(|e| Error::invalid(format!("LearningRateScheduler: {e}")))
    }
    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Sequential) -> Result<()> {
        let opt = model
            .optimizer_mut()
            .ok_or_else(|| Error::invalid("LearningRateScheduler: compile the model first"))?;
        let base = *self.base.get_or_insert(opt.learning_rate());
        opt.set_learning_rate(self.schedule.lr(base, epoch));
        Ok(())
    }

    /// The base rate: after a restart the optimizer holds the last scheduled rate.
    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "base": self.base }))
    }

    fn set_state(&mut self, s: &serde_json::Value) -> Result<()> {
        self.base = serde_json::from_value(s["base"].clone())
            .map_err(|_| Error::invalid("LearningRateScheduler: unreadable saved state"))?;
        Ok(())
    }
}

/// Multiplies the learning rate by `factor` when `monitor` has not improved for
/// `patience` epochs (Keras' defaults: factor 0.1, patience 10, min_lr 0).
pub struct ReduceLROnPlateau {
    pub monitor: String,
    pub factor: f32,
    pub patience: usize,
    pub min_lr: f32,
    pub mode: Mode,
    best: Option<f32>,
    wait: usize,
}

impl ReduceLROnPlateau {
    pub fn new(monitor: &str, factor: f32, patience: usize) -> ReduceLROnPlateau {
        ReduceLROnPlateau {
            monitor: monitor.to_string(),
            factor,
            patience,
            min_lr: 0.0,
            mode: Mode::Auto,
            best: None,
            wait: 0,
        }
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, model: &mut Sequential) -> Result<()> {
        let Some(&current) = logs.get(&self.monitor) else {
            return Err(Error::invalid(format!(
                "ReduceLROnPlateau monitors '{}', which this training does not report",
                self.monitor
            )));
        };
        let maximize = match self.mode {
            Mode::Max => true,
            Mode::Min => false,
            Mode::Auto => self.monitor.contains("acc"),
        };
        let improved = match self.best {
            None => true,
            Some(b) => {
                if maximize {
                    current > b
                } else {
                    current < b
                }
            }
        };
        if improved {
            self.best = Some(current);
            self.wait = 0;
        } else {
            self.wait += 1;
            if self.wait >= self.patience {
                if let Some(opt) = model.optimizer_mut() {
                    let lr = (opt.learning_rate() * self.factor).max(self.min_lr);
                    opt.set_learning_rate(lr);
                }
                self.wait = 0;
            }
        }
        Ok(())
    }

    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "best": self.best, "wait": self.wait }))
    }

    fn set_state(&mut self, s: &serde_json::Value) -> Result<()> {
        let bad = || Error::invalid("ReduceLROnPlateau: unreadable saved state");
        self.best = serde_json::from_value(s["best"].clone()).map_err(|_| bad())?;
        self.wait = serde_json::from_value(s["wait"].clone()).map_err(|_| bad())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas() {
        let s = Schedule::Step {
            every: 2,
            factor: 0.5,
        };
        assert_eq!(
            (0..5).map(|e| s.lr(1.0, e)).collect::<Vec<_>>(),
            vec![1.0, 1.0, 0.5, 0.5, 0.25]
        );
        let c = Schedule::Cosine {
            epochs: 10,
            warmup: 2,
            min_lr: 0.0,
        };
        assert_eq!(c.lr(1.0, 0), 0.5);
        assert_eq!(c.lr(1.0, 2), 1.0);
        assert!(c.lr(1.0, 10).abs() < 1e-6);
        let o = Schedule::OneCycle { epochs: 10 };
        assert!((o.lr(1.0, 0) - 0.04).abs() < 1e-6);
        assert!((o.lr(1.0, 3) - 1.0).abs() < 1e-6);
        assert!(o.lr(1.0, 10) < 1e-3);
        assert_eq!(
            Schedule::parse("step:10:0.1").unwrap(),
            Schedule::Step {
                every: 10,
                factor: 0.1
            }
        );
        assert!(Schedule::parse("cosine").is_err());
    }

    #[test]
    fn nonsense_schedules_are_refused_with_the_reason() {
        for (spec, needle) in [
            ("step:1:-1", "FACTOR must be in (0, 1]"),
            ("step:0:0.5", "EVERY must be at least 1"),
            ("step:-2:0.5", "bad schedule"),
            ("step:2.5:0.5", "bad schedule"),
            ("exp:-5", "RATE must be in (0, 1]"),
            ("exp:nan", "RATE must be in (0, 1]"),
            ("cosine:0", "EPOCHS must be at least 1"),
            ("cosine:5:5", "WARMUP"),
            ("onecycle:0", "EPOCHS must be at least 1"),
            ("step:2", "bad schedule"),
            ("exp:0.9:1", "bad schedule"),
        ] {
            let e = Schedule::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains(spec), "{spec}: {e}");
        }
        assert_eq!(
            Schedule::parse("step:2:0.5").unwrap(),
            Schedule::Step {
                every: 2,
                factor: 0.5
            }
        );
        assert!(Schedule::parse("cosine:10:2").is_ok());
        assert!(Schedule::parse("exp:0.95").is_ok());
    }
}
