//! Keras' text data sets as id sequences: Reuters newswires (46 topics) and IMDB reviews
//! (2 classes), the files and the ids of `keras.datasets.reuters/imdb.load_data`.
//!
//! # The files
//! From `https://storage.googleapis.com/tensorflow/tf-keras-datasets/` (or
//! `<base>/<name>/<file>` for each base in `NABLA_MIRROR`): `reuters.npz` (`x`, `y`) or
//! `imdb.npz` (`x_train`, `y_train`, `x_test`, `y_test`), and the word index
//! `reuters_word_index.json` / `imdb_word_index.json` (word -> frequency rank from 1).
//! The checksums are Keras' own `file_hash`es (keras/src/datasets/reuters.py and
//! imdb.py, Keras 3): SHA-256 for the `.npz`, MD5 for the word indexes. Files are looked
//! for in `$NABLA_DATA/<name>/`, then the cache `<cache>/<name>/`, and what is missing is
//! downloaded into the cache through [`crate::data::download::fetch_verified`]: only
//! bytes that match are written. `NABLA_<NAME>_CHECKSUMS` (`file=hex,file=hex`, 32 hex
//! digits an MD5, 64 a SHA-256) replaces the sums for a mirror that serves other files
//! (tests); it is honoured only together with `NABLA_MIRROR`.
//!
//! The sequences are numpy object arrays, which `np.save` stores as a pickle: they are
//! read by [`crate::data::pickle`], which never executes anything.
//!
//! # The ids
//! [`load_ids`] applies Keras' `load_data` steps in Keras' order: shuffle (numpy's
//! `RandomState(seed)`, [`crate::data::numpy_random`]; IMDB shuffles train, then test,
//! with one generator), `start_char` + rank + `index_from`, drop sequences of `maxlen`
//! ids or more (Keras keeps `len < maxlen`), then ids outside `skip_top..num_words`
//! become `oov_char` (or are dropped without one); without `num_words` Keras uses the
//! largest id, so that id itself becomes OOV, as in Keras. Reuters is split after
//! that at `int(n * (1 - test_split))`. Checked against Keras' code on small files
//! (`scripts/golden/keras_text_datasets.py`).

use super::vocabulary::{TextVectorization, TextVectorizationConfig, KERAS_RESERVED};
use crate::data::datasets::cache_dir;
use crate::data::download;
use crate::data::npy::parse_npy;
use crate::data::numpy_random::Mt19937;
use crate::data::pickle::object_array_of_int_lists;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// The names `--dataset` and `load_keras_text` take.
pub const KERAS_TEXT_DATASETS: &[&str] = &["reuters", "imdb"];
/// Where Keras downloads them from.
pub const MIRRORS: &[&str] = &["https://storage.googleapis.com/tensorflow/tf-keras-datasets/"];
/// Largest `.npz` member read, against zip bombs (IMDB's largest is about 30 MB).
const MAX_MEMBER_BYTES: u64 = 1 << 30;
/// Largest word index read (IMDB's is 1.6 MB).
const MAX_WORD_INDEX_BYTES: u64 = 256 << 20;

/// One file of a data set and Keras' `file_hash` for it.
pub struct KerasFile {
    pub name: &'static str,
    /// Hex: 64 digits a SHA-256, 32 an MD5 (as Keras' `get_file` decides).
    pub hash: &'static str,
}

/// The two files of `name` (`reuters` or `imdb`): the `.npz` and the word index.
pub fn files(name: &str) -> Option<[KerasFile; 2]> {
    // Keras' file_hash values, keras/src/datasets/reuters.py and imdb.py.
    match name {
        "reuters" => Some([
            KerasFile {
                name: "reuters.npz",
                hash: "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
            },
            KerasFile {
                name: "reuters_word_index.json",
                hash: "4d44cc38712099c9e383dc6e5f11a921",
            },
        ]),
        "imdb" => Some([
            KerasFile {
                name: "imdb.npz",
                hash: "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
            },
            KerasFile {
                name: "imdb_word_index.json",
                hash: "bfafd718b763782e994055a2d397834f",
            },
        ]),
        _ => None,
    }
}

