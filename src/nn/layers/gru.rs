//! `GRU`: Keras' gated recurrent unit layer over `[batch, steps, features]` sequences,
//! the whole sequence as one op (`ops::gru`, backward through time hand-written there).
//! Only Keras' default `reset_after=True` (the cuDNN-compatible form, PyTorch's):
//! the reset gate scales the recurrent term of the candidate, bias included.
//!
//! # Shapes
//! input `[N, T, F]` (`T` may be unknown, `None`: each batch may have its own length),
//! kernel `[F, 3U]`, recurrent_kernel `[U, 3U]`, bias `[2, 3U]` (row 0 the input bias,
//! row 1 the recurrent bias), gate column blocks in Keras' order z (update), r (reset),
//! h (candidate), so saved weights read as Keras writes them. Output `[N, T, U]` with
//! `return_sequences`, else the last step's `[N, U]`; with `return_state` also the final
//! h `[N, U]`. The state starts at zero for every batch, or at the initial state given
//! as a second input (Keras' `initial_state=[h0]`; `call_outputs(&[&x, &h0])`). One step: `z = sigmoid(x W_z + b_iz + h U_z + b_hz)`, `r` likewise,
//! `hh = tanh(x W_h + b_ih + r * (h U_h + b_hh))`, `h' = z * h + (1 - z) * hh`.
//!
//! # PyTorch's `torch.nn.GRU`
//! Same equations with `n` for `hh` and `z` on the other side (`h' = (1 - z) * n + z * h`
//! is the same thing), but its gate blocks are ordered r, z, n and its weights are
//! transposed. From Keras' layout (blocks `[z | r | h]` along the 3U axis):
//! `weight_ih_l0 = kernel[:, [r, z, h]].T`, `weight_hh_l0 = recurrent_kernel[:, [r, z,
//! h]].T`, `bias_ih_l0 = bias[0][[r, z, h]]`, `bias_hh_l0 = bias[1][[r, z, h]]`: swap the
//! first two blocks, keep the third (`scripts/golden/gru.py` does this).
//!
//! Initial weights as Keras: kernel glorot_uniform, recurrent_kernel orthogonal, bias
//! zeros. Parameters: `3 * (F*U + U*U + 2U)` (Keras' count with `reset_after`; without
//! bias `3 * (F*U + U*U)`).
//!
//! Masks (Keras 3): a masked step leaves h unchanged, so the last output is h after
//! the last real step (the initial state, zeros by default, for a sample with none) and, with `return_sequences`, a
//! masked step outputs the carried h. The op runs the real steps only (packed, as
//! PyTorch's packed sequences), so padding costs nothing. The output keeps the input's
//! mask with `return_sequences`, else has none (Keras' `compute_mask`).
//!
//! `dropout` (Keras'): while training, one mask of input features per sample, the
//! same at every step; `recurrent_dropout`: one mask of h per sample and gate, the same
//! at every step (the final `z * h` uses h undropped, as Keras); inference is
//! unaffected (see `recurrent.rs`).
//!
//! Not supported yet (the JSON fields are refused like any unknown field, never
//! ignored): `go_backwards`, `stateful`; `reset_after=False` and activations other than tanh / sigmoid are
//! refused with a message.

use super::dims::Dim;
use super::recurrent::{Recurrent, RecurrentLayer};
use super::{Activation, Initializer, Layer, LayerKind, LayerType};
use crate::engine::{Rng, Var};
use crate::error::{Error, Result};
use crate::ops::rnn_driver::Cell;
use serde::{Deserialize, Serialize};

