//! Reverse-mode automatic differentiation over a dynamic graph (define-by-run).
//!
//! Every op on `Var`s computes its value at once and, when gradients are wanted, records a
//! node: its parents and a closure that maps the gradient of the output to the gradients
//! of the parents. `backward` walks the recorded nodes in reverse topological order,
//! so branches, residual adds, concatenations, a layer used twice and several losses
//! summed together all work without special cases: a node's gradient is the sum of what
//! every consumer sends it. Leaves that require a gradient (parameters) accumulate it in
//! `grad` until `zero_grad`, as in PyTorch.
//!
//! `no_grad()` returns a guard; while it lives, ops record nothing (inference).
//! After `backward` the saved tensors of the graph are released (like PyTorch without
//! `retain_graph`); `backward_retain_graph` keeps them for a second backward.
//!
//! # Profiling hook
//! For the per-layer profile of `nabla bench` (`training/profile.rs`) a recorded node
//! remembers the *scope* that was current when it was created (a small integer that
//! `Sequential::forward_with` sets per layer while profiling, 0 otherwise), and, while
//! backward timing is on, `backward` adds each node's elapsed time to its scope's total.
//! Off, the cost is one thread-local read per recorded op and one per `backward` call.

use super::tensor::Tensor;
use std::cell::{Cell, Ref, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
    /// The profiling scope new nodes are tagged with (0: none).
    static SCOPE: Cell<u32> = const { Cell::new(0) };
    /// Seconds of backward per scope, accumulated while `Some` (backward timing on).
    static BACKWARD_SECONDS: RefCell<Option<Vec<f64>>> = const { RefCell::new(None) };
}

/// Sets the profiling scope that nodes recorded from now on are tagged with, returning
/// the previous one. Scope 0 means "no scope"; see the module docs.
pub fn set_scope(scope: u32) -> u32 {
    SCOPE.with(|s| s.replace(scope))
}

/// Starts (or stops) timing `backward` per scope; starting clears the totals.
pub fn set_backward_timing(on: bool) {
    BACKWARD_SECONDS.with(|t| *t.borrow_mut() = on.then(Vec::new));
}

/// Seconds spent in `backward` per scope (index = scope) since timing started, and the
/// totals reset to zero. Time outside any node (sorting the graph) goes to scope 0.
pub fn take_backward_seconds() -> Vec<f64> {
    BACKWARD_SECONDS.with(|t| {
        t.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    })
}

pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// While the returned guard lives, no op records a graph node.
pub fn no_grad() -> NoGradGuard {
    let prev = GRAD_ENABLED.with(|g| g.replace(false));
    NoGradGuard { prev }
}

pub struct NoGradGuard {
    prev: bool,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.prev));
    }
}

/// Maps the gradient of an op's output to the gradients of its parents, in order.
/// `None` means "this parent receives no gradient" (e.g. integer labels).
pub type BackwardFn = Box<dyn Fn(&Tensor) -> Vec<Option<Tensor>>>;

struct OpRecord {
    name: &'static str,
    parents: Vec<Var>,
    backward: BackwardFn,
}

struct Node {
    id: u64,
    /// Profiling scope when the node was recorded (see the module docs).
    scope: u32,
    value: RefCell<Tensor>,
    grad: RefCell<Option<Tensor>>,
    /// A `Cell` so that a parameter can be frozen and unfrozen in place (transfer
    /// learning): every layer and optimizer holds the same node.
    requires_grad: Cell<bool>,
    op: RefCell<Option<OpRecord>>,
}

/// A tensor in the autodiff graph. Cloning a `Var` clones a handle to the same node.
#[derive(Clone)]
pub struct Var(Rc<Node>);

fn next_id() -> u64 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

impl Var {
    fn new(value: Tensor, requires_grad: bool, op: Option<OpRecord>) -> Var {
        // Only recorded ops are timed in backward, so only they read the scope.
        let scope = if op.is_some() {
            SCOPE.with(|s| s.get())
        } else {
            0
        };
        Var(Rc::new(Node {
            id: next_id(),
            scope,
            value: RefCell::new(value),
            grad: RefCell::new(None),
            requires_grad: Cell::new(requires_grad),
            op: RefCell::new(op),
        }))
    }

