//! A restricted reader of Python pickles, for the two things nabla needs from them: the
//! object arrays (ragged lists of ints) that `np.save` writes as a pickle stream, as in
//! Keras' `imdb.npz` and `reuters.npz`, and the state dicts in PyTorch's `.pth` files
//! (interpreted by `formats::torch_pth`, which allows only the globals a state dict
//! needs).
//!
//! Nothing is ever called. The opcodes are parsed into a plain value tree held in an
//! arena ([`Pickle`]): `GLOBAL`/`STACK_GLOBAL` become inert [`Node::Global`] names,
//! `REDUCE` an inert [`Node::Object`] holding the callable and its arguments, and
//! `BUILD` records its state on that object, `SETITEMS` on an object its items (what
//! `OrderedDict`'s reduce adds), and `BINPERSID` becomes an inert [`Node::PersId`] (a
//! reference to data outside the pickle, PyTorch's storages). [`object_array_of_int_lists`] then checks
//! the tree's shape structurally: numpy's
//! `_reconstruct(ndarray, (0,), b'b')` with state `(1, (n,), dtype('O8'), False, [..n
//! lists of ints..])`.
//!
//! Untrusted input, so bounds everywhere: every opcode pushes at most one node, so the
//! arena is at most as long as the input; a length field is checked against the bytes
//! left before anything is allocated; ints wider than 64 bits, unknown opcodes, more
//! than [`MAX_MARK_DEPTH`] open marks (deep nesting), a memo index that was never
//! stored and a stream without `STOP` are errors naming the opcode and its offset.
//! Protocols 2 to 5 as numpy and Python write them (frames are read through, out-of-band
//! buffers refused).

use crate::error::{Error, Result};
use std::collections::HashMap;

/// Most marks open at once: lists and tuples nested this deep are refused.
pub const MAX_MARK_DEPTH: usize = 256;
/// Most elements a parsed object array may have (the whole IMDB set has 25 000).
pub const MAX_ELEMENTS: usize = 1 << 24;

/// An index into [`Pickle::nodes`].
pub type Id = usize;

/// One value of a pickle. Containers hold ids, so a memoized list that is appended to
/// later is the same node wherever it is referenced.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// A global name (`module`, `name`), never imported.
    Global(String, String),
    /// `callable(*args)` as it would be called (REDUCE, NEWOBJ), never called; `state`
    /// is what `BUILD` would have set, `items` what `SETITEMS` would have stored in it.
    Object {
        callable: Id,
        args: Id,
        state: Option<Id>,
        items: Vec<(Id, Id)>,
    },
    /// A persistent id (BINPERSID): what the unpickler's `persistent_load` would have
    /// been asked for, never asked.
    PersId(Id),
}

/// A parsed pickle: the arena of nodes and the root (what `STOP` returned).
#[derive(Debug, Clone)]
pub struct Pickle {
    pub nodes: Vec<Node>,
    pub root: Id,
}

#[derive(Clone, Copy)]
enum Slot {
    Mark,
    Value(Id),
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, op: &str, at: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(format!(
                "{op} at byte {at} needs {n} bytes, only {} are left (truncated)",
                self.bytes.len() - self.pos
            )),
        }
    }
    fn uint(&mut self, n: usize, op: &str, at: usize) -> std::result::Result<u64, String> {
        let b = self.take(n, op, at)?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }
    fn line(&mut self, op: &str, at: usize) -> std::result::Result<&'a [u8], String> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("{op} at byte {at}: no end of line (truncated)"))?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }
}

