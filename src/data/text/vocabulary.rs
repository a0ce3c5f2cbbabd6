//! `TextVectorization`, the data half of Keras' layer: `adapt` learns a vocabulary from
//! training texts; [`TextVectorization::transform`] turns texts into a tensor.
//!
//! Keras' rules, kept here (checked against keras 3.15 / TensorFlow 2.21, see
//! `scripts/golden/text_vectorization.py`):
//!
//! - Tokens: [`super::standardize::tokenize`] (lower-case, strip ASCII punctuation,
//!   split on ASCII white space).
//! - Vocabulary order: count descending; ties by the token's bytes **descending**
//!   (Keras sorts with `np.lexsort((tokens, counts))[::-1]`, so of two tokens seen
//!   equally often, `b` comes before `a`). Deterministic for any input order.
//! - Reserved entries, counted inside `max_tokens` as Keras does: in `int` mode index 0
//!   is the padding token `""` and index 1 the OOV token `"[UNK]"`; in the bag modes
//!   (`multi_hot`, `count`, `tf_idf`) Keras' layer has no padding token, so index 0 is
//!   `"[UNK]"` and column 0 collects the out-of-vocabulary tokens. So `max_tokens =
//!   10000` keeps the 9,998 (int) or 9,999 (bags) most frequent tokens.
//! - `int`: one id per token (OOV -> 1), rows padded with 0 at the end to the longest
//!   text of the call, or, with `output_sequence_length`, padded or truncated at the
//!   end to that length. Shape `[N, L]`, ids as whole numbers in f32: the engine's index
//!   ops (`ops::index::embedding`) read ids that way.
//! - `multi_hot`: 1 where the token occurs; `count`: occurrences; `tf_idf`: count x idf
//!   with idf = ln(1 + num_docs / (1 + doc_freq)), `num_docs` = texts adapted over,
//!   `doc_freq` = texts containing the token; the OOV column's idf is the mean idf of
//!   the learned tokens (Keras cannot count OOV documents in one pass; 0 when no token
//!   was learned, where Keras would give NaN). Shape `[N, V]` with V the vocabulary size,
//!   or `max_tokens` with `pad_to_max_tokens` (extra columns 0), as Keras.
//! - The literal tokens `""` and `"[UNK]"` are never learned (Keras removes them from
//!   the counts); with the default standardization they cannot occur anyway.
//!
//! Not implemented: n-grams, `split`/`standardize` callables, `sparse`, `ragged`.
//!
//! Saved as JSON ([`TextVectorization::save`], e.g. `vocabulary.json` beside a model);
//! [`TextVectorization::load`] checks everything a later transform relies on and names
//! the file in every error.
//!
//! ```
//! use nabla::data::text::{OutputMode, TextVectorization, TextVectorizationConfig};
//! let mut tv = TextVectorization::new(TextVectorizationConfig {
//!     max_tokens: Some(5),
//!     ..Default::default()
//! })?;
//! tv.adapt(&["the cat", "the dog", "a bird"]);
//! assert_eq!(tv.vocabulary(), ["", "[UNK]", "the", "dog", "cat"]);
//! let ids = tv.transform(&["The cat sat"])?;
//! assert_eq!(ids.to_f32_vec(), [2.0, 4.0, 1.0]);
//! # Ok::<(), nabla::Error>(())
//! ```

use super::standardize::{tokenize, Standardize};
use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::formats::atomic::write_bytes_atomic;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The padding token (index 0 in `int` mode).
pub const PAD_TOKEN: &str = "";
/// The out-of-vocabulary token (index 1 in `int` mode, 0 in the bag modes; 2 with
/// Keras' data set ids).
pub const OOV_TOKEN: &str = "[UNK]";
/// The start-of-text token of Keras' data set ids (`start_char`).
pub const START_TOKEN: &str = "[START]";
/// The id Keras' data sets leave unused (`index_from` = 3, the first word is 4).
pub const UNUSED_TOKEN: &str = "[UNUSED]";
/// The reserved entries of a vocabulary laid out as Keras' `imdb`/`reuters` ids:
/// 0 padding, 1 `start_char`, 2 `oov_char`, 3 unused, word of rank r at r + 3.
pub const KERAS_RESERVED: &[&str] = &[PAD_TOKEN, START_TOKEN, OOV_TOKEN, UNUSED_TOKEN];
/// Most entries a vocabulary may have (also bounds `max_tokens` and
/// `output_sequence_length`), so a config cannot ask for absurd tensors.
pub const MAX_VOCABULARY: usize = 1 << 24;
/// The `format` field of a saved vocabulary.
pub const FORMAT: &str = "nabla.TextVectorization";

