//! Merge layers: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum` and
//! `Concatenate`, which take several inputs (a functional model's branches) and return
//! one. Keras' names and rules: the arithmetic merges need equal shapes (`Multiply` also
//! lets an input broadcast, for a channel rescale `[C, H, W] * [C, 1, 1]`), `Subtract`
//! takes exactly two inputs, and `Concatenate` joins along `axis` (counted with the batch
//! axis, as in Keras; nabla is channels-first, so the default 1 is the channel axis).

use super::{ForwardCtx, Layer, LayerConfig, Param};
use crate::engine::Var;
use crate::error::{Error, Result};
use crate::ops::{elementwise, shape};
use serde::{Deserialize, Serialize};

/// Config of the arithmetic merges (they have no other settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MergeConfig {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcatenateConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Axis counted with the batch axis (0); negative counts from the end.
    #[serde(default = "channel_axis")]
    pub axis: i64,
}

fn channel_axis() -> i64 {
    1
}

impl Default for ConcatenateConfig {
    fn default() -> Self {
        ConcatenateConfig {
            name: None,
            axis: channel_axis(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
    /// Along this axis of the per-sample shape (the batch axis excluded).
    Concatenate(usize),
}

impl MergeKind {
    pub fn class_name(&self) -> &'static str {
        match self {
            MergeKind::Add => "Add",
            MergeKind::Subtract => "Subtract",
            MergeKind::Multiply => "Multiply",
            MergeKind::Average => "Average",
            MergeKind::Maximum => "Maximum",
            MergeKind::Minimum => "Minimum",
            MergeKind::Concatenate(_) => "Concatenate",
        }
    }
}

pub struct Merge {
    pub name: String,
    pub kind: MergeKind,
    /// The configured axis, kept as written for the config round trip.
    concat_axis: i64,
}

/// The per-sample axis (batch excluded) that `axis` (batch included, maybe negative)
/// names for inputs of `rank` per-sample dimensions.
fn sample_axis(name: &str, axis: i64, rank: usize) -> Result<usize> {
    let full = rank as i64 + 1;
    let a = if axis < 0 { axis + full } else { axis };
    if a <= 0 || a >= full {
        return Err(Error::invalid(format!(
            "layer '{name}' (Concatenate): axis {axis} is not a feature axis of inputs \
             with {full} dimensions (the batch axis 0 cannot be joined)"
        )));
    }
    Ok(a as usize - 1)
}

fn dims(s: &[usize]) -> String {
    format!(
        "[batch, {}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Output shape of merge `class` over `inputs` (per-sample shapes).
pub(super) fn output_shape(
    class: &str,
    concat_axis: Option<i64>,
    name: &str,
    inputs: &[&[usize]],
) -> Result<Vec<usize>> {
    let min = 2;
    if inputs.len() < min || (class == "Subtract" && inputs.len() != 2) {
        let want = if class == "Subtract" {
            "exactly 2"
        } else {
            "at least 2"
        };
        return Err(Error::invalid(format!(
            "layer '{name}' ({class}) merges {want} inputs, got {}",
            inputs.len()
        )));
    }
    let first = inputs[0];
    if let Some(axis) = concat_axis {
        let a = sample_axis(name, axis, first.len())?;
        let mut out = first.to_vec();
        out[a] = 0;
        for s in inputs {
            let ok = s.len() == first.len()
                && s.iter()
                    .zip(first)
                    .enumerate()
                    .all(|(i, (x, y))| i == a || x == y);
            if !ok {
                return Err(Error::shape(format!(
                    "layer '{name}' (Concatenate) on axis {axis}: inputs {} and {} differ \
                     off that axis",
                    dims(first),
                    dims(s)
                )));
            }
            out[a] += s[a];
        }
        return Ok(out);
    }
    if class == "Multiply" {
        // The largest input is the output; every other must broadcast to it.
        let big = inputs
            .iter()
            .max_by_key(|s| s.iter().product::<usize>())
            .expect("at least 2");
        for s in inputs {
            let ok = s.len() == big.len() && s.iter().zip(*big).all(|(&x, &y)| x == y || x == 1);
            if !ok {
                return Err(Error::shape(format!(
                    "layer '{name}' (Multiply): input {} does not broadcast to {} (same \
                     rank, each dimension equal or 1)",
                    dims(s),
                    dims(big)
                )));
            }
        }
        return Ok(big.to_vec());
    }
    for s in inputs {
        if *s != first {
            return Err(Error::shape(format!(
                "layer '{name}' ({class}) needs inputs of one shape, got {} and {}",
                dims(first),
                dims(s)
            )));
        }
    }
    Ok(first.to_vec())
}

pub(super) fn build(kind_name: &str, concat_axis: i64, name: String, input: &[usize]) -> Merge {
    let kind = match kind_name {
        "Add" => MergeKind::Add,
        "Subtract" => MergeKind::Subtract,
        "Multiply" => MergeKind::Multiply,
        "Average" => MergeKind::Average,
        "Maximum" => MergeKind::Maximum,
        "Minimum" => MergeKind::Minimum,
        _ => MergeKind::Concatenate(
            sample_axis(&name, concat_axis, input.len()).expect("checked by output_shape"),
        ),
    };
    Merge {
        name,
        kind,
        concat_axis,
    }
}

impl Layer for Merge {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        self.forward_many(std::slice::from_ref(x), ctx)
    }
    fn forward_many(&mut self, xs: &[Var], _ctx: &mut ForwardCtx) -> Result<Var> {
        if xs.len() < 2 {
            return Err(Error::invalid(format!(
                "layer '{}' ({}) needs at least 2 inputs, got {}",
                self.name,
                self.kind.class_name(),
                xs.len()
            )));
        }
        let fold = |f: fn(&Var, &Var) -> Result<Var>| -> Result<Var> {
            xs[1..].iter().try_fold(xs[0].clone(), |acc, x| f(&acc, x))
        };
        match self.kind {
            MergeKind::Add => fold(elementwise::add),
            MergeKind::Subtract => elementwise::sub(&xs[0], &xs[1]),
            MergeKind::Average => Ok(elementwise::scale(
                &fold(elementwise::add)?,
                1.0 / xs.len() as f32,
            )),
            MergeKind::Maximum => fold(elementwise::maximum),
            MergeKind::Minimum => fold(elementwise::minimum),
            MergeKind::Multiply => xs[1..].iter().try_fold(xs[0].clone(), |acc, x| {
                // The larger operand first: it gives the output shape.
                if acc.value_ref().numel() >= x.value_ref().numel() {
                    elementwise::mul_broadcast(&acc, x)
                } else {
                    elementwise::mul_broadcast(x, &acc)
                }
            }),
            MergeKind::Concatenate(axis) => {
                let refs: Vec<&Var> = xs.iter().collect();
                shape::concat(&refs, axis + 1)
            }
        }
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        let name = Some(self.name.clone());
        let m = MergeConfig { name: name.clone() };
        match self.kind {
            MergeKind::Add => LayerConfig::Add(m),
            MergeKind::Subtract => LayerConfig::Subtract(m),
            MergeKind::Multiply => LayerConfig::Multiply(m),
            MergeKind::Average => LayerConfig::Average(m),
            MergeKind::Maximum => LayerConfig::Maximum(m),
            MergeKind::Minimum => LayerConfig::Minimum(m),
            MergeKind::Concatenate(_) => LayerConfig::Concatenate(ConcatenateConfig {
                name,
                axis: self.concat_axis,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(class: &str, axis: Option<i64>, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        output_shape(class, axis, "m", inputs)
    }

    #[test]
    fn output_shapes_follow_keras_rules() {
        assert_eq!(
            shape_of("Add", None, &[&[4, 5, 5], &[4, 5, 5]]).unwrap(),
            [4, 5, 5]
        );
        assert!(shape_of("Add", None, &[&[4, 5, 5], &[4, 5, 6]]).is_err());
        assert!(shape_of("Add", None, &[&[4, 5, 5]]).is_err());
        assert!(shape_of("Subtract", None, &[&[3], &[3], &[3]]).is_err());
        assert_eq!(
            shape_of("Multiply", None, &[&[8, 1, 1], &[8, 4, 4]]).unwrap(),
            [8, 4, 4]
        );
        assert!(shape_of("Multiply", None, &[&[8], &[8, 4, 4]]).is_err());
        assert_eq!(
            shape_of(
                "Concatenate",
                Some(1),
                &[&[2, 5, 5], &[3, 5, 5], &[1, 5, 5]]
            )
            .unwrap(),
            [6, 5, 5]
        );
        assert_eq!(
            shape_of("Concatenate", Some(-1), &[&[2, 5, 5], &[2, 5, 1]]).unwrap(),
            [2, 5, 6]
        );
        let e = shape_of("Concatenate", Some(0), &[&[2], &[2]]).unwrap_err();
        assert!(e.to_string().contains("batch axis"), "{e}");
        let e = shape_of("Concatenate", Some(1), &[&[2, 5, 5], &[3, 4, 5]]).unwrap_err();
        assert!(e.to_string().contains("differ off that axis"), "{e}");
    }
}
