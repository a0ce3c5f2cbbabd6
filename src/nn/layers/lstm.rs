//! `LSTM`: Keras' long short-term memory layer over `[batch, steps, features]`
//! sequences, the whole sequence as one op (`ops::lstm`, backward through time
//! hand-written there).
//!
//! # Shapes
//! input `[N, T, F]` (`T` may be unknown, `None`: each batch may have its own length),
//! kernel `[F, 4U]`, recurrent_kernel `[U, 4U]`, bias `[4U]`, gate column blocks in
//! Keras' order i, f, c, o (so saved weights read as Keras writes them; PyTorch's
//! `weight_ih` is the kernel transposed, its gates i, f, g, o in the same order, and its
//! two biases sum to this one). Output `[N, T, U]` with `return_sequences`, else the
//! last step's `[N, U]`; with `return_state` also the final h and c, `[N, U]` each.
//! The state starts at zero for every batch, or at the initial states given as two
//! more inputs (Keras' `initial_state=[h0, c0]`; `call_outputs(&[&x, &h0, &c0])`).
//!
//! Initial weights as Keras: kernel glorot_uniform, recurrent_kernel orthogonal, bias
//! zeros with the forget gate's block set to 1 (`unit_forget_bias`).
//! Parameters: `4 * (F*U + U*U + U)` (Keras' count; without bias `4 * (F*U + U*U)`).
//!
//! Masks (Keras 3): a masked step leaves h and c unchanged, so the last output is h after
//! the last real step (the initial state, zeros by default, for a sample with none) and, with `return_sequences`, a
//! masked step outputs the carried h. The op runs the real steps only (packed, as
//! PyTorch's packed sequences), so padding costs nothing. The output keeps the input's
//! mask with `return_sequences`, else has none (Keras' `compute_mask`).
//!
//! `dropout` (Keras'): while training, one mask of input features per sample, the
//! same at every step; `recurrent_dropout`: one mask of h per sample and gate, the same
//! at every step; inference is unaffected (see `recurrent.rs`).
//!
//! Not supported yet (the JSON fields are refused like any unknown field, never
//! ignored): `go_backwards`, `stateful`; activations other than tanh / sigmoid.

use super::dims::Dim;
use super::recurrent::{Recurrent, RecurrentLayer};
use super::{Activation, Initializer, Layer, LayerKind, LayerType};
use crate::engine::{Rng, Tensor, Var};
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
pub struct LSTMConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Size of the hidden and cell state (`U`).
    pub units: usize,
    /// Cell candidate and output activation: only Keras' default `tanh`.
    #[serde(default = "tanh")]
    pub activation: Activation,
    /// Gate activation: only Keras' default `sigmoid`.
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
    /// Also return the final h and c (Keras' `return_state`): three outputs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub return_state: bool,
    #[serde(default)]
    pub kernel_initializer: Initializer,
    #[serde(default = "orthogonal")]
    pub recurrent_initializer: Initializer,
    #[serde(default = "Initializer::zeros")]
    pub bias_initializer: Initializer,
    /// The forget gate's bias starts at 1 (Jozefowicz et al., 2015), as in Keras.
    #[serde(default = "super::dense::yes")]
    pub unit_forget_bias: bool,
}

impl LSTMConfig {
    pub fn new(units: usize) -> LSTMConfig {
        LSTMConfig {
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
            unit_forget_bias: true,
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
    /// Keras' `return_state`: the layer returns `[output, h, c]` (`call_outputs`).
    pub fn return_state(mut self, r: bool) -> Self {
        self.return_state = r;
        self
    }
    pub fn use_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }
    pub fn unit_forget_bias(mut self, b: bool) -> Self {
        self.unit_forget_bias = b;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.to_string());
        self
    }

