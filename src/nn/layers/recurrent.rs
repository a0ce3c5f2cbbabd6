//! What the recurrent layers (`SimpleRNN`, `LSTM`, `GRU`) share besides their cell: the
//! inputs they take (the sequence, then optional initial states), the outputs they
//! return (the output, then with `return_state` the final states), the checks of their
//! options, both dropouts, and the masks of their outputs, and the built layer itself
//! (`RecurrentLayer`, one type for the three cells). Each layer's file keeps its cell's
//! config, defaults and initial weights; this file is the rest, once.
//!
//! Keras 3's rules:
//! - inputs: `[N, T, F]`, then `initial_state` (LSTM: h and c; GRU, SimpleRNN: h), each
//!   `[N, U]`. Only the sequence's mask is read.
//! - outputs: `[N, T, U]` with `return_sequences`, else `[N, U]`; with `return_state`
//!   also the final states, each `[N, U]` (after each sample's last real step).
//! - `dropout`: one mask of input features per sample, the same at every step;
//!   `recurrent_dropout`: one mask of `h_{t-1}` per sample and gate, the same at every
//!   step (Keras' "implementation 1"). Both only while training.
//! - masks: the output keeps the input's mask with `return_sequences`, else has none;
//!   the states have none.

use super::dims::Dim;
use super::registry::{needs_known, rank_is};
use super::{ForwardCtx, Layer, LayerConfig, Param};
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::dropout::{dropout_steps, keep_mask};
use crate::ops::rnn_driver::{rnn_call, Cell, RnnArgs};

/// The cell-independent options of one recurrent layer.
pub(crate) struct Recurrent {
    /// Keras' class name, for errors.
    pub class: &'static str,
    pub units: usize,
    /// How many state tensors the cell carries: 2 for LSTM (h, c), else 1.
    pub states: usize,
    /// Gate blocks of the recurrent kernel: 4 (LSTM), 3 (GRU), 1 (SimpleRNN).
    pub gates: usize,
    pub return_sequences: bool,
    pub return_state: bool,
    pub dropout: f32,
    pub recurrent_dropout: f32,
}

impl Recurrent {
    /// Checks the options and the inputs' shapes; the shape of each output.
    pub fn output_shapes(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Vec<Dim>>> {
        let class = self.class;
        let input = rank_is(name, class, inputs, 2, "sequences [batch, steps, features]")?;
        needs_known(name, class, "number of features", input[1], input)?;
        if self.units == 0 {
            return Err(Error::invalid(format!(
                "layer '{name}' ({class}): units (0) must be positive"
            )));
        }
        for (what, rate) in [
            ("dropout", self.dropout),
            ("recurrent_dropout", self.recurrent_dropout),
        ] {
            if !(0.0..1.0).contains(&rate) {
                return Err(Error::invalid(format!(
                    "layer '{name}' ({class}): {what} must be in [0, 1), got {rate}"
                )));
            }
        }
        let u = Dim::known(self.units);
        let initial = &inputs[1..];
        if !initial.is_empty() && initial.len() != self.states {
            return Err(Error::invalid(format!(
                "layer '{name}' ({class}) takes the sequence and {} initial state{} \
                 ({}), got {} input{}",
                self.states,
                if self.states == 1 { "" } else { "s" },
                self.state_names(),
                inputs.len(),
                if inputs.len() == 1 { "" } else { "s" },
            )));
        }
        for (k, s) in initial.iter().enumerate() {
            if s[..] != [u] {
                return Err(Error::shape(format!(
                    "layer '{name}' ({class}): initial state {} must be [batch, {}], got {}",
                    k + 1,
                    self.units,
                    super::dims::batch_shape_str(s)
                )));
            }
        }
        let out = if self.return_sequences {
            vec![input[0], u]
        } else {
            vec![u]
        };
        let mut outs = vec![out];
        if self.return_state {
            outs.extend((0..self.states).map(|_| vec![u]));
        }
        Ok(outs)
    }

    fn state_names(&self) -> &'static str {
        match self.states {
            2 => "h, c",
            _ => "h",
        }
    }