/// Keras' 46 Reuters topics, by label (`keras.datasets.reuters.get_label_names`).
pub const REUTERS_LABELS: [&str; 46] = [
    "cocoa",
    "grain",
    "veg-oil",
    "earn",
    "acq",
    "wheat",
    "copper",
    "housing",
    "money-supply",
    "coffee",
    "sugar",
    "trade",
    "reserves",
    "ship",
    "cotton",
    "carcass",
    "crude",
    "nat-gas",
    "cpi",
    "money-fx",
    "interest",
    "gnp",
    "meal-feed",
    "alum",
    "oilseed",
    "gold",
    "tin",
    "strategic-metal",
    "livestock",
    "retail",
    "ipi",
    "iron-steel",
    "rubber",
    "heat",
    "jobs",
    "lei",
    "bop",
    "zinc",
    "orange",
    "pet-chem",
    "dlr",
    "gas",
    "silver",
    "wpi",
    "hog",
    "lead",
];
/// IMDB's two classes, by label.
pub const IMDB_LABELS: [&str; 2] = ["negative", "positive"];

/// Keras' `load_data` options, with Keras' defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasTextOptions {
    pub num_words: Option<usize>,
    pub skip_top: usize,
    pub maxlen: Option<usize>,
    /// Reuters only: the fraction at the end kept for testing.
    pub test_split: f64,
    pub seed: u32,
    pub start_char: Option<i64>,
    pub oov_char: Option<i64>,
    pub index_from: i64,
}

impl Default for KerasTextOptions {
    fn default() -> Self {
        KerasTextOptions {
            num_words: None,
            skip_top: 0,
            maxlen: None,
            test_split: 0.2,
            seed: 113,
            start_char: Some(1),
            oov_char: Some(2),
            index_from: 3,
        }
    }
}

/// A loaded data set: id sequences and labels, as `load_data` returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasText {
    pub x_train: Vec<Vec<i64>>,
    pub y_train: Vec<i64>,
    pub x_test: Vec<Vec<i64>>,
    pub y_test: Vec<i64>,
}

/// An `.npz` member: a pickled object array of int lists, or a numeric array.
#[derive(Debug, Clone, PartialEq)]
pub enum Member {
    Sequences(Vec<Vec<i64>>),
    Numbers(Vec<i64>),
}

/// Every member of an `.npz` of Keras' kind, by name (without `.npy`). Errors are
/// plain; [`load_ids_file`] adds the file.
pub fn read_members(bytes: &[u8]) -> Result<HashMap<String, Member>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::invalid(format!("not a readable .npz (zip) archive: {e}")))?;
    let mut out = HashMap::new();
    for i in 0..zip.len() {
        let mut m = zip
            .by_index(i)
            .map_err(|e| Error::invalid(format!("npz member {i}: {e}")))?;
        if m.is_dir() {
            continue;
        }
        let name = m.name().to_string();
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        // A deflated member expands at most 1032 times; stop one byte past the limit.
        let limit = m
            .compressed_size()
            .saturating_mul(crate::data::npz::DEFLATE_MAX_RATIO)
            .saturating_add(1024)
            .min(MAX_MEMBER_BYTES);
        let mut data = Vec::new();
        (&mut m)
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::invalid(format!("npz member '{name}': {e} (truncated?)")))?;
        if data.len() as u64 > limit {
            return Err(Error::invalid(format!(
                "npz member '{name}' expands past {limit} bytes"
            )));
        }
        out.insert(
            key,
            parse_member(&data).map_err(|e| Error::invalid(format!("npz member '{name}': {e}")))?,
        );
    }
    Ok(out)
}

