//! The `ReLU` and `LeakyReLU` layers, with Keras' class names, defaults and config
//! fields.
//!
//! - `ReLU(max_value=None, negative_slope=0.0, threshold=0.0)`: `max_value` where
//!   `x >= max_value`, `x` where `threshold <= x < max_value`, else
//!   `negative_slope * (x - threshold)` (`ReLU(max_value=6)` is ReLU6).
//! - `LeakyReLU(alpha=0.3)`: `x` for `x > 0`, else `alpha * x`. The default 0.3 is
//!   Keras' layer default, not the 0.2 of the `"leaky_relu"` activation string. Keras 3
//!   renamed the field `negative_slope` (same default); configs may use either name and
//!   are written back with `alpha`.
//!
//! Like Keras, both reject negative parameters (a negative slope or threshold is almost
//! certainly a typo, and a negative `max_value` would clip everything below zero).
//!
//! Masks: both pass their input's mask through unchanged (as in Keras).

use super::dims::Dim;
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::activation as act;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReLUConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Upper clip (`None`: unbounded).
    #[serde(default)]
    pub max_value: Option<f32>,
    /// Slope below the threshold.
    #[serde(default)]
    pub negative_slope: f32,
    /// Inputs below this are on the `negative_slope` piece.
    #[serde(default)]
    pub threshold: f32,
}

impl Default for ReLUConfig {
    fn default() -> Self {
        ReLUConfig {
            name: None,
            max_value: None,
            negative_slope: 0.0,
            threshold: 0.0,
        }
    }
}

impl ReLUConfig {
    pub fn max_value(mut self, m: f32) -> Self {
        self.max_value = Some(m);
        self
    }
    pub fn negative_slope(mut self, a: f32) -> Self {
        self.negative_slope = a;
        self
    }
    pub fn threshold(mut self, t: f32) -> Self {
        self.threshold = t;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakyReLUConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Slope for `x <= 0` (Keras 3's `negative_slope`).
    #[serde(default = "default_alpha", alias = "negative_slope")]
    pub alpha: f32,
}

fn default_alpha() -> f32 {
    0.3
}

impl Default for LeakyReLUConfig {
    fn default() -> Self {
        LeakyReLUConfig {
            name: None,
            alpha: default_alpha(),
        }
    }
}

/// The registry lines (see `layers::LAYER_TYPES`).
pub const RELU: LayerType = LayerType::of::<ReLUConfig>("ReLU");
pub const LEAKY_RELU: LayerType = LayerType::of::<LeakyReLUConfig>("LeakyReLU");

impl LayerKind for ReLUConfig {
    fn class_name(&self) -> &'static str {
        "ReLU"
    }
    // Keras derives these from the class name: `re_lu`, `leaky_re_lu`.
    fn base_name(&self) -> &'static str {
        "re_lu"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        check_relu(self, name)?;
        Ok(inputs[0].to_vec())
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(ReLU {
            name,
            max_value: self.max_value,
            negative_slope: self.negative_slope,
            threshold: self.threshold,
        }))
    }
}

impl LayerKind for LeakyReLUConfig {
    fn class_name(&self) -> &'static str {
        "LeakyReLU"
    }
    fn base_name(&self) -> &'static str {
        "leaky_re_lu"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        check_leaky(self, name)?;
        Ok(inputs[0].to_vec())
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(LeakyReLU {
            name,
            alpha: self.alpha,
        }))
    }
}

fn non_negative(name: &str, class: &str, field: &str, v: f32) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "layer '{name}' ({class}): {field} must be a non-negative number, got {v}"
        )))
    }
}

fn check_relu(c: &ReLUConfig, name: &str) -> Result<()> {
    if let Some(m) = c.max_value {
        non_negative(name, "ReLU", "max_value", m)?;
    }
    non_negative(name, "ReLU", "negative_slope", c.negative_slope)?;
    non_negative(name, "ReLU", "threshold", c.threshold)
}

fn check_leaky(c: &LeakyReLUConfig, name: &str) -> Result<()> {
    non_negative(name, "LeakyReLU", "alpha", c.alpha)
}

pub struct ReLU {
    pub name: String,
    pub max_value: Option<f32>,
    pub negative_slope: f32,
    pub threshold: f32,
}

