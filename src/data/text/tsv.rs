//! Text classification data: `label<TAB>text` files with a header row, and the
//! `debian-sections` data set (50 Debian package sections, one-line descriptions).
//!
//! File rules (everything else is an error naming the file and line):
//! - UTF-8 (a leading byte-order mark is skipped); a line that is not UTF-8 is refused.
//! - Line 1 is the header, exactly `label<TAB>text` (so a file without a header does not
//!   lose its first sample silently).
//! - Each further line is `label<TAB>text`, split at the first tab (the text may hold
//!   more tabs); `\r\n` endings are accepted. An empty line is skipped; a line without a
//!   tab or with an empty label is refused.
//! - An empty text is kept (Keras keeps it: it becomes a row of padding, or an all-zero
//!   bag).
//! - A line may hold at most [`MAX_LINE_BYTES`] (1 MiB): a longer one is refused after
//!   reading at most that much of it, so a 10 MB line (or a file with no newline) costs
//!   no more memory than 1 MiB. Otherwise memory is bounded by the file's size.
//! - Class names are the training file's distinct labels in sorted (byte, i.e. code
//!   point) order; a label's class index is its position. A test label the training
//!   file does not have is refused, naming the test file, the line and the label.
//!
//! [`load_text_data`] finds a data set by name as `load_data` finds MNIST:
//! `$NABLA_DATA/<name>/`, then the cache folder `<cache>/<name>/`, each needing
//! `train.tsv` and `test.tsv`. There is no public mirror for `debian-sections`, so
//! nothing is downloaded: a missing folder is an error naming every place looked at.

use super::super::datasets::{cache_dir, DATA_ENV};
use crate::engine::Tensor;
use crate::error::{Error, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Longest line accepted, in bytes (without its line ending).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Text data sets [`load_text_data`] knows.
pub const TEXT_DATASETS: &[&str] = &["debian-sections"];
/// The two files of a text data set folder.
pub const TRAIN_FILE: &str = "train.tsv";
pub const TEST_FILE: &str = "test.tsv";

/// The rows of one `label<TAB>text` file, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelledTexts {
    pub labels: Vec<String>,
    pub texts: Vec<String>,
    /// The 1-based line number of each row (for errors found later).
    pub lines: Vec<usize>,
}

/// Reads a `label<TAB>text` file (see the module docs for the rules).
pub fn read_labelled_tsv(path: impl AsRef<Path>) -> Result<LabelledTexts> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    parse_labelled_tsv(BufReader::new(file), path)
}

