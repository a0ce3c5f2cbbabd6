//! Text classification on the command line: `nabla train --model
//! text-bow|text-cnn|text-lstm|text-bilstm|text-gru --dataset
//! debian-sections|reuters|imdb|FILE.tsv`, and `evaluate`/`predict` of such a run.
//!
//! - The data: `debian-sections` by name (its own `test.tsv`), or one `label<TAB>text`
//!   file split by `--test-split` (seeded by `--seed`, stratified by class), or Keras'
//!   `reuters`/`imdb` ids with their word index as the vocabulary ([`load_run`]).
//! - The vocabulary (`TextVectorization`) is adapted on the training texts only (after
//!   `--limit`), and saved as `vocabulary.json` in the same all-or-nothing save as the
//!   weights; `run.json` records under `"text"` how to find the test texts again.
//! - `text-bow` reads bags of words (`multi_hot` by default, `--bag tf_idf`), the
//!   others token ids cut at the end to `--sequence-length`; `text-cnn` pads them at
//!   the end, `text-lstm`, `text-bilstm` and `text-gru` at the start (`pad_at_start`).
//!   The recurrent recipes mask the padding (Embedding `mask_zero`), so the side makes
//!   no difference to them; runs saved before masking were trained on ids padded at the
//!   start and still get them.

use clap::{Args, ValueEnum};
use nabla::data::datasets::Dataset;
use nabla::data::split::train_test_split;
use nabla::data::text::keras_datasets::{self as keras_text, KERAS_TEXT_DATASETS};
use nabla::data::text::tsv::TEXT_DATASETS;
use nabla::data::text::{
    load_text_data, read_labelled_tsv, tokenize, OutputMode, TextDataset, TextVectorization,
    TextVectorizationConfig,
};
use nabla::error::{Error, Result};
use nabla::models::text::{self as text_models, TEXT_MODELS};
use nabla::{Sequential, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The vocabulary of a text run, saved beside its weights.
pub const VOCABULARY_FILE: &str = "vocabulary.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Bag {
    /// 1 for each vocabulary word present.
    MultiHot,
    /// Word counts times inverse document frequency.
    TfIdf,
}

#[derive(Args, Debug, Clone)]
pub struct TextArgs {
    /// Text models: the vocabulary size, the reserved tokens ("" and "[UNK]") included.
    /// Default: 10000.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<usize>,
    /// text-cnn, text-lstm, text-bilstm, text-gru: tokens per text (cut at the end). Default: 16.
    #[arg(long, value_name = "L")]
    pub sequence_length: Option<usize>,
    /// text-bow: the bag of words, multi_hot or tf_idf. Default: multi_hot.
    #[arg(long, value_enum)]
    pub bag: Option<Bag>,
}

/// How `evaluate` finds a text run's test texts again (run.json's `"text"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextRun {
    /// `debian-sections` or the `.tsv` file trained on.
    pub dataset: String,
    /// The fraction held out of a `.tsv` file (`None`: the data set's own test file).
    pub test_split: Option<f64>,
    /// The seed of that split.
    pub seed: u64,
}

/// Whether `--dataset NAME` is text: a known text data set or a `.tsv` file.
pub fn is_text_dataset(name: &str) -> bool {
    let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
    TEXT_DATASETS.contains(&wanted.as_str()) || is_keras(name) || is_tsv(name)
}

/// Whether `--dataset NAME` is one of Keras' id-sequence data sets (`reuters`, `imdb`).
fn is_keras(name: &str) -> bool {
    KERAS_TEXT_DATASETS.contains(&name.trim().to_ascii_lowercase().as_str())
}

