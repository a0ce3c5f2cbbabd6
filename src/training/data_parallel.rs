//! Data-parallel training (`FitArgs::distributed`): N ranks (processes, `mpirun -np N`)
//! hold the same model; each trains on its share of every global batch, and the
//! gradients are averaged over the ranks before every rank applies the same update, so
//! the weights stay identical without ever being sent again.
//!
//! - Start: rank 0 broadcasts every weight (batch norm's statistics too), its optimizer
//!   state and its random generator, so a run resumed on rank 0's files or a model built
//!   with another seed elsewhere all start from rank 0's state.
//! - Each step: the global batch (the same on every rank: same shuffle from the same
//!   generator) is cut into `size` consecutive shares (`distributed::shard`): from tensors
//!   the batch producer gathers only this rank's rows (`prefetch.rs`); a `BatchSource`
//!   gives every rank the whole global batch, which `fit` cuts. Dropout draws each
//!   share's numbers of the whole batch (`Rng::set_shard`). After the backward
//!   pass each gradient is scaled by `share rows / batch rows` and summed over the ranks
//!   in buckets (`distributed::Buckets`), so the result is the gradient of the mean loss
//!   over the whole batch, as one process computes it, up to the order of float sums.
//! - Batch norm: with `BnStats::Local` (the default, as PyTorch DDP without
//!   SyncBatchNorm) the batch statistics of a forward pass are each rank's share's and the
//!   moving statistics each rank's own (rank 0's are saved). `BnStats::Sync` is PyTorch's
//!   SyncBatchNorm: the step installs `BnSync` (`ops::batchnorm_sync`), so each training
//!   forward normalizes with the global batch's statistics and the backward sums the
//!   per-channel gradient sums over the ranks; dx is then the exact gradient of the
//!   global batch's normalization and the moving statistics are the same on every rank.
//! - Logs and validation are summed over the ranks (`distributed::weighted_mean`), so
//!   every rank sees the same numbers and callbacks such as early stopping decide alike.

use super::model::{Evaluation, Sequential};
use crate::distributed::{shard, weighted_mean, Buckets, Collective, DEFAULT_BUCKET_BYTES};
use crate::engine::{RngState, Tensor};
use crate::error::{Error, Result};
use crate::nn::layers::Param;
use crate::ops::batchnorm_sync::BatchNormSync;
use std::rc::Rc;

/// Which batch statistics batch norm uses in data-parallel training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BnStats {
    /// Each rank's share's; each rank keeps its own moving statistics (rank 0's are saved).
    #[default]
    Local,
    /// The global batch's (synchronized batch norm): per batch-norm layer, two small
    /// all-reduces in the forward pass and one in the backward.
    Sync,
}

impl BnStats {
    pub fn from_name(name: &str) -> Result<BnStats> {
        match name {
            "local" => Ok(BnStats::Local),
            "sync" => Ok(BnStats::Sync),
            other => Err(Error::invalid(format!(
                "--bn-stats: expected 'local' or 'sync', got '{other}'"
            ))),
        }
    }
}

/// How `fit` trains over several ranks (`FitArgs::distributed`).
#[derive(Clone)]
pub struct DataParallel {
    pub world: Rc<dyn Collective>,
    /// `false` (the default): `batch_size` is the global batch, cut into one share per
    /// rank. `true`: `batch_size` is each rank's share (the global batch is N times it).
    pub batch_size_per_rank: bool,
    pub bn_stats: BnStats,
    /// The size of a gradient bucket in bytes.
    pub bucket_bytes: usize,
}

impl DataParallel {
    pub fn new(world: Rc<dyn Collective>) -> DataParallel {
        DataParallel {
            world,
            batch_size_per_rank: false,
            bn_stats: BnStats::Local,
            bucket_bytes: DEFAULT_BUCKET_BYTES,
        }
    }

    pub fn rank(&self) -> usize {
        self.world.rank()
    }

    pub fn size(&self) -> usize {
        self.world.size()
    }

