//! `Conv2D`: `activation(conv2d(x, kernel) + bias)` on NCHW inputs.
//!
//! # Shapes
//! input `[N, C, H, W]`, kernel `[filters, C/groups, KH, KW]` (PyTorch's layout; Keras
//! stores `[KH, KW, C, filters]`), bias `[filters]`, output `[N, filters, OH, OW]`.
//! `padding: "valid"` uses no padding; `"same"` pads so that `OH = ceil(H / stride)`,
//! asymmetrically when needed (TensorFlow's rule, extra row/column after). The padding
//! is worked out from each input the layer receives, so `H` and `W` may be unknown
//! (`None`) at build time; the channels `C` must be known.
//!
//! Masks: dropped (Keras' convolutions do not support masking).

use super::dims::{batch_shape_str, Dim};
use super::registry::{needs_known, rank_is};
use super::{Activation, ForwardCtx, Initializer, Layer, LayerConfig, LayerKind, LayerType};
use super::{Param, Regularizer};
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::conv2d::{conv2d, conv2d_relu, Conv2dSpec};
use crate::ops::{window_out_len, Padding2d};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PaddingMode {
    #[default]
    Valid,
    Same,
}

/// `(rows, cols)` that reads from JSON as `3` or `[3, 3]`, as Keras accepts.
pub mod pair {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrTwo {
        One(usize),
        Two([usize; 2]),
    }