fn tanh() -> Activation {
    Activation::Tanh
}
fn sigmoid() -> Activation {
    Activation::Sigmoid
}
fn orthogonal() -> Initializer {
    Initializer::Orthogonal
}

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GRUConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Size of the hidden state (`U`).
    pub units: usize,
    /// Candidate activation: only Keras' default `tanh`.
    #[serde(default = "tanh")]
    pub activation: Activation,
    /// Update and reset gate activation: only Keras' default `sigmoid`.
    #[serde(default = "sigmoid")]
    pub recurrent_activation: Activation,
    #[serde(default = "super::dense::yes")]
    pub use_bias: bool,
    /// Every step's output `[T, U]` (true) or only the last step's `[U]` (false).
    #[serde(default)]
    pub return_sequences: bool,
    /// Keras' `dropout`: while training, the fraction of input features dropped, one
    /// mask per sample for all steps (`ops::dropout::dropout_steps`). In [0, 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropout: f32,
    /// Keras' `recurrent_dropout`: while training, the fraction of `h_{t-1}` dropped
    /// before the recurrent kernel, one mask per sample and gate for all steps. In [0, 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recurrent_dropout: f32,
    /// Also return the final h (Keras' `return_state`): two outputs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub return_state: bool,
    #[serde(default)]
    pub kernel_initializer: Initializer,
    #[serde(default = "orthogonal")]
    pub recurrent_initializer: Initializer,
    #[serde(default = "Initializer::zeros")]
    pub bias_initializer: Initializer,
    /// The reset gate applied after the recurrent matrix product (Keras' default, two
    /// bias rows). Only `true` is supported.
    #[serde(default = "super::dense::yes")]
    pub reset_after: bool,
}

impl GRUConfig {
    pub fn new(units: usize) -> GRUConfig {
        GRUConfig {
            name: None,
            units,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            use_bias: true,
            return_sequences: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            return_state: false,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            bias_initializer: Initializer::Zeros,
            reset_after: true,
        }
    }
    pub fn return_sequences(mut self, r: bool) -> Self {
        self.return_sequences = r;
        self
    }
    /// Keras' `dropout` (of the inputs, the same features at every step).
    pub fn dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }
    /// Keras' `recurrent_dropout` (of h, the same units at every step).
    pub fn recurrent_dropout(mut self, rate: f32) -> Self {
        self.recurrent_dropout = rate;
        self
    }
    /// Keras' `return_state`: the layer returns `[output, h]` (`call_outputs`).
    pub fn return_state(mut self, r: bool) -> Self {
        self.return_state = r;
        self
    }
    pub fn use_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.to_string());
        self
    }

    fn recurrent(&self) -> Recurrent {
        Recurrent {
            class: "GRU",
            units: self.units,
            states: 1,
            gates: 3,
            return_sequences: self.return_sequences,
            return_state: self.return_state,
            dropout: self.dropout,
            recurrent_dropout: self.recurrent_dropout,
        }
    }
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const GRU_LAYER: LayerType = LayerType::of::<GRUConfig>("GRU");

