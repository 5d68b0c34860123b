//! GGUF v2/v3 reader that works in place on a byte slice (the initrd): no copy of the file.
//!
//! Layout (little-endian; GGUF v1 with 32-bit counts and big-endian files are rejected):
//!
//! ```text
//! u32 magic "GGUF" | u32 version (2, 3) | u64 tensor_count | u64 metadata_count
//! metadata_count x { string key | u32 value_type | value }
//! tensor_count   x { string name | u32 n_dims | n_dims x u64 ne | u32 ggml_type | u64 offset }
//! padding to general.alignment (default 32)
//! tensor data; each tensor at data_start + offset, offset a multiple of the alignment
//! ```
//!
//! A string is `u64 len` + `len` bytes of UTF-8; an array is `u32 element_type | u64 len` +
//! elements. Design: the parser validates *everything* once, up front (every length against the
//! bytes left and the static limits in [`crate::limits`], every string's UTF-8, every tensor's
//! type, shape, alignment, bounds, and that tensors neither overlap nor share a name), and keeps
//! only borrowed views into the file. After that, accessors cannot fail on the file's bytes; they
//! fail only with typed "missing" / "wrong type" errors naming the key or tensor. Nothing in this
//! module can panic on input: reads go through a bounds-checked cursor, arithmetic is checked.
//! Arrays are kept as raw byte views with their element type and length; fixed-size elements
//! are decoded on access (`O(1)` by index), strings by iteration (the tokenizer walks them once).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::limits;
use crate::quant::GgmlType;

/// "GGUF" read as a little-endian u32.
pub const GGUF_MAGIC: u32 = 0x4655_4747;
/// Alignment of the tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// The type tag of a metadata value, with GGUF's numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// u8
    U8 = 0,
    /// i8
    I8 = 1,
    /// u16
    U16 = 2,
    /// i16
    I16 = 3,
    /// u32
    U32 = 4,
    /// i32
    I32 = 5,
    /// f32
    F32 = 6,
    /// bool (one byte, 0 or 1)
    Bool = 7,
    /// UTF-8 string with u64 length
    String = 8,
    /// typed array
    Array = 9,
    /// u64
    U64 = 10,
    /// i64
    I64 = 11,
    /// f64
    F64 = 12,
}

impl ValueType {
    fn from_id(id: u32) -> Option<ValueType> {
        Some(match id {
            0 => ValueType::U8,
            1 => ValueType::I8,
            2 => ValueType::U16,
            3 => ValueType::I16,
            4 => ValueType::U32,
            5 => ValueType::I32,
            6 => ValueType::F32,
            7 => ValueType::Bool,
            8 => ValueType::String,
            9 => ValueType::Array,
            10 => ValueType::U64,
            11 => ValueType::I64,
            12 => ValueType::F64,
            _ => return None,
        })
    }

    /// Size in bytes of a fixed-size value, `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        Some(match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => 1,
            ValueType::U16 | ValueType::I16 => 2,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 4,
            ValueType::U64 | ValueType::I64 | ValueType::F64 => 8,
            ValueType::String | ValueType::Array => return None,
        })
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ValueType::U8 => "u8",
            ValueType::I8 => "i8",
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::F32 => "f32",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
        };
        f.write_str(s)
    }
}

/// Where in the file a read was attempted, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Section {
    /// The fixed header (magic, version, counts).
    Header,
    /// The key of metadata entry `index`.
    MetadataKey {
        /// Index of the entry.
        index: u64,
    },
    /// The value of the metadata entry named `key`.
    MetadataValue {
        /// The key.
        key: String,
    },
    /// Tensor info entry `index` (its name is not known yet or is the failing part).
    TensorInfo {
        /// Index of the entry.
        index: u64,
    },
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::Header => f.write_str("header"),
            Section::MetadataKey { index } => write!(f, "key of metadata entry {index}"),
            Section::MetadataValue { key } => write!(f, "value of metadata key '{key}'"),
            Section::TensorInfo { index } => write!(f, "tensor info {index}"),
        }
    }
}