    /// The global batch for a `batch_size` argument.
    pub fn global_batch(&self, batch_size: usize) -> usize {
        if self.batch_size_per_rank {
            batch_size * self.size()
        } else {
            batch_size
        }
    }

    /// Makes every rank's model rank 0's: weights and buffers, optimizer state (its
    /// layout sent first, as JSON) and random generator.
    pub fn broadcast_model(&self, model: &mut Sequential) -> Result<()> {
        let world = self.world.as_ref();
        let params = model.params();
        let lengths: Vec<usize> = params.iter().map(|p| p.var.value_ref().numel()).collect();
        for range in Buckets::plan(&lengths, self.bucket_bytes).ranges {
            let mut buf = Vec::new();
            for p in &params[range.clone()] {
                buf.extend(p.var.value().to_f32_vec());
            }
            world.broadcast(&mut buf)?;
            let mut at = 0;
            for p in &params[range] {
                let shape = p.var.shape();
                let n: usize = shape.iter().product();
                p.var
                    .set_value(Tensor::from_vec(buf[at..at + n].to_vec(), &shape));
                at += n;
            }
        }
        // The optimizer state: names and shapes, then the values.
        let state = model.optimizer().map(|o| o.state()).unwrap_or_default();
        let layout: Vec<(String, Vec<usize>)> = state
            .iter()
            .map(|(k, t)| (k.clone(), t.shape().to_vec()))
            .collect();
        let mut bytes = serde_json::to_vec(&layout).expect("names and shapes serialize");
        world.broadcast_bytes(&mut bytes)?;
        let layout: Vec<(String, Vec<usize>)> = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(format!("distributed: rank 0's optimizer layout: {e}")))?;
        let mut values: Vec<f32> = if world.rank() == 0 {
            state.iter().flat_map(|(_, t)| t.to_f32_vec()).collect()
        } else {
            vec![
                0.0;
                layout
                    .iter()
                    .map(|(_, s)| s.iter().product::<usize>())
                    .sum()
            ]
        };
        world.broadcast(&mut values)?;
        if let Some(opt) = model.optimizer_mut() {
            let mut at = 0;
            let mut tensors = Vec::with_capacity(layout.len());
            for (name, shape) in layout {
                let n: usize = shape.iter().product();
                tensors.push((name, Tensor::from_vec(values[at..at + n].to_vec(), &shape)));
                at += n;
            }
            opt.load_state(&tensors)?;
        }
        self.broadcast_rng(model)
    }

    /// Makes every rank's random generator rank 0's.
    pub fn broadcast_rng(&self, model: &mut Sequential) -> Result<()> {
        let mut bytes = serde_json::to_vec(&model.rng.state()).expect("state serializes");
        self.world.broadcast_bytes(&mut bytes)?;
        let state: RngState = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(format!("distributed: rank 0's generator: {e}")))?;
        model.rng = crate::engine::Rng::from_state(&state)?;
        Ok(())
    }

    /// Replaces each parameter's gradient by its sum over the ranks of
    /// `gradient * share`, in buckets, and returns the loss summed the same way (sent in
    /// the last bucket). `share` is this rank's rows over the batch's rows, so the
    /// result is the gradient of the whole batch's mean loss. A parameter without a
    /// gradient (unused by this batch) sends zeros.
    pub fn exchange_gradients(&self, params: &[Param], loss: f32, share: f32) -> Result<f32> {
        let lengths: Vec<usize> = params.iter().map(|p| p.var.value_ref().numel()).collect();
        let plan = Buckets::plan(&lengths, self.bucket_bytes);
        let mut total_loss = loss * share;
        let last = plan.len().saturating_sub(1);
        for (b, range) in plan.ranges.into_iter().enumerate() {
            let mut buf = Vec::with_capacity(lengths[range.clone()].iter().sum::<usize>() + 1);
            for (p, &n) in params[range.clone()].iter().zip(&lengths[range.clone()]) {
                match p.var.grad() {
                    Some(g) => buf.extend(g.to_f32_vec().into_iter().map(|v| v * share)),
                    None => buf.extend(std::iter::repeat_n(0.0, n)),
                }
            }
            if b == last {
                buf.push(total_loss);
            }
            self.world.all_reduce_sum(&mut buf)?;
            if b == last {
                total_loss = buf.pop().expect("pushed");
            }
            let mut at = 0;
            for (p, &n) in params[range.clone()].iter().zip(&lengths[range]) {
                p.var
                    .set_grad(Tensor::from_vec(buf[at..at + n].to_vec(), &p.var.shape()));
                at += n;
            }
        }
        if params.is_empty() {
            let mut one = [total_loss];
            self.world.all_reduce_sum(&mut one)?;
            total_loss = one[0];
        }
        Ok(total_loss)
    }

    /// `BnStats::Sync`: the hook that synchronizes batch norm for a step in which this
    /// rank trains on `share` (its rows over the global batch's, > 0); `None` with `Local`.
    pub fn bn_sync(&self, share: f64) -> Option<Rc<dyn BatchNormSync>> {
        (self.bn_stats == BnStats::Sync).then(|| {
            Rc::new(BnSync {
                world: self.world.clone(),
                share,
            }) as Rc<dyn BatchNormSync>
        })
    }

    /// `evaluate` with each rank evaluating its share of the samples and the loss and
    /// metrics combined as means weighted by the shares' sizes: exact for the loss and
    /// for metrics that are means over samples (accuracy, MAE, ...).
    pub fn evaluate(
        &self,
        model: &mut Sequential,
        xs: &[Tensor],
        ys: &[Tensor],
        batch_size: usize,
    ) -> Result<Evaluation> {
        let n = model.check_data("evaluate", xs, ys)?;
        let (lo, hi) = shard(n, self.rank(), self.size());
        let part =
            |ts: &[Tensor]| -> Vec<Tensor> { ts.iter().map(|t| t.slice_rows(lo, hi)).collect() };
        let local = if hi > lo {
            model.evaluate_many(&part(xs), &part(ys), batch_size)?
        } else {
            // No rows here (fewer samples than ranks): this rank adds nothing.
            let mut e = model.evaluate_many(&part_rows(xs, 0, 1), &part_rows(ys, 0, 1), 1)?;
            e.loss = 0.0;
            e.metrics.values_mut().for_each(|v| *v = 0.0);
            e
        };
        let keys: Vec<String> = local.metrics.keys().cloned().collect();
        let mut values: Vec<f32> = std::iter::once(local.loss)
            .chain(keys.iter().map(|k| local.metrics[k]))
            .collect();
        weighted_mean(self.world.as_ref(), &mut values, hi - lo)?;
        Ok(Evaluation {
            loss: values[0],
            metrics: keys.into_iter().zip(values[1..].iter().copied()).collect(),
        })
    }
}

