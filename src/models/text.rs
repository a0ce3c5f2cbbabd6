//! The built-in text classifiers, for inputs that `data::text::TextVectorization` makes:
//!
//! - `text-bow`: a bag of words (`multi_hot` or `tf_idf`, `[N, V]`) -> Dense(128, relu)
//!   -> Dropout(0.5) -> Dense(classes, softmax);
//! - `text-cnn`: token ids (`int`, `[N, L]`) -> Embedding(V, 64) -> Conv1D(128, 5, relu,
//!   "same") -> GlobalMaxPooling1D -> Dropout(0.5) -> Dense(classes, softmax);
//! - `text-lstm` / `text-bilstm` / `text-gru`: token ids -> Embedding(V, 64) -> LSTM(64),
//!   Bidirectional(LSTM(64)) (concat: 128) or GRU(64) (Keras' `reset_after=True`) ->
//!   Dropout(0.5) -> Dense(classes, softmax). Their Embedding has `mask_zero`: the
//!   recurrent layer skips the padding (id 0) wherever it is, at no cost (the op packs
//!   the real steps, as PyTorch's packed sequences). The CLI still hands them ids padded
//!   at the start (`is_recurrent`), which runs saved before masking (no `mask_zero`)
//!   need and which makes no difference to a masked model.
//!
//! Their widths were picked by measuring on `debian-sections` (README, "Text"). The
//! vocabulary size and class count come from the data; `build_default` uses
//! `DEFAULT_MAX_TOKENS` and `DEFAULT_CLASSES` (for `nabla summary`).

use crate::error::{Error, Result};
use crate::nn::layers::keras::*;
use crate::nn::layers::Padding1D;
use crate::training::Sequential;

/// The built-in text models.
pub const TEXT_MODELS: [&str; 5] = [
    "text-bow",
    "text-cnn",
    "text-lstm",
    "text-bilstm",
    "text-gru",
];
/// Vocabulary size (reserved tokens included) unless `--max-tokens` says otherwise.
pub const DEFAULT_MAX_TOKENS: usize = 10_000;
/// `text-cnn`'s sequence length unless `--sequence-length` says otherwise: debian-sections'
/// descriptions have 7 words at the median and 10 at the 95th percentile.
pub const DEFAULT_SEQUENCE_LENGTH: usize = 16;
/// Classes of `debian-sections`, the text models' own data set (for a summary).
pub const DEFAULT_CLASSES: usize = 50;
/// `text-bow`'s hidden width.
pub const BOW_HIDDEN: usize = 128;
/// `text-cnn`'s embedding width and filter count.
pub const CNN_EMBEDDING: usize = 64;
pub const CNN_FILTERS: usize = 128;
/// The recurrent recipes' embedding width and units (per direction).
pub const RNN_EMBEDDING: usize = 64;
pub const RNN_UNITS: usize = 64;

/// Whether `name` is a built-in text model.
pub fn is_text_model(name: &str) -> bool {
    TEXT_MODELS.contains(&name)
}

/// The bag-of-words MLP on `width` bag columns (the vectorizer's output width).
pub fn text_bow(width: usize, classes: usize, seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_seed(&[width], seed);
    m.name = "text-bow".into();
    m.add(Dense(BOW_HIDDEN).activation(Relu))? // [128]
        .add(Dropout(0.5))?
        .add(Dense(classes).activation(Softmax))?; // [classes]
    Ok(m)
}

/// The 1-D CNN on `length` token ids from a vocabulary of `vocabulary` entries.
pub fn text_cnn(vocabulary: usize, length: usize, classes: usize, seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_seed(&[length], seed);
    m.name = "text-cnn".into();
    m.add(Embedding(vocabulary, CNN_EMBEDDING))? // [L, 64]
        .add(
            Conv1D(CNN_FILTERS, 5)
                .activation(Relu)
                .padding(Padding1D::Same),
        )? // [L, 128]
        .add(GlobalMaxPooling1D())? // [128]
        .add(Dropout(0.5))?
        .add(Dense(classes).activation(Softmax))?; // [classes]
    Ok(m)
}

/// Whether `name` is a recurrent text model (reads ids padded at the start).
pub fn is_recurrent(name: &str) -> bool {
    matches!(name, "text-lstm" | "text-bilstm" | "text-gru")
}

