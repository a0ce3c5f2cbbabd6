//! The training loop behind `Sequential::fit` and `fit_source`: one epoch loop
//! (`run_epochs`), fed by tensors through the prefetching producer or by a `BatchSource`.
//!
//! One training step (see ARCHITECTURE.md for the data flow):
//! receive the next shuffled (and, if configured, augmented) batch from the producer
//! thread (`prefetch`) -> `Model::train_step` (`step.rs`: forward, loss + L2 penalties,
//! NaN check, zero grads, backward, optimizer step), or the user's step given with
//! `FitArgs::train_step` -> running loss/accuracy for the progress bar.
//!
//! Sample weights (`FitArgs::class_weight`, `FitArgs::sample_weight`; see
//! `sample_weights.rs`): computed once per `fit`, one per training sample, and gathered
//! by the producer with each batch's rows, so they follow the shuffled order and are
//! untouched by augmentation (which transforms inputs only); a backup's sample order
//! restores them too. Validation stays unweighted.

use super::callbacks::{Callback, FitState, Logs};
use super::data_parallel::DataParallel;
use super::history::History;
use super::metrics::Tally;
use super::model::Sequential;
use super::prefetch::{AugmentWith, Prefetcher, PreparedBatch};
use super::sample_weights::{check_sample_weight, ClassWeights};
use super::source::{Batch, BatchSource};
use super::step::StepOutput;
use super::transform::{validation_split_index, BatchTransform};
use crate::distributed::shard;
use crate::engine::{Shard, Tensor};
use crate::error::{Error, Result};
use crate::losses::Target;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

/// A training step `fit` runs for each batch instead of `Model::train_step`: the model,
/// the batch's inputs (one tensor per model input) and targets (one per output) in, what
/// to log out.
pub type TrainStep = Box<dyn FnMut(&mut Sequential, &[Tensor], &[Target]) -> Result<StepOutput>>;

/// Arguments of `fit`, with Keras' defaults (`epochs=1, batch_size=32, shuffle=True,
/// verbose=1`).
pub struct FitArgs {
    pub epochs: usize,
    pub batch_size: usize,
    /// Fraction of the samples, taken from the end before shuffling, held out for
    /// validation (ignored when `validation_data` is given).
    pub validation_split: f64,
    /// Validation inputs (one tensor per model input) and labels (one per output).
    pub validation_data: Option<(Vec<Tensor>, Vec<Tensor>)>,
    pub shuffle: bool,
    /// 0: silent, 1: progress bar and a line per epoch, 2: a line per epoch.
    pub verbose: u8,
    pub callbacks: Vec<Box<dyn Callback>>,
    pub initial_epoch: usize,
    /// Augmentation of the training batches (never of validation data). Its random
    /// numbers are seeded by one draw from the model's generator at the start of `fit`,
    /// so a seeded model gives the same augmented batches on every run.
    pub augmentation: Option<Box<dyn BatchTransform>>,
    /// The step run for each batch (default: `Model::train_step`).
    pub train_step: Option<TrainStep>,
    /// Keras' `class_weight`: each training sample's loss is multiplied by the weight
    /// of its class (read from its label). Models with one output. Validation and
    /// evaluation are unweighted.
    pub class_weight: Option<ClassWeights>,
    /// Keras' `sample_weight`: one weight per training sample (shape `[N]`, finite
    /// and at least 0), multiplying its loss (and its class weight, if both are given).
    /// With `validation_split`, the weights of the held-out tail are dropped.
    pub sample_weight: Option<Tensor>,
    /// Data-parallel training over several ranks (`data_parallel.rs`): `batch_size` is
    /// the global batch unless `DataParallel::batch_size_per_rank`; only rank 0 prints.
    /// Callbacks run on every rank with the same logs: give the ones that write files to
    /// rank 0 only (`world.rank() == 0`).
    pub distributed: Option<DataParallel>,
}

impl Default for FitArgs {
    fn default() -> Self {
        FitArgs {
            epochs: 1,
            batch_size: 32,
            validation_split: 0.0,
            validation_data: None,
            shuffle: true,
            verbose: 1,
            callbacks: Vec::new(),
            initial_epoch: 0,
            augmentation: None,
            train_step: None,
            class_weight: None,
            sample_weight: None,
            distributed: None,
        }
    }
}