/// Synchronized batch norm's sums over the ranks (`ops::batchnorm_sync`).
struct BnSync {
    world: Rc<dyn Collective>,
    /// This rank's rows over the global batch's: its loss's weight in the global loss.
    share: f64,
}

impl BnSync {
    /// The kernels cannot return an error from inside a backward pass, and a rank that
    /// stopped here would leave the others waiting in the collective: so, as MPI itself
    /// does on a failed collective, the whole job ends.
    fn all_reduce(&self, buf: &mut [f64]) {
        if let Err(e) = self.world.all_reduce_sum_f64(buf) {
            eprintln!(
                "error on rank {} of {}: synchronized batch norm: {e}",
                self.world.rank(),
                self.world.size()
            );
            self.world.abort(1)
        }
    }
}

impl BatchNormSync for BnSync {
    fn sum_stats(&self, buf: &mut [f64]) {
        self.all_reduce(buf);
    }
    fn sum_grads(&self, buf: &mut [f64]) {
        buf.iter_mut().for_each(|v| *v *= self.share);
        self.all_reduce(buf);
        buf.iter_mut().for_each(|v| *v /= self.share);
    }
}

fn part_rows(ts: &[Tensor], lo: usize, hi: usize) -> Vec<Tensor> {
    ts.iter().map(|t| t.slice_rows(lo, hi)).collect()
}
