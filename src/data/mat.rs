//! MATLAB v5 `.mat` files (MATLAB's `save -v7` and `-v6`, `scipy.io.savemat`): compressed
//! (`miCOMPRESSED`, zlib) or not, little or big endian; every numeric class (double,
//! single, int8-64, uint8-64) and logical, real-valued. Cell arrays, structs, strings,
//! sparse and complex arrays are listed by name and class but not read. v7.3 files are
//! HDF5 and are refused with a message saying how to re-save them.
//!
//! Layout (MathWorks, "MAT-File Format", v5): a 128-byte header (text, subsystem offset,
//! version `0x0100`, endian indicator `IM`/`MI`), then data elements, each an 8-byte tag
//! (type, byte count; or the 4-byte "small element" form) and its data padded to 8 bytes.
//! A variable is an `miMATRIX` element holding sub-elements: array flags (class),
//! dimensions, name, and the real part in any numeric storage type. MATLAB stores arrays
//! column-major: the reader returns them in C order with MATLAB's shape, so the notMNIST
//! file's `images` is `(28, 28, N)` with `images[r, c, n]` the pixel at row r, column c
//! of image n, exactly what `scipy.io.loadmat` returns.
//!
//! Untrusted input: every byte count is checked against the bytes present, element
//! counts use checked arithmetic and must match the stored data before anything is
//! allocated, and a compressed element is inflated at most to the deflate format's
//! limit of ~1032 times its size.

use super::ndarray::{checked_numel, fortran_to_c, in_file, NdArray};
use super::npy::{decode_elements, ElemType};
use super::npz::DEFLATE_MAX_RATIO;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

const MI_INT8: u32 = 1;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// A variable of a `.mat` file: a numeric array, or the name and class of one nabla does
/// not read (cell, struct, char, sparse, complex).
#[derive(Debug, Clone, PartialEq)]
pub enum MatVariable {
    Numeric(NdArray),
    Unsupported(String),
}

/// The variables of a `.mat` file's bytes, by name, in file order.
pub fn parse_mat(bytes: &[u8]) -> Result<Vec<(String, MatVariable)>> {
    if bytes.len() < 128 {
        return Err(Error::invalid(format!(
            "not a MATLAB v5 .mat file: {} bytes, shorter than the 128-byte header",
            bytes.len()
        )));
    }
    if bytes.starts_with(b"MATLAB 7.3") {
        return Err(Error::invalid(
            "a MATLAB v7.3 (HDF5) file: nabla reads v5/v7 files; re-save it with \
             save(..., '-v7') or scipy.io.savemat",
        ));
    }
    let big = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        _ => {
            return Err(Error::invalid(
                "not a MATLAB v5 .mat file (no 'IM'/'MI' endian mark at byte 126; v4 files \
                 are not supported)",
            ))
        }
    };
    let mut vars = Vec::new();
    let mut pos = 128;
    while pos < bytes.len() {
        let el = element(bytes, pos, big)?;
        match el.ty {
            MI_MATRIX => vars.push(matrix(el.data, big)?),
            MI_COMPRESSED => {
                let inflated = inflate(el.data)?;
                let inner = element(&inflated, 0, big)?;
                if inner.ty != MI_MATRIX {
                    return Err(Error::invalid(format!(
                        "mat: a compressed element at byte {pos} holds element type {}, not a \
                         matrix",
                        inner.ty
                    )));
                }
                vars.push(matrix(inner.data, big)?);
            }
            _ => {} // other top-level elements carry no variable
        }
        pos = el.next;
    }
    Ok(vars)
}

/// Reads a `.mat` file; errors name it.
pub fn load_mat(path: impl AsRef<Path>) -> Result<Vec<(String, MatVariable)>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_mat(&bytes).map_err(|e| in_file(path, e))
}

/// One data element: its type, its data, and where the next element starts.
struct Element<'a> {
    ty: u32,
    data: &'a [u8],
    next: usize,
}

fn read_u32(b: &[u8], pos: usize, big: bool) -> Option<u32> {
    let w: [u8; 4] = b.get(pos..pos.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    })
}

