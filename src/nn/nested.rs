//! Nested models: a whole model graph used as one layer of another. Its config is the
//! model's (`ModelConfig`, class name `Model`); its forward runs the inner graph; its
//! weights are named `MODEL/LAYER/WEIGHT`. Masks flow through it as through any
//! graph: the outer masks enter the inner inputs, the inner outputs' masks leave.
//! Freezing it (`set_trainable`) freezes all its layers. A
//! model with several outputs is a layer with several outputs (`call_outputs`).

use super::graph::{Graph, RunArgs};
use super::layers::dims::Dim;
use super::layers::{Activation, ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use super::model_config::ModelConfig;
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};

/// The registry line of a whole model used as a layer (nested models): its config is
/// the model's (see `layers::LAYER_TYPES`).
pub const MODEL: LayerType = LayerType {
    class_name: "Model",
    parse: |v| Ok(LayerConfig::new(serde_json::from_value::<ModelConfig>(v)?)),
};

impl LayerKind for ModelConfig {
    fn class_name(&self) -> &'static str {
        "Model"
    }
    fn base_name(&self) -> &'static str {
        "model"
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn takes_many_inputs(&self) -> bool {
        self.input_shapes().len() > 1
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        Ok(nested_output_shapes(self, name, inputs)?.remove(0))
    }
    fn output_shapes(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Vec<Dim>>> {
        nested_output_shapes(self, name, inputs)
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let seed = rng.next_u64();
        let mut m = Graph::from_config(self, seed)?;
        m.name = name;
        Ok(Box::new(m))
    }
}

/// Output shapes of a nested model for the given input shapes.
pub(crate) fn nested_output_shapes(
    cfg: &ModelConfig,
    name: &str,
    inputs: &[&[Dim]],
) -> Result<Vec<Vec<Dim>>> {
    let want = cfg.input_shapes();
    // An axis the inner model leaves open takes anything; a known one must match.
    let fits = |w: &[Dim], i: &[Dim]| {
        w.len() == i.len() && w.iter().zip(i).all(|(w, i)| !w.is_known() || w == i)
    };
    if want.len() != inputs.len() || want.iter().zip(inputs).any(|(w, i)| !fits(w, i)) {
        return Err(Error::shape(format!(
            "layer '{name}' (Model) expects inputs {want:?}, got {inputs:?}"
        )));
    }
    // A walk over the layer configs: no weights are built (building a large pretrained
    // base such as resnet50 takes about a second).
    cfg.output_shapes()
}

/// A model inside a model: one layer whose forward runs the inner graph.
impl Layer for Graph {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        self.forward_many(std::slice::from_ref(x), ctx)
    }
    fn forward_many(&mut self, xs: &[Var], ctx: &mut ForwardCtx) -> Result<Var> {
        self.forward_many_masked(xs, &[], ctx)
    }
    fn forward_many_masked(
        &mut self,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        Ok(self.forward_outputs(xs, masks, ctx)?.remove(0))
    }
    /// The inner graph runs with the outer masks on its inputs; its output masks are
    /// kept for `compute_masks` (Keras also runs the inner graph to find them).
    fn forward_outputs(
        &mut self,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
    ) -> Result<Vec<Var>> {
        // The outer graph asks for logits only from a layer with one output.
        let logits = [ctx.output_logits];
        let run = RunArgs {
            training: ctx.training,
            output_logits: if self.output_ids().len() == 1 {
                &logits
            } else {
                &[]
            },
            rng: Some(&mut *ctx.rng),
            profile: false,
            trace: None,
        };
        let (out, out_masks) = self.run_masked(xs, masks, run)?;
        self.out_masks = out_masks;
        Ok(out)
    }
    fn compute_masks(
        &self,
        _xs: &[Var],
        _masks: &[Option<&Tensor>],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(self.out_masks.clone())
    }
    fn forward_masked(
        &mut self,
        x: &Var,
        mask: Option<&Tensor>,
        ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        self.forward_many_masked(std::slice::from_ref(x), &[mask], ctx)
    }
    fn compute_mask(&self, _x: &Var, _mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(self.out_masks.first().cloned().flatten())
    }
    fn compute_mask_many(&self, _xs: &[Var], _masks: &[Option<&Tensor>]) -> Result<Option<Tensor>> {
        Ok(self.out_masks.first().cloned().flatten())
    }
    /// The inner weights, named `MODEL/LAYER/WEIGHT`.
    fn params(&self) -> Vec<Param> {
        Graph::params(self)
            .into_iter()
            .map(|p| Param {
                name: format!("{}/{}", self.name, p.name),
                ..p
            })
            .collect()
    }
    fn config(&self) -> LayerConfig {
        LayerConfig::new(Graph::config(self))
    }
    /// Freezing the nested model freezes every layer in it (Keras); unfreezing it
    /// gives each inner layer back its own flag.
    fn set_frozen(&mut self, frozen: bool) {
        self.frozen_by_parent = frozen;
        self.sync_frozen();
    }
    fn output_activation(&self) -> Option<Activation> {
        self.output_layer().and_then(|l| l.output_activation())
    }
    fn regularization(&self) -> Option<Var> {
        self.regularization_penalty()
    }
}
