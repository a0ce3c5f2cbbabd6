//! Named f32 tensors to and from safetensors files (the `safetensors` crate).
//! Loading checks the header and dtype and names the file in every error.

use crate::engine::Tensor;
use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::path::Path;

pub fn to_bytes(tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let bytes: Vec<u8> = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
            (n.clone(), t.shape().to_vec(), bytes)
        })
        .collect();
    let views = raw
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::invalid(format!("tensor '{n}': {e:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, &None).map_err(|e| Error::invalid(format!("{e:?}")))
}

/// Writes atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    super::atomic::write_bytes_atomic(path, &to_bytes(tensors)?)
}

/// All tensors of a file, in the file's order. Only F32 is accepted.
pub fn load(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file ({e:?})")))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::format(
                path,
                format!(
                    "tensor '{name}' has dtype {:?}; nabla expects F32",
                    view.dtype()
                ),
            ));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        out.push((name, Tensor::try_from_vec(data, view.shape())?));
    }
    // The file's header is a map: sort for a stable order.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