impl FitArgs {
    pub fn new() -> FitArgs {
        FitArgs::default()
    }
    pub fn epochs(mut self, e: usize) -> Self {
        self.epochs = e;
        self
    }
    pub fn batch_size(mut self, b: usize) -> Self {
        self.batch_size = b;
        self
    }
    pub fn validation_split(mut self, f: f64) -> Self {
        self.validation_split = f;
        self
    }
    pub fn validation_data(mut self, x: Tensor, y: Tensor) -> Self {
        self.validation_data = Some((vec![x], vec![y]));
        self
    }
    /// Validation data of a model with several inputs or outputs.
    pub fn validation_data_many(mut self, xs: Vec<Tensor>, ys: Vec<Tensor>) -> Self {
        self.validation_data = Some((xs, ys));
        self
    }
    pub fn shuffle(mut self, s: bool) -> Self {
        self.shuffle = s;
        self
    }
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    pub fn callback(mut self, c: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(c));
        self
    }
    /// Augments the training batches (`data::Augmentation`, or any `BatchTransform`).
    pub fn augmentation(mut self, a: impl BatchTransform + 'static) -> Self {
        self.augmentation = Some(Box::new(a));
        self
    }
    /// Weighs each training sample's loss by its class's weight (Keras' `class_weight`;
    /// `ClassWeights::balanced(&y, classes)` for the inverse class frequencies). The
    /// loss of a batch becomes `sum_i w_i loss_i / N`, as in Keras; validation and
    /// `evaluate` stay unweighted.
    pub fn class_weight(mut self, weights: ClassWeights) -> Self {
        self.class_weight = Some(weights);
        self
    }
    /// Weighs each training sample's loss (Keras' `sample_weight`): one finite weight,
    /// at least 0, per sample of `x`, checked when `fit` starts.
    pub fn sample_weight(mut self, weights: Tensor) -> Self {
        self.sample_weight = Some(weights);
        self
    }
    /// Trains data-parallel over the ranks of `dp.world` (see `data_parallel.rs`).
    pub fn distributed(mut self, dp: DataParallel) -> Self {
        self.distributed = Some(dp);
        self
    }
    /// Runs `step` for each batch instead of `Model::train_step` (Keras' overridden
    /// `train_step`): e.g. one that also trains a second model, or that calls
    /// `Model::train_step` and adds to it. `fit` keeps doing the epochs, shuffling,
    /// callbacks, validation, history and the progress bar.
    pub fn train_step(
        mut self,
        step: impl FnMut(&mut Sequential, &[Tensor], &[Target]) -> Result<StepOutput> + 'static,
    ) -> Self {
        self.train_step = Some(Box::new(step));
        self
    }
}

/// Where an epoch's time went, summed over its batches: the producer preparing them, the
/// main thread waiting for them, and the main thread running the steps.
#[derive(Default)]
struct BatchTiming {
    prepare: Duration,
    wait: Duration,
    step: Duration,
}

/// `key: value` for each of `keys` in `logs`, then each again with `val_`, as Keras
/// prints an epoch.
fn format_logs(logs: &Logs, keys: &[String]) -> String {
    let train = keys.iter().cloned();
    let val = keys.iter().map(|k| format!("val_{k}"));
    train
        .chain(val)
        .filter_map(|k| logs.get(&k).map(|v| format!("{k}: {v:.4}")))
        .collect::<Vec<_>>()
        .join(" - ")
}

/// Keras' `train_test_split` of `validation_split`: the last fraction of every input and
/// label tensor, before any shuffling.
type Split = (Vec<Tensor>, Vec<Tensor>);
fn split_validation(
    xs: &[Tensor],
    ys: &[Tensor],
    n: usize,
    fraction: f64,
) -> Result<(Split, Split)> {
    let k = validation_split_index(n, fraction)?;
    let head = |ts: &[Tensor]| ts.iter().map(|t| t.slice_rows(0, k)).collect();
    let tail = |ts: &[Tensor]| ts.iter().map(|t| t.slice_rows(k, n)).collect();
    Ok(((head(xs), head(ys)), (tail(xs), tail(ys))))
}

/// The number of classes of output 0, for class weights: its width (2 for a single
/// sigmoid unit), or from the labels if the model leaves it open.
fn class_count(model: &Sequential, y: &Tensor) -> Result<usize> {
    match crate::nn::layers::dims::known(model.output_shapes()[0]) {
        Some(shape) => Ok(shape.iter().product::<usize>().max(2)),
        None => Ok(super::sample_weights::class_of_rows(y)?
            .into_iter()
            .max()
            .map_or(2, |c| (c + 1).max(2))),
    }
}

