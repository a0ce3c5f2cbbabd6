//! PyTorch's `.pt` / `.pth` files as `torch.save` writes them since 1.6: a zip of
//! `PREFIX/data.pkl` (the pickled object) and `PREFIX/data/KEY` (one file per storage,
//! raw little-endian elements), read without executing anything.
//!
//! The pickle is parsed by [`super::pickle`] into inert nodes; this file then allows
//! only what a state dict needs, and refuses the file naming anything else:
//! - globals: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
//!   `torch._utils._rebuild_parameter` and the `torch.*Storage` types below. Every
//!   global in the stream is checked before anything is interpreted, so a file that
//!   names `os.system` (or any other callable) is refused whole: nothing could run it
//!   anyway, since no node is ever called.
//! - persistent ids `('storage', torch.FloatStorage, KEY, LOCATION, NUMEL)`, the
//!   storages in `data/KEY`.
//!
//! A tensor is `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: a view of its
//! storage. Offset, sizes and strides are honoured (a transposed or sliced tensor is
//! copied into row-major order) and checked against the storage's length first. The
//! state dict is the root dict, or the dict under `state_dict` or `model` (training
//! checkpoints), searched a few levels deep.
//!
//! Refused with a message saying what to do: the legacy format (a bare pickle, before
//! 1.6 or `_use_new_zipfile_serialization=False`), TorchScript archives
//! (`torch.jit.save`), big-endian files, and zips that are truncated or corrupt.

use super::pickle::{kind, parse_pickle, Id, Node, Pickle};
use crate::engine::{DType, Storage, Tensor};
use crate::error::{Error, Result};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

/// The callables a state dict's pickle may name.
const ALLOWED_CALLABLES: &[(&str, &str)] = &[
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
];

/// `torch.XStorage` -> the element type nabla keeps, the element size on disk, and
/// whether the elements are converted on the way (f64 to f32, i32/i16/bool to i64/u8).
fn storage_type(name: &str) -> Option<(DType, usize)> {
    Some(match name {
        "FloatStorage" => (DType::F32, 4),
        "HalfStorage" => (DType::F16, 2),
        "BFloat16Storage" => (DType::BF16, 2),
        "DoubleStorage" => (DType::F32, 8),
        "LongStorage" => (DType::I64, 8),
        "IntStorage" => (DType::I64, 4),
        "ShortStorage" => (DType::I64, 2),
        "CharStorage" => (DType::I8, 1),
        "ByteStorage" | "BoolStorage" => (DType::U8, 1),
        _ => return None,
    })
}

/// Most elements one tensor may have beyond its storage's (a stride-0 expanded view):
/// a bound on what a small hostile file can make us allocate.
const MAX_EXPANDED: usize = 1 << 24;
/// Most nested dicts searched for the state dict (`{"model": {"state_dict": ...}}`).
const MAX_DICT_DEPTH: usize = 4;

/// Reads the state dict of a `.pt` / `.pth` file: `(name, tensor)` in the file's order.
/// Errors name the file.
pub fn load(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    from_bytes(&bytes).map_err(|msg| Error::format(path, msg))
}

