//! ResNets (He et al. 2015) and SE-ResNets (Hu et al. 2017).
//!
//! - ImageNet definitions (`resnet18/34/50/101/152`): 7x7/2 conv stem (padding 3),
//!   3x3/2 max-pool with padding 1 (torchvision's, so its weights give its outputs),
//!   four stages of 64/128/256/512 filters (x4 out for bottlenecks), global average
//!   pool, dense softmax. At 224x224x3 with 1000 classes they have torchvision's
//!   (= the published) parameter counts.
//! - CIFAR definitions (`resnet20/32/56`, section 4.2 of the paper): 3x3 conv stem with
//!   16 filters, three stages of `n` basic blocks with 16/32/64 filters (n = 3, 5, 9),
//!   global average pool, dense softmax. Shortcuts where the shape changes are
//!   projections (the paper's option B) rather than zero-padding (option A), so the
//!   counts are slightly above the paper's 0.27M/0.46M/0.85M.
//!   They also suit 28x28 inputs (Fashion-MNIST): 28 -> 14 -> 7.

use super::blocks::{basic_block, bottleneck_block, conv_bn_relu};
use crate::error::{Error, Result};
use crate::nn::layers::keras::*;
use crate::nn::layers::Pool2dConfig;
use crate::training::{Model, SymbolicTensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    Basic,
    Bottleneck,
}

/// Blocks per stage and block type of `resnetN` (ImageNet) or `resnetN` (CIFAR).
fn imagenet_layout(depth: usize) -> Option<(Block, [usize; 4])> {
    Some(match depth {
        18 => (Block::Basic, [2, 2, 2, 2]),
        34 => (Block::Basic, [3, 4, 6, 3]),
        50 => (Block::Bottleneck, [3, 4, 6, 3]),
        101 => (Block::Bottleneck, [3, 4, 23, 3]),
        152 => (Block::Bottleneck, [3, 8, 36, 3]),
        _ => return None,
    })
}

fn stage(
    mut x: SymbolicTensor,
    block: Block,
    blocks: usize,
    filters: usize,
    stride: usize,
    se_ratio: Option<usize>,
    name: &str,
) -> Result<SymbolicTensor> {
    for b in 0..blocks {
        let s = if b == 0 { stride } else { 1 };
        let n = format!("{name}_block{}", b + 1);
        x = match block {
            Block::Basic => basic_block(&x, filters, s, se_ratio, &n)?,
            Block::Bottleneck => bottleneck_block(&x, filters, s, se_ratio, &n)?,
        };
    }
    Ok(x)
}

fn head(x: &SymbolicTensor, classes: usize) -> Result<SymbolicTensor> {
    let x = GlobalAveragePooling2D().named("avg_pool").call(x)?;
    Dense(classes)
        .activation(Softmax)
        .named("predictions")
        .call(&x)
}

/// The ImageNet ResNet of `depth` 18, 34, 50, 101 or 152; `se_ratio` makes it an
/// SE-ResNet.
pub fn resnet_imagenet(
    depth: usize,
    input_shape: &[usize],
    classes: usize,
    se_ratio: Option<usize>,
    seed: u64,
) -> Result<Model> {
    let (block, layout) = imagenet_layout(depth).ok_or_else(|| {
        Error::invalid(format!(
            "no ImageNet ResNet of depth {depth} (18, 34, 50, 101, 152)"
        ))
    })?;
    let inputs = Input(input_shape);
    let x = conv_bn_relu(&inputs, 64, 7, 2, "conv1")?;
    // torchvision's MaxPool2d(3, 2, padding=1): one row and column on every side. "Same"
    // pads only after (bottom, right), which shifts every window by one pixel. Zeros pad
    // as -inf would here: the input is a ReLU's, so every window's max is >= 0 anyway.
    let x = ZeroPadding2D(1).named("pool1_pad").call(&x)?;
    let x = Pool2dConfig::max(3).strides(2).named("pool1").call(&x)?;
    let stages: Vec<(usize, usize)> = layout.iter().copied().zip([64, 128, 256, 512]).collect();
    finish(&inputs, x, block, &stages, se_ratio, classes, depth, seed)
}