impl Layer for ReLU {
    /// Keras: the mask passes through unchanged (see `Layer`).
    fn compute_mask(&self, _x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(mask.cloned())
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn is_plain_relu(&self) -> bool {
        self.max_value.is_none() && self.negative_slope == 0.0 && self.threshold == 0.0
    }
    fn forward(&mut self, x: &Var, _ctx: &mut ForwardCtx) -> Result<Var> {
        Ok(act::relu_general(
            x,
            self.max_value,
            self.negative_slope,
            self.threshold,
        ))
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        ReLUConfig {
            name: Some(self.name.clone()),
            max_value: self.max_value,
            negative_slope: self.negative_slope,
            threshold: self.threshold,
        }
        .into()
    }
}

pub struct LeakyReLU {
    pub name: String,
    pub alpha: f32,
}

impl Layer for LeakyReLU {
    /// Keras: the mask passes through unchanged (see `Layer`).
    fn compute_mask(&self, _x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(mask.cloned())
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, _ctx: &mut ForwardCtx) -> Result<Var> {
        Ok(act::leaky_relu(x, self.alpha))
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        LeakyReLUConfig {
            name: Some(self.name.clone()),
            alpha: self.alpha,
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::dims::dims;

    fn parse(json: &str) -> std::result::Result<LayerConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn configs_parse_with_keras_defaults_and_round_trip() {
        assert_eq!(
            parse(r#"{"class_name": "ReLU", "config": {}}"#).unwrap(),
            LayerConfig::new(ReLUConfig::default())
        );
        assert_eq!(
            parse(r#"{"class_name": "ReLU", "config": {"max_value": 6.0, "threshold": 0.5}}"#)
                .unwrap(),
            LayerConfig::new(ReLUConfig::default().max_value(6.0).threshold(0.5))
        );
        let leaky = |json: &str| match parse(json).unwrap().downcast_ref::<LeakyReLUConfig>() {
            Some(c) => c.alpha,
            None => panic!("not a LeakyReLU config"),
        };
        assert_eq!(leaky(r#"{"class_name": "LeakyReLU", "config": {}}"#), 0.3);
        assert_eq!(
            leaky(r#"{"class_name": "LeakyReLU", "config": {"alpha": 0.1}}"#),
            0.1
        );
        // Keras 3's name for the same field.
        assert_eq!(
            leaky(r#"{"class_name": "LeakyReLU", "config": {"negative_slope": 0.05}}"#),
            0.05
        );
        assert!(parse(r#"{"class_name": "ReLU", "config": {"max": 6}}"#).is_err());

        for c in [
            LayerConfig::new(ReLUConfig::default().max_value(6.0).negative_slope(0.1)),
            LayerConfig::new(LeakyReLUConfig {
                name: Some("lr".into()),
                alpha: 0.2,
            }),
        ] {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(parse(&json).unwrap(), c, "{json}");
        }
        let json = serde_json::to_string(&LayerConfig::new(LeakyReLUConfig::default())).unwrap();
        assert_eq!(
            json,
            r#"{"class_name":"LeakyReLU","config":{"name":null,"alpha":0.3}}"#
        );
    }

    #[test]
    fn negative_parameters_are_errors_naming_layer_and_field() {
        let bad = [
            (
                LayerConfig::new(ReLUConfig::default().max_value(-1.0)),
                "max_value",
            ),
            (
                LayerConfig::new(ReLUConfig::default().negative_slope(-0.1)),
                "negative_slope",
            ),
            (
                LayerConfig::new(ReLUConfig::default().threshold(f32::NAN)),
                "threshold",
            ),
            (
                LayerConfig::new(LeakyReLUConfig {
                    name: None,
                    alpha: -0.3,
                }),
                "alpha",
            ),
        ];
        for (c, field) in bad {
            let e = c.output_shape("act", &dims(&[4])).unwrap_err().to_string();
            assert!(e.contains("layer 'act'") && e.contains(field), "{e}");
        }
        let ok = LayerConfig::new(ReLUConfig::default().max_value(6.0));
        assert_eq!(ok.output_shape("act", &dims(&[2, 3])).unwrap(), [2, 3]);
        assert_eq!(ok.class_name(), "ReLU");
        assert_eq!(ok.base_name(), "re_lu");
        assert_eq!(
            LayerConfig::new(LeakyReLUConfig::default()).base_name(),
            "leaky_re_lu"
        );
    }

    #[test]
    fn summary_names_and_model_json_round_trip() {
        use crate::nn::layers::keras::*;
        use crate::nn::{Graph as Sequential, ModelConfig};
        let mut m = Sequential::new(&[4]);
        m.add(Dense(3))
            .unwrap()
            .add(ReLU().max_value(6.0))
            .unwrap()
            .add(LeakyReLU(0.1))
            .unwrap()
            .add(ReLU())
            .unwrap();
        let table = m.summary();
        for want in ["re_lu (ReLU)", "leaky_re_lu (LeakyReLU)", "re_lu_1 (ReLU)"] {
            assert!(table.contains(want), "{want} missing from\n{table}");
        }
        let json = serde_json::to_string(&m.config()).unwrap();
        let cfg: ModelConfig = serde_json::from_str(&json).unwrap();
        let back = Sequential::from_config(&cfg, 0).unwrap();
        assert_eq!(back.config(), m.config());
        assert!(json.contains(r#""max_value":6.0"#), "{json}");
    }
}
