//! Atomic file writes: a reader of `path` sees either the old file or the complete new
//! one, never a half-written file, even if the process dies mid-write.
//!
//! How: write to a temporary file in the same directory (so the rename cannot cross file
//! systems), flush, `fsync`, then rename over the target, then `fsync` the directory
//! (best effort) so the rename itself survives a crash. On any error the temporary file
//! is removed and the old target is left untouched.
//!
//! Limits: the parent directory must exist (it is not created); a symlink at `path` is
//! replaced by a regular file rather than written through. The new file gets the old
//! target's permissions if there was one, else the usual `0o666` minus the umask.
//!
//! ```
//! # fn main() -> nabla::Result<()> {
//! use nabla::formats::atomic::{write_atomic, write_bytes_atomic};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("weights.txt");
//! write_bytes_atomic(&path, b"old")?;
//! write_atomic(&path, |w| {
//!     w.write_all(b"new").map_err(|e| nabla::Error::io("weights.txt", e))
//! })?;
//! assert_eq!(std::fs::read(&path).unwrap(), b"new");
//! # Ok(())
//! # }
//! ```

use crate::error::{Error, Result};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `path` atomically with the bytes `write` produces. If `write` returns an error
/// (or flushing, syncing or renaming fails) the temporary file is removed, `path` keeps
/// its old contents, and the error is returned unchanged.
pub fn write_atomic<F>(path: impl AsRef<Path>, write: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> Result<()>,
{
    let path = path.as_ref();
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{}: not a file path", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };

    let mut builder = tempfile::Builder::new();
    // A dot prefix hides the temporary file from casual listings; the suffix makes a
    // leftover (after a power cut) recognisable.
    let prefix = format!(".{}.", file_name.to_string_lossy());
    builder.prefix(&prefix).suffix(".tmp");
    let existing = fs::metadata(path).ok().filter(|m| m.is_file());
    #[cfg(unix)]
    {
        // tempfile creates files 0o600; ask for what a plain `File::create` would give.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let tmp = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    // From here on, dropping `tmp` (on any early return) deletes the temporary file.

    {
        let mut w = BufWriter::new(tmp.as_file());
        write(&mut w)?;
        w.flush().map_err(|e| Error::io(tmp.path(), e))?;
    }
    if let Some(meta) = existing {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    // On failure `persist` hands the temporary file back inside the error; dropping it
    // removes it.
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_atomic`]).
pub fn write_bytes_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    write_atomic(path, |w| w.write_all(bytes).map_err(|e| Error::io(path, e)))
}

/// Makes a rename durable by syncing its directory. Best effort: some platforms and file
/// systems cannot open or sync a directory, and the data itself is already synced.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
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

    #[test]
    fn writes_new_file_and_replaces_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_bytes_atomic(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_bytes_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        assert_eq!(names_in(dir.path()), vec!["a.bin"]);
    }

    #[test]
    fn error_in_writer_keeps_old_target_and_removes_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_bytes_atomic(&path, b"old").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(&[7u8; 100_000]).unwrap(); // more than the BufWriter holds
            Err(Error::invalid("writer gave up"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("writer gave up"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names_in(dir.path()), vec!["a.bin"]);
    }

    #[test]
    fn error_without_old_target_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.bin");
        assert!(write_atomic(&path, |_| Err(Error::invalid("no"))).is_err());
        assert!(names_in(dir.path()).is_empty());
    }

    #[test]
    fn missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("x.bin");
        let err = write_bytes_atomic(&path, b"x").unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[test]
    fn rename_failure_removes_temp() {
        // Renaming a file over a non-empty directory fails.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("occupied");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        assert!(write_bytes_atomic(&target, b"data").is_err());
        assert_eq!(names_in(dir.path()), vec!["occupied"]);
        assert_eq!(names_in(&target), vec!["inside"]);
    }

    #[cfg(unix)]
    #[test]
    fn keeps_permissions_of_the_old_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.bin");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_bytes_atomic(&path, b"new").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }
}
