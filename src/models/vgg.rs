//! VGG (Simonyan & Zisserman 2014): stacks of 3x3 convs (padding 1, ReLU) separated by
//! 2x2 max-pools, then two 4096-unit dense layers with dropout and the classifier.
//! `vgg11/13/16/19` are configurations A, B, D and E; at 224x224x3 with 1000 classes
//! VGG16 has the published 138,357,544 parameters. `vgg_small` is the same design for
//! 28x28 and 32x32 images: three stages of two convs (64, 128, 256 filters) with batch
//! norm, then a 256-unit dense layer.

use crate::error::{Error, Result};
use crate::nn::layers::keras::*;
use crate::nn::layers::Initializer;
use crate::training::{Model, SymbolicTensor};

/// Filters per conv, `0` for a max-pool.
fn layout(depth: usize) -> Option<Vec<usize>> {
    const M: usize = 0;
    Some(match depth {
        11 => vec![64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
        13 => vec![
            64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M,
        ],
        16 => vec![
            64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M,
        ],
        19 => vec![
            64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512,
            512, M,
        ],
        _ => return None,
    })
}

fn conv_relu(x: &SymbolicTensor, filters: usize, name: &str) -> Result<SymbolicTensor> {
    Conv2D(filters, 3)
        .pad(1)
        .activation(Relu)
        .kernel_initializer(Initializer::HeNormal)
        .named(name)
        .call(x)
}

/// VGG of `depth` 11, 13, 16 or 19.
pub fn vgg(depth: usize, input_shape: &[usize], classes: usize, seed: u64) -> Result<Model> {
    let layout = layout(depth)
        .ok_or_else(|| Error::invalid(format!("no VGG of depth {depth} (11, 13, 16, 19)")))?;
    let inputs = Input(input_shape);
    let mut x = inputs.clone();
    let (mut block, mut conv) = (1, 1);
    for filters in layout {
        if filters == 0 {
            x = MaxPooling2D(2)
                .named(&format!("block{block}_pool"))
                .call(&x)?;
            block += 1;
            conv = 1;
        } else {
            x = conv_relu(&x, filters, &format!("block{block}_conv{conv}"))?;
            conv += 1;
        }
    }
    let x = Flatten().named("flatten").call(&x)?;
    let x = Dense(4096).activation(Relu).named("fc1").call(&x)?;
    let x = Dropout(0.5).named("fc1_dropout").call(&x)?;
    let x = Dense(4096).activation(Relu).named("fc2").call(&x)?;
    let x = Dropout(0.5).named("fc2_dropout").call(&x)?;
    let outputs = Dense(classes)
        .activation(Softmax)
        .named("predictions")
        .call(&x)?;
    let mut m = Model::functional(&[&inputs], &[&outputs], seed)?;
    m.name = format!("vgg{depth}");
    Ok(m)
}

/// VGG for small images: (conv-BN-ReLU x2, max-pool) x3 with 64/128/256 filters,
/// dense 256 with dropout, classifier.
pub fn vgg_small(input_shape: &[usize], classes: usize, seed: u64) -> Result<Model> {
    let inputs = Input(input_shape);
    let mut x = inputs.clone();
    for (b, filters) in [64, 128, 256].into_iter().enumerate() {
        for c in 1..=2 {
            x = super::blocks::conv_bn_relu(&x, filters, 3, 1, &format!("block{}_conv{c}", b + 1))?;
        }
        x = MaxPooling2D(2)
            .named(&format!("block{}_pool", b + 1))
            .call(&x)?;
    }
    let x = Flatten().named("flatten").call(&x)?;
    let x = Dense(256).activation(Relu).named("fc1").call(&x)?;
    let x = Dropout(0.5).named("fc1_dropout").call(&x)?;
    let outputs = Dense(classes)
        .activation(Softmax)
        .named("predictions")
        .call(&x)?;
    let mut m = Model::functional(&[&inputs], &[&outputs], seed)?;
    m.name = "vgg-small".into();
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vgg16_has_the_published_parameter_count() {
        let m = vgg(16, &[3, 224, 224], 1000, 0).unwrap();
        let (t, f) = m.count_params();
        assert_eq!(t + f, 138_357_544);
        assert!(vgg(12, &[3, 224, 224], 1000, 0).is_err());
        assert_eq!(
            vgg_small(&[1, 28, 28], 10, 0).unwrap().output_shape(),
            &[10]
        );
    }
}
