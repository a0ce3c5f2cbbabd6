//! Layers with Keras' names and defaults.
//!
//! A layer is a small struct holding its parameters with a `forward`; its backward lives
//! with the op it calls. Each layer also has a plain-data config (`LayerConfig`, JSON via
//! serde) so that a model's architecture can be saved, reloaded and written by hand:
//! `LayerConfig::build` turns a config plus an input shape into a layer with fresh
//! weights, and loading weights then overwrites them (one path for both).
//!
//! A layer is one file: its config type implements `LayerKind` (class name, output
//! shape, build, FLOPs) and the file declares a `LayerType` (class name + JSON parser);
//! adding a layer is that file, a `pub mod` line and one line in `LAYER_TYPES` below
//! (see `registry.rs`).
//!
//! Shapes in this module exclude the batch axis: a Conv2D over MNIST sees `[1, 28, 28]`.
//! An axis may be unknown until a batch arrives (`Dim::NONE`, see `dims.rs`).

pub mod activation;
pub mod batch_norm;
pub mod bidirectional;
pub mod conv1d;
pub mod conv2d;
pub mod conv2d_transpose;
pub mod dense;
pub mod dims;
pub mod dropout;
pub mod embedding;
pub mod flatten;
pub mod global_pooling1d;
pub mod gru;
pub mod initializers;
pub mod limits;
pub mod lstm;
pub mod merge;
pub mod pooling;
pub mod pooling1d;
pub mod recurrent;
pub mod registry;
pub mod regularizers;
pub mod relu;
pub mod reshape;
pub mod shared;
pub mod simple_rnn;
pub mod upsampling;
pub mod zero_padding;

pub use activation::{Activation, ActivationConfig, ActivationLayer};
pub use batch_norm::{BatchNormalization, BatchNormalizationConfig};
pub use bidirectional::{Bidirectional, BidirectionalConfig, MergeMode};
pub use conv1d::{Conv1D, Conv1DConfig, Padding1D};
pub use conv2d::{Conv2D, Conv2DConfig, PaddingMode};
pub use conv2d_transpose::{Conv2DTranspose, Conv2DTransposeConfig};
pub use dense::{Dense, DenseConfig};
pub use dims::{Dim, IntoDims};
pub use dropout::{Dropout, DropoutConfig};
pub use embedding::{Embedding, EmbeddingConfig};
pub use flatten::{Flatten, FlattenConfig};
pub use global_pooling1d::{GlobalPool1DConfig, GlobalPooling1D};
pub use gru::GRUConfig;
pub use initializers::Initializer;
pub use lstm::LSTMConfig;
pub use merge::{ConcatenateConfig, Merge, MergeConfig, MergeKind};
pub use pooling::{GlobalPoolConfig, Pool2dConfig, PoolKind, Pooling2D};
pub use pooling1d::{Pool1dConfig, Pooling1D};
pub use recurrent::RecurrentLayer;
pub use registry::{LayerConfig, LayerKind, LayerType};
pub use regularizers::Regularizer;
pub use relu::{LeakyReLU, LeakyReLUConfig, ReLU, ReLUConfig};
pub use reshape::{Reshape, ReshapeConfig};
pub use shared::{SharedConfig, SharedLayer};
pub use simple_rnn::SimpleRNNConfig;
pub use upsampling::{InterpolationMode, UpSampling2D, UpSampling2DConfig};
pub use zero_padding::{Padding2D, ZeroPadding2D, ZeroPadding2DConfig};

use crate::engine::{Rng, Tensor, Var};
use crate::error::Result;

/// A named weight of a layer. Names are layer-qualified (`conv2d_1/kernel`), as in Keras,
/// and are the keys in saved weight files and optimizer state.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub var: Var,
    /// Non-trainable weights (batch norm's moving statistics) are saved but not updated
    /// by optimizers.
    pub trainable: bool,
    /// State computed from the data rather than learned (batch norm's moving
    /// statistics; PyTorch's "buffers"). Saved with the weights, never trained, and not
    /// counted as parameters, so `summary` totals match the published counts (which
    /// count weights only).
    pub buffer: bool,
}

