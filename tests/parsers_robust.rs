//! The byte parsers of the user's data files (`parse_npy`, `read_npz`, `parse_mat`,
//! `parse_csv`, `parse_labelled_tsv`, a saved text vocabulary) on thousands of corrupted inputs: each must return (an error or a value),
//! never panic, and never allocate what a corrupted header claims (a claim of 10^12
//! elements would abort the test process). A cheap, deterministic stand-in for the fuzz
//! targets over the same functions.

use nabla::data::csv_table::{parse_csv, CsvOptions};
use nabla::data::mat::parse_mat;
use nabla::data::npy::{npy_bytes, parse_npy};
use nabla::data::npz::read_npz;
use nabla::data::text::tsv::parse_labelled_tsv;
use nabla::data::text::{OutputMode, TextVectorization, TextVectorizationConfig};
use nabla::Rng;

/// `rounds` mutations of `seed`: bytes overwritten (often with 0xff, to make sizes
/// huge), cut short, or spliced.
fn mutations(seed: &[u8], rounds: usize, rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut b = seed.to_vec();
        let edits = 1 + rng.next_u64() as usize % 4;
        for _ in 0..edits {
            if b.is_empty() {
                break;
            }
            let at = rng.next_u64() as usize % b.len();
            match rng.next_u64() % 4 {
                0 => b[at] = 0xff,
                1 => b[at] = rng.next_u64() as u8,
                2 => b.truncate(at),
                _ => {
                    let from = rng.next_u64() as usize % b.len();
                    let chunk: Vec<u8> = b[from..].iter().take(16).copied().collect();
                    b.splice(at..at, chunk);
                }
            }
        }
        out.push(b);
    }
    out
}

#[test]
fn corrupted_files_give_errors_not_panics() {
    let mut rng = Rng::new(16);
    let npy = npy_bytes("<f4", &[3, 2], true, &[0x3f; 24]);
    for b in mutations(&npy, 3000, &mut rng) {
        let _ = parse_npy(&b);
    }
    let npz = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mnist_small.npz"
    ))
    .unwrap();
    // Fewer rounds: each one inflates a 115 KB archive.
    for b in mutations(&npz, 300, &mut rng) {
        let _ = read_npz(&b);
    }
    let mut mat = vec![b' '; 128];
    mat[126..128].copy_from_slice(b"IM");
    // One uint8 2x2 matrix, written out by hand (see src/data/mat.rs for the layout).
    let words: [u32; 12] = [14, 56, 6, 8, 9, 0, 5, 8, 2, 2, 0x0001_0001, u32::from(b'x')];
    for w in words {
        mat.extend_from_slice(&w.to_le_bytes());
    }
    mat.extend_from_slice(&[2, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0]);
    assert!(parse_mat(&mat).is_ok(), "the seed file parses");
    for b in mutations(&mat, 3000, &mut rng) {
        let _ = parse_mat(&b);
    }
    let csv = b"a,b,color,y\n1,2.5,red,0\n3,-4e2,blue,1\n,7,red,1\n".to_vec();
    for b in mutations(&csv, 3000, &mut rng) {
        let _ = parse_csv(&b, &CsvOptions::default());
    }
    let tsv = "label\ttext\r\ngames\tA game, of sorts\nnet\t\nlibs\tcaf\u{e9}\ta\n".as_bytes();
    let path = std::path::Path::new("train.tsv");
    assert_eq!(parse_labelled_tsv(tsv, path).unwrap().texts.len(), 3);
    for b in mutations(tsv, 3000, &mut rng) {
        let _ = parse_labelled_tsv(&b[..], path);
    }
    let mut tv = TextVectorization::new(TextVectorizationConfig {
        max_tokens: Some(8),
        output_mode: OutputMode::TfIdf,
        ..Default::default()
    })
    .unwrap();
    tv.adapt(&["the cat sat", "the dog", "a bird sang"]);
    let vocabulary = tv.to_json().into_bytes();
    for b in mutations(&vocabulary, 3000, &mut rng) {
        if let Ok(tv) = TextVectorization::from_json(&String::from_utf8_lossy(&b)) {
            // Whatever loads must transform without a panic.
            let _ = tv.transform(&["the cat", "", "zzz bird bird"]).unwrap();
        }
    }
}

/// Inputs the fuzz targets once crashed on, kept as regressions (each also sits in the
/// target's corpus under `fuzz/corpus/`): a model.json whose input has an axis of size 0
/// reached "same" padding's `out - 1` with `out = 0`.
#[test]
fn model_configs_the_fuzzer_broke_are_refused_with_a_message() {
    let zero_axis = r#"{"input_shape": [1, 0, 8], "layers": [{"class_name": "Conv2D",
        "config": {"filters": 1, "kernel_size": 3, "padding": "same"}}]}"#;
    let cfg = nabla::formats::model_dir::parse_config(zero_axis).unwrap();
    let err = nabla::Model::from_config(&cfg, 0).unwrap_err().to_string();
    assert!(err.contains("axis of size 0"), "{err}");
}

/// The text targets' fuzz seeds are valid files, so fuzzing starts deep in the parsers
/// (and a format change that breaks them shows here, not as a silently shallow fuzz run).
#[test]
fn the_text_fuzz_seeds_parse() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for seed in ["seed-int", "seed-tf_idf"] {
        let text = std::fs::read_to_string(corpus.join("vocabulary_json").join(seed)).unwrap();
        let tv = nabla::data::text::TextVectorization::from_json(&text)
            .unwrap_or_else(|e| panic!("{seed}: {e}"));
        tv.transform(&["the fox"]).unwrap();
    }
    for seed in ["seed-plain", "seed-bom-crlf"] {
        let bytes = std::fs::read(corpus.join("text_tsv").join(seed)).unwrap();
        let parsed =
            nabla::data::text::tsv::parse_labelled_tsv(&bytes[..], std::path::Path::new(seed))
                .unwrap_or_else(|e| panic!("{seed}: {e}"));
        assert!(parsed.texts.len() >= 2, "{seed}");
    }
}

/// The Keras text data set seeds (tiny npz files of pickled object arrays, and one bare
/// pickle) parse, so the keras_npz target starts deep in the pickle reader.
#[test]
fn the_keras_npz_fuzz_seeds_parse() {
    use nabla::data::text::keras_datasets::{read_members, Member};
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/keras_npz");
    for seed in ["seed-imdb", "seed-reuters"] {
        let bytes = std::fs::read(corpus.join(seed)).unwrap();
        let members = read_members(&bytes).unwrap_or_else(|e| panic!("{seed}: {e}"));
        assert!(
            members
                .values()
                .any(|m| matches!(m, Member::Sequences(s) if !s.is_empty())),
            "{seed}"
        );
    }
    let pickle = std::fs::read(corpus.join("seed-pickle")).unwrap();
    let lists = nabla::data::pickle::object_array_of_int_lists(&pickle).unwrap();
    assert_eq!(lists.len(), 30);
}
