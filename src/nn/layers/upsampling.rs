//! `UpSampling2D`: repeats (nearest) or interpolates (bilinear, half-pixel centres as in
//! Keras 3 and PyTorch's `align_corners=False`) the rows and columns of NCHW images.
//!
//! # Shapes
//! `[N, C, H, W] -> [N, C, H*size_h, W*size_w]`; `H` and `W` may be unknown (`None`).
//!
//! Masks: dropped (Keras' `UpSampling2D` does not support masking).

use super::conv2d::pair;
use super::dims::Dim;
use super::registry::rank_is;
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Var};
use crate::error::{Error, Result};
use crate::ops::upsample::{upsample2d, Interpolation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InterpolationMode {
    #[default]
    Nearest,
    Bilinear,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpSampling2DConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Factors for rows and columns (Keras' default 2).
    #[serde(with = "pair", default = "two_two")]
    pub size: (usize, usize),
    #[serde(default)]
    pub interpolation: InterpolationMode,
}

fn two_two() -> (usize, usize) {
    (2, 2)
}

impl UpSampling2DConfig {
    pub fn new(size: usize) -> UpSampling2DConfig {
        UpSampling2DConfig {
            name: None,
            size: (size, size),
            interpolation: InterpolationMode::Nearest,
        }
    }
    pub fn interpolation(mut self, i: InterpolationMode) -> Self {
        self.interpolation = i;
        self
    }
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const UPSAMPLING_2D: LayerType = LayerType::of::<UpSampling2DConfig>("UpSampling2D");

impl LayerKind for UpSampling2DConfig {
    fn class_name(&self) -> &'static str {
        "UpSampling2D"
    }
    fn base_name(&self) -> &'static str {
        "up_sampling2d"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let d = rank_is(
            name,
            "UpSampling2D",
            inputs,
            3,
            "images [batch, channels, height, width]",
        )?;
        if self.size.0 == 0 || self.size.1 == 0 {
            return Err(Error::invalid(format!(
                "layer '{name}' (UpSampling2D): size {:?} must be positive",
                self.size
            )));
        }
        Ok(vec![
            d[0],
            d[1].map(|h| h * self.size.0),
            d[2].map(|w| w * self.size.1),
        ])
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(UpSampling2D {
            name,
            cfg: self.clone(),
        }))
    }
}

pub struct UpSampling2D {
    pub name: String,
    pub cfg: UpSampling2DConfig,
}

impl Layer for UpSampling2D {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, _ctx: &mut ForwardCtx) -> Result<Var> {
        let mode = match self.cfg.interpolation {
            InterpolationMode::Nearest => Interpolation::Nearest,
            InterpolationMode::Bilinear => Interpolation::Bilinear,
        };
        upsample2d(x, self.cfg.size, mode) // [N, C, H*SH, W*SW]
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        UpSampling2DConfig {
            name: Some(self.name.clone()),
            ..self.cfg.clone()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::dims::dims;

    #[test]
    fn config_reads_keras_forms_and_shapes_follow_size() {
        let c: LayerConfig = serde_json::from_str(
            r#"{"class_name": "UpSampling2D", "config": {"size": [2, 3], "interpolation": "bilinear"}}"#,
        )
        .unwrap();
        assert_eq!(c.output_shape("u", &dims(&[4, 5, 6])).unwrap(), [4, 10, 18]);
        let open = [Dim::known(4), Dim::NONE, Dim::known(6)];
        assert_eq!(
            c.output_shape("u", &open).unwrap(),
            [Dim::known(4), Dim::NONE, Dim::known(18)]
        );
        assert!(c.output_shape("u", &dims(&[4, 5])).is_err());
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"class_name":"UpSampling2D","config":{"name":null,"size":[2,3],"interpolation":"bilinear"}}"#
        );
        assert!(serde_json::from_str::<LayerConfig>(
            r#"{"class_name": "UpSampling2D", "config": {"interpolation": "cubic"}}"#
        )
        .is_err());
    }
}