fn parse_member(data: &[u8]) -> std::result::Result<Member, String> {
    let start = match data.get(6) {
        Some(1) if data.len() >= 10 => 10 + u16::from_le_bytes([data[8], data[9]]) as usize,
        Some(2 | 3) if data.len() >= 12 => {
            12 + u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize
        }
        _ => return Err("not a .npy file".into()),
    };
    let header = data
        .get(..start)
        .ok_or("the .npy header runs past the end (truncated)")?;
    let text = String::from_utf8_lossy(header);
    if text.contains("'|O'") {
        return object_array_of_int_lists(&data[start..]).map(Member::Sequences);
    }
    let a = parse_npy(data).map_err(|e| e.to_string())?;
    if a.shape.len() != 1 {
        return Err(format!("labels of shape {:?}, expected 1-D", a.shape));
    }
    a.data
        .iter()
        .map(|&v| {
            if v.fract() == 0.0 && v.abs() < (1 << 24) as f32 {
                Ok(v as i64)
            } else {
                Err(format!("label {v} is not a whole number"))
            }
        })
        .collect::<std::result::Result<_, _>>()
        .map(Member::Numbers)
}

fn take_pair(
    m: &mut HashMap<String, Member>,
    x: &str,
    y: &str,
) -> std::result::Result<(Vec<Vec<i64>>, Vec<i64>), String> {
    let xs = match m.remove(x) {
        Some(Member::Sequences(s)) => s,
        Some(_) => return Err(format!("'{x}' is not an object array of sequences")),
        None => return Err(format!("no array '{x}'")),
    };
    let ys = match m.remove(y) {
        Some(Member::Numbers(v)) => v,
        Some(_) => return Err(format!("'{y}' is not an array of labels")),
        None => return Err(format!("no array '{y}'")),
    };
    if xs.len() != ys.len() {
        return Err(format!(
            "{} sequences in '{x}' but {} labels in '{y}'",
            xs.len(),
            ys.len()
        ));
    }
    Ok((xs, ys))
}

/// Keras' `load_data` of `name` on the `.npz` file at `path` (see the module docs);
/// errors name the file.
pub fn load_ids_file(name: &str, path: &Path, o: &KerasTextOptions) -> Result<KerasText> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > MAX_MEMBER_BYTES {
        return Err(Error::format(path, "larger than 1 GiB"));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_ids(name, &bytes, o).map_err(|e| Error::format(path, e.to_string()))
}

/// [`load_ids_file`] over the `.npz` bytes.
pub fn load_ids(name: &str, npz: &[u8], o: &KerasTextOptions) -> Result<KerasText> {
    let mut m = read_members(npz)?;
    let mut rng = Mt19937::new(o.seed);
    let shuffled = |rng: &mut Mt19937, (xs, ys): (Vec<Vec<i64>>, Vec<i64>)| {
        let mut idx: Vec<usize> = (0..xs.len()).collect();
        rng.shuffle(&mut idx);
        let xs: Vec<Vec<i64>> = idx.iter().map(|&i| xs[i].clone()).collect();
        let ys: Vec<i64> = idx.iter().map(|&i| ys[i]).collect();
        (xs, ys)
    };
    let (train, test) = match name {
        "imdb" => {
            let train = take_pair(&mut m, "x_train", "y_train").map_err(Error::invalid)?;
            let test = take_pair(&mut m, "x_test", "y_test").map_err(Error::invalid)?;
            (shuffled(&mut rng, train), Some(shuffled(&mut rng, test)))
        }
        "reuters" => {
            let all = take_pair(&mut m, "x", "y").map_err(Error::invalid)?;
            (shuffled(&mut rng, all), None)
        }
        _ => return Err(Error::invalid(format!("no Keras text data set \"{name}\""))),
    };
    let offset = |xs: Vec<Vec<i64>>| -> Vec<Vec<i64>> {
        xs.into_iter()
            .map(|x| {
                o.start_char
                    .into_iter()
                    .chain(x.into_iter().map(|w| w.saturating_add(o.index_from)))
                    .collect()
            })
            .collect()
    };
    let keep_short = |xs: Vec<Vec<i64>>, ys: Vec<i64>| match o.maxlen {
        Some(l) if l > 0 => xs.into_iter().zip(ys).filter(|(x, _)| x.len() < l).unzip(),
        _ => (xs, ys),
    };
    let (xa, ya) = keep_short(offset(train.0), train.1);
    let (xb, yb) = match test {
        Some((x, y)) => keep_short(offset(x), y),
        None => (Vec::new(), Vec::new()),
    };
    if o.maxlen.is_some_and(|l| l > 0) && (xa.is_empty() || (name == "imdb" && xb.is_empty())) {
        return Err(Error::invalid(format!(
            "after keeping sequences shorter than maxlen={}, none is left; increase it",
            o.maxlen.unwrap_or(0)
        )));
    }
    let n_train = xa.len();
    let mut xs: Vec<Vec<i64>> = xa.into_iter().chain(xb).collect();
    let labels: Vec<i64> = ya.into_iter().chain(yb).collect();
    let num_words = match o.num_words.filter(|&n| n > 0) {
        Some(n) => n as i64,
        None => xs.iter().flat_map(|x| x.iter().copied()).max().unwrap_or(0),
    };
    let skip = o.skip_top as i64;
    for x in &mut xs {
        match o.oov_char {
            Some(oov) => x.iter_mut().for_each(|w| {
                if !(skip <= *w && *w < num_words) {
                    *w = oov
                }
            }),
            None => x.retain(|w| skip <= *w && *w < num_words),
        }
    }
    let split = if name == "reuters" {
        if !(0.0..=1.0).contains(&o.test_split) {
            return Err(Error::invalid(format!(
                "test_split must be in [0, 1], got {}",
                o.test_split
            )));
        }
        (xs.len() as f64 * (1.0 - o.test_split)) as usize
    } else {
        n_train
    };
    let x_test = xs.split_off(split);
    Ok(KerasText {
        x_train: xs,
        y_train: labels[..split].to_vec(),
        x_test,
        y_test: labels[split..].to_vec(),
    })
}

