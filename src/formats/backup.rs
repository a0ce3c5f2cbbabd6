//! `BackupAndRestore` (Keras' callback of that name, made exact): after every epoch it
//! saves the model, its optimizer state and the whole state of `fit` (`FitState`: next
//! epoch, shuffle order, augmentation seed, the model's random generator, history, and
//! every callback's state) into one directory, as one unit (`formats::file_set`). A
//! `fit` given the same callback after a kill finds that directory, restores all of it,
//! and continues: a run killed at an epoch boundary ends bit-identical to one that was
//! not; one killed mid-epoch repeats only that epoch.
//!
//! Limits: the model must be the same architecture (its weights are checked by name and
//! shape); the data, batch size and callbacks must be the same as in the first run.

use super::model_dir;
use crate::error::{Error, Result};
use crate::training::{Callback, FitState};
use crate::training::{CompileConfig, Sequential};
use std::path::PathBuf;

/// The file, beside the model files, holding the `FitState`.
pub const FIT_STATE_FILE: &str = "fit_state.json";

pub struct BackupAndRestore {
    pub dir: PathBuf,
    /// Remove the backup when `fit` ends normally (Keras' default: true).
    pub delete_checkpoint: bool,
    /// Further files saved with every backup (the command line that started the run).
    pub files: Vec<(String, Vec<u8>)>,
    /// When a backup cannot be written (a full disk): warn once on stderr, remove the
    /// incomplete backup and train on without one, instead of failing `fit`.
    pub best_effort: bool,
    warned: bool,
}

impl BackupAndRestore {
    pub fn new(dir: impl Into<PathBuf>) -> BackupAndRestore {
        BackupAndRestore {
            dir: dir.into(),
            delete_checkpoint: true,
            files: Vec::new(),
            best_effort: false,
            warned: false,
        }
    }
    pub fn best_effort(mut self, b: bool) -> Self {
        self.best_effort = b;
        self
    }
    /// Saves `bytes` as `name` in every backup, in the same unit as the model.
    pub fn with_file(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.files.push((name.to_string(), bytes));
        self
    }
    pub fn delete_checkpoint(mut self, d: bool) -> Self {
        self.delete_checkpoint = d;
        self
    }

    /// Whether the directory holds a backup to resume from.
    pub fn has_backup(&self) -> bool {
        super::file_set::recover(&self.dir).is_ok() && self.dir.join(FIT_STATE_FILE).is_file()
    }
}

impl Callback for BackupAndRestore {
    fn resume(&mut self, model: &mut Sequential) -> Result<Option<FitState>> {
        if !self.has_backup() {
            return Ok(None);
        }
        let state_path = self.dir.join(FIT_STATE_FILE);
        let text = std::fs::read(&state_path).map_err(|e| Error::io(&state_path, e))?;
        let state: FitState = serde_json::from_slice(&text)
            .map_err(|e| Error::format(&state_path, format!("unreadable fit state: {e}")))?;
        model_dir::load_weights(model, &self.dir.join(model_dir::WEIGHTS_FILE))?;
        let saved = model_dir::load_config(&self.dir.join(model_dir::CONFIG_FILE))?;
        let config_path = self.dir.join(model_dir::CONFIG_FILE);
        let compile = saved
            .compile
            .map(serde_json::from_value::<CompileConfig>)
            .transpose()
            .map_err(|e| Error::format(&config_path, format!("compile: {e}")))?;
        if let (Some(opt), Some(c)) = (model.optimizer_mut(), compile) {
            let path = self.dir.join(model_dir::OPTIMIZER_FILE);
            let tensors = super::safetensors_io::load(&path)?;
            opt.load_state(&tensors)
                .map_err(|e| Error::format(&path, e.to_string()))?;
            // The rate in use (a schedule or ReduceLROnPlateau may have changed it).
            opt.set_learning_rate(c.optimizer.learning_rate);
        }
        Ok(Some(state))
    }

    fn on_epoch_state(&mut self, state: &FitState, model: &mut Sequential) -> Result<()> {
        let json = serde_json::to_vec(state).expect("fit state serializes");
        let mut files: Vec<(&str, &[u8])> = vec![(FIT_STATE_FILE, &json)];
        files.extend(self.files.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
        match model_dir::save_with(model, &self.dir, &files) {
            Err(e) if self.best_effort => {
                // No backup is better than a stale one: a resume would go back further.
                let _ = std::fs::remove_dir_all(&self.dir);
                if !self.warned {
                    eprintln!("warning: no backup for --resume: {e}");
                    self.warned = true;
                }
                Ok(())
            }
            r => r,
        }
    }

    fn on_train_end(&mut self, _model: &mut Sequential) -> Result<()> {
        if self.delete_checkpoint && self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        }
        Ok(())
    }
}
