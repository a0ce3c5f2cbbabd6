//! The CIFAR-10 `.tar.gz` archive: extraction either places six valid batch files or
//! leaves the folder as it was (empty here).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("cifar");
    if nabla::data::cifar10::extract_archive(data, &target).is_err() {
        let left = std::fs::read_dir(&target).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "a failed extraction left files behind");
    }
});
