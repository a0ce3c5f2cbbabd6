//! Issue 16, must-show 2: the MATLAB files of the notMNIST layout (`mnist_small.mat`,
//! compressed and not, written by scipy.io.savemat) and an `.npz` written by NumPy
//! (`tests/fixtures/mnist_small.npz`, from scripts/data/mnist_npz_fixture.py) hold
//! exactly the IDX originals: the first MNIST test digits and their labels.

use nabla::data::mat::{load_mat, numeric_variable};
use nabla::data::npz::load_npz;
use nabla::data::read_idx;
use std::path::Path;

mod common;

fn idx_test_digits(n: usize) -> (Vec<f32>, Vec<f32>) {
    let dir = common::real_data("mnist").join("mnist");
    let images = read_idx(dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = read_idx(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    (
        images.data[..n * 784].iter().map(|&b| b as f32).collect(),
        labels.data[..n].iter().map(|&b| b as f32).collect(),
    )
}

#[test]
fn mat_files_equal_the_idx_originals() {
    let dir = common::real_data("mat").join("mat");
    let (images, labels) = idx_test_digits(2000);
    for file in ["mnist_small.mat", "mnist_small_uncompressed.mat"] {
        let vars = load_mat(dir.join(file)).unwrap();
        let x = numeric_variable(&vars, "images").unwrap();
        let y = numeric_variable(&vars, "labels").unwrap();
        assert_eq!(
            (x.shape.clone(), x.dtype),
            (vec![28, 28, 2000], "uint8"),
            "{file}"
        );
        assert_eq!(
            (y.shape.clone(), y.dtype),
            (vec![1, 2000], "uint8"),
            "{file}"
        );
        // images[r, c, n] is pixel (r, c) of digit n: samples last, moved first.
        let x = x.last_axis_first();
        assert_eq!(x.shape, vec![2000, 28, 28]);
        assert!(x.data == images, "{file}: images differ from the IDX file");
        assert_eq!(y.data, labels, "{file}");
    }
}

#[test]
fn npz_written_by_numpy_equals_the_idx_originals() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist_small.npz");
    let arrays = load_npz(&path).unwrap();
    let get = |name: &str| {
        arrays
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no member {name}"))
            .1
            .clone()
    };
    let (images, labels) = idx_test_digits(300);
    let x = get("images");
    assert_eq!((x.shape.clone(), x.dtype), (vec![300, 28, 28], "uint8"));
    assert!(x.data == images);
    assert!(get("images_f").data == images, "Fortran order");
    let be = get("images_be");
    assert_eq!(be.dtype, "float32");
    for (a, b) in be.data.iter().zip(&images[..20 * 784]) {
        assert_eq!(*a, (*b as f64 / 255.0) as f32);
    }
    assert_eq!(get("labels").data, labels);
    assert_eq!(get("labels_i64").data, labels);
}
