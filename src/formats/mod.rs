//! File formats: atomic writes, safetensors weights, and the saved-model directory.

pub mod atomic;
mod history;
pub mod model_dir;
pub mod safetensors_io;