/// `LAYER/kernel` and, if there is one, `LAYER/bias`: the weights of Dense and Conv2D.
pub(crate) fn kernel_and_bias(layer: &str, kernel: &Var, bias: Option<&Var>) -> Vec<Param> {
    let param = |what: &str, var: &Var| Param {
        name: format!("{layer}/{what}"),
        var: var.clone(),
        trainable: true,
        buffer: false,
    };
    let mut p = vec![param("kernel", kernel)];
    p.extend(bias.map(|b| param("bias", b)));
    p
}

/// What a forward pass needs besides its input.
pub struct ForwardCtx<'a> {
    /// Training mode: dropout drops, batch norm uses batch statistics.
    pub training: bool,
    /// Source of dropout masks.
    pub rng: &'a mut Rng,
    /// Set by the model on its last layer when the loss fuses the output activation
    /// (softmax or sigmoid): the layer then returns logits.
    pub output_logits: bool,
}

/// A layer: a forward pass over a batch, its weights, its config.
///
/// # Masks (Keras 3's semantics)
/// A mask marks which steps of a sequence are real: a `[N, T]` f32 tensor, 1 for a real
/// step and 0 for padding, beside a `[N, T, ...]` value. A model carries one mask (or
/// none) beside every tensor, from layer to layer (`Graph::run`, nested models too). A
/// layer touches it in two places, both default methods: `forward_masked` *consumes*
/// its input's mask (Keras' `call(x, mask=...)`; the default ignores it and calls
/// `forward`), and `compute_mask` *produces* the mask of its output (Keras'
/// `compute_mask`). The default `compute_mask` drops the mask (returns `None`): in
/// Keras 3 a layer that does not declare `supports_masking` destroys the mask (Conv1D,
/// pooling, Flatten, Reshape, ...). Layers that keep the time axis step for step
/// (Dense, Dropout, Activation, ReLU, BatchNormalization) override it to pass the mask
/// through; `Embedding(mask_zero)` makes one (ids != 0); `GlobalAveragePooling1D`
/// consumes it and outputs none; a recurrent layer passes it on only when it returns
/// sequences. Layers with several inputs (merges, nested models) use the `_many`
/// forms, whose defaults fall back to the one-input methods.
pub trait Layer {
    fn name(&self) -> &str;
    /// `x` has a batch axis first; the model has already checked the rest of its shape.
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var>;
    /// The forward of a layer with several inputs (merges, nested models); the others
    /// take exactly one.
    fn forward_many(&mut self, xs: &[Var], ctx: &mut ForwardCtx) -> Result<Var> {
        match xs {
            [x] => self.forward(x, ctx),
            _ => Err(crate::error::Error::invalid(format!(
                "layer '{}' takes one input, got {}",
                self.name(),
                xs.len()
            ))),
        }
    }
    /// The forward given the input's mask (`[N, T]`, 1 = real step; see the trait
    /// docs). Default: the mask is not read.
    fn forward_masked(
        &mut self,
        x: &Var,
        mask: Option<&Tensor>,
        ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        let _ = mask;
        self.forward(x, ctx)
    }
    /// The mask of this layer's output, given its input `x` and the input's mask.
    /// Default: `None`, Keras 3's rule for a layer that does not support masking.
    fn compute_mask(&self, x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        let _ = (x, mask);
        Ok(None)
    }
    /// `forward_masked` for any number of inputs, one mask (or none) per input.
    fn forward_many_masked(
        &mut self,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        match (xs, masks) {
            ([x], [mask]) => self.forward_masked(x, *mask, ctx),
            _ => self.forward_many(xs, ctx),
        }
    }
    /// `compute_mask` for any number of inputs. Default: a one-input layer's
    /// `compute_mask`; no mask from several inputs.
    fn compute_mask_many(&self, xs: &[Var], masks: &[Option<&Tensor>]) -> Result<Option<Tensor>> {
        match (xs, masks) {
            ([x], [mask]) => self.compute_mask(x, *mask),
            _ => Ok(None),
        }
    }
    /// The forward of a layer that returns several tensors (`LayerKind::output_shapes`
    /// says how many): a recurrent layer with `return_state` returns its output and
    /// its final states. Default: the one output of `forward_many_masked`.
    fn forward_outputs(
        &mut self,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
    ) -> Result<Vec<Var>> {
        Ok(vec![self.forward_many_masked(xs, masks, ctx)?])
    }
    /// The mask of each output of `forward_outputs`, asked after it. Default: the one
    /// mask of `compute_mask_many`.
    fn compute_masks(&self, xs: &[Var], masks: &[Option<&Tensor>]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![self.compute_mask_many(xs, masks)?])
    }
    /// All weights, trainable and not, in a fixed order.
    fn params(&self) -> Vec<Param>;
    /// Told by the model when the layer is frozen or unfrozen (`Graph::set_trainable`).
    /// The model itself marks the weights non-trainable; a layer overrides this only if
    /// freezing changes its forward (BatchNormalization then runs in inference mode,
    /// as in Keras) or it holds layers of its own (a nested model, a shared call).
    fn set_frozen(&mut self, _frozen: bool) {}
    fn config(&self) -> LayerConfig;
    /// The activation this layer ends with, if any (lets the loss fuse softmax/sigmoid).
    fn output_activation(&self) -> Option<Activation> {
        None
    }
    /// The weight penalty this layer adds to the loss (L2 kernel regularizer).
    fn regularization(&self) -> Option<Var> {
        None
    }
    /// The shared-call node this is, if the layer is called more than once in its model.
    fn as_shared(&self) -> Option<&SharedLayer> {
        None
    }
    /// Whether this layer can compute a ReLU of its output in its own passes
    /// (`forward_relu`). `Graph::run` then fuses a plain ReLU that alone reads this
    /// layer's one output (`Graph::relu_fusions`): batch norm + ReLU, residual add + ReLU.
    fn fuses_relu(&self) -> bool {
        false
    }
    /// `relu(forward)` in one go; the default runs the two (a layer with `fuses_relu`
    /// overrides it with a fused kernel that gives the same values and gradients).
    fn forward_relu(&mut self, xs: &[Var], ctx: &mut ForwardCtx) -> Result<Var> {
        Ok(crate::ops::activation::relu(&self.forward_many(xs, ctx)?))
    }
    /// At inference, the per-channel map `y = x * scale + shift` this layer is (batch
    /// norm with its moving statistics), for the conv before it to fold into its weights
    /// (`Graph::run`, inference only); `None` for other layers.
    fn inference_affine(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        None
    }
    /// Whether `forward_folded` can take a per-output-channel affine map that follows
    /// this layer into its weights (a conv without an activation of its own).
    fn folds_affine(&self) -> bool {
        false
    }
    /// The inference forward with `y * scale + shift` per output channel folded into the
    /// weights (`w * scale`, `b * scale + shift`), then a ReLU if `relu`: the batch norm
    /// (and ReLU) after a conv cost no pass of their own. No gradient reaches the layer's
    /// weights through it.
    fn forward_folded(&mut self, x: &Var, scale: &[f32], shift: &[f32], relu: bool) -> Result<Var> {
        let _ = (x, scale, shift, relu);
        Err(crate::error::Error::invalid(format!(
            "layer '{}' cannot fold a following batch norm",
            self.name()
        )))
    }
    /// Whether this layer is a plain `max(x, 0)`, nothing else, which the layer before it
    /// may absorb (`fuses_relu`).
    fn is_plain_relu(&self) -> bool {
        false
    }
    /// Whether the layer's input holds indices (token ids), not values: a half-precision
    /// model then leaves that input unrounded (bf16 holds whole numbers exactly only up
    /// to 256, f16 up to 2048, so rounding would turn id 257 into 256).
    fn reads_indices(&self) -> bool {
        false
    }
}

