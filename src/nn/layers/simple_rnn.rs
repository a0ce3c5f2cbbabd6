//! `SimpleRNN`: Keras' fully-connected recurrent layer over `[batch, steps, features]`
//! sequences, the whole sequence as one op (`ops::simple_rnn`, backward through time
//! hand-written there).
//!
//! # Shapes
//! input `[N, T, F]` (`T` may be unknown, `None`: each batch may have its own length),
//! kernel `[F, U]`, recurrent_kernel `[U, U]`, bias `[U]` (Keras' layouts, so saved
//! weights read as Keras writes them). Output `[N, T, U]` with `return_sequences`, else
//! the last step's `[N, U]`; with `return_state` also the final h `[N, U]`. The state
//! starts at zero for every batch, or at the initial state given as a second input
//! (Keras' `initial_state=[h0]`; `call_outputs(&[&x, &h0])`). One step:
//! `h' = tanh(x W + h R + b)`.
//!
//! Initial weights as Keras: kernel glorot_uniform, recurrent_kernel orthogonal, bias
//! zeros. Parameters: `F*U + U*U + U` (without bias `F*U + U*U`).
//!
//! Masks (Keras 3): a masked step leaves h unchanged, so the last output is h after
//! the last real step (the initial state, zeros by default, for a sample with none) and, with `return_sequences`, a
//! masked step outputs the carried h. The op runs the real steps only (packed), so
//! padding costs nothing. The output keeps the input's mask with `return_sequences`,
//! else has none (Keras' `compute_mask`).
//!
//! `dropout` (Keras'): while training, one mask of input features per sample, the
//! same at every step; `recurrent_dropout`: one mask of h per sample, the same at every
//! step; inference is unaffected (see `recurrent.rs`).
//!
//! Not supported yet (the JSON fields are refused like any unknown field, never
//! ignored): `go_backwards`, `stateful`; activations other than Keras' default tanh are refused with a message.

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
fn orthogonal() -> Initializer {
    Initializer::Orthogonal
}

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleRNNConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Size of the hidden state (`U`).
    pub units: usize,
    /// Only Keras' default `tanh` (the op's backward uses `1 - h^2`).
    #[serde(default = "tanh")]
    pub activation: Activation,
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
    /// before the recurrent kernel, one mask per sample for all steps. In [0, 1).
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
}

