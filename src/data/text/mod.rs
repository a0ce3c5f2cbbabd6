//! Text as data, the Keras way: texts to integer sequences or bags of words, and text
//! classification files.
//!
//! - `standardize`: lower-case, strip punctuation, split on white space (Keras' rules,
//!   and where nabla differs: Unicode lower-casing).
//! - `vocabulary`: [`TextVectorization`]: `adapt` a vocabulary, transform texts in the
//!   `int`, `multi_hot`, `count` or `tf_idf` modes, save and load it as JSON.
//! - `pad`: [`pad_sequences`], as `keras.utils.pad_sequences`.
//! - `tsv`: `label<TAB>text` files, the `debian-sections` data set by name.
//! - `keras_datasets`: Keras' `reuters` and `imdb` as id sequences, downloaded and
//!   checked as Keras does, with the word index as a vocabulary.
//!
//! ```no_run
//! use nabla::data::text::{load_text_data, TextVectorization, TextVectorizationConfig};
//! # fn main() -> nabla::Result<()> {
//! let ds = load_text_data("debian-sections")?; // 50 classes, sorted names
//! let mut tv = TextVectorization::new(TextVectorizationConfig {
//!     max_tokens: Some(10_000), // including "" (padding) and "[UNK]"
//!     output_sequence_length: Some(32),
//!     ..Default::default()
//! })?;
//! tv.adapt(&ds.train_texts);
//! let x_train = tv.transform(&ds.train_texts)?; // [50554, 32] token ids in f32
//! assert_eq!(x_train.shape(), &[50_554, 32]);
//! tv.save("runs/text/vocabulary.json")?; // TextVectorization::load checks it
//! # Ok(())
//! # }
//! ```

pub mod keras_datasets;
pub mod pad;
pub mod standardize;
pub mod tsv;
pub mod vocabulary;

pub use pad::{pad_sequences, pad_sequences_tensor, Side};
pub use standardize::{standardize, tokenize, Standardize};
pub use tsv::{load_text_data, load_text_data_from, read_labelled_tsv, LabelledTexts, TextDataset};
pub use vocabulary::{OutputMode, TextVectorization, TextVectorizationConfig};