    fn recurrent(&self) -> Recurrent {
        Recurrent {
            class: "LSTM",
            units: self.units,
            states: 2,
            gates: 4,
            return_sequences: self.return_sequences,
            return_state: self.return_state,
            dropout: self.dropout,
            recurrent_dropout: self.recurrent_dropout,
        }
    }
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const LSTM_LAYER: LayerType = LayerType::of::<LSTMConfig>("LSTM");

impl LayerKind for LSTMConfig {
    fn class_name(&self) -> &'static str {
        "LSTM"
    }
    fn base_name(&self) -> &'static str {
        "lstm"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The sequence, then optionally the initial h and c.
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
                "layer '{name}' (LSTM): only activation \"tanh\" and recurrent_activation \
                 \"sigmoid\" are supported, got {:?} and {:?}",
                self.activation, self.recurrent_activation
            )));
        }
        Ok(outs)
    }
    fn build(&self, name: String, inputs: &[&[Dim]], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let f = inputs[0][1].get().expect("checked");
        let u = self.units;
        let g = u.checked_mul(4).ok_or_else(|| {
            Error::invalid(format!("layer '{name}' (LSTM): units ({u}) is too large"))
        })?;
        super::limits::check_weights(&name, "LSTM", &[f, g])?;
        super::limits::check_weights(&name, "LSTM", &[u, g])?;
        let kernel = Var::parameter(self.kernel_initializer.init(&[f, g], rng));
        let recurrent_kernel = Var::parameter(self.recurrent_initializer.init(&[u, g], rng));
        let bias = self.use_bias.then(|| {
            let mut b = self.bias_initializer.init(&[g], rng).to_f32_vec();
            if self.unit_forget_bias {
                b[u..2 * u].fill(1.0);
            }
            Var::parameter(Tensor::from_vec(b, &[g]))
        });
        let config = LSTMConfig {
            name: Some(name.clone()),
            ..self.clone()
        }
        .into();
        Ok(Box::new(RecurrentLayer::new(
            name,
            config,
            self.recurrent(),
            Cell::Lstm,
            (kernel, recurrent_kernel, bias),
        )))
    }
    fn flops(&self, inputs: &[&[usize]], _output: &[usize]) -> f64 {
        let (t, f, u) = (inputs[0][0], inputs[0][1], self.units);
        // Two GEMMs per step; the gates are O(U) per step.
        2.0 * (t * 4 * u * (f + u)) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::LayerConfig;

    #[test]
    fn config_defaults_shapes_init_and_errors() {
        let c: LayerConfig = serde_json::from_str(
            r#"{"class_name": "LSTM", "config": {"units": 3, "activation": "tanh"}}"#,
        )
        .unwrap();
        let seq = [Dim::NONE, Dim::known(5)];
        assert_eq!(c.output_shape("l", &seq).unwrap(), [Dim::known(3)]);
        let s = LayerConfig::from(LSTMConfig::new(3).return_sequences(true));
        assert_eq!(
            s.output_shape("l", &seq).unwrap(),
            [Dim::NONE, Dim::known(3)]
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains(r#""recurrent_initializer":"orthogonal""#)
                && json.contains(r#""unit_forget_bias":true"#),
            "{json}"
        );
        let mut rng = Rng::new(1);
        let layer = c.build("lstm".into(), &seq, &mut rng).unwrap();
        let p = layer.params();
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["lstm/kernel", "lstm/recurrent_kernel", "lstm/bias"]);
        assert_eq!(p[0].var.shape(), [5, 12]);
        assert_eq!(p[1].var.shape(), [3, 12]);
        let b = p[2].var.value().to_f32_vec();
        assert_eq!(b, [0., 0., 0., 1., 1., 1., 0., 0., 0., 0., 0., 0.]);
        let count: usize = p.iter().map(|p| p.var.value().numel()).sum();
        assert_eq!(count, 4 * (5 * 3 + 3 * 3 + 3));

        let err =
            |c: LayerConfig, input: &[Dim]| c.output_shape("l", input).unwrap_err().to_string();
        let e = err(LSTMConfig::new(0).into(), &seq);
        assert!(
            e.contains("layer 'l' (LSTM): units (0) must be positive"),
            "{e}"
        );
        let e = err(LSTMConfig::new(2).into(), &[Dim::known(5)]);
        assert!(
            e.contains("layer 'l' (LSTM) expects sequences [batch, steps, features]"),
            "{e}"
        );
        let e = err(LSTMConfig::new(2).into(), &[Dim::known(5), Dim::NONE]);
        assert!(e.contains("number of features"), "{e}");
        for bad in [
            r#"{"return_sequences": true}"#,
            r#"{"units": 2, "go_backwards": true}"#,
        ] {
            let text = format!(r#"{{"class_name": "LSTM", "config": {bad}}}"#);
            assert!(serde_json::from_str::<LayerConfig>(&text).is_err(), "{bad}");
        }
        let relu: LayerConfig = serde_json::from_str(
            r#"{"class_name": "LSTM", "config": {"units": 2, "activation": "relu"}}"#,
        )
        .unwrap();
        assert!(err(relu, &seq).contains("only activation \"tanh\""));
    }
}
