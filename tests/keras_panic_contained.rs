//! A panic inside the third-party HDF5 reader on a corrupt file is an error, not a
//! crash, even under a panic hook that aborts (libFuzzer's): the hook is not reached.
//! A panic anywhere else still reaches the hook. Its own test binary, because the hook
//! must be in place before the reader first runs in the process.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn reader_panics_are_errors_and_other_panics_still_reach_the_hook() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    // Stands for libFuzzer's hook, which aborts the process.
    std::panic::set_hook(Box::new(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/keras_h5/regress-btree-v1-slice");
    let bytes = std::fs::read(&path).unwrap();
    let err = nabla::formats::keras::hdf5::parse_weights(bytes, &path).unwrap_err();
    assert!(err.to_string().contains("regress-btree-v1-slice"), "{err}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the reader's panic reached the hook"
    );
    // Our own panics are still seen.
    let r = std::panic::catch_unwind(|| panic!("a bug of ours"));
    assert!(r.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
