//! `LambdaCallback`: a callback made of closures, as Keras' (`on_epoch_end=lambda epoch,
//! logs: ...`). Each hook is optional.

use super::callbacks::{Callback, Logs};
use super::model::Sequential;
use crate::error::Result;

type EpochHook = Box<dyn FnMut(usize, &Logs, &mut Sequential) -> Result<()>>;
type EpochBeginHook = Box<dyn FnMut(usize, &mut Sequential) -> Result<()>>;
type BatchHook = Box<dyn FnMut(usize, &mut Sequential) -> Result<()>>;
type TrainHook = Box<dyn FnMut(&mut Sequential) -> Result<()>>;

#[derive(Default)]
pub struct LambdaCallback {
    on_train_begin: Option<TrainHook>,
    on_epoch_begin: Option<EpochBeginHook>,
    on_epoch_end: Option<EpochHook>,
    on_batch_end: Option<BatchHook>,
    on_train_end: Option<TrainHook>,
}

impl LambdaCallback {
    pub fn new() -> LambdaCallback {
        LambdaCallback::default()
    }
    pub fn on_train_begin(
        mut self,
        f: impl FnMut(&mut Sequential) -> Result<()> + 'static,
    ) -> Self {
        self.on_train_begin = Some(Box::new(f));
        self
    }
    pub fn on_epoch_begin(
        mut self,
        f: impl FnMut(usize, &mut Sequential) -> Result<()> + 'static,
    ) -> Self {
        self.on_epoch_begin = Some(Box::new(f));
        self
    }
    pub fn on_epoch_end(
        mut self,
        f: impl FnMut(usize, &Logs, &mut Sequential) -> Result<()> + 'static,
    ) -> Self {
        self.on_epoch_end = Some(Box::new(f));
        self
    }
    /// After each training step; `step` counts from 0 within the epoch.
    pub fn on_batch_end(
        mut self,
        f: impl FnMut(usize, &mut Sequential) -> Result<()> + 'static,
    ) -> Self {
        self.on_batch_end = Some(Box::new(f));
        self
    }
    pub fn on_train_end(mut self, f: impl FnMut(&mut Sequential) -> Result<()> + 'static) -> Self {
        self.on_train_end = Some(Box::new(f));
        self
    }
}

impl Callback for LambdaCallback {
    fn on_train_begin(&mut self, model: &mut Sequential) -> Result<()> {
        self.on_train_begin.as_mut().map_or(Ok(()), |f| f(model))
    }
    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Sequential) -> Result<()> {
        self.on_epoch_begin
            .as_mut()
            .map_or(Ok(()), |f| f(epoch, model))
    }
    fn on_train_batch_end(&mut self, step: usize, model: &mut Sequential) -> Result<()> {
        self.on_batch_end
            .as_mut()
            .map_or(Ok(()), |f| f(step, model))
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Sequential) -> Result<()> {
        self.on_epoch_end
            .as_mut()
            .map_or(Ok(()), |f| f(epoch, logs, model))
    }
    fn on_train_end(&mut self, model: &mut Sequential) -> Result<()> {
        self.on_train_end.as_mut().map_or(Ok(()), |f| f(model))
    }
}
