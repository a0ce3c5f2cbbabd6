//! The built-in networks, each written to read like its diagram, plus the training
//! recipe each is known by (batch size, optimizer, learning rate).
//! Definitions follow `docs/reference-nets.md` (the Keras tutorials and "Deep Learning
//! from Scratch"). The deep nets (the zoo: VGG, ResNet, SE-ResNet, Inception) are built
//! for any input shape and class count from reusable blocks (`blocks`).

pub mod autoencoder;
pub mod blocks;
pub mod inception;
pub mod resnet;
pub mod text;
pub mod vgg;
pub mod yolo;

use crate::error::{Error, Result};
use crate::losses::KerasLoss;
use crate::nn::layers::keras::*;
use crate::nn::layers::Initializer;
use crate::training::{Model, Sequential};

/// How a built-in model is usually trained.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    pub batch_size: usize,
    pub optimizer: &'static str,
    pub learning_rate: f32,
    pub loss: KerasLoss,
    /// The data set it is meant for.
    pub dataset: &'static str,
}

pub const NAMES: [&str; 7] = [
    "perceptron",
    "xor-mlp",
    "mlp",
    "simple-convnet",
    "deep-convnet",
    "keras-cnn",
    "mlp-bn",
];

/// The deep nets, built for the data set's input shape and classes.
pub const ZOO: [&str; 18] = [
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg-small",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet20",
    "resnet32",
    "resnet56",
    "se-resnet18",
    "se-resnet50",
    "se-resnet20",
    "inception-mini",
    "tiny-yolo",
];

/// Whether `name` is a built-in model.
pub fn is_builtin(name: &str) -> bool {
    if autoencoder::is_autoencoder_name(name) {
        return true;
    }
    NAMES.contains(&name) || ZOO.contains(&name)
}

/// Errors (listing the built-in models) unless `name` is one.
pub fn check_name(name: &str) -> Result<()> {
    if is_builtin(name) {
        Ok(())
    } else {
        Err(unknown(name))
    }
}

/// Whether `name` is a zoo model (built for the data set's shapes by `build_for`).
pub fn is_zoo(name: &str) -> bool {
    ZOO.contains(&name)
}

/// The ImageNet definitions (224x224x3, 1000 classes by default).
fn is_imagenet_definition(name: &str) -> bool {
    let depth = name.trim_start_matches("se-").trim_start_matches("resnet");
    matches!(name, "vgg11" | "vgg13" | "vgg16" | "vgg19")
        || (name.contains("resnet") && matches!(depth, "18" | "34" | "50" | "101" | "152"))
}

/// A zoo model's default input shape and class count: ImageNet's for the ImageNet
/// definitions, `mnist-detect`'s for the detector, CIFAR-10's for the others.
pub fn default_shape(name: &str) -> (Vec<usize>, usize) {
    if name == "tiny-yolo" {
        (vec![1, 96, 96], 10)
    } else if is_imagenet_definition(name) {
        (vec![3, 224, 224], 1000)
    } else {
        (vec![3, 32, 32], 10)
    }
}

/// Builds a zoo model for inputs of `input_shape` (channels first) and `classes`.
pub fn build_for(name: &str, input_shape: &[usize], classes: usize, seed: u64) -> Result<Model> {
    let depth = |prefix: &str| name.trim_start_matches(prefix).parse::<usize>().ok();
    let se = name.starts_with("se-").then_some(16);
    let plain = name.trim_start_matches("se-");
    match plain {
        "vgg-small" if se.is_none() => vgg::vgg_small(input_shape, classes, seed),
        "inception-mini" if se.is_none() => inception::inception_mini(input_shape, classes, seed),
        "tiny-yolo" if se.is_none() => yolo::tiny_yolo(input_shape, classes, seed),
        _ if name.starts_with("vgg") && is_zoo(name) => {
            vgg::vgg(depth("vgg").expect("zoo names"), input_shape, classes, seed)
        }
        _ if is_zoo(name) && is_imagenet_definition(name) => {
            let d = plain
                .trim_start_matches("resnet")
                .parse()
                .expect("zoo names");
            resnet::resnet_imagenet(d, input_shape, classes, se, seed)
        }
        _ if is_zoo(name) => {
            let d = plain
                .trim_start_matches("resnet")
                .parse()
                .expect("zoo names");
            resnet::resnet_cifar(d, input_shape, classes, se, seed)
        }
        _ => Err(unknown(name)),
    }
}

const SPARSE_CE: KerasLoss = KerasLoss::SparseCategoricalCrossentropy {
    from_logits: false,
    label_smoothing: 0.0,
};

