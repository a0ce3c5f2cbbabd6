//! Weight penalties added to the loss. Keras' L2: `l2 * sum(w^2)`.

use crate::engine::Var;
use crate::ops::elementwise::{scale, sum_squares};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regularizer {
    L2 { l2: f32 },
}

impl Regularizer {
    pub fn penalty(&self, w: &Var) -> Var {
        match *self {
            Regularizer::L2 { l2 } => scale(&sum_squares(w), l2),
        }
    }
}
