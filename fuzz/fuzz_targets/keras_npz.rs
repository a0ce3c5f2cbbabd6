//! Keras' text data set files (`imdb.npz`, `reuters.npz`): npz members holding numpy
//! object arrays as pickles, read by the restricted pickle reader. Ids or an error;
//! never a panic, nothing executed, memory bounded by the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nabla::data::pickle::parse_pickle(data);
    if let Ok(members) = nabla::data::text::keras_datasets::read_members(data) {
        for m in members.values() {
            if let nabla::data::text::keras_datasets::Member::Sequences(s) = m {
                assert!(s.len() <= nabla::data::pickle::MAX_ELEMENTS);
            }
        }
    }
});
