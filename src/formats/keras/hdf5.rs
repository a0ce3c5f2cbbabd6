//! The weights of a Keras 3 HDF5 file (`model.weights.h5` inside a `.keras`, or a
//! `.weights.h5` from `model.save_weights`), read with `rustyhdf5`, a pure-Rust HDF5
//! reader (no C library to install).
//!
//! Keras 3 writes one group per layer, `layers/<key>/vars/0`, `vars/1`, ... in the
//! layer's own order (Dense: kernel, bias; BatchNormalization: gamma, beta,
//! moving_mean, moving_variance). `<key>` is a name Keras derives from the class
//! (`conv2d_1`, `batch_normalization`), not the layer's name; recent versions store the
//! layer's name as the `name` attribute of `vars`. Both are kept, so the caller can match
//! by name and fall back to the key.
//!
//! A layer made of layers keeps theirs in subgroups, read here as a tree (`parts`): a
//! recurrent layer's weights are its cell's (`layers/lstm/cell/vars`), a Bidirectional
//! holds `forward_layer` and `backward_layer`, a nested model its own `layers` group.

use crate::error::{Error, Result};
use rustyhdf5::{AttrValue, DType, File};
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

/// One weight as stored: shape (Keras' layout) and values.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// A layer's group of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLayer {
    /// The group's key under `layers/` (`conv2d_1`).
    pub key: String,
    /// The layer's name from the `name` attribute of `vars`, when the file has one.
    pub name: Option<String>,
    /// `vars/0`, `vars/1`, ... in order.
    pub vars: Vec<StoredTensor>,
    /// The group's other subgroups (`cell`, `forward_layer`, `layers`), keyed by their
    /// names, read the same way.
    pub parts: Vec<StoredLayer>,
}

impl StoredLayer {
    /// The subgroup `key`, if the group has it.
    pub fn part(&self, key: &str) -> Option<&StoredLayer> {
        self.parts.iter().find(|p| p.key == key)
    }

    /// How many weights the group and its subgroups hold.
    pub fn weight_count(&self) -> usize {
        self.vars.len()
            + self
                .parts
                .iter()
                .map(StoredLayer::weight_count)
                .sum::<usize>()
    }
}

/// How deep layers may nest in a file (a model in a model in ...): a corrupt file must
/// not recurse the stack away.
const MAX_DEPTH: usize = 16;

/// The most elements one weight may have (1 G floats, 4 GB): a corrupt shape must not
/// make us allocate the machine away before the data runs out.
const MAX_ELEMENTS: u64 = 1 << 30;

/// Reads every layer group of a Keras 3 weights file given as bytes; `file` names it in
/// errors (the `.keras` file and the member, or the `.h5` file).
pub fn parse_weights(bytes: Vec<u8>, file: &Path) -> Result<Vec<StoredLayer>> {
    // rustyhdf5 1.93 can panic on malformed input (an out-of-range slice in its v1
    // B-tree reader, found by fuzz/keras_h5): a corrupt file must be an error, so such
    // a panic is contained here and reported as one.
    contained(|| parse_unchecked(bytes, file)).unwrap_or_else(|_| {
        Err(Error::format(
            file,
            "corrupt HDF5 file (the HDF5 reader failed on its structure)",
        ))
    })
}

thread_local! {
    /// Set while this thread runs the HDF5 reader inside `contained`.
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic inside it into `Err` without its message on stderr.
///
/// Why a hook and not only `catch_unwind`: the panic hook runs before unwinding starts,
/// so the default one prints "thread panicked at ..." for a panic that is then caught,
/// and libFuzzer's aborts the process there. The hook installed once here passes every
/// panic to the hook it replaced, except one raised on a thread while it is inside
/// `contained`; so a panic of our own code anywhere else is still reported (and still
/// found by the fuzzers), and only the third-party reader's is turned into an error.
fn contained<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CONTAINING.with(Cell::get) {
                previous(info)
            }
        }));
    });
    let was = CONTAINING.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(was));
    result
}

fn parse_unchecked(bytes: Vec<u8>, file: &Path) -> Result<Vec<StoredLayer>> {
    let bad = |what: String| Error::format(file, what);
    let h5 = File::from_bytes(bytes).map_err(|e| bad(format!("not a readable HDF5 file: {e}")))?;
    let root = h5.root();
    let groups = root
        .groups()
        .map_err(|e| bad(format!("cannot list the root group: {e}")))?;
    if !groups.iter().any(|g| g == "layers") {
        return Err(bad(format!(
            "no `layers` group: not a Keras 3 weights file (top-level groups: {groups:?})"
        )));
    }
    let layers = root
        .group("layers")
        .map_err(|e| bad(format!("cannot open `layers`: {e}")))?;
    read_layers(&layers, "layers", 0, &bad)
}

