//! PNG and JPEG files for `predict` and image folders: a `[1, C, H, W]` tensor of the
//! asked size with values in [0, 1], or an error; sizes past the limits are refused
//! from the header, before decoding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nabla::data::image::{load_image, ImageOptions};
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(data).expect("write");
    for (c, h, w) in [(1, 28, 28), (3, 8, 8)] {
        if let Ok(t) = load_image(file.path(), &ImageOptions::new(c, h, w)) {
            assert_eq!(t.shape(), &[1, c, h, w]);
            assert!(t.to_f32_vec().iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
});
