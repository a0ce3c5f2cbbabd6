//! Layers with Keras' names and defaults.
//!
//! A layer is a small struct holding its parameters with a `forward`; its backward lives
//! with the op it calls. Each layer also has a plain-data config (`LayerConfig`, JSON via
//! serde) so that a model's architecture can be saved, reloaded and written by hand:
//! `LayerConfig::build` turns a config plus an input shape into a layer with fresh
//! weights, and loading weights then overwrites them (one path for both).
//!
//! Shapes in this module exclude the batch axis: a Conv2D over MNIST sees `[1, 28, 28]`.

pub mod activation;
pub mod batch_norm;
pub mod conv2d;
pub mod dense;
pub mod dropout;
pub mod flatten;
pub mod initializers;
pub mod merge;
pub mod pooling;
pub mod regularizers;
pub mod relu;
pub mod reshape;
pub mod shared;
pub mod zero_padding;

pub use activation::{Activation, ActivationConfig, ActivationLayer};
pub use batch_norm::{BatchNormalization, BatchNormalizationConfig};
pub use conv2d::{Conv2D, Conv2DConfig, PaddingMode};
pub use dense::{Dense, DenseConfig};
pub use dropout::{Dropout, DropoutConfig};
pub use flatten::{Flatten, FlattenConfig};
pub use initializers::Initializer;
pub use merge::{ConcatenateConfig, Merge, MergeConfig, MergeKind};
pub use pooling::{GlobalPoolConfig, Pool2dConfig, PoolKind, Pooling2D};
pub use regularizers::Regularizer;
pub use relu::{LeakyReLU, LeakyReLUConfig, ReLU, ReLUConfig};
pub use reshape::{Reshape, ReshapeConfig};
pub use shared::{SharedConfig, SharedLayer};
pub use zero_padding::{Padding2D, ZeroPadding2D, ZeroPadding2DConfig};

use crate::engine::{Rng, Var};
use crate::error::Result;
use serde::{Deserialize, Serialize};

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
    /// All weights, trainable and not, in a fixed order.
    fn params(&self) -> Vec<Param>;
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
}

/// The architecture of one layer as plain data. JSON form: `{"class_name": "Dense",
/// "config": {"units": 10, "activation": "softmax"}}` (Keras' layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class_name", content = "config", deny_unknown_fields)]
pub enum LayerConfig {
    Dense(DenseConfig),
    Conv2D(Conv2DConfig),
    MaxPooling2D(Pool2dConfig),
    AveragePooling2D(Pool2dConfig),
    GlobalAveragePooling2D(GlobalPoolConfig),
    GlobalMaxPooling2D(GlobalPoolConfig),
    Flatten(FlattenConfig),
    Dropout(DropoutConfig),
    BatchNormalization(BatchNormalizationConfig),
    Activation(ActivationConfig),
    ZeroPadding2D(ZeroPadding2DConfig),
    ReLU(ReLUConfig),
    LeakyReLU(LeakyReLUConfig),
    Reshape(ReshapeConfig),
    Add(MergeConfig),
    Subtract(MergeConfig),
    Multiply(MergeConfig),
    Average(MergeConfig),
    Maximum(MergeConfig),
    Minimum(MergeConfig),
    Concatenate(ConcatenateConfig),
    /// A whole model used as a layer (nested models).
    Model(Box<crate::training::ModelConfig>),
    /// A further call of an earlier layer of the same model, sharing its weights.
    Shared(SharedConfig),
}

impl LayerConfig {
    /// Every `class_name` a JSON config may use.
    pub const CLASS_NAMES: [&'static str; 22] = [
        "Dense",
        "Conv2D",
        "MaxPooling2D",
        "AveragePooling2D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "Flatten",
        "Dropout",
        "BatchNormalization",
        "Activation",
        "ZeroPadding2D",
        "ReLU",
        "LeakyReLU",
        "Reshape",
        "Add",
        "Subtract",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Concatenate",
        "Model",
    ];