/// Fails unless the model can train with sample weights: every loss implements
/// `compute_weighted`, and the step is the model's own (a `FitArgs::train_step`
/// closure is not given the weights).
fn check_weighted_training(model: &Sequential, custom_step: bool) -> Result<()> {
    if custom_step {
        return Err(Error::invalid(
            "fit: class_weight/sample_weight cannot be used with FitArgs::train_step (the \
             custom step is not given the weights); weigh the loss in the step instead",
        ));
    }
    let c = model.compiled.as_ref().expect("checked");
    for loss in &c.losses {
        if !loss.supports_sample_weights() {
            return Err(crate::losses::unweighted_loss(loss.name()).context("fit"));
        }
    }
    Ok(())
}

/// The checked class weights of a one-output model.
fn check_class_weight(model: &Sequential, cw: &ClassWeights, y: &[Tensor]) -> Result<usize> {
    if y.len() != 1 {
        return Err(Error::invalid(format!(
            "fit: class_weight applies to a model with one output; model '{}' has {} \
             (give sample_weight instead)",
            model.name,
            y.len()
        )));
    }
    let classes = class_count(model, &y[0])?;
    cw.check_classes(classes).map_err(|e| e.context("fit"))?;
    Ok(classes)
}

/// The weight of each of the `n` samples: class weight times sample weight; `None`
/// when neither is given.
fn sample_weights(
    model: &Sequential,
    y: &[Tensor],
    n: usize,
    class_weight: Option<&ClassWeights>,
    sample_weight: Option<&Tensor>,
) -> Result<Option<Tensor>> {
    let mut w = match sample_weight {
        Some(t) => Some(check_sample_weight(t, n)?),
        None => None,
    };
    if let Some(cw) = class_weight {
        check_class_weight(model, cw, y)?;
        let per_class = cw.per_sample(&y[0]).map_err(|e| e.context("fit"))?;
        w = Some(match w {
            Some(sw) => sw.iter().zip(&per_class).map(|(s, c)| s * c).collect(),
            None => per_class,
        });
    }
    Ok(w.map(|w| Tensor::from_vec(w, &[n])))
}

pub(super) fn fit(
    model: &mut Sequential,
    x: &[Tensor],
    y: &[Tensor],
    args: FitArgs,
) -> Result<History> {
    let FitArgs {
        epochs,
        batch_size,
        validation_split,
        validation_data,
        shuffle,
        verbose,
        callbacks,
        initial_epoch,
        augmentation,
        train_step,
        class_weight,
        sample_weight,
        distributed,
    } = args;
    if batch_size == 0 {
        return Err(Error::invalid("fit: batch_size must be at least 1"));
    }
    check_distributed(distributed.as_ref(), train_step.is_some())?;
    let batch_size = distributed
        .as_ref()
        .map_or(batch_size, |dp| dp.global_batch(batch_size));
    let n_all = model.check_data("fit", x, y)?;
    let weights = sample_weights(
        model,
        y,
        n_all,
        class_weight.as_ref(),
        sample_weight.as_ref(),
    )?;
    if weights.is_some() {
        check_weighted_training(model, train_step.is_some())?;
    }
    // An augmentation that does nothing is no augmentation (and draws no seed, so the run
    // stays identical to one without it).
    let augmentation = augmentation.filter(|a| !a.is_identity());
    if let Some(a) = &augmentation {
        if x.len() != 1 {
            return Err(Error::invalid(format!(
                "fit: augmentation takes a model with one (image) input; model '{}' has {}",
                model.name,
                x.len()
            )));
        }
        a.check_input(x[0].shape())?;
    }

    // Keras takes the validation split from the end, before any shuffling.
    // Validation is unweighted: the weights of a held-out tail are dropped.
    let ((train_x, train_y), val, weights) = match validation_data {
        Some((vx, vy)) => {
            model
                .check_data("fit (validation data)", &vx, &vy)
                .map(|_| ())?;
            ((x.to_vec(), y.to_vec()), Some((vx, vy)), weights)
        }
        None if validation_split > 0.0 => {
            let (train, val) = split_validation(x, y, n_all, validation_split)?;
            let k = train.0[0].shape()[0];
            (train, Some(val), weights.map(|w| w.slice_rows(0, k)))
        }
        None => ((x.to_vec(), y.to_vec()), None, weights),
    };
    let n = train_x[0].shape()[0];
    if n == 0 {
        return Err(Error::invalid("fit: no training samples"));
    }
    let mut feed = TensorFeed {
        x: train_x,
        y: train_y,
        weights,
        order: (0..n).collect(),
        batch_size,
        shuffle,
        augmentation,
        augment_seed: None,
        share: distributed.as_ref().map(|dp| (dp.rank(), dp.size())),
    };
    let settings = EpochLoop {
        epochs,
        initial_epoch,
        val_batch_size: batch_size.max(256),
        verbose,
        callbacks,
        train_step,
        val,
        distributed,
    };
    run_epochs(model, &mut feed, settings)
}