/// [`load`] on bytes; errors are plain messages (callers add the file).
pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Vec<(String, Tensor)>, String> {
    if !bytes.starts_with(b"PK\x03\x04") {
        if bytes.first() == Some(&0x80) {
            return Err(
                "a legacy PyTorch file (a bare pickle, written before torch 1.6 or \
                        with _use_new_zipfile_serialization=False); nabla reads the zip \
                        format: in Python, torch.save(torch.load(f), 'new.pth')"
                    .into(),
            );
        }
        return Err("not a PyTorch zip archive (torch.save writes a zip since 1.6)".into());
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("a corrupt or truncated zip archive ({e})"))?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let pkl = names
        .iter()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .min()
        .cloned();
    let prefix = pkl
        .as_deref()
        .map(|p| p.trim_end_matches("data.pkl").to_string())
        .unwrap_or_default();
    if names
        .iter()
        .any(|n| n.ends_with("constants.pkl") || n.contains("/code/"))
    {
        return Err(
            "a TorchScript archive (torch.jit.save), not a state dict: in Python, \
                    torch.save(torch.jit.load(f).state_dict(), 'weights.pth')"
                .into(),
        );
    }
    let Some(pkl) = pkl else {
        return Err("a zip archive without PREFIX/data.pkl: not a file torch.save wrote".into());
    };
    if let Ok(order) = read_entry(&mut zip, &format!("{prefix}byteorder")) {
        if order != b"little" {
            return Err(format!(
                "byte order '{}': nabla reads little-endian files only",
                String::from_utf8_lossy(&order)
            ));
        }
    }
    let pickle_bytes = read_entry(&mut zip, &pkl)?;
    let p = parse_pickle(&pickle_bytes).map_err(|e| format!("{pkl}: {e}"))?;
    check_globals(&p)?;
    let root = find_state_dict(&p, p.root, 0)?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for &(k, v) in dict_items(&p, root).expect("find_state_dict returns a dict") {
        let Node::Str(name) = &p.nodes[k] else {
            return Err(format!(
                "the state dict has a key that is a {}, not a string",
                kind(&p.nodes[k])
            ));
        };
        if !seen.insert(name.clone()) {
            return Err(format!("tensor '{name}' appears twice in the state dict"));
        }
        let t = tensor(&p, v, &mut zip, &prefix, &mut storages)
            .map_err(|e| format!("tensor '{name}': {e}"))?;
        out.push((name.clone(), t));
    }
    Ok(out)
}

type Zip<'a> = zip::ZipArchive<std::io::Cursor<&'a [u8]>>;

/// One entry's bytes; the uncompressed size is checked against what was read.
fn read_entry(zip: &mut Zip, name: &str) -> std::result::Result<Vec<u8>, String> {
    let mut f = zip
        .by_name(name)
        .map_err(|e| format!("the archive has no readable '{name}' ({e})"))?;
    let size = f.size();
    // Deflate expands at most ~1032x: a declared size the archive cannot hold is a lie.
    if size > (f.compressed_size().saturating_add(64)).saturating_mul(1100) {
        return Err(format!(
            "'{name}' claims {size} bytes, more than its data can hold"
        ));
    }
    let mut buf = Vec::with_capacity(size as usize);
    f.by_ref()
        .take(size)
        .read_to_end(&mut buf)
        .map_err(|e| format!("'{name}' is corrupt or truncated ({e})"))?;
    if buf.len() as u64 != size {
        return Err(format!(
            "'{name}' holds {} bytes, its header says {size} (truncated)",
            buf.len()
        ));
    }
    Ok(buf)
}

/// Refuses the file if its pickle names any global but the allowed ones (see the
/// module docs), naming the first such global.
fn check_globals(p: &Pickle) -> std::result::Result<(), String> {
    for node in &p.nodes {
        if let Node::Global(m, g) = node {
            let ok = ALLOWED_CALLABLES.contains(&(m.as_str(), g.as_str()))
                || (m == "torch" && storage_type(g).is_some());
            if !ok {
                return Err(format!(
                    "the pickle names the global '{m}.{g}', which a state dict does not \
                     need; refused (nothing in the file was run: nabla allows only \
                     collections.OrderedDict, torch._utils._rebuild_tensor_v2, \
                     torch._utils._rebuild_parameter and torch.*Storage)"
                ));
            }
        }
    }
    Ok(())
}

fn is_global(p: &Pickle, id: Id, module: &str, name: &str) -> bool {
    matches!(&p.nodes[id], Node::Global(m, g) if m == module && g == name)
}

/// The items of a dict or an `OrderedDict()` object; `None` for anything else.
fn dict_items(p: &Pickle, id: Id) -> Option<&[(Id, Id)]> {
    match &p.nodes[id] {
        Node::Dict(items) => Some(items),
        Node::Object {
            callable, items, ..
        } if is_global(p, *callable, "collections", "OrderedDict") => Some(items),
        _ => None,
    }
}