    /// Keras' class name, e.g. `Conv2D`.
    pub fn class_name(&self) -> &'static str {
        match self {
            LayerConfig::Dense(_) => "Dense",
            LayerConfig::Conv2D(_) => "Conv2D",
            LayerConfig::MaxPooling2D(_) => "MaxPooling2D",
            LayerConfig::AveragePooling2D(_) => "AveragePooling2D",
            LayerConfig::GlobalAveragePooling2D(_) => "GlobalAveragePooling2D",
            LayerConfig::GlobalMaxPooling2D(_) => "GlobalMaxPooling2D",
            LayerConfig::Flatten(_) => "Flatten",
            LayerConfig::Dropout(_) => "Dropout",
            LayerConfig::BatchNormalization(_) => "BatchNormalization",
            LayerConfig::Activation(_) => "Activation",
            LayerConfig::ZeroPadding2D(_) => "ZeroPadding2D",
            LayerConfig::ReLU(_) => "ReLU",
            LayerConfig::LeakyReLU(_) => "LeakyReLU",
            LayerConfig::Reshape(_) => "Reshape",
            LayerConfig::Add(_) => "Add",
            LayerConfig::Subtract(_) => "Subtract",
            LayerConfig::Multiply(_) => "Multiply",
            LayerConfig::Average(_) => "Average",
            LayerConfig::Maximum(_) => "Maximum",
            LayerConfig::Minimum(_) => "Minimum",
            LayerConfig::Concatenate(_) => "Concatenate",
            LayerConfig::Model(_) => "Model",
            LayerConfig::Shared(_) => "Shared",
        }
    }

    /// Default instance name prefix (Keras': `conv2d`, `max_pooling2d`, ...).
    pub fn base_name(&self) -> &'static str {
        match self {
            LayerConfig::Dense(_) => "dense",
            LayerConfig::Conv2D(_) => "conv2d",
            LayerConfig::MaxPooling2D(_) => "max_pooling2d",
            LayerConfig::AveragePooling2D(_) => "average_pooling2d",
            LayerConfig::GlobalAveragePooling2D(_) => "global_average_pooling2d",
            LayerConfig::GlobalMaxPooling2D(_) => "global_max_pooling2d",
            LayerConfig::Flatten(_) => "flatten",
            LayerConfig::Dropout(_) => "dropout",
            LayerConfig::BatchNormalization(_) => "batch_normalization",
            LayerConfig::Activation(_) => "activation",
            LayerConfig::ZeroPadding2D(_) => "zero_padding2d",
            // Keras derives these from the class name: `re_lu`, `leaky_re_lu`.
            LayerConfig::ReLU(_) => "re_lu",
            LayerConfig::LeakyReLU(_) => "leaky_re_lu",
            LayerConfig::Reshape(_) => "reshape",
            LayerConfig::Add(_) => "add",
            LayerConfig::Subtract(_) => "subtract",
            LayerConfig::Multiply(_) => "multiply",
            LayerConfig::Average(_) => "average",
            LayerConfig::Maximum(_) => "maximum",
            LayerConfig::Minimum(_) => "minimum",
            LayerConfig::Concatenate(_) => "concatenate",
            LayerConfig::Model(_) => "model",
            LayerConfig::Shared(_) => "shared",
        }
    }

    /// The name the user gave, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            LayerConfig::Dense(c) => c.name.as_deref(),
            LayerConfig::Conv2D(c) => c.name.as_deref(),
            LayerConfig::MaxPooling2D(c) | LayerConfig::AveragePooling2D(c) => c.name.as_deref(),
            LayerConfig::GlobalAveragePooling2D(c) | LayerConfig::GlobalMaxPooling2D(c) => {
                c.name.as_deref()
            }
            LayerConfig::Flatten(c) => c.name.as_deref(),
            LayerConfig::Dropout(c) => c.name.as_deref(),
            LayerConfig::BatchNormalization(c) => c.name.as_deref(),
            LayerConfig::Activation(c) => c.name.as_deref(),
            LayerConfig::ZeroPadding2D(c) => c.name.as_deref(),
            LayerConfig::ReLU(c) => c.name.as_deref(),
            LayerConfig::LeakyReLU(c) => c.name.as_deref(),
            LayerConfig::Reshape(c) => c.name.as_deref(),
            LayerConfig::Add(c)
            | LayerConfig::Subtract(c)
            | LayerConfig::Multiply(c)
            | LayerConfig::Average(c)
            | LayerConfig::Maximum(c)
            | LayerConfig::Minimum(c) => c.name.as_deref(),
            LayerConfig::Concatenate(c) => c.name.as_deref(),
            LayerConfig::Model(c) => Some(&c.name),
            LayerConfig::Shared(c) => c.name.as_deref(),
        }
    }

    /// The same layer under the instance name `name` (Keras' `name=` argument), for any
    /// layer: `Conv2D(64, 3).named("conv1")`.
    pub fn named(self, name: &str) -> LayerConfig {
        let mut v = serde_json::to_value(&self).expect("configs serialize");
        v["config"]["name"] = serde_json::Value::String(name.to_string());
        serde_json::from_value(v).expect("a config with a new name reads back")
    }

    /// Whether the layer merges several inputs (the rest take exactly one).
    pub fn takes_many_inputs(&self) -> bool {
        matches!(
            self,
            LayerConfig::Add(_)
                | LayerConfig::Subtract(_)
                | LayerConfig::Multiply(_)
                | LayerConfig::Average(_)
                | LayerConfig::Maximum(_)
                | LayerConfig::Minimum(_)
                | LayerConfig::Concatenate(_)
        ) || matches!(self, LayerConfig::Model(c) if c.input_shapes().len() > 1)
    }

    /// Output shape (without batch) for the shapes of all inputs, for any layer.
    pub fn output_shape_of(&self, name: &str, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        match self {
            LayerConfig::Concatenate(c) => {
                merge::output_shape("Concatenate", Some(c.axis), name, inputs)
            }
            LayerConfig::Model(c) => {
                crate::training::functional::nested_output_shape(c, name, inputs)
            }
            LayerConfig::Shared(c) => Err(shared_outside_a_model(name, c)),
            c if c.takes_many_inputs() => merge::output_shape(c.class_name(), None, name, inputs),
            _ => match inputs {
                [x] => self.output_shape(name, x),
                _ => Err(crate::error::Error::invalid(format!(
                    "layer '{name}' ({}) takes one input, got {}",
                    self.class_name(),
                    inputs.len()
                ))),
            },
        }
    }

    /// A layer with fresh weights for inputs of these shapes, for any layer.
    pub fn build_from(
        &self,
        name: String,
        inputs: &[&[usize]],
        rng: &mut Rng,
    ) -> Result<Box<dyn Layer>> {
        self.output_shape_of(&name, inputs)?;
        match self {
            LayerConfig::Concatenate(c) => Ok(Box::new(merge::build(
                "Concatenate",
                c.axis,
                name,
                inputs[0],
            ))),
            LayerConfig::Shared(c) => Err(shared_outside_a_model(&name, c)),
            LayerConfig::Model(c) => {
                let seed = rng.next_u64();
                let mut m = crate::training::Sequential::from_config(c, seed)?;
                m.name = name;
                Ok(Box::new(m))
            }
            c if c.takes_many_inputs() => {
                Ok(Box::new(merge::build(c.class_name(), 1, name, inputs[0])))
            }
            _ => self.build(name, inputs[0], rng),
        }
    }

    /// Output shape (without batch) for an input shape, or a clear error naming the layer.
    pub fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        match self {
            LayerConfig::Dense(c) => dense::output_shape(c, name, input),
            LayerConfig::Conv2D(c) => conv2d::output_shape(c, name, input),
            LayerConfig::MaxPooling2D(c) | LayerConfig::AveragePooling2D(c) => {
                pooling::output_shape(c, name, input)
            }
            LayerConfig::GlobalAveragePooling2D(_) | LayerConfig::GlobalMaxPooling2D(_) => {
                pooling::global_output_shape(name, input)
            }
            LayerConfig::Flatten(_) => Ok(vec![input.iter().product()]),
            LayerConfig::Dropout(_) | LayerConfig::Activation(_) => Ok(input.to_vec()),
            LayerConfig::BatchNormalization(_) => batch_norm::output_shape(name, input),
            LayerConfig::ZeroPadding2D(c) => zero_padding::output_shape(c, name, input),
            LayerConfig::ReLU(c) => relu::check_relu(c, name).map(|()| input.to_vec()),
            LayerConfig::LeakyReLU(c) => relu::check_leaky(c, name).map(|()| input.to_vec()),
            LayerConfig::Reshape(c) => reshape::output_shape(c, name, input),
            _ => self.output_shape_of(name, &[input]),
        }
    }

    /// A layer with fresh weights for inputs of shape `input` (without batch).
    pub fn build(&self, name: String, input: &[usize], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        self.output_shape(&name, input)?;
        Ok(match self {
            LayerConfig::Dense(c) => Box::new(dense::build(c, name, input, rng)),
            LayerConfig::Conv2D(c) => Box::new(conv2d::build(c, name, input, rng)),
            LayerConfig::MaxPooling2D(c) => Box::new(pooling::build(c, PoolKind::Max, name, input)),
            LayerConfig::AveragePooling2D(c) => {
                Box::new(pooling::build(c, PoolKind::Average, name, input))
            }
            LayerConfig::GlobalAveragePooling2D(_) => {
                Box::new(pooling::build_global(PoolKind::Average, name))
            }
            LayerConfig::GlobalMaxPooling2D(_) => {
                Box::new(pooling::build_global(PoolKind::Max, name))
            }
            LayerConfig::Flatten(_) => Box::new(Flatten { name }),
            LayerConfig::Dropout(c) => Box::new(Dropout { name, rate: c.rate }),
            LayerConfig::BatchNormalization(c) => Box::new(batch_norm::build(c, name, input)),
            LayerConfig::Activation(c) => Box::new(activation::build(c, name, rng)),
            LayerConfig::ZeroPadding2D(c) => Box::new(zero_padding::build(c, name)),
            LayerConfig::ReLU(c) => Box::new(relu::build_relu(c, name)),
            LayerConfig::LeakyReLU(c) => Box::new(relu::build_leaky(c, name)),
            LayerConfig::Reshape(c) => Box::new(reshape::build(c, name, input)?),
            _ => return self.build_from(name, &[input], rng),
        })
    }
}

