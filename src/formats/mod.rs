//! File formats: atomic writes, safetensors weights, the saved-model directory (one unit,
//! `file_set`), loading weights by name (`load_weights.rs`), and the callbacks that write files during `fit` (`BackupAndRestore`,
//! `CSVLogger`).

pub mod atomic;
pub mod backup;
pub mod csv_logger;
pub mod file_set;
mod history;
pub mod keras;
pub mod load_weights;
pub mod model_dir;
pub mod safetensors_io;

pub use backup::BackupAndRestore;
pub use csv_logger::CSVLogger;
pub use load_weights::LoadReport;
