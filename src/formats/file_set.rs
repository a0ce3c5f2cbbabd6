//! Replacing several files of one folder as a unit: after a crash, a full disk or a kill
//! at any instant, a reader finds either all the old files or all the new ones.
//!
//! How (a redo log, as databases do it):
//! 1. every new file is written beside its target as `.nabla-pending.NAME` and synced;
//! 2. the journal `.nabla-commit.json`, naming the files to install and those to remove,
//!    is written atomically (`atomic::write_bytes_atomic`): this is the commit point;
//! 3. each pending file is renamed over its target, the files to remove are removed,
//!    the folder is synced, and the journal is deleted.
//!
//! [`recover`] finishes a commit that a crash interrupted in step 3 (the journal exists:
//! rename what is still pending) and discards one interrupted before step 2 (no
//! journal: delete the pending files), and removes the `.NAME.XXXX.tmp` leftovers of
//! killed atomic writes. `replace_files` calls it first, and so does every loader that
//! reads such a folder, so a half-done save is never seen.
//!
//! Limits: one writer at a time per folder; the names are plain file names (no `/`).

use super::atomic::write_bytes_atomic;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::Path;

/// The journal of a commit in progress.
pub const JOURNAL: &str = ".nabla-commit.json";
const PENDING_PREFIX: &str = ".nabla-pending.";

#[derive(Serialize, Deserialize)]
struct Journal {
    /// Files to rename from their pending name to their own.
    install: Vec<String>,
    /// Files to delete (they described the old generation).
    remove: Vec<String>,
}

/// Replaces the files `write` (name, bytes) in `dir` and deletes the files `remove`, all
/// as one unit (see the module doc). `dir` must exist.
pub fn replace_files(dir: &Path, write: &[(&str, &[u8])], remove: &[&str]) -> Result<()> {
    recover(dir)?;
    let pending: Vec<_> = write
        .iter()
        .map(|(name, _)| dir.join(format!("{PENDING_PREFIX}{name}")))
        .collect();
    let staged = (|| {
        for ((_, bytes), path) in write.iter().zip(&pending) {
            fault_point()?;
            let mut f = fs::File::create(path).map_err(|e| Error::io(path, e))?;
            f.write_all(bytes).map_err(|e| Error::io(path, e))?;
            f.sync_all().map_err(|e| Error::io(path, e))?;
        }
        fault_point()?;
        let journal = Journal {
            install: write.iter().map(|(n, _)| n.to_string()).collect(),
            remove: remove
                .iter()
                .filter(|r| !write.iter().any(|(n, _)| n == *r))
                .map(|r| r.to_string())
                .collect(),
        };
        let text = serde_json::to_vec(&journal).expect("journal serializes");
        write_bytes_atomic(dir.join(JOURNAL), &text)
    })();
    if let Err(e) = staged {
        // Not committed: the old files are untouched; drop the new ones.
        for p in &pending {
            let _ = fs::remove_file(p);
        }
        return Err(e);
    }
    apply(dir)
}