/// A `Shared` config means "call the model's layer `layer` again": only a model, which
/// has that layer, can resolve it (`Model::add_node`).
fn shared_outside_a_model(name: &str, c: &SharedConfig) -> crate::error::Error {
    crate::error::Error::invalid(format!(
        "layer '{name}' (Shared) calls layer '{}' again; it can only appear in a model \
         after that layer",
        c.layer
    ))
}

/// Keras-style constructors: `Conv2D(32, 3).activation(Relu)` reads like the Python.
pub mod keras {
    pub use super::activation::Activation::*;
    pub use super::PaddingMode::*;
    use super::*;
    pub use crate::training::functional::{Call, Input, NamedInput, Shared};

    #[allow(non_snake_case)]
    pub fn Dense(units: usize) -> DenseConfig {
        DenseConfig::new(units)
    }
    #[allow(non_snake_case)]
    pub fn Conv2D(filters: usize, kernel_size: usize) -> Conv2DConfig {
        Conv2DConfig::new(filters, (kernel_size, kernel_size))
    }
    #[allow(non_snake_case)]
    pub fn MaxPooling2D(pool_size: usize) -> LayerConfig {
        LayerConfig::MaxPooling2D(Pool2dConfig::new(pool_size))
    }
    #[allow(non_snake_case)]
    pub fn AveragePooling2D(pool_size: usize) -> LayerConfig {
        LayerConfig::AveragePooling2D(Pool2dConfig::new(pool_size))
    }
    #[allow(non_snake_case)]
    pub fn GlobalAveragePooling2D() -> LayerConfig {
        LayerConfig::GlobalAveragePooling2D(GlobalPoolConfig::default())
    }
    #[allow(non_snake_case)]
    pub fn Flatten() -> LayerConfig {
        LayerConfig::Flatten(FlattenConfig::default())
    }
    #[allow(non_snake_case)]
    pub fn Dropout(rate: f32) -> LayerConfig {
        LayerConfig::Dropout(DropoutConfig { name: None, rate })
    }
    #[allow(non_snake_case)]
    pub fn BatchNormalization() -> LayerConfig {
        LayerConfig::BatchNormalization(BatchNormalizationConfig::default())
    }
    #[allow(non_snake_case)]
    pub fn Activation(activation: super::Activation) -> LayerConfig {
        LayerConfig::Activation(ActivationLayer::new(activation))
    }
    #[allow(non_snake_case)]
    pub fn Reshape(target_shape: &[i64]) -> LayerConfig {
        LayerConfig::Reshape(ReshapeConfig {
            name: None,
            target_shape: target_shape.to_vec(),
        })
    }
    #[allow(non_snake_case)]
    pub fn Add() -> LayerConfig {
        LayerConfig::Add(MergeConfig::default())
    }
    #[allow(non_snake_case)]
    pub fn Subtract() -> LayerConfig {
        LayerConfig::Subtract(MergeConfig::default())
    }
    /// Elementwise product; an input may broadcast (`[C, 1, 1]` rescales channels).
    #[allow(non_snake_case)]
    pub fn Multiply() -> LayerConfig {
        LayerConfig::Multiply(MergeConfig::default())
    }
    #[allow(non_snake_case)]
    pub fn Average() -> LayerConfig {
        LayerConfig::Average(MergeConfig::default())
    }
    #[allow(non_snake_case)]
    pub fn Maximum() -> LayerConfig {
        LayerConfig::Maximum(MergeConfig::default())
    }
    #[allow(non_snake_case)]
    pub fn Minimum() -> LayerConfig {
        LayerConfig::Minimum(MergeConfig::default())
    }
    /// Joins along the channel axis (1, counted with the batch axis; channels-first).
    #[allow(non_snake_case)]
    pub fn Concatenate() -> LayerConfig {
        LayerConfig::Concatenate(ConcatenateConfig::default())
    }
    /// `ZeroPadding2D(1)`, `ZeroPadding2D(Padding2D::symmetric(1, 2))`, ...
    #[allow(non_snake_case)]
    pub fn ZeroPadding2D(padding: impl Into<Padding2D>) -> LayerConfig {
        LayerConfig::ZeroPadding2D(ZeroPadding2DConfig::new(padding))
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
        LayerConfig::LeakyReLU(LeakyReLUConfig { name: None, alpha })
    }
}

impl From<DenseConfig> for LayerConfig {
    fn from(c: DenseConfig) -> Self {
        LayerConfig::Dense(c)
    }
}

impl From<Conv2DConfig> for LayerConfig {
    fn from(c: Conv2DConfig) -> Self {
        LayerConfig::Conv2D(c)
    }
}
