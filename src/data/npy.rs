//! NumPy's `.npy` format (<https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>):
//! versions 1.0, 2.0 and 3.0; every numeric dtype (`bool`, signed and unsigned integers of
//! 1, 2, 4 and 8 bytes, `float16/32/64`), little or big endian; C or Fortran order.
//! Structured, complex, string and object dtypes are refused by name.
//!
//! Layout: the magic `\x93NUMPY`, the version (2 bytes), the header length (`u16` LE in
//! 1.0, `u32` LE in 2.0/3.0), an ASCII (3.0: UTF-8) Python dict literal
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, then the raw elements.
//!
//! Untrusted input: the element count is computed with checked arithmetic and the
//! claimed data size is compared with the bytes actually present before anything is
//! allocated, so a header claiming 10^12 elements is refused at once.

use super::ndarray::{checked_numel, fortran_to_c, in_file, NdArray};
use crate::error::{Error, Result};
use std::path::Path;

pub const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// An element type: the kind and its size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    Bool,
    Int(usize),
    UInt(usize),
    Float(usize),
}

impl ElemType {
    pub fn size(self) -> usize {
        match self {
            ElemType::Bool => 1,
            ElemType::Int(n) | ElemType::UInt(n) | ElemType::Float(n) => n,
        }
    }

    /// NumPy's name of the type (`uint8`, `float64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ElemType::Bool => "bool",
            ElemType::Int(1) => "int8",
            ElemType::Int(2) => "int16",
            ElemType::Int(4) => "int32",
            ElemType::Int(_) => "int64",
            ElemType::UInt(1) => "uint8",
            ElemType::UInt(2) => "uint16",
            ElemType::UInt(4) => "uint32",
            ElemType::UInt(_) => "uint64",
            ElemType::Float(2) => "float16",
            ElemType::Float(4) => "float32",
            ElemType::Float(_) => "float64",
        }
    }
}

/// Decodes `bytes` (a whole number of elements of `ty`) to f32.
pub fn decode_elements(bytes: &[u8], ty: ElemType, big_endian: bool) -> Vec<f32> {
    let size = ty.size();
    let word = |c: &[u8]| -> [u8; 8] {
        let mut w = [0u8; 8];
        if big_endian {
            w[8 - size..].copy_from_slice(c);
        } else {
            w[..size].copy_from_slice(c);
        }
        w
    };
    bytes
        .chunks_exact(size)
        .map(|c| {
            let w = word(c);
            let (lo, hi) = (u64::from_le_bytes(w), u64::from_be_bytes(w));
            let bits = if big_endian { hi } else { lo };
            match ty {
                ElemType::Bool => (bits != 0) as u8 as f32,
                ElemType::UInt(_) => bits as f32,
                ElemType::Int(n) => {
                    // Sign-extend the n-byte value.
                    let shift = 64 - 8 * n as u32;
                    (((bits << shift) as i64) >> shift) as f32
                }
                ElemType::Float(2) => half::f16::from_bits(bits as u16).to_f32(),
                ElemType::Float(4) => f32::from_bits(bits as u32),
                ElemType::Float(_) => f64::from_bits(bits) as f32,
            }
        })
        .collect()
}

/// The header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    pub elem: ElemType,
    pub big_endian: bool,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Where the elements start.
    pub data_offset: usize,
}

/// Parses a `.npy` file's bytes into an array in C order.
pub fn parse_npy(bytes: &[u8]) -> Result<NdArray> {
    let h = parse_npy_header(bytes)?;
    let numel = checked_numel(&h.shape)?;
    let need = numel
        .checked_mul(h.elem.size())
        .ok_or_else(|| Error::invalid(format!("npy: shape {:?} is too large", h.shape)))?;
    let body = &bytes[h.data_offset..];
    if body.len() != need {
        return Err(Error::invalid(format!(
            "npy: shape {:?} of {} needs {need} data bytes, but the file has {}{}",
            h.shape,
            h.elem.name(),
            body.len(),
            if body.len() < need {
                " (truncated)"
            } else {
                ""
            }
        )));
    }
    let values = decode_elements(body, h.elem, h.big_endian);
    let data = if h.fortran_order {
        fortran_to_c(&values, &h.shape)
    } else {
        values
    };
    Ok(NdArray {
        shape: h.shape,
        data,
        dtype: h.elem.name(),
    })
}

/// Reads a `.npy` file; errors name it.
pub fn load_npy(path: impl AsRef<Path>) -> Result<NdArray> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy(&bytes).map_err(|e| in_file(path, e))
}

