//! `Conv1D`: `activation(conv1d(x, kernel) + bias)` on channels-last sequences.
//!
//! # Shapes
//! input `[N, T, C]`, kernel `[K, C, filters]` (Keras' layout, so saved weights read as
//! Keras writes them; PyTorch's `Conv1d.weight` is `[filters, C, K]`, the permutation
//! `(2, 1, 0)` of it), bias `[filters]`, output `[N, T', filters]`. `T` may be unknown
//! (`None`): padding and `T'` are worked out per batch, and a kernel longer than the
//! (padded) sequence is an error naming the layer.
//!
//! Padding: `"valid"` none, so `T' = (T - (K-1)*dilation - 1) / stride + 1`; `"same"`
//! TensorFlow's rule (`T' = ceil(T / stride)`, the odd cell after); `"causal"` pads
//! `(K-1)*dilation` zeros before the sequence only, so step `t` sees no later step.
//!
//! Masks: dropped, and padded steps are convolved like real ones (Keras 3's `Conv1D`
//! does not support masking; it warns and destroys the mask).
//!
//! No kernel of its own: the forward is the conv2d op on the sequence seen as a one-row
//! image, `x [N, T, C] -> [N, C, 1, T]` and the kernel `[K, C, F] -> [F, C, 1, K]`, so it
//! runs the conv2d fast paths (and their backward kernels) with `(1, K)` windows, stride
//! `(1, stride)` and left/right padding. The two permutes cost one copy of the input and
//! output each; the kernel's permute is its size.

use super::conv2d::window_axis;
use super::dims::{batch_shape_str, Dim};
use super::registry::{needs_known, rank_is};
use super::{Activation, ForwardCtx, Initializer, Layer, LayerConfig, LayerKind, LayerType};
use super::{Param, Regularizer};
use crate::engine::{Rng, Var};
use crate::error::{Error, Result};
use crate::ops::conv2d::{conv2d, conv2d_relu, Conv2dSpec};
use crate::ops::permute::permute;
use crate::ops::shape::reshape;
use crate::ops::{window_out_len, Padding2d};
use serde::{Deserialize, Serialize};

/// One integer that reads from JSON as `3` or `[3]` and is written `[3]` (Keras' tuple
/// form for 1-D layers).
pub mod single {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrList {
        One(usize),
        List([usize; 1]),
    }

    pub fn serialize<S: Serializer>(v: &usize, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq([*v])
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        Ok(match OneOrList::deserialize(d)? {
            OneOrList::One(a) | OneOrList::List([a]) => a,
        })
    }

    /// The same for an optional integer (`null` is `None`).
    pub mod option {
        use super::OneOrList;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &Option<usize>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.collect_seq([*v]),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
            Ok(match Option::<OneOrList>::deserialize(d)? {
                Some(OneOrList::One(a) | OneOrList::List([a])) => Some(a),
                None => None,
            })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Padding1D {
    #[default]
    Valid,
    Same,
    /// Zeros before the sequence only (`(K-1)*dilation` of them): WaveNet-style.
    Causal,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv1DConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub filters: usize,
    #[serde(with = "single")]
    pub kernel_size: usize,
    #[serde(with = "single", default = "one")]
    pub strides: usize,
    #[serde(default)]
    pub padding: Padding1D,
    #[serde(with = "single", default = "one")]
    pub dilation_rate: usize,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default = "super::dense::yes")]
    pub use_bias: bool,
    #[serde(default)]
    pub kernel_initializer: Initializer,
    #[serde(default = "Initializer::zeros")]
    pub bias_initializer: Initializer,
    #[serde(default)]
    pub kernel_regularizer: Option<Regularizer>,
}

