//! Frozen kinks, for gradient checking whole networks.
//!
//! ReLU and max-pool are piecewise: a central difference whose step carries a
//! pre-activation across 0, or changes which cell of a pooling window is the largest,
//! estimates the slope of a different piece than the one the backward differentiates.
//! In a conv net almost every weight moves hundreds of activations, so some always
//! cross. While a `record` is running, each kink op logs the choice it made (the ReLU
//! mask, the max-pool winners); under `replay`, the same ops, called in the same order,
//! reuse those choices. The network is then the smooth function the backward pass
//! differentiates, and the check is exact up to f32 rounding.
//! Outside `record`/`replay` ops pay one thread-local read.

use std::cell::RefCell;

#[derive(Default, Clone)]
pub struct Recording {
    choices: Vec<Vec<u32>>,
}

enum Mode {
    Record(Recording),
    Replay(Recording, usize),
}

thread_local! {
    static MODE: RefCell<Option<Mode>> = const { RefCell::new(None) };
}

/// Whether a record or replay is running (kink ops only build their choice vector then).
pub fn active() -> bool {
    MODE.with(|m| m.borrow().is_some())
}

/// Runs `f`, logging every kink op's choice.
pub fn record<R>(f: impl FnOnce() -> R) -> (R, Recording) {
    MODE.with(|m| *m.borrow_mut() = Some(Mode::Record(Recording::default())));
    let r = f();
    let rec = MODE.with(|m| match m.borrow_mut().take() {
        Some(Mode::Record(rec)) => rec,
        _ => Recording::default(),
    });
    (r, rec)
}

/// Runs `f`, making every kink op reuse the recorded choices in order.
pub fn replay<R>(rec: &Recording, f: impl FnOnce() -> R) -> R {
    MODE.with(|m| *m.borrow_mut() = Some(Mode::Replay(rec.clone(), 0)));
    let r = f();
    MODE.with(|m| m.borrow_mut().take());
    r
}

/// Called by a kink op with the choice it computed; returns the choice to use, and
/// whether it differs from the computed one (then the op recomputes its output).
pub fn choose(computed: Vec<u32>) -> (Vec<u32>, bool) {
    MODE.with(|m| match m.borrow_mut().as_mut() {
        Some(Mode::Record(rec)) => {
            rec.choices.push(computed.clone());
            (computed, false)
        }
        Some(Mode::Replay(rec, cursor)) => match rec.choices.get(*cursor) {
            Some(c) if c.len() == computed.len() => {
                *cursor += 1;
                let changed = *c != computed;
                (c.clone(), changed)
            }
            _ => (computed, false), // a different graph: nothing sensible to replay
        },
        None => (computed, false),
    })
}