/// Every layer group under `layers` (at `path` in the file).
fn read_layers(
    layers: &rustyhdf5::Group,
    path: &str,
    depth: usize,
    bad: &dyn Fn(String) -> Error,
) -> Result<Vec<StoredLayer>> {
    let keys = layers
        .groups()
        .map_err(|e| bad(format!("cannot list `{path}`: {e}")))?;
    let mut out = Vec::new();
    for key in keys {
        let at = |e: rustyhdf5::Error| bad(format!("{path}/{key}: {e}"));
        let group = layers.group(&key).map_err(at)?;
        let p = format!("{path}/{key}");
        out.push(read_group(&group, key, &p, depth, bad)?);
    }
    Ok(out)
}

/// One group: its `vars` and, recursively, its other subgroups.
fn read_group(
    group: &rustyhdf5::Group,
    key: String,
    path: &str,
    depth: usize,
    bad: &dyn Fn(String) -> Error,
) -> Result<StoredLayer> {
    if depth >= MAX_DEPTH {
        return Err(bad(format!(
            "{path}: layers nested more than {MAX_DEPTH} deep"
        )));
    }
    let at = |e: rustyhdf5::Error| bad(format!("{path}: {e}"));
    let sub = group.groups().map_err(at)?;
    let mut parts = Vec::new();
    for g in sub.iter().filter(|g| *g != "vars") {
        let child = group.group(g).map_err(at)?;
        let p = format!("{path}/{g}");
        parts.push(if g == "layers" {
            StoredLayer {
                key: g.clone(),
                name: None,
                vars: Vec::new(),
                parts: read_layers(&child, &p, depth + 1, bad)?,
            }
        } else {
            read_group(&child, g.clone(), &p, depth + 1, bad)?
        });
    }
    let (name, vars) = if sub.iter().any(|g| g == "vars") {
        read_vars(group, path, bad)?
    } else {
        (None, Vec::new())
    };
    Ok(StoredLayer {
        key,
        name,
        vars,
        parts,
    })
}

/// The `vars` of a group: the layer's name (its attribute) and `vars/0`, `vars/1`, ...
fn read_vars(
    group: &rustyhdf5::Group,
    path: &str,
    bad: &dyn Fn(String) -> Error,
) -> Result<(Option<String>, Vec<StoredTensor>)> {
    let key = path;
    let at = |e: rustyhdf5::Error| bad(format!("{path}: {e}"));
    let vars = group.group("vars").map_err(at)?;
    let name = match vars.attrs().map_err(at)?.get("name") {
        Some(AttrValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let mut names = vars.datasets().map_err(at)?;
    let mut indexed = Vec::with_capacity(names.len());
    for n in names.drain(..) {
        let i: usize = n.parse().map_err(|_| {
            bad(format!(
                "{key}/vars/{n}: expected datasets named 0, 1, 2, ..."
            ))
        })?;
        indexed.push((i, n));
    }
    indexed.sort();
    for (pos, (i, _)) in indexed.iter().enumerate() {
        if *i != pos {
            return Err(bad(format!(
                "{key}/vars: dataset {pos} is missing (found {:?})",
                indexed.iter().map(|(i, _)| *i).collect::<Vec<_>>()
            )));
        }
    }
    let mut tensors = Vec::with_capacity(indexed.len());
    for (_, n) in indexed {
        let path = format!("{key}/vars/{n}");
        let at = |e: rustyhdf5::Error| bad(format!("{path}: {e}"));
        let ds = vars.dataset(&n).map_err(at)?;
        let shape = ds.shape().map_err(at)?;
        let count = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&c| c <= MAX_ELEMENTS)
            .ok_or_else(|| bad(format!("{path}: implausible shape {shape:?}")))?;
        match ds.dtype().map_err(at)? {
            DType::F32 | DType::F64 => {}
            other => {
                return Err(bad(format!(
                    "{path}: element type {other:?}; Keras weights are floats"
                )))
            }
        }
        let values = ds.read_f32().map_err(at)?;
        if values.len() as u64 != count {
            return Err(bad(format!(
                "{path}: shape {shape:?} needs {count} values, the file holds {}",
                values.len()
            )));
        }
        tensors.push(StoredTensor {
            shape: shape.iter().map(|&d| d as usize).collect(),
            values,
        });
    }
    Ok((name, tensors))
}
