//! File formats: atomic writes, safetensors weights, and the saved-model directory.

pub mod atomic;
pub mod file_set;
pub mod model_dir;
pub mod safetensors_io;