/// A word index file (`word -> rank`, ranks from 1), as a map; errors name the file.
pub fn load_word_index(path: &Path) -> Result<HashMap<String, i64>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut text = String::new();
    f.take(MAX_WORD_INDEX_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| Error::format(path, format!("not UTF-8 text ({e})")))?;
    let map: HashMap<String, i64> = serde_json::from_str(&text).map_err(|e| {
        Error::format(
            path,
            format!("not a word index (a JSON object of word: rank): {e}"),
        )
    })?;
    if let Some((w, r)) = map.iter().find(|(_, &r)| r < 1) {
        return Err(Error::format(
            path,
            format!("word {w:?} has rank {r}, ranks start at 1"),
        ));
    }
    Ok(map)
}

/// The vocabulary of Keras' ids for `num_words` ids: the reserved entries (padding,
/// start, OOV, unused: `index_from` = 3), then the word of rank r at id r + 3; ids no
/// word has get a placeholder `[id N]`, so id and index agree. As a
/// [`TextVectorization`] with `keras_ids`, whose transform of a text gives the ids the
/// model was trained on.
pub fn vocabulary(
    word_index: &HashMap<String, i64>,
    num_words: usize,
    config: TextVectorizationConfig,
) -> Result<TextVectorization> {
    let r = KERAS_RESERVED.len();
    let mut vocab: Vec<Option<String>> = vec![None; num_words.max(r)];
    for (i, t) in KERAS_RESERVED.iter().enumerate() {
        vocab[i] = Some(t.to_string());
    }
    for (word, &rank) in word_index {
        let id = rank.saturating_add(3);
        if (id as usize) < vocab.len() && id >= r as i64 && !KERAS_RESERVED.contains(&word.as_str())
        {
            // Two words of one rank: keep the first in byte order, deterministically.
            let slot = &mut vocab[id as usize];
            if slot.as_ref().is_none_or(|s| word < s) {
                *slot = Some(word.clone());
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    let vocab: Vec<String> = vocab
        .into_iter()
        .enumerate()
        .map(|(i, w)| match w {
            Some(w) if seen.insert(w.clone()) => w,
            _ => format!("[id {i}]"),
        })
        .collect();
    let config = TextVectorizationConfig {
        max_tokens: Some(vocab.len()),
        keras_ids: true,
        ..config
    };
    TextVectorization::with_vocabulary(config, vocab, None)
        .map_err(|e| Error::invalid(format!("the word index as a vocabulary: {e}")))
}

/// The folder holding `name`'s files: `$NABLA_DATA/<name>/` if it has both, else the
/// cache folder, where missing files are downloaded (see the module docs).
pub fn ensure_files(name: &str) -> Result<PathBuf> {
    let files = files(name).ok_or_else(|| {
        Error::invalid(format!(
            "no Keras text data set \"{name}\"; known: {}",
            KERAS_TEXT_DATASETS.join(", ")
        ))
    })?;
    if let Some(root) = std::env::var_os(crate::data::datasets::DATA_ENV) {
        let dir = PathBuf::from(root).join(name);
        if files.iter().all(|f| dir.join(f.name).is_file()) {
            return Ok(dir);
        }
    }
    let dir = cache_dir(name)?;
    let overrides = checksum_overrides(name)?;
    for f in &files {
        let dest = dir.join(f.name);
        if dest.is_file() {
            continue;
        }
        let expected = overrides
            .get(f.name)
            .cloned()
            .unwrap_or_else(|| f.hash.to_string());
        let bytes = download::fetch_verified(
            &format!("{name}/{}", f.name),
            &download::mirror_urls(name, f.name, MIRRORS),
            &format!("or put {} in {} yourself", f.name, dir.display()),
            |b| verify(f.name, b, &expected),
        )?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        crate::formats::atomic::write_bytes_atomic(&dest, &bytes)?;
    }
    Ok(dir)
}

/// The variable that replaces the checksums of `name`'s files (with `NABLA_MIRROR`).
pub fn checksum_env(name: &str) -> String {
    format!("NABLA_{}_CHECKSUMS", name.to_ascii_uppercase())
}

fn checksum_overrides(name: &str) -> Result<HashMap<String, String>> {
    let var = checksum_env(name);
    let Ok(v) = std::env::var(&var) else {
        return Ok(HashMap::new());
    };
    if v.trim().is_empty() {
        return Ok(HashMap::new());
    }
    if !download::mirror_overridden() {
        return Err(Error::invalid(format!(
            "{var} is set but {} is not: Keras' own files are always checked against \
             Keras' checksums; unset {var}, or set {} to the mirror it describes",
            download::MIRROR_ENV,
            download::MIRROR_ENV
        )));
    }
    v.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (f, h) = p
                .split_once('=')
                .ok_or_else(|| Error::invalid(format!("{var}: {p:?} is not file=hex")))?;
            let h = h.trim().to_ascii_lowercase();
            if !(h.len() == 32 || h.len() == 64) || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::invalid(format!(
                    "{var}: {h:?} is neither an MD5 (32 hex digits) nor a SHA-256 (64)"
                )));
            }
            Ok((f.trim().to_string(), h))
        })
        .collect()
}

