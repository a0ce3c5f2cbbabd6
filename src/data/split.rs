//! The seeded train/test split of the command line's own data (tables, arrays): shuffled,
//! and stratified for classes (each class keeps its share in both parts), like
//! scikit-learn's `train_test_split(..., stratify=y)`.

use crate::engine::Rng;
use crate::error::{Error, Result};

/// Row indices of the train and the test part, each in increasing order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Splits `n` rows, `test_fraction` of them to the test part. With `classes` (one class
/// index per row) each class is split on its own: `round(count * test_fraction)` of its
/// rows, drawn at random, go to the test part. Without, a random `round(n * fraction)`.
pub fn train_test_split(
    n: usize,
    classes: Option<&[usize]>,
    test_fraction: f64,
    seed: u64,
) -> Result<Split> {
    if !(0.0..1.0).contains(&test_fraction) {
        return Err(Error::invalid(format!(
            "--test-split must be in [0, 1), got {test_fraction}"
        )));
    }
    let mut rng = Rng::new(seed);
    let groups: Vec<Vec<usize>> = match classes {
        Some(c) => {
            let k = c.iter().copied().max().map_or(0, |m| m + 1);
            let mut g = vec![Vec::new(); k];
            for (i, &class) in c.iter().enumerate().take(n) {
                g[class].push(i);
            }
            g
        }
        None => vec![(0..n).collect()],
    };
    let mut split = Split {
        train: Vec::new(),
        test: Vec::new(),
    };
    for mut g in groups {
        rng.shuffle(&mut g);
        let t = (g.len() as f64 * test_fraction).round() as usize;
        split.test.extend_from_slice(&g[..t]);
        split.train.extend_from_slice(&g[t..]);
    }
    split.train.sort_unstable();
    split.test.sort_unstable();
    if split.train.is_empty() {
        return Err(Error::invalid(format!(
            "--test-split {test_fraction} of {n} rows leaves no training rows"
        )));
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_split_keeps_class_shares_and_is_seeded() {
        let classes: Vec<usize> = (0..100).map(|i| usize::from(i < 20)).collect();
        let s = train_test_split(100, Some(&classes), 0.25, 7).unwrap();
        assert_eq!(s.test.len(), 25);
        assert_eq!(s.test.iter().filter(|&&i| classes[i] == 1).count(), 5);
        let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(s, train_test_split(100, Some(&classes), 0.25, 7).unwrap());
        assert_ne!(s, train_test_split(100, Some(&classes), 0.25, 8).unwrap());
        let plain = train_test_split(10, None, 0.3, 0).unwrap();
        assert_eq!((plain.train.len(), plain.test.len()), (7, 3));
        assert!(train_test_split(10, None, 1.0, 0).is_err());
        assert!(train_test_split(10, None, f64::NAN, 0).is_err());
    }
}
