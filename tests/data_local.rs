//! `load_data` from a local folder (`NABLA_DATA`), on the real data sets in `shared/data`.
//!
//! One test function: environment variables are process-wide and tests run in parallel
//! threads, so everything that sets them lives here, in order.

use nabla::data::{load_data, load_data_from, Dataset};
use std::path::PathBuf;

mod common;

fn check(ds: &Dataset, first_train: f32, first_test: f32) {
    assert_eq!(ds.x_train.shape(), &[60000, 1, 28, 28]);
    assert_eq!(ds.y_train.shape(), &[60000]);
    assert_eq!(ds.x_test.shape(), &[10000, 1, 28, 28]);
    assert_eq!(ds.y_test.shape(), &[10000]);
    assert_eq!(ds.class_names.len(), 10);
    for y in [&ds.y_train, &ds.y_test] {
        let mut seen = [false; 10];
        for &l in y.data() {
            assert!(l.fract() == 0.0 && (0.0..10.0).contains(&l), "label {l}");
            seen[l as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "every class occurs");
    }
    assert_eq!(ds.y_train.data()[0], first_train);
    assert_eq!(ds.y_test.data()[0], first_test);
    for x in [&ds.x_train, &ds.x_test] {
        let (lo, hi) = x
            .data()
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert_eq!((lo, hi), (0.0, 1.0), "pixels span [0, 1]");
    }
}

#[test]
fn load_data_from_nabla_data_folder() {
    let shared = common::real_data("fashion-mnist");
    assert!(shared.join("mnist").is_dir(), "{}", shared.display());
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("NABLA_DATA", &shared);
    std::env::set_var("NABLA_CACHE", cache.path());
    // Any attempt to download would fail: nothing listens on port 9.
    std::env::set_var("NABLA_MIRROR", "http://127.0.0.1:9/");

    let mnist = load_data("mnist").unwrap();
    assert_eq!(mnist.name, "mnist");
    assert_eq!(mnist.class_names[7], "7");
    check(&mnist, 5.0, 7.0); // the well-known first digits of each split

    let fashion = load_data("fashion_mnist").unwrap();
    assert_eq!(fashion.name, "fashion-mnist");
    assert_eq!(fashion.class_names[0], "T-shirt/top");
    assert_eq!(fashion.class_names[9], "Ankle boot");
    check(&fashion, 9.0, 9.0);

    // The same folder loaded directly.
    let direct = load_data_from(shared.join("mnist")).unwrap();
    assert_eq!(direct.y_test.data()[..5], [7.0, 2.0, 1.0, 0.0, 4.0]);

    // Nothing went to the cache.
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);

    // A NABLA_DATA without the data set falls through to the cache, then the network,
    // and the error says which mirror failed.
    std::env::set_var("NABLA_DATA", cache.path());
    let msg = load_data("mnist").unwrap_err().to_string();
    assert!(
        msg.contains("http://127.0.0.1:9/mnist/train-images-idx3-ubyte.gz"),
        "{msg}"
    );
}

#[test]
fn missing_data_fails_naming_where_it_looked() {
    let empty = tempfile::tempdir().unwrap();
    let also_empty = tempfile::tempdir().unwrap();
    let err = common::find_real_data(Some(empty.path().to_path_buf()), also_empty.path(), "mnist")
        .unwrap_err();
    let env_at = err.find(&format!("NABLA_DATA={}", empty.path().display()));
    let fallback_at = err.find(&also_empty.path().display().to_string());
    assert!(
        matches!((env_at, fallback_at), (Some(a), Some(b)) if a < b),
        "names NABLA_DATA first, then the fallback: {err}"
    );
    assert!(err.contains("'mnist'"), "{err}");
    let err = common::find_real_data(None, also_empty.path(), "mnist").unwrap_err();
    assert!(err.contains("NABLA_DATA (not set)"), "{err}");
    // The fallback is used when NABLA_DATA lacks the data set.
    std::fs::create_dir(also_empty.path().join("mnist")).unwrap();
    let found =
        common::find_real_data(Some(empty.path().to_path_buf()), also_empty.path(), "mnist");
    assert_eq!(found, Ok(PathBuf::from(also_empty.path())));
}

/// What a data test does without its data: it fails, with the message above.
#[test]
#[should_panic(expected = "the real data set 'no-such-data-set' is missing: looked for")]
fn a_data_test_without_its_data_fails() {
    common::real_data("no-such-data-set");
}