/// Parses the magic, version and header dict of a `.npy` file.
pub fn parse_npy_header(bytes: &[u8]) -> Result<NpyHeader> {
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return Err(Error::invalid(
            "not a .npy file (it does not start with \\x93NUMPY, or is shorter than its header)",
        ));
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(Error::invalid("npy: truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => {
            return Err(Error::invalid(format!(
                "npy: format version {v}.{} is not supported (1.0, 2.0, 3.0 are)",
                bytes[7]
            )))
        }
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            Error::invalid(format!(
                "npy: header of {len} bytes runs past the end of the file ({} bytes)",
                bytes.len()
            ))
        })?;
    let text = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| Error::invalid("npy: header is not text"))?;
    let dict = parse_header_dict(text)?;
    let descr = dict
        .descr
        .ok_or_else(|| Error::invalid("npy: header has no 'descr'"))?;
    let shape = dict
        .shape
        .ok_or_else(|| Error::invalid("npy: header has no 'shape'"))?;
    let (elem, big_endian) = parse_descr(&descr)?;
    Ok(NpyHeader {
        elem,
        big_endian,
        fortran_order: dict.fortran_order.unwrap_or(false),
        shape,
        data_offset: end,
    })
}

/// A dtype string such as `<f4`, `>i8`, `|u1`, `|b1`.
pub fn parse_descr(descr: &str) -> Result<(ElemType, bool)> {
    let bad = || {
        Error::invalid(format!(
            "npy: dtype '{descr}' is not supported; nabla reads bool, int8-64, uint8-64 and \
             float16/32/64"
        ))
    };
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(bad)?;
    let big_endian = match order {
        '<' | '|' => false,
        '>' => true,
        '=' => cfg!(target_endian = "big"),
        _ => return Err(bad()),
    };
    let kind = chars.next().ok_or_else(bad)?;
    let size: usize = chars.as_str().parse().map_err(|_| bad())?;
    let elem = match (kind, size) {
        ('b', 1) => ElemType::Bool,
        ('i', 1 | 2 | 4 | 8) => ElemType::Int(size),
        ('u', 1 | 2 | 4 | 8) => ElemType::UInt(size),
        ('f', 2 | 4 | 8) => ElemType::Float(size),
        _ => return Err(bad()),
    };
    Ok((elem, big_endian))
}

#[derive(Default)]
struct HeaderDict {
    descr: Option<String>,
    fortran_order: Option<bool>,
    shape: Option<Vec<usize>>,
}

/// The three keys NumPy writes, from a Python dict literal. A small hand parser: the
/// header is tiny, and a full Python literal parser is not needed for what NumPy writes.
fn parse_header_dict(text: &str) -> Result<HeaderDict> {
    let bad = |why: &str| Error::invalid(format!("npy: header {:?}: {why}", truncate(text)));
    let t = text.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.trim_end().strip_suffix('}'))
        .ok_or_else(|| bad("not a dict literal"))?;
    let mut dict = HeaderDict::default();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (key, r) = quoted(rest).ok_or_else(|| bad("expected a quoted key"))?;
        let r = r
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| bad("expected ':'"))?;
        let r = r.trim_start();
        rest = match key {
            "descr" => {
                if r.starts_with('[') {
                    return Err(Error::invalid(
                        "npy: structured dtypes (a list of fields) are not supported",
                    ));
                }
                let (v, r) = quoted(r).ok_or_else(|| bad("'descr' is not a string"))?;
                dict.descr = Some(v.to_string());
                r
            }
            "fortran_order" => {
                if let Some(r) = r.strip_prefix("True") {
                    dict.fortran_order = Some(true);
                    r
                } else if let Some(r) = r.strip_prefix("False") {
                    dict.fortran_order = Some(false);
                    r
                } else {
                    return Err(bad("'fortran_order' is not True or False"));
                }
            }
            "shape" => {
                let r = r
                    .strip_prefix('(')
                    .ok_or_else(|| bad("'shape' is not a tuple"))?;
                let close = r.find(')').ok_or_else(|| bad("'shape' is not closed"))?;
                let mut shape = Vec::new();
                for part in r[..close].split(',') {
                    let p = part.trim().trim_end_matches('L');
                    if p.is_empty() {
                        continue;
                    }
                    shape.push(
                        p.parse::<usize>()
                            .map_err(|_| bad("bad dimension in 'shape'"))?,
                    );
                }
                dict.shape = Some(shape);
                &r[close + 1..]
            }
            _ => return Err(bad("unknown key")),
        };
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(dict)
}