fn element(b: &[u8], pos: usize, big: bool) -> Result<Element<'_>> {
    let truncated = |what: &str| {
        Error::invalid(format!(
            "mat: truncated: {what} at byte {pos} runs past the end ({} bytes)",
            b.len()
        ))
    };
    let first = read_u32(b, pos, big).ok_or_else(|| truncated("an element tag"))?;
    if first >> 16 != 0 {
        // Small element: type and size (at most 4) in one word, the data in the next.
        let (ty, n) = (first & 0xffff, (first >> 16) as usize);
        if n > 4 {
            return Err(Error::invalid(format!(
                "mat: small element at byte {pos} claims {n} bytes (at most 4)"
            )));
        }
        let data = b
            .get(pos + 4..pos + 4 + n)
            .ok_or_else(|| truncated("a small element"))?;
        return Ok(Element {
            ty,
            data,
            next: pos + 8,
        });
    }
    let n = read_u32(b, pos + 4, big).ok_or_else(|| truncated("an element tag"))? as usize;
    let start = pos + 8;
    let end = start
        .checked_add(n)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| truncated(&format!("an element of {n} bytes")))?;
    // Elements are padded to 8 bytes, except compressed ones.
    let next = if first == MI_COMPRESSED {
        end
    } else {
        end.checked_add(7)
            .map(|e| e & !7)
            .ok_or_else(|| truncated("padding"))?
    };
    Ok(Element {
        ty: first,
        data: &b[start..end],
        next: next.min(b.len()),
    })
}

fn inflate(data: &[u8]) -> Result<Vec<u8>> {
    let limit = (data.len() as u64)
        .saturating_mul(DEFLATE_MAX_RATIO)
        .saturating_add(1024);
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Error::invalid(format!("mat: corrupt compressed element: {e}")))?;
    Ok(out)
}

/// The storage type of a numeric sub-element.
fn mi_type(ty: u32) -> Option<ElemType> {
    Some(match ty {
        1 => ElemType::Int(1),
        2 => ElemType::UInt(1),
        3 => ElemType::Int(2),
        4 => ElemType::UInt(2),
        5 => ElemType::Int(4),
        6 => ElemType::UInt(4),
        7 => ElemType::Float(4),
        9 => ElemType::Float(8),
        12 => ElemType::Int(8),
        13 => ElemType::UInt(8),
        _ => return None,
    })
}

/// MATLAB's class (mxCLASS) as NumPy's dtype name, for the numeric ones.
fn class_dtype(class: u32) -> Option<&'static str> {
    Some(match class {
        6 => "float64",
        7 => "float32",
        8 => "int8",
        9 => "uint8",
        10 => "int16",
        11 => "uint16",
        12 => "int32",
        13 => "uint32",
        14 => "int64",
        15 => "uint64",
        _ => return None,
    })
}

fn class_name(class: u32) -> &'static str {
    match class {
        1 => "cell",
        2 => "struct",
        3 => "object",
        4 => "char",
        5 => "sparse",
        16 => "function",
        17 => "opaque",
        _ => "unknown",
    }
}