impl SimpleRNNConfig {
    pub fn new(units: usize) -> SimpleRNNConfig {
        SimpleRNNConfig {
            name: None,
            units,
            activation: Activation::Tanh,
            use_bias: true,
            return_sequences: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            return_state: false,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            bias_initializer: Initializer::Zeros,
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
            class: "SimpleRNN",
            units: self.units,
            states: 1,
            gates: 1,
            return_sequences: self.return_sequences,
            return_state: self.return_state,
            dropout: self.dropout,
            recurrent_dropout: self.recurrent_dropout,
        }
    }
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const SIMPLE_RNN_LAYER: LayerType = LayerType::of::<SimpleRNNConfig>("SimpleRNN");

impl LayerKind for SimpleRNNConfig {
    fn class_name(&self) -> &'static str {
        "SimpleRNN"
    }
    fn base_name(&self) -> &'static str {
        "simple_rnn"
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
        if self.activation != Activation::Tanh {
            return Err(Error::invalid(format!(
                "layer '{name}' (SimpleRNN): only activation \"tanh\" (Keras' default) is \
                 supported, got {:?}",
                self.activation
            )));
        }
        Ok(outs)
    }
    fn build(&self, name: String, inputs: &[&[Dim]], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let f = inputs[0][1].get().expect("checked");
        let u = self.units;
        super::limits::check_weights(&name, "SimpleRNN", &[f, u])?;
        super::limits::check_weights(&name, "SimpleRNN", &[u, u])?;
        let kernel = Var::parameter(self.kernel_initializer.init(&[f, u], rng));
        let recurrent_kernel = Var::parameter(self.recurrent_initializer.init(&[u, u], rng));
        let bias = self
            .use_bias
            .then(|| Var::parameter(self.bias_initializer.init(&[u], rng)));
        let config = SimpleRNNConfig {
            name: Some(name.clone()),
            ..self.clone()
        }
        .into();
        Ok(Box::new(RecurrentLayer::new(
            name,
            config,
            self.recurrent(),
            Cell::SimpleRnn,
            (kernel, recurrent_kernel, bias),
        )))
    }
    fn flops(&self, inputs: &[&[usize]], _output: &[usize]) -> f64 {
        let (t, f, u) = (inputs[0][0], inputs[0][1], self.units);
        // Two GEMMs per step; tanh is O(U) per step.
        2.0 * (t * u * (f + u)) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Tensor;
    use crate::nn::layers::{ForwardCtx, LayerConfig};

    #[test]
    fn config_defaults_shapes_init_and_errors() {
        let c: LayerConfig = serde_json::from_str(
            r#"{"class_name": "SimpleRNN", "config": {"units": 3, "activation": "tanh"}}"#,
        )
        .unwrap();
        let seq = [Dim::NONE, Dim::known(5)];
        assert_eq!(c.output_shape("l", &seq).unwrap(), [Dim::known(3)]);
        let s = LayerConfig::from(SimpleRNNConfig::new(3).return_sequences(true));
        assert_eq!(
            s.output_shape("l", &seq).unwrap(),
            [Dim::NONE, Dim::known(3)]
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains(r#""recurrent_initializer":"orthogonal""#),
            "{json}"
        );
        let mut rng = Rng::new(1);
        let layer = c.build("simple_rnn".into(), &seq, &mut rng).unwrap();
        let p = layer.params();
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "simple_rnn/kernel",
                "simple_rnn/recurrent_kernel",
                "simple_rnn/bias"
            ]
        );
        assert_eq!(p[0].var.shape(), [5, 3]);
        assert_eq!(p[1].var.shape(), [3, 3]);
        assert_eq!(p[2].var.shape(), [3]);
        assert!(p[2].var.value().to_f32_vec().iter().all(|&b| b == 0.0));
        // Keras' summary count: F*U + U*U + U.
        let count: usize = p.iter().map(|p| p.var.value().numel()).sum();
        assert_eq!(count, 5 * 3 + 3 * 3 + 3);

        let err =
            |c: LayerConfig, input: &[Dim]| c.output_shape("l", input).unwrap_err().to_string();
        let e = err(SimpleRNNConfig::new(0).into(), &seq);
        assert!(
            e.contains("layer 'l' (SimpleRNN): units (0) must be positive"),
            "{e}"
        );
        let e = err(SimpleRNNConfig::new(2).into(), &[Dim::known(5)]);
        assert!(
            e.contains("layer 'l' (SimpleRNN) expects sequences [batch, steps, features]"),
            "{e}"
        );
        let e = err(SimpleRNNConfig::new(2).into(), &[Dim::known(5), Dim::NONE]);
        assert!(e.contains("number of features"), "{e}");
        for bad in [
            r#"{"units": 2, "go_backwards": true}"#,
            r#"{"return_sequences": true}"#,
        ] {
            let text = format!(r#"{{"class_name": "SimpleRNN", "config": {bad}}}"#);
            assert!(serde_json::from_str::<LayerConfig>(&text).is_err(), "{bad}");
        }
        let relu: LayerConfig = serde_json::from_str(
            r#"{"class_name": "SimpleRNN", "config": {"units": 2, "activation": "relu"}}"#,
        )
        .unwrap();
        assert!(err(relu, &seq).contains("only activation \"tanh\""));
    }

    /// Inside `Bidirectional` (which needs a `return_sequences` flag): both halves built,
    /// output `[2U]` per step.
    #[test]
    fn works_in_bidirectional() {
        let c: LayerConfig = serde_json::from_str(
            r#"{"class_name": "Bidirectional", "config": {"layer": {"class_name": "SimpleRNN",
                "config": {"units": 3, "return_sequences": true}}}}"#,
        )
        .unwrap();
        let seq = [Dim::NONE, Dim::known(4)];
        assert_eq!(
            c.output_shape("b", &seq).unwrap(),
            [Dim::NONE, Dim::known(6)]
        );
        let mut rng = Rng::new(2);
        let mut layer = c.build("b".into(), &seq, &mut rng).unwrap();
        let count: usize = layer.params().iter().map(|p| p.var.value().numel()).sum();
        assert_eq!(count, 2 * (4 * 3 + 3 * 3 + 3));
        let x = Var::constant(Tensor::ones(&[2, 5, 4]));
        let mask = Tensor::from_vec(
            vec![1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            &[2, 5],
        );
        let mut ctx = ForwardCtx {
            training: false,
            rng: &mut rng,
            output_logits: false,
        };
        let y = layer.forward_masked(&x, Some(&mask), &mut ctx).unwrap();
        assert_eq!(y.shape(), [2, 5, 6]);
        // Bidirectional zeroes masked steps of both halves (Keras' zero_output_for_mask).
        let v = y.value().to_f32_vec();
        assert!(v[3 * 6..5 * 6].iter().all(|&a| a == 0.0));
    }
}
