//! One error type for the whole crate. Errors happen only at the edges (files, configs,
//! shapes entering a layer, NaN losses); kernels are infallible. Every message names the
//! thing at fault (the file, the layer, both shapes) so a user can act on it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two shapes that had to agree did not; the message names the op or layer.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its contents are wrong (bad magic, truncated, wrong tensor...).
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// A name, option or argument that nabla does not know or cannot accept.
    #[error("{0}")]
    Invalid(String),
    /// Training diverged (NaN or infinite loss) or a value went non-finite.
    #[error("numerical error: {0}")]
    Numerical(String),
    /// A download failed or its checksum did not match.
    #[error("download failed: {0}")]
    Download(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub fn format(path: impl AsRef<Path>, msg: impl Into<String>) -> Error {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }
    pub fn shape(msg: impl Into<String>) -> Error {
        Error::Shape(msg.into())
    }
    /// Prefixes a shape or argument error's message with where it happened
    /// (`fit for output 'digit': ...`); other errors already name their file.
    pub fn context(self, what: &str) -> Error {
        match self {
            Error::Shape(m) => Error::Shape(format!("{what}: {m}")),
            Error::Invalid(m) => Error::Invalid(format!("{what}: {m}")),
            other => other,
        }
    }
}
