//! `Embedding`: token ids -> rows of a learned table (Keras' `Embedding`).
//!
//! # Shapes
//! input `[N, T]` of token ids (whole numbers in `0..input_dim`, held in f32 until
//! tensors carry integers; see `ops::axes`), table `embeddings [input_dim, output_dim]`
//! (Keras' layout and PyTorch's `nn.Embedding.weight`), output `[N, T, output_dim]`.
//! `T` may be unknown (`None`): each batch may have its own length. An id that is not a
//! whole number in `0..input_dim` is an error naming the layer, the id and its position
//! (never clamped).
//!
//! Masks: with `mask_zero` (Keras' config key, `.mask_zero(true)`) id 0 is padding: the
//! output's mask (`[N, T]`, see `Layer`) is 1 where the id is not 0, for the layers
//! after it. As in Keras, id 0 still has its row in the table (so `input_dim` counts
//! it: a vocabulary of V words with 0 kept for padding needs `input_dim = V + 1`) and
//! its vector is still output; only the mask marks it. Without `mask_zero` the layer
//! makes no mask (and any incoming one is dropped).
//!
//! Not supported yet: `embeddings_regularizer`.

use super::dims::Dim;
use super::registry::rank_is;
use super::{ForwardCtx, Initializer, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::index::embedding;
use crate::ops::mask::nonzero_mask;
use serde::{Deserialize, Serialize};

fn keras_uniform() -> Initializer {
    Initializer::Uniform {
        minval: -0.05,
        maxval: 0.05,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Vocabulary size: ids run over `0..input_dim`.
    pub input_dim: usize,
    /// Length of each id's vector.
    pub output_dim: usize,
    /// Keras' default: uniform in [-0.05, 0.05].
    #[serde(default = "keras_uniform")]
    pub embeddings_initializer: Initializer,
    /// Id 0 is padding: the output carries a mask, 1 where the id is not 0 (Keras'
    /// `mask_zero`, default false; written to JSON only when true).
    #[serde(default, skip_serializing_if = "is_false")]
    pub mask_zero: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl EmbeddingConfig {
    pub fn new(input_dim: usize, output_dim: usize) -> EmbeddingConfig {
        EmbeddingConfig {
            name: None,
            input_dim,
            output_dim,
            embeddings_initializer: keras_uniform(),
            mask_zero: false,
        }
    }
    /// `Embedding(V + 1, D).mask_zero(true)`: id 0 marks padding (see the module docs).
    pub fn mask_zero(mut self, on: bool) -> Self {
        self.mask_zero = on;
        self
    }
    pub fn embeddings_initializer(mut self, i: Initializer) -> Self {
        self.embeddings_initializer = i;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.to_string());
        self
    }
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const EMBEDDING: LayerType = LayerType::of::<EmbeddingConfig>("Embedding");

impl LayerKind for EmbeddingConfig {
    fn class_name(&self) -> &'static str {
        "Embedding"
    }
    fn base_name(&self) -> &'static str {
        "embedding"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let input = rank_is(
            name,
            "Embedding",
            inputs,
            1,
            "token ids [batch, steps] (input_shape [null] or [steps])",
        )?;
        if self.input_dim == 0 || self.output_dim == 0 {
            return Err(Error::invalid(format!(
                "layer '{name}' (Embedding): input_dim ({}) and output_dim ({}) must be \
                 positive",
                self.input_dim, self.output_dim
            )));
        }
        Ok(vec![input[0], Dim::known(self.output_dim)])
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let shape = [self.input_dim, self.output_dim];
        super::limits::check_weights(&name, "Embedding", &shape)?;
        let table = Var::parameter(self.embeddings_initializer.init(&shape, rng));
        Ok(Box::new(Embedding {
            name,
            cfg: self.clone(),
            embeddings: table,
        }))
    }
}

pub struct Embedding {
    pub name: String,
    pub cfg: EmbeddingConfig,
    pub embeddings: Var, // [input_dim, output_dim]
}

impl Layer for Embedding {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, _ctx: &mut ForwardCtx) -> Result<Var> {
        // x: [N, T] ids; no gradient flows to them.
        embedding(&self.embeddings, &x.value()) // [N, T, output_dim]
            .map_err(|e| e.context(&format!("layer '{}' (Embedding)", self.name)))
    }
    fn reads_indices(&self) -> bool {
        true
    }
    /// With `mask_zero`: 1 where the id is not 0. Keras' Embedding has no input mask to
    /// keep, so without `mask_zero` there is none.
    fn compute_mask(&self, x: &Var, _mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(self.cfg.mask_zero.then(|| nonzero_mask(&x.value())))
    }
    fn params(&self) -> Vec<Param> {
        vec![Param {
            name: format!("{}/embeddings", self.name),
            var: self.embeddings.clone(),
            trainable: true,
            buffer: false,
        }]
    }
    fn config(&self) -> LayerConfig {
        EmbeddingConfig {
            name: Some(self.name.clone()),
            ..self.cfg.clone()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(rng: &mut Rng) -> ForwardCtx<'_> {
        ForwardCtx {
            training: true,
            rng,
            output_logits: false,
        }
    }

    #[test]
    fn config_defaults_shapes_and_bad_ids() {
        let c: LayerConfig = serde_json::from_str(
            r#"{"class_name": "Embedding", "config": {"input_dim": 10, "output_dim": 4}}"#,
        )
        .unwrap();
        assert_eq!(
            c.output_shape("e", &[Dim::NONE]).unwrap(),
            [Dim::NONE, Dim::known(4)]
        );
        let e = c.output_shape("e", &[Dim::known(3), Dim::known(2)]);
        assert!(e.unwrap_err().to_string().contains("layer 'e' (Embedding)"));
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains(r#""embeddings_initializer":{"uniform":{"minval":-0.05,"maxval":0.05}}"#),
            "{json}"
        );
        assert!(!json.contains("mask_zero"), "{json}");
        for bad in [
            r#"{"input_dim": 10, "output_dim": 4, "mask_zero": 1}"#,
            r#"{"input_dim": 10}"#,
        ] {
            let text = format!(r#"{{"class_name": "Embedding", "config": {bad}}}"#);
            assert!(serde_json::from_str::<LayerConfig>(&text).is_err(), "{bad}");
        }
        let zero = EmbeddingConfig::new(0, 4);
        let e = LayerConfig::from(zero).output_shape("z", &[Dim::NONE]);
        assert!(e.unwrap_err().to_string().contains("must be positive"));

        let mut rng = Rng::new(1);
        let mut layer = c.build("emb".into(), &[Dim::NONE], &mut rng).unwrap();
        let table = layer.params()[0].var.value().to_f32_vec();
        assert!(table.iter().all(|v| v.abs() <= 0.05));
        let ids = Var::constant(Tensor::from_vec(vec![0., 9., 3., 3.], &[2, 2]));
        let y = layer.forward(&ids, &mut ctx(&mut rng)).unwrap();
        assert_eq!(y.shape(), [2, 2, 4]);
        assert_eq!(y.value().to_f32_vec()[4..8], table[36..40]);
        let bad = Var::constant(Tensor::from_vec(vec![0., 10., 3., 3.], &[2, 2]));
        let e = layer
            .forward(&bad, &mut ctx(&mut rng))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer 'emb' (Embedding)") && e.contains("id 10 at [0, 1]"),
            "{e}"
        );
    }

    #[test]
    fn mask_zero_makes_a_mask_and_round_trips() {
        let text = r#"{"class_name": "Embedding", "config": {"input_dim": 10, "output_dim": 4, "mask_zero": true}}"#;
        let c: LayerConfig = serde_json::from_str(text).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""mask_zero":true"#), "{json}");
        assert_eq!(serde_json::from_str::<LayerConfig>(&json).unwrap(), c);
        let mut rng = Rng::new(1);
        let layer = c.build("emb".into(), &[Dim::NONE], &mut rng).unwrap();
        let ids = Var::constant(Tensor::from_vec(vec![4., 0., 0., 7., 2., 0.], &[2, 3]));
        let m = layer.compute_mask(&ids, None).unwrap().unwrap();
        assert_eq!(m.to_f32_vec(), [1., 0., 0., 1., 1., 0.]);
        assert_eq!(m.shape(), [2, 3]);
        // Without mask_zero: no mask, even if one came in.
        let plain = LayerConfig::from(EmbeddingConfig::new(10, 4))
            .build("e2".into(), &[Dim::NONE], &mut rng)
            .unwrap();
        assert!(plain.compute_mask(&ids, Some(&m)).unwrap().is_none());
    }
}