impl Conv1DConfig {
    pub fn new(filters: usize, kernel_size: usize) -> Conv1DConfig {
        Conv1DConfig {
            name: None,
            filters,
            kernel_size,
            strides: 1,
            padding: Padding1D::Valid,
            dilation_rate: 1,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
        }
    }
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    pub fn strides(mut self, s: usize) -> Self {
        self.strides = s;
        self
    }
    pub fn padding(mut self, p: Padding1D) -> Self {
        self.padding = p;
        self
    }
    pub fn dilation_rate(mut self, d: usize) -> Self {
        self.dilation_rate = d;
        self
    }
    pub fn kernel_initializer(mut self, i: Initializer) -> Self {
        self.kernel_initializer = i;
        self
    }
    pub fn kernel_regularizer(mut self, r: Regularizer) -> Self {
        self.kernel_regularizer = Some(r);
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

    /// Zeros before and after a sequence of `t` steps. Saturating: an absurd size gives
    /// a padding that `window_out_len`'s checked sums refuse.
    pub fn pads(&self, t: usize) -> (usize, usize) {
        match self.padding {
            Padding1D::Valid => (0, 0),
            Padding1D::Same => {
                Padding2d::same_1d(t, self.kernel_size, self.strides, self.dilation_rate)
            }
            Padding1D::Causal => (
                self.kernel_size
                    .saturating_sub(1)
                    .saturating_mul(self.dilation_rate),
                0,
            ),
        }
    }

    /// Output steps for `t` input steps, or `None` if the kernel does not fit.
    pub fn out_len(&self, t: usize) -> Option<usize> {
        let (before, after) = self.pads(t);
        window_out_len(
            t,
            before,
            after,
            self.kernel_size,
            self.strides,
            self.dilation_rate,
        )
    }

    fn does_not_fit(&self, name: &str, input: &str) -> Error {
        Error::shape(format!(
            "layer '{name}' (Conv1D): kernel_size {} (dilation_rate {}, spanning {} steps) \
             is longer than the {input} input with padding {}",
            self.kernel_size,
            self.dilation_rate,
            (self.kernel_size.saturating_sub(1)).saturating_mul(self.dilation_rate) + 1,
            serde_json::to_string(&self.padding).expect("an enum")
        ))
    }
}

pub struct Conv1D {
    pub name: String,
    pub cfg: Conv1DConfig,
    pub kernel: Var,       // [K, C, filters] (Keras' layout)
    pub bias: Option<Var>, // [filters]
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const CONV1D: LayerType = LayerType::of::<Conv1DConfig>("Conv1D");

impl LayerKind for Conv1DConfig {
    fn class_name(&self) -> &'static str {
        "Conv1D"
    }
    fn base_name(&self) -> &'static str {
        "conv1d"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let input = rank_is(
            name,
            "Conv1D",
            inputs,
            2,
            "sequences [batch, steps, channels]",
        )?;
        needs_known(name, "Conv1D", "number of channels", input[1], input)?;
        let c = self;
        if c.filters == 0 || c.kernel_size == 0 {
            return Err(Error::invalid(format!(
                "layer '{name}' (Conv1D): filters ({}) and kernel_size ({}) must be positive",
                c.filters, c.kernel_size
            )));
        }
        if c.strides == 0 || c.dilation_rate == 0 {
            return Err(Error::invalid(format!(
                "layer '{name}' (Conv1D): strides ({}) and dilation_rate ({}) must be positive",
                c.strides, c.dilation_rate
            )));
        }
        let t = window_axis(
            input[0],
            |t| c.pads(t),
            c.kernel_size,
            c.strides,
            c.dilation_rate,
        )
        .map_err(|_| c.does_not_fit(name, &batch_shape_str(input)))?;
        Ok(vec![t, Dim::known(c.filters)])
    }
    fn build(&self, name: String, inputs: &[&[Dim]], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let ch = inputs[0][1].get().expect("checked");
        let (k, f) = (self.kernel_size, self.filters);
        super::limits::check_weights(&name, "Conv1D", &[k, ch, f])?;
        // Drawn as [F, C, K], whose fans (C*K in, F*K out) are Keras' for a Conv1D
        // kernel, then laid out as [K, C, F]: every initializer draws i.i.d. entries, so
        // the relabelling changes no distribution.
        let kernel = self
            .kernel_initializer
            .init(&[f, ch, k], rng)
            .reshape(&[k, ch, f])?;
        let bias = self
            .use_bias
            .then(|| Var::parameter(self.bias_initializer.init(&[f], rng)));
        Ok(Box::new(Conv1D {
            name,
            cfg: self.clone(),
            kernel: Var::parameter(kernel),
            bias,
        }))
    }
    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> f64 {
        let (cin, t_out, f) = (inputs[0][1], output[0], output[1]);
        2.0 * (f * t_out * cin * self.kernel_size) as f64
    }
}

