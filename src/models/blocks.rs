//! The building blocks of the deep nets, as functions on symbolic tensors (the functional
//! API), so a model reads like its diagram: `x = basic_block(&x, 128, 2, "layer2_0")?`.
//!
//! Conventions follow the papers and torchvision's definitions (whose parameter counts
//! are the published ones): convolutions before batch norm have no bias; padding is
//! symmetric `k / 2` (torchvision's `padding=1` for 3x3), so a stride-2 3x3 conv halves
//! even sizes and rounds odd sizes up; ResNet v1 blocks are Conv-BN-ReLU with the
//! stride on the 3x3 conv of a bottleneck ("v1.5", torchvision's choice); a projection
//! shortcut (1x1 conv with the block's stride, then BN) is used where the shape changes.
//! He-normal initialization for convs (ReLU nets).

use crate::error::Result;
use crate::nn::layers::keras::*;
use crate::nn::layers::{BatchNormalizationConfig, Initializer, LayerConfig};
use crate::training::SymbolicTensor;

/// Batch norm as in torchvision (momentum 0.1 = Keras' 0.9, epsilon 1e-5).
fn batch_norm(name: &str) -> LayerConfig {
    BatchNormalizationConfig {
        name: Some(name.to_string()),
        momentum: 0.9,
        epsilon: 1e-5,
    }
    .into()
}

/// `k x k` conv with `stride`, symmetric padding `k / 2`, no bias, He init.
pub fn conv(
    x: &SymbolicTensor,
    filters: usize,
    k: usize,
    stride: usize,
    name: &str,
) -> Result<SymbolicTensor> {
    Conv2D(filters, k)
        .strides(stride)
        .pad(k / 2)
        .use_bias(false)
        .kernel_initializer(Initializer::HeNormal)
        .named(name)
        .call(x)
}

/// Conv then batch norm (`NAME_conv`, `NAME_bn`).
pub fn conv_bn(
    x: &SymbolicTensor,
    filters: usize,
    k: usize,
    stride: usize,
    name: &str,
) -> Result<SymbolicTensor> {
    let x = conv(x, filters, k, stride, &format!("{name}_conv"))?;
    batch_norm(&format!("{name}_bn")).call(&x)
}

/// Conv, batch norm, ReLU: the unit of ResNet v1 and of the small nets.
pub fn conv_bn_relu(
    x: &SymbolicTensor,
    filters: usize,
    k: usize,
    stride: usize,
    name: &str,
) -> Result<SymbolicTensor> {
    let x = conv_bn(x, filters, k, stride, name)?;
    relu(&x, &format!("{name}_relu"))
}

pub(crate) fn relu(x: &SymbolicTensor, name: &str) -> Result<SymbolicTensor> {
    Activation(Relu).named(name).call(x)
}

/// The shortcut of a residual block: identity when the block keeps the shape, else the
/// projection `1x1 conv (stride) -> BN` to `filters` channels.
pub fn shortcut(
    x: &SymbolicTensor,
    filters: usize,
    stride: usize,
    name: &str,
) -> Result<SymbolicTensor> {
    if stride == 1 && x.shape()[0] == filters {
        Ok(x.clone())
    } else {
        conv_bn(x, filters, 1, stride, &format!("{name}_proj"))
    }
}

/// Squeeze and excitation (Hu et al.): global average pool -> Dense(C / ratio, ReLU) ->
/// Dense(C, sigmoid) -> rescale the channels of `x`.
pub fn se_block(x: &SymbolicTensor, ratio: usize, name: &str) -> Result<SymbolicTensor> {
    let c = x.shape()[0].get().ok_or_else(|| {
        crate::Error::shape(format!(
            "{name}: squeeze-and-excitation needs a known channel count, got {:?}",
            x.shape()
        ))
    })?;
    let s = GlobalAveragePooling2D()
        .named(&format!("{name}_squeeze"))
        .call(x)?;
    let s = Dense((c / ratio).max(1))
        .activation(Relu)
        .named(&format!("{name}_reduce"))
        .call(&s)?;
    let s = Dense(c)
        .activation(Sigmoid)
        .named(&format!("{name}_expand"))
        .call(&s)?;
    let s = Reshape(&[c as i64, 1, 1])
        .named(&format!("{name}_reshape"))
        .call(&s)?;
    Multiply()
        .named(&format!("{name}_scale"))
        .call_many(&[x, &s])
}

