//! IDX files, the format of MNIST and Fashion-MNIST (<http://yann.lecun.com/exdb/mnist/>).
//!
//! Layout: a 4-byte magic number `00 00 TT NN` (TT = element type, NN = number of
//! dimensions), then NN big-endian `u32` dimension sizes, then the elements in row-major
//! order. Only unsigned bytes (`TT = 0x08`) are supported, which is what every MNIST-style
//! data set uses; other types are rejected with an error that names them.
//!
//! Files may be gzip-compressed or raw. Compression is detected from the gzip magic bytes
//! (`1f 8b`), never from the file name, so a raw file called `*.gz` also loads.
//!
//! Untrusted headers: the dimensions come from the file, so a corrupt header may claim
//! billions of images. The reader never allocates what the header claims; it reads at
//! most `claimed + 1` bytes through a bounded reader (the buffer grows with what is really
//! there) and then compares, so a lying header fails fast with "truncated" instead of
//! exhausting memory.

use crate::error::{Error, Result};
use crate::formats::atomic::write_atomic;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

/// IDX type code of unsigned bytes, the only element type nabla reads.
pub const IDX_UBYTE: u8 = 0x08;

/// The two bytes every gzip stream starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An n-dimensional array of bytes read from (or to be written to) an IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimension sizes, outermost first: `[N, 28, 28]` for MNIST images, `[N]` for labels.
    pub dims: Vec<usize>,
    /// The elements in row-major order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

impl IdxArray {
    /// Wraps `data` with `dims`, checking that the sizes agree.
    pub fn new(dims: Vec<usize>, data: Vec<u8>) -> Result<IdxArray> {
        let n = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if n != Some(data.len()) {
            return Err(Error::invalid(format!(
                "IDX array: {} bytes do not fill dimensions {:?}",
                data.len(),
                dims
            )));
        }
        Ok(IdxArray { dims, data })
    }
}

/// Reads an IDX file of unsigned bytes, raw or gzip-compressed. Every error names the file.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    if head.starts_with(&GZIP_MAGIC) {
        let gz = flate2::bufread::MultiGzDecoder::new(reader);
        parse_idx(gz, path, true)
    } else {
        parse_idx(reader, path, false)
    }
}

/// Parses an (already decompressed if `gzip` is false) IDX stream. `path` is only used in
/// error messages; `gzip` says whether `reader` is a gzip decoder, so that its errors are
/// reported as corrupt compressed data rather than as I/O failures.
pub fn parse_idx(mut reader: impl Read, path: &Path, gzip: bool) -> Result<IdxArray> {
    let what = if gzip { "decompressed data" } else { "file" };

    let magic = read_up_to(&mut reader, 4, path, gzip)?;
    if magic.len() < 4 {
        return Err(Error::format(
            path,
            format!(
                "truncated: {what} has {} bytes, too short for an IDX header",
                magic.len()
            ),
        ));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(Error::format(
            path,
            format!(
                "not an IDX file: bad magic number 0x{:02x}{:02x}{:02x}{:02x} \
                 (expected 0x0000TTNN: two zero bytes, a type code, a dimension count)",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    let dtype = magic[2];
    if dtype != IDX_UBYTE {
        return Err(Error::format(
            path,
            format!(
                "unsupported IDX data type 0x{dtype:02x} ({}); only unsigned bytes (0x08) are supported",
                dtype_name(dtype)
            ),
        ));
    }
    let ndims = magic[3] as usize;
    if ndims == 0 {
        return Err(Error::format(path, "IDX header declares zero dimensions"));
    }

    let raw_dims = read_up_to(&mut reader, 4 * ndims as u64, path, gzip)?;
    if raw_dims.len() < 4 * ndims {
        return Err(Error::format(
            path,
            format!("truncated: {what} ends inside the IDX header ({ndims} dimensions declared)"),
        ));
    }
    let dims: Vec<usize> = raw_dims
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let claimed = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n < u64::MAX && usize::try_from(n).is_ok())
        .ok_or_else(|| {
            Error::format(
                path,
                format!("IDX header claims dimensions {dims:?}, too large to be real"),
            )
        })?;

    // Bounded read: at most one byte more than claimed, so a lying header costs no more
    // memory than the data that is really there, and one extra byte reveals trailing data.
    let data = read_up_to(&mut reader, claimed + 1, path, gzip)?;
    let got = data.len() as u64;
    if got < claimed {
        return Err(Error::format(
            path,
            format!(
                "truncated: IDX header claims dimensions {dims:?} = {claimed} bytes of data, \
                 but the {what} holds only {got}"
            ),
        ));
    }
    if got > claimed {
        return Err(Error::format(
            path,
            format!(
                "trailing garbage: {what} has more bytes than the {claimed} that \
                 IDX dimensions {dims:?} describe"
            ),
        ));
    }
    Ok(IdxArray { dims, data })
}

/// Reads up to `limit` bytes (fewer only at the end of the stream). The buffer grows with
/// the bytes actually read, never to `limit` up front.
fn read_up_to(reader: &mut impl Read, limit: u64, path: &Path, gzip: bool) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| read_error(path, gzip, e))?;
    Ok(buf)
}

/// Errors from a gzip decoder mean bad compressed data, not a failing disk: say so.
fn read_error(path: &Path, gzip: bool, e: io::Error) -> Error {
    if !gzip {
        return Error::io(path, e);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::format(
            path,
            "truncated gzip data: the file ends before the compressed stream does",
        ),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::Other => {
            Error::format(path, format!("corrupt gzip data: {e}"))
        }
        _ => Error::io(path, e),
    }
}

fn dtype_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "16-bit integer",
        0x0C => "32-bit integer",
        0x0D => "32-bit float",
        0x0E => "64-bit float",
        _ => "not an IDX type code",
    }
}

