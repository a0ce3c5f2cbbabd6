//! CSV tables: a feature matrix with one row per target value, or an error (both with
//! text columns one-hot encoded and refused).
#![no_main]
use libfuzzer_sys::fuzz_target;
use nabla::data::csv_table::{parse_csv, CsvOptions};

fuzz_target!(|data: &[u8]| {
    for one_hot in [true, false] {
        let opts = CsvOptions {
            target: None,
            one_hot,
            weight: None,
        };
        let _ = parse_csv(data, &opts);
    }
});
