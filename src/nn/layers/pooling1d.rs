//! `MaxPooling1D` and `AveragePooling1D`: windows over the time axis of channels-last
//! sequences.
//!
//! # Shapes
//! `[N, T, C] -> [N, T', C]`; `T` may be unknown (`None`). Keras' defaults: `pool_size`
//! 2, `strides` = `pool_size`, `padding` `"valid"` (`T' = (T - pool_size) / strides + 1`)
//! or `"same"` (`T' = ceil(T / strides)`, TensorFlow's split with the odd cell after;
//! padded cells never win a max and do not count in a mean).
//!
//! No kernel of its own: the sequence is seen as a one-row image, `[N, T, C] -> [N, C,
//! 1, T]`, and pooled by the 2-D pool ops with a `(1, pool_size)` window, which bring
//! their backward (the recorded argmax for max) and their tests.
//!
//! Masks: dropped, padded steps pooled like real ones (Keras' pools do not support
//! masking).

use super::conv1d::single;
use super::conv2d::{window_axis, PaddingMode};
use super::dims::{batch_shape_str, Dim};
use super::registry::rank_is;
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param, PoolKind};
use crate::engine::{Rng, Var};
use crate::error::{Error, Result};
use crate::ops::permute::permute;
use crate::ops::pool::{avg_pool2d, max_pool2d, Pool2dSpec};
use crate::ops::shape::reshape;
use crate::ops::{window_out_len, Padding2d};
use serde::{Deserialize, Serialize};

fn two() -> usize {
    2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool1dConfig {
    /// Max or average: given by the class name, not a JSON field.
    #[serde(skip)]
    pub kind: PoolKind,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(with = "single", default = "two")]
    pub pool_size: usize,
    /// Defaults to `pool_size` (`null` in JSON).
    #[serde(with = "single::option", default)]
    pub strides: Option<usize>,
    #[serde(default)]
    pub padding: PaddingMode,
}

impl Pool1dConfig {
    pub fn new(kind: PoolKind, pool_size: usize) -> Pool1dConfig {
        Pool1dConfig {
            kind,
            name: None,
            pool_size,
            strides: None,
            padding: PaddingMode::Valid,
        }
    }
    /// `MaxPooling1D(pool_size)`.
    pub fn max(pool_size: usize) -> Pool1dConfig {
        Pool1dConfig::new(PoolKind::Max, pool_size)
    }
    /// `AveragePooling1D(pool_size)`.
    pub fn average(pool_size: usize) -> Pool1dConfig {
        Pool1dConfig::new(PoolKind::Average, pool_size)
    }
    pub fn strides(mut self, s: usize) -> Self {
        self.strides = Some(s);
        self
    }
    pub fn padding(mut self, p: PaddingMode) -> Self {
        self.padding = p;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.to_string());
        self
    }
    fn stride(&self) -> usize {
        self.strides.unwrap_or(self.pool_size)
    }
    /// Zeros (never counted) before and after a sequence of `t` steps.
    pub fn pads(&self, t: usize) -> (usize, usize) {
        match self.padding {
            PaddingMode::Valid => (0, 0),
            PaddingMode::Same => Padding2d::same_1d(t, self.pool_size, self.stride(), 1),
        }
    }
    fn does_not_fit(&self, name: &str, input: &str) -> Error {
        Error::shape(format!(
            "layer '{name}' ({}): pool_size {} is longer than the {input} input with padding \
             {}",
            self.class_name(),
            self.pool_size,
            serde_json::to_string(&self.padding).expect("an enum")
        ))
    }
}

/// The registry lines (see `layers::LAYER_TYPES`): one config type, two classes.
pub const MAX_POOLING_1D: LayerType = LayerType {
    class_name: "MaxPooling1D",
    parse: |v| {
        let c: Pool1dConfig = serde_json::from_value(v)?;
        Ok(Pool1dConfig {
            kind: PoolKind::Max,
            ..c
        }
        .into())
    },
};
pub const AVERAGE_POOLING_1D: LayerType = LayerType {
    class_name: "AveragePooling1D",
    parse: |v| {
        let c: Pool1dConfig = serde_json::from_value(v)?;
        Ok(Pool1dConfig {
            kind: PoolKind::Average,
            ..c
        }
        .into())
    },
};