/// `fit` over a `BatchSource` (see `source.rs`): the same epoch loop as `fit`, each
/// batch checked against the model as it arrives. `batch_size` sets only the validation
/// batches; `shuffle` is the source's business; `validation_split`, `augmentation` and
/// `sample_weight` need tensors and are refused. `class_weight` weighs each batch's
/// samples by the classes of its labels.
pub(super) fn fit_source(
    model: &mut Sequential,
    source: &mut dyn BatchSource,
    args: FitArgs,
) -> Result<History> {
    let FitArgs {
        epochs,
        batch_size,
        validation_split,
        validation_data,
        shuffle: _,
        verbose,
        callbacks,
        initial_epoch,
        augmentation,
        train_step,
        class_weight,
        sample_weight,
        distributed,
    } = args;
    if model.compiled.is_none() {
        return Err(Error::invalid(
            "fit: the model is not compiled (call compile first)",
        ));
    }
    if validation_split > 0.0 {
        return Err(Error::invalid(
            "fit_source: validation_split needs tensors to split; give validation_data",
        ));
    }
    if augmentation.is_some() {
        return Err(Error::invalid(
            "fit_source: augmentation applies to tensor data; augment in the source",
        ));
    }
    if sample_weight.is_some() {
        return Err(Error::invalid(
            "fit_source: sample_weight is one weight per sample of tensor data; a source's \
             batches have no fixed samples (use class_weight, or weigh in the loss)",
        ));
    }
    if source.is_empty() {
        return Err(Error::invalid("fit_source: the source has no batches"));
    }
    check_distributed(distributed.as_ref(), train_step.is_some())?;
    if class_weight.is_some() {
        check_weighted_training(model, train_step.is_some())?;
    }
    if let Some((vx, vy)) = &validation_data {
        model.check_data("fit (validation data)", vx, vy)?;
    }
    let settings = EpochLoop {
        epochs,
        initial_epoch,
        val_batch_size: batch_size.max(256),
        verbose,
        callbacks,
        train_step,
        val: validation_data,
        distributed,
    };
    run_epochs(
        model,
        &mut SourceFeed {
            source,
            class_weight,
        },
        settings,
    )
}

/// Data-parallel training runs the model's own step (the gradient exchange sits inside
/// it), not a custom one.
fn check_distributed(dp: Option<&DataParallel>, custom_step: bool) -> Result<()> {
    if dp.is_some() && custom_step {
        return Err(Error::invalid(
            "fit: FitArgs::distributed cannot be used with FitArgs::train_step (the \
             gradient exchange is part of the model's own step)",
        ));
    }
    Ok(())
}

/// Where the epoch loop takes its batches from: tensors through the prefetching
/// producer, or a `BatchSource`.
trait Feed {
    /// Batches per epoch.
    fn steps(&self) -> usize;
    /// Called once, after the callbacks' `on_train_begin`.
    fn start(&mut self, model: &mut Sequential);
    /// Hands the epoch's batches, in order, to `body` (with the time waited for each).
    fn epoch(
        &mut self,
        model: &mut Sequential,
        epoch: usize,
        body: &mut dyn FnMut(&mut Sequential, usize, PreparedBatch, Duration) -> Result<()>,
    ) -> Result<()>;
    /// Where the feed stands after an epoch, for a backup: this epoch's sample order and
    /// the augmentation seed.
    fn position(&self) -> (Vec<usize>, Option<u64>);
    /// Continues from a backup's `position`.
    fn restore(&mut self, order: Vec<usize>, augment_seed: Option<u64>) -> Result<()>;
}