/// Why a GGUF file was rejected or a lookup failed. Every variant names the key, tensor or
/// file section involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GgufError {
    /// The file ends inside `section`: `needed` bytes at `offset`, fewer available.
    Truncated {
        /// What was being read.
        section: Section,
        /// File offset of the read.
        offset: u64,
        /// Bytes the read needed.
        needed: u64,
    },
    /// The first four bytes are not "GGUF".
    BadMagic {
        /// The little-endian u32 found.
        found: u32,
    },
    /// GGUF version other than 2 or 3 (v1 used 32-bit counts; byte-swapped values mean a
    /// big-endian file).
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// A count in the header is above its static limit.
    TooMany {
        /// What was counted ("tensors", "metadata keys").
        what: &'static str,
        /// The count in the file.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// A string in `section` is longer than the limit.
    StringTooLong {
        /// Where.
        section: Section,
        /// Its declared length.
        len: u64,
    },
    /// A string in `section` is not UTF-8.
    InvalidUtf8 {
        /// Where.
        section: Section,
        /// File offset of the string's bytes.
        offset: u64,
    },
    /// Two metadata entries with the same key.
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A metadata value type tag outside GGUF's 0..=12.
    UnknownValueType {
        /// The key.
        key: String,
        /// The tag.
        type_id: u32,
    },
    /// An array of arrays (valid GGUF, used by no Llama-family file; not supported).
    NestedArray {
        /// The key.
        key: String,
    },
    /// An array longer than [`limits::MAX_ARRAY_LEN`].
    ArrayTooLong {
        /// The key.
        key: String,
        /// Its declared length.
        len: u64,
    },
    /// A bool value other than 0 or 1.
    InvalidBool {
        /// The key.
        key: String,
    },
    /// `general.alignment` is zero, not a power of two, above the limit, or not an integer.
    BadAlignment {
        /// The value (0 if it was not an integer).
        value: u64,
    },
    /// A tensor has zero or more than four dimensions.
    BadDimensionCount {
        /// The tensor.
        name: String,
        /// Its dimension count.
        n_dims: u32,
    },
    /// A tensor has a zero-length dimension, too many elements, or a row that is not a whole
    /// number of blocks of its type.
    BadShape {
        /// The tensor.
        name: String,
        /// Its dimensions (ggml order: `ne[0]` is the contiguous one).
        dims: Vec<u64>,
        /// Its type.
        ggml_type: GgmlType,
    },
    /// A tensor type the engine does not support (or not a ggml type at all).
    UnsupportedTensorType {
        /// The tensor.
        name: String,
        /// The ggml type id.
        type_id: u32,
    },
    /// A tensor's offset is not a multiple of the alignment.
    MisalignedTensor {
        /// The tensor.
        name: String,
        /// Its offset from the start of the data section.
        offset: u64,
        /// The alignment.
        alignment: u64,
    },
    /// A tensor's bytes run past the end of the file.
    TruncatedTensor {
        /// The tensor.
        name: String,
        /// Its offset from the start of the data section.
        offset: u64,
        /// Its size in bytes.
        size: u64,
        /// Bytes in the data section.
        data_len: u64,
    },
    /// Two tensors share bytes.
    OverlappingTensors {
        /// The first tensor (lower offset).
        first: String,
        /// The second tensor.
        second: String,
    },
    /// Two tensors with the same name.
    DuplicateTensor {
        /// The name.
        name: String,
    },
    /// A metadata key the caller needs is absent.
    MissingKey {
        /// The key.
        key: String,
    },
    /// A metadata key has another type than the caller needs (or its value does not fit).
    WrongType {
        /// The key.
        key: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the file has.
        found: ValueType,
    },
    /// A tensor the caller needs is absent.
    MissingTensor {
        /// The name.
        name: String,
    },
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufError::*;
        match self {
            Truncated {
                section,
                offset,
                needed,
            } => write!(
                f,
                "GGUF truncated in {section}: needs {needed} bytes at offset {offset}"
            ),
            BadMagic { found } => write!(f, "not a GGUF file (magic {found:#010x})"),
            UnsupportedVersion { version } => write!(
                f,
                "unsupported GGUF version {version} (need 2 or 3, little-endian)"
            ),
            TooMany { what, count, limit } => {
                write!(f, "GGUF declares {count} {what}, limit {limit}")
            }
            StringTooLong { section, len } => {
                write!(f, "GGUF string of {len} bytes in {section} is too long")
            }
            InvalidUtf8 { section, offset } => {
                write!(
                    f,
                    "GGUF string in {section} at offset {offset} is not UTF-8"
                )
            }
            DuplicateKey { key } => write!(f, "GGUF metadata key '{key}' appears twice"),
            UnknownValueType { key, type_id } => {
                write!(f, "GGUF metadata '{key}' has unknown value type {type_id}")
            }
            NestedArray { key } => write!(f, "GGUF metadata '{key}' is an array of arrays"),
            ArrayTooLong { key, len } => {
                write!(
                    f,
                    "GGUF metadata '{key}' is an array of {len} elements (too long)"
                )
            }
            InvalidBool { key } => write!(f, "GGUF metadata '{key}' is a bool other than 0/1"),
            BadAlignment { value } => write!(f, "GGUF general.alignment {value} is invalid"),
            BadDimensionCount { name, n_dims } => {
                write!(f, "tensor '{name}' has {n_dims} dimensions (1..=4 allowed)")
            }
            BadShape {
                name,
                dims,
                ggml_type,
            } => {
                write!(
                    f,
                    "tensor '{name}' has invalid shape {dims:?} for type {ggml_type}"
                )
            }
            UnsupportedTensorType { name, type_id } => {
                write!(f, "tensor '{name}' has unsupported ggml type {type_id}")
            }
            MisalignedTensor {
                name,
                offset,
                alignment,
            } => write!(
                f,
                "tensor '{name}' at data offset {offset} is not aligned to {alignment}"
            ),
            TruncatedTensor {
                name,
                offset,
                size,
                data_len,
            } => write!(
                f,
                "tensor '{name}' ({size} bytes at data offset {offset}) runs past the end of the \
                 data section ({data_len} bytes)"
            ),
            OverlappingTensors { first, second } => {
                write!(f, "tensors '{first}' and '{second}' overlap")
            }
            DuplicateTensor { name } => write!(f, "tensor '{name}' appears twice"),
            MissingKey { key } => write!(f, "GGUF metadata key '{key}' is missing"),
            WrongType {
                key,
                expected,
                found,
            } => {
                write!(f, "GGUF metadata '{key}' is {found}, expected {expected}")
            }
            MissingTensor { name } => write!(f, "tensor '{name}' is missing"),
        }
    }
}

/// A metadata array: element type, length and the raw bytes of its elements (validated).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Array<'a> {
    element_type: ValueType,
    len: usize,
    bytes: &'a [u8],
}

impl<'a> Array<'a> {
    /// The element type.
    pub fn element_type(&self) -> ValueType {
        self.element_type
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn fixed(&self, index: usize, ty: ValueType) -> Option<&'a [u8]> {
        if self.element_type != ty || index >= self.len {
            return None;
        }
        let size = ty.fixed_size()?;
        self.bytes.get(index * size..index * size + size)
    }

