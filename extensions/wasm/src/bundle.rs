//! The bundle: named modules in one blob, the form in which the kernel receives its library
//! modules (embedded in the image or found in the initrd).
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic   "ANWB"                4 bytes
//! version u16 = 1               2 bytes
//! count   u16                   2 bytes
//! count × { name_len u8, name (ASCII [A-Za-z0-9_.-]), module_len u32, module bytes }
//! ```
//!
//! A flat, length-prefixed layout needs no alignment and parses in one bounds-checked pass;
//! modules are borrowed in place (no copy). Each module carries its own manifest, so the
//! bundle itself holds nothing but names and bytes.

use alloc::vec::Vec;
use core::fmt;

use crate::limits;

/// First bytes of a bundle.
pub const BUNDLE_MAGIC: &[u8; 4] = b"ANWB";
/// Format version this code reads and writes.
pub const BUNDLE_VERSION: u16 = 1;

/// One named module in a bundle, borrowed from the bundle bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleEntry<'a> {
    /// Module name.
    pub name: &'a str,
    /// Module binary (with its manifest section).
    pub module: &'a [u8],
}

/// Why a bundle was rejected, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub kind: BundleErrorKind,
}

/// What is wrong with a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleErrorKind {
    /// Not starting with `ANWB`.
    BadMagic,
    /// A version this code does not read.
    UnsupportedVersion(u16),
    /// More modules than `MAX_BUNDLE_MODULES`.
    TooManyModules(usize),
    /// The data ends inside an entry.
    Truncated,
    /// A name is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    BadName,
    /// Two entries with the same name.
    DuplicateName,
    /// A module larger than `MAX_MODULE_BYTES`.
    ModuleTooLarge(usize),
    /// Bytes after the last entry.
    TrailingBytes,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm bundle, byte {}: ", self.offset)?;
        match &self.kind {
            BundleErrorKind::BadMagic => write!(f, "not a bundle (magic is not ANWB)"),
            BundleErrorKind::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            BundleErrorKind::TooManyModules(n) => write!(f, "{n} modules, too many"),
            BundleErrorKind::Truncated => write!(f, "truncated"),
            BundleErrorKind::BadName => write!(f, "bad module name"),
            BundleErrorKind::DuplicateName => write!(f, "module name given twice"),
            BundleErrorKind::ModuleTooLarge(n) => write!(f, "module of {n} bytes, too large"),
            BundleErrorKind::TrailingBytes => write!(f, "bytes after the last module"),
        }
    }
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= limits::MAX_NAME_BYTES
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Parses a bundle; entries borrow from `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Vec<BundleEntry<'_>>, BundleError> {
    let fail = |offset, kind| Err(BundleError { offset, kind });
    let take = |pos: &mut usize, n: usize| -> Option<&[u8]> {
        let end = pos.checked_add(n)?;
        let slice = bytes.get(*pos..end)?;
        *pos = end;
        Some(slice)
    };
    let mut pos = 0;
    if take(&mut pos, 4) != Some(BUNDLE_MAGIC.as_slice()) {
        return fail(0, BundleErrorKind::BadMagic);
    }
    let Some(header) = take(&mut pos, 4) else {
        return fail(4, BundleErrorKind::Truncated);
    };
    let version = u16::from_le_bytes([header[0], header[1]]);
    if version != BUNDLE_VERSION {
        return fail(4, BundleErrorKind::UnsupportedVersion(version));
    }
    let count = usize::from(u16::from_le_bytes([header[2], header[3]]));
    if count > limits::MAX_BUNDLE_MODULES {
        return fail(6, BundleErrorKind::TooManyModules(count));
    }
    let mut entries: Vec<BundleEntry<'_>> = Vec::with_capacity(count);
    for _ in 0..count {
        let start = pos;
        let Some(&[name_len]) = take(&mut pos, 1) else {
            return fail(start, BundleErrorKind::Truncated);
        };
        let Some(name) = take(&mut pos, usize::from(name_len)) else {
            return fail(start, BundleErrorKind::Truncated);
        };
        if !valid_name(name) {
            return fail(start, BundleErrorKind::BadName);
        }
        // valid_name admits ASCII only, so this cannot fail.
        let Ok(name) = core::str::from_utf8(name) else {
            return fail(start, BundleErrorKind::BadName);
        };
        if entries.iter().any(|e| e.name == name) {
            return fail(start, BundleErrorKind::DuplicateName);
        }
        let Some(len) = take(&mut pos, 4) else {
            return fail(start, BundleErrorKind::Truncated);
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > limits::MAX_MODULE_BYTES {
            return fail(start, BundleErrorKind::ModuleTooLarge(len));
        }
        let Some(module) = take(&mut pos, len) else {
            return fail(start, BundleErrorKind::Truncated);
        };
        entries.push(BundleEntry { name, module });
    }
    if pos != bytes.len() {
        return fail(pos, BundleErrorKind::TrailingBytes);
    }
    Ok(entries)
}

/// Writes a bundle from `(name, module)` pairs, checking the same rules [`parse`] enforces.
pub fn encode(entries: &[BundleEntry<'_>]) -> Result<Vec<u8>, BundleError> {
    if entries.len() > limits::MAX_BUNDLE_MODULES {
        return Err(BundleError {
            offset: 6,
            kind: BundleErrorKind::TooManyModules(entries.len()),
        });
    }
    let mut out = Vec::new();
    out.extend_from_slice(BUNDLE_MAGIC);
    out.extend_from_slice(&BUNDLE_VERSION.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (i, e) in entries.iter().enumerate() {
        let offset = out.len();
        let err = |kind| BundleError { offset, kind };
        if !valid_name(e.name.as_bytes()) {
            return Err(err(BundleErrorKind::BadName));
        }
        if entries[..i].iter().any(|o| o.name == e.name) {
            return Err(err(BundleErrorKind::DuplicateName));
        }
        if e.module.len() > limits::MAX_MODULE_BYTES {
            return Err(err(BundleErrorKind::ModuleTooLarge(e.module.len())));
        }
        out.push(e.name.len() as u8);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&(e.module.len() as u32).to_le_bytes());
        out.extend_from_slice(e.module);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode(&[
            BundleEntry {
                name: "hello",
                module: b"\0asm\x01\0\0\0",
            },
            BundleEntry {
                name: "spin",
                module: b"xyz",
            },
        ])
        .unwrap()
    }

    #[test]
    fn round_trips() {
        let bytes = sample();
        let entries = parse(&bytes).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, "hello");
        assert_eq!(entries[1].module, b"xyz");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_bad_input_with_offsets() {
        let mut bytes = sample();
        bytes.push(0);
        assert_eq!(
            parse(&bytes).unwrap_err(),
            BundleError {
                offset: bytes.len() - 1,
                kind: BundleErrorKind::TrailingBytes
            }
        );
        assert_eq!(
            parse(b"ELF\0\0\0\0\0").unwrap_err().kind,
            BundleErrorKind::BadMagic
        );
        assert_eq!(
            parse(b"ANWB\x02\0\0\0").unwrap_err().kind,
            BundleErrorKind::UnsupportedVersion(2)
        );
        let mut bad_name = sample();
        bad_name[9] = b'/';
        assert_eq!(parse(&bad_name).unwrap_err().kind, BundleErrorKind::BadName);
        let dup = encode(&[
            BundleEntry {
                name: "a",
                module: b"",
            },
            BundleEntry {
                name: "a",
                module: b"",
            },
        ]);
        assert_eq!(dup.unwrap_err().kind, BundleErrorKind::DuplicateName);
        let mut huge = b"ANWB\x01\0\x01\0\x01a".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            parse(&huge).unwrap_err().kind,
            BundleErrorKind::ModuleTooLarge(u32::MAX as usize)
        );
    }
}
