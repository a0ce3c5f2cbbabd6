//! File formats: how nabla writes things to disk.

pub mod atomic;