/// Parses a pickle stream into its value tree, calling nothing. Errors are plain
/// messages; callers add the file.
pub fn parse_pickle(bytes: &[u8]) -> std::result::Result<Pickle, String> {
    let mut r = Reader { bytes, pos: 0 };
    let mut nodes: Vec<Node> = Vec::new();
    let mut stack: Vec<Slot> = Vec::new();
    let mut memo: HashMap<u64, Id> = HashMap::new();
    let mut marks = 0usize;
    let push = |nodes: &mut Vec<Node>, stack: &mut Vec<Slot>, n: Node| {
        nodes.push(n);
        stack.push(Slot::Value(nodes.len() - 1));
    };
    loop {
        let at = r.pos;
        let op = *r
            .take(1, "an opcode", at)
            .map_err(|_| format!("the pickle ends at byte {at} without STOP (truncated)"))?
            .first()
            .expect("one byte");
        let name = format!("opcode 0x{op:02x} ('{}')", op as char);
        let pop = |stack: &mut Vec<Slot>| -> std::result::Result<Id, String> {
            match stack.pop() {
                Some(Slot::Value(id)) => Ok(id),
                Some(Slot::Mark) => Err(format!("{name} at byte {at} found a mark, not a value")),
                None => Err(format!("{name} at byte {at} on an empty stack")),
            }
        };
        // Everything above the topmost mark, which is removed.
        let pop_mark = |stack: &mut Vec<Slot>, marks: &mut usize| {
            let m = stack
                .iter()
                .rposition(|s| matches!(s, Slot::Mark))
                .ok_or_else(|| format!("{name} at byte {at} without a mark"))?;
            let items: Vec<Id> = stack[m + 1..]
                .iter()
                .map(|s| match s {
                    Slot::Value(id) => *id,
                    Slot::Mark => unreachable!("m is the topmost mark"),
                })
                .collect();
            stack.truncate(m);
            *marks -= 1;
            Ok::<Vec<Id>, String>(items)
        };
        match op {
            0x80 => {
                // PROTO
                let v = r.uint(1, "PROTO", at)?;
                if !(2..=5).contains(&v) {
                    return Err(format!("pickle protocol {v} is not supported (2 to 5 are)"));
                }
            }
            0x95 => {
                // FRAME: the frame's bytes follow inline; its length is only a hint.
                r.uint(8, "FRAME", at)?;
            }
            b'.' => {
                // STOP
                let root = pop(&mut stack)?;
                return Ok(Pickle { nodes, root });
            }
            b'(' => {
                if marks >= MAX_MARK_DEPTH {
                    return Err(format!(
                        "MARK at byte {at}: more than {MAX_MARK_DEPTH} nested marks"
                    ));
                }
                marks += 1;
                stack.push(Slot::Mark);
            }
            b'0' => {
                pop(&mut stack)?;
            }
            b'1' => {
                pop_mark(&mut stack, &mut marks)?;
            }
            b'2' => {
                // DUP
                let id = pop(&mut stack)?;
                stack.push(Slot::Value(id));
                stack.push(Slot::Value(id));
            }
            b'N' => push(&mut nodes, &mut stack, Node::None),
            0x88 => push(&mut nodes, &mut stack, Node::Bool(true)),
            0x89 => push(&mut nodes, &mut stack, Node::Bool(false)),
            b'K' => {
                let v = r.uint(1, "BININT1", at)? as i64;
                push(&mut nodes, &mut stack, Node::Int(v));
            }
            b'M' => {
                let v = r.uint(2, "BININT2", at)? as i64;
                push(&mut nodes, &mut stack, Node::Int(v));
            }
            b'J' => {
                let v = r.uint(4, "BININT", at)? as u32 as i32 as i64;
                push(&mut nodes, &mut stack, Node::Int(v));
            }
            0x8a | 0x8b => {
                // LONG1, LONG4: little-endian two's complement of n bytes.
                let n = r.uint(if op == 0x8a { 1 } else { 4 }, "LONG1/LONG4", at)? as usize;
                if n > 8 {
                    return Err(format!(
                        "an integer of {n} bytes at byte {at}: wider than 64 bits"
                    ));
                }
                let b = r.take(n, "LONG1/LONG4", at)?;
                let mut v: i64 = 0;
                for (i, &x) in b.iter().enumerate() {
                    v |= (x as i64) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                push(&mut nodes, &mut stack, Node::Int(v));
            }
            b'I' | b'L' => {
                // INT, LONG (text, protocol 0 leftovers some writers still use)
                let line = r.line("INT", at)?;
                let text = std::str::from_utf8(line)
                    .unwrap_or("")
                    .trim_end_matches('L');
                let node = match text {
                    "00" => Node::Bool(false),
                    "01" => Node::Bool(true),
                    t => Node::Int(
                        t.parse()
                            .map_err(|_| format!("INT at byte {at}: {t:?} is not an integer"))?,
                    ),
                };
                push(&mut nodes, &mut stack, node);
            }
            b'G' => {
                let b = r.take(8, "BINFLOAT", at)?;
                let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                push(&mut nodes, &mut stack, Node::Float(v));
            }
            0x8c | b'X' | 0x8d => {
                // SHORT_BINUNICODE, BINUNICODE, BINUNICODE8
                let w = match op {
                    0x8c => 1,
                    b'X' => 4,
                    _ => 8,
                };
                let n = r.uint(w, "BINUNICODE", at)?;
                let b = r.take(usize::try_from(n).unwrap_or(usize::MAX), "BINUNICODE", at)?;
                let s = std::str::from_utf8(b)
                    .map_err(|_| format!("a string at byte {at} is not UTF-8"))?;
                push(&mut nodes, &mut stack, Node::Str(s.to_string()));
            }
            b'C' | b'B' | 0x8e | b'U' | b'T' => {
                // SHORT_BINBYTES, BINBYTES, BINBYTES8, SHORT_BINSTRING, BINSTRING
                let w = match op {
                    b'C' | b'U' => 1,
                    b'B' | b'T' => 4,
                    _ => 8,
                };
                let n = r.uint(w, "BINBYTES", at)?;
                let b = r.take(usize::try_from(n).unwrap_or(usize::MAX), "BINBYTES", at)?;
                push(&mut nodes, &mut stack, Node::Bytes(b.to_vec()));
            }
            b']' => push(&mut nodes, &mut stack, Node::List(Vec::new())),
            b')' => push(&mut nodes, &mut stack, Node::Tuple(Vec::new())),
            b'}' => push(&mut nodes, &mut stack, Node::Dict(Vec::new())),
            b'l' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                push(&mut nodes, &mut stack, Node::List(items));
            }
            b't' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                push(&mut nodes, &mut stack, Node::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(pop(&mut stack)?);
                }
                items.reverse();
                push(&mut nodes, &mut stack, Node::Tuple(items));
            }
            b'a' | b'e' => {
                // APPEND, APPENDS
                let items = if op == b'a' {
                    vec![pop(&mut stack)?]
                } else {
                    pop_mark(&mut stack, &mut marks)?
                };
                let list = pop(&mut stack)?;
                stack.push(Slot::Value(list));
                match &mut nodes[list] {
                    Node::List(v) => v.extend(items),
                    other => {
                        return Err(format!(
                            "APPEND at byte {at} to a {}, not a list",
                            kind(other)
                        ))
                    }
                }
            }
            b's' | b'u' | b'd' => {
                // SETITEM, SETITEMS, DICT
                let items = if op == b's' {
                    let v = pop(&mut stack)?;
                    let k = pop(&mut stack)?;
                    vec![k, v]
                } else {
                    pop_mark(&mut stack, &mut marks)?
                };
                if items.len() % 2 != 0 {
                    return Err(format!("{name} at byte {at}: an odd number of items"));
                }
                let pairs: Vec<(Id, Id)> = items.chunks(2).map(|p| (p[0], p[1])).collect();
                if op == b'd' {
                    push(&mut nodes, &mut stack, Node::Dict(pairs));
                } else {
                    let dict = pop(&mut stack)?;
                    stack.push(Slot::Value(dict));
                    match &mut nodes[dict] {
                        Node::Dict(v) | Node::Object { items: v, .. } => v.extend(pairs),
                        other => {
                            return Err(format!(
                                "SETITEM at byte {at} on a {}, not a dict",
                                kind(other)
                            ))
                        }
                    }
                }
            }
            b'c' => {
                // GLOBAL "module\nname\n": a name, never imported.
                let module = String::from_utf8_lossy(r.line("GLOBAL", at)?).into_owned();
                let gname = String::from_utf8_lossy(r.line("GLOBAL", at)?).into_owned();
                push(&mut nodes, &mut stack, Node::Global(module, gname));
            }
            0x93 => {
                // STACK_GLOBAL
                let gname = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (&nodes[module], &nodes[gname]) {
                    (Node::Str(m), Node::Str(n)) => {
                        let g = Node::Global(m.clone(), n.clone());
                        push(&mut nodes, &mut stack, g);
                    }
                    _ => return Err(format!("STACK_GLOBAL at byte {at} on non-strings")),
                }
            }
            b'R' | 0x81 => {
                // REDUCE, NEWOBJ: recorded, not called.
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                push(
                    &mut nodes,
                    &mut stack,
                    Node::Object {
                        callable,
                        args,
                        state: None,
                        items: Vec::new(),
                    },
                );
            }
            b'Q' => {
                // BINPERSID: recorded, never looked up.
                let pid = pop(&mut stack)?;
                push(&mut nodes, &mut stack, Node::PersId(pid));
            }
            b'b' => {
                // BUILD: the state is recorded on the object, in place (it may be
                // memoized already).
                let state = pop(&mut stack)?;
                let obj = pop(&mut stack)?;
                stack.push(Slot::Value(obj));
                match &mut nodes[obj] {
                    Node::Object { state: s, .. } if s.is_none() => *s = Some(state),
                    other => {
                        return Err(format!(
                            "BUILD at byte {at} on a {}, not a fresh object",
                            kind(other)
                        ))
                    }
                }
            }
            b'q' | b'r' | 0x94 => {
                // BINPUT, LONG_BINPUT, MEMOIZE
                let key = match op {
                    b'q' => r.uint(1, "BINPUT", at)?,
                    b'r' => r.uint(4, "LONG_BINPUT", at)?,
                    _ => memo.len() as u64,
                };
                match stack.last() {
                    Some(Slot::Value(id)) => {
                        memo.insert(key, *id);
                    }
                    _ => return Err(format!("{name} at byte {at}: nothing to memoize")),
                }
            }
            b'h' | b'j' => {
                // BINGET, LONG_BINGET
                let key = r.uint(if op == b'h' { 1 } else { 4 }, "BINGET", at)?;
                let id = *memo
                    .get(&key)
                    .ok_or_else(|| format!("BINGET at byte {at}: memo {key} was never stored"))?;
                stack.push(Slot::Value(id));
            }
            _ => {
                return Err(format!(
                    "{name} at byte {at} is not supported by nabla's restricted pickle \
                     reader"
                ))
            }
        }
    }
}

