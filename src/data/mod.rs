//! Data: the built-in data sets (MNIST, Fashion-MNIST, CIFAR-10), folders of images, the
//! files they come in, and the helpers that feed them to training.
//!
//! - `idx`: reading and writing IDX files (raw or gzip), robust to corrupt headers.
//! - `detection`: COCO instances/results JSON and YOLO folders as detection data sets.
//! - `datasets`: `load_data("mnist")` and where the files are looked for.
//! - `cifar10`: the CIFAR-10 binary batches, and its archive's download and extraction.
//! - `download`: fetching the files from mirrors, verified by checksum.
//! - `augment`: seeded on-the-fly augmentation of image batches (crop, flip, rotation,
//!   shift, zoom, brightness, contrast); `transforms`: the image ops it chains.
//! - `batches`: mini-batch order, [0, 1] scaling, one-hot labels, validation split.
//! - `image`: a PNG/JPEG from disk as a model input.
//! - `image_folder`: a folder of class sub-folders of images as a data set.
//! - `normalize`: per-channel statistics and standardisation.
//! - `npy`, `npz`, `mat`: NumPy arrays and MATLAB v5 files as [`ndarray::NdArray`]s;
//!   `csv_table`: numeric tables (one-hot text columns, a schema to encode new rows).
//!   Each has a plain parser over bytes (no panic, no allocation beyond what the bytes
//!   can hold) and a path wrapper naming the file in errors.
//! - `pickle`: re-exports `formats::pickle`, the restricted pickle reader (nothing is
//!   called), for numpy's object arrays; `numpy_random`: numpy's legacy `RandomState` shuffle, for Keras' order.
//! - `split`: the seeded (stratified) train/test split; `standardize`: feature scaling.
//! - `text`: texts to token ids or bags of words (Keras' `TextVectorization`,
//!   `pad_sequences`) and `label<TAB>text` classification files (`debian-sections`).
//! - `toy`: the truth tables of the first lesson (XOR, AND, OR, NAND).

pub mod augment;
pub mod batches;
pub mod cifar10;
pub mod csv_table;
pub mod datasets;
pub mod detection;
pub mod download;
pub mod idx;
pub mod image;
pub mod image_folder;
pub mod mat;
pub mod ndarray;
pub mod normalize;
pub mod npy;
pub mod npz;
pub mod numpy_random;
pub mod per_class;
/// The restricted pickle reader moved to `formats` (the `.pth` reader uses it too).
pub use crate::formats::pickle;
pub mod split;
pub mod standardize;
pub mod text;
pub mod toy;
pub mod transforms;

pub use augment::Augmentation;
pub use batches::{to_categorical, train_validation_split, Batches};
pub use cifar10::load_cifar10;
pub use datasets::{load_data, load_data_from, Dataset};
pub use idx::{read_idx, write_idx, IdxArray};
pub use image::{load_image, load_image_for_model, ImageOptions};
pub use image_folder::{load_image_folder, ImageFolder};
pub use normalize::{channel_mean_std, normalize_per_channel};