/// What [`TextVectorization::transform`] returns (Keras' `output_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// Token ids, `[N, L]`.
    #[default]
    Int,
    /// 1 per vocabulary entry present, `[N, V]`.
    MultiHot,
    /// Occurrences per vocabulary entry, `[N, V]`.
    Count,
    /// Occurrences times inverse document frequency, `[N, V]`.
    TfIdf,
}

/// The settings of a [`TextVectorization`] (Keras' constructor arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextVectorizationConfig {
    /// Vocabulary size including the reserved entries; `None`: every token seen.
    pub max_tokens: Option<usize>,
    /// How texts are standardized before splitting on white space.
    pub standardize: Standardize,
    /// What a transform returns.
    pub output_mode: OutputMode,
    /// `int` mode only: pad or truncate every row (at the end) to this length.
    pub output_sequence_length: Option<usize>,
    /// Bag modes only: `max_tokens` columns even if the vocabulary is smaller.
    pub pad_to_max_tokens: bool,
    /// Ids as Keras' `imdb`/`reuters` data sets number words (see [`KERAS_RESERVED`]):
    /// every text starts with id 1, unknown words are 2. The vocabulary then comes from
    /// the data set's word index ([`TextVectorization::with_vocabulary`]), not `adapt`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keras_ids: bool,
}

impl Default for TextVectorizationConfig {
    fn default() -> Self {
        TextVectorizationConfig {
            max_tokens: None,
            standardize: Standardize::default(),
            output_mode: OutputMode::Int,
            output_sequence_length: None,
            pad_to_max_tokens: false,
            keras_ids: false,
        }
    }
}

impl TextVectorizationConfig {
    /// The reserved tokens at the front of the vocabulary in this mode.
    pub fn reserved(&self) -> &'static [&'static str] {
        if self.keras_ids {
            return KERAS_RESERVED;
        }
        match self.output_mode {
            OutputMode::Int => &[PAD_TOKEN, OOV_TOKEN],
            _ => &[OOV_TOKEN],
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        if let Some(m) = self.max_tokens {
            if m < 2 || m < self.reserved().len() || m > MAX_VOCABULARY {
                return Err(format!(
                    "max_tokens must be in {}..={MAX_VOCABULARY} (it includes the reserved \
                     tokens {:?}), got {m}",
                    self.reserved().len().max(2),
                    self.reserved()
                ));
            }
        }
        if let Some(l) = self.output_sequence_length {
            if self.output_mode != OutputMode::Int {
                return Err(format!(
                    "output_sequence_length is for output_mode int only, not {:?}",
                    self.output_mode
                ));
            }
            if l > MAX_VOCABULARY {
                return Err(format!(
                    "output_sequence_length must be at most {MAX_VOCABULARY}, got {l}"
                ));
            }
        }
        if self.keras_ids && self.output_mode == OutputMode::TfIdf {
            return Err("keras_ids has no idf weights: use int, multi_hot or count".into());
        }
        if self.pad_to_max_tokens {
            if self.output_mode == OutputMode::Int {
                return Err("pad_to_max_tokens is for the bag modes, not int".into());
            }
            if self.max_tokens.is_none() {
                return Err("pad_to_max_tokens needs max_tokens".into());
            }
        }
        Ok(())
    }
}

/// A vocabulary learned from texts, and the rules to turn texts into tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct TextVectorization {
    config: TextVectorizationConfig,
    /// Reserved tokens first, then the learned ones, most frequent first; empty until
    /// `adapt` or `load`.
    vocabulary: Vec<String>,
    /// token -> index into `vocabulary`.
    index: HashMap<String, usize>,
    /// `tf_idf` only: one weight per vocabulary entry.
    idf_weights: Vec<f32>,
}

/// The file form: the config, the vocabulary and (tf_idf) the idf weights.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    format: String,
    version: u32,
    config: TextVectorizationConfig,
    vocabulary: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idf_weights: Option<Vec<f32>>,
}

impl TextVectorization {
    /// A layer with no vocabulary yet; refuses inconsistent settings.
    pub fn new(config: TextVectorizationConfig) -> Result<TextVectorization> {
        config
            .check()
            .map_err(|m| Error::invalid(format!("TextVectorization: {m}")))?;
        Ok(TextVectorization {
            config,
            vocabulary: Vec::new(),
            index: HashMap::new(),
            idf_weights: Vec::new(),
        })
    }