    /// Element `index` of an f32 array.
    pub fn get_f32(&self, index: usize) -> Option<f32> {
        let b = self.fixed(index, ValueType::F32)?;
        Some(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Element `index` of an i32 array.
    pub fn get_i32(&self, index: usize) -> Option<i32> {
        let b = self.fixed(index, ValueType::I32)?;
        Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Element `index` of a u32 array.
    pub fn get_u32(&self, index: usize) -> Option<u32> {
        let b = self.fixed(index, ValueType::U32)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Element `index` of any integer array, widened to i64 (u64 values above i64::MAX give
    /// `None`).
    pub fn get_int(&self, index: usize) -> Option<i64> {
        if index >= self.len {
            return None;
        }
        let size = self.element_type.fixed_size()?;
        let b = self.bytes.get(index * size..index * size + size)?;
        Some(match self.element_type {
            ValueType::U8 => b[0] as i64,
            ValueType::I8 => b[0] as i8 as i64,
            ValueType::U16 => u16::from_le_bytes([b[0], b[1]]) as i64,
            ValueType::I16 => i16::from_le_bytes([b[0], b[1]]) as i64,
            ValueType::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            ValueType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            ValueType::U64 => i64::try_from(u64::from_le_bytes(b.try_into().ok()?)).ok()?,
            ValueType::I64 => i64::from_le_bytes(b.try_into().ok()?),
            _ => return None,
        })
    }

    /// Iterator over the strings of a string array (empty for other element types).
    pub fn strings(&self) -> StringIter<'a> {
        StringIter {
            bytes: if self.element_type == ValueType::String {
                self.bytes
            } else {
                &[]
            },
            remaining: if self.element_type == ValueType::String {
                self.len
            } else {
                0
            },
        }
    }
}

/// Iterator over the strings of a validated string array.
#[derive(Clone, Debug)]
pub struct StringIter<'a> {
    bytes: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for StringIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.remaining == 0 {
            return None;
        }
        let len_bytes = self.bytes.get(..8)?;
        let len = usize::try_from(u64::from_le_bytes(len_bytes.try_into().ok()?)).ok()?;
        let s = self.bytes.get(8..8usize.checked_add(len)?)?;
        self.bytes = &self.bytes[8 + len..];
        self.remaining -= 1;
        // Validated at parse time; a failure here would mean the view was not built by the
        // parser, and ends the iteration instead of panicking.
        core::str::from_utf8(s).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// A metadata value, borrowing strings and arrays from the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// u8
    U8(u8),
    /// i8
    I8(i8),
    /// u16
    U16(u16),
    /// i16
    I16(i16),
    /// u32
    U32(u32),
    /// i32
    I32(i32),
    /// f32
    F32(f32),
    /// bool
    Bool(bool),
    /// string
    String(&'a str),
    /// array
    Array(Array<'a>),
    /// u64
    U64(u64),
    /// i64
    I64(i64),
    /// f64
    F64(f64),
}

impl<'a> Value<'a> {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer value as i128 (lossless for every GGUF integer type).
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v as i128,
            Value::I8(v) => v as i128,
            Value::U16(v) => v as i128,
            Value::I16(v) => v as i128,
            Value::U32(v) => v as i128,
            Value::I32(v) => v as i128,
            Value::U64(v) => v as i128,
            Value::I64(v) => v as i128,
            _ => return None,
        })
    }
}

/// One tensor: name, type, shape and its bytes in the file (validated: whole blocks, in
/// bounds, aligned).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorInfo<'a> {
    /// The tensor's name (e.g. `blk.0.attn_q.weight`).
    pub name: &'a str,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Number of dimensions (1..=4).
    pub n_dims: usize,
    /// Dimensions in ggml order: `dims[0]` is contiguous (the row length of a matrix);
    /// unused dimensions are 1.
    pub dims: [usize; limits::MAX_TENSOR_DIMS],
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// The tensor's bytes, borrowed from the file.
    pub data: &'a [u8],
}

impl<'a> TensorInfo<'a> {
    /// Total number of elements.
    pub fn elements(&self) -> usize {
        self.dims.iter().product()
    }

    /// Number of rows (product of all dimensions but the first).
    pub fn rows(&self) -> usize {
        self.dims[1..].iter().product()
    }

    /// Row length (the contiguous dimension).
    pub fn row_len(&self) -> usize {
        self.dims[0]
    }
}

/// A parsed GGUF file: header fields, metadata and tensor table, all borrowing the file.
#[derive(Clone, Debug)]
pub struct Gguf<'a> {
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Data-section alignment (`general.alignment` or 32).
    pub alignment: u64,
    /// File offset of the data section.
    pub data_offset: u64,
    metadata: Vec<(&'a str, Value<'a>)>,
    tensors: Vec<TensorInfo<'a>>,
}