fn is_tensor(p: &Pickle, id: Id) -> bool {
    matches!(&p.nodes[id], Node::Object { callable, .. }
        if is_global(p, *callable, "torch._utils", "_rebuild_tensor_v2")
            || is_global(p, *callable, "torch._utils", "_rebuild_parameter"))
}

/// The dict of tensors: `id` itself, or the dict under its `state_dict` or `model` key.
fn find_state_dict(p: &Pickle, id: Id, depth: usize) -> std::result::Result<Id, String> {
    let Some(items) = dict_items(p, id) else {
        return Err(format!(
            "the file holds a {}, not a state dict (save model.state_dict(), not the model)",
            kind(&p.nodes[id])
        ));
    };
    if items.iter().any(|&(_, v)| is_tensor(p, v)) || items.is_empty() {
        return Ok(id);
    }
    let key = |k: Id| match &p.nodes[k] {
        Node::Str(s) => Some(s.as_str()),
        _ => None,
    };
    for want in ["state_dict", "model"] {
        if let Some(&(_, v)) = items.iter().find(|&&(k, _)| key(k) == Some(want)) {
            if depth < MAX_DICT_DEPTH && dict_items(p, v).is_some() {
                return find_state_dict(p, v, depth + 1);
            }
        }
    }
    let keys: Vec<&str> = items.iter().filter_map(|&(k, _)| key(k)).take(8).collect();
    Err(format!(
        "the file holds a dict without tensors (keys {keys:?}) and no 'state_dict' or \
         'model' dict of tensors"
    ))
}

fn int(p: &Pickle, id: Id, what: &str) -> std::result::Result<usize, String> {
    match &p.nodes[id] {
        Node::Int(v) if *v >= 0 => Ok(*v as usize),
        other => Err(format!("its {what} is a {}, not a size", kind(other))),
    }
}

fn ints(p: &Pickle, id: Id, what: &str) -> std::result::Result<Vec<usize>, String> {
    match &p.nodes[id] {
        Node::Tuple(v) => v.iter().map(|&i| int(p, i, what)).collect(),
        other => Err(format!("its {what} is a {}, not a tuple", kind(other))),
    }
}

fn args(p: &Pickle, id: Id) -> std::result::Result<&[Id], String> {
    match &p.nodes[id] {
        Node::Tuple(v) => Ok(v),
        other => Err(format!("its arguments are a {}, not a tuple", kind(other))),
    }
}