/// Tensors, cut into shuffled batches by the producer thread (`prefetch.rs`).
struct TensorFeed {
    x: Vec<Tensor>,
    y: Vec<Tensor>,
    /// One weight per training sample (class weight times sample weight), if any.
    weights: Option<Tensor>,
    order: Vec<usize>,
    batch_size: usize,
    shuffle: bool,
    augmentation: Option<Box<dyn BatchTransform>>,
    augment_seed: Option<u64>,
    /// Data-parallel training: `(rank, ranks)`, and the producer gathers only this rank's
    /// rows of each global batch.
    share: Option<(usize, usize)>,
}

impl Feed for TensorFeed {
    fn steps(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    fn position(&self) -> (Vec<usize>, Option<u64>) {
        (self.order.clone(), self.augment_seed)
    }

    fn restore(&mut self, order: Vec<usize>, augment_seed: Option<u64>) -> Result<()> {
        if order.len() != self.order.len() {
            return Err(Error::invalid(format!(
                "fit: the backup is of a run on {} training samples, this one has {}",
                order.len(),
                self.order.len()
            )));
        }
        self.order = order;
        self.augment_seed = augment_seed.filter(|_| self.augmentation.is_some());
        Ok(())
    }

    fn start(&mut self, model: &mut Sequential) {
        // Drawn only when augmenting, so that runs without augmentation keep their
        // shuffles and dropout masks.
        self.augment_seed = self.augmentation.as_ref().map(|_| model.rng.next_u64());
    }

    fn epoch(
        &mut self,
        model: &mut Sequential,
        epoch: usize,
        body: &mut dyn FnMut(&mut Sequential, usize, PreparedBatch, Duration) -> Result<()>,
    ) -> Result<()> {
        if self.shuffle {
            model.rng.shuffle(&mut self.order);
        }
        let augment =
            self.augmentation
                .as_ref()
                .zip(self.augment_seed)
                .map(|(augmentation, seed)| AugmentWith {
                    augmentation: augmentation.as_ref(),
                    seed,
                });
        let steps = self.steps();
        // The producer thread borrows the data and this epoch's order; the scope ends
        // (joining it) before the order is shuffled again.
        std::thread::scope(|scope| -> Result<()> {
            let mut batches = Prefetcher::start_share(
                scope,
                &self.x,
                &self.y,
                self.weights.as_ref(),
                &self.order,
                self.batch_size,
                epoch,
                augment,
                self.share,
            );
            for step in 0..steps {
                let (batch, waited) = batches.next_batch()?;
                body(model, step, batch, waited)?;
            }
            Ok(())
        })
    }
}

/// A `BatchSource`, asked on the main thread.
struct SourceFeed<'a> {
    source: &'a mut dyn BatchSource,
    /// Weighs each batch's samples by the classes of its labels.
    class_weight: Option<ClassWeights>,
}

impl Feed for SourceFeed<'_> {
    fn steps(&self) -> usize {
        self.source.len()
    }

    fn start(&mut self, _model: &mut Sequential) {}

    /// A source keeps its own position (the epoch and step it is asked for).
    fn position(&self) -> (Vec<usize>, Option<u64>) {
        (Vec::new(), None)
    }

    fn restore(&mut self, order: Vec<usize>, _augment_seed: Option<u64>) -> Result<()> {
        if !order.is_empty() {
            return Err(Error::invalid(
                "fit_source: the backup is of a run over tensors, not over a batch source",
            ));
        }
        Ok(())
    }

    fn epoch(
        &mut self,
        model: &mut Sequential,
        epoch: usize,
        body: &mut dyn FnMut(&mut Sequential, usize, PreparedBatch, Duration) -> Result<()>,
    ) -> Result<()> {
        let steps = self.source.len();
        for step in 0..steps {
            let start = Instant::now();
            let Batch { xs, ys } = self.source.batch(epoch, step)?;
            let what = format!("fit: batch {} of {steps} (epoch {})", step + 1, epoch + 1);
            let size = model.check_data(&what, &xs, &ys)?;
            let weights = match &self.class_weight {
                Some(cw) => {
                    check_class_weight(model, cw, &ys).map_err(|e| e.context(&what))?;
                    let w = cw.per_sample(&ys[0]).map_err(|e| e.context(&what))?;
                    Some(Tensor::from_vec(w, &[size]))
                }
                None => None,
            };
            let batch = PreparedBatch {
                xs,
                ys,
                weights,
                size,
                global: size,
                prepare: start.elapsed(),
            };
            body(model, step, batch, Duration::ZERO)?;
        }
        Ok(())
    }
}