/// Bounds-checked little-endian reader over the file.
struct Cursor<'a> {
    file: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, section: &dyn Fn() -> Section) -> Result<&'a [u8], GgufError> {
        let truncated = || GgufError::Truncated {
            section: section(),
            offset: self.pos as u64,
            needed: n,
        };
        let n_usize = usize::try_from(n).map_err(|_| truncated())?;
        let end = self.pos.checked_add(n_usize).ok_or_else(truncated)?;
        let bytes = self.file.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(
        &mut self,
        section: &dyn Fn() -> Section,
    ) -> Result<[u8; N], GgufError> {
        let b = self.take(N as u64, section)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn u32(&mut self, section: &dyn Fn() -> Section) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(section)?))
    }

    fn u64(&mut self, section: &dyn Fn() -> Section) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(section)?))
    }

    fn string(
        &mut self,
        max_len: u64,
        section: &dyn Fn() -> Section,
    ) -> Result<&'a str, GgufError> {
        let len = self.u64(section)?;
        if len > max_len {
            return Err(GgufError::StringTooLong {
                section: section(),
                len,
            });
        }
        let offset = self.pos as u64;
        let bytes = self.take(len, section)?;
        core::str::from_utf8(bytes).map_err(|_| GgufError::InvalidUtf8 {
            section: section(),
            offset,
        })
    }

    fn value(&mut self, ty: ValueType, key: &str) -> Result<Value<'a>, GgufError> {
        let section = || Section::MetadataValue {
            key: key.to_string(),
        };
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(&section)?[0]),
            ValueType::I8 => Value::I8(self.array::<1>(&section)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(&section)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(&section)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(&section)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(&section)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(&section)?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(&section)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(&section)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(&section)?)),
            ValueType::Bool => match self.array::<1>(&section)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => {
                    return Err(GgufError::InvalidBool {
                        key: key.to_string(),
                    })
                }
            },
            ValueType::String => Value::String(self.string(limits::MAX_STRING_LEN, &section)?),
            ValueType::Array => {
                let type_id = self.u32(&section)?;
                let element_type =
                    ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
                        key: key.to_string(),
                        type_id,
                    })?;
                if element_type == ValueType::Array {
                    return Err(GgufError::NestedArray {
                        key: key.to_string(),
                    });
                }
                let len = self.u64(&section)?;
                if len > limits::MAX_ARRAY_LEN {
                    return Err(GgufError::ArrayTooLong {
                        key: key.to_string(),
                        len,
                    });
                }
                let start = self.pos;
                match element_type.fixed_size() {
                    Some(size) => {
                        // len <= 4 Mi and size <= 8: no overflow.
                        let bytes = self.take(len * size as u64, &section)?;
                        if element_type == ValueType::Bool && bytes.iter().any(|&b| b > 1) {
                            return Err(GgufError::InvalidBool {
                                key: key.to_string(),
                            });
                        }
                    }
                    None => {
                        for _ in 0..len {
                            self.string(limits::MAX_STRING_LEN, &section)?;
                        }
                    }
                }
                Value::Array(Array {
                    element_type,
                    len: len as usize,
                    bytes: &self.file[start..self.pos],
                })
            }
        })
    }
}

impl<'a> Gguf<'a> {
    /// Parses and validates a whole GGUF file in place. Only the metadata and tensor tables are
    /// allocated (a few KiB); tensor data is borrowed.
    pub fn parse(file: &'a [u8]) -> Result<Gguf<'a>, GgufError> {
        let mut cur = Cursor { file, pos: 0 };
        let header = || Section::Header;
        let magic = cur.u32(&header)?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = cur.u32(&header)?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion { version });
        }
        let tensor_count = cur.u64(&header)?;
        let metadata_count = cur.u64(&header)?;
        if tensor_count > limits::MAX_TENSORS {
            return Err(GgufError::TooMany {
                what: "tensors",
                count: tensor_count,
                limit: limits::MAX_TENSORS,
            });
        }
        if metadata_count > limits::MAX_METADATA_KEYS {
            return Err(GgufError::TooMany {
                what: "metadata keys",
                count: metadata_count,
                limit: limits::MAX_METADATA_KEYS,
            });
        }

