//! The `tiny-yolo` network: a small conv backbone of the zoo's blocks (conv-BN-ReLU,
//! stride-2 3x3 convs to downsample, a residual basic block at strides 4 and 8) and a
//! 1x1 conv head giving `5 + num_classes` numbers per cell of the stride-8 grid (see the
//! module docs of `models::yolo` for their meaning).
//!
//! # Shapes (width `w`, default 16; input `[1, 96, 96]`)
//! ```text
//! stem   3x3 conv-BN-ReLU            [w,  96, 96]
//! down1  3x3/2 conv-BN-ReLU          [2w, 48, 48]
//! down2  3x3/2 conv-BN-ReLU          [4w, 24, 24]
//! block2 basic block (residual)      [4w, 24, 24]
//! down3  3x3/2 conv-BN-ReLU          [8w, 12, 12]
//! block3 basic block (residual)      [8w, 12, 12]
//! head   1x1 conv with bias          [5 + K, 12, 12]
//! ```
//! About 0.12 GMAC per 96x96 image at width 16: trainable on a CPU.

use super::{BOX_CHANNELS, STRIDE};
use crate::error::{Error, Result};
use crate::models::blocks::{basic_block, conv_bn_relu};
use crate::nn::layers::keras::*;
use crate::nn::layers::Initializer;
use crate::training::Model;

/// What [`tiny_yolo_with`] builds.
#[derive(Clone, Debug, PartialEq)]
pub struct TinyYoloConfig {
    /// `[C, H, W]`, `H` and `W` multiples of 8.
    pub input_shape: Vec<usize>,
    pub num_classes: usize,
    /// Filters of the stem; each downsampling doubles them (16: 16, 32, 64, 128).
    pub width: usize,
    /// Residual basic blocks after the 2nd and 3rd downsampling (off: a plain conv
    /// stack, cheaper, for tests).
    pub residual: bool,
}

impl TinyYoloConfig {
    /// The default network for inputs of `input_shape` and `num_classes` classes.
    pub fn new(input_shape: &[usize], num_classes: usize) -> TinyYoloConfig {
        TinyYoloConfig {
            input_shape: input_shape.to_vec(),
            num_classes,
            width: 16,
            residual: true,
        }
    }
}

/// `tiny-yolo` for `input_shape` (`[C, H, W]`, `H` and `W` multiples of 8) and
/// `num_classes`, weights drawn from `seed`. Output `[N, 5 + num_classes, H/8, W/8]`.
pub fn tiny_yolo(input_shape: &[usize], num_classes: usize, seed: u64) -> Result<Model> {
    tiny_yolo_with(&TinyYoloConfig::new(input_shape, num_classes), seed)
}

/// `tiny-yolo` of a given configuration (see [`TinyYoloConfig`]).
pub fn tiny_yolo_with(cfg: &TinyYoloConfig, seed: u64) -> Result<Model> {
    let fits = matches!(cfg.input_shape[..],
        [c, h, w] if c > 0 && h > 0 && w > 0 && h % STRIDE == 0 && w % STRIDE == 0);
    if !fits {
        return Err(Error::shape(format!(
            "tiny-yolo: the input shape must be [channels, height, width] with height and \
             width multiples of its stride {STRIDE}, got {:?}",
            cfg.input_shape
        )));
    }
    if cfg.num_classes == 0 || cfg.width == 0 {
        return Err(Error::invalid(format!(
            "tiny-yolo: needs at least one class and a width of at least 1, got {} classes, \
             width {}",
            cfg.num_classes, cfg.width
        )));
    }
    let f = cfg.width;
    let inputs = Input(&cfg.input_shape[..]);
    let x = conv_bn_relu(&inputs, f, 3, 1, "stem")?; // [f, H, W]
    let x = conv_bn_relu(&x, 2 * f, 3, 2, "down1")?; // [2f, H/2, W/2]
    let mut x = conv_bn_relu(&x, 4 * f, 3, 2, "down2")?; // [4f, H/4, W/4]
    if cfg.residual {
        x = basic_block(&x, 4 * f, 1, None, "block2")?;
    }
    let mut x = conv_bn_relu(&x, 8 * f, 3, 2, "down3")?; // [8f, H/8, W/8]
    if cfg.residual {
        x = basic_block(&x, 8 * f, 1, None, "block3")?;
    }
    // Small initial outputs: every cell starts near "half a chance of an object, a box of
    // the stride's size in the cell's middle, uniform classes".
    let out = Conv2D(BOX_CHANNELS + cfg.num_classes, 1)
        .kernel_initializer(Initializer::Normal { stddev: 0.01 })
        .named("head")
        .call(&x)?; // [5 + K, H/8, W/8]
    let mut m = Model::functional(&[&inputs], &[&out], seed)?;
    m.name = "tiny-yolo".into();
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Tensor;

    #[test]
    fn the_grid_has_stride_8_and_5_plus_k_channels() {
        let m = tiny_yolo(&[1, 96, 96], 10, 0).unwrap();
        assert_eq!(m.output_shape(), &[15, 12, 12]);
        let s = m.summary();
        assert!(s.contains("head"), "{s}");
        let mut m = tiny_yolo_with(
            &TinyYoloConfig {
                width: 4,
                residual: false,
                ..TinyYoloConfig::new(&[3, 32, 48], 2)
            },
            1,
        )
        .unwrap();
        let y = m.predict(&Tensor::zeros(&[2, 3, 32, 48]), 2).unwrap();
        assert_eq!(y.shape(), &[2, 7, 4, 6]);
    }

    #[test]
    fn sizes_off_the_stride_and_empty_configs_are_errors() {
        let e = tiny_yolo(&[1, 28, 28], 10, 0).err().unwrap().to_string();
        assert!(e.contains("multiples of its stride 8"), "{e}");
        assert!(tiny_yolo(&[96, 96], 10, 0).is_err());
        assert!(tiny_yolo(&[1, 96, 96], 0, 0).is_err());
    }
}
