//! `Target`: what a loss compares a model output with. A tensor of labels for Keras'
//! losses, or any value a custom loss knows how to read (boxes, masks, lengths), kept
//! behind an `Arc` so that a batch's targets are cheap to clone and can be prepared on
//! another thread.

use crate::engine::Tensor;
use crate::error::{Error, Result};
use std::any::Any;
use std::sync::Arc;

/// One output's target for one batch. See the module docs.
#[derive(Clone)]
pub struct Target(Repr);

#[derive(Clone)]
enum Repr {
    Tensor(Tensor),
    Other {
        value: Arc<dyn Any + Send + Sync>,
        /// For error messages (`Any` cannot name its type).
        type_name: &'static str,
    },
}

impl Target {
    /// A target of any type, for a loss that downcasts it (`downcast_ref`).
    pub fn new<T: Any + Send + Sync>(value: T) -> Target {
        Target(Repr::Other {
            value: Arc::new(value),
            type_name: std::any::type_name::<T>(),
        })
    }

    /// The labels, if this target is a tensor.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match &self.0 {
            Repr::Tensor(t) => Some(t),
            Repr::Other { .. } => None,
        }
    }

    /// The labels, or an error saying that `loss` takes a tensor of labels.
    pub fn tensor_for(&self, loss: &str) -> Result<&Tensor> {
        self.as_tensor().ok_or_else(|| {
            Error::invalid(format!(
                "{loss} takes a tensor of labels, got a target of type {}",
                self.describe()
            ))
        })
    }

    /// The value given to `Target::new`, if it is a `T` (a tensor target is a `Tensor`).
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Tensor(t) => (t as &dyn Any).downcast_ref(),
            Repr::Other { value, .. } => value.downcast_ref(),
        }
    }

    /// The number of rows (the batch size) of a tensor target; `None` for other targets.
    pub fn rows(&self) -> Option<usize> {
        self.as_tensor()
            .map(|t| t.shape().first().copied().unwrap_or(0))
    }

    /// `labels [32, 10]`, or the type of a custom target, for messages.
    pub fn describe(&self) -> String {
        match &self.0 {
            Repr::Tensor(t) => format!("labels {:?}", t.shape()),
            Repr::Other { type_name, .. } => type_name.to_string(),
        }
    }
}

impl From<Tensor> for Target {
    fn from(t: Tensor) -> Target {
        Target(Repr::Tensor(t))
    }
}

impl From<&Tensor> for Target {
    fn from(t: &Tensor) -> Target {
        Target(Repr::Tensor(t.clone()))
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_and_custom_targets_downcast_and_explain_themselves() {
        let t = Target::from(Tensor::zeros(&[3, 2]));
        assert_eq!(t.rows(), Some(3));
        assert_eq!(t.downcast_ref::<Tensor>().unwrap().shape(), &[3, 2]);
        assert!(t.tensor_for("mse").is_ok());

        struct Boxes(Vec<Vec<[f32; 4]>>);
        let b = Target::new(Boxes(vec![vec![[0.0, 0.0, 1.0, 1.0]], vec![]]));
        assert_eq!(b.downcast_ref::<Boxes>().unwrap().0.len(), 2);
        assert!(b.as_tensor().is_none() && b.rows().is_none());
        let e = b.tensor_for("mse").unwrap_err().to_string();
        assert!(
            e.contains("mse takes a tensor of labels") && e.contains("Boxes"),
            "{e}"
        );
    }
}