/// A variable from an `miMATRIX` element's data.
fn matrix(b: &[u8], big: bool) -> Result<(String, MatVariable)> {
    let flags_el = element(b, 0, big)?;
    if flags_el.ty != MI_UINT32 || flags_el.data.len() < 8 {
        return Err(Error::invalid(
            "mat: a matrix does not start with its array flags",
        ));
    }
    let flags = read_u32(flags_el.data, 0, big).unwrap_or(0);
    let (class, complex, logical) = (flags & 0xff, flags & 0x800 != 0, flags & 0x200 != 0);
    let dims_el = element(b, flags_el.next, big)?;
    if dims_el.ty != MI_INT32 || dims_el.data.len() % 4 != 0 {
        return Err(Error::invalid(
            "mat: a matrix's dimensions are not int32 values",
        ));
    }
    let mut shape = Vec::with_capacity(dims_el.data.len() / 4);
    for k in 0..dims_el.data.len() / 4 {
        let d = read_u32(dims_el.data, 4 * k, big).unwrap_or(0) as i32;
        if d < 0 {
            return Err(Error::invalid(format!("mat: negative dimension {d}")));
        }
        shape.push(d as usize);
    }
    let name_el = element(b, dims_el.next, big)?;
    if name_el.ty != MI_INT8 {
        return Err(Error::invalid("mat: a matrix's name is not int8 text"));
    }
    let name = String::from_utf8_lossy(name_el.data).into_owned();
    let Some(dtype) = class_dtype(class).filter(|_| !complex) else {
        let what = if complex {
            "complex".to_string()
        } else {
            class_name(class).to_string()
        };
        return Ok((name, MatVariable::Unsupported(what)));
    };
    let real = element(b, name_el.next, big)?;
    let stored = mi_type(real.ty).ok_or_else(|| {
        Error::invalid(format!(
            "mat: variable '{name}' stores its values as element type {}, not a number",
            real.ty
        ))
    })?;
    let numel = checked_numel(&shape)
        .map_err(|e| Error::invalid(format!("mat: variable '{name}': {e}")))?;
    let want = numel.checked_mul(stored.size());
    if want != Some(real.data.len()) {
        return Err(Error::invalid(format!(
            "mat: variable '{name}' of shape {shape:?} needs {} bytes of {}, the file has {}",
            want.map_or("too many".to_string(), |w| w.to_string()),
            stored.name(),
            real.data.len()
        )));
    }
    let values = decode_elements(real.data, stored, big);
    Ok((
        name,
        MatVariable::Numeric(NdArray {
            data: fortran_to_c(&values, &shape),
            shape,
            dtype: if logical { "bool" } else { dtype },
        }),
    ))
}