    /// A value that never receives a gradient (inputs, labels).
    pub fn constant(value: Tensor) -> Var {
        Var::new(value, false, None)
    }

    /// A leaf that accumulates a gradient (a trainable parameter).
    pub fn parameter(value: Tensor) -> Var {
        Var::new(value, true, None)
    }

    /// The result of an op. Records the node only if gradients are enabled and some
    /// parent needs one; otherwise the result is a constant and `backward` is dropped.
    pub fn from_op(
        value: Tensor,
        name: &'static str,
        parents: &[&Var],
        backward: impl Fn(&Tensor) -> Vec<Option<Tensor>> + 'static,
    ) -> Var {
        if is_grad_enabled() && parents.iter().any(|p| p.requires_grad()) {
            let op = OpRecord {
                name,
                parents: parents.iter().map(|&p| p.clone()).collect(),
                backward: Box::new(backward),
            };
            Var::new(value, true, Some(op))
        } else {
            Var::constant(value)
        }
    }

    pub fn id(&self) -> u64 {
        self.0.id
    }

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.get()
    }

    /// Freezes (`false`) or unfreezes a leaf: a frozen parameter is a constant to the
    /// ops recorded from now on, so no gradient is computed for it and nothing behind
    /// it is recorded unless another input needs a gradient (a frozen base costs no
    /// backward at all). Its accumulated gradient is dropped. A recorded op's result
    /// is left as it is: its graph was built for what its parents were then.
    pub fn set_requires_grad(&self, on: bool) {
        if self.0.op.borrow().is_some() {
            return;
        }
        self.0.requires_grad.set(on);
        if !on {
            *self.0.grad.borrow_mut() = None;
        }
    }

    /// The value (a cheap clone sharing the buffer).
    pub fn value(&self) -> Tensor {
        self.0.value.borrow().clone()
    }

    /// Borrow the value without cloning the handle.
    pub fn value_ref(&self) -> Ref<'_, Tensor> {
        self.0.value.borrow()
    }

    pub fn shape(&self) -> Vec<usize> {
        self.0.value.borrow().shape().to_vec()
    }

    /// Replace the value (loading weights). The shape may not change.
    pub fn set_value(&self, value: Tensor) {
        let mut v = self.0.value.borrow_mut();
        assert_eq!(v.shape(), value.shape(), "set_value changes the shape");
        *v = value;
    }

    /// Update the value in place (optimizers).
    pub fn update(&self, f: impl FnOnce(&mut Tensor)) {
        f(&mut self.0.value.borrow_mut())
    }

    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.borrow().clone()
    }

    /// Replaces the accumulated gradient (data-parallel training writes back the
    /// gradient averaged over the ranks).
    pub fn set_grad(&self, grad: Tensor) {
        *self.0.grad.borrow_mut() = Some(grad);
    }

    pub fn zero_grad(&self) {
        *self.0.grad.borrow_mut() = None;
    }

    /// Name of the op that produced this value, if one was recorded.
    pub fn op_name(&self) -> Option<&'static str> {
        self.0.op.borrow().as_ref().map(|op| op.name)
    }

    /// Back-propagates from this value with a seed gradient of ones (for a scalar loss,
    /// d loss / d loss = 1) and releases the graph's saved tensors.
    pub fn backward(&self) {
        let seed = Tensor::ones(&self.shape());
        self.run_backward(seed, false);
    }

    /// As `backward`, with an explicit seed gradient.
    pub fn backward_with(&self, seed: Tensor) {
        assert_eq!(seed.shape(), self.shape().as_slice(), "seed shape");
        self.run_backward(seed, false);
    }

    /// As `backward`, keeping the graph for another backward pass.
    pub fn backward_retain_graph(&self) {
        let seed = Tensor::ones(&self.shape());
        self.run_backward(seed, true);
    }

    fn run_backward(&self, seed: Tensor, retain: bool) {
        if !self.requires_grad() {
            return;
        }
        // Per-scope timing only when the profiler asked for it (one read per backward).
        let timing = BACKWARD_SECONDS.with(|t| t.borrow().is_some());
        let start = timing.then(Instant::now);
        let order = self.topo_order();
        // seconds[scope]; the graph sort and leaf accumulation count as scope 0.
        let mut seconds: Vec<f64> = Vec::new();
        let mut charge = |scope: u32, t0: Instant| {
            let i = scope as usize;
            if seconds.len() <= i {
                seconds.resize(i + 1, 0.0);
            }
            seconds[i] += t0.elapsed().as_secs_f64();
        };
        if let Some(t0) = start {
            charge(0, t0);
        }
        let mut grads: HashMap<u64, Tensor> = HashMap::new();
        grads.insert(self.id(), seed);
        for var in order.iter().rev() {
            let Some(g) = grads.remove(&var.id()) else {
                continue;
            };
            if timing {
                let t0 = Instant::now();
                var.backward_node(g, &mut grads, retain);
                charge(var.0.scope, t0);
            } else {
                var.backward_node(g, &mut grads, retain);
            }
        }
        if timing {
            BACKWARD_SECONDS.with(|t| {
                if let Some(total) = t.borrow_mut().as_mut() {
                    if total.len() < seconds.len() {
                        total.resize(seconds.len(), 0.0);
                    }
                    for (acc, s) in total.iter_mut().zip(&seconds) {
                        *acc += s;
                    }
                }
            });
        }
    }

    /// One step of the reverse walk: a leaf accumulates `g`; an op node maps `g` to its
    /// parents' gradients and adds them into `grads` (then drops its saved tensors
    /// unless `retain`).
    fn backward_node(&self, g: Tensor, grads: &mut HashMap<u64, Tensor>, retain: bool) {
        let op_slot = self.0.op.borrow();
        let Some(op) = op_slot.as_ref() else {
            let mut slot = self.0.grad.borrow_mut();
            match slot.as_mut() {
                Some(acc) => acc.add_assign(&g),
                None => *slot = Some(g),
            }
            return;
        };
        // Backward kernels read `dy` as a plain f32 slice: a view or half-precision
        // gradient is made so here, once (free for the usual contiguous f32 one).
        let parent_grads = (op.backward)(&g.contiguous_f32());
        debug_assert_eq!(parent_grads.len(), op.parents.len(), "{}", op.name);
        for (parent, pg) in op.parents.iter().zip(parent_grads) {
            let Some(pg) = pg else { continue };
            if !parent.requires_grad() {
                continue;
            }
            debug_assert_eq!(
                pg.shape(),
                parent.value_ref().shape(),
                "gradient shape from op {}",
                op.name
            );
            match grads.get_mut(&parent.id()) {
                Some(acc) => acc.add_assign(&pg),
                None => {
                    grads.insert(parent.id(), pg);
                }
            }
        }
        drop(op_slot);
        if !retain {
            self.0.op.borrow_mut().take();
        }
    }

    /// Nodes reachable from `self` that need a gradient, parents before children.
    fn topo_order(&self) -> Vec<Var> {
        let mut order = Vec::new();
        let mut visited = std::collections::HashSet::new();
        // Iterative DFS: deep nets would overflow the stack with recursion.
        let mut stack: Vec<(Var, bool)> = vec![(self.clone(), false)];
        while let Some((var, expanded)) = stack.pop() {
            if expanded {
                order.push(var);
                continue;
            }
            if !visited.insert(var.id()) {
                continue;
            }
            stack.push((var.clone(), true));
            if let Some(op) = var.0.op.borrow().as_ref() {
                for p in &op.parents {
                    if p.requires_grad() && !visited.contains(&p.id()) {
                        stack.push((p.clone(), false));
                    }
                }
            }
        }
        order
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Dropping a long chain of nodes recursively would overflow the stack on deep
        // graphs; unlink parents iteratively instead.
        let mut pending: Vec<Var> = match self.op.get_mut().take() {
            Some(op) => op.parents,
            None => return,
        };
        while let Some(var) = pending.pop() {
            if let Ok(node) = Rc::try_unwrap(var.0) {
                if let Some(op) = node.op.borrow_mut().take() {
                    pending.extend(op.parents);
                }
            }
        }
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Var(id={}, shape={:?}, op={:?}, requires_grad={})",
            self.id(),
            self.shape(),
            self.op_name(),
            self.requires_grad()
        )
    }
}