impl LayerKind for GRUConfig {
    fn class_name(&self) -> &'static str {
        "GRU"
    }
    fn base_name(&self) -> &'static str {
        "gru"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The sequence, then optionally the initial h.
    fn takes_many_inputs(&self) -> bool {
        true
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        Ok(self.output_shapes(name, inputs)?.remove(0))
    }
    fn output_shapes(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Vec<Dim>>> {
        let outs = self.recurrent().output_shapes(name, inputs)?;
        if self.activation != Activation::Tanh || self.recurrent_activation != Activation::Sigmoid {
            return Err(Error::invalid(format!(
                "layer '{name}' (GRU): only activation \"tanh\" and recurrent_activation \
                 \"sigmoid\" are supported, got {:?} and {:?}",
                self.activation, self.recurrent_activation
            )));
        }
        if !self.reset_after {
            return Err(Error::invalid(format!(
                "layer '{name}' (GRU): only reset_after=true (Keras' default, the cuDNN and \
                 PyTorch form, bias [2, 3 * units]) is supported, got reset_after=false"
            )));
        }
        Ok(outs)
    }
    fn build(&self, name: String, inputs: &[&[Dim]], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let f = inputs[0][1].get().expect("checked");
        let u = self.units;
        let g = u.checked_mul(3).ok_or_else(|| {
            Error::invalid(format!("layer '{name}' (GRU): units ({u}) is too large"))
        })?;
        super::limits::check_weights(&name, "GRU", &[f, g])?;
        super::limits::check_weights(&name, "GRU", &[u, g])?;
        let kernel = Var::parameter(self.kernel_initializer.init(&[f, g], rng));
        let recurrent_kernel = Var::parameter(self.recurrent_initializer.init(&[u, g], rng));
        let bias = self
            .use_bias
            .then(|| Var::parameter(self.bias_initializer.init(&[2, g], rng)));
        let config = GRUConfig {
            name: Some(name.clone()),
            ..self.clone()
        }
        .into();
        Ok(Box::new(RecurrentLayer::new(
            name,
            config,
            self.recurrent(),
            Cell::Gru,
            (kernel, recurrent_kernel, bias),
        )))
    }
    fn flops(&self, inputs: &[&[usize]], _output: &[usize]) -> f64 {
        let (t, f, u) = (inputs[0][0], inputs[0][1], self.units);
        // Two GEMMs per step; the gates are O(U) per step.
        2.0 * (t * 3 * u * (f + u)) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::LayerConfig;

    #[test]
    fn config_defaults_shapes_init_and_errors() {
        let c: LayerConfig = serde_json::from_str(
            r#"{"class_name": "GRU", "config": {"units": 3, "activation": "tanh"}}"#,
        )
        .unwrap();
        let seq = [Dim::NONE, Dim::known(5)];
        assert_eq!(c.output_shape("l", &seq).unwrap(), [Dim::known(3)]);
        let s = LayerConfig::from(GRUConfig::new(3).return_sequences(true));
        assert_eq!(
            s.output_shape("l", &seq).unwrap(),
            [Dim::NONE, Dim::known(3)]
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains(r#""recurrent_initializer":"orthogonal""#)
                && json.contains(r#""reset_after":true"#),
            "{json}"
        );
        let mut rng = Rng::new(1);
        let layer = c.build("gru".into(), &seq, &mut rng).unwrap();
        let p = layer.params();
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["gru/kernel", "gru/recurrent_kernel", "gru/bias"]);
        assert_eq!(p[0].var.shape(), [5, 9]);
        assert_eq!(p[1].var.shape(), [3, 9]);
        assert_eq!(p[2].var.shape(), [2, 9]);
        assert!(p[2].var.value().to_f32_vec().iter().all(|&b| b == 0.0));
        let count: usize = p.iter().map(|p| p.var.value().numel()).sum();
        assert_eq!(count, 3 * (5 * 3 + 3 * 3 + 2 * 3));

        let err =
            |c: LayerConfig, input: &[Dim]| c.output_shape("l", input).unwrap_err().to_string();
        let e = err(GRUConfig::new(0).into(), &seq);
        assert!(
            e.contains("layer 'l' (GRU): units (0) must be positive"),
            "{e}"
        );
        let e = err(GRUConfig::new(2).into(), &[Dim::known(5)]);
        assert!(
            e.contains("layer 'l' (GRU) expects sequences [batch, steps, features]"),
            "{e}"
        );
        let e = err(GRUConfig::new(2).into(), &[Dim::known(5), Dim::NONE]);
        assert!(e.contains("number of features"), "{e}");
        for bad in [
            r#"{"units": 2, "unit_forget_bias": true}"#,
            r#"{"return_sequences": true}"#,
        ] {
            let text = format!(r#"{{"class_name": "GRU", "config": {bad}}}"#);
            assert!(serde_json::from_str::<LayerConfig>(&text).is_err(), "{bad}");
        }
        let parse = |cfg: &str| -> LayerConfig {
            serde_json::from_str(&format!(r#"{{"class_name": "GRU", "config": {cfg}}}"#)).unwrap()
        };
        let relu = parse(r#"{"units": 2, "activation": "relu"}"#);
        assert!(err(relu, &seq).contains("only activation \"tanh\""));
        let before = parse(r#"{"units": 2, "reset_after": false}"#);
        let e = err(before, &seq);
        assert!(
            e.contains("layer 'l' (GRU): only reset_after=true")
                && e.contains("got reset_after=false"),
            "{e}"
        );
    }
}