/// A `'...'` or `"..."` string at the start of `s`, and what follows it.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &s[1..];
    let end = body.find(q)?;
    Some((&body[..end], &body[end + 1..]))
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Writes a little-endian `.npy` v1.0 of f32 or u8 values, as NumPy does (used by the
/// tests and by anyone exporting arrays).
pub fn npy_bytes(descr: &str, shape: &[usize], fortran_order: bool, data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let order = if fortran_order { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape_txt}, }}");
    // Pad so that the data starts at a multiple of 64, ending with a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = NPY_MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_dtype_both_endians() {
        // (descr, bytes of the values [1, -2] or [1, 2] for unsigned/bool, expected)
        let cases: Vec<(&str, Vec<u8>, Vec<f32>)> = vec![
            ("|b1", vec![1, 0], vec![1., 0.]),
            ("|i1", vec![1, 0xfe], vec![1., -2.]),
            ("|u1", vec![1, 0xfe], vec![1., 254.]),
            ("<i2", vec![1, 0, 0xfe, 0xff], vec![1., -2.]),
            (">i2", vec![0, 1, 0xff, 0xfe], vec![1., -2.]),
            ("<u2", vec![1, 0, 0xfe, 0xff], vec![1., 65534.]),
            (
                "<i4",
                [1i32, -2].iter().flat_map(|v| v.to_le_bytes()).collect(),
                vec![1., -2.],
            ),
            (
                ">i4",
                [1i32, -2].iter().flat_map(|v| v.to_be_bytes()).collect(),
                vec![1., -2.],
            ),
            (
                ">u4",
                [1u32, 7].iter().flat_map(|v| v.to_be_bytes()).collect(),
                vec![1., 7.],
            ),
            (
                "<i8",
                [1i64, -2].iter().flat_map(|v| v.to_le_bytes()).collect(),
                vec![1., -2.],
            ),
            (
                ">i8",
                [1i64, -2].iter().flat_map(|v| v.to_be_bytes()).collect(),
                vec![1., -2.],
            ),
            (
                "<u8",
                [1u64, 9].iter().flat_map(|v| v.to_le_bytes()).collect(),
                vec![1., 9.],
            ),
            (
                "<f2",
                [0x3c00u16, 0xc000]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
                vec![1., -2.],
            ),
            (
                ">f2",
                [0x3c00u16, 0xc000]
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect(),
                vec![1., -2.],
            ),
            (
                "<f4",
                [1.5f32, -2.].iter().flat_map(|v| v.to_le_bytes()).collect(),
                vec![1.5, -2.],
            ),
            (
                ">f4",
                [1.5f32, -2.].iter().flat_map(|v| v.to_be_bytes()).collect(),
                vec![1.5, -2.],
            ),
            (
                "<f8",
                [1.5f64, -2.].iter().flat_map(|v| v.to_le_bytes()).collect(),
                vec![1.5, -2.],
            ),
            (
                ">f8",
                [1.5f64, -2.].iter().flat_map(|v| v.to_be_bytes()).collect(),
                vec![1.5, -2.],
            ),
        ];
        for (descr, bytes, want) in cases {
            let a = parse_npy(&npy_bytes(descr, &[2], false, &bytes)).unwrap();
            assert_eq!(a.shape, vec![2], "{descr}");
            assert_eq!(a.data, want, "{descr}");
        }
    }

    #[test]
    fn fortran_order_and_versions() {
        // [[0, 1, 2], [3, 4, 5]] stored column by column.
        let f: Vec<u8> = vec![0, 3, 1, 4, 2, 5];
        let a = parse_npy(&npy_bytes("|u1", &[2, 3], true, &f)).unwrap();
        assert_eq!(a.data, vec![0., 1., 2., 3., 4., 5.]);
        assert_eq!(a.dtype, "uint8");
        // Version 2.0: a u32 header length.
        let v1 = npy_bytes("|u1", &[2, 3], false, &[0, 1, 2, 3, 4, 5]);
        let hlen = u16::from_le_bytes([v1[8], v1[9]]) as u32;
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend_from_slice(&hlen.to_le_bytes());
        v2.extend_from_slice(&v1[10..]);
        assert_eq!(parse_npy(&v2).unwrap().data, vec![0., 1., 2., 3., 4., 5.]);
        // A scalar: shape ().
        let s = parse_npy(&npy_bytes("<f4", &[], false, &2.5f32.to_le_bytes())).unwrap();
        assert_eq!((s.shape.len(), s.data.clone()), (0, vec![2.5]));
    }

    #[test]
    fn corrupt_files_are_refused_without_allocating() {
        let good = npy_bytes("<f4", &[2, 2], false, &[0u8; 16]);
        for cut in 0..good.len() {
            assert!(parse_npy(&good[..cut]).is_err(), "cut at {cut}");
        }
        let huge = npy_bytes("<f8", &[1_000_000, 1_000_000], false, &[0u8; 8]);
        let e = parse_npy(&huge).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let overflow = npy_bytes("<f8", &[usize::MAX, 3], false, &[]);
        assert!(parse_npy(&overflow).is_err());
        for bad in ["<c8", "|O", "<U3", "<f3", "<i3", "xf4"] {
            let e = parse_npy(&npy_bytes(bad, &[1], false, &[0u8; 8])).unwrap_err();
            assert!(e.to_string().contains("not supported"), "{bad}: {e}");
        }
        let mut v9 = good.clone();
        v9[6] = 9;
        assert!(parse_npy(&v9)
            .unwrap_err()
            .to_string()
            .contains("version 9"));
        let mut long = good.clone();
        long[8] = 0xff;
        long[9] = 0xff;
        assert!(parse_npy(&long).is_err());
    }
}