pub fn recipe(name: &str) -> Result<Recipe> {
    let r = |batch_size, optimizer, learning_rate, loss, dataset| Recipe {
        batch_size,
        optimizer,
        learning_rate,
        loss,
        dataset,
    };
    let bce = KerasLoss::BinaryCrossentropy { from_logits: false };
    Ok(match name {
        "perceptron" => r(4, "sgd", 0.5, bce, "and"),
        "xor-mlp" => r(4, "sgd", 1.0, bce, "xor"),
        "mlp" => r(100, "adam", 0.001, SPARSE_CE, "mnist"),
        "simple-convnet" => r(100, "adam", 0.001, SPARSE_CE, "mnist"),
        "deep-convnet" => r(100, "adam", 0.001, SPARSE_CE, "mnist"),
        "keras-cnn" => r(64, "adam", 0.001, SPARSE_CE, "mnist"),
        "mlp-bn" => r(32, "adam", 0.001, SPARSE_CE, "fashion-mnist"),
        // The Keras blog's: adam, binary cross-entropy on pixels in [0, 1], batch 256.
        "autoencoder" | "conv-autoencoder" => r(256, "adam", 0.001, bce, "mnist"),
        // Measured on debian-sections (README, "Text").
        "text-bow" | "text-cnn" | "text-lstm" | "text-bilstm" | "text-gru" => {
            r(64, "adam", 0.001, SPARSE_CE, "debian-sections")
        }
        // Its loss (`yolo::YoloLoss`) and targets are no Keras loss and labels: training
        // it goes through the detection data and `nabla train`'s detection path.
        "tiny-yolo" => {
            return Err(Error::invalid(
                "tiny-yolo trains with models::yolo::YoloLoss on detection targets, not a \
                 Keras loss; `nabla train --model tiny-yolo` is not wired up yet",
            ))
        }
        // The ResNet papers' recipe: SGD with momentum 0.9, lr 0.1, batch 128.
        z if z.contains("resnet") => r(128, "momentum", 0.1, SPARSE_CE, "cifar10"),
        z if is_zoo(z) => r(128, "adam", 0.001, SPARSE_CE, "cifar10"),
        other => return Err(unknown(other)),
    })
}

fn unknown(name: &str) -> Error {
    Error::invalid(format!(
        "unknown model '{name}'; built-in models: {}, {}, {}; for text: {}",
        NAMES.join(", "),
        autoencoder::AUTOENCODERS.join(", "),
        ZOO.join(", "),
        text::TEXT_MODELS.join(", ")
    ))
}

/// Builds a built-in model (not compiled) with weights drawn from `seed`; zoo models
/// get their default shapes (`default_shape`).
pub fn build(name: &str, seed: u64) -> Result<Sequential> {
    if is_zoo(name) {
        let (shape, classes) = default_shape(name);
        return build_for(name, &shape, classes, seed);
    }
    match name {
        "perceptron" => perceptron(seed),
        "xor-mlp" => xor_mlp(seed),
        "mlp" => mlp(seed),
        "simple-convnet" => simple_convnet(seed),
        "deep-convnet" => deep_convnet(seed),
        "keras-cnn" => keras_cnn(seed),
        "mlp-bn" => mlp_bn(seed),
        "autoencoder" => autoencoder::autoencoder(seed),
        "conv-autoencoder" => autoencoder::conv_autoencoder(seed),
        other => Err(unknown(other)),
    }
}

/// One neuron on two inputs: `sigmoid(w . x + b)`. It separates AND and OR, and no
/// weights make it compute XOR.
pub fn perceptron(seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_seed(&[2], seed);
    m.name = "perceptron".into();
    m.add(Dense(1).activation(Sigmoid))?;
    Ok(m)
}

/// 2-2-1 with sigmoids: the smallest net that learns XOR.
pub fn xor_mlp(seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_seed(&[2], seed);
    m.name = "xor-mlp".into();
    m.add(Dense(2).activation(Sigmoid))?
        .add(Dense(1).activation(Sigmoid))?;
    Ok(m)
}

/// 784-100-100-10.
pub fn mlp(seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_seed(&[1, 28, 28], seed);
    m.name = "mlp".into();
    m.add(Flatten())?
        .add(Dense(100).activation(Relu))?
        .add(Dense(100).activation(Relu))?
        .add(Dense(10).activation(Softmax))?;
    Ok(m)
}

/// conv 30x5x5 - relu - pool 2 - affine 100 - relu - affine 10 - softmax;
/// the book's init N(0, 0.01^2).
pub fn simple_convnet(seed: u64) -> Result<Sequential> {
    let init = Initializer::Normal { stddev: 0.01 };
    let mut m = Sequential::with_seed(&[1, 28, 28], seed);
    m.name = "simple-convnet".into();
    m.add(Conv2D(30, 5).activation(Relu).kernel_initializer(init))? // [30, 24, 24]
        .add(MaxPooling2D(2))? // [30, 12, 12]
        .add(Flatten())? // [4320]
        .add(Dense(100).activation(Relu).kernel_initializer(init))?
        .add(Dense(10).activation(Softmax).kernel_initializer(init))?;
    Ok(m)
}