/// What the epoch loop needs besides the model and its batches.
struct EpochLoop {
    epochs: usize,
    initial_epoch: usize,
    val_batch_size: usize,
    verbose: u8,
    callbacks: Vec<Box<dyn Callback>>,
    train_step: Option<TrainStep>,
    val: Option<(Vec<Tensor>, Vec<Tensor>)>,
    distributed: Option<DataParallel>,
}

/// The epoch loop of `fit` and `fit_source`: per batch the step (or the user's), the
/// running logs and the progress bar; per epoch validation, history and callbacks.
fn run_epochs(model: &mut Sequential, feed: &mut dyn Feed, settings: EpochLoop) -> Result<History> {
    let EpochLoop {
        epochs,
        initial_epoch,
        val_batch_size,
        verbose,
        mut callbacks,
        mut train_step,
        val,
        distributed,
    } = settings;
    // Only rank 0 prints.
    let verbose = match &distributed {
        Some(dp) if dp.rank() != 0 => 0,
        _ => verbose,
    };
    let metric_list = model.compiled.as_ref().expect("checked").metrics.clone();
    let fused = model.fused_outputs();
    let fused_acts = model.fused_activations();
    // The keys of the epoch line, in the order printed.
    let log_keys: Vec<String> = Tally::new(fused.len(), metric_list.len())
        .logs(model, &metric_list)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut history = History::default();
    model.stop_training = false;
    for cb in callbacks.iter_mut() {
        cb.on_train_begin(model)?;
    }

    let steps = feed.steps();
    if let Some(dp) = &distributed {
        // Before the feed draws its augmentation seed from the generator.
        dp.broadcast_model(model)?;
    }
    feed.start(model);
    // A run to continue (`BackupAndRestore`): everything as it stood after its last epoch.
    let mut first_epoch = initial_epoch;
    let mut resumed = None;
    for cb in callbacks.iter_mut() {
        if let Some(state) = cb.resume(model)? {
            resumed = Some(state);
            break;
        }
    }
    if let Some(dp) = &distributed {
        // Rank 0's backup decides (other ranks may have none): its state, then the
        // weights and optimizer state it loaded.
        let mut bytes = serde_json::to_vec(&resumed).expect("fit state serializes");
        dp.world.broadcast_bytes(&mut bytes)?;
        let theirs: Option<FitState> = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(format!("distributed: rank 0's resume state: {e}")))?;
        if theirs.is_some() {
            dp.broadcast_model(model)?;
        }
        if dp.rank() != 0 {
            resumed = theirs.map(|mut s| {
                // Callback states apply only to the same list of callbacks.
                if s.callbacks.len() != callbacks.len() {
                    s.callbacks = vec![None; callbacks.len()];
                }
                s
            });
        }
    }
    if let Some(state) = resumed {
        feed.restore(state.order, state.augment_seed)?;
        model.rng = crate::engine::Rng::from_state(&state.rng)?;
        history = state.history;
        for (cb, s) in callbacks.iter_mut().zip(&state.callbacks) {
            if let Some(s) = s {
                cb.set_state(s)?;
            }
        }
        first_epoch = if state.stopped {
            epochs
        } else {
            state.next_epoch
        };
    }
    for epoch in first_epoch..epochs {
        for cb in callbacks.iter_mut() {
            cb.on_epoch_begin(epoch, model)?;
        }
        let bar = if verbose == 1 {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} - ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("Epoch {}/{}", epoch + 1, epochs));
            bar
        } else {
            ProgressBar::hidden()
        };
        let start = Instant::now();
        let mut tally = Tally::new(fused.len(), metric_list.len());
        let mut timing = BatchTiming::default();
        let mut communication = Duration::ZERO;
        feed.epoch(
            model,
            epoch,
            &mut |model: &mut Sequential, step: usize, batch: PreparedBatch, waited: Duration| {
                let step_start = Instant::now();
                timing.wait += waited;
                timing.prepare += batch.prepare;
                let global = batch.global;
                let batch = match &distributed {
                    Some(dp) => own_share(dp, batch),
                    None => batch,
                };
                let targets: Vec<Target> = batch.ys.iter().map(Target::from).collect();
                let stepped = match (&distributed, train_step.as_mut()) {
                    (Some(dp), _) => data_parallel_step(model, dp, &batch, global, &targets),
                    (None, Some(custom)) => custom(model, &batch.xs, &targets),
                    (None, None) => {
                        model.train_step_weighted(&batch.xs, &targets, batch.weights.as_ref())
                    }
                };
                let out = match stepped {
                    Ok(out) => out,
                    Err(Error::Numerical(m)) => {
                        bar.abandon();
                        return Err(Error::Numerical(format!(
                            "at epoch {}, batch {} of {steps}: {m}",
                            epoch + 1,
                            step + 1
                        )));
                    }
                    Err(e) => return Err(e),
                };
                communication += out.times.communication;
                tally.add(
                    batch.size,
                    out.loss,
                    &out.output_losses,
                    &out.outputs,
                    &batch.ys,
                    &fused_acts,
                    &metric_list,
                );
                for cb in callbacks.iter_mut() {
                    cb.on_train_batch_end(step, model)?;
                }
                if verbose == 1 && (step % 10 == 9 || step + 1 == steps) {
                    let rate = tally.seen() as f64 / start.elapsed().as_secs_f64().max(1e-9);
                    let logs: Logs = tally.logs(model, &metric_list).into_iter().collect();
                    bar.set_message(format!(
                        "{} - {rate:.0} img/s",
                        format_logs(&logs, &log_keys)
                    ));
                }
                bar.inc(1);
                timing.step += step_start.elapsed();
                Ok(())
            },
        )?;
        let seconds = start.elapsed().as_secs_f64();
        bar.finish_and_clear();

        let mut seen = tally.seen();
        let mut logs: Logs = tally.logs(model, &metric_list).into_iter().collect();
        if let Some(dp) = &distributed {
            // Every rank gets the means over all ranks' samples.
            let keys: Vec<&String> = log_keys.iter().filter(|k| logs.contains_key(*k)).collect();
            let mut values: Vec<f32> = keys.iter().map(|k| logs[*k]).collect();
            seen = crate::distributed::weighted_mean(dp.world.as_ref(), &mut values, seen)?;
            for (k, v) in keys.into_iter().zip(values) {
                logs.insert(k.clone(), v);
            }
        }
        if let Some((vx, vy)) = &val {
            let ev = match &distributed {
                Some(dp) => dp.evaluate(model, vx, vy, val_batch_size)?,
                None => model.evaluate_many(vx, vy, val_batch_size)?,
            };
            logs.insert("val_loss".into(), ev.loss);
            for (k, v) in ev.metrics {
                logs.insert(format!("val_{k}"), v);
            }
        }
        logs.insert(
            "lr".into(),
            model.optimizer().map(|o| o.learning_rate()).unwrap_or(0.0),
        );
        logs.insert("seconds".into(), seconds as f32);
        logs.insert("images_per_second".into(), (seen as f64 / seconds) as f32);
        let per_batch = |d: Duration| (d.as_secs_f64() * 1e3 / steps as f64) as f32;
        logs.insert("batch_prepare_ms".into(), per_batch(timing.prepare));
        logs.insert("batch_wait_ms".into(), per_batch(timing.wait));
        logs.insert("step_ms".into(), per_batch(timing.step));
        if distributed.is_some() {
            logs.insert("communication_ms".into(), per_batch(communication));
        }
        if verbose >= 1 {
            println!(
                "Epoch {}/{} - {:.1}s - {:.0} img/s - {} - batches: prepared {:.2} ms, \
                 waited {:.2} ms, step {:.2} ms",
                epoch + 1,
                epochs,
                seconds,
                seen as f64 / seconds,
                format_logs(&logs, &log_keys),
                per_batch(timing.prepare),
                per_batch(timing.wait),
                per_batch(timing.step),
            );
            if let Some(dp) = &distributed {
                println!(
                    "  {} ranks: gradient exchange {:.2} ms per step ({:.0}% of a step)",
                    dp.size(),
                    per_batch(communication),
                    100.0 * communication.as_secs_f64() / timing.step.as_secs_f64().max(1e-9)
                );
            }
        }
        history.push(epoch, &logs);
        for cb in callbacks.iter_mut() {
            cb.on_epoch_end(epoch, &logs, model)?;
        }
        let (order, augment_seed) = feed.position();
        let state = FitState {
            next_epoch: epoch + 1,
            order,
            augment_seed,
            rng: model.rng.state(),
            history: history.clone(),
            callbacks: callbacks.iter().map(|c| c.state()).collect(),
            stopped: model.stop_training,
        };
        for cb in callbacks.iter_mut() {
            cb.on_epoch_state(&state, model)?;
        }
        if model.stop_training {
            break;
        }
    }
    for cb in callbacks.iter_mut() {
        cb.on_train_end(model)?;
        let (best, stopped) = cb.early_stop_epochs();
        history.best_epoch = history.best_epoch.or(best);
        history.stopped_epoch = history.stopped_epoch.or(stopped);
    }
    if verbose >= 1 {
        if let Some(s) = history.stopped_epoch {
            println!("Early stopping after epoch {}.", s + 1);
        }
        if let Some(b) = history.best_epoch {
            println!("Restored the weights of epoch {} (the best).", b + 1);
        }
    }
    Ok(history)
}

