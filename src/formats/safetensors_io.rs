//! Named tensors of any element type to and from safetensors files (the `safetensors`
//! crate). f32, f16, bf16, i8, u8 and i64 map one to one onto the format's F32, F16,
//! BF16, I8, U8 and I64; other dtypes in a file are refused with a message naming the
//! tensor. Loading checks the header and names the file in every error.

use crate::engine::{DType, Storage, Tensor};
use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::path::Path;

fn to_file_dtype(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I8 => Dtype::I8,
        DType::U8 => Dtype::U8,
        DType::I64 => Dtype::I64,
    }
}

fn from_file_dtype(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::I64 => DType::I64,
        _ => return None,
    })
}

pub fn to_bytes(tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let raw: Vec<(String, Tensor, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            // A view is written as its own elements in row-major order.
            let t = t.contiguous();
            let bytes = storage_window(&t).to_le_bytes();
            (n.clone(), t, bytes)
        })
        .collect();
    let views = raw
        .iter()
        .map(|(n, t, b)| {
            TensorView::new(to_file_dtype(t.dtype()), t.shape().to_vec(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::invalid(format!("tensor '{n}': {e:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, &None).map_err(|e| Error::invalid(format!("{e:?}")))
}

/// The elements of a contiguous tensor as a buffer of its own (a view's window).
fn storage_window(t: &Tensor) -> Storage {
    fn own<T: crate::engine::Element>(t: &Tensor) -> Vec<T> {
        t.as_slice::<T>()
            .expect("contiguous, matching dtype")
            .to_vec()
    }
    match t.dtype() {
        DType::F32 => Storage::F32(own(t)),
        DType::F16 => Storage::F16(own(t)),
        DType::BF16 => Storage::BF16(own(t)),
        DType::I8 => Storage::I8(own(t)),
        DType::U8 => Storage::U8(own(t)),
        DType::I64 => Storage::I64(own(t)),
    }
}

/// Writes atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    super::atomic::write_bytes_atomic(path, &to_bytes(tensors)?)
}

/// All tensors of a file, in name order, each in the file's element type.
pub fn load(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    from_bytes(&bytes).map_err(|e| match e {
        Error::Invalid(msg) => Error::format(path, msg),
        other => other,
    })
}

/// Parses a safetensors buffer; errors name the tensor at fault.
pub fn from_bytes(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::invalid(format!("not a valid safetensors file ({e:?})")))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let dtype = from_file_dtype(view.dtype()).ok_or_else(|| {
            Error::invalid(format!(
                "tensor '{name}' has dtype {:?}; nabla reads F32, F16, BF16, I8, U8 and I64",
                view.dtype()
            ))
        })?;
        let storage = Storage::from_le_bytes(dtype, view.data())
            .map_err(|e| Error::invalid(format!("tensor '{name}': {e}")))?;
        let tensor = Tensor::from_storage(storage, view.shape())
            .map_err(|e| Error::invalid(format!("tensor '{name}': {e}")))?;
        out.push((name, tensor));
    }
    // The file's header is a map: sort for a stable order.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_type_round_trips_through_a_file() {
        let base = Tensor::from_vec(vec![0.5, -2.0, 3.25, 7.0, -0.0, 100.0], &[2, 3]);
        let mut tensors: Vec<(String, Tensor)> = DType::ALL
            .iter()
            .map(|&d| (format!("t_{d}"), base.to_dtype(d)))
            .collect();
        // A strided view is written as its logical elements.
        tensors.push(("view".into(), base.transpose(0, 1).unwrap()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all.safetensors");
        save(&path, &tensors).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.len(), tensors.len());
        for (name, t) in &back {
            let (_, want) = tensors.iter().find(|(n, _)| n == name).unwrap();
            assert_eq!(t.dtype(), want.dtype(), "{name}");
            assert_eq!(t.shape(), want.shape(), "{name}");
            assert_eq!(t.to_f32_vec(), want.to_f32_vec(), "{name}");
        }
        let view = &back.iter().find(|(n, _)| n == "view").unwrap().1;
        assert_eq!(view.data(), &[0.5, 7.0, -2.0, -0.0, 3.25, 100.0]);
        // The bytes on disk are the element type's: 2 per f16, 8 per i64.
        let bytes = std::fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        for d in DType::ALL {
            let v = st.tensor(&format!("t_{d}")).unwrap();
            assert_eq!(v.data().len(), 6 * d.size_in_bytes(), "{d}");
        }
    }

    #[test]
    fn an_unsupported_dtype_names_the_tensor() {
        let data = [0u8; 8];
        let v = TensorView::new(Dtype::F64, vec![1], &data).unwrap();
        let bytes = safetensors::serialize([("w".to_string(), v)], &None).unwrap();
        let err = from_bytes(&bytes).unwrap_err().to_string();
        assert!(err.contains("'w'") && err.contains("F64"), "{err}");
    }
}