/// ResNet's basic block (ResNet-18/34, the CIFAR ResNets): 3x3 conv (stride) - BN -
/// ReLU - 3x3 conv - BN, (SE,) plus the shortcut, then ReLU.
pub fn basic_block(
    x: &SymbolicTensor,
    filters: usize,
    stride: usize,
    se_ratio: Option<usize>,
    name: &str,
) -> Result<SymbolicTensor> {
    let r = conv_bn_relu(x, filters, 3, stride, &format!("{name}_1"))?;
    let mut r = conv_bn(&r, filters, 3, 1, &format!("{name}_2"))?;
    if let Some(ratio) = se_ratio {
        r = se_block(&r, ratio, &format!("{name}_se"))?;
    }
    let s = shortcut(x, filters, stride, name)?;
    let y = Add().named(&format!("{name}_add")).call_many(&[&s, &r])?;
    relu(&y, &format!("{name}_out"))
}

/// ResNet's bottleneck block (ResNet-50/101/152): 1x1 reduce to `filters`, 3x3
/// (stride), 1x1 expand to `4 * filters`, each with BN (ReLU after the first two), (SE,)
/// plus the shortcut, then ReLU.
pub fn bottleneck_block(
    x: &SymbolicTensor,
    filters: usize,
    stride: usize,
    se_ratio: Option<usize>,
    name: &str,
) -> Result<SymbolicTensor> {
    let r = conv_bn_relu(x, filters, 1, 1, &format!("{name}_1"))?;
    let r = conv_bn_relu(&r, filters, 3, stride, &format!("{name}_2"))?;
    let mut r = conv_bn(&r, 4 * filters, 1, 1, &format!("{name}_3"))?;
    if let Some(ratio) = se_ratio {
        r = se_block(&r, ratio, &format!("{name}_se"))?;
    }
    let s = shortcut(x, 4 * filters, stride, name)?;
    let y = Add().named(&format!("{name}_add")).call_many(&[&s, &r])?;
    relu(&y, &format!("{name}_out"))
}

/// The filters of an Inception module's four branches.
#[derive(Debug, Clone, Copy)]
pub struct InceptionFilters {
    pub b1x1: usize,
    pub b3x3_reduce: usize,
    pub b3x3: usize,
    pub b5x5_reduce: usize,
    pub b5x5: usize,
    pub pool_proj: usize,
}

impl InceptionFilters {
    pub fn out_channels(&self) -> usize {
        self.b1x1 + self.b3x3 + self.b5x5 + self.pool_proj
    }
}

/// GoogLeNet's Inception module: parallel 1x1 | 1x1-3x3 | 1x1-5x5 | 3x3 max-pool-1x1
/// branches (each conv with BN and ReLU), concatenated along the channels.
pub fn inception_module(
    x: &SymbolicTensor,
    f: InceptionFilters,
    name: &str,
) -> Result<SymbolicTensor> {
    let b1 = conv_bn_relu(x, f.b1x1, 1, 1, &format!("{name}_1x1"))?;
    let b3 = conv_bn_relu(x, f.b3x3_reduce, 1, 1, &format!("{name}_3x3_reduce"))?;
    let b3 = conv_bn_relu(&b3, f.b3x3, 3, 1, &format!("{name}_3x3"))?;
    let b5 = conv_bn_relu(x, f.b5x5_reduce, 1, 1, &format!("{name}_5x5_reduce"))?;
    let b5 = conv_bn_relu(&b5, f.b5x5, 5, 1, &format!("{name}_5x5"))?;
    let bp = crate::nn::layers::Pool2dConfig::max(3)
        .strides(1)
        .padding(Same)
        .named(&format!("{name}_pool"))
        .call(x)?;
    let bp = conv_bn_relu(&bp, f.pool_proj, 1, 1, &format!("{name}_pool_proj"))?;
    Concatenate()
        .named(&format!("{name}_concat"))
        .call_many(&[&b1, &b3, &b5, &bp])
}