/// The CIFAR ResNet of `depth` = 6n + 2 (20, 32, 44, 56, 110, ...).
pub fn resnet_cifar(
    depth: usize,
    input_shape: &[usize],
    classes: usize,
    se_ratio: Option<usize>,
    seed: u64,
) -> Result<Model> {
    if depth < 8 || !(depth - 2).is_multiple_of(6) {
        return Err(Error::invalid(format!(
            "a CIFAR ResNet has depth 6n + 2 (20, 32, 56, ...), not {depth}"
        )));
    }
    let n = (depth - 2) / 6;
    let inputs = Input(input_shape);
    let x = conv_bn_relu(&inputs, 16, 3, 1, "conv1")?;
    let stages = [(n, 16), (n, 32), (n, 64)];
    finish(
        &inputs,
        x,
        Block::Basic,
        &stages,
        se_ratio,
        classes,
        depth,
        seed,
    )
}

/// The stages after the stem (`(blocks, filters)` each; the first keeps the size, the
/// others halve it), the classifier head, and the model named `[se-]resnetDEPTH`.
#[allow(clippy::too_many_arguments)]
fn finish(
    inputs: &SymbolicTensor,
    mut x: SymbolicTensor,
    block: Block,
    stages: &[(usize, usize)],
    se_ratio: Option<usize>,
    classes: usize,
    depth: usize,
    seed: u64,
) -> Result<Model> {
    for (i, &(blocks, filters)) in stages.iter().enumerate() {
        let stride = if i == 0 { 1 } else { 2 };
        let name = format!("conv{}", i + 2);
        x = stage(x, block, blocks, filters, stride, se_ratio, &name)?;
    }
    let outputs = head(&x, classes)?;
    let mut m = Model::functional(&[inputs], &[&outputs], seed)?;
    m.name = match se_ratio {
        Some(_) => format!("se-resnet{depth}"),
        None => format!("resnet{depth}"),
    };
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_resnets_have_the_published_parameter_counts() {
        let total = |m: &Model| {
            let (t, f) = m.count_params();
            t + f
        };
        let r18 = resnet_imagenet(18, &[3, 224, 224], 1000, None, 0).unwrap();
        assert_eq!(total(&r18), 11_689_512);
        assert_eq!(r18.output_shape(), &[1000]);
        let r50 = resnet_imagenet(50, &[3, 224, 224], 1000, None, 0).unwrap();
        assert_eq!(total(&r50), 25_557_032);
        // The last stage works on 7x7 maps.
        let last = r50.get_layer("conv5_block3_out").unwrap();
        let i = r50
            .layers()
            .iter()
            .position(|l| l.name() == last.name())
            .unwrap();
        assert_eq!(r50.layer_output_shapes()[i], [2048, 7, 7]);
    }

    #[test]
    fn cifar_resnets_are_6n_plus_2_layers_deep() {
        let m = resnet_cifar(20, &[3, 32, 32], 10, None, 0).unwrap();
        let convs = m
            .layers()
            .iter()
            .filter(|l| l.config().class_name() == "Conv2D" && !l.name().ends_with("_proj_conv"))
            .count();
        // 19 convs + the dense layer = 20 weighted layers.
        assert_eq!(convs, 19);
        let (t, _) = m.count_params();
        // The paper's 0.27M with option-A shortcuts; our two projections add ~3k.
        assert!((270_000..280_000).contains(&t), "{t}");
        assert!(resnet_cifar(21, &[3, 32, 32], 10, None, 0).is_err());
        // 28x28 grey images (Fashion-MNIST) work too.
        let f = resnet_cifar(20, &[1, 28, 28], 10, Some(16), 0).unwrap();
        assert_eq!(f.output_shape(), &[10]);
    }
}