/// [`read_labelled_tsv`] over any reader; `path` names the source in errors.
pub fn parse_labelled_tsv(mut reader: impl BufRead, path: &Path) -> Result<LabelledTexts> {
    let mut out = LabelledTexts::default();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        // At most MAX_LINE_BYTES + "\r\n" + 1 byte, to tell a too-long line.
        let read = reader
            .by_ref()
            .take(MAX_LINE_BYTES as u64 + 3)
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let mut bytes = &buf[..];
        let ended = bytes.last() == Some(&b'\n');
        if ended {
            bytes = &bytes[..bytes.len() - 1];
        }
        if bytes.last() == Some(&b'\r') {
            bytes = &bytes[..bytes.len() - 1];
        }
        if bytes.len() > MAX_LINE_BYTES || (!ended && read > MAX_LINE_BYTES + 2) {
            return Err(Error::format(
                path,
                format!(
                    "line {line_no}: longer than {MAX_LINE_BYTES} bytes (the limit for one row)"
                ),
            ));
        }
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let line = std::str::from_utf8(bytes).map_err(|e| {
            Error::format(
                path,
                format!(
                    "line {line_no}: not UTF-8 (invalid byte {} of the line)",
                    e.valid_up_to() + 1
                ),
            )
        })?;
        if line_no == 1 {
            let mut names = line.split('\t').map(str::trim);
            let ok = names.next() == Some("label") && names.next() == Some("text");
            if !ok || names.next().is_some() {
                let shown: String = line.chars().take(80).collect();
                return Err(Error::format(
                    path,
                    format!("line 1: the header must be \"label<TAB>text\", found {shown:?}"),
                ));
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let Some((label, text)) = line.split_once('\t') else {
            return Err(Error::format(
                path,
                format!("line {line_no}: no tab; each row is label<TAB>text"),
            ));
        };
        if label.trim().is_empty() {
            return Err(Error::format(path, format!("line {line_no}: empty label")));
        }
        out.labels.push(label.trim().to_string());
        out.texts.push(text.to_string());
        out.lines.push(line_no);
    }
    if line_no == 0 {
        return Err(Error::format(
            path,
            "empty file; expected a header \"label<TAB>text\" and rows",
        ));
    }
    Ok(out)
}

/// A text classification data set: texts with class indices, split into train and test.
#[derive(Debug, Clone, PartialEq)]
pub struct TextDataset {
    pub train_texts: Vec<String>,
    /// Class index of each training text (into `class_names`).
    pub train_labels: Vec<usize>,
    pub test_texts: Vec<String>,
    pub test_labels: Vec<usize>,
    /// The training file's distinct labels, sorted; index = class.
    pub class_names: Vec<String>,
    /// The data set's name (or the folder's).
    pub name: String,
}

impl TextDataset {
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Training labels as a `[N]` tensor of class indices in f32 (as `Dataset`'s).
    pub fn y_train(&self) -> Tensor {
        labels_tensor(&self.train_labels)
    }

    /// Test labels as a `[M]` tensor of class indices in f32.
    pub fn y_test(&self) -> Tensor {
        labels_tensor(&self.test_labels)
    }
}

fn labels_tensor(labels: &[usize]) -> Tensor {
    Tensor::from_vec(labels.iter().map(|&l| l as f32).collect(), &[labels.len()])
}

/// Reads a training and a test file into a [`TextDataset`]; classes come from the
/// training file (sorted).
pub fn load_text_files(train: &Path, test: &Path, name: &str) -> Result<TextDataset> {
    let tr = read_labelled_tsv(train)?;
    let te = read_labelled_tsv(test)?;
    let mut class_names = tr.labels.clone();
    class_names.sort_unstable();
    class_names.dedup();
    let class_of = |l: &str| class_names.binary_search_by(|c| c.as_str().cmp(l)).ok();
    let train_labels = tr
        .labels
        .iter()
        .map(|l| class_of(l).expect("every training label is a class"))
        .collect();
    let mut test_labels = Vec::with_capacity(te.labels.len());
    for (l, line) in te.labels.iter().zip(&te.lines) {
        test_labels.push(class_of(l).ok_or_else(|| {
            Error::format(
                test,
                format!(
                    "line {line}: label {l:?} is not one of the {} classes of {}",
                    class_names.len(),
                    train.display()
                ),
            )
        })?);
    }
    Ok(TextDataset {
        train_texts: tr.texts,
        train_labels,
        test_texts: te.texts,
        test_labels,
        class_names,
        name: name.to_string(),
    })
}

/// Reads `dir/train.tsv` and `dir/test.tsv`.
pub fn load_text_data_from(dir: impl AsRef<Path>) -> Result<TextDataset> {
    let dir = dir.as_ref();
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    load_text_files(&dir.join(TRAIN_FILE), &dir.join(TEST_FILE), &name)
}

/// Loads a known text data set by name (`debian-sections`) from `$NABLA_DATA/<name>/`
/// or the cache folder; never downloads (see the module docs).
pub fn load_text_data(name: &str) -> Result<TextDataset> {
    let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
    let Some(&name) = TEXT_DATASETS.iter().find(|&&k| k == wanted) else {
        return Err(Error::invalid(format!(
            "unknown text data set \"{name}\"; known: {}",
            TEXT_DATASETS.join(", ")
        )));
    };
    let mut looked = Vec::new();
    let mut candidates: Vec<(String, PathBuf)> = Vec::new();
    match std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        Some(root) => {
            let root = PathBuf::from(root);
            candidates.push((format!("{DATA_ENV}={}", root.display()), root.join(name)));
        }
        None => looked.push(format!("{DATA_ENV} (not set)")),
    }
    match cache_dir(name) {
        Ok(dir) => candidates.push(("the cache".to_string(), dir)),
        Err(e) => looked.push(format!("the cache ({e})")),
    }
    for (what, dir) in candidates {
        if dir.join(TRAIN_FILE).is_file() && dir.join(TEST_FILE).is_file() {
            let mut ds = load_text_data_from(&dir)?;
            ds.name = name.to_string();
            return Ok(ds);
        }
        looked.push(format!(
            "{what}: {} has no {TRAIN_FILE} and {TEST_FILE}",
            dir.display()
        ));
    }
    Err(Error::invalid(format!(
        "text data set '{name}' not found; looked in {}. There is no public mirror to \
         download it from: put {TRAIN_FILE} and {TEST_FILE} in $NABLA_DATA/{name}/",
        looked.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(bytes: &[u8]) -> Result<LabelledTexts> {
        parse_labelled_tsv(Cursor::new(bytes.to_vec()), Path::new("data/train.tsv"))
    }

    fn err(bytes: &[u8]) -> String {
        parse(bytes).unwrap_err().to_string()
    }

    #[test]
    fn reads_rows_crlf_bom_tabs_in_text_and_empty_text() {
        let t =
            parse(b"\xEF\xBB\xBFlabel\ttext\r\ngames\tA game\r\n\nnet\t\r\nlibs\ta\tb\n").unwrap();
        assert_eq!(t.labels, ["games", "net", "libs"]);
        assert_eq!(t.texts, ["A game", "", "a\tb"]);
        assert_eq!(t.lines, [2, 4, 5]);
        // No final newline.
        assert_eq!(parse(b"label\ttext\nx\ty").unwrap().texts, ["y"]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = err(b"label\ttext\na\tb\nno tab here\n");
        assert!(e.contains("data/train.tsv: line 3: no tab"), "{e}");
        let e = err(b"label\ttext\na\tb\nc\t\xff\xfe\n");
        assert!(e.contains("data/train.tsv: line 3: not UTF-8"), "{e}");
        let e = err(b"games\tA game\n");
        assert!(e.contains("line 1: the header"), "{e}");
        let e = err(b"label\ttext\n\tno label\n");
        assert!(e.contains("line 2: empty label"), "{e}");
        assert!(err(b"").contains("empty file"));
    }

    #[test]
    fn a_10_mb_line_is_refused_without_reading_it_all() {
        let mut bytes = b"label\ttext\nok\tfine\nbig\t".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 10 << 20));
        bytes.extend(b"\nlast\trow\n");
        let e = err(&bytes);
        assert!(e.contains("line 3: longer than 1048576 bytes"), "{e}");
        // Exactly at the limit is fine, with \r\n too.
        let mut ok = b"label\ttext\n".to_vec();
        ok.extend(b"a\t");
        ok.extend(std::iter::repeat_n(b'y', MAX_LINE_BYTES - 2));
        ok.extend(b"\r\n");
        assert_eq!(parse(&ok).unwrap().texts[0].len(), MAX_LINE_BYTES - 2);
        // And no newline at all.
        let mut none = b"label\ttext\nb\t".to_vec();
        none.extend(std::iter::repeat_n(b'z', MAX_LINE_BYTES + 5));
        assert!(err(&none).contains("line 2: longer than"));
    }

    #[test]
    fn classes_sorted_and_unknown_test_label_named() {
        let dir = tempfile::tempdir().unwrap();
        let (train, test) = (dir.path().join("train.tsv"), dir.path().join("test.tsv"));
        std::fs::write(&train, "label\ttext\nnet\tx\nadmin\ty\nnet\tz\nGames\tw\n").unwrap();
        std::fs::write(&test, "label\ttext\nadmin\tq\n").unwrap();
        let ds = load_text_data_from(dir.path()).unwrap();
        assert_eq!(ds.class_names, ["Games", "admin", "net"]);
        assert_eq!(ds.train_labels, [2, 1, 2, 0]);
        assert_eq!(ds.test_labels, [1]);
        assert_eq!(ds.y_train().to_f32_vec(), [2.0, 1.0, 2.0, 0.0]);
        std::fs::write(&test, "label\ttext\nadmin\tq\nsound\tr\n").unwrap();
        let e = load_text_data_from(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("test.tsv: line 3: label \"sound\" is not one of the 3 classes"),
            "{e}"
        );
    }

    #[test]
    fn unknown_name_is_refused() {
        let e = load_text_data("imdb").unwrap_err().to_string();
        assert!(e.contains("debian-sections"), "{e}");
    }
}