/// The book's DeepConvNet: six 3x3 convs (16,16 | 32,32 | 64,64), pad 1 except the 4th
/// (pad 2), pool after every pair, affine 50, dropout 0.5, affine 10, dropout 0.5; He init.
pub fn deep_convnet(seed: u64) -> Result<Sequential> {
    let he = Initializer::HeNormal;
    let conv = |filters, pad| {
        Conv2D(filters, 3)
            .pad(pad)
            .activation(Relu)
            .kernel_initializer(he)
    };
    let mut m = Sequential::with_seed(&[1, 28, 28], seed);
    m.name = "deep-convnet".into();
    m.add(conv(16, 1))? // [16, 28, 28]
        .add(conv(16, 1))?
        .add(MaxPooling2D(2))? // [16, 14, 14]
        .add(conv(32, 1))?
        .add(conv(32, 2))? // [32, 16, 16]
        .add(MaxPooling2D(2))? // [32, 8, 8]
        .add(conv(64, 1))?
        .add(conv(64, 1))?
        .add(MaxPooling2D(2))? // [64, 4, 4]
        .add(Flatten())? // [1024]
        .add(Dense(50).activation(Relu).kernel_initializer(he))?
        .add(Dropout(0.5))?
        .add(Dense(10).kernel_initializer(he))?
        .add(Dropout(0.5))?
        .add(Activation(Softmax))?;
    Ok(m)
}

/// The Keras tutorial CNN: Conv32 - Pool - Conv64 - Pool - Conv64 - Flatten - Dense64 -
/// Dropout 0.2 - Dense10; 93,322 parameters.
pub fn keras_cnn(seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_seed(&[1, 28, 28], seed);
    m.name = "keras-cnn".into();
    m.add(Conv2D(32, 3).activation(Relu))? // [32, 26, 26]
        .add(MaxPooling2D(2))? // [32, 13, 13]
        .add(Conv2D(64, 3).activation(Relu))? // [64, 11, 11]
        .add(MaxPooling2D(2))? // [64, 5, 5]
        .add(Conv2D(64, 3).activation(Relu))? // [64, 3, 3]
        .add(Flatten())? // [576]
        .add(Dense(64).activation(Relu))?
        .add(Dropout(0.2))?
        .add(Dense(10).activation(Softmax))?;
    Ok(m)
}

/// Dense128 - Dense128 - BN - Dropout 0.2 - Dense64 - Dense64 - BN - Dropout 0.2 - Dense10.
pub fn mlp_bn(seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_seed(&[1, 28, 28], seed);
    m.name = "mlp-bn".into();
    m.add(Flatten())?
        .add(Dense(128).activation(Relu))?
        .add(Dense(128).activation(Relu))?
        .add(BatchNormalization())?
        .add(Dropout(0.2))?
        .add(Dense(64).activation(Relu))?
        .add(Dense(64).activation(Relu))?
        .add(BatchNormalization())?
        .add(Dropout(0.2))?
        .add(Dense(10).activation(Softmax))?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_cnn_has_93322_params() {
        let m = keras_cnn(0).unwrap();
        assert_eq!(m.count_params(), (93_322, 0));
        assert_eq!(m.output_shape(), &[10]);
        let s = m.summary();
        assert!(s.contains("Total params: 93,322"), "{s}");
    }

    #[test]
    fn mlp_bn_counts_moving_statistics_as_buffers() {
        let m = mlp_bn(0).unwrap();
        assert_eq!(m.count_params(), (130_826 - 384, 0));
        assert_eq!(m.count_buffers(), 384);
        assert!(m
            .summary()
            .contains("Batch-norm statistics (not params): 384"));
    }

    #[test]
    fn deep_convnet_shapes_follow_the_book() {
        let m = deep_convnet(0).unwrap();
        let shapes = m.layer_output_shapes();
        assert_eq!(shapes[3], vec![32, 14, 14]);
        assert_eq!(shapes[4], vec![32, 16, 16]);
        assert_eq!(shapes[9], vec![1024]);
        assert_eq!(m.output_shape(), &[10]);
    }

    #[test]
    fn every_builtin_builds_and_unknown_names_fail() {
        for n in NAMES {
            build(n, 1).unwrap();
            recipe(n).unwrap();
        }
        let e = build("lenet-7", 0).err().unwrap().to_string();
        assert!(e.contains("lenet-7") && e.contains("keras-cnn"), "{e}");
    }
}
