//! The autoencoders of the learners' note (after the Keras blog's "Building
//! Autoencoders in Keras"): a model trained to give back its input through a 32-number
//! code, and the two sub-models that share its weights (`nn/sub_model.rs`): the encoder
//! (input -> code) and the decoder (code -> image).
//!
//! Both recipes name their code layer `code`, so the encoder, the decoder, `nabla
//! generate` and the report find it in any saved run; the output has the input's shape,
//! so `nabla train` fits input -> input.

use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::nn::layers::keras::*;
use crate::nn::{Graph, LayerConfig};
use crate::training::Sequential;

/// The name of the code layer.
pub const CODE_LAYER: &str = "code";
/// The length of the code (the note's 32 numbers: 784 / 32 = 24.5 times smaller).
pub const CODE_SIZE: usize = 32;

/// The built-in autoencoders.
pub const AUTOENCODERS: [&str; 2] = ["autoencoder", "conv-autoencoder"];

/// Whether `name` is one of the built-in autoencoders.
pub fn is_autoencoder_name(name: &str) -> bool {
    AUTOENCODERS.contains(&name)
}

/// The note's dense autoencoder: 784 -> 32 (ReLU, the code) -> 784 (sigmoid), reshaped
/// back to the image.
pub fn autoencoder(seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_seed(&[1, 28, 28], seed);
    m.name = "autoencoder".into();
    m.add(Flatten())?
        .add(LayerConfig::from(Dense(CODE_SIZE).activation(Relu)).named(CODE_LAYER))?
        .add(Dense(784).activation(Sigmoid))?
        .add(Reshape(&[1, 28, 28]))?;
    Ok(m)
}

/// A convolutional autoencoder with the same 32-number code: Conv2D/MaxPooling2D down to
/// [8, 7, 7], Dense 32 (the code), then back up with a strided Conv2DTranspose and an
/// UpSampling2D, and a sigmoid Conv2D to one channel.
pub fn conv_autoencoder(seed: u64) -> Result<Sequential> {
    let conv = |filters| Conv2D(filters, 3).padding(Same).activation(Relu);
    let mut m = Sequential::with_seed(&[1, 28, 28], seed);
    m.name = "conv-autoencoder".into();
    m.add(conv(16))? // [16, 28, 28]
        .add(MaxPooling2D(2))? // [16, 14, 14]
        .add(conv(8))? // [8, 14, 14]
        .add(MaxPooling2D(2))? // [8, 7, 7]
        .add(Flatten())? // [392]
        .add(LayerConfig::from(Dense(CODE_SIZE).activation(Relu)).named(CODE_LAYER))?
        .add(Dense(8 * 7 * 7).activation(Relu))?
        .add(Reshape(&[8, 7, 7]))?
        .add(
            Conv2DTranspose(16, 3)
                .strides(2)
                .padding(Same)
                .activation(Relu),
        )? // [16, 14, 14]
        .add(UpSampling2D(2))? // [16, 28, 28]
        .add(Conv2D(1, 3).padding(Same).activation(Sigmoid))?; // [1, 28, 28]
    Ok(m)
}

/// Whether `m` is an autoencoder: it has a `code` layer and gives back its input's shape.
pub fn is_autoencoder(m: &Graph) -> bool {
    m.get_layer(CODE_LAYER).is_some()
        && m.inputs().len() == 1
        && m.output_shapes().len() == 1
        && m.output_shape() == m.input_shape()
}

fn check(m: &Graph) -> Result<()> {
    if is_autoencoder(m) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "model '{}' is not an autoencoder: it needs a layer named '{CODE_LAYER}' and an \
         output of its input's shape (train --model autoencoder or conv-autoencoder)",
        m.name
    )))
}

/// The encoder: input -> code, sharing `m`'s weights.
pub fn encoder(m: &mut Graph) -> Result<Graph> {
    check(m)?;
    let input = m.inputs()[0].name.clone();
    let mut e = m.sub_model(&[&input], &[CODE_LAYER])?;
    e.name = format!("{}_encoder", m.name);
    Ok(e)
}

/// The decoder: code -> image, the layers after the code on a new input, sharing `m`'s
/// weights.
pub fn decoder(m: &mut Graph) -> Result<Graph> {
    check(m)?;
    let output = m.output_names()[0].clone();
    let mut d = m.sub_model(&[CODE_LAYER], &[&output])?;
    d.name = format!("{}_decoder", m.name);
    Ok(d)
}

/// The file of a run that holds its code statistics (`CodeStats`).
pub const CODES_FILE: &str = "codes.json";

/// The Gaussian fitted to the training set's codes: mean and full covariance. Random
/// codes drawn from it decode into digit-like images; a standard normal would not (the
/// codes are ReLU outputs: non-negative, of their own scales, correlated).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CodeStats {
    /// How many codes the statistics come from.
    pub samples: usize,
    pub mean: Vec<f32>,
    /// Row-major, `mean.len()` x `mean.len()`.
    pub covariance: Vec<f32>,
}

