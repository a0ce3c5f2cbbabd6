//! `Bidirectional`: Keras' wrapper that runs a recurrent layer over a sequence both ways
//! and merges the two results.
//!
//! # Shapes
//! input `[N, T, F]`. The forward copy reads it as it is; the backward copy reads it
//! reversed along `T` (`ops::index::index_select` with indices `T-1, ..., 0`: Keras'
//! `go_backwards`), and with `return_sequences` its output `[N, T, U]` is reversed back,
//! so step `t` of both halves belongs to input step `t`. Without `return_sequences`
//! each copy gives its last step `[N, U]`: the forward one after reading the whole
//! sequence, the backward one after reading it from the end to the start (PyTorch's
//! `h_n` of the reverse direction). Merged by `merge_mode`: `concat` (the default,
//! forward then backward on the last axis: `[.., 2U]`), `sum`, `ave` or `mul` (`[.., U]`).
//!
//! The wrapped layer is any registered layer whose config has a `return_sequences`
//! flag (LSTM; a GRU needs no change here): it is built through the registry twice,
//! as `forward_NAME` and `backward_NAME` (Keras' names, `NAME` the inner layer's name,
//! `lstm` by default), so its weights are `LAYER/forward_lstm/kernel`, ... and the
//! parameter count is twice the inner layer's. JSON (Keras' form):
//! `{"class_name": "Bidirectional", "config": {"layer": {"class_name": "LSTM",
//! "config": {"units": 64}}, "merge_mode": "concat"}}`.
//!
//! Masks: the forward copy gets the input's mask, the backward copy the mask reversed
//! along `T` as its input is; the output keeps the mask with `return_sequences`, else
//! has none (Keras). With `return_sequences` and a mask, both halves are zero at masked
//! steps (Keras' Bidirectional sets `zero_output_for_mask` on its layers, so the two
//! halves line up on real steps only; checked against Keras in tests/rnn_mask.rs).
//!
//! States (Keras'): with the inner layer's `return_state`, the outputs are the merged
//! output, then the forward layer's final states, then the backward layer's (an LSTM:
//! `[y, h_f, c_f, h_b, c_b]`); initial states come as further inputs, the first half
//! to the forward layer and the second half to the backward one.
//!
//! Not supported (refused, never ignored): Keras' `backward_layer` (a different
//! backward layer) and `merge_mode: null` (two outputs).

use super::dims::Dim;
use super::registry::rank_is;
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::mask::{self, check_mask};
use crate::ops::{elementwise, index, shape};
use serde::{Deserialize, Serialize};

/// How the two directions' outputs are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// Forward then backward on the last axis (twice the width).
    #[default]
    Concat,
    Sum,
    /// The mean of the two.
    Ave,
    Mul,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidirectionalConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// The recurrent layer to run both ways (its config, Keras' JSON form).
    pub layer: LayerConfig,
    #[serde(default)]
    pub merge_mode: MergeMode,
}

impl BidirectionalConfig {
    pub fn new(layer: impl Into<LayerConfig>) -> BidirectionalConfig {
        BidirectionalConfig {
            name: None,
            layer: layer.into(),
            merge_mode: MergeMode::Concat,
        }
    }
    pub fn merge_mode(mut self, m: MergeMode) -> Self {
        self.merge_mode = m;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.to_string());
        self
    }

    /// The inner layer's own name (`lstm` unless the config names it).
    fn inner_name(&self) -> &str {
        self.layer.name().unwrap_or(self.layer.base_name())
    }

    /// The inner layer's `return_sequences`, or an error if it has none (not recurrent).
    fn return_sequences(&self, name: &str) -> Result<bool> {
        let v = serde_json::to_value(&self.layer).expect("configs serialize");
        v["config"]["return_sequences"].as_bool().ok_or_else(|| {
            Error::invalid(format!(
                "layer '{name}' (Bidirectional) wraps a recurrent layer (one with \
                 return_sequences, e.g. LSTM), got {}",
                self.layer.class_name()
            ))
        })
    }
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const BIDIRECTIONAL: LayerType = LayerType::of::<BidirectionalConfig>("Bidirectional");

