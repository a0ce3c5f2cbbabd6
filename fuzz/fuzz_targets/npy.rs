//! NumPy `.npy` bytes: an array whose element count matches its shape, or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = nabla::data::npy::parse_npy(data) {
        assert_eq!(a.data.len(), a.shape.iter().product::<usize>());
    }
});