        // Each metadata entry takes at least 8 (key length) + 4 (type) + 1 bytes: never
        // reserve more entries than the file could hold.
        let remaining = (file.len() - cur.pos) as u64;
        let mut metadata: Vec<(&'a str, Value<'a>)> =
            Vec::with_capacity(metadata_count.min(remaining / 13) as usize);
        for index in 0..metadata_count {
            let key = cur.string(limits::MAX_STRING_LEN, &|| Section::MetadataKey { index })?;
            let type_id = cur.u32(&|| Section::MetadataValue {
                key: key.to_string(),
            })?;
            let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
                key: key.to_string(),
                type_id,
            })?;
            let value = cur.value(ty, key)?;
            metadata.push((key, value));
        }
        // Sorted by key: duplicate detection here, binary search in the accessors.
        metadata.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(w) = metadata.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(GgufError::DuplicateKey {
                key: w[0].0.to_string(),
            });
        }

        let alignment = match metadata
            .binary_search_by(|(k, _)| (*k).cmp("general.alignment"))
            .ok()
            .map(|i| metadata[i].1)
        {
            None => DEFAULT_ALIGNMENT,
            Some(v) => {
                let a = v.as_integer().unwrap_or(0);
                let a = u64::try_from(a).unwrap_or(0);
                if a == 0 || !a.is_power_of_two() || a > limits::MAX_ALIGNMENT {
                    return Err(GgufError::BadAlignment { value: a });
                }
                a
            }
        };

        // Tensor infos: at least 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 + 8 bytes.
        struct RawTensor<'a> {
            name: &'a str,
            ggml_type: GgmlType,
            n_dims: usize,
            dims: [usize; limits::MAX_TENSOR_DIMS],
            offset: u64,
            size: u64,
        }
        let remaining = (file.len() - cur.pos) as u64;
        let mut raw: Vec<RawTensor<'a>> =
            Vec::with_capacity(tensor_count.min(remaining / 32) as usize);
        for index in 0..tensor_count {
            let section = || Section::TensorInfo { index };
            let name = cur.string(limits::MAX_TENSOR_NAME_LEN, &section)?;
            let n_dims = cur.u32(&section)?;
            if n_dims == 0 || n_dims as usize > limits::MAX_TENSOR_DIMS {
                return Err(GgufError::BadDimensionCount {
                    name: name.to_string(),
                    n_dims,
                });
            }
            let mut dims64 = [1u64; limits::MAX_TENSOR_DIMS];
            for d in dims64.iter_mut().take(n_dims as usize) {
                *d = cur.u64(&section)?;
            }
            let type_id = cur.u32(&section)?;
            let offset = cur.u64(&section)?;
            let ggml_type =
                GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnsupportedTensorType {
                    name: name.to_string(),
                    type_id,
                })?;
            let bad_shape = || GgufError::BadShape {
                name: name.to_string(),
                dims: dims64[..n_dims as usize].to_vec(),
                ggml_type,
            };
            let mut elements: u64 = 1;
            for &d in &dims64 {
                if d == 0 {
                    return Err(bad_shape());
                }
                elements = elements
                    .checked_mul(d)
                    .filter(|&e| e <= limits::MAX_TENSOR_ELEMENTS)
                    .ok_or_else(bad_shape)?;
            }
            let block = ggml_type.block_size() as u64;
            if dims64[0] % block != 0 {
                return Err(bad_shape());
            }
            // elements <= 2^40 and type_size <= 210: no overflow.
            let size = elements / block * ggml_type.type_size() as u64;
            let mut dims = [1usize; limits::MAX_TENSOR_DIMS];
            for (d, &d64) in dims.iter_mut().zip(dims64.iter()) {
                *d = usize::try_from(d64).map_err(|_| bad_shape())?;
            }
            if offset % alignment != 0 {
                return Err(GgufError::MisalignedTensor {
                    name: name.to_string(),
                    offset,
                    alignment,
                });
            }
            raw.push(RawTensor {
                name,
                ggml_type,
                n_dims: n_dims as usize,
                dims,
                offset,
                size,
            });
        }

        // The data section starts at the next multiple of the alignment.
        let end_of_tables = cur.pos as u64;
        let data_offset = end_of_tables.div_ceil(alignment) * alignment;
        let data: &'a [u8] = file.get(data_offset as usize..).unwrap_or(&[]);
        let data_len = data.len() as u64;

        let mut tensors: Vec<TensorInfo<'a>> = Vec::with_capacity(raw.len());
        for t in &raw {
            let end = t
                .offset
                .checked_add(t.size)
                .filter(|&e| e <= data_len && data_offset <= file.len() as u64);
            let Some(end) = end else {
                return Err(GgufError::TruncatedTensor {
                    name: t.name.to_string(),
                    offset: t.offset,
                    size: t.size,
                    data_len,
                });
            };
            tensors.push(TensorInfo {
                name: t.name,
                ggml_type: t.ggml_type,
                n_dims: t.n_dims,
                dims: t.dims,
                offset: t.offset,
                data: &data[t.offset as usize..end as usize],
            });
        }

        // No two tensors may share bytes (a crafted file could alias weights otherwise).
        let mut by_offset: Vec<(u64, u64, usize)> = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.offset, t.offset + t.data.len() as u64, i))
            .collect();
        by_offset.sort_unstable();
        for w in by_offset.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(GgufError::OverlappingTensors {
                    first: tensors[w[0].2].name.to_string(),
                    second: tensors[w[1].2].name.to_string(),
                });
            }
        }
        // Names are unique; the table is kept in file order, lookups use a sorted index copy
        // check only here (tensor lookups happen once at load, a linear scan is fine).
        let mut names: Vec<&str> = tensors.iter().map(|t| t.name).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(GgufError::DuplicateTensor {
                name: w[0].to_string(),
            });
        }

        Ok(Gguf {
            version,
            alignment,
            data_offset,
            metadata,
            tensors,
        })
    }

    /// All metadata entries, sorted by key.
    pub fn metadata(&self) -> &[(&'a str, Value<'a>)] {
        &self.metadata
    }

    /// All tensors, in file order.
    pub fn tensors(&self) -> &[TensorInfo<'a>] {
        &self.tensors
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.metadata
            .binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| self.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<Value<'a>, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })
    }

    fn wrong(key: &str, expected: &'static str, found: &Value<'_>) -> GgufError {
        GgufError::WrongType {
            key: key.to_string(),
            expected,
            found: found.value_type(),
        }
    }

    /// An integer key as u32 (any GGUF integer type whose value fits).
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        let v = self.require(key)?;
        v.as_integer()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| Self::wrong(key, "u32", &v))
    }

    /// An integer key as u64 (any GGUF integer type whose value fits).
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| Self::wrong(key, "u64", &v))
    }

    /// An integer key as i32 (any GGUF integer type whose value fits).
    pub fn get_i32(&self, key: &str) -> Result<i32, GgufError> {
        let v = self.require(key)?;
        v.as_integer()
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| Self::wrong(key, "i32", &v))
    }

    /// A float key as f32 (f32, or f64 narrowed).
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        match self.require(key)? {
            Value::F32(x) => Ok(x),
            Value::F64(x) => Ok(x as f32),
            v => Err(Self::wrong(key, "f32", &v)),
        }
    }

    /// A bool key.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match self.require(key)? {
            Value::Bool(b) => Ok(b),
            v => Err(Self::wrong(key, "bool", &v)),
        }
    }

    /// A string key, borrowed from the file.
    pub fn get_str(&self, key: &str) -> Result<&'a str, GgufError> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            v => Err(Self::wrong(key, "string", &v)),
        }
    }

    /// An array key of any element type.
    pub fn get_array(&self, key: &str) -> Result<Array<'a>, GgufError> {
        match self.require(key)? {
            Value::Array(a) => Ok(a),
            v => Err(Self::wrong(key, "array", &v)),
        }
    }

    fn typed_array(
        &self,
        key: &str,
        ty: ValueType,
        expected: &'static str,
    ) -> Result<Array<'a>, GgufError> {
        let a = self.get_array(key)?;
        if a.element_type() != ty {
            return Err(GgufError::WrongType {
                key: key.to_string(),
                expected,
                found: a.element_type(),
            });
        }
        Ok(a)
    }

    /// A string array key (e.g. `tokenizer.ggml.tokens`): its length and an iterator over it.
    pub fn get_array_str(&self, key: &str) -> Result<StringIter<'a>, GgufError> {
        Ok(self
            .typed_array(key, ValueType::String, "array of string")?
            .strings())
    }

    /// An f32 array key (e.g. `tokenizer.ggml.scores`), indexed with [`Array::get_f32`].
    pub fn get_array_f32(&self, key: &str) -> Result<Array<'a>, GgufError> {
        self.typed_array(key, ValueType::F32, "array of f32")
    }

    /// An i32 array key (e.g. `tokenizer.ggml.token_type`), indexed with [`Array::get_i32`].
    pub fn get_array_i32(&self, key: &str) -> Result<Array<'a>, GgufError> {
        self.typed_array(key, ValueType::I32, "array of i32")
    }

    /// The tensor named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor named `name`, or [`GgufError::MissingTensor`].
    pub fn require_tensor(&self, name: &str) -> Result<&TensorInfo<'a>, GgufError> {
        self.tensor(name).ok_or_else(|| GgufError::MissingTensor {
            name: name.to_string(),
        })
    }
}

