//! Merge layers: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum` and
//! `Concatenate`, which take several inputs (a functional model's branches) and return
//! one. Keras' names and rules: the arithmetic merges need equal shapes (`Multiply` also
//! lets an input broadcast, for a channel rescale `[C, H, W] * [C, 1, 1]`), `Subtract`
//! takes exactly two inputs, and `Concatenate` joins along `axis` (counted with the batch
//! axis, as in Keras; nabla is channels-first, so the default 1 is the channel axis).
//!
//! Masks: the arithmetic merges pass on the OR of their inputs' masks, or none if any
//! input has none (Keras' `Merge.compute_mask`); the values are merged as they are
//! (Keras' `Maximum`/`Minimum` also swap a masked step's value for the other input's:
//! not done here). `Concatenate` drops masks for now (Keras joins them).

use super::dims::{batch_shape_str, Dim};
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::mask::or_masks;
use crate::ops::{elementwise, shape};
use serde::{Deserialize, Serialize};

/// Config of the arithmetic merges (they have no other settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MergeConfig {
    /// Which merge: given by the class name, not a JSON field (never `Concatenate`,
    /// which has its own config).
    #[serde(skip)]
    pub kind: MergeKind,
    #[serde(default)]
    pub name: Option<String>,
}

impl MergeConfig {
    pub fn of(kind: MergeKind) -> MergeConfig {
        MergeConfig { kind, name: None }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeKind {
    #[default]
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
    /// Along this axis of the per-sample shape (the batch axis excluded).
    Concatenate(usize),
}

/// The registry line of an arithmetic merge (see `layers::LAYER_TYPES`).
macro_rules! merge_type {
    ($kind:ident) => {
        LayerType {
            class_name: stringify!($kind),
            parse: |v| {
                let c: MergeConfig = serde_json::from_value(v)?;
                Ok(MergeConfig {
                    kind: MergeKind::$kind,
                    ..c
                }
                .into())
            },
        }
    };
}
pub const ADD: LayerType = merge_type!(Add);
pub const SUBTRACT: LayerType = merge_type!(Subtract);
pub const MULTIPLY: LayerType = merge_type!(Multiply);
pub const AVERAGE: LayerType = merge_type!(Average);
pub const MAXIMUM: LayerType = merge_type!(Maximum);
pub const MINIMUM: LayerType = merge_type!(Minimum);
pub const CONCATENATE: LayerType = LayerType::of::<ConcatenateConfig>("Concatenate");

impl LayerKind for MergeConfig {
    fn class_name(&self) -> &'static str {
        self.kind.class_name()
    }
    fn base_name(&self) -> &'static str {
        match self.kind {
            MergeKind::Add => "add",
            MergeKind::Subtract => "subtract",
            MergeKind::Multiply => "multiply",
            MergeKind::Average => "average",
            MergeKind::Maximum => "maximum",
            MergeKind::Minimum => "minimum",
            MergeKind::Concatenate(_) => "concatenate",
        }
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn takes_many_inputs(&self) -> bool {
        true
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        output_shape(self.kind.class_name(), None, name, inputs)
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(Merge {
            name,
            kind: self.kind,
            concat_axis: 1,
        }))
    }
}

impl LayerKind for ConcatenateConfig {
    fn class_name(&self) -> &'static str {
        "Concatenate"
    }
    fn base_name(&self) -> &'static str {
        "concatenate"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn takes_many_inputs(&self) -> bool {
        true
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        output_shape("Concatenate", Some(self.axis), name, inputs)
    }
    fn build(&self, name: String, inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let axis = sample_axis(&name, self.axis, inputs[0].len())?;
        Ok(Box::new(Merge {
            name,
            kind: MergeKind::Concatenate(axis),
            concat_axis: self.axis,
        }))
    }
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

fn dims(s: &[Dim]) -> String {
    batch_shape_str(s)
}

/// Whether two axes may hold the same size (an unknown one may).
fn agree(a: Dim, b: Dim) -> bool {
    a == b || !a.is_known() || !b.is_known()
}