/// The recurrent layer of a recurrent recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recurrent {
    Lstm,
    BiLstm,
    Gru,
}

/// The recurrent recipe `cell` (`text-lstm`, `text-bilstm`, `text-gru`) on `length`
/// token ids.
pub fn text_rnn(
    vocabulary: usize,
    length: usize,
    classes: usize,
    cell: Recurrent,
    seed: u64,
) -> Result<Sequential> {
    let mut m = Sequential::with_seed(&[length], seed);
    m.name = match cell {
        Recurrent::Lstm => "text-lstm",
        Recurrent::BiLstm => "text-bilstm",
        Recurrent::Gru => "text-gru",
    }
    .into();
    m.add(Embedding(vocabulary, RNN_EMBEDDING).mask_zero(true))?; // [L, 64], mask [L]
    match cell {
        Recurrent::Lstm => m.add(LSTM(RNN_UNITS))?, // [64]
        Recurrent::BiLstm => m.add(Bidirectional(LSTM(RNN_UNITS)))?, // [128]
        Recurrent::Gru => m.add(GRU(RNN_UNITS))?,   // [64]
    };
    m.add(Dropout(0.5))?
        .add(Dense(classes).activation(Softmax))?; // [classes]
    Ok(m)
}

/// A text model for a vocabulary (bag width or embedding rows), a sequence length (for
/// the sequence models) and a class count.
pub fn build(
    name: &str,
    vocabulary: usize,
    length: usize,
    classes: usize,
    seed: u64,
) -> Result<Sequential> {
    match name {
        "text-bow" => text_bow(vocabulary, classes, seed),
        "text-cnn" => text_cnn(vocabulary, length, classes, seed),
        "text-lstm" => text_rnn(vocabulary, length, classes, Recurrent::Lstm, seed),
        "text-bilstm" => text_rnn(vocabulary, length, classes, Recurrent::BiLstm, seed),
        "text-gru" => text_rnn(vocabulary, length, classes, Recurrent::Gru, seed),
        other => Err(Error::invalid(format!(
            "unknown text model '{other}'; text models: {}",
            TEXT_MODELS.join(", ")
        ))),
    }
}

/// A text model at the defaults (for `nabla summary text-bow`).
pub fn build_default(name: &str, seed: u64) -> Result<Sequential> {
    build(
        name,
        DEFAULT_MAX_TOKENS,
        DEFAULT_SEQUENCE_LENGTH,
        DEFAULT_CLASSES,
        seed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_build_at_the_defaults_with_keras_counts() {
        let bow = build_default("text-bow", 0).unwrap();
        // Dense: in * out + out.
        let bow_params = 10_000 * 128 + 128 + 128 * 50 + 50;
        assert_eq!(bow.count_params(), (bow_params, 0));
        let cnn = build_default("text-cnn", 0).unwrap();
        let cnn_params = 10_000 * 64 + (5 * 64 * 128 + 128) + (128 * 50 + 50);
        assert_eq!(cnn.count_params(), (cnn_params, 0));
        assert_eq!(cnn.output_shape(), &[50]);
        // Keras: LSTM 4 * (F*U + U*U + U), Bidirectional twice that.
        let lstm = 4 * (64 * 64 + 64 * 64 + 64);
        let rnn = build_default("text-lstm", 0).unwrap();
        assert_eq!(rnn.count_params(), (10_000 * 64 + lstm + (64 * 50 + 50), 0));
        let birnn = build_default("text-bilstm", 0).unwrap();
        assert_eq!(
            birnn.count_params(),
            (10_000 * 64 + 2 * lstm + (128 * 50 + 50), 0)
        );
        // Keras' GRU with reset_after=True: 3 * (F*U + U*U + 2U) (two bias rows).
        let gru = 3 * (64 * 64 + 64 * 64 + 2 * 64);
        let g = build_default("text-gru", 0).unwrap();
        assert_eq!(g.count_params(), (10_000 * 64 + gru + (64 * 50 + 50), 0));
        assert_eq!(g.output_shape(), &[50]);
        let e = build("text-rnn", 10, 4, 2, 0).err().unwrap().to_string();
        assert!(e.contains("text-rnn") && e.contains("text-bow"), "{e}");
    }
}
