//! MATLAB v5 `.mat` bytes (compressed or not): numeric variables whose element counts
//! match their shapes, or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nabla::data::mat::MatVariable;

fuzz_target!(|data: &[u8]| {
    if let Ok(vars) = nabla::data::mat::parse_mat(data) {
        for (_, v) in vars {
            if let MatVariable::Numeric(a) = v {
                assert_eq!(a.data.len(), a.shape.iter().product::<usize>());
            }
        }
    }
});
