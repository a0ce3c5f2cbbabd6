//! One CIFAR-10 binary batch file: whole 3,073-byte records with labels 0..=9, or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok((x, y)) = nabla::data::cifar10::parse_batch(data, Path::new("fuzz.bin")) {
        assert_eq!(x.shape()[0], y.shape()[0]);
        assert_eq!(x.shape()[0] * 3073, data.len());
    }
});
