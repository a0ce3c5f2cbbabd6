//! Per-layer forward timing for the profiler (`training::profile`): while it is on, the
//! graph runs each layer's forward inside the autodiff scope of its index + 1
//! (`engine::autograd::set_scope`) and adds its seconds here. When off, a forward call
//! pays one thread-local read.

use crate::engine::autograd::set_scope;
use std::cell::RefCell;
use std::time::Instant;

thread_local! {
    /// Forward seconds per layer, accumulated while `Some` (profiling on).
    static FORWARD_SECONDS: RefCell<Option<Vec<f64>>> = const { RefCell::new(None) };
}

/// Whether `Graph::run` should time its layers (one thread-local read).
pub(crate) fn is_profiling() -> bool {
    FORWARD_SECONDS.with(|f| f.borrow().is_some())
}

/// Runs layer `index`'s forward `f` inside its scope and adds its time to the totals.
pub(crate) fn time_layer<T>(index: usize, f: impl FnOnce() -> T) -> T {
    let prev = set_scope(index as u32 + 1);
    let t0 = Instant::now();
    let out = f();
    let dt = t0.elapsed().as_secs_f64();
    set_scope(prev);
    FORWARD_SECONDS.with(|s| {
        if let Some(v) = s.borrow_mut().as_mut() {
            if v.len() <= index {
                v.resize(index + 1, 0.0);
            }
            v[index] += dt;
        }
    });
    out
}

/// Turns timing on for this thread (and clears the totals).
pub(crate) fn start() {
    FORWARD_SECONDS.with(|f| *f.borrow_mut() = Some(Vec::new()));
}

/// Turns timing off.
pub(crate) fn stop() {
    FORWARD_SECONDS.with(|f| *f.borrow_mut() = None);
}

/// The seconds per layer since the last `take` (`None` when timing is off).
pub(crate) fn take() -> Option<Vec<f64>> {
    FORWARD_SECONDS.with(|f| f.borrow_mut().as_mut().map(std::mem::take))
}