/// The numeric variable `name` of a parsed file, or an error listing what there is.
pub fn numeric_variable(vars: &[(String, MatVariable)], name: &str) -> Result<NdArray> {
    match vars.iter().find(|(n, _)| n == name) {
        Some((_, MatVariable::Numeric(a))) => Ok(a.clone()),
        Some((_, MatVariable::Unsupported(class))) => Err(Error::invalid(format!(
            "variable '{name}' is a {class} array; nabla reads real numeric arrays"
        ))),
        None => Err(Error::invalid(format!(
            "no variable '{name}'; the file holds: {}",
            vars.iter()
                .map(|(n, v)| match v {
                    MatVariable::Numeric(a) => format!("{n} {} {:?}", a.dtype, a.shape),
                    MatVariable::Unsupported(c) => format!("{n} ({c})"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    fn tag(ty: u32, data: &[u8], big: bool) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(&w(ty));
        out.extend_from_slice(&w(data.len() as u32));
        out.extend_from_slice(data);
        while out.len() % 8 != 0 {
            out.push(0);
        }
        out
    }

    /// One test variable: (name, class, storage type, dims, data in column-major order
    /// as bytes of the storage type).
    pub(crate) type TestVar<'a> = (&'a str, u32, u32, &'a [i32], Vec<u8>);

    /// A v5 file of one variable per entry, written as MATLAB does.
    pub(crate) fn mat_file(vars: &[TestVar], compress: bool, big: bool) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = vec![b' '; 128];
        out[..19].copy_from_slice(b"MATLAB 5.0 MAT-file");
        out[124..126].copy_from_slice(&if big { [1, 0] } else { [0, 1] });
        out[126..128].copy_from_slice(if big { b"MI" } else { b"IM" });
        for (name, class, ty, dims, data) in vars {
            let mut m = Vec::new();
            let mut flags = w(*class).to_vec();
            flags.extend_from_slice(&[0; 4]);
            m.extend(tag(MI_UINT32, &flags, big));
            let d: Vec<u8> = dims
                .iter()
                .flat_map(|&v| {
                    if big {
                        v.to_be_bytes()
                    } else {
                        v.to_le_bytes()
                    }
                })
                .collect();
            m.extend(tag(MI_INT32, &d, big));
            m.extend(tag(MI_INT8, name.as_bytes(), big));
            m.extend(tag(*ty, data, big));
            let el = tag(MI_MATRIX, &m, big);
            if compress {
                let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
                z.write_all(&el).unwrap();
                let z = z.finish().unwrap();
                out.extend_from_slice(&w(MI_COMPRESSED));
                out.extend_from_slice(&w(z.len() as u32));
                out.extend_from_slice(&z);
            } else {
                out.extend(el);
            }
        }
        out
    }

    fn get(vars: &[(String, MatVariable)], name: &str) -> NdArray {
        numeric_variable(vars, name).unwrap()
    }

    #[test]
    fn classes_orders_and_compression() {
        // A 2x3 double [[1,2,3],[4,5,6]] stored column by column, a uint8 row stored as
        // uint8, a double class stored as uint8 (MATLAB does that to save space), int16.
        let col_major: Vec<u8> = [1f64, 4., 2., 5., 3., 6.]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        for big in [false, true] {
            let col_major: Vec<u8> = if big {
                [1f64, 4., 2., 5., 3., 6.]
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect()
            } else {
                col_major.clone()
            };
            let i16s: Vec<u8> = [-3i16, 300]
                .iter()
                .flat_map(|v| {
                    if big {
                        v.to_be_bytes()
                    } else {
                        v.to_le_bytes()
                    }
                })
                .collect();
            for compress in [false, true] {
                let file = mat_file(
                    &[
                        ("a", 6, 9, &[2, 3], col_major.clone()),
                        ("labels", 9, 2, &[1, 4], vec![3, 1, 4, 1]),
                        ("packed", 6, 2, &[1, 2], vec![200, 7]),
                        ("s", 10, 3, &[2, 1], i16s.clone()),
                        ("c", 1, 2, &[1, 1], vec![0]),
                    ],
                    compress,
                    big,
                );
                let vars = parse_mat(&file).unwrap();
                let a = get(&vars, "a");
                assert_eq!(a.shape, vec![2, 3]);
                assert_eq!(a.data, vec![1., 2., 3., 4., 5., 6.]);
                assert_eq!(a.dtype, "float64");
                let l = get(&vars, "labels");
                assert_eq!(
                    (l.shape.clone(), l.data.clone()),
                    (vec![1, 4], vec![3., 1., 4., 1.])
                );
                assert_eq!(l.dtype, "uint8");
                assert_eq!(get(&vars, "packed").data, vec![200., 7.]);
                assert_eq!(get(&vars, "s").data, vec![-3., 300.]);
                let e = numeric_variable(&vars, "c").unwrap_err().to_string();
                assert!(e.contains("cell"), "{e}");
                let e = numeric_variable(&vars, "zz").unwrap_err().to_string();
                assert!(e.contains("labels uint8 [1, 4]"), "{e}");
            }
        }
    }

    #[test]
    fn corrupt_files_are_refused() {
        let good = mat_file(&[("x", 9, 2, &[2, 2], vec![1, 2, 3, 4])], false, false);
        // A header alone is a file with no variables; cutting only the final padding
        // leaves a readable file.
        for cut in (0..128).chain(129..good.len() - 4) {
            assert!(parse_mat(&good[..cut]).is_err(), "cut at {cut}");
        }
        let z = mat_file(&[("x", 9, 2, &[2, 2], vec![1, 2, 3, 4])], true, false);
        for cut in 129..z.len() - 1 {
            assert!(parse_mat(&z[..cut]).is_err(), "cut at {cut}");
        }
        // Dimensions claiming 2^31 x 2^31 elements over 4 bytes of data.
        let huge = mat_file(
            &[("x", 9, 2, &[i32::MAX, i32::MAX], vec![1, 2, 3, 4])],
            true,
            false,
        );
        let e = parse_mat(&huge).unwrap_err().to_string();
        assert!(e.contains("'x'"), "{e}");
        let neg = mat_file(&[("x", 9, 2, &[-1, 4], vec![1, 2, 3, 4])], false, false);
        assert!(parse_mat(&neg).is_err());
        let mut hdf = good.clone();
        hdf[..10].copy_from_slice(b"MATLAB 7.3");
        assert!(parse_mat(&hdf).unwrap_err().to_string().contains("v7.3"));
        let mut no_mark = good;
        no_mark[126] = 0;
        assert!(parse_mat(&no_mark).is_err());
    }
}