    pub fn config(&self) -> &TextVectorizationConfig {
        &self.config
    }

    /// Reserved tokens, then learned tokens by index (Keras' `get_vocabulary()`).
    pub fn vocabulary(&self) -> &[String] {
        &self.vocabulary
    }

    pub fn vocabulary_size(&self) -> usize {
        self.vocabulary.len()
    }

    /// `tf_idf` mode: the weight of each vocabulary entry (empty in other modes).
    pub fn idf_weights(&self) -> &[f32] {
        &self.idf_weights
    }

    /// Learns the vocabulary (and, for `tf_idf`, the idf weights) from `texts`,
    /// replacing any earlier one, as Keras' `adapt`.
    pub fn adapt<S: AsRef<str>>(&mut self, texts: &[S]) {
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut doc_freq: HashMap<String, u64> = HashMap::new();
        for text in texts {
            let tokens = tokenize(text.as_ref(), self.config.standardize);
            let mut seen = HashSet::new();
            for t in tokens {
                if seen.insert(t.clone()) {
                    *doc_freq.entry(t.clone()).or_insert(0) += 1;
                }
                *counts.entry(t).or_insert(0) += 1;
            }
        }
        for special in [PAD_TOKEN, OOV_TOKEN].iter().chain(self.config.reserved()) {
            counts.remove(*special);
        }
        let mut learned: Vec<(String, u64)> = counts.into_iter().collect();
        // Count descending, then the token's bytes descending: Keras'
        // np.lexsort((tokens, counts))[::-1].
        learned.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        let reserved = self.config.reserved();
        if let Some(m) = self.config.max_tokens {
            learned.truncate(m - reserved.len());
        }
        let mut vocabulary: Vec<String> = reserved.iter().map(|s| s.to_string()).collect();
        vocabulary.extend(learned.into_iter().map(|(t, _)| t));
        self.idf_weights = if self.config.output_mode == OutputMode::TfIdf {
            let n = texts.len() as f64;
            let learned_idf: Vec<f32> = vocabulary[reserved.len()..]
                .iter()
                .map(|t| (1.0 + n / (1.0 + doc_freq[t] as f64)).ln() as f32)
                .collect();
            let mean = if learned_idf.is_empty() {
                0.0
            } else {
                (learned_idf.iter().map(|&w| w as f64).sum::<f64>() / learned_idf.len() as f64)
                    as f32
            };
            let mut w = vec![mean; reserved.len()];
            w.extend(learned_idf);
            w
        } else {
            Vec::new()
        };
        self.set_vocabulary(vocabulary);
    }

    fn set_vocabulary(&mut self, vocabulary: Vec<String>) {
        self.index = vocabulary
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        self.vocabulary = vocabulary;
    }

    /// The OOV token's index in this mode.
    pub fn oov_index(&self) -> usize {
        if self.config.keras_ids {
            return 2;
        }
        match self.config.output_mode {
            OutputMode::Int => 1,
            _ => 0,
        }
    }

    /// The index of one (already standardized) token; OOV for unknown ones.
    pub fn token_index(&self, token: &str) -> usize {
        match self.index.get(token) {
            // A learned token, or "" (the padding token, int mode only).
            Some(&i) if token != OOV_TOKEN => i,
            _ => self.oov_index(),
        }
    }

    /// The indices of `text`'s tokens, unpadded.
    pub fn encode(&self, text: &str) -> Vec<usize> {
        // Keras' data sets start every text with start_char.
        let start = self.config.keras_ids.then_some(1);
        start
            .into_iter()
            .chain(
                tokenize(text, self.config.standardize)
                    .iter()
                    .map(|t| self.token_index(t)),
            )
            .collect()
    }

    /// Bag modes: the number of columns of a transform.
    pub fn output_width(&self) -> usize {
        match (self.config.pad_to_max_tokens, self.config.max_tokens) {
            (true, Some(m)) => m.max(self.vocabulary.len()),
            _ => self.vocabulary.len(),
        }
    }