impl LayerKind for BidirectionalConfig {
    fn class_name(&self) -> &'static str {
        "Bidirectional"
    }
    fn base_name(&self) -> &'static str {
        "bidirectional"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The sequence, then optionally the initial states of both directions.
    fn takes_many_inputs(&self) -> bool {
        true
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        Ok(self.output_shapes(name, inputs)?.remove(0))
    }
    fn output_shapes<'a>(&self, name: &str, inputs: &[&'a [Dim]]) -> Result<Vec<Vec<Dim>>> {
        self.return_sequences(name)?;
        rank_is(
            name,
            "Bidirectional",
            inputs,
            2,
            "sequences [batch, steps, features]",
        )?;
        let states = &inputs[1..];
        if !states.len().is_multiple_of(2) {
            return Err(Error::invalid(format!(
                "layer '{name}' (Bidirectional): the initial states come in two equal \
                 halves (forward, then backward), got {}",
                states.len()
            )));
        }
        let (fwd, bwd) = states.split_at(states.len() / 2);
        let inner = self.inner_name();
        let with = |half: &[&'a [Dim]]| with_states(inputs[0], half);
        let mut outs = self
            .layer
            .output_shapes_of(&format!("{name}/forward_{inner}"), &with(fwd))?;
        self.layer
            .output_shapes_of(&format!("{name}/backward_{inner}"), &with(bwd))?;
        if self.merge_mode == MergeMode::Concat {
            let last = outs[0].last_mut().expect("a recurrent output has an axis");
            let width = last.get().expect("a recurrent layer's width is known");
            *last = Dim::known(2 * width);
        }
        // The states: the forward layer's, then the backward layer's (the same shapes).
        let states: Vec<Vec<Dim>> = outs[1..].to_vec();
        outs.extend(states);
        Ok(outs)
    }
    fn build<'a>(
        &self,
        name: String,
        inputs: &[&'a [Dim]],
        rng: &mut Rng,
    ) -> Result<Box<dyn Layer>> {
        let inner = self.inner_name();
        // Forward first, then backward: the order Keras draws their weights in. Each
        // copy is built for the sequence and its half of the initial states.
        let states = &inputs[1..];
        let (fwd, bwd) = states.split_at(states.len() / 2);
        let with = |half: &[&'a [Dim]]| with_states(inputs[0], half);
        let forward = self
            .layer
            .build_from(format!("{name}/forward_{inner}"), &with(fwd), rng)?;
        let backward =
            self.layer
                .build_from(format!("{name}/backward_{inner}"), &with(bwd), rng)?;
        Ok(Box::new(Bidirectional {
            return_sequences: self.return_sequences(&name)?,
            name,
            cfg: self.clone(),
            forward,
            backward,
        }))
    }
    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> f64 {
        2.0 * self.layer.flops(inputs, output)
    }
}

pub struct Bidirectional {
    pub name: String,
    pub cfg: BidirectionalConfig,
    pub forward: Box<dyn Layer>,
    pub backward: Box<dyn Layer>,
    return_sequences: bool,
}

/// The shapes one direction's copy reads: the sequence's, then its half of the states.
fn with_states<'a>(x: &'a [Dim], half: &[&'a [Dim]]) -> Vec<&'a [Dim]> {
    std::iter::once(x).chain(half.iter().copied()).collect()
}

/// `x` reversed along axis 1 (the steps).
fn reverse_steps(x: &Var) -> Result<Var> {
    let t = x.shape()[1];
    let rev = Tensor::from_vec((0..t).rev().map(|i| i as f32).collect(), &[t]);
    index::index_select(x, 1, &rev)
}

impl Layer for Bidirectional {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        self.forward_masked(x, None, ctx)
    }
    fn forward_masked(
        &mut self,
        x: &Var,
        mask: Option<&Tensor>,
        ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        Ok(self
            .forward_outputs(std::slice::from_ref(x), &[mask], ctx)?
            .remove(0))
    }
    fn forward_many_masked(
        &mut self,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        Ok(self.forward_outputs(xs, masks, ctx)?.remove(0))
    }
    fn forward_outputs(
        &mut self,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
    ) -> Result<Vec<Var>> {
        // xs: the sequence [N, T, F], then the initial states (forward half, backward
        // half); mask: the sequence's [N, T], 1 = real step.
        let context = |e: Error| e.context(&format!("layer '{}' (Bidirectional)", self.name));
        let Some((x, states)) = xs.split_first() else {
            return Err(context(Error::invalid("no input")));
        };
        let mask = masks.first().copied().flatten();
        if let Some(m) = mask {
            check_mask("mask", m, &x.shape()).map_err(context)?;
        }
        let (fwd, bwd) = states.split_at(states.len() / 2);
        let with = |first: &Var, half: &[Var]| -> Vec<Var> {
            std::iter::once(first.clone())
                .chain(half.iter().cloned())
                .collect()
        };
        // The backward copy reads the mask reversed exactly as it reads x reversed.
        let mask_r = mask.map(mask::reverse_steps).transpose().map_err(context)?;
        let mut outs_f = self.forward.forward_outputs(&with(x, fwd), &[mask], ctx)?;
        let xr = reverse_steps(x).map_err(context)?; // [N, T, F], step T-1 first
        let mut outs_b = self
            .backward
            .forward_outputs(&with(&xr, bwd), &[mask_r.as_ref()], ctx)?;
        let mut yf = outs_f.remove(0); // [N, T, U] or [N, U]
        let mut yb = outs_b.remove(0);
        if self.return_sequences {
            yb = reverse_steps(&yb).map_err(context)?; // step t of the input at t
            if let Some(m) = mask {
                // Keras' zero_output_for_mask: a masked step's carried h becomes zeros
                // (and passes no gradient), the same as the op's zero-output mode.
                let m =
                    Var::constant(
                        m.contiguous_f32()
                            .reshape(&[m.shape()[0], m.shape()[1], 1])?,
                    );
                yf = elementwise::mul_broadcast(&yf, &m).map_err(context)?;
                yb = elementwise::mul_broadcast(&yb, &m).map_err(context)?;
            }
        }
        let merged = match self.cfg.merge_mode {
            MergeMode::Concat => shape::concat(&[&yf, &yb], yf.shape().len() - 1),
            MergeMode::Sum => elementwise::add(&yf, &yb),
            MergeMode::Ave => elementwise::add(&yf, &yb).map(|s| elementwise::scale(&s, 0.5)),
            MergeMode::Mul => elementwise::mul(&yf, &yb),
        };
        // Then the final states: the forward layer's, then the backward layer's.
        Ok(std::iter::once(merged.map_err(context)?)
            .chain(outs_f)
            .chain(outs_b)
            .collect())
    }
    /// Keras: the input's mask with `return_sequences` (the steps stay), else none.
    fn compute_mask(&self, _x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(mask.filter(|_| self.return_sequences).cloned())
    }
    fn compute_mask_many(&self, xs: &[Var], masks: &[Option<&Tensor>]) -> Result<Option<Tensor>> {
        Ok(self.compute_masks(xs, masks)?.remove(0))
    }
    /// The output's mask as `compute_mask`; the states have none.
    fn compute_masks(&self, xs: &[Var], masks: &[Option<&Tensor>]) -> Result<Vec<Option<Tensor>>> {
        let mask = masks.first().copied().flatten();
        let states = self.forward.compute_masks(&xs[..1], &[None])?.len() - 1;
        let mut out = vec![mask.filter(|_| self.return_sequences).cloned()];
        out.extend((0..2 * states).map(|_| None));
        Ok(out)
    }
    fn params(&self) -> Vec<Param> {
        let mut p = self.forward.params();
        p.extend(self.backward.params());
        p
    }
    fn config(&self) -> LayerConfig {
        BidirectionalConfig {
            name: Some(self.name.clone()),
            ..self.cfg.clone()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::LSTMConfig;

    fn parse(text: &str) -> std::result::Result<LayerConfig, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn config_shapes_names_and_errors() {
        let c = parse(
            r#"{"class_name": "Bidirectional", "config": {"layer": {"class_name": "LSTM",
                "config": {"units": 3}}}}"#,
        )
        .unwrap();
        let seq = [Dim::NONE, Dim::known(5)];
        assert_eq!(c.output_shape("b", &seq).unwrap(), [Dim::known(6)]);
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""merge_mode":"concat""#), "{json}");
        assert_eq!(parse(&json).unwrap(), c);
        let sum = LayerConfig::from(
            BidirectionalConfig::new(LSTMConfig::new(3).return_sequences(true))
                .merge_mode(MergeMode::Sum),
        );
        assert_eq!(
            sum.output_shape("b", &seq).unwrap(),
            [Dim::NONE, Dim::known(3)]
        );

        let layer = c
            .build("bidirectional".into(), &seq, &mut Rng::new(1))
            .unwrap();
        let p = layer.params();
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bidirectional/forward_lstm/kernel",
                "bidirectional/forward_lstm/recurrent_kernel",
                "bidirectional/forward_lstm/bias",
                "bidirectional/backward_lstm/kernel",
                "bidirectional/backward_lstm/recurrent_kernel",
                "bidirectional/backward_lstm/bias",
            ]
        );
        let count: usize = p.iter().map(|p| p.var.value().numel()).sum();
        assert_eq!(count, 2 * 4 * (5 * 3 + 3 * 3 + 3));
        // The two directions start from different weights.
        assert_ne!(p[0].var.value().to_f32_vec(), p[3].var.value().to_f32_vec());

        let dense = parse(
            r#"{"class_name": "Bidirectional", "config": {"layer": {"class_name": "Dense",
                "config": {"units": 3}}}}"#,
        )
        .unwrap();
        let e = dense.output_shape("b", &seq).unwrap_err().to_string();
        assert!(
            e.contains("layer 'b' (Bidirectional) wraps a recurrent layer")
                && e.contains("got Dense"),
            "{e}"
        );
        let e = parse(
            r#"{"class_name": "Bidirectional", "config": {"layer": {"class_name": "LSTM",
                "config": {"units": 3}}, "merge_mode": "max"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown variant `max`") && e.contains("`ave`"),
            "{e}"
        );
        for bad in [
            r#"{"layer": {"class_name": "LSTM", "config": {"units": 3}}, "merge_mode": null}"#,
            r#"{"layer": {"class_name": "LSTM", "config": {"units": 3}}, "backward_layer": {}}"#,
            r#"{"merge_mode": "sum"}"#,
        ] {
            let text = format!(r#"{{"class_name": "Bidirectional", "config": {bad}}}"#);
            assert!(parse(&text).is_err(), "{bad}");
        }
        let e = c
            .output_shape("b", &[Dim::known(5)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("(Bidirectional) expects sequences"), "{e}");
    }
}
