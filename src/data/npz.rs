//! NumPy's `.npz` archives (`np.savez`, `np.savez_compressed`): a zip file of `.npy`
//! members, stored or deflated. Read with the `zip` crate; each member goes through
//! [`super::npy::parse_npy`].
//!
//! Untrusted input: a deflated member expands at most about 1032 times (the deflate
//! format's limit), so a member whose header claims more than its compressed size allows
//! is refused before reading, and reading stops one byte past the claimed size. Memory
//! stays bounded by the input's size times that factor whatever the archive says.

use super::ndarray::{in_file, NdArray};
use super::npy::{parse_npy, parse_npy_header};
use crate::error::{Error, Result};
use std::io::{Cursor, Read};
use std::path::Path;

/// The most a deflate stream can expand: 258 bytes out per 2 bits in, rounded up.
pub const DEFLATE_MAX_RATIO: u64 = 1032;

/// Every array of an `.npz` archive's bytes, by name (without `.npy`), in archive order.
pub fn read_npz(bytes: &[u8]) -> Result<Vec<(String, NdArray)>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::invalid(format!("not a readable .npz (zip) archive: {e}")))?;
    let mut arrays = Vec::new();
    for i in 0..archive.len() {
        let mut member = archive
            .by_index(i)
            .map_err(|e| Error::invalid(format!("npz: member {i}: {e}")))?;
        let name = member.name().to_string();
        if member.is_dir() {
            continue;
        }
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let limit = member
            .compressed_size()
            .saturating_mul(DEFLATE_MAX_RATIO)
            .saturating_add(1024)
            .min(bytes.len() as u64 * DEFLATE_MAX_RATIO + 1024);
        // Read the header first (at most 64 KiB + its prefix), then exactly the size the
        // header claims, if that size is possible at all.
        let mut head = Vec::new();
        (&mut member)
            .take(12)
            .read_to_end(&mut head)
            .map_err(|e| Error::invalid(format!("npz: member '{name}': {e}")))?;
        let header_len = match head.get(6) {
            Some(1) if head.len() >= 10 => u16::from_le_bytes([head[8], head[9]]) as u64 + 10,
            Some(2 | 3) if head.len() >= 12 => {
                u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64 + 12
            }
            _ => 0,
        };
        if header_len > limit {
            return Err(Error::invalid(format!(
                "npz: member '{name}' claims a header of {header_len} bytes, more than its \
                 {} compressed bytes can hold",
                member.compressed_size()
            )));
        }
        let rest = header_len.saturating_sub(head.len() as u64);
        (&mut member)
            .take(rest)
            .read_to_end(&mut head)
            .map_err(|e| Error::invalid(format!("npz: member '{name}': {e}")))?;
        let h = parse_npy_header(&head)
            .map_err(|e| Error::invalid(format!("npz: member '{name}': {e}")))?;
        let data_bytes = h
            .shape
            .iter()
            .try_fold(h.elem.size() as u64, |acc, &d| acc.checked_mul(d as u64))
            .filter(|&n| n <= limit)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "npz: member '{name}' claims shape {:?} of {}, more data than its {} \
                     compressed bytes can hold",
                    h.shape,
                    h.elem.name(),
                    member.compressed_size()
                ))
            })?;
        let mut all = head;
        (&mut member)
            .take(data_bytes + 1)
            .read_to_end(&mut all)
            .map_err(|e| Error::invalid(format!("npz: member '{name}': {e}")))?;
        let array =
            parse_npy(&all).map_err(|e| Error::invalid(format!("npz: member '{name}': {e}")))?;
        arrays.push((key, array));
    }
    Ok(arrays)
}

/// Reads an `.npz` file; errors name it.
pub fn load_npz(path: impl AsRef<Path>) -> Result<Vec<(String, NdArray)>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_npz(&bytes).map_err(|e| in_file(path, e))
}

#[cfg(test)]
mod tests {
    use super::super::npy::npy_bytes;
    use super::*;
    use std::io::Write;

    fn zip_of(members: &[(&str, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in members {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn stored_and_deflated_members() {
        let x = npy_bytes("<f4", &[2], false, &[0, 0, 128, 63, 0, 0, 0, 64]);
        let y = npy_bytes("|u1", &[3], false, &[7, 8, 9]);
        for method in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ] {
            let npz = zip_of(&[("x.npy", x.clone()), ("y.npy", y.clone())], method);
            let arrays = read_npz(&npz).unwrap();
            assert_eq!(arrays[0].0, "x");
            assert_eq!(arrays[0].1.data, vec![1.0, 2.0]);
            assert_eq!(arrays[1].0, "y");
            assert_eq!(arrays[1].1.data, vec![7., 8., 9.]);
        }
    }

    #[test]
    fn corrupt_archives_are_refused() {
        let x = npy_bytes("<f4", &[2], false, &[0u8; 8]);
        let npz = zip_of(&[("x.npy", x)], zip::CompressionMethod::Deflated);
        for cut in [0, 4, 30, npz.len() / 2, npz.len() - 1] {
            assert!(read_npz(&npz[..cut]).is_err(), "cut at {cut}");
        }
        // A header that claims 10^12 elements in a few compressed bytes.
        let huge = npy_bytes("<f8", &[1_000_000, 1_000_000], false, &[0u8; 8]);
        for method in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ] {
            let npz = zip_of(&[("big.npy", huge.clone())], method);
            let e = read_npz(&npz).unwrap_err().to_string();
            assert!(e.contains("big"), "{e}");
        }
        assert!(read_npz(b"PK\x03\x04 definitely not a zip").is_err());
    }
}