impl Conv1D {
    fn run(&self, x: &Var) -> Result<Var> {
        let &[n, t, c] = &x.shape()[..] else {
            return Err(Error::shape(format!(
                "layer '{}' (Conv1D) expects sequences [batch, steps, channels], got {:?}",
                self.name,
                x.shape()
            )));
        };
        let t_out = self.cfg.out_len(t).ok_or_else(|| {
            self.cfg
                .does_not_fit(&self.name, &format!("[{n}, {t}, {c}]"))
        })?;
        let (k, f) = (self.cfg.kernel_size, self.cfg.filters);
        let (left, right) = self.cfg.pads(t);
        let xt = reshape(&permute(x, &[0, 2, 1])?, &[n, c, 1, t])?; // [N, C, 1, T]
        let w = reshape(&permute(&self.kernel, &[2, 1, 0])?, &[f, c, 1, k])?; // [F, C, 1, K]
        let spec = Conv2dSpec {
            stride: (1, self.cfg.strides),
            padding: Padding2d {
                top: 0,
                bottom: 0,
                left,
                right,
            },
            dilation: (1, self.cfg.dilation_rate),
            groups: 1,
        };
        let z = if self.cfg.activation == Activation::Relu {
            // Fused: ReLU is elementwise, so it commutes with the permute below.
            conv2d_relu(&xt, &w, self.bias.as_ref(), &spec)
        } else {
            conv2d(&xt, &w, self.bias.as_ref(), &spec)
        }
        .map_err(|e| e.context(&format!("layer '{}' (Conv1D)", self.name)))?; // [N, F, 1, T']
        permute(&reshape(&z, &[n, f, t_out])?, &[0, 2, 1]) // [N, T', F]
    }
}

impl Layer for Conv1D {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        let y = self.run(x)?;
        if self.cfg.activation == Activation::Relu {
            return Ok(y);
        }
        // Channels-last, so softmax runs over the filters, as in Keras.
        Ok(self.cfg.activation.apply_in(&y, ctx))
    }
    fn params(&self) -> Vec<Param> {
        super::kernel_and_bias(&self.name, &self.kernel, self.bias.as_ref())
    }
    fn config(&self) -> LayerConfig {
        let mut c = self.cfg.clone();
        c.name = Some(self.name.clone());
        c.into()
    }
    fn output_activation(&self) -> Option<Activation> {
        Some(self.cfg.activation)
    }
    fn regularization(&self) -> Option<Var> {
        self.cfg.kernel_regularizer.map(|r| r.penalty(&self.kernel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Tensor;

    #[test]
    fn config_reads_keras_forms_and_shapes_follow_padding() {
        let c: LayerConfig = serde_json::from_str(
            r#"{"class_name": "Conv1D", "config": {"filters": 4, "kernel_size": [3], "strides": 2, "padding": "causal"}}"#,
        )
        .unwrap();
        let seq = |t: Option<usize>| [Dim(t), Dim::known(5)];
        assert_eq!(
            c.output_shape("c", &seq(Some(7))).unwrap(),
            [Dim::known(4), Dim::known(4)]
        );
        assert_eq!(
            c.output_shape("c", &seq(None)).unwrap(),
            [Dim::NONE, Dim::known(4)]
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains(
                r#""kernel_size":[3],"strides":[2],"padding":"causal","dilation_rate":[1]"#
            ),
            "{json}"
        );
        let valid = Conv1DConfig::new(2, 5).dilation_rate(2);
        // Spans 9 steps: 9 fit, 8 do not.
        assert_eq!(valid.out_len(9), Some(1));
        let e = LayerConfig::from(valid.clone())
            .output_shape("c", &seq(Some(8)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer 'c' (Conv1D): kernel_size 5"), "{e}");
        assert!(e.contains("spanning 9 steps"), "{e}");
        let same = valid.clone().padding(Padding1D::Same).strides(3);
        assert_eq!(same.out_len(8), Some(3));
        let e = LayerConfig::from(Conv1DConfig::new(0, 3))
            .output_shape("z", &seq(Some(8)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("filters (0)"), "{e}");
        let e = LayerConfig::from(Conv1DConfig::new(2, 3))
            .output_shape("c", &[Dim::NONE, Dim::NONE])
            .unwrap_err()
            .to_string();
        assert!(e.contains("number of channels"), "{e}");
        assert!(serde_json::from_str::<LayerConfig>(
            r#"{"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 3, "padding": "full"}}"#
        )
        .is_err());
    }

    #[test]
    fn a_short_batch_is_an_error_naming_the_layer() {
        let mut rng = Rng::new(0);
        let cfg: LayerConfig = Conv1DConfig::new(2, 4).into();
        let mut layer = cfg
            .build("conv".into(), &[Dim::NONE, Dim::known(3)], &mut rng)
            .unwrap();
        assert_eq!(layer.params()[0].var.shape(), [4, 3, 2]);
        let mut ctx = ForwardCtx {
            training: false,
            rng: &mut rng,
            output_logits: false,
        };
        let ok = Var::constant(Tensor::zeros(&[2, 4, 3]));
        assert_eq!(layer.forward(&ok, &mut ctx).unwrap().shape(), [2, 1, 2]);
        let short = Var::constant(Tensor::zeros(&[2, 3, 3]));
        let e = layer.forward(&short, &mut ctx).unwrap_err().to_string();
        assert!(
            e.contains("layer 'conv' (Conv1D): kernel_size 4") && e.contains("[2, 3, 3]"),
            "{e}"
        );
    }
}
