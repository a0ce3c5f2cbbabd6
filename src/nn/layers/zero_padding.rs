//! `ZeroPadding2D`: pads the height and width of NCHW images with zeros.
//!
//! `padding` takes Keras' three forms: `1` (all four sides), `[top_bottom, left_right]`
//! (symmetric per axis) or `[[top, bottom], [left, right]]`. Configs are written back in
//! the last, explicit form (as Keras' `get_config` does).
//!
//! Masks: dropped (Keras' `ZeroPadding2D` does not support masking).

use super::dims::Dim;
use super::registry::rank_is;
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Var};
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// Zero padding per side of the two spatial axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PaddingSpec", into = "[[usize; 2]; 2]")]
pub struct Padding2D {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Padding2D {
    /// The same padding on all four sides.
    pub fn uniform(p: usize) -> Padding2D {
        Padding2D::symmetric(p, p)
    }
    /// `height` rows above and below, `width` columns left and right.
    pub fn symmetric(height: usize, width: usize) -> Padding2D {
        Padding2D::explicit((height, height), (width, width))
    }
    pub fn explicit((top, bottom): (usize, usize), (left, right): (usize, usize)) -> Padding2D {
        Padding2D {
            top,
            bottom,
            left,
            right,
        }
    }
    /// `[top, bottom, left, right]`, as `ops::shape::zero_pad2d` takes it.
    pub fn sides(&self) -> [usize; 4] {
        [self.top, self.bottom, self.left, self.right]
    }
}

impl From<usize> for Padding2D {
    fn from(p: usize) -> Self {
        Padding2D::uniform(p)
    }
}

impl From<Padding2D> for [[usize; 2]; 2] {
    fn from(p: Padding2D) -> Self {
        [[p.top, p.bottom], [p.left, p.right]]
    }
}

/// The JSON forms `padding` accepts.
#[derive(Deserialize)]
#[serde(untagged)]
enum PaddingSpec {
    Uniform(usize),
    Symmetric([usize; 2]),
    Explicit([[usize; 2]; 2]),
    Other(serde_json::Value),
}

impl TryFrom<PaddingSpec> for Padding2D {
    type Error = String;
    fn try_from(s: PaddingSpec) -> std::result::Result<Self, String> {
        match s {
            PaddingSpec::Uniform(p) => Ok(Padding2D::uniform(p)),
            PaddingSpec::Symmetric([h, w]) => Ok(Padding2D::symmetric(h, w)),
            PaddingSpec::Explicit([[t, b], [l, r]]) => Ok(Padding2D::explicit((t, b), (l, r))),
            PaddingSpec::Other(v) => Err(format!(
                "ZeroPadding2D padding must be an int, [top_bottom, left_right] or \
                 [[top, bottom], [left, right]] of non-negative ints, got {v}"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroPadding2DConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Keras' default is 1 on every side.
    #[serde(default = "default_padding")]
    pub padding: Padding2D,
}

fn default_padding() -> Padding2D {
    Padding2D::uniform(1)
}

impl ZeroPadding2DConfig {
    pub fn new(padding: impl Into<Padding2D>) -> ZeroPadding2DConfig {
        ZeroPadding2DConfig {
            name: None,
            padding: padding.into(),
        }
    }
}

pub struct ZeroPadding2D {
    pub name: String,
    pub padding: Padding2D,
}

impl Layer for ZeroPadding2D {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, _ctx: &mut ForwardCtx) -> Result<Var> {
        crate::ops::shape::zero_pad2d(x, self.padding.sides())
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        ZeroPadding2DConfig {
            name: Some(self.name.clone()),
            padding: self.padding,
        }
        .into()
    }
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const ZERO_PADDING_2D: LayerType = LayerType::of::<ZeroPadding2DConfig>("ZeroPadding2D");

impl LayerKind for ZeroPadding2DConfig {
    fn class_name(&self) -> &'static str {
        "ZeroPadding2D"
    }
    fn base_name(&self) -> &'static str {
        "zero_padding2d"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let input = rank_is(
            name,
            "ZeroPadding2D",
            inputs,
            3,
            "images [batch, channels, height, width]",
        )?;
        let p = self.padding;
        // Checked: huge paddings are refused by `limits` first, but a wrapped sum must
        // never become a small size.
        let grow = |d: Dim, a: usize, b: usize| -> Result<Dim> {
            match d.get() {
                None => Ok(Dim::NONE),
                Some(n) => n
                    .checked_add(a)
                    .and_then(|n| n.checked_add(b))
                    .map(Dim::known)
                    .ok_or_else(|| {
                        crate::error::Error::invalid(format!(
                            "layer '{name}' (ZeroPadding2D): padding {p:?} overflows"
                        ))
                    }),
            }
        };
        Ok(vec![
            input[0],
            grow(input[1], p.top, p.bottom)?,
            grow(input[2], p.left, p.right)?,
        ])
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(ZeroPadding2D {
            name,
            padding: self.padding,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_forms_parse_and_write_back_explicit() {
        let parse = |json: &str| -> std::result::Result<LayerConfig, String> {
            serde_json::from_str(json).map_err(|e| e.to_string())
        };
        let pad = |json: &str| match parse(json).unwrap().downcast_ref::<ZeroPadding2DConfig>() {
            Some(c) => c.padding,
            None => panic!("not a ZeroPadding2D config"),
        };
        let cfg = |p: &str| format!(r#"{{"class_name": "ZeroPadding2D", "config": {p}}}"#);
        assert_eq!(pad(&cfg(r#"{"padding": 2}"#)), Padding2D::uniform(2));
        assert_eq!(
            pad(&cfg(r#"{"padding": [1, 3]}"#)),
            Padding2D::symmetric(1, 3)
        );
        assert_eq!(
            pad(&cfg(r#"{"padding": [[0, 1], [2, 3]]}"#)),
            Padding2D::explicit((0, 1), (2, 3))
        );
        assert_eq!(pad(&cfg("{}")), Padding2D::uniform(1));
        for bad in [
            r#"{"padding": -1}"#,
            r#"{"padding": [1, 2, 3]}"#,
            r#"{"padding": "same"}"#,
        ] {
            let e = parse(&cfg(bad)).unwrap_err();
            assert!(e.contains("ZeroPadding2D padding must be"), "{bad}: {e}");
        }
        assert!(parse(&cfg(r#"{"padding": 1, "pading": 2}"#)).is_err());

        // Round trip: written back as [[top, bottom], [left, right]].
        let c = LayerConfig::new(ZeroPadding2DConfig::new(Padding2D::symmetric(1, 2)));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"class_name":"ZeroPadding2D","config":{"name":null,"padding":[[1,1],[2,2]]}}"#
        );
        assert_eq!(serde_json::from_str::<LayerConfig>(&json).unwrap(), c);
    }

    #[test]
    fn output_shape_and_errors() {
        let c = LayerConfig::new(ZeroPadding2DConfig::new(Padding2D::explicit(
            (1, 2),
            (0, 3),
        )));
        let dims = crate::nn::layers::dims::dims;
        assert_eq!(c.output_shape("zp", &dims(&[3, 4, 5])).unwrap(), [3, 7, 8]);
        assert!(c.output_shape("zp", &dims(&[4, 5])).is_err());
        assert_eq!(c.class_name(), "ZeroPadding2D");
        assert_eq!(c.base_name(), "zero_padding2d");
        assert!(LayerConfig::class_names().contains(&"ZeroPadding2D"));
    }
}