    pub fn serialize<S: Serializer>(v: &(usize, usize), s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq([v.0, v.1])
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(usize, usize), D::Error> {
        Ok(match OneOrTwo::deserialize(d)? {
            OneOrTwo::One(a) => (a, a),
            OneOrTwo::Two([a, b]) => (a, b),
        })
    }
}

fn one_one() -> (usize, usize) {
    (1, 1)
}
fn one() -> usize {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2DConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub filters: usize,
    #[serde(with = "pair")]
    pub kernel_size: (usize, usize),
    #[serde(with = "pair", default = "one_one")]
    pub strides: (usize, usize),
    #[serde(default)]
    pub padding: PaddingMode,
    #[serde(with = "pair", default = "one_one")]
    pub dilation_rate: (usize, usize),
    #[serde(default = "one")]
    pub groups: usize,
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
    /// Explicit symmetric zero padding (the book's `pad`), used instead of `padding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_padding: Option<usize>,
}

impl Conv2DConfig {
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> Conv2DConfig {
        Conv2DConfig {
            name: None,
            filters,
            kernel_size,
            strides: (1, 1),
            padding: PaddingMode::Valid,
            dilation_rate: (1, 1),
            groups: 1,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            explicit_padding: None,
        }
    }
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    pub fn strides(mut self, s: usize) -> Self {
        self.strides = (s, s);
        self
    }
    pub fn padding(mut self, p: PaddingMode) -> Self {
        self.padding = p;
        self
    }
    /// Grouped convolution: `groups` must divide the input channels and `filters`;
    /// `groups == channels` is a depthwise convolution.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    pub fn dilation_rate(mut self, d: usize) -> Self {
        self.dilation_rate = (d, d);
        self
    }
    /// Symmetric zero padding of `p` cells on every side (the book's `pad`).
    pub fn pad(mut self, p: usize) -> Self {
        self.explicit_padding = Some(p);
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

    /// The op's geometry for an input of spatial size `hw`.
    pub fn spec(&self, hw: (usize, usize)) -> Conv2dSpec {
        let padding = match (self.explicit_padding, self.padding) {
            (Some(p), _) => Padding2d::uniform(p),
            (None, PaddingMode::Valid) => Padding2d::default(),
            (None, PaddingMode::Same) => {
                Padding2d::same(hw, self.kernel_size, self.strides, self.dilation_rate)
            }
        };
        Conv2dSpec {
            stride: self.strides,
            padding,
            dilation: self.dilation_rate,
            groups: self.groups,
        }
    }
}

pub struct Conv2D {
    pub name: String,
    pub cfg: Conv2DConfig,
    pub kernel: Var,       // [filters, C/groups, KH, KW]
    pub bias: Option<Var>, // [filters]
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const CONV2D: LayerType = LayerType::of::<Conv2DConfig>("Conv2D");

/// Output length of a window over one axis of `input` (None: known only per batch).
/// `same(input)` gives the padding before and after.
pub(crate) fn window_axis(
    input: Dim,
    pad: impl Fn(usize) -> (usize, usize),
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> std::result::Result<Dim, usize> {
    match input.get() {
        None => Ok(Dim::NONE),
        Some(n) => {
            let (before, after) = pad(n);
            window_out_len(n, before, after, kernel, stride, dilation)
                .map(Dim::known)
                .ok_or(n)
        }
    }
}

impl LayerKind for Conv2DConfig {
    fn class_name(&self) -> &'static str {
        "Conv2D"
    }
    fn base_name(&self) -> &'static str {
        "conv2d"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let input = rank_is(
            name,
            "Conv2D",
            inputs,
            3,
            "images [batch, channels, height, width]",
        )?;
        let ch = needs_known(name, "Conv2D", "number of channels", input[0], input)?;
        let c = self;
        let bad = |what: String| Err(Error::invalid(format!("layer '{name}' (Conv2D): {what}")));
        if c.filters == 0 || c.kernel_size.0 == 0 || c.kernel_size.1 == 0 {
            return bad("filters and kernel_size must be positive".into());
        }
        if c.strides.0 == 0 || c.strides.1 == 0 || c.dilation_rate.0 == 0 || c.dilation_rate.1 == 0
        {
            return bad("strides and dilation_rate must be positive".into());
        }
        if c.groups == 0 || !ch.is_multiple_of(c.groups) || !c.filters.is_multiple_of(c.groups) {
            return bad(format!(
                "groups={} must divide both the {ch} input channels and the {} filters",
                c.groups, c.filters
            ));
        }
        let axis = |i: usize, k: usize, s: usize, d: usize| {
            window_axis(
                input[i + 1],
                |n| {
                    let p = c.spec(if i == 0 { (n, 1) } else { (1, n) }).padding;
                    if i == 0 {
                        (p.top, p.bottom)
                    } else {
                        (p.left, p.right)
                    }
                },
                k,
                s,
                d,
            )
        };
        let oh = axis(0, c.kernel_size.0, c.strides.0, c.dilation_rate.0);
        let ow = axis(1, c.kernel_size.1, c.strides.1, c.dilation_rate.1);
        match (oh, ow) {
            (Ok(oh), Ok(ow)) => Ok(vec![Dim::known(c.filters), oh, ow]),
            _ => Err(Error::shape(format!(
                "layer '{name}' (Conv2D): kernel {:?} does not fit a {} input with padding {:?}",
                c.kernel_size,
                batch_shape_str(input),
                c.padding
            ))),
        }
    }
    fn build(&self, name: String, inputs: &[&[Dim]], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let ch = inputs[0][0].get().expect("checked");
        let (kh, kw) = self.kernel_size;
        let shape = [self.filters, ch / self.groups, kh, kw];
        super::limits::check_weights(&name, "Conv2D", &shape)?;
        let kernel = Var::parameter(self.kernel_initializer.init(&shape, rng));
        let bias = self
            .use_bias
            .then(|| Var::parameter(self.bias_initializer.init(&[self.filters], rng)));
        Ok(Box::new(Conv2D {
            name,
            cfg: self.clone(),
            kernel,
            bias,
        }))
    }
    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> f64 {
        let (cin, oc) = (inputs[0][0], output[0]);
        let (oh, ow) = (output[1], output[2]);
        let (kh, kw) = self.kernel_size;
        2.0 * (oc * oh * ow * (cin / self.groups.max(1)) * kh * kw) as f64
    }
}

impl Layer for Conv2D {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        // "same" padding from this batch's height and width.
        let shape = x.shape(); // [N, C, H, W]
        let spec = self.cfg.spec((shape[2], shape[3]));
        if self.cfg.activation == Activation::Relu {
            // One fused op: no separate ReLU pass or buffer (see `ops::conv2d::conv2d_relu`).
            return conv2d_relu(x, &self.kernel, self.bias.as_ref(), &spec);
        }
        let z = conv2d(x, &self.kernel, self.bias.as_ref(), &spec)?; // [N, filters, OH, OW]
        Ok(self.cfg.activation.apply_in(&z, ctx))
    }
    fn folds_affine(&self) -> bool {
        self.cfg.activation == Activation::Linear
    }
    fn forward_folded(&mut self, x: &Var, scale: &[f32], shift: &[f32], relu: bool) -> Result<Var> {
        let shape = x.shape();
        let spec = self.cfg.spec((shape[2], shape[3]));
        let (kernel, bias) = (self.kernel.value(), self.bias.as_ref().map(|b| b.value()));
        let filters = kernel.shape()[0];
        let per_filter = kernel.numel() / filters.max(1);
        let mut w = kernel.to_f32_vec();
        for (row, &s) in w.chunks_mut(per_filter.max(1)).zip(scale) {
            row.iter_mut().for_each(|v| *v *= s);
        }
        let b: Vec<f32> = match bias {
            Some(b) => (b.to_f32_vec().iter().zip(scale).zip(shift))
                .map(|((&b, &s), &t)| b * s + t)
                .collect(),
            None => shift.to_vec(),
        };
        let w = Var::constant(Tensor::from_vec(w, kernel.shape()));
        let b = Var::constant(Tensor::from_vec(b, &[filters]));
        if relu {
            conv2d_relu(x, &w, Some(&b), &spec)
        } else {
            conv2d(x, &w, Some(&b), &spec)
        }
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
