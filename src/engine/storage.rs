//! Element types and the typed buffers a tensor shares.
//!
//! `DType` names an element type (size in bytes, the names used in files and on the
//! command line); `Storage` is one flat buffer of one element type; `Element` links a Rust
//! type to its `DType` so constructors and typed access can be generic without putting a
//! type parameter on `Tensor` (kernels stay plain f32 functions; see `convert.rs`).

use crate::error::{Error, Result};
use half::{bf16, f16};

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DType {
    F32,
    F16,
    BF16,
    I8,
    U8,
    /// Indices (class labels, gather positions).
    I64,
}

impl DType {
    pub const ALL: [DType; 6] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::I8,
        DType::U8,
        DType::I64,
    ];

    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I8 | DType::U8 => 1,
            DType::I64 => 8,
        }
    }

    /// "f32", "f16", "bf16", "i8", "u8", "i64".
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I64 => "i64",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DType {
    type Err = Error;

    /// Accepts the short names and NumPy's long ones ("float16", "bfloat16", ...).
    fn from_str(s: &str) -> Result<DType> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => DType::F32,
            "f16" | "float16" | "half" => DType::F16,
            "bf16" | "bfloat16" => DType::BF16,
            "i8" | "int8" => DType::I8,
            "u8" | "uint8" => DType::U8,
            "i64" | "int64" => DType::I64,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown element type '{s}' (expected f32, f16, bf16, i8, u8 or i64)"
                )))
            }
        })
    }
}

/// One flat buffer of one element type. Shared between tensors through an `Arc`.
#[derive(Clone, PartialEq)]
pub enum Storage {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I64(Vec<i64>),
}

/// Calls `$body` with `$v` bound to the typed `Vec` inside a `Storage`.
macro_rules! with_storage {
    ($storage:expr, $v:ident => $body:expr) => {
        match $storage {
            Storage::F32($v) => $body,
            Storage::F16($v) => $body,
            Storage::BF16($v) => $body,
            Storage::I8($v) => $body,
            Storage::U8($v) => $body,
            Storage::I64($v) => $body,
        }
    };
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F16(_) => DType::F16,
            Storage::BF16(_) => DType::BF16,
            Storage::I8(_) => DType::I8,
            Storage::U8(_) => DType::U8,
            Storage::I64(_) => DType::I64,
        }
    }

    pub fn len(&self) -> usize {
        with_storage!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as little-endian bytes (the safetensors and NumPy layout).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        with_storage!(self, v => v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }

    /// Reads `bytes` (little-endian) as elements of `dtype`; the length must be a
    /// multiple of the element size.
    pub fn from_le_bytes(dtype: DType, bytes: &[u8]) -> Result<Storage> {
        let size = dtype.size_in_bytes();
        if !bytes.len().is_multiple_of(size) {
            return Err(Error::invalid(format!(
                "{} bytes are not a whole number of {dtype} elements ({size} bytes each)",
                bytes.len()
            )));
        }
        fn read<T, const N: usize>(bytes: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
            bytes
                .chunks_exact(N)
                .map(|c| f(c.try_into().expect("chunks_exact")))
                .collect()
        }
        Ok(match dtype {
            DType::F32 => Storage::F32(read(bytes, f32::from_le_bytes)),
            DType::F16 => Storage::F16(read(bytes, f16::from_le_bytes)),
            DType::BF16 => Storage::BF16(read(bytes, bf16::from_le_bytes)),
            DType::I8 => Storage::I8(read(bytes, i8::from_le_bytes)),
            DType::U8 => Storage::U8(bytes.to_vec()),
            DType::I64 => Storage::I64(read(bytes, i64::from_le_bytes)),
        })
    }
}

/// A Rust element type a tensor can hold: f32, f16, bf16, i8, u8, i64.
pub trait Element: Copy + Send + Sync + 'static {
    const DTYPE: DType;
    fn into_storage(v: Vec<Self>) -> Storage;
    fn slice(s: &Storage) -> Option<&[Self]>;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$variant(v)
            }
            fn slice(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
element!(f32, F32);
element!(f16, F16);
element!(bf16, BF16);
element!(i8, I8);
element!(u8, U8);
element!(i64, I64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sizes_and_parsing_agree() {
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
        }
        assert_eq!(DType::BF16.size_in_bytes(), 2);
        assert_eq!(DType::I64.size_in_bytes(), 8);
        assert_eq!("float16".parse::<DType>().unwrap(), DType::F16);
        assert!("f8".parse::<DType>().is_err());
    }

    #[test]
    fn bytes_round_trip_every_dtype() {
        let all = [
            Storage::F32(vec![1.5, -0.0, f32::INFINITY]),
            Storage::F16(vec![f16::from_f32(0.1), f16::NEG_INFINITY]),
            Storage::BF16(vec![bf16::from_f32(-3.25), bf16::MIN_POSITIVE]),
            Storage::I8(vec![-128, 0, 127]),
            Storage::U8(vec![0, 255]),
            Storage::I64(vec![i64::MIN, 7, i64::MAX]),
        ];
        for s in all {
            let bytes = s.to_le_bytes();
            assert_eq!(bytes.len(), s.len() * s.dtype().size_in_bytes());
            assert!(Storage::from_le_bytes(s.dtype(), &bytes).unwrap() == s);
        }
        assert!(Storage::from_le_bytes(DType::F32, &[0, 0, 0]).is_err());
    }
}