/// Output shape of merge `class` over `inputs` (per-sample shapes).
pub(super) fn output_shape(
    class: &str,
    concat_axis: Option<i64>,
    name: &str,
    inputs: &[&[Dim]],
) -> Result<Vec<Dim>> {
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
        out[a] = Dim::known(0);
        for s in inputs {
            let ok = s.len() == first.len()
                && s.iter()
                    .zip(first)
                    .enumerate()
                    .all(|(i, (&x, &y))| i == a || agree(x, y));
            if !ok {
                return Err(Error::shape(format!(
                    "layer '{name}' (Concatenate) on axis {axis}: inputs {} and {} differ \
                     off that axis",
                    dims(first),
                    dims(s)
                )));
            }
            out[a] = Dim(out[a].get().zip(s[a].get()).map(|(x, y)| x + y));
        }
        return Ok(out);
    }
    if class == "Multiply" {
        // The largest input is the output; every other must broadcast to it.
        // An unknown axis counts as large: it is not a broadcast 1.
        let big = inputs
            .iter()
            .max_by_key(|s| {
                s.iter()
                    .map(|d| d.get().unwrap_or(usize::MAX))
                    .fold(1usize, usize::saturating_mul)
            })
            .expect("at least 2");
        for s in inputs {
            let ok =
                s.len() == big.len() && s.iter().zip(*big).all(|(&x, &y)| agree(x, y) || x == 1);
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
        if s.len() != first.len() || s.iter().zip(first).any(|(&x, &y)| !agree(x, y)) {
            return Err(Error::shape(format!(
                "layer '{name}' ({class}) needs inputs of one shape, got {} and {}",
                dims(first),
                dims(s)
            )));
        }
    }
    // Where one input knows an axis that another leaves open, the output knows it.
    Ok((0..first.len())
        .map(|i| {
            inputs
                .iter()
                .map(|s| s[i])
                .find(|d| d.is_known())
                .unwrap_or(Dim::NONE)
        })
        .collect())
}

impl Layer for Merge {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        self.forward_many(std::slice::from_ref(x), ctx)
    }
    fn fuses_relu(&self) -> bool {
        self.kind == MergeKind::Add
    }
    /// A residual block's `relu(a + b)`: the last sum and the ReLU in one pass.
    fn forward_relu(&mut self, xs: &[Var], ctx: &mut ForwardCtx) -> Result<Var> {
        match (self.kind, xs) {
            // The sums in `forward_many`'s order, the last one fused with the ReLU.
            (MergeKind::Add, [first, middle @ .., last]) => {
                let acc = middle
                    .iter()
                    .try_fold(first.clone(), |acc, x| elementwise::add(&acc, x))?;
                elementwise::add_relu(&acc, last)
            }
            _ => Ok(crate::ops::activation::relu(&self.forward_many(xs, ctx)?)),
        }
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
    /// Keras' arithmetic merges: the OR of the inputs' masks, none if any input has
    /// none. `Concatenate` drops masks (not supported yet).
    fn compute_mask_many(&self, _xs: &[Var], masks: &[Option<&Tensor>]) -> Result<Option<Tensor>> {
        if matches!(self.kind, MergeKind::Concatenate(_)) {
            return Ok(None);
        }
        let Some(all) = masks.iter().copied().collect::<Option<Vec<&Tensor>>>() else {
            return Ok(None);
        };
        let Some((first, rest)) = all.split_first() else {
            return Ok(None);
        };
        rest.iter()
            .try_fold((*first).clone(), |acc, m| or_masks(&acc, m))
            .map(Some)
            .map_err(|e| e.context(&format!("layer '{}'", self.name)))
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        let name = Some(self.name.clone());
        match self.kind {
            MergeKind::Concatenate(_) => ConcatenateConfig {
                name,
                axis: self.concat_axis,
            }
            .into(),
            kind => MergeConfig { kind, name }.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(class: &str, axis: Option<i64>, inputs: &[&[usize]]) -> Result<Vec<Dim>> {
        let inputs: Vec<Vec<Dim>> = inputs
            .iter()
            .map(|s| crate::nn::layers::dims::dims(s))
            .collect();
        let refs: Vec<&[Dim]> = inputs.iter().map(|s| s.as_slice()).collect();
        output_shape(class, axis, "m", &refs)
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