/// Loads the data of a text run and its vectorizer: strings adapted as usual, or Keras'
/// `reuters`/`imdb` ids with the word index as the vocabulary
/// (`--max-tokens` = `num_words`, `--sequence-length` = the padded length, cut and
/// padded at the end as the other text data; Keras' shuffle seed 113; Reuters' test
/// fraction `--test-split`).
pub fn load_run(
    model: &str,
    dataset: &str,
    a: &TextArgs,
    test_split: f64,
    seed: u64,
    limit: Option<usize>,
) -> Result<(Dataset, TextVectorization, TextRun, Vec<String>)> {
    if !is_keras(dataset) {
        let (texts, run) = load_texts(dataset, test_split, seed)?;
        let test_texts = texts.test_texts.clone();
        let mut tv = vectorizer(model, a)?;
        let ds = vectorize(model, texts, &mut tv, limit)?;
        return Ok((ds, tv, run, test_texts));
    }
    let name = dataset.trim().to_ascii_lowercase();
    if a.bag == Some(Bag::TfIdf) {
        return Err(Error::invalid(format!(
            "--bag tf_idf needs texts to count; {name} comes as word ids: use multi_hot"
        )));
    }
    let num_words = a.max_tokens.unwrap_or(text_models::DEFAULT_MAX_TOKENS);
    let (mut data, words) = keras_text::load_keras_text(
        &name,
        &keras_text::KerasTextOptions {
            num_words: Some(num_words),
            test_split,
            ..Default::default()
        },
    )?;
    if let Some(n) = limit {
        data.x_train.truncate(n);
        data.y_train.truncate(n);
    }
    let mut config = vectorizer(model, a)?.config().clone();
    config.max_tokens = None;
    let tv = keras_text::vocabulary(&words, num_words, config)?;
    let run = TextRun {
        dataset: name.clone(),
        test_split: (name == "reuters").then_some(test_split),
        seed,
    };
    let ds = Dataset {
        x_train: model_input(model, ids_tensor(&tv, &data.x_train)),
        y_train: labels_tensor(&data.y_train),
        x_test: model_input(model, ids_tensor(&tv, &data.x_test)),
        y_test: labels_tensor(&data.y_test),
        class_names: keras_text::class_names(&name),
        name,
    };
    let test_texts = decode_ids(&tv, &data.x_test);
    Ok((ds, tv, run, test_texts))
}

