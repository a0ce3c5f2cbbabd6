//! Per-sample shapes whose axes may be unknown until a batch arrives (Keras'
//! `Input(shape=(None, 8))`): a `Dim` is a size or `None`. Configs write an unknown axis
//! as JSON `null`, so `[1, 28, 28]` reads and writes as before and `[null, 8]` round-trips.
//!
//! Layers work out their output shapes over `Dim`s at build time (an unknown axis stays
//! unknown: a conv over `[3, None, None]` gives `[filters, None, None]`); the sizes are
//! resolved from the actual tensors at each call.

use serde::{Deserialize, Serialize};

/// One axis of a per-sample shape: a size, or `None` when it varies from batch to batch.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Dim(pub Option<usize>);

impl Dim {
    /// An axis whose size is known only when a batch arrives.
    pub const NONE: Dim = Dim(None);

    pub fn known(n: usize) -> Dim {
        Dim(Some(n))
    }

    /// The size, if known.
    pub fn get(self) -> Option<usize> {
        self.0
    }

    pub fn is_known(self) -> bool {
        self.0.is_some()
    }

    /// `f` of the size; unknown stays unknown.
    pub fn map(self, f: impl FnOnce(usize) -> usize) -> Dim {
        Dim(self.0.map(f))
    }

    /// Whether an actual size `n` fits this axis.
    pub fn accepts(self, n: usize) -> bool {
        self.0.is_none_or(|d| d == n)
    }
}

impl std::fmt::Debug for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "None"),
        }
    }
}

impl From<usize> for Dim {
    fn from(n: usize) -> Dim {
        Dim(Some(n))
    }
}

impl From<Option<usize>> for Dim {
    fn from(n: Option<usize>) -> Dim {
        Dim(n)
    }
}

/// `shape == [28, 28]` reads as it did when shapes were plain sizes.
impl PartialEq<usize> for Dim {
    fn eq(&self, n: &usize) -> bool {
        self.0 == Some(*n)
    }
}

/// A fully known shape as `Dim`s.
pub fn dims(shape: &[usize]) -> Vec<Dim> {
    shape.iter().map(|&n| Dim(Some(n))).collect()
}

/// The sizes, if every axis is known.
pub fn known(shape: &[Dim]) -> Option<Vec<usize>> {
    shape.iter().map(|d| d.0).collect()
}

/// The number of values per sample, if every axis is known.
pub fn numel(shape: &[Dim]) -> Option<usize> {
    known(shape).map(|s| s.iter().product())
}

/// Whether a per-sample shape of actual sizes fits `shape` (any size on a `None` axis).
pub fn fits(shape: &[Dim], sizes: &[usize]) -> bool {
    shape.len() == sizes.len() && shape.iter().zip(sizes).all(|(d, &n)| d.accepts(n))
}

/// `[batch, 1, None]`, as error messages write a per-sample shape.
pub fn batch_shape_str(shape: &[Dim]) -> String {
    let mut parts = vec!["batch".to_string()];
    parts.extend(shape.iter().map(|d| d.to_string()));
    format!("[{}]", parts.join(", "))
}

/// Shapes that say how they take their per-sample dimensions: `&[1, 28, 28]` (all
/// known), `&[None, Some(8)]` (Keras' `(None, 8)`), or `Dim`s.
pub trait IntoDims {
    fn into_dims(self) -> Vec<Dim>;
}

impl IntoDims for &[usize] {
    fn into_dims(self) -> Vec<Dim> {
        dims(self)
    }
}
impl<const N: usize> IntoDims for &[usize; N] {
    fn into_dims(self) -> Vec<Dim> {
        dims(self)
    }
}
impl IntoDims for &Vec<usize> {
    fn into_dims(self) -> Vec<Dim> {
        dims(self)
    }
}
impl IntoDims for Vec<usize> {
    fn into_dims(self) -> Vec<Dim> {
        dims(&self)
    }
}
impl IntoDims for &[Option<usize>] {
    fn into_dims(self) -> Vec<Dim> {
        self.iter().map(|&d| Dim(d)).collect()
    }
}
impl<const N: usize> IntoDims for &[Option<usize>; N] {
    fn into_dims(self) -> Vec<Dim> {
        self.iter().map(|&d| Dim(d)).collect()
    }
}
impl IntoDims for &[Dim] {
    fn into_dims(self) -> Vec<Dim> {
        self.to_vec()
    }
}
impl<const N: usize> IntoDims for &[Dim; N] {
    fn into_dims(self) -> Vec<Dim> {
        self.to_vec()
    }
}
impl IntoDims for &Vec<Dim> {
    fn into_dims(self) -> Vec<Dim> {
        self.clone()
    }
}
impl IntoDims for Vec<Dim> {
    fn into_dims(self) -> Vec<Dim> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_axes_are_null_in_json_and_known_ones_plain_numbers() {
        let s = vec![Dim::NONE, Dim::known(8)];
        assert_eq!(serde_json::to_string(&s).unwrap(), "[null,8]");
        let back: Vec<Dim> = serde_json::from_str("[null,8]").unwrap();
        assert_eq!(back, s);
        assert_eq!(
            serde_json::to_string(&dims(&[1, 28, 28])).unwrap(),
            "[1,28,28]"
        );
        assert_eq!(format!("{s:?}"), "[None, 8]");
        assert_eq!(batch_shape_str(&s), "[batch, None, 8]");
        assert_eq!(known(&s), None);
        assert_eq!(numel(&dims(&[2, 3])), Some(6));
        assert!(Dim::NONE.accepts(17) && Dim::known(5).accepts(5) && !Dim::known(5).accepts(6));
        assert_eq!(dims(&[10]), [10]);
    }

    #[test]
    fn integer_and_option_literals_both_become_dims() {
        fn take(s: impl IntoDims) -> Vec<Dim> {
            s.into_dims()
        }
        assert_eq!(take(&[1, 28, 28]), dims(&[1, 28, 28]));
        assert_eq!(take(&[None, Some(8)]), vec![Dim::NONE, Dim::known(8)]);
    }
}
