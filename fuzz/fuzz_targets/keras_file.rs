//! `.keras` files (a zip of config.json and model.weights.h5): any bytes give a model
//! or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nabla::formats::keras::keras_from_bytes(data, std::path::Path::new("fuzz.keras"));
});
