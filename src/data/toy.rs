//! The four-row truth tables of the first lesson: `xor`, `and`, `or`, `nand`.
//! Inputs `[4, 2]`, labels `[4, 1]` (a single sigmoid output).

use super::datasets::Dataset;
use crate::engine::Tensor;

pub const NAMES: [&str; 4] = ["xor", "and", "or", "nand"];

/// The truth table of `name` as a data set whose test set is the same four rows.
pub fn truth_table(name: &str) -> Option<Dataset> {
    let out: [f32; 4] = match name {
        "xor" => [0., 1., 1., 0.],
        "and" => [0., 0., 0., 1.],
        "or" => [0., 1., 1., 1.],
        "nand" => [1., 1., 1., 0.],
        _ => return None,
    };
    let x = Tensor::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2]);
    let y = Tensor::from_vec(out.to_vec(), &[4, 1]);
    Some(Dataset {
        x_train: x.clone(),
        y_train: y.clone(),
        x_test: x,
        y_test: y,
        class_names: vec!["0".into(), "1".into()],
        name: name.to_string(),
    })
}