/// The bytes of an IDX file (uncompressed) holding `array`.
pub fn encode_idx(array: &IdxArray) -> Result<Vec<u8>> {
    let ndims = u8::try_from(array.dims.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            Error::invalid(format!(
                "IDX arrays have 1 to 255 dimensions, not {}",
                array.dims.len()
            ))
        })?;
    let expected = array.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if expected != Some(array.data.len()) {
        return Err(Error::invalid(format!(
            "IDX array: {} bytes do not fill dimensions {:?}",
            array.data.len(),
            array.dims
        )));
    }
    let mut out = Vec::with_capacity(4 + 4 * array.dims.len() + array.data.len());
    out.extend_from_slice(&[0, 0, IDX_UBYTE, ndims]);
    for &d in &array.dims {
        let d = u32::try_from(d)
            .map_err(|_| Error::invalid(format!("IDX dimension {d} does not fit in 32 bits")))?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(&array.data);
    Ok(out)
}

/// Writes `array` as an IDX file, gzip-compressed if `gzip` (atomically: a failed write
/// leaves any old file in place).
pub fn write_idx(path: impl AsRef<Path>, array: &IdxArray, gzip: bool) -> Result<()> {
    let path = path.as_ref();
    let bytes = encode_idx(array)?;
    write_atomic(path, |w: &mut dyn Write| {
        let io = |e| Error::io(path, e);
        if gzip {
            let mut enc = flate2::write::GzEncoder::new(w, flate2::Compression::default());
            enc.write_all(&bytes).map_err(io)?;
            enc.finish().map_err(io)?;
        } else {
            w.write_all(&bytes).map_err(io)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sample() -> IdxArray {
        IdxArray::new(vec![3, 2, 4], (0..24).map(|i| (i * 10) as u8).collect()).unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// Writes `bytes` to a file called `name` in a fresh temp dir and reads it back.
    fn read_bytes_as(name: &str, bytes: &[u8]) -> (Result<IdxArray>, PathBuf, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (read_idx(&path), path, dir)
    }

    /// Asserts that reading fails with a message naming the file and containing `needle`.
    fn assert_fails(name: &str, bytes: &[u8], needle: &str) -> String {
        let (res, _path, _dir) = read_bytes_as(name, bytes);
        let msg = res.unwrap_err().to_string();
        assert!(msg.contains(name), "error does not name the file: {msg}");
        assert!(msg.contains(needle), "expected {needle:?} in: {msg}");
        assert!(!msg.contains('\n'), "error is not one line: {msg}");
        msg
    }

    #[test]
    fn round_trip_raw_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let a = sample();
        for gz in [false, true] {
            let path = dir.path().join(format!("a-{gz}.idx"));
            write_idx(&path, &a, gz).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.starts_with(&GZIP_MAGIC), gz);
            assert_eq!(read_idx(&path).unwrap(), a);
        }
        // Labels: one dimension.
        let labels = IdxArray::new(vec![5], vec![0, 1, 2, 3, 9]).unwrap();
        let path = dir.path().join("labels");
        write_idx(&path, &labels, true).unwrap();
        assert_eq!(read_idx(&path).unwrap(), labels);
    }

    #[test]
    fn compression_is_detected_by_content_not_name() {
        let raw = encode_idx(&sample()).unwrap();
        let (res, _, _d) = read_bytes_as("raw-but-named.gz", &raw);
        assert_eq!(res.unwrap(), sample());
        let (res, _, _d) = read_bytes_as("gzip-but-named.idx", &gzip(&raw));
        assert_eq!(res.unwrap(), sample());
    }

    #[test]
    fn wrong_magic_is_rejected() {
        let mut bytes = encode_idx(&sample()).unwrap();
        bytes[0] = 0x12;
        assert_fails("bad-magic", &bytes, "bad magic number 0x12000803");
        assert_fails("png", b"\x89PNG\r\n\x1a\n....", "not an IDX file");
    }

    #[test]
    fn other_dtypes_are_rejected() {
        let mut bytes = encode_idx(&sample()).unwrap();
        bytes[2] = 0x0D;
        let msg = assert_fails("floats", &bytes, "unsupported IDX data type 0x0d");
        assert!(msg.contains("32-bit float"), "{msg}");
    }

    #[test]
    fn zero_dimensions_are_rejected() {
        assert_fails("nodims", &[0, 0, 8, 0], "zero dimensions");
    }

    #[test]
    fn truncated_file_is_rejected() {
        let bytes = encode_idx(&sample()).unwrap();
        let msg = assert_fails("short", &bytes[..bytes.len() - 1], "truncated");
        assert!(msg.contains("24 bytes") && msg.contains("only 23"), "{msg}");
        assert_fails("header-only", &bytes[..6], "ends inside the IDX header");
        assert_fails("tiny", &bytes[..2], "too short");
        assert_fails("empty", &[], "too short");
        // The same, compressed: the decompressed content is short.
        assert_fails("short.gz", &gzip(&bytes[..bytes.len() - 5]), "truncated");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let mut bytes = encode_idx(&sample()).unwrap();
        bytes.extend_from_slice(b"junk");
        assert_fails("long", &bytes, "trailing garbage");
        assert_fails("long.gz", &gzip(&bytes), "trailing garbage");
    }

    #[test]
    fn corrupt_gzip_is_rejected() {
        let raw: Vec<u8> = encode_idx(
            &IdxArray::new(
                vec![64, 64],
                (0..4096).map(|i| (i * 7 % 251) as u8).collect(),
            )
            .unwrap(),
        )
        .unwrap();
        let good = gzip(&raw);

        // A flipped byte inside the deflate stream (or its CRC): corrupt data.
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        assert_fails("flipped.gz", &flipped, "gzip");
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 0x01; // inside the CRC32 of the trailer
        assert_fails("badcrc.gz", &bad_crc, "corrupt gzip data");

        // Cut short: the compressed stream ends early.
        assert_fails("cut.gz", &good[..good.len() / 2], "truncated gzip data");

        // Only a gzip magic.
        assert_fails("magic-only.gz", &GZIP_MAGIC, "gzip");
    }

    #[test]
    fn billion_image_header_fails_fast_without_allocating() {
        // Claims 4e9 images of 28x28 (3 TB) but holds 10 bytes. `Vec::with_capacity` of the
        // claimed size would abort the process; the bounded reader notices the lie at once.
        // (tests/idx_alloc.rs measures the peak allocation with a counting allocator.)
        let mut bytes = vec![0, 0, 8, 3];
        for d in [4_000_000_000u32, 28, 28] {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(&[0; 10]);
        let start = std::time::Instant::now();
        let msg = assert_fails("huge", &bytes, "truncated");
        assert!(msg.contains("holds only 10"), "{msg}");
        assert_fails("huge.gz", &gzip(&bytes), "truncated");
        assert!(start.elapsed().as_secs() < 2);

        // Dimensions whose product overflows 64 bits.
        let mut bytes = vec![0, 0, 8, 3];
        for _ in 0..3 {
            bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        assert_fails("overflow", &bytes, "too large");
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = read_idx("/no/such/dir/train-images-idx3-ubyte").unwrap_err();
        assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
    }

    #[test]
    fn writer_rejects_inconsistent_arrays() {
        assert!(IdxArray::new(vec![2, 2], vec![0; 3]).is_err());
        let bad = IdxArray {
            dims: vec![2, 2],
            data: vec![0; 3],
        };
        assert!(encode_idx(&bad).is_err());
        let none = IdxArray {
            dims: vec![],
            data: vec![0],
        };
        assert!(encode_idx(&none).is_err());
    }
}