impl LayerKind for Pool1dConfig {
    fn class_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPooling1D",
            PoolKind::Average => "AveragePooling1D",
        }
    }
    fn base_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "max_pooling1d",
            PoolKind::Average => "average_pooling1d",
        }
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let class = self.class_name();
        let input = rank_is(name, class, inputs, 2, "sequences [batch, steps, channels]")?;
        if self.pool_size == 0 || self.stride() == 0 {
            return Err(Error::invalid(format!(
                "layer '{name}' ({class}): pool_size ({}) and strides ({}) must be positive",
                self.pool_size,
                self.stride()
            )));
        }
        let t = window_axis(input[0], |t| self.pads(t), self.pool_size, self.stride(), 1)
            .map_err(|_| self.does_not_fit(name, &batch_shape_str(input)))?;
        Ok(vec![t, input[1]])
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(Pooling1D {
            name,
            cfg: self.clone(),
        }))
    }
}

pub struct Pooling1D {
    pub name: String,
    pub cfg: Pool1dConfig,
}

impl Layer for Pooling1D {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, _ctx: &mut ForwardCtx) -> Result<Var> {
        let class = self.cfg.class_name();
        let &[n, t, c] = &x.shape()[..] else {
            return Err(Error::shape(format!(
                "layer '{}' ({class}) expects sequences [batch, steps, channels], got {:?}",
                self.name,
                x.shape()
            )));
        };
        let (p, s) = (self.cfg.pool_size, self.cfg.stride());
        let (left, right) = self.cfg.pads(t);
        let t_out = window_out_len(t, left, right, p, s, 1).ok_or_else(|| {
            self.cfg
                .does_not_fit(&self.name, &format!("[{n}, {t}, {c}]"))
        })?;
        let spec = Pool2dSpec {
            kernel: (1, p),
            stride: (1, s),
            padding: Padding2d {
                top: 0,
                bottom: 0,
                left,
                right,
            },
        };
        let xt = reshape(&permute(x, &[0, 2, 1])?, &[n, c, 1, t])?; // [N, C, 1, T]
        let z = match self.cfg.kind {
            PoolKind::Max => max_pool2d(&xt, &spec),
            PoolKind::Average => avg_pool2d(&xt, &spec),
        }
        .map_err(|e| e.context(&format!("layer '{}' ({class})", self.name)))?; // [N, C, 1, T']
        permute(&reshape(&z, &[n, c, t_out])?, &[0, 2, 1]) // [N, T', C]
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        Pool1dConfig {
            name: Some(self.name.clone()),
            ..self.cfg.clone()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Tensor;

    #[test]
    fn configs_shapes_and_values() {
        let c: LayerConfig = serde_json::from_str(
            r#"{"class_name": "MaxPooling1D", "config": {"pool_size": [3], "strides": null, "padding": "same"}}"#,
        )
        .unwrap();
        let seq = |t: Option<usize>| [Dim(t), Dim::known(2)];
        assert_eq!(c.output_shape("p", &seq(Some(7))).unwrap(), seq(Some(3)));
        assert_eq!(c.output_shape("p", &seq(None)).unwrap(), seq(None));
        let c: LayerConfig =
            serde_json::from_str(r#"{"class_name": "AveragePooling1D", "config": {}}"#).unwrap();
        assert_eq!(c.class_name(), "AveragePooling1D");
        assert_eq!(c.output_shape("p", &seq(Some(7))).unwrap(), seq(Some(3)));
        let e = c.output_shape("p", &seq(Some(1))).unwrap_err().to_string();
        assert!(
            e.contains("layer 'p' (AveragePooling1D): pool_size 2"),
            "{e}"
        );
        let e = LayerConfig::from(Pool1dConfig::max(2).strides(0))
            .output_shape("p", &seq(Some(4)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be positive"), "{e}");

        // [1, 5, 2]: channel 0 is 0..5, channel 1 is 10 - t.
        let x: Vec<f32> = (0..5).flat_map(|t| [t as f32, 10.0 - t as f32]).collect();
        let x = Var::constant(Tensor::from_vec(x, &[1, 5, 2]));
        let mut rng = Rng::new(0);
        let mut ctx = ForwardCtx {
            training: false,
            rng: &mut rng,
            output_logits: false,
        };
        let mut run = |cfg: Pool1dConfig| {
            let mut l = LayerConfig::from(cfg)
                .build("p".into(), &seq(None), &mut Rng::new(0))
                .unwrap();
            l.forward(&x, &mut ctx).unwrap().value().to_f32_vec()
        };
        assert_eq!(run(Pool1dConfig::max(2)), [1., 10., 3., 8.]);
        // Same, stride 2 over 5 steps: windows [0,1], [2,3], [4] (+ one padded cell).
        assert_eq!(
            run(Pool1dConfig::average(2).padding(PaddingMode::Same)),
            [0.5, 9.5, 2.5, 7.5, 4., 6.]
        );
        assert_eq!(
            run(Pool1dConfig::max(3).strides(1)),
            [2., 10., 3., 9., 4., 8.]
        );
    }
}