/// Every layer class a JSON config may name: one line per layer. A layer is one file
/// that declares its `LayerType` (class name, config parsing) and implements
/// `LayerKind` for its config (output shape, build, FLOPs); see `registry`.
pub const LAYER_TYPES: &[LayerType] = &[
    dense::DENSE,
    conv2d::CONV2D,
    pooling::MAX_POOLING_2D,
    pooling::AVERAGE_POOLING_2D,
    pooling::GLOBAL_AVERAGE_POOLING_2D,
    pooling::GLOBAL_MAX_POOLING_2D,
    flatten::FLATTEN,
    dropout::DROPOUT,
    batch_norm::BATCH_NORMALIZATION,
    activation::ACTIVATION,
    zero_padding::ZERO_PADDING_2D,
    relu::RELU,
    relu::LEAKY_RELU,
    reshape::RESHAPE,
    merge::ADD,
    merge::SUBTRACT,
    merge::MULTIPLY,
    merge::AVERAGE,
    merge::MAXIMUM,
    merge::MINIMUM,
    merge::CONCATENATE,
    // A whole model used as a layer (nested models); its config is the model's.
    crate::nn::nested::MODEL,
    shared::SHARED,
    upsampling::UPSAMPLING_2D,
    conv2d_transpose::CONV2D_TRANSPOSE,
    global_pooling1d::GLOBAL_AVERAGE_POOLING_1D,
    global_pooling1d::GLOBAL_MAX_POOLING_1D,
    embedding::EMBEDDING,
    conv1d::CONV1D,
    pooling1d::MAX_POOLING_1D,
    pooling1d::AVERAGE_POOLING_1D,
    lstm::LSTM_LAYER,
    gru::GRU_LAYER,
    simple_rnn::SIMPLE_RNN_LAYER,
    bidirectional::BIDIRECTIONAL,
];

