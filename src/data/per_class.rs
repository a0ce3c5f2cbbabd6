//! A small labelled training set drawn from a large one: `n` samples of every class,
//! chosen at random with a seed (the "only 100 images per class" of transfer-learning
//! experiments; `nabla train --per-class N`).

use crate::engine::Rng;
use crate::error::{Error, Result};

/// Row indices of `n` rows of each class (`classes[i]` is row `i`'s class), drawn at
/// random with `seed`, in increasing order. A class with fewer than `n` rows is an
/// error naming it (a smaller set would not be the experiment asked for).
pub fn per_class(classes: &[usize], n: usize, seed: u64) -> Result<Vec<usize>> {
    if n == 0 {
        return Err(Error::invalid("--per-class must be at least 1"));
    }
    let k = classes.iter().copied().max().map_or(0, |m| m + 1);
    let mut groups = vec![Vec::new(); k];
    for (i, &c) in classes.iter().enumerate() {
        groups[c].push(i);
    }
    let mut rng = Rng::new(seed);
    let mut rows = Vec::with_capacity(n * k);
    for (c, mut g) in groups.into_iter().enumerate() {
        if g.len() < n {
            return Err(Error::invalid(format!(
                "--per-class {n}: class {c} has only {} training samples",
                g.len()
            )));
        }
        rng.shuffle(&mut g);
        rows.extend_from_slice(&g[..n]);
    }
    rows.sort_unstable();
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_n_of_each_class_seeded() {
        let classes: Vec<usize> = (0..300).map(|i| i % 3).collect();
        let rows = per_class(&classes, 10, 1).unwrap();
        assert_eq!(rows.len(), 30);
        for c in 0..3 {
            assert_eq!(rows.iter().filter(|&&i| classes[i] == c).count(), 10);
        }
        assert_eq!(rows, per_class(&classes, 10, 1).unwrap());
        assert_ne!(rows, per_class(&classes, 10, 2).unwrap());
        let e = per_class(&classes, 101, 1).unwrap_err().to_string();
        assert!(e.contains("class 0 has only 100"), "{e}");
        assert!(per_class(&classes, 0, 1).is_err());
    }
}