/// Finishes or discards an interrupted `replace_files` in `dir` (see the module doc).
/// A folder that does not exist has nothing to recover.
pub fn recover(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    if dir.join(JOURNAL).exists() {
        apply(dir)?;
    }
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_leftover(&name) {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// A pending file of an uncommitted save, or the temporary file of a killed atomic
/// write (`.NAME.XXXXXX.tmp`, see `atomic`).
fn is_leftover(name: &str) -> bool {
    name.starts_with(PENDING_PREFIX) || (name.starts_with('.') && name.ends_with(".tmp"))
}

/// Step 3: the journal exists, so the new generation is committed; make it the current
/// one. Safe to run again after a crash inside it.
fn apply(dir: &Path) -> Result<()> {
    let journal_path = dir.join(JOURNAL);
    let text = fs::read(&journal_path).map_err(|e| Error::io(&journal_path, e))?;
    let journal: Journal = serde_json::from_slice(&text)
        .map_err(|e| Error::format(&journal_path, format!("unreadable commit journal: {e}")))?;
    for name in &journal.install {
        fault_point()?;
        let from = dir.join(format!("{PENDING_PREFIX}{name}"));
        let to = dir.join(name);
        // Missing: renamed already, before a crash.
        if from.exists() {
            fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        }
    }
    for name in &journal.remove {
        fault_point()?;
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&path, e)),
            _ => {}
        }
    }
    sync_dir(dir);
    fault_point()?;
    fs::remove_file(&journal_path).map_err(|e| Error::io(&journal_path, e))?;
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
thread_local! {
    /// Test hook: the number of steps `replace_files` may take before it "crashes".
    static STEPS_LEFT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// In tests, fails (like a kill: without any cleanup of its own beyond what the error
/// path does) once the armed number of steps is used up; nothing in other builds.
fn fault_point() -> Result<()> {
    #[cfg(test)]
    {
        let left = STEPS_LEFT.with(|s| s.get());
        if let Some(n) = left {
            if n == 0 {
                return Err(Error::invalid("injected fault"));
            }
            STEPS_LEFT.with(|s| s.set(Some(n - 1)));
        }
    }
    Ok(())
}

/// Arms (or with `None` disarms) the test fault: the `n`-th step from now fails.
#[cfg(test)]
pub(crate) fn fail_after(n: Option<usize>) {
    STEPS_LEFT.with(|s| s.set(n));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
        names_in(dir)
            .into_iter()
            .map(|n| (n.clone(), fs::read(dir.join(&n)).unwrap()))
            .collect()
    }

    #[test]
    fn every_crash_point_leaves_the_old_or_the_new_generation() {
        let old = vec![
            ("a".to_string(), b"old a".to_vec()),
            ("b".to_string(), b"old b".to_vec()),
            ("c".to_string(), b"old c".to_vec()),
        ];
        let new = vec![
            ("a".to_string(), b"new a!".to_vec()),
            ("b".to_string(), b"new b!".to_vec()),
        ];
        let mut saw_old = false;
        let mut saw_new = false;
        for steps in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            replace_files(d, &[("a", b"old a"), ("b", b"old b"), ("c", b"old c")], &[]).unwrap();
            fail_after(Some(steps));
            let res = replace_files(d, &[("a", b"new a!"), ("b", b"new b!")], &["c"]);
            fail_after(None);
            // What a crash left behind, once recovered (as every loader does first).
            recover(d).unwrap();
            let got = contents(d);
            if got == old {
                saw_old = true;
                assert!(
                    res.is_err(),
                    "step {steps}: succeeded but left the old files"
                );
            } else {
                assert_eq!(got, new, "step {steps}: a mix of generations");
                saw_new = true;
            }
        }
        assert!(saw_old && saw_new);
    }

    #[test]
    fn leftovers_of_killed_writes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("weights.safetensors"), b"w").unwrap();
        fs::write(d.join(".weights.safetensors.Ab12Cd.tmp"), b"partial").unwrap();
        fs::write(d.join(".nabla-pending.model.json"), b"partial").unwrap();
        fs::write(d.join("notes.txt"), b"mine").unwrap();
        recover(d).unwrap();
        assert_eq!(names_in(d), vec!["notes.txt", "weights.safetensors"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_files_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        replace_files(d, &[("a", b"1")], &[]).unwrap();
        // A folder where a pending file must go: creating the file fails.
        fs::create_dir(d.join(".nabla-pending.b")).unwrap();
        fs::write(d.join(".nabla-pending.b/x"), b"").unwrap();
        let err = replace_files(d, &[("a", b"2"), ("b", b"2")], &[]);
        // recover cannot delete a non-empty folder: an error naming it, nothing replaced.
        assert!(err.is_err());
        assert_eq!(fs::read(d.join("a")).unwrap(), b"1");
    }
}
