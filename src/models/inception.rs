//! `inception-mini`: GoogLeNet (Szegedy et al. 2014) for small images. The stem is one
//! 3x3 conv instead of GoogLeNet's 7x7/2 conv + pools (which would shrink a 28x28 or
//! 32x32 image to nothing), followed by GoogLeNet's Inception modules 3a, 3b, 4a and 5a
//! with a quarter of their branch widths (full width costs ~1.5 GFLOP per 32x32 image,
//! too much for a CPU), 3x3/2 max-pools between stages, global average pooling, dropout
//! 0.4 and the classifier.

use super::blocks::{conv_bn_relu, inception_module, InceptionFilters};
use crate::error::Result;
use crate::nn::layers::keras::*;
use crate::nn::layers::{PaddingMode, Pool2dConfig};
use crate::training::{Model, SymbolicTensor};

/// GoogLeNet's branch widths for a module, divided by 4.
const fn f(
    b1x1: usize,
    b3r: usize,
    b3: usize,
    b5r: usize,
    b5: usize,
    pool: usize,
) -> InceptionFilters {
    InceptionFilters {
        b1x1: b1x1 / 4,
        b3x3_reduce: b3r / 4,
        b3x3: b3 / 4,
        b5x5_reduce: b5r / 4,
        b5x5: b5 / 4,
        pool_proj: pool / 4,
    }
}

fn pool(x: &SymbolicTensor, name: &str) -> Result<SymbolicTensor> {
    Pool2dConfig::max(3)
        .strides(2)
        .padding(PaddingMode::Same)
        .named(name)
        .call(x)
}

pub fn inception_mini(input_shape: &[usize], classes: usize, seed: u64) -> Result<Model> {
    let inputs = Input(input_shape);
    let x = conv_bn_relu(&inputs, 32, 3, 1, "stem")?;
    let x = inception_module(&x, f(64, 96, 128, 16, 32, 32), "inception3a")?; // 64
    let x = inception_module(&x, f(128, 128, 192, 32, 96, 64), "inception3b")?; // 120
    let x = pool(&x, "pool3")?;
    let x = inception_module(&x, f(192, 96, 208, 16, 48, 64), "inception4a")?; // 128
    let x = pool(&x, "pool4")?;
    let x = inception_module(&x, f(256, 160, 320, 32, 128, 128), "inception5a")?; // 208
    let x = GlobalAveragePooling2D().named("avg_pool").call(&x)?;
    let x = Dropout(0.4).named("dropout").call(&x)?;
    let outputs = Dense(classes)
        .activation(Softmax)
        .named("predictions")
        .call(&x)?;
    let mut m = Model::functional(&[&inputs], &[&outputs], seed)?;
    m.name = "inception-mini".into();
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_concatenate_their_branches() {
        let m = inception_mini(&[3, 32, 32], 10, 0).unwrap();
        let shape_of = |name: &str| {
            let i = m.layers().iter().position(|l| l.name() == name).unwrap();
            m.layer_output_shapes()[i].clone()
        };
        assert_eq!(shape_of("inception3a_concat"), [64, 32, 32]);
        assert_eq!(shape_of("inception3b_concat"), [120, 32, 32]);
        assert_eq!(shape_of("inception4a_concat"), [128, 16, 16]);
        assert_eq!(shape_of("inception5a_concat"), [208, 8, 8]);
        assert_eq!(m.output_shape(), &[10]);
    }
}
