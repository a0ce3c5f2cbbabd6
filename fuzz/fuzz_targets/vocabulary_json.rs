//! A saved vocabulary (`vocabulary.json`): a checked `TextVectorization` or an error, never a
//! panic; one that loads must turn texts into numbers without a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nabla::data::text::TextVectorization;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tv) = TextVectorization::from_json(text) {
        let _ = tv.transform(&["the quick brown fox", "", "[UNK] jumps, jumps!"]);
    }
});