/// Id sequences back to words (Keras' `reverse_word_index` recipe), for the report's
/// misclassified texts: the vocabulary's word for each id, padding left out.
fn decode_ids(tv: &TextVectorization, seqs: &[Vec<i64>]) -> Vec<String> {
    let vocab = tv.vocabulary();
    let word = |w: i64| {
        usize::try_from(w)
            .ok()
            .and_then(|i| vocab.get(i))
            .map_or_else(|| vocab[tv.oov_index()].as_str(), String::as_str)
    };
    seqs.iter()
        .map(|s| {
            s.iter()
                .filter(|&&w| w != 0)
                .map(|&w| word(w))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Id sequences as `tv` would give them for texts: `[N, L]` ids cut and padded at the
/// end, or `[N, V]` bags of the ids.
fn ids_tensor(tv: &TextVectorization, seqs: &[Vec<i64>]) -> Tensor {
    let v = tv.vocabulary_size();
    let id = |w: i64| {
        if (0..v as i64).contains(&w) {
            w as usize
        } else {
            tv.oov_index()
        }
    };
    let n = seqs.len();
    match (tv.config().output_mode, tv.config().output_sequence_length) {
        (OutputMode::Int, len) => {
            let l = len.unwrap_or_else(|| seqs.iter().map(Vec::len).max().unwrap_or(0));
            let mut out = vec![0.0f32; n * l];
            for (row, s) in out.chunks_mut(l.max(1)).zip(seqs) {
                for (o, &w) in row.iter_mut().zip(s) {
                    *o = id(w) as f32;
                }
            }
            Tensor::from_vec(out, &[n, l])
        }
        (mode, _) => {
            let mut out = vec![0.0f32; n * v];
            for (row, s) in out.chunks_mut(v.max(1)).zip(seqs) {
                for &w in s {
                    match mode {
                        OutputMode::MultiHot => row[id(w)] = 1.0,
                        _ => row[id(w)] += 1.0,
                    }
                }
            }
            Tensor::from_vec(out, &[n, v])
        }
    }
}

fn labels_tensor(y: &[i64]) -> Tensor {
    Tensor::from_vec(y.iter().map(|&v| v as f32).collect(), &[y.len()])
}

fn is_tsv(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"))
}

/// Fails on a text model with a non-text data set, a text data set with any other
/// model, and text options without a text model; before any data is loaded.
pub fn check_pairing(model: Option<&str>, dataset: Option<&str>, a: &TextArgs) -> Result<()> {
    let text_model = model.filter(|m| text_models::is_text_model(m));
    let text_data = dataset.filter(|d| is_text_dataset(d));
    match (model, text_model, dataset, text_data) {
        (Some(m), Some(_), Some(d), None) => {
            return Err(Error::invalid(format!(
                "model '{m}' is a text model, but data set '{d}' is not text; text data \
                 sets: {}, {} or a label<TAB>text .tsv file",
                TEXT_DATASETS.join(", "),
                KERAS_TEXT_DATASETS.join(", ")
            )))
        }
        (Some(m), None, _, Some(d)) => {
            return Err(Error::invalid(format!(
                "data set '{d}' is text, and model '{m}' is not a text model; text models: {}",
                TEXT_MODELS.join(", ")
            )))
        }
        _ => {}
    }
    let is_text = text_model.is_some() || text_data.is_some();
    let given: Vec<&str> = [
        ("--max-tokens", a.max_tokens.is_some()),
        ("--sequence-length", a.sequence_length.is_some()),
        ("--bag", a.bag.is_some()),
    ]
    .iter()
    .filter(|(_, g)| *g)
    .map(|(f, _)| *f)
    .collect();
    if !is_text && !given.is_empty() {
        return Err(Error::invalid(format!(
            "{} {} to the text models ({}), not to this run",
            given.join(", "),
            if given.len() == 1 { "applies" } else { "apply" },
            TEXT_MODELS.join(", ")
        )));
    }
    // The text model itself may still be defaulted (text-bow).
    let m = text_model.unwrap_or("text-bow");
    if m == "text-bow" && a.sequence_length.is_some() {
        return Err(Error::invalid(
            "--sequence-length is for text-cnn; text-bow reads bags of words (--bag)",
        ));
    }
    if m != "text-bow" && a.bag.is_some() {
        return Err(Error::invalid(format!(
            "--bag is for text-bow; {m} reads token ids (--sequence-length)"
        )));
    }
    if a.sequence_length == Some(0) {
        return Err(Error::invalid("--sequence-length must be at least 1"));
    }
    Ok(())
}

/// The texts of a run: a known data set with its own test file, or a `.tsv` file split
/// by `test_split` and `seed` (stratified). Also what run.json records.
pub fn load_texts(dataset: &str, test_split: f64, seed: u64) -> Result<(TextDataset, TextRun)> {
    if !is_tsv(dataset) {
        let ds = load_text_data(dataset)?;
        let run = TextRun {
            dataset: ds.name.clone(),
            test_split: None,
            seed,
        };
        return Ok((ds, run));
    }
    let path = Path::new(dataset);
    if !path.is_file() {
        return Err(Error::invalid(format!(
            "--dataset {dataset}: no such file (a label<TAB>text file with a header)"
        )));
    }
    let rows = read_labelled_tsv(path)?;
    let mut class_names = rows.labels.clone();
    class_names.sort_unstable();
    class_names.dedup();
    let labels: Vec<usize> = rows
        .labels
        .iter()
        .map(|l| {
            class_names
                .binary_search(l)
                .expect("every label is a class")
        })
        .collect();
    let split = train_test_split(labels.len(), Some(&labels), test_split, seed)?;
    let pick = |idx: &[usize]| -> (Vec<String>, Vec<usize>) {
        idx.iter()
            .map(|&i| (rows.texts[i].clone(), labels[i]))
            .unzip()
    };
    let (train_texts, train_labels) = pick(&split.train);
    let (test_texts, test_labels) = pick(&split.test);
    let ds = TextDataset {
        train_texts,
        train_labels,
        test_texts,
        test_labels,
        class_names,
        name: dataset.to_string(),
    };
    let run = TextRun {
        dataset: dataset.to_string(),
        test_split: Some(test_split),
        seed,
    };
    Ok((ds, run))
}

/// The vectorizer `model` reads, before `adapt`.
pub fn vectorizer(model: &str, a: &TextArgs) -> Result<TextVectorization> {
    let max_tokens = a.max_tokens.unwrap_or(text_models::DEFAULT_MAX_TOKENS);
    let config = match model {
        "text-cnn" | "text-lstm" | "text-bilstm" | "text-gru" => TextVectorizationConfig {
            max_tokens: Some(max_tokens),
            output_mode: OutputMode::Int,
            output_sequence_length: Some(
                a.sequence_length
                    .unwrap_or(text_models::DEFAULT_SEQUENCE_LENGTH),
            ),
            ..Default::default()
        },
        _ => TextVectorizationConfig {
            max_tokens: Some(max_tokens),
            output_mode: match a.bag.unwrap_or(Bag::MultiHot) {
                Bag::MultiHot => OutputMode::MultiHot,
                Bag::TfIdf => OutputMode::TfIdf,
            },
            ..Default::default()
        },
    };
    TextVectorization::new(config).map_err(|e| Error::invalid(format!("--max-tokens: {e}")))
}

/// Token ids `[N, L]` padded at the end (id 0) moved to the start, for the recurrent
/// models: `[5, 7, 0, 0]` -> `[0, 0, 5, 7]` (Keras' `pad_sequences` default, "pre").
/// Id 0 is only ever padding (the vectorizer reserves it), so this is exact.
pub fn pad_at_start(x: &Tensor) -> Tensor {
    let shape = x.shape().to_vec();
    let l = shape.last().copied().unwrap_or(0).max(1);
    let mut v = x.to_f32_vec();
    for row in v.chunks_mut(l) {
        let words = row.iter().take_while(|&&id| id != 0.0).count();
        row.rotate_right(l - words);
    }
    Tensor::from_vec(v, &shape)
}

/// What `model` reads of the vectorizer's output `x` (the recurrent models: padded at
/// the start).
pub fn model_input(model: &str, x: Tensor) -> Tensor {
    if text_models::is_recurrent(model) {
        pad_at_start(&x)
    } else {
        x
    }
}

/// Adapts `tv` on the training texts (the first `limit` of them) and turns both splits
/// into a `Dataset` of `model`'s inputs.
pub fn vectorize(
    model: &str,
    mut ds: TextDataset,
    tv: &mut TextVectorization,
    limit: Option<usize>,
) -> Result<Dataset> {
    if let Some(n) = limit {
        ds.train_texts.truncate(n);
        ds.train_labels.truncate(n);
    }
    tv.adapt(&ds.train_texts);
    Ok(Dataset {
        x_train: model_input(model, tv.transform(&ds.train_texts)?),
        y_train: ds.y_train(),
        x_test: model_input(model, tv.transform(&ds.test_texts)?),
        y_test: ds.y_test(),
        class_names: ds.class_names,
        name: ds.name,
    })
}

/// The text model `name` for an adapted vectorizer and `classes` classes.
pub fn build_model(
    name: &str,
    tv: &TextVectorization,
    classes: usize,
    seed: u64,
) -> Result<Sequential> {
    let width = match tv.config().output_mode {
        OutputMode::Int => tv.vocabulary_size(),
        _ => tv.output_width(),
    };
    let length = tv.config().output_sequence_length.unwrap_or(0);
    text_models::build(name, width, length, classes, seed)
}

/// A text run's vectorizer, if `dir` holds one.
pub fn load_vectorizer(dir: &Path) -> Result<Option<TextVectorization>> {
    let path = dir.join(VOCABULARY_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    TextVectorization::load(&path).map(Some)
}

/// The test split of the text run in `dir` as the inputs of `model` (its name), or
/// `None` when `dir` is not a text run.
pub fn reload_test(dir: &Path, model: &str) -> Result<Option<Dataset>> {
    Ok(reload_test_texts(dir, model)?.map(|(ds, _)| ds))
}

/// `reload_test`, with the test texts themselves (in the same order), for the report.
pub fn reload_test_texts(dir: &Path, model: &str) -> Result<Option<(Dataset, Vec<String>)>> {
    let Some(tv) = load_vectorizer(dir)? else {
        return Ok(None);
    };
    let run_path = dir.join("run.json");
    let text = std::fs::read_to_string(&run_path).map_err(|e| Error::io(&run_path, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::format(&run_path, e.to_string()))?;
    let run: TextRun = serde_json::from_value(v["text"].clone()).map_err(|e| {
        Error::format(
            &run_path,
            format!("no readable \"text\" record of the data set ({e})"),
        )
    })?;
    if is_keras(&run.dataset) {
        // The ids again, with the saved vocabulary's size as num_words.
        let (data, _) = keras_text::load_keras_text(
            &run.dataset,
            &keras_text::KerasTextOptions {
                num_words: Some(tv.vocabulary_size()),
                test_split: run.test_split.unwrap_or(0.2),
                ..Default::default()
            },
        )?;
        let x_test = model_input(model, ids_tensor(&tv, &data.x_test));
        let texts = decode_ids(&tv, &data.x_test);
        let ds = Dataset {
            x_train: x_test.clone(),
            y_train: labels_tensor(&data.y_test),
            x_test,
            y_test: labels_tensor(&data.y_test),
            class_names: keras_text::class_names(&run.dataset),
            name: run.dataset,
        };
        return Ok(Some((ds, texts)));
    }
    let (ds, _) = load_texts(&run.dataset, run.test_split.unwrap_or(0.2), run.seed)?;
    let x_test = model_input(model, tv.transform(&ds.test_texts)?);
    let vectorized = Dataset {
        // Only the sample shape of x_train is read (check_fits).
        x_train: x_test.clone(),
        y_train: ds.y_test(),
        x_test,
        y_test: ds.y_test(),
        class_names: ds.class_names,
        name: ds.name,
    };
    Ok(Some((vectorized, ds.test_texts)))
}

/// `nabla predict DIR "some text"`: the `top` classes with their probabilities, as lines
/// or one JSON object. A text with no words (empty, or only punctuation) is an error:
/// the model would answer the same for every such text.
pub fn predict(
    model: &mut Sequential,
    tv: &TextVectorization,
    text: &str,
    top: usize,
    json: bool,
) -> Result<i32> {
    let tokens = tokenize(text, tv.config().standardize);
    if tokens.is_empty() {
        return Err(Error::invalid(format!(
            "the text {text:?} has no words after standardization (lower-casing, \
             punctuation stripped); give some words to classify"
        )));
    }
    let known = tokens
        .iter()
        .filter(|t| tv.token_index(t) != tv.oov_index())
        .count();
    let x: Tensor = model_input(&model.name, tv.transform(&[text])?);
    let p = model.predict(&x, 1)?.to_f32_vec();
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
    let name = |i: usize| {
        model
            .class_names
            .get(i)
            .cloned()
            .unwrap_or_else(|| i.to_string())
    };
    let top: Vec<(String, f32)> = order.iter().take(top).map(|&i| (name(i), p[i])).collect();
    if json {
        let v = serde_json::json!({
            "text": text,
            "predicted": name(order[0]),
            "words": tokens.len(),
            "known_words": known,
            "top": top
                .iter()
                .map(|(c, p)| serde_json::json!({"class": c, "probability": p}))
                .collect::<Vec<_>>(),
        });
        println!("{v}");
        return Ok(0);
    }
    if known == 0 {
        eprintln!(
            "note: none of the {} words is in the vocabulary; the prediction is the \
             model's answer for an unknown text",
            tokens.len()
        );
    }
    println!("{text:?}: {}", name(order[0]));
    for (c, p) in &top {
        println!("  {c:>16}  {p:.4}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_at_start_moves_the_end_padding_to_the_front() {
        let x = Tensor::from_vec(
            vec![5., 7., 0., 0., 1., 2., 3., 4., 0., 0., 0., 0.],
            &[3, 4],
        );
        assert_eq!(
            pad_at_start(&x).to_f32_vec(),
            [0., 0., 5., 7., 1., 2., 3., 4., 0., 0., 0., 0.]
        );
        assert_eq!(pad_at_start(&x).shape(), [3, 4]);
    }
}