/// A tensor node: `_rebuild_tensor_v2(storage, offset, size, stride, ...)` or
/// `_rebuild_parameter(tensor, ...)`, read from its storage.
fn tensor(
    p: &Pickle,
    id: Id,
    zip: &mut Zip,
    prefix: &str,
    storages: &mut HashMap<String, Vec<u8>>,
) -> std::result::Result<Tensor, String> {
    let Node::Object {
        callable, args: a, ..
    } = &p.nodes[id]
    else {
        return Err(format!("a {}, not a tensor", kind(&p.nodes[id])));
    };
    let a = args(p, *a)?;
    if is_global(p, *callable, "torch._utils", "_rebuild_parameter") {
        let &inner = a.first().ok_or("a parameter without its tensor")?;
        if is_global(p, inner, "torch._utils", "_rebuild_parameter") || !is_tensor(p, inner) {
            return Err("a parameter that does not wrap a tensor".into());
        }
        return tensor(p, inner, zip, prefix, storages);
    }
    if !is_global(p, *callable, "torch._utils", "_rebuild_tensor_v2") {
        return Err("an object that is not a tensor".into());
    }
    if a.len() < 4 {
        return Err(format!(
            "_rebuild_tensor_v2 with {} arguments, not 6",
            a.len()
        ));
    }
    let Node::PersId(pid) = &p.nodes[a[0]] else {
        return Err("its storage is not a persistent id".into());
    };
    let pid = args(p, *pid).map_err(|_| "its storage id is not a tuple".to_string())?;
    let (type_name, key, numel) = match pid {
        [tag, ty, key, _location, numel] => {
            let tag_ok = matches!(&p.nodes[*tag], Node::Str(s) if s == "storage");
            match (&p.nodes[*ty], &p.nodes[*key]) {
                (Node::Global(m, t), Node::Str(k)) if tag_ok && m == "torch" => {
                    (t.as_str(), k.as_str(), int(p, *numel, "storage size")?)
                }
                _ => return Err("its storage id is not ('storage', type, key, ...)".into()),
            }
        }
        _ => return Err("its storage id is not ('storage', type, key, location, size)".into()),
    };
    let (dtype, elem) =
        storage_type(type_name).ok_or_else(|| format!("storage type torch.{type_name}"))?;
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("storage key {key:?} is not a plain name"));
    }
    let offset = int(p, a[1], "storage offset")?;
    let size = ints(p, a[2], "size")?;
    let stride = ints(p, a[3], "stride")?;
    if size.len() != stride.len() {
        return Err(format!(
            "size {size:?} and stride {stride:?} have different ranks"
        ));
    }
    if !storages.contains_key(key) {
        let data = read_entry(zip, &format!("{prefix}data/{key}"))?;
        storages.insert(key.to_string(), data);
    }
    let data = &storages[key];
    let have = data.len() / elem;
    if numel.checked_mul(elem) != Some(data.len()) {
        return Err(format!(
            "storage '{key}' holds {} bytes, its id says {numel} elements of {elem} bytes",
            data.len()
        ));
    }
    // The view's elements, checked before anything is allocated.
    let count = size
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&c| c <= have.max(MAX_EXPANDED))
        .ok_or_else(|| format!("size {size:?} is larger than its storage allows"))?;
    if count > 0 {
        let last = size.iter().zip(&stride).try_fold(offset, |acc, (&d, &s)| {
            (d - 1).checked_mul(s)?.checked_add(acc)
        });
        if !matches!(last, Some(l) if l < have) {
            return Err(format!(
                "offset {offset}, size {size:?} and stride {stride:?} reach past its \
                 storage of {have} elements"
            ));
        }
    }
    // Row-major gather: contiguous tensors are one copy, views one element at a time.
    let mut bytes = Vec::with_capacity(count * elem);
    let mut index = vec![0usize; size.len()];
    for _ in 0..count {
        let at = offset + index.iter().zip(&stride).map(|(i, s)| i * s).sum::<usize>();
        bytes.extend_from_slice(&data[at * elem..(at + 1) * elem]);
        for d in (0..size.len()).rev() {
            index[d] += 1;
            if index[d] < size[d] {
                break;
            }
            index[d] = 0;
        }
    }
    let bytes = widen(type_name, bytes);
    let storage = Storage::from_le_bytes(dtype, &bytes).map_err(|e| e.to_string())?;
    Tensor::from_storage(storage, &size).map_err(|e| e.to_string())
}

/// The element types nabla does not hold, converted: f64 -> f32, i32/i16 -> i64.
fn widen(type_name: &str, bytes: Vec<u8>) -> Vec<u8> {
    match type_name {
        "DoubleStorage" => bytes
            .chunks_exact(8)
            .flat_map(|c| (f64::from_le_bytes(c.try_into().expect("8")) as f32).to_le_bytes())
            .collect(),
        "IntStorage" => bytes
            .chunks_exact(4)
            .flat_map(|c| (i32::from_le_bytes(c.try_into().expect("4")) as i64).to_le_bytes())
            .collect(),
        "ShortStorage" => bytes
            .chunks_exact(2)
            .flat_map(|c| (i16::from_le_bytes(c.try_into().expect("2")) as i64).to_le_bytes())
            .collect(),
        _ => bytes,
    }
}
