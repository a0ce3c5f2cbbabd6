//! `CSVLogger`: one CSV row per epoch (`epoch` and every logged value, columns sorted
//! by name, as Keras writes them), to a file that is rewritten whole (atomically) after
//! each epoch, so a kill never leaves a torn row. With `append`, the rows of an earlier
//! run already in the file are kept (a resumed run continues its log).

use crate::error::{Error, Result};
use crate::training::Sequential;
use crate::training::{Callback, Logs};
use std::path::PathBuf;

pub struct CSVLogger {
    pub path: PathBuf,
    pub separator: char,
    pub append: bool,
    header: Vec<String>,
    rows: Vec<String>,
}

impl CSVLogger {
    pub fn new(path: impl Into<PathBuf>) -> CSVLogger {
        CSVLogger {
            path: path.into(),
            separator: ',',
            append: false,
            header: Vec::new(),
            rows: Vec::new(),
        }
    }
    pub fn separator(mut self, s: char) -> Self {
        self.separator = s;
        self
    }
    pub fn append(mut self, a: bool) -> Self {
        self.append = a;
        self
    }

    fn write(&self) -> Result<()> {
        let sep = self.separator.to_string();
        let mut text = self.header.join(&sep);
        text.push('\n');
        for r in &self.rows {
            text.push_str(r);
            text.push('\n');
        }
        super::atomic::write_bytes_atomic(&self.path, text.as_bytes())
    }
}

impl Callback for CSVLogger {
    fn on_train_begin(&mut self, _model: &mut Sequential) -> Result<()> {
        self.header.clear();
        self.rows.clear();
        if self.append && self.path.exists() {
            let text = std::fs::read_to_string(&self.path).map_err(|e| Error::io(&self.path, e))?;
            let mut lines = text.lines();
            if let Some(h) = lines.next() {
                self.header = h.split(self.separator).map(str::to_string).collect();
                self.rows = lines.map(str::to_string).collect();
            }
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _model: &mut Sequential) -> Result<()> {
        let keys: Vec<String> = std::iter::once("epoch".to_string())
            .chain(logs.keys().cloned())
            .collect();
        if self.header.is_empty() {
            self.header = keys;
        } else if self.header != keys {
            return Err(Error::invalid(format!(
                "CSVLogger {}: this epoch logs [{}] but the file's columns are [{}]",
                self.path.display(),
                keys.join(", "),
                self.header.join(", ")
            )));
        }
        let row: Vec<String> = std::iter::once(epoch.to_string())
            .chain(logs.values().map(|v| v.to_string()))
            .collect();
        self.rows.push(row.join(&self.separator.to_string()));
        self.write()
    }
}
