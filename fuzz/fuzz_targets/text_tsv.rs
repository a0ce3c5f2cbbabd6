//! `label<TAB>text` files: labelled texts or an error naming the line, never a panic; what
//! parses is then turned into numbers in every output mode (a vocabulary adapted on it).
#![no_main]
use libfuzzer_sys::fuzz_target;
use nabla::data::text::tsv::parse_labelled_tsv;
use nabla::data::text::{OutputMode, TextVectorization, TextVectorizationConfig};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = parse_labelled_tsv(data, Path::new("fuzz.tsv")) else {
        return;
    };
    for output_mode in [OutputMode::Int, OutputMode::MultiHot, OutputMode::Count, OutputMode::TfIdf] {
        let config = TextVectorizationConfig {
            max_tokens: Some(50),
            output_mode,
            ..Default::default()
        };
        let mut tv = TextVectorization::new(config).expect("a valid config");
        tv.adapt(&parsed.texts);
        let _ = tv.transform(&parsed.texts);
    }
});