    /// `texts` as a tensor, by the output mode: `[N, L]` ids or `[N, V]` bags (see the
    /// module docs). Errors before `adapt`/`load`, or when the tensor would exceed
    /// 2^31 values (transform in batches).
    pub fn transform<S: AsRef<str>>(&self, texts: &[S]) -> Result<Tensor> {
        if self.vocabulary.is_empty() {
            return Err(Error::invalid(
                "TextVectorization: no vocabulary yet; call adapt (or load a saved one) first",
            ));
        }
        let n = texts.len();
        let too_big = |cols: usize| {
            Error::invalid(format!(
                "TextVectorization: {n} texts x {cols} columns is more than 2^31 values; \
                 transform them in smaller batches"
            ))
        };
        let encoded: Vec<Vec<usize>> = texts.iter().map(|t| self.encode(t.as_ref())).collect();
        if self.config.output_mode == OutputMode::Int {
            let len = self
                .config
                .output_sequence_length
                .unwrap_or_else(|| encoded.iter().map(Vec::len).max().unwrap_or(0));
            if n.checked_mul(len).is_none_or(|v| v > 1 << 31) {
                return Err(too_big(len));
            }
            let mut out = vec![0.0f32; n * len];
            for (row, ids) in out.chunks_mut(len.max(1)).zip(&encoded) {
                for (o, &id) in row.iter_mut().zip(ids) {
                    *o = id as f32;
                }
            }
            return Ok(Tensor::from_vec(out, &[n, len]));
        }
        let width = self.output_width();
        if n.checked_mul(width).is_none_or(|v| v > 1 << 31) {
            return Err(too_big(width));
        }
        let mut out = vec![0.0f32; n * width];
        for (row, ids) in out.chunks_mut(width.max(1)).zip(&encoded) {
            for &id in ids {
                match self.config.output_mode {
                    OutputMode::MultiHot => row[id] = 1.0,
                    _ => row[id] += 1.0,
                }
            }
            if self.config.output_mode == OutputMode::TfIdf {
                for (v, &w) in row.iter_mut().zip(&self.idf_weights) {
                    *v *= w;
                }
            }
        }
        Ok(Tensor::from_vec(out, &[n, width]))
    }

    /// The JSON form (config, vocabulary, idf weights).
    pub fn to_json(&self) -> String {
        let saved = Saved {
            format: FORMAT.to_string(),
            version: 1,
            config: self.config.clone(),
            vocabulary: self.vocabulary.clone(),
            idf_weights: (self.config.output_mode == OutputMode::TfIdf)
                .then(|| self.idf_weights.clone()),
        };
        serde_json::to_string_pretty(&saved).expect("plain data serializes")
    }