    /// Runs the layer: checks the mask, applies the dropouts while training, and calls
    /// `op` (the cell's op over the whole sequence) with the initial states. `what` names
    /// the layer in errors.
    pub fn forward(
        &self,
        what: &str,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
        zero_output_for_mask: bool,
        op: impl FnOnce(&Var, &RnnArgs) -> Result<Vec<Var>>,
    ) -> Result<Vec<Var>> {
        let context = |e: Error| e.context(what);
        let Some((x, initial)) = xs.split_first() else {
            return Err(Error::invalid(format!("{what}: no input")));
        };
        // Only the sequence's mask counts (Keras ignores the states' masks).
        let mask = masks.first().copied().flatten();
        if let Some(m) = mask {
            crate::ops::mask::check_mask(what, m, &x.shape())?;
        }
        let dropped;
        let x = if ctx.training && self.dropout > 0.0 {
            dropped = dropout_steps(x, self.dropout, ctx.rng).map_err(context)?;
            &dropped
        } else {
            x
        };
        let recurrent_mask = (ctx.training && self.recurrent_dropout > 0.0).then(|| {
            let n = x.shape()[0];
            keep_mask(
                &[n, self.gates * self.units],
                self.recurrent_dropout,
                ctx.rng,
            )
        });
        let args = RnnArgs {
            return_sequences: self.return_sequences,
            mask,
            zero_output_for_mask,
            initial_state: initial,
            recurrent_dropout: recurrent_mask.as_ref(),
            return_state: self.return_state,
        };
        // Masked steps carry the state and cost nothing (the op packs the real steps).
        op(x, &args).map_err(context)
    }

    /// The masks of the outputs, given the inputs' masks (see the module docs).
    pub fn output_masks(&self, masks: &[Option<&Tensor>]) -> Vec<Option<Tensor>> {
        let mask = masks.first().copied().flatten();
        let mut out = vec![mask.filter(|_| self.return_sequences).cloned()];
        if self.return_state {
            out.extend((0..self.states).map(|_| None));
        }
        out
    }
}

/// A built recurrent layer, one type for the three cells: its weights, its cell (which
/// picks the kernels of `ops::rnn_driver`), its options and its config. Weights in
/// Keras' layouts: kernel `[F, G]`, recurrent kernel `[U, G]`, bias `[G]` (GRU: `[2, G]`),
/// `G` = gates x units.
pub struct RecurrentLayer {
    pub name: String,
    pub cell: Cell,
    pub kernel: Var,
    pub recurrent_kernel: Var,
    pub bias: Option<Var>,
    opts: Recurrent,
    /// The layer's own config (`LSTMConfig`, ...) under its name, for `config()`.
    config: LayerConfig,
}

impl RecurrentLayer {
    /// `config` is the layer's config already carrying `name`.
    pub(crate) fn new(
        name: String,
        config: LayerConfig,
        opts: Recurrent,
        cell: Cell,
        weights: (Var, Var, Option<Var>),
    ) -> RecurrentLayer {
        let (kernel, recurrent_kernel, bias) = weights;
        RecurrentLayer {
            name,
            cell,
            kernel,
            recurrent_kernel,
            bias,
            opts,
            config,
        }
    }
}

impl Layer for RecurrentLayer {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        self.forward_masked(x, None, ctx)
    }
    fn forward_masked(
        &mut self,
        x: &Var,
        mask: Option<&Tensor>,
        ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        Ok(self
            .forward_outputs(std::slice::from_ref(x), &[mask], ctx)?
            .remove(0))
    }
    fn forward_many_masked(
        &mut self,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        Ok(self.forward_outputs(xs, masks, ctx)?.remove(0))
    }
    /// xs: the sequence `[N, T, F]`, then optionally the initial states `[N, U]` each;
    /// masks: the sequence's `[N, T]` (1 = real step). Returns the output, then (with
    /// `return_state`) the final states.
    fn forward_outputs(
        &mut self,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
    ) -> Result<Vec<Var>> {
        let what = format!("layer '{}' ({})", self.name, self.opts.class);
        let (k, rk, b) = (&self.kernel, &self.recurrent_kernel, self.bias.as_ref());
        let cell = self.cell;
        self.opts.forward(&what, xs, masks, ctx, false, |x, args| {
            rnn_call(cell, x, k, rk, b, args)
        })
    }
    /// Keras: the input's mask with `return_sequences` (the steps stay), else none.
    fn compute_mask(&self, _x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(self.opts.output_masks(&[mask]).remove(0))
    }
    fn compute_mask_many(&self, _xs: &[Var], masks: &[Option<&Tensor>]) -> Result<Option<Tensor>> {
        Ok(self.opts.output_masks(masks).remove(0))
    }
    fn compute_masks(&self, _xs: &[Var], masks: &[Option<&Tensor>]) -> Result<Vec<Option<Tensor>>> {
        Ok(self.opts.output_masks(masks))
    }
    fn params(&self) -> Vec<Param> {
        let param = |what: &str, var: &Var| Param {
            name: format!("{}/{what}", self.name),
            var: var.clone(),
            trainable: true,
            buffer: false,
        };
        let mut p = vec![
            param("kernel", &self.kernel),
            param("recurrent_kernel", &self.recurrent_kernel),
        ];
        p.extend(self.bias.as_ref().map(|b| param("bias", b)));
        p
    }
    fn config(&self) -> LayerConfig {
        self.config.clone()
    }
}