/// What a node is, in words (for error messages).
pub fn kind(n: &Node) -> &'static str {
    match n {
        Node::None => "None",
        Node::Bool(_) => "bool",
        Node::Int(_) => "int",
        Node::Float(_) => "float",
        Node::Str(_) => "str",
        Node::Bytes(_) => "bytes",
        Node::List(_) => "list",
        Node::Tuple(_) => "tuple",
        Node::Dict(_) => "dict",
        Node::Global(..) => "global",
        Node::Object { .. } => "object",
        Node::PersId(_) => "persistent id",
    }
}

/// The elements of a 1-D numpy object array whose elements are lists (or tuples) of
/// ints, from the pickle `np.save` writes for it (see the module docs). Anything else is
/// an error saying what was found.
pub fn object_array_of_int_lists(bytes: &[u8]) -> std::result::Result<Vec<Vec<i64>>, String> {
    let p = parse_pickle(bytes)?;
    let n = |id: Id| &p.nodes[id];
    let not_array = |what: &str| {
        format!("the pickle is not a numpy object array as np.save writes it ({what})")
    };
    let Node::Object {
        callable,
        args,
        state,
        ..
    } = n(p.root)
    else {
        return Err(not_array(&format!("its root is a {}", kind(n(p.root)))));
    };
    match n(*callable) {
        Node::Global(m, g) if g == "_reconstruct" && m.starts_with("numpy") => {}
        _ => return Err(not_array("its root is not numpy's _reconstruct")),
    }
    match n(*args) {
        Node::Tuple(a) if matches!(a.first().map(|&i| n(i)), Some(Node::Global(m, g)) if m == "numpy" && g == "ndarray") =>
            {}
        _ => return Err(not_array("it does not reconstruct an ndarray")),
    }
    let state = match state.map(n) {
        Some(Node::Tuple(s)) if s.len() == 5 => s,
        _ => {
            return Err(not_array(
                "no array state (version, shape, dtype, order, data)",
            ))
        }
    };
    let len = match n(state[1]) {
        Node::Tuple(dims) if dims.len() == 1 => match n(dims[0]) {
            Node::Int(v) if *v >= 0 && (*v as u64) <= MAX_ELEMENTS as u64 => *v as usize,
            _ => return Err(not_array("its length is not an int up to 2^24")),
        },
        Node::Tuple(dims) => {
            return Err(not_array(&format!(
                "{} dimensions, only 1-D arrays hold sequences",
                dims.len()
            )))
        }
        _ => return Err(not_array("its shape is not a tuple")),
    };
    let dtype_ok = match n(state[2]) {
        Node::Object { callable, args, .. } => {
            matches!(n(*callable), Node::Global(m, g) if m == "numpy" && g == "dtype")
                && matches!(n(*args), Node::Tuple(a) if matches!(a.first().map(|&i| n(i)), Some(Node::Str(s)) if s == "O8" || s == "O4"))
        }
        _ => false,
    };
    if !dtype_ok {
        return Err(not_array("its dtype is not object ('O')"));
    }
    let items = match n(state[4]) {
        Node::List(items) => items,
        other => {
            return Err(not_array(&format!(
                "its data is a {}, not a list of objects",
                kind(other)
            )))
        }
    };
    if items.len() != len {
        return Err(format!(
            "the object array's shape says {len} elements, its data holds {}",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let seq = match n(id) {
                Node::List(v) | Node::Tuple(v) => v,
                other => {
                    return Err(format!(
                        "element {i} of the object array is a {}, not a list of ints",
                        kind(other)
                    ))
                }
            };
            seq.iter()
                .map(|&w| match n(w) {
                    Node::Int(v) => Ok(*v),
                    other => Err(format!(
                        "element {i} of the object array holds a {}, not an int",
                        kind(other)
                    )),
                })
                .collect()
        })
        .collect()
}

/// [`object_array_of_int_lists`] with the error turned into nabla's.
pub fn read_int_lists(bytes: &[u8]) -> Result<Vec<Vec<i64>>> {
    object_array_of_int_lists(bytes).map_err(Error::invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pickle numpy 2 writes for `np.array([[5, 300], [70000]] as objects)`
    /// (protocol 4, memoized), written by hand from `pickletools.dis`.
    fn numpy_pickle(lists: &[&[i64]]) -> Vec<u8> {
        let mut b = vec![0x80, 4];
        let s = |b: &mut Vec<u8>, t: &str| {
            b.push(0x8c);
            b.push(t.len() as u8);
            b.extend_from_slice(t.as_bytes());
            b.push(0x94);
        };
        s(&mut b, "numpy._core.multiarray");
        s(&mut b, "_reconstruct");
        b.extend([0x93, 0x94]);
        s(&mut b, "numpy");
        s(&mut b, "ndarray");
        b.extend([
            0x93, 0x94, b'K', 0, 0x85, 0x94, b'C', 1, b'b', 0x94, 0x87, 0x94, b'R',
        ]);
        b.extend([
            0x94,
            b'(',
            b'K',
            1,
            b'K',
            lists.len() as u8,
            0x85,
            0x94,
            b'h',
            3,
        ]);
        s(&mut b, "dtype");
        b.extend([0x93, 0x94]);
        s(&mut b, "O8");
        b.extend([0x89, 0x88, 0x87, 0x94, b'R', 0x94, b'(', b'K', 3]);
        s(&mut b, "|");
        b.extend([
            b'N', b'N', b'N', b'J', 255, 255, 255, 255, b'J', 255, 255, 255, 255,
        ]);
        b.extend([b'K', 63, b't', 0x94, b'b', 0x89, b']', 0x94, b'(']);
        for l in lists {
            b.extend([b']', 0x94, b'(']);
            for &v in *l {
                b.push(b'J');
                b.extend((v as i32).to_le_bytes());
            }
            b.push(b'e');
        }
        b.extend([b'e', b't', 0x94, b'b', b'.']);
        b
    }

    #[test]
    fn reads_numpys_object_array_of_lists() {
        let b = numpy_pickle(&[&[5, 300], &[70000], &[]]);
        assert_eq!(
            object_array_of_int_lists(&b).unwrap(),
            vec![vec![5, 300], vec![70000], vec![]]
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = numpy_pickle(&[&[5, 300], &[70000]]);
        for cut in 0..b.len() {
            let e = object_array_of_int_lists(&b[..cut]).unwrap_err();
            assert!(!e.is_empty());
        }
    }

    #[test]
    fn globals_are_inert_and_other_objects_refused() {
        // os.system("echo hi"): parsed as a name and an object, never called, and not
        // an array.
        let evil = b"\x80\x02cos\nsystem\nq\x00X\x07\x00\x00\x00echo hi\x85R.";
        let p = parse_pickle(evil).unwrap();
        assert!(matches!(p.nodes[p.root], Node::Object { .. }));
        let e = object_array_of_int_lists(evil).unwrap_err();
        assert!(e.contains("not numpy's _reconstruct"), "{e}");
    }

    #[test]
    fn bad_streams_are_named_errors() {
        let e = parse_pickle(b"\x80\x02\xff.").unwrap_err();
        assert!(e.contains("0xff") && e.contains("byte 2"), "{e}");
        let e = parse_pickle(b"\x80\x02X\xff\xff\xff\x7f").unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let e = parse_pickle(b"\x80\x02h\x07.").unwrap_err();
        assert!(e.contains("never stored"), "{e}");
        let deep = [b"\x80\x02".to_vec(), vec![b'('; 10_000]].concat();
        assert!(parse_pickle(&deep).unwrap_err().contains("nested"));
        let e = parse_pickle(b"\x80\x02\x8a\x10").unwrap_err();
        assert!(e.contains("64 bits"), "{e}");
        let e = parse_pickle(b"\x80\x09N.").unwrap_err();
        assert!(e.contains("protocol 9"), "{e}");
    }

    #[test]
    fn long1_is_twos_complement() {
        let p = parse_pickle(b"\x80\x02\x8a\x02\x00\xff.").unwrap();
        assert_eq!(p.nodes[p.root], Node::Int(-256));
        let p = parse_pickle(b"\x80\x02\x8a\x01\x7f.").unwrap();
        assert_eq!(p.nodes[p.root], Node::Int(127));
    }
}
