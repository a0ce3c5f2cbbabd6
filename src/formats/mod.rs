//! File formats: atomic writes, safetensors weights, the saved-model directory (one unit,
//! `file_set`), loading weights by name (`load_weights.rs`), PyTorch state dicts
//! (`torch_pth` reads `.pth` zips through the restricted `pickle` reader, `torch_names`
//! maps torchvision's names onto the zoo's), and the callbacks that write files during `fit` (`BackupAndRestore`,
//! `CSVLogger`).

pub mod atomic;
pub mod backup;
pub mod csv_logger;
pub mod file_set;
mod history;
pub mod keras;
pub mod load_weights;
pub mod model_dir;
pub mod onnx;
pub mod pickle;
pub mod safetensors_io;
pub mod torch_names;
pub mod torch_pth;

pub use backup::BackupAndRestore;
pub use csv_logger::CSVLogger;
pub use load_weights::LoadReport;