/// Checks `bytes` against `expected` (an MD5 or a SHA-256 by its length, as Keras'
/// `get_file`); a mismatch is a `Download` error naming the file, so the next mirror is
/// tried.
pub fn verify(file: &str, bytes: &[u8], expected: &str) -> Result<()> {
    use sha2::Digest;
    let (kind, got) = if expected.len() == 32 {
        ("MD5", download::md5_hex(bytes))
    } else {
        let d = sha2::Sha256::digest(bytes);
        ("SHA-256", d.iter().map(|b| format!("{b:02x}")).collect())
    };
    if got.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    Err(Error::Download(format!(
        "checksum mismatch for {file} ({} bytes): its {kind}, {got}, is not the expected {expected}",
        bytes.len()
    )))
}

/// Downloads (if needed) and loads `name` with options `o`, and its word index.
pub fn load_keras_text(
    name: &str,
    o: &KerasTextOptions,
) -> Result<(KerasText, HashMap<String, i64>)> {
    let dir = ensure_files(name)?;
    let [npz, index] = files(name).expect("ensure_files checked the name");
    let data = load_ids_file(name, &dir.join(npz.name), o)?;
    let words = load_word_index(&dir.join(index.name))?;
    Ok((data, words))
}

/// The class names of `name`, by label.
pub fn class_names(name: &str) -> Vec<String> {
    let names: &[&str] = if name == "reuters" {
        &REUTERS_LABELS
    } else {
        &IMDB_LABELS
    };
    names.iter().map(|s| s.to_string()).collect()
}
