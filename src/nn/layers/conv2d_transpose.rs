//! `Conv2DTranspose`: `activation(conv_transpose(x, kernel) + bias)` on NCHW inputs (the
//! "deconvolution" of autoencoders, FCNs and GAN generators).
//!
//! # Shapes
//! input `[N, C, H, W]`, kernel `[C, filters, KH, KW]` (PyTorch's `ConvTranspose2d`
//! layout; Keras stores `[KH, KW, filters, C]`), bias `[filters]`, output
//! `[N, filters, OH, OW]` with Keras' sizes: `"same"`: `OH = H * stride`; `"valid"`:
//! `OH = H * stride + max(KH - stride, 0)`. "same" crops the full transposed output as
//! TensorFlow does: the padding a "same" conv2d with this kernel and stride would put
//! around an `OH x OW` input (the extra row/column after). `H` and `W` may be unknown
//! (`None`); the cropping is worked out at each call. No `output_padding`, no dilation.
//!
//! Masks: dropped (Keras' convolutions do not support masking).

use super::conv2d::{pair, PaddingMode};
use super::dims::Dim;
use super::registry::{needs_known, rank_is};
use super::{Activation, ForwardCtx, Initializer, Layer, LayerConfig, LayerKind, LayerType};
use super::{Param, Regularizer};
use crate::engine::{Rng, Var};
use crate::error::{Error, Result};
use crate::ops::conv2d_transpose::conv2d_transpose;
use crate::ops::Padding2d;
use serde::{Deserialize, Serialize};

fn one_one() -> (usize, usize) {
    (1, 1)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2DTransposeConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub filters: usize,
    #[serde(with = "pair")]
    pub kernel_size: (usize, usize),
    #[serde(with = "pair", default = "one_one")]
    pub strides: (usize, usize),
    #[serde(default)]
    pub padding: PaddingMode,
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

impl Conv2DTransposeConfig {
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> Conv2DTransposeConfig {
        Conv2DTransposeConfig {
            name: None,
            filters,
            kernel_size,
            strides: (1, 1),
            padding: PaddingMode::Valid,
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
        self.strides = (s, s);
        self
    }
    pub fn padding(mut self, p: PaddingMode) -> Self {
        self.padding = p;
        self
    }
    pub fn use_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }
    pub fn kernel_initializer(mut self, i: Initializer) -> Self {
        self.kernel_initializer = i;
        self
    }

    /// Keras' output length of one axis.
    fn out_len(&self, input: usize, k: usize, s: usize) -> usize {
        match self.padding {
            PaddingMode::Same => input * s,
            PaddingMode::Valid => input * s + k.saturating_sub(s),
        }
    }

    /// Output size and cropping for an input of `hw`.
    pub fn geometry(&self, (h, w): (usize, usize)) -> ((usize, usize), Padding2d) {
        let (kh, kw) = self.kernel_size;
        let (sh, sw) = self.strides;
        let out = (self.out_len(h, kh, sh), self.out_len(w, kw, sw));
        let padding = match self.padding {
            PaddingMode::Valid => Padding2d::default(),
            PaddingMode::Same => Padding2d::same(out, self.kernel_size, self.strides, (1, 1)),
        };
        (out, padding)
    }
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const CONV2D_TRANSPOSE: LayerType = LayerType::of::<Conv2DTransposeConfig>("Conv2DTranspose");

impl LayerKind for Conv2DTransposeConfig {
    fn class_name(&self) -> &'static str {
        "Conv2DTranspose"
    }
    fn base_name(&self) -> &'static str {
        "conv2d_transpose"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let class = "Conv2DTranspose";
        let d = rank_is(
            name,
            class,
            inputs,
            3,
            "images [batch, channels, height, width]",
        )?;
        needs_known(name, class, "number of channels", d[0], d)?;
        let (kh, kw) = self.kernel_size;
        if self.filters == 0 || kh == 0 || kw == 0 || self.strides.0 == 0 || self.strides.1 == 0 {
            return Err(Error::invalid(format!(
                "layer '{name}' ({class}): filters, kernel_size and strides must be positive"
            )));
        }
        let axis = |input: Dim, k: usize, s: usize| input.map(|n| self.out_len(n, k, s));
        let (oh, ow) = (
            axis(d[1], kh, self.strides.0),
            axis(d[2], kw, self.strides.1),
        );
        Ok(vec![Dim::known(self.filters), oh, ow])
    }
    fn build(&self, name: String, inputs: &[&[Dim]], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let ch = inputs[0][0].get().expect("checked");
        let (kh, kw) = self.kernel_size;
        super::limits::check_weights(&name, "Conv2DTranspose", &[ch, self.filters, kh, kw])?;
        let kernel = Var::parameter(
            self.kernel_initializer
                .init(&[ch, self.filters, kh, kw], rng),
        );
        let bias = self
            .use_bias
            .then(|| Var::parameter(self.bias_initializer.init(&[self.filters], rng)));
        Ok(Box::new(Conv2DTranspose {
            name,
            cfg: self.clone(),
            kernel,
            bias,
        }))
    }
    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> f64 {
        // Every input value meets every kernel tap of every filter.
        let input = inputs[0];
        let (kh, kw) = self.kernel_size;
        2.0 * (input.iter().product::<usize>() * output[0] * kh * kw) as f64
    }
}

pub struct Conv2DTranspose {
    pub name: String,
    pub cfg: Conv2DTransposeConfig,
    pub kernel: Var,       // [C, filters, KH, KW]
    pub bias: Option<Var>, // [filters]
}

impl Layer for Conv2DTranspose {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        let shape = x.shape(); // [N, C, H, W]
        let (out_hw, padding) = self.cfg.geometry((shape[2], shape[3]));
        let z = conv2d_transpose(
            x,
            &self.kernel,
            self.bias.as_ref(),
            self.cfg.strides,
            padding,
            out_hw,
        )?; // [N, filters, OH, OW]
        Ok(self.cfg.activation.apply_in(&z, ctx))
    }
    fn params(&self) -> Vec<Param> {
        super::kernel_and_bias(&self.name, &self.kernel, self.bias.as_ref())
    }
    fn config(&self) -> LayerConfig {
        Conv2DTransposeConfig {
            name: Some(self.name.clone()),
            ..self.cfg.clone()
        }
        .into()
    }
    fn output_activation(&self) -> Option<Activation> {
        Some(self.cfg.activation)
    }
    fn regularization(&self) -> Option<Var> {
        self.cfg.kernel_regularizer.map(|r| r.penalty(&self.kernel))
    }
}
