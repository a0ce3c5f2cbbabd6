//! `History::save`: the per-epoch logs as JSON, written atomically (here, so that
//! training does not depend on file formats).

use super::atomic::write_bytes_atomic;
use crate::error::Result;
use crate::training::History;
use std::path::Path;

impl History {
    /// Writes `to_json()` to `path`, replacing any old file whole or not at all.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_bytes_atomic(path, self.to_json().as_bytes())
    }
}