    /// Writes [`Self::to_json`] to `path` atomically (e.g. `run/vocabulary.json`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        if self.vocabulary.is_empty() {
            return Err(Error::invalid(format!(
                "{}: TextVectorization has no vocabulary to save; call adapt first",
                path.as_ref().display()
            )));
        }
        write_bytes_atomic(path, self.to_json().as_bytes())
    }

    /// Reads a vocabulary saved by [`Self::save`], checked (see [`Self::from_json`]).
    pub fn load(path: impl AsRef<Path>) -> Result<TextVectorization> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text).map_err(|m| Error::format(path, m))
    }

    /// Parses and checks a saved vocabulary: its JSON, its settings, the reserved tokens
    /// in front, no duplicate or empty learned token, at most `max_tokens` entries, and
    /// (tf_idf) one finite idf weight >= 0 per entry. Errors are plain messages; `load`
    /// adds the file.
    pub fn from_json(text: &str) -> std::result::Result<TextVectorization, String> {
        let saved: Saved = serde_json::from_str(text)
            .map_err(|e| format!("not a saved TextVectorization: {e}"))?;
        if saved.format != FORMAT || saved.version != 1 {
            return Err(format!(
                "format {:?} version {}, expected {FORMAT:?} version 1",
                saved.format, saved.version
            ));
        }
        Self::with_vocabulary(saved.config, saved.vocabulary, saved.idf_weights)
    }

    /// A layer with a given vocabulary (reserved tokens first), checked as
    /// [`Self::from_json`] checks a saved one: how Keras' data sets' word indexes
    /// become a vocabulary (`keras_ids`).
    pub fn with_vocabulary(
        config: TextVectorizationConfig,
        vocabulary: Vec<String>,
        idf_weights: Option<Vec<f32>>,
    ) -> std::result::Result<TextVectorization, String> {
        config.check()?;
        let reserved = config.reserved();
        if vocabulary.len() < reserved.len()
            || vocabulary[..reserved.len()]
                .iter()
                .zip(reserved)
                .any(|(a, b)| a != b)
        {
            return Err(format!(
                "the vocabulary must start with the reserved tokens {reserved:?} for output \
                 mode {:?}, starts with {:?}",
                config.output_mode,
                &vocabulary[..vocabulary.len().min(reserved.len())]
            ));
        }
        if let Some(m) = config.max_tokens {
            if vocabulary.len() > m {
                return Err(format!(
                    "{} vocabulary entries, more than max_tokens = {m}",
                    vocabulary.len()
                ));
            }
        }
        if vocabulary.len() > MAX_VOCABULARY {
            return Err(format!("more than {MAX_VOCABULARY} vocabulary entries"));
        }
        let mut seen = HashSet::new();
        for (i, t) in vocabulary.iter().enumerate() {
            if i >= reserved.len() && (t == PAD_TOKEN || t == OOV_TOKEN) {
                return Err(format!("reserved token {t:?} again at index {i}"));
            }
            if !seen.insert(t.as_str()) {
                return Err(format!("token {t:?} appears twice (again at index {i})"));
            }
        }
        let idf_weights = match (config.output_mode, idf_weights) {
            (OutputMode::TfIdf, Some(w)) => {
                if w.len() != vocabulary.len() {
                    return Err(format!(
                        "{} idf weights for {} vocabulary entries",
                        w.len(),
                        vocabulary.len()
                    ));
                }
                if let Some(i) = w.iter().position(|v| !v.is_finite() || *v < 0.0) {
                    return Err(format!(
                        "idf weight {} at index {i} is not finite and >= 0",
                        w[i]
                    ));
                }
                w
            }
            (OutputMode::TfIdf, None) => return Err("tf_idf mode needs idf_weights".into()),
            (mode, Some(_)) => return Err(format!("idf_weights given for output mode {mode:?}")),
            (_, None) => Vec::new(),
        };
        let mut tv = TextVectorization {
            config,
            vocabulary: Vec::new(),
            index: HashMap::new(),
            idf_weights,
        };
        tv.set_vocabulary(vocabulary);
        Ok(tv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(mode: OutputMode, max_tokens: Option<usize>) -> TextVectorization {
        TextVectorization::new(TextVectorizationConfig {
            max_tokens,
            output_mode: mode,
            ..Default::default()
        })
        .unwrap()
    }

    // The corpus of scripts/golden/text_vectorization.py's probe; vocabularies and
    // outputs as keras 3.15 printed them.
    const CORPUS: [&str; 5] = ["b a", "a b c", "the cat. The DOG!", "x-ray don't", ""];

    #[test]
    fn vocabulary_order_and_reserved_tokens_as_keras() {
        let mut tv = layer(OutputMode::Int, Some(6));
        tv.adapt(&CORPUS);
        // a, b, the twice (ties: bytes descending), the others once.
        assert_eq!(tv.vocabulary(), ["", "[UNK]", "the", "b", "a", "xray"]);
        let ids = tv.transform(&["a zzz zzz the", ""]).unwrap();
        assert_eq!(ids.shape(), &[2, 4]);
        assert_eq!(ids.to_f32_vec(), [4., 1., 1., 2., 0., 0., 0., 0.]);

        let mut bag = layer(OutputMode::MultiHot, Some(6));
        bag.adapt(&CORPUS);
        assert_eq!(bag.vocabulary(), ["[UNK]", "the", "b", "a", "xray", "dont"]);
        assert_eq!(
            bag.transform(&["a zzz zzz the", ""]).unwrap().to_f32_vec(),
            [1., 1., 0., 1., 0., 0., 0., 0., 0., 0., 0., 0.]
        );
        let mut count = layer(OutputMode::Count, Some(6));
        count.adapt(&CORPUS);
        assert_eq!(
            count.transform(&["a zzz zzz the"]).unwrap().to_f32_vec(),
            [2., 1., 0., 1., 0., 0.]
        );
    }

    #[test]
    fn tf_idf_as_keras() {
        let mut tv = layer(OutputMode::TfIdf, Some(6));
        tv.adapt(&CORPUS);
        // keras: [1.1439893, 1.2527629, 0.98082924, 0.98082924, 1.2527629, 1.2527629]
        let idf = |df: f64| (1.0 + 5.0 / (1.0 + df)).ln() as f32;
        let learned = [idf(1.0), idf(2.0), idf(2.0), idf(1.0), idf(1.0)];
        let mean = learned.iter().sum::<f32>() / 5.0;
        let w = tv.idf_weights();
        assert!((w[0] - mean).abs() < 1e-6 && (w[0] - 1.1439893).abs() < 1e-6);
        for (a, b) in w[1..].iter().zip(learned) {
            assert!((a - b).abs() < 1e-6);
        }
        let out = tv.transform(&["a zzz zzz the"]).unwrap().to_f32_vec();
        let keras = [2.2879786, 1.2527629, 0.0, 0.9808292, 0.0, 0.0];
        for (a, b) in out.iter().zip(keras) {
            assert!((a - b).abs() < 1e-5, "{out:?}");
        }
    }

    #[test]
    fn sequence_length_and_padding_to_max_tokens() {
        let mut tv = TextVectorization::new(TextVectorizationConfig {
            output_sequence_length: Some(3),
            ..Default::default()
        })
        .unwrap();
        tv.adapt(&CORPUS);
        // keras: [[4, 3, 9], [4, 0, 0]] (no max_tokens: every token learned)
        assert_eq!(
            tv.transform(&["a b c the cat", "a"]).unwrap().to_f32_vec(),
            [4., 3., 9., 4., 0., 0.]
        );
        let mut bag = TextVectorization::new(TextVectorizationConfig {
            max_tokens: Some(50),
            output_mode: OutputMode::MultiHot,
            pad_to_max_tokens: true,
            ..Default::default()
        })
        .unwrap();
        bag.adapt(&CORPUS);
        assert_eq!(bag.vocabulary_size(), 9);
        assert_eq!(bag.transform(&["a"]).unwrap().shape(), &[1, 50]);
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = [
            TextVectorizationConfig {
                max_tokens: Some(1),
                ..Default::default()
            },
            TextVectorizationConfig {
                output_mode: OutputMode::Count,
                output_sequence_length: Some(3),
                ..Default::default()
            },
            TextVectorizationConfig {
                pad_to_max_tokens: true,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(TextVectorization::new(c).is_err());
        }
        let e = layer(OutputMode::Int, None).transform(&["x"]).unwrap_err();
        assert!(e.to_string().contains("adapt"), "{e}");
    }

    #[test]
    fn json_round_trip_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vocabulary.json");
        let mut tv = layer(OutputMode::TfIdf, Some(6));
        tv.adapt(&CORPUS);
        tv.save(&path).unwrap();
        assert_eq!(TextVectorization::load(&path).unwrap(), tv);

        let mut int = layer(OutputMode::Int, Some(6));
        int.adapt(&CORPUS);
        let good = int.to_json();
        let mut multi_hot = layer(OutputMode::MultiHot, Some(6));
        multi_hot.adapt(&CORPUS);
        let bag = multi_hot.to_json();
        let cases = [
            ("{not json", "not a saved TextVectorization"),
            (&good.replace("\"xray\"", "\"a\"")[..], "appears twice"),
            (&good.replace("\"[UNK]\"", "\"unk\"")[..], "reserved tokens"),
            (
                &good.replace("\"max_tokens\": 6", "\"max_tokens\": 4")[..],
                "more than max_tokens",
            ),
            (
                &good.replace("\"xray\"", "\"\"")[..],
                "reserved token \"\" again",
            ),
            (
                &bag.replace("\"multi_hot\"", "\"tf_idf\"")[..],
                "needs idf_weights",
            ),
        ];
        for (text, needle) in cases {
            std::fs::write(&path, text).unwrap();
            let e = TextVectorization::load(&path).unwrap_err().to_string();
            assert!(
                e.contains("vocabulary.json") && e.contains(needle),
                "{needle}: {e}"
            );
        }
        let saved = tv.to_json();
        let mut v: serde_json::Value = serde_json::from_str(&saved).unwrap();
        v["idf_weights"].as_array_mut().unwrap().pop();
        let e = TextVectorization::from_json(&v.to_string()).unwrap_err();
        assert!(e.contains("5 idf weights for 6"), "{e}");
    }

    #[test]
    fn reserved_literals_are_never_learned_or_matched() {
        let mut tv = TextVectorization::new(TextVectorizationConfig {
            standardize: Standardize::None,
            ..Default::default()
        })
        .unwrap();
        tv.adapt(&["[UNK] [UNK] x"]);
        assert_eq!(tv.vocabulary(), ["", "[UNK]", "x"]);
        assert_eq!(tv.encode("[UNK] x y"), [1, 2, 1]);
    }
}