impl CodeStats {
    /// The statistics of `codes` (`[N, D]`, N >= 2).
    pub fn fit(codes: &Tensor) -> Result<CodeStats> {
        let (n, d) = match codes.shape() {
            &[n, d] if n >= 2 && d >= 1 => (n, d),
            s => {
                return Err(Error::shape(format!(
                    "code statistics need [N >= 2, D] codes, got {s:?}"
                )))
            }
        };
        let v = codes.to_f32_vec();
        let mut mean = vec![0f64; d];
        for row in v.chunks(d) {
            for (m, &x) in mean.iter_mut().zip(row) {
                *m += x as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0f64; d * d];
        for row in v.chunks(d) {
            for i in 0..d {
                let a = row[i] as f64 - mean[i];
                for j in 0..d {
                    cov[i * d + j] += a * (row[j] as f64 - mean[j]);
                }
            }
        }
        Ok(CodeStats {
            samples: n,
            mean: mean.iter().map(|&m| m as f32).collect(),
            covariance: cov.iter().map(|&c| (c / (n - 1) as f64) as f32).collect(),
        })
    }

    /// Reads and checks the statistics a run saved (`CODES_FILE`), naming the file.
    pub fn from_json(path: &std::path::Path, text: &str) -> Result<CodeStats> {
        let s: CodeStats = serde_json::from_str(text)
            .map_err(|e| Error::format(path.display().to_string(), e.to_string()))?;
        let d = s.mean.len();
        if d == 0 || s.covariance.len() != d * d || s.mean.iter().any(|x| !x.is_finite()) {
            return Err(Error::format(
                path.display().to_string(),
                format!(
                    "a mean of {d} numbers needs a {d}x{d} covariance of finite numbers, got {} \
                     numbers",
                    s.covariance.len()
                ),
            ));
        }
        Ok(s)
    }

    /// `count` codes drawn from N(mean, covariance), seeded: `mean + L z` with `L` the
    /// Cholesky factor, `z` standard normal. Negative entries are set to 0, as a ReLU
    /// code never has them.
    pub fn sample(&self, count: usize, seed: u64) -> Result<Tensor> {
        let d = self.mean.len();
        let l = cholesky(&self.covariance, d)?;
        let mut rng = crate::engine::Rng::new(seed);
        let mut out = Vec::with_capacity(count * d);
        let mut z = vec![0f64; d];
        for _ in 0..count {
            z.iter_mut().for_each(|x| *x = rng.normal() as f64);
            for i in 0..d {
                let lz: f64 = (0..=i).map(|j| l[i * d + j] * z[j]).sum();
                out.push((self.mean[i] as f64 + lz).max(0.0) as f32);
            }
        }
        Ok(Tensor::from_vec(out, &[count, d]))
    }
}

/// The lower Cholesky factor of the `d` x `d` covariance `c`. A code unit that is never
/// active has zero variance, so a small ridge (1e-6 of the mean variance) keeps the
/// factor defined.
fn cholesky(c: &[f32], d: usize) -> Result<Vec<f64>> {
    let trace: f64 = (0..d).map(|i| c[i * d + i] as f64).sum();
    let ridge = 1e-6 * (trace / d as f64).max(1e-12);
    let mut l = vec![0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            let cij = c[i * d + j] as f64 + if i == j { ridge } else { 0.0 };
            if i == j {
                let v = cij - s;
                if v.is_nan() || v <= 0.0 {
                    return Err(Error::invalid(format!(
                        "the code covariance is not positive definite (pivot {i}: {v})"
                    )));
                }
                l[i * d + i] = v.sqrt();
            } else {
                l[i * d + j] = (cij - s) / l[j * d + j];
            }
        }
    }
    Ok(l)
}

/// The denoising variant's corruption (`nabla train --denoise SIGMA`): Gaussian noise of
/// standard deviation `sigma` added to each training batch's inputs, clipped to [0, 1]
/// (pixels); the targets stay the clean images. Fresh noise every epoch and batch.
#[derive(Debug, Clone, Copy)]
pub struct GaussianNoise {
    pub sigma: f32,
}

impl crate::training::BatchTransform for GaussianNoise {
    fn is_identity(&self) -> bool {
        self.sigma == 0.0
    }
    fn check_input(&self, _shape: &[usize]) -> Result<()> {
        if !(self.sigma.is_finite() && self.sigma >= 0.0) {
            return Err(Error::invalid(format!(
                "--denoise must be a noise level >= 0, got {}",
                self.sigma
            )));
        }
        Ok(())
    }
    fn apply_batch(&self, x: &Tensor, seed: u64, epoch: usize, batch: usize) -> Result<Tensor> {
        let mut rng = crate::engine::Rng::new(
            seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ (batch as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f),
        );
        let v: Vec<f32> = x
            .to_f32_vec()
            .into_iter()
            .map(|p| (p + self.sigma * rng.normal()).clamp(0.0, 1.0))
            .collect();
        Ok(Tensor::from_vec(v, x.shape()))
    }
}
