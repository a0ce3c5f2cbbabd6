//! Sub-models that share their parent's weights: Keras'
//! `Model(inputs, parent.get_layer("code").output)` (an autoencoder's encoder) and a
//! decoder made of the parent's last layers on a new input.
//!
//! A sub-model is a graph of its own (it runs, predicts, saves and summarises like any
//! model) whose nodes hold handles to the parent's layers, not copies: the parent's
//! layer moves behind the same `Rc` handle that a shared layer uses (`SharedLayer`), and
//! the sub-model's node is a view of it. Training either model therefore changes what
//! the other computes, and freezing a layer in one freezes it in both (it is one layer).

use super::graph::Graph;
use super::layers::{Layer, SharedConfig, SharedLayer};
use super::model_config::InputConfig;
use crate::error::{Error, Result};

impl Graph {
    /// The sub-model from the tensors named `inputs` (the parent's inputs, or any
    /// layer's output, which becomes a new input of the same shape) to the tensors named
    /// `outputs`, sharing the parent's weights. Every path from an output back to the
    /// parent's inputs must pass through `inputs`: `sub_model(&["input"], &["code"])` is
    /// the encoder, `sub_model(&["code"], &["decoded"])` the decoder.
    pub fn sub_model(&mut self, inputs: &[&str], outputs: &[&str]) -> Result<Graph> {
        let parent = self.name.clone();
        let err = |what: String| Error::invalid(format!("sub_model of '{parent}': {what}"));
        if inputs.is_empty() || outputs.is_empty() {
            return Err(err("give at least one input and one output".into()));
        }
        let find = |n: &str| -> Result<usize> {
            (0..self.num_tensors())
                .find(|&t| self.tensor_name(t) == n)
                .ok_or_else(|| err(format!("no input or layer output is named '{n}'")))
        };
        let in_ids: Vec<usize> = inputs.iter().map(|n| find(n)).collect::<Result<_>>()?;
        let out_ids: Vec<usize> = outputs.iter().map(|n| find(n)).collect::<Result<_>>()?;
        // The nodes the outputs need, found walking back until an input of the sub-model.
        let mut needed = vec![false; self.layers().len()];
        let mut stack = out_ids.clone();
        while let Some(t) = stack.pop() {
            if in_ids.contains(&t) {
                continue;
            }
            match self.tensor_producer(t) {
                None => {
                    return Err(err(format!(
                        "the outputs depend on input '{}', which is not among the \
                         sub-model's inputs {inputs:?}",
                        self.tensor_name(t)
                    )))
                }
                Some(i) if !needed[i] => {
                    needed[i] = true;
                    stack.extend_from_slice(self.inbound_ids(i));
                }
                Some(_) => {}
            }
        }
        let mut sub = Graph::empty(
            in_ids
                .iter()
                .map(|&t| InputConfig {
                    name: self.tensor_name(t).to_string(),
                    shape: self.walk_shape(t).to_vec(),
                })
                .collect(),
            0,
        );
        sub.name = format!("{parent}_sub");
        sub.class_names = self.class_names.clone();
        // Parent tensor id -> sub-model tensor id.
        let mut map: Vec<Option<usize>> = vec![None; self.num_tensors()];
        for (k, &t) in in_ids.iter().enumerate() {
            map[t] = Some(k);
        }
        for i in (0..needed.len()).filter(|&i| needed[i]) {
            let cfg = self.layers()[i].config();
            if let Some(c) = cfg.downcast_ref::<SharedConfig>() {
                if sub.get_layer(&c.layer).is_none() {
                    return Err(err(format!(
                        "layer '{}' calls shared layer '{}', whose first call is outside \
                         the sub-model",
                        self.layers()[i].name(),
                        c.layer
                    )));
                }
            }
            let ids: Vec<usize> = self
                .inbound_ids(i)
                .iter()
                .map(|&t| map[t].expect("inputs come first"))
                .collect();
            // Built fresh (for its shapes and name), then pointed at the parent's layer;
            // a further call of a shared layer already runs the sub-model's handle.
            let k = sub.add_node(cfg.clone(), ids)?;
            if !cfg.is::<SharedConfig>() {
                sub.layers_mut()[k] = Box::new(self.layer_handle(i).view());
            }
            sub.trainable[k] = self.trainable[i];
            for (a, b) in self.layer_outputs(i).zip(sub.layer_outputs(k)) {
                map[a] = Some(b);
            }
        }
        sub.set_outputs(out_ids.iter().map(|&t| map[t].expect("built")).collect());
        sub.frozen_by_parent = self.frozen_by_parent;
        sub.dtype = self.dtype;
        sub.sync_frozen();
        Ok(sub)
    }

    /// Layer `i` behind a shared handle (moved there on first use), so that another
    /// graph can hold it too.
    fn layer_handle(&mut self, i: usize) -> &SharedLayer {
        if self.layers()[i].as_shared().is_none() {
            let placeholder: Box<dyn Layer> = Box::new(super::layers::Flatten {
                name: String::new(),
            });
            let layer = std::mem::replace(&mut self.layers_mut()[i], placeholder);
            self.layers_mut()[i] = Box::new(SharedLayer::view_of(layer));
        }
        self.layers()[i].as_shared().expect("made shared above")
    }
}