/// Writes GGUF files (tests, fuzz seeds and the synthesizer). Host-side helper kept beside the
/// parser so the two share one definition of the format.
pub mod writer {
    use super::*;

    /// A metadata value to write.
    #[derive(Clone, Debug, PartialEq)]
    pub enum WValue {
        /// u8
        U8(u8),
        /// i8
        I8(i8),
        /// u16
        U16(u16),
        /// i16
        I16(i16),
        /// u32
        U32(u32),
        /// i32
        I32(i32),
        /// f32
        F32(f32),
        /// bool
        Bool(bool),
        /// string
        Str(String),
        /// u64
        U64(u64),
        /// i64
        I64(i64),
        /// f64
        F64(f64),
        /// array of strings
        ArrStr(Vec<String>),
        /// array of f32
        ArrF32(Vec<f32>),
        /// array of i32
        ArrI32(Vec<i32>),
        /// array of u32
        ArrU32(Vec<u32>),
    }

    /// A tensor to write: name, dims (ggml order), type and raw block bytes.
    #[derive(Clone, Debug)]
    pub struct WTensor {
        /// Name.
        pub name: String,
        /// Dimensions, ggml order.
        pub dims: Vec<u64>,
        /// Type.
        pub ggml_type: GgmlType,
        /// Raw bytes (must match dims and type).
        pub data: Vec<u8>,
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    fn put_value(out: &mut Vec<u8>, v: &WValue) {
        let u32le = |out: &mut Vec<u8>, x: u32| out.extend_from_slice(&x.to_le_bytes());
        match v {
            WValue::U8(x) => {
                u32le(out, 0);
                out.push(*x)
            }
            WValue::I8(x) => {
                u32le(out, 1);
                out.push(*x as u8)
            }
            WValue::U16(x) => {
                u32le(out, 2);
                out.extend_from_slice(&x.to_le_bytes())
            }
            WValue::I16(x) => {
                u32le(out, 3);
                out.extend_from_slice(&x.to_le_bytes())
            }
            WValue::U32(x) => {
                u32le(out, 4);
                out.extend_from_slice(&x.to_le_bytes())
            }
            WValue::I32(x) => {
                u32le(out, 5);
                out.extend_from_slice(&x.to_le_bytes())
            }
            WValue::F32(x) => {
                u32le(out, 6);
                out.extend_from_slice(&x.to_le_bytes())
            }
            WValue::Bool(x) => {
                u32le(out, 7);
                out.push(*x as u8)
            }
            WValue::Str(s) => {
                u32le(out, 8);
                put_str(out, s)
            }
            WValue::U64(x) => {
                u32le(out, 10);
                out.extend_from_slice(&x.to_le_bytes())
            }
            WValue::I64(x) => {
                u32le(out, 11);
                out.extend_from_slice(&x.to_le_bytes())
            }
            WValue::F64(x) => {
                u32le(out, 12);
                out.extend_from_slice(&x.to_le_bytes())
            }
            WValue::ArrStr(a) => {
                u32le(out, 9);
                u32le(out, 8);
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for s in a {
                    put_str(out, s);
                }
            }
            WValue::ArrF32(a) => {
                u32le(out, 9);
                u32le(out, 6);
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for x in a {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            WValue::ArrI32(a) => {
                u32le(out, 9);
                u32le(out, 5);
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for x in a {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            WValue::ArrU32(a) => {
                u32le(out, 9);
                u32le(out, 4);
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for x in a {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
    }

    /// Serialises a GGUF v3 file with alignment 32 (or `general.alignment` if given as u32).
    pub fn write(metadata: &[(String, WValue)], tensors: &[WTensor]) -> Vec<u8> {
        let alignment = metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| {
                if let WValue::U32(a) = v {
                    Some(*a as usize)
                } else {
                    None
                }
            })
            .unwrap_or(DEFAULT_ALIGNMENT as usize);
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (k, v) in metadata {
            put_str(&mut out, k);
            put_value(&mut out, v);
        }
        let mut offset = 0usize;
        let mut offsets = Vec::with_capacity(tensors.len());
        for t in tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            out.extend_from_slice(&(offset as u64).to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.data.len()).div_ceil(alignment) * alignment;
        }
        let pad = out.len().div_ceil(alignment) * alignment;
        out.resize(pad, 0);
        let data_start = out.len();
        for (t, off) in tensors.iter().zip(offsets) {
            out.resize(data_start + off, 0);
            out.extend_from_slice(&t.data);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::writer::*;
    use super::*;
    use alloc::vec;

    fn sample() -> Vec<u8> {
        let md = vec![
            (
                "general.architecture".to_string(),
                WValue::Str("llama".into()),
            ),
            ("llama.block_count".to_string(), WValue::U32(2)),
            ("llama.rope.freq_base".to_string(), WValue::F32(10000.0)),
            ("some.i8".to_string(), WValue::I8(-3)),
            ("some.u64".to_string(), WValue::U64(1 << 40)),
            ("some.bool".to_string(), WValue::Bool(true)),
            ("some.f64".to_string(), WValue::F64(0.5)),
            (
                "tokenizer.ggml.tokens".to_string(),
                WValue::ArrStr(vec!["<s>".into(), "é".into(), "".into()]),
            ),
            (
                "tokenizer.ggml.scores".to_string(),
                WValue::ArrF32(vec![0.0, -1.5, 2.0]),
            ),
            (
                "tokenizer.ggml.token_type".to_string(),
                WValue::ArrI32(vec![3, 1, 6]),
            ),
        ];
        let tensors = vec![
            WTensor {
                name: "a".into(),
                dims: vec![4, 2],
                ggml_type: GgmlType::F32,
                data: (0..8u32).flat_map(|i| (i as f32).to_le_bytes()).collect(),
            },
            WTensor {
                name: "b".into(),
                dims: vec![32, 3],
                ggml_type: GgmlType::Q8_0,
                data: vec![7u8; 3 * 34],
            },
        ];
        write(&md, &tensors)
    }

    #[test]
    fn parses_metadata_and_tensors() {
        let file = sample();
        let g = Gguf::parse(&file).expect("valid file");
        assert_eq!(g.version, 3);
        assert_eq!(g.alignment, 32);
        assert_eq!(g.data_offset % 32, 0);
        assert_eq!(g.get_str("general.architecture").unwrap(), "llama");
        assert_eq!(g.get_u32("llama.block_count").unwrap(), 2);
        assert_eq!(g.get_f32("llama.rope.freq_base").unwrap(), 10000.0);
        assert_eq!(g.get_i32("some.i8").unwrap(), -3);
        assert_eq!(g.get_u64("some.u64").unwrap(), 1 << 40);
        assert!(g.get_bool("some.bool").unwrap());
        assert_eq!(g.get_f32("some.f64").unwrap(), 0.5);
        let toks: Vec<&str> = g.get_array_str("tokenizer.ggml.tokens").unwrap().collect();
        assert_eq!(toks, vec!["<s>", "é", ""]);
        let scores = g.get_array_f32("tokenizer.ggml.scores").unwrap();
        assert_eq!(scores.len(), 3);
        assert_eq!(scores.get_f32(1), Some(-1.5));
        assert_eq!(scores.get_f32(3), None);
        let tt = g.get_array_i32("tokenizer.ggml.token_type").unwrap();
        assert_eq!(tt.get_i32(2), Some(6));
        assert_eq!(tt.get_int(0), Some(3));
        let a = g.require_tensor("a").unwrap();
        assert_eq!(a.ggml_type, GgmlType::F32);
        assert_eq!((a.row_len(), a.rows()), (4, 2));
        assert_eq!(&a.data[4..8], &1.0f32.to_le_bytes());
        let b = g.require_tensor("b").unwrap();
        assert_eq!(b.data.len(), 102);
        assert_eq!(b.offset % 32, 0);
        assert!(b.data.iter().all(|&x| x == 7));
    }

    #[test]
    fn typed_accessor_errors_name_the_key() {
        let file = sample();
        let g = Gguf::parse(&file).unwrap();
        assert_eq!(
            g.get_u32("nope"),
            Err(GgufError::MissingKey { key: "nope".into() })
        );
        assert_eq!(
            g.get_u32("general.architecture"),
            Err(GgufError::WrongType {
                key: "general.architecture".into(),
                expected: "u32",
                found: ValueType::String
            })
        );
        assert!(matches!(
            g.get_u32("some.i8"),
            Err(GgufError::WrongType { .. })
        ));
        assert!(matches!(
            g.get_array_str("tokenizer.ggml.scores"),
            Err(GgufError::WrongType { .. })
        ));
        assert_eq!(
            g.require_tensor("c").unwrap_err(),
            GgufError::MissingTensor { name: "c".into() }
        );
        let msg = alloc::format!("{}", g.get_u32("general.architecture").unwrap_err());
        assert!(msg.contains("general.architecture"), "{msg}");
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let file = sample();
        let full = Gguf::parse(&file).unwrap();
        let last_tensor_end = full
            .tensors()
            .iter()
            .map(|t| full.data_offset as usize + t.offset as usize + t.data.len())
            .max()
            .unwrap();
        for len in 0..last_tensor_end {
            let err = Gguf::parse(&file[..len]).expect_err("truncated file must fail");
            match err {
                GgufError::Truncated { .. } | GgufError::TruncatedTensor { .. } => {}
                other => panic!("len {len}: unexpected {other:?}"),
            }
        }
        assert!(Gguf::parse(&file[..last_tensor_end]).is_ok());
    }

    #[test]
    fn truncated_tensor_names_the_tensor() {
        let file = sample();
        let err = Gguf::parse(&file[..file.len() - 1]).unwrap_err();
        match err {
            GgufError::TruncatedTensor { name, size, .. } => {
                assert_eq!(name, "b");
                assert_eq!(size, 102);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bit_flips_never_panic() {
        let file = sample();
        let mut copy = file.clone();
        // Every single-bit flip of the header and tables (the data bytes are opaque).
        let tables = Gguf::parse(&file).unwrap().data_offset as usize;
        for byte in 0..tables {
            for bit in 0..8 {
                copy[byte] ^= 1 << bit;
                let _ = Gguf::parse(&copy);
                copy[byte] ^= 1 << bit;
            }
        }
    }

    #[test]
    fn header_errors() {
        let mut file = sample();
        file[0] = b'X';
        assert!(matches!(
            Gguf::parse(&file),
            Err(GgufError::BadMagic { .. })
        ));
        let mut file = sample();
        file[4] = 1;
        assert_eq!(
            Gguf::parse(&file).unwrap_err(),
            GgufError::UnsupportedVersion { version: 1 }
        );
        let mut file = sample();
        file[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            Gguf::parse(&file),
            Err(GgufError::TooMany {
                what: "tensors",
                ..
            })
        ));
        let mut file = sample();
        // Declares more metadata than the file holds: must be a truncation, not an allocation
        // of the declared count.
        file[16..24].copy_from_slice(&60_000u64.to_le_bytes());
        assert!(Gguf::parse(&file).is_err());
    }

    #[test]
    fn tensor_checks() {
        let mk = |tensors: Vec<WTensor>, md: Vec<(String, WValue)>| write(&md, &tensors);
        let t = |name: &str, dims: Vec<u64>, ty: GgmlType, n: usize| WTensor {
            name: name.into(),
            dims,
            ggml_type: ty,
            data: vec![0; n],
        };
        // Row not a whole number of blocks.
        let f = mk(vec![t("x", vec![16, 2], GgmlType::Q4_0, 36)], vec![]);
        assert!(matches!(Gguf::parse(&f), Err(GgufError::BadShape { name, .. }) if name == "x"));
        // Zero dimension.
        let f = mk(vec![t("z", vec![0], GgmlType::F32, 0)], vec![]);
        assert!(matches!(Gguf::parse(&f), Err(GgufError::BadShape { .. })));
        // Duplicate names.
        let f = mk(
            vec![
                t("d", vec![1], GgmlType::F32, 4),
                t("d", vec![1], GgmlType::F32, 4),
            ],
            vec![],
        );
        assert_eq!(
            Gguf::parse(&f).unwrap_err(),
            GgufError::DuplicateTensor { name: "d".into() }
        );
        // Bad alignment value.
        let f = mk(vec![], vec![("general.alignment".into(), WValue::U32(3))]);
        assert_eq!(
            Gguf::parse(&f).unwrap_err(),
            GgufError::BadAlignment { value: 3 }
        );
        // A custom alignment is honoured.
        let f = mk(
            vec![
                t("p", vec![1], GgmlType::F32, 4),
                t("q", vec![1], GgmlType::F32, 4),
            ],
            vec![("general.alignment".into(), WValue::U32(64))],
        );
        let g = Gguf::parse(&f).unwrap();
        assert_eq!(g.alignment, 64);
        assert_eq!(g.require_tensor("q").unwrap().offset, 64);
        // Unsupported type (Q5_K = 13): patch the type id of the only tensor.
        let mut f = mk(vec![t("u", vec![256], GgmlType::Q4_K, 144)], vec![]);
        let pos = 24 + 8 + 1 + 4 + 8; // header, name, n_dims, dim
        f[pos..pos + 4].copy_from_slice(&13u32.to_le_bytes());
        assert_eq!(
            Gguf::parse(&f).unwrap_err(),
            GgufError::UnsupportedTensorType {
                name: "u".into(),
                type_id: 13
            }
        );
        // Overlap: patch the second tensor's offset to 0.
        let mut f = mk(
            vec![
                t("o1", vec![8], GgmlType::F32, 32),
                t("o2", vec![8], GgmlType::F32, 32),
            ],
            vec![],
        );
        let second_info = 24 + (8 + 2 + 4 + 8 + 4 + 8);
        let off_pos = second_info + 8 + 2 + 4 + 8 + 4;
        assert_eq!(&f[off_pos..off_pos + 8], &32u64.to_le_bytes());
        f[off_pos..off_pos + 8].copy_from_slice(&0u64.to_le_bytes());
        assert!(matches!(
            Gguf::parse(&f),
            Err(GgufError::OverlappingTensors { .. })
        ));
        // Misaligned offset.
        f[off_pos..off_pos + 8].copy_from_slice(&4u64.to_le_bytes());
        assert!(matches!(
            Gguf::parse(&f),
            Err(GgufError::MisalignedTensor { .. })
        ));
    }

    #[test]
    fn metadata_checks() {
        let f = write(
            &[("k".into(), WValue::U8(1)), ("k".into(), WValue::U8(2))],
            &[],
        );
        assert_eq!(
            Gguf::parse(&f).unwrap_err(),
            GgufError::DuplicateKey { key: "k".into() }
        );
        let mut f = write(&[("k".into(), WValue::Bool(true))], &[]);
        let last = 24 + 8 + 1 + 4;
        f[last] = 2;
        assert_eq!(
            Gguf::parse(&f).unwrap_err(),
            GgufError::InvalidBool { key: "k".into() }
        );
        let mut f = write(&[("k".into(), WValue::Str("ab".into()))], &[]);
        let s = 24 + 8 + 1 + 4 + 8;
        f[s] = 0xff;
        assert!(matches!(
            Gguf::parse(&f),
            Err(GgufError::InvalidUtf8 { .. })
        ));
        let mut f = write(&[("k".into(), WValue::U8(0))], &[]);
        f[24 + 8 + 1] = 99;
        assert_eq!(
            Gguf::parse(&f).unwrap_err(),
            GgufError::UnknownValueType {
                key: "k".into(),
                type_id: 99
            }
        );
    }
}