/// Keras-style constructors: `Conv2D(32, 3).activation(Relu)` reads like the Python.
/// Layers with builder methods return their config (`Dense`, `Conv2D`, `ReLU`); the
/// others a `LayerConfig`. For a pool with strides or padding use
/// `Pool2dConfig::max(3).strides(2).padding(Same)`.
pub mod keras {
    pub use super::activation::Activation::*;
    pub use super::PaddingMode::*;
    use super::*;
    pub use crate::nn::functional::{Call, Input, NamedInput, Shared};

    #[allow(non_snake_case)]
    pub fn Dense(units: usize) -> DenseConfig {
        DenseConfig::new(units)
    }
    #[allow(non_snake_case)]
    pub fn Conv2D(filters: usize, kernel_size: usize) -> Conv2DConfig {
        Conv2DConfig::new(filters, (kernel_size, kernel_size))
    }
    /// `Conv2DTranspose(16, 3).strides(2).padding(Same)`.
    #[allow(non_snake_case)]
    pub fn Conv2DTranspose(filters: usize, kernel_size: usize) -> Conv2DTransposeConfig {
        Conv2DTransposeConfig::new(filters, (kernel_size, kernel_size))
    }
    /// `UpSampling2D(2)`, `UpSampling2D(2).interpolation(InterpolationMode::Bilinear)`.
    #[allow(non_snake_case)]
    pub fn UpSampling2D(size: usize) -> UpSampling2DConfig {
        UpSampling2DConfig::new(size)
    }
    /// `Embedding(10000, 64)`: token ids `[N, T]` -> `[N, T, 64]`.
    #[allow(non_snake_case)]
    pub fn Embedding(input_dim: usize, output_dim: usize) -> EmbeddingConfig {
        EmbeddingConfig::new(input_dim, output_dim)
    }
    /// `Conv1D(64, 5).padding(Padding1D::Causal).dilation_rate(2)` on `[N, T, C]`.
    #[allow(non_snake_case)]
    pub fn Conv1D(filters: usize, kernel_size: usize) -> Conv1DConfig {
        Conv1DConfig::new(filters, kernel_size)
    }
    /// `LSTM(64).return_sequences(true)` on `[N, T, F]`.
    #[allow(non_snake_case)]
    pub fn LSTM(units: usize) -> LSTMConfig {
        LSTMConfig::new(units)
    }
    /// `GRU(64).return_sequences(true)` on `[N, T, F]` (Keras' `reset_after=True`).
    #[allow(non_snake_case)]
    pub fn GRU(units: usize) -> GRUConfig {
        GRUConfig::new(units)
    }
    /// `SimpleRNN(64).return_sequences(true)` on `[N, T, F]` (activation tanh).
    #[allow(non_snake_case)]
    pub fn SimpleRNN(units: usize) -> SimpleRNNConfig {
        SimpleRNNConfig::new(units)
    }
    /// `Bidirectional(LSTM(64))`: the layer run both ways, concatenated (see
    /// `BidirectionalConfig::merge_mode`).
    #[allow(non_snake_case)]
    pub fn Bidirectional(layer: impl Into<LayerConfig>) -> BidirectionalConfig {
        BidirectionalConfig::new(layer)
    }
    /// `MaxPooling1D(2)`, `MaxPooling1D(3).strides(1).padding(Same)`.
    #[allow(non_snake_case)]
    pub fn MaxPooling1D(pool_size: usize) -> Pool1dConfig {
        Pool1dConfig::max(pool_size)
    }
    #[allow(non_snake_case)]
    pub fn AveragePooling1D(pool_size: usize) -> Pool1dConfig {
        Pool1dConfig::average(pool_size)
    }
    #[allow(non_snake_case)]
    pub fn MaxPooling2D(pool_size: usize) -> LayerConfig {
        Pool2dConfig::max(pool_size).into()
    }
    #[allow(non_snake_case)]
    pub fn AveragePooling2D(pool_size: usize) -> LayerConfig {
        Pool2dConfig::average(pool_size).into()
    }
    #[allow(non_snake_case)]
    pub fn GlobalAveragePooling2D() -> LayerConfig {
        GlobalPoolConfig::new(PoolKind::Average).into()
    }
    #[allow(non_snake_case)]
    pub fn GlobalMaxPooling2D() -> LayerConfig {
        GlobalPoolConfig::new(PoolKind::Max).into()
    }
    /// Mean over the steps of `[batch, steps, features]` sequences.
    #[allow(non_snake_case)]
    pub fn GlobalAveragePooling1D() -> LayerConfig {
        GlobalPool1DConfig {
            kind: PoolKind::Average,
            name: None,
        }
        .into()
    }
    #[allow(non_snake_case)]
    pub fn GlobalMaxPooling1D() -> LayerConfig {
        GlobalPool1DConfig {
            kind: PoolKind::Max,
            name: None,
        }
        .into()
    }
    #[allow(non_snake_case)]
    pub fn Flatten() -> LayerConfig {
        FlattenConfig::default().into()
    }
    #[allow(non_snake_case)]
    pub fn Dropout(rate: f32) -> LayerConfig {
        DropoutConfig { name: None, rate }.into()
    }
    #[allow(non_snake_case)]
    pub fn BatchNormalization() -> LayerConfig {
        BatchNormalizationConfig::default().into()
    }
    #[allow(non_snake_case)]
    pub fn Activation(activation: super::Activation) -> LayerConfig {
        ActivationLayer::new(activation).into()
    }
    #[allow(non_snake_case)]
    pub fn Reshape(target_shape: &[i64]) -> LayerConfig {
        ReshapeConfig {
            name: None,
            target_shape: target_shape.to_vec(),
        }
        .into()
    }
    #[allow(non_snake_case)]
    pub fn Add() -> LayerConfig {
        MergeConfig::of(MergeKind::Add).into()
    }
    #[allow(non_snake_case)]
    pub fn Subtract() -> LayerConfig {
        MergeConfig::of(MergeKind::Subtract).into()
    }
    /// Elementwise product; an input may broadcast (`[C, 1, 1]` rescales channels).
    #[allow(non_snake_case)]
    pub fn Multiply() -> LayerConfig {
        MergeConfig::of(MergeKind::Multiply).into()
    }
    #[allow(non_snake_case)]
    pub fn Average() -> LayerConfig {
        MergeConfig::of(MergeKind::Average).into()
    }
    #[allow(non_snake_case)]
    pub fn Maximum() -> LayerConfig {
        MergeConfig::of(MergeKind::Maximum).into()
    }
    #[allow(non_snake_case)]
    pub fn Minimum() -> LayerConfig {
        MergeConfig::of(MergeKind::Minimum).into()
    }
    /// Joins along the channel axis (1, counted with the batch axis; channels-first).
    #[allow(non_snake_case)]
    pub fn Concatenate() -> LayerConfig {
        ConcatenateConfig::default().into()
    }
    /// `ZeroPadding2D(1)`, `ZeroPadding2D(Padding2D::symmetric(1, 2))`, ...
    #[allow(non_snake_case)]
    pub fn ZeroPadding2D(padding: impl Into<Padding2D>) -> LayerConfig {
        ZeroPadding2DConfig::new(padding).into()
    }
    /// Keras' `ReLU()` layer; `ReLU().max_value(6.0)` is ReLU6, and `.negative_slope(a)`
    /// and `.threshold(t)` set the other two fields.
    #[allow(non_snake_case)]
    pub fn ReLU() -> ReLUConfig {
        ReLUConfig::default()
    }
    /// Keras' `LeakyReLU(alpha)` layer (Keras' default alpha is 0.3).
    #[allow(non_snake_case)]
    pub fn LeakyReLU(alpha: f32) -> LayerConfig {
        LeakyReLUConfig { name: None, alpha }.into()
    }
}
