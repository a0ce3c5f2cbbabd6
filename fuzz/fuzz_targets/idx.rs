//! IDX files (MNIST's format), plain and gzip-compressed: any bytes give an array or an
//! error, never a panic or an allocation beyond what the bytes can fill.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.idx");
    if let Ok(array) = nabla::data::idx::parse_idx(data, path, false) {
        // A parsed array holds exactly the elements its header claims.
        assert_eq!(array.data.len(), array.dims.iter().product::<usize>());
    }
    let gz = flate2::bufread::MultiGzDecoder::new(data);
    let _ = nabla::data::idx::parse_idx(gz, path, true);
});
