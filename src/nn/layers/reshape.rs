//! `Reshape`: `[N, ...] -> [N, target_shape...]`, a free view. One entry of
//! `target_shape` may be -1 (inferred), as in Keras. Used to turn a squeeze-and-excitation
//! vector `[C]` into `[C, 1, 1]` so that `Multiply` rescales channels.
//!
//! Masks: dropped (Keras' `Reshape` does not support masking).

use super::dims::{dims, known, Dim};
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Var};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshapeConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub target_shape: Vec<i64>,
}

pub struct Reshape {
    pub name: String,
    pub target_shape: Vec<i64>,
    /// The resolved per-sample shape.
    shape: Vec<usize>,
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const RESHAPE: LayerType = LayerType::of::<ReshapeConfig>("Reshape");

impl LayerKind for ReshapeConfig {
    fn class_name(&self) -> &'static str {
        "Reshape"
    }
    fn base_name(&self) -> &'static str {
        "reshape"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let Some(input) = known(inputs[0]) else {
            return Err(Error::shape(format!(
                "layer '{name}' (Reshape) needs a known input shape, got {:?} (None is known \
                 only per batch)",
                inputs[0]
            )));
        };
        output_shape(self, name, &input).map(|s| dims(&s))
    }
    fn build(&self, name: String, inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let shape = known(&self.output_shape(&name, inputs)?).expect("known");
        Ok(Box::new(Reshape {
            name,
            target_shape: self.target_shape.clone(),
            shape,
        }))
    }
}

pub(super) fn output_shape(c: &ReshapeConfig, name: &str, input: &[usize]) -> Result<Vec<usize>> {
    let n: usize = input.iter().product();
    let bad = |why: &str| {
        Error::shape(format!(
            "layer '{name}' (Reshape): cannot reshape {input:?} ({n} values) to {:?}: {why}",
            c.target_shape
        ))
    };
    let unknown = c.target_shape.iter().filter(|&&d| d == -1).count();
    if unknown > 1 || c.target_shape.iter().any(|&d| d == 0 || d < -1) {
        return Err(bad("dimensions must be positive, with at most one -1"));
    }
    let known: usize = c
        .target_shape
        .iter()
        .filter(|&&d| d > 0)
        .map(|&d| d as usize)
        .product();
    if (unknown == 0 && known != n) || (unknown == 1 && !n.is_multiple_of(known)) {
        return Err(bad("the sizes differ"));
    }
    Ok(c.target_shape
        .iter()
        .map(|&d| if d == -1 { n / known } else { d as usize })
        .collect())
}

impl Layer for Reshape {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, _ctx: &mut ForwardCtx) -> Result<Var> {
        let mut s = vec![x.shape()[0]];
        s.extend_from_slice(&self.shape);
        crate::ops::shape::reshape(x, &s)
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        ReshapeConfig {
            name: Some(self.name.clone()),
            target_shape: self.target_shape.clone(),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_one_dimension_and_rejects_bad_targets() {
        let c = |t: &[i64]| ReshapeConfig {
            name: None,
            target_shape: t.to_vec(),
        };
        assert_eq!(output_shape(&c(&[8, 1, 1]), "r", &[8]).unwrap(), [8, 1, 1]);
        assert_eq!(output_shape(&c(&[-1, 4]), "r", &[2, 4, 2]).unwrap(), [4, 4]);
        assert!(output_shape(&c(&[3, -1]), "r", &[8]).is_err());
        assert!(output_shape(&c(&[-1, -1]), "r", &[8]).is_err());
        assert!(output_shape(&c(&[0, 8]), "r", &[8]).is_err());
        let e = output_shape(&c(&[7]), "r", &[8]).unwrap_err().to_string();
        assert!(e.contains("'r' (Reshape)"), "{e}");
    }
}