/// This rank's rows of a global batch (`distributed::shard`): a batch from a
/// `BatchSource` is the whole global batch; the producer (`prefetch.rs`) already hands over
/// only the share.
fn own_share(dp: &DataParallel, batch: PreparedBatch) -> PreparedBatch {
    let n = batch.size;
    let (lo, hi) = shard(n, dp.rank(), dp.size());
    if batch.global != batch.size || (lo, hi) == (0, n) {
        return batch;
    }
    let rows = |ts: &[Tensor]| ts.iter().map(|t| t.slice_rows(lo, hi)).collect();
    PreparedBatch {
        xs: rows(&batch.xs),
        ys: rows(&batch.ys),
        weights: batch.weights.as_ref().map(|w| w.slice_rows(lo, hi)),
        size: hi - lo,
        global: n,
        prepare: batch.prepare,
    }
}

/// One data-parallel step on this rank's share of a global batch: dropout draws the
/// share's numbers of the whole batch, the gradients are averaged over the ranks before
/// the update. A rank with no rows (a last batch smaller than the number of ranks) sends
/// zeros and applies the same update.
fn data_parallel_step(
    model: &mut Sequential,
    dp: &DataParallel,
    batch: &PreparedBatch,
    n: usize,
    targets: &[Target],
) -> Result<StepOutput> {
    let share = batch.size as f32 / n as f32;
    let synced_bn = dp.bn_stats == super::data_parallel::BnStats::Sync
        && model.params().iter().any(|p| p.buffer);
    if n < dp.size() && synced_bn {
        // Every rank sees the same n, so all return this error (none waits for another).
        return Err(Error::invalid(format!(
            "fit: a batch of {n} rows on {} ranks leaves a rank without rows, which \
             synchronized batch norm (BnStats::Sync, --bn-stats sync) cannot run; choose \
             a number of training samples whose last batch (samples % batch size) is 0 or \
             at least the number of ranks",
            dp.size()
        )));
    }
    let out = if batch.size == 0 {
        let trainable: Vec<_> = model.params().into_iter().filter(|p| p.trainable).collect();
        for p in &trainable {
            p.var.zero_grad();
        }
        let start = Instant::now();
        let loss = dp.exchange_gradients(&trainable, 0.0, 0.0)?;
        let communication = start.elapsed();
        let opt = model
            .optimizer_mut()
            .ok_or_else(|| Error::invalid("fit: the model is not compiled"))?;
        opt.step(&trainable);
        StepOutput {
            loss,
            output_losses: Vec::new(),
            outputs: Vec::new(),
            times: super::step::StepTimes {
                communication,
                ..Default::default()
            },
        }
    } else {
        let (lo, _) = shard(n, dp.rank(), dp.size());
        model.rng.set_shard(Some(Shard {
            lo,
            hi: lo + batch.size,
            n,
        }));
        let mut exchange = |params: &[crate::nn::layers::Param], loss: f32| {
            dp.exchange_gradients(params, loss, share)
        };
        // Synchronized batch norm for this step's forward and backward (BnStats::Sync).
        let _bn_sync = dp
            .bn_sync(batch.size as f64 / n as f64)
            .map(crate::ops::batchnorm_sync::SyncGuard::install);
        let stepped = model.train_step_exchanging(
            &batch.xs,
            targets,
            batch.weights.as_ref(),
            Some(&mut exchange),
        );
        model.rng.set_shard(None);
        stepped?
    };
    if n < dp.size() {
        // The ranks without rows drew no dropout numbers.
        dp.broadcast_rng(model)?;
    }
    Ok(out)
}
