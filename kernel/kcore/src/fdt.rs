//! A small checked reader for flattened device trees (FDT / DTB, devicetree spec v0.4 ch. 5).
//!
//! Why our own: `fdt` 0.1.5 panics on the QEMU `raspi4b` tree (it has NOP tokens where QEMU
//! removed nodes), and the kernel must not panic on any blob a firmware hands it. The format is
//! small: a 40-byte header, a memory-reservation block of (address, size) pairs, a structure block
//! of 4-byte-aligned tokens, and a strings block of NUL-terminated property names. This reader
//! bounds-checks every offset against the blob and the header's block sizes, walks tokens with an
//! explicit iterator that stops at the first error, and turns every malformation into a
//! [`DtbError`] naming the offset. It never indexes without a check and never allocates.
//!
//! Interpretation (which node is the UART, how `ranges` translate) lives in
//! [`crate::device_tree`]; this file only knows the encoding.

/// FDT header magic (big-endian on the wire).
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Oldest structure version whose layout this reader understands (v16 adds nothing we need
/// beyond v17's `size_dt_struct`, which we tolerate being absent).
pub const FDT_LAST_COMPATIBLE_VERSION: u32 = 16;
const FDT_HEADER_LEN: usize = 40;

const TOKEN_BEGIN_NODE: u32 = 1;
const TOKEN_END_NODE: u32 = 2;
const TOKEN_PROP: u32 = 3;
const TOKEN_NOP: u32 = 4;
const TOKEN_END: u32 = 9;

/// Which block of the blob an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtbBlock {
    /// The 40-byte header.
    Header,
    /// The memory-reservation block.
    ReservationMap,
    /// The structure block (nodes and properties).
    Structure,
    /// The strings block (property names).
    Strings,
}

/// Why a device tree was rejected. Offsets are byte offsets into the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtbError {
    /// The blob is shorter than the header, or than the header's `totalsize`.
    Truncated { needed: usize, available: usize },
    /// The first word is not 0xd00dfeed.
    BadMagic { found: u32 },
    /// `last_comp_version` is newer than this reader understands.
    UnsupportedVersion { version: u32, last_compatible: u32 },
    /// A block lies (partly) outside the blob.
    BlockOutOfBounds {
        block: DtbBlock,
        offset: usize,
        size: usize,
    },
    /// An unknown token value in the structure block.
    UnknownToken { offset: usize, token: u32 },
    /// A node name or property runs past the end of the structure block.
    UnterminatedData { offset: usize },
    /// A property name offset points outside the strings block, or the name is unterminated.
    BadStringOffset { offset: usize, name_offset: u32 },
    /// Nodes nest deeper than [`crate::limits::MAX_DEVICE_TREE_DEPTH`].
    TooDeep { offset: usize },
    /// An END_NODE without a matching BEGIN_NODE, or END with nodes still open.
    Unbalanced { offset: usize },
    /// The structure block ended without an END token.
    MissingEnd,
    /// The structure block does not start with the root node.
    NoRootNode,
}

impl core::fmt::Display for DtbError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(f, "device tree truncated: needs {needed} bytes, {available} available")
            }
            Self::BadMagic { found } => write!(f, "device tree magic is {found:#010x}, not 0xd00dfeed"),
            Self::UnsupportedVersion { version, last_compatible } => write!(
                f,
                "device tree version {version} is not readable (needs last_comp_version <= {last_compatible})"
            ),
            Self::BlockOutOfBounds { block, offset, size } => {
                write!(f, "device tree {block:?} block at {offset:#x} (+{size:#x}) lies outside the blob")
            }
            Self::UnknownToken { offset, token } => {
                write!(f, "device tree token {token:#x} at offset {offset:#x} is unknown")
            }
            Self::UnterminatedData { offset } => {
                write!(f, "device tree data at offset {offset:#x} runs past the structure block")
            }
            Self::BadStringOffset { offset, name_offset } => {
                write!(f, "property at {offset:#x} names string offset {name_offset:#x} outside the strings block")
            }
            Self::TooDeep { offset } => write!(f, "device tree nests too deep at offset {offset:#x}"),
            Self::Unbalanced { offset } => write!(f, "device tree nodes unbalanced at offset {offset:#x}"),
            Self::MissingEnd => write!(f, "device tree structure block has no END token"),
            Self::NoRootNode => write!(f, "device tree structure block does not start with the root node"),
        }
    }
}

/// One token of the structure block, with borrowed name/value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// A node opens; `name` is its unit name without the NUL (empty for the root).
    BeginNode { name: &'a [u8] },
    /// The innermost open node closes.
    EndNode,
    /// A property of the innermost open node.
    Property { name: &'a [u8], value: &'a [u8] },
}

/// A validated view of a device tree blob.
#[derive(Debug, Clone, Copy)]
pub struct Fdt<'a> {
    blob: &'a [u8],
    structure: &'a [u8],
    structure_offset: usize,
    strings: &'a [u8],
    reservation_offset: usize,
}

fn read_be_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let word = bytes.get(offset..end)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

fn read_be_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let high = read_be_u32(bytes, offset)?;
    let low = read_be_u32(bytes, offset.checked_add(4)?)?;
    Some((u64::from(high) << 32) | u64::from(low))
}

fn align4(value: usize) -> Option<usize> {
    value.checked_add(3).map(|v| v & !3)
}

impl<'a> Fdt<'a> {
    /// Reads the header of `blob` and checks that every block lies inside it.
    pub fn new(blob: &'a [u8]) -> Result<Self, DtbError> {
        if blob.len() < FDT_HEADER_LEN {
            return Err(DtbError::Truncated {
                needed: FDT_HEADER_LEN,
                available: blob.len(),
            });
        }
        let field = |index: usize| read_be_u32(blob, index * 4).unwrap_or(0) as usize;
        let magic = field(0) as u32;
        if magic != FDT_MAGIC {
            return Err(DtbError::BadMagic { found: magic });
        }
        let total_size = field(1);
        if total_size > blob.len() || total_size < FDT_HEADER_LEN {
            return Err(DtbError::Truncated {
                needed: total_size.max(FDT_HEADER_LEN),
                available: blob.len(),
            });
        }
        let blob = &blob[..total_size];
        let structure_offset = field(2);
        let strings_offset = field(3);
        let reservation_offset = field(4);
        let last_compatible = field(6) as u32;
        if last_compatible > 17 {
            return Err(DtbError::UnsupportedVersion {
                version: last_compatible,
                last_compatible: 17,
            });
        }
        let strings_size = field(8);
        let version = field(5) as u32;
        // v16 trees have no size_dt_struct: the structure runs to the end of the blob.
        let structure_size = if version >= 17 {
            field(9)
        } else {
            total_size.saturating_sub(structure_offset)
        };
        let block = |block: DtbBlock, offset: usize, size: usize| -> Result<&'a [u8], DtbError> {
            offset
                .checked_add(size)
                .and_then(|end| blob.get(offset..end))
                .ok_or(DtbError::BlockOutOfBounds {
                    block,
                    offset,
                    size,
                })
        };
        let structure = block(DtbBlock::Structure, structure_offset, structure_size)?;
        let strings = block(DtbBlock::Strings, strings_offset, strings_size)?;
        if reservation_offset % 8 != 0 || reservation_offset >= total_size {
            return Err(DtbError::BlockOutOfBounds {
                block: DtbBlock::ReservationMap,
                offset: reservation_offset,
                size: 16,
            });
        }
        if structure_offset % 4 != 0 {
            return Err(DtbError::BlockOutOfBounds {
                block: DtbBlock::Structure,
                offset: structure_offset,
                size: structure_size,
            });
        }
        Ok(Self {
            blob,
            structure,
            structure_offset,
            strings,
            reservation_offset,
        })
    }

    /// The whole blob (`totalsize` bytes).
    pub fn blob(&self) -> &'a [u8] {
        self.blob
    }

    /// `totalsize` from the header: how many bytes to reserve for the tree.
    pub fn total_size(&self) -> usize {
        self.blob.len()
    }

    /// The `/memreserve/` entries: (address, size) pairs up to the terminating (0, 0) entry.
    /// An entry that would run past the blob ends the list with an error.
    pub fn reservations(&self) -> ReservationIter<'a> {
        ReservationIter {
            blob: self.blob,
            offset: self.reservation_offset,
            done: false,
        }
    }

    /// The structure block as a token stream. The iterator yields `Err` once and then stops.
    pub fn tokens(&self) -> TokenIter<'a> {
        TokenIter {
            structure: self.structure,
            base: self.structure_offset,
            strings: self.strings,
            offset: 0,
            depth: 0,
            finished: false,
        }
    }

    /// Walks the whole structure block once, checking balance and depth, so later users of the
    /// token stream may treat a clean walk as a well-formed tree.
    pub fn validate(&self) -> Result<(), DtbError> {
        let mut first = true;
        for token in self.tokens() {
            let token = token?;
            if first {
                if !matches!(token, Token::BeginNode { .. }) {
                    return Err(DtbError::NoRootNode);
                }
                first = false;
            }
        }
        if first {
            return Err(DtbError::NoRootNode);
        }
        Ok(())
    }
}

/// Iterator over the memory-reservation block.
#[derive(Debug, Clone)]
pub struct ReservationIter<'a> {
    blob: &'a [u8],
    offset: usize,
    done: bool,
}

impl Iterator for ReservationIter<'_> {
    type Item = Result<(u64, u64), DtbError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let entry = read_be_u64(self.blob, self.offset).zip(
            self.offset
                .checked_add(8)
                .and_then(|o| read_be_u64(self.blob, o)),
        );
        match entry {
            None => {
                self.done = true;
                Some(Err(DtbError::BlockOutOfBounds {
                    block: DtbBlock::ReservationMap,
                    offset: self.offset,
                    size: 16,
                }))
            }
            Some((0, 0)) => {
                self.done = true;
                None
            }
            Some(pair) => {
                self.offset = self.offset.saturating_add(16);
                Some(Ok(pair))
            }
        }
    }
}

/// Iterator over the tokens of the structure block (NOPs skipped).
#[derive(Debug, Clone)]
pub struct TokenIter<'a> {
    structure: &'a [u8],
    base: usize,
    strings: &'a [u8],
    offset: usize,
    depth: usize,
    finished: bool,
}

impl<'a> TokenIter<'a> {
    fn fail(&mut self, error: DtbError) -> Option<Result<Token<'a>, DtbError>> {
        self.finished = true;
        Some(Err(error))
    }

    fn string_at(&self, name_offset: u32) -> Option<&'a [u8]> {
        let rest = self.strings.get(name_offset as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(&rest[..end])
    }
}

impl<'a> Iterator for TokenIter<'a> {
    type Item = Result<Token<'a>, DtbError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.finished {
                return None;
            }
            let at = self.base.saturating_add(self.offset);
            let Some(token) = read_be_u32(self.structure, self.offset) else {
                return self.fail(DtbError::MissingEnd);
            };
            let after_token = self.offset + 4;
            match token {
                TOKEN_NOP => {
                    self.offset = after_token;
                }
                TOKEN_BEGIN_NODE => {
                    let rest = self.structure.get(after_token..).unwrap_or(&[]);
                    let Some(name_len) = rest.iter().position(|&b| b == 0) else {
                        return self.fail(DtbError::UnterminatedData { offset: at });
                    };
                    if self.depth >= crate::limits::MAX_DEVICE_TREE_DEPTH {
                        return self.fail(DtbError::TooDeep { offset: at });
                    }
                    if self.depth == 0 && self.offset != 0 && name_len == 0 {
                        // A second root after the first closed is malformed; caught by END below.
                    }
                    self.depth += 1;
                    let name = &rest[..name_len];
                    match align4(after_token + name_len + 1) {
                        Some(next) => self.offset = next,
                        None => return self.fail(DtbError::UnterminatedData { offset: at }),
                    }
                    return Some(Ok(Token::BeginNode { name }));
                }
                TOKEN_END_NODE => {
                    if self.depth == 0 {
                        return self.fail(DtbError::Unbalanced { offset: at });
                    }
                    self.depth -= 1;
                    self.offset = after_token;
                    return Some(Ok(Token::EndNode));
                }
                TOKEN_PROP => {
                    if self.depth == 0 {
                        return self.fail(DtbError::Unbalanced { offset: at });
                    }
                    let (Some(len), Some(name_offset)) = (
                        read_be_u32(self.structure, after_token),
                        read_be_u32(self.structure, after_token + 4),
                    ) else {
                        return self.fail(DtbError::UnterminatedData { offset: at });
                    };
                    let value_start = after_token + 8;
                    let Some(value) = value_start
                        .checked_add(len as usize)
                        .and_then(|end| self.structure.get(value_start..end))
                    else {
                        return self.fail(DtbError::UnterminatedData { offset: at });
                    };
                    let Some(name) = self.string_at(name_offset) else {
                        return self.fail(DtbError::BadStringOffset {
                            offset: at,
                            name_offset,
                        });
                    };
                    match align4(value_start + value.len()) {
                        Some(next) => self.offset = next,
                        None => return self.fail(DtbError::UnterminatedData { offset: at }),
                    }
                    return Some(Ok(Token::Property { name, value }));
                }
                TOKEN_END => {
                    self.finished = true;
                    if self.depth != 0 {
                        return Some(Err(DtbError::Unbalanced { offset: at }));
                    }
                    return None;
                }
                other => {
                    return self.fail(DtbError::UnknownToken {
                        offset: at,
                        token: other,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal blob from a structure block and strings block (for hand-made cases).
    pub(crate) fn build_blob(
        structure: &[u8],
        strings: &[u8],
        reservations: &[(u64, u64)],
    ) -> Vec<u8> {
        let reservation_offset = 40usize;
        let reservation_len = (reservations.len() + 1) * 16;
        let structure_offset = reservation_offset + reservation_len;
        let strings_offset = structure_offset + structure.len();
        let total = strings_offset + strings.len();
        let mut blob = Vec::new();
        for word in [
            FDT_MAGIC,
            total as u32,
            structure_offset as u32,
            strings_offset as u32,
            reservation_offset as u32,
            17,
            16,
            0,
            strings.len() as u32,
            structure.len() as u32,
        ] {
            blob.extend_from_slice(&word.to_be_bytes());
        }
        for (address, size) in reservations.iter().chain(core::iter::once(&(0, 0))) {
            blob.extend_from_slice(&address.to_be_bytes());
            blob.extend_from_slice(&size.to_be_bytes());
        }
        blob.extend_from_slice(structure);
        blob.extend_from_slice(strings);
        blob
    }

    /// A tiny structure-block writer for tests.
    #[derive(Default)]
    pub(crate) struct TreeWriter {
        pub structure: Vec<u8>,
        pub strings: Vec<u8>,
    }

    impl TreeWriter {
        pub fn begin(&mut self, name: &str) -> &mut Self {
            self.structure
                .extend_from_slice(&TOKEN_BEGIN_NODE.to_be_bytes());
            self.structure.extend_from_slice(name.as_bytes());
            self.structure.push(0);
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
            self
        }
        pub fn end(&mut self) -> &mut Self {
            self.structure
                .extend_from_slice(&TOKEN_END_NODE.to_be_bytes());
            self
        }
        pub fn nop(&mut self) -> &mut Self {
            self.structure.extend_from_slice(&TOKEN_NOP.to_be_bytes());
            self
        }
        pub fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let name_offset = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.structure.extend_from_slice(&TOKEN_PROP.to_be_bytes());
            self.structure
                .extend_from_slice(&(value.len() as u32).to_be_bytes());
            self.structure.extend_from_slice(&name_offset.to_be_bytes());
            self.structure.extend_from_slice(value);
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
            self
        }
        pub fn prop_cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
            let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
            self.prop(name, &bytes)
        }
        pub fn prop_str(&mut self, name: &str, text: &str) -> &mut Self {
            let mut bytes = text.as_bytes().to_vec();
            bytes.push(0);
            self.prop(name, &bytes)
        }
        pub fn finish(&mut self, reservations: &[(u64, u64)]) -> Vec<u8> {
            self.structure.extend_from_slice(&TOKEN_END.to_be_bytes());
            build_blob(&self.structure, &self.strings, reservations)
        }
    }

    #[test]
    fn walks_a_hand_made_tree_with_nops_and_reservations() {
        let mut writer = TreeWriter::default();
        writer
            .begin("")
            .nop()
            .prop_str("compatible", "test")
            .begin("child@1")
            .nop()
            .end()
            .end();
        let blob = writer.finish(&[(0x1000, 0x2000)]);
        let fdt = Fdt::new(&blob).unwrap();
        fdt.validate().unwrap();
        let tokens: Vec<_> = fdt.tokens().map(|t| t.unwrap()).collect();
        assert_eq!(tokens.len(), 5);
        assert_eq!(tokens[0], Token::BeginNode { name: b"" });
        assert_eq!(
            tokens[1],
            Token::Property {
                name: b"compatible",
                value: b"test\0"
            }
        );
        assert_eq!(tokens[2], Token::BeginNode { name: b"child@1" });
        let reservations: Vec<_> = fdt.reservations().map(|r| r.unwrap()).collect();
        assert_eq!(reservations, vec![(0x1000, 0x2000)]);
    }

    #[test]
    fn rejects_bad_magic_and_short_blobs() {
        assert!(matches!(
            Fdt::new(&[0u8; 10]),
            Err(DtbError::Truncated { .. })
        ));
        let mut blob = TreeWriter::default().begin("").end().finish(&[]);
        blob[0] = 0;
        assert!(matches!(Fdt::new(&blob), Err(DtbError::BadMagic { .. })));
    }

    #[test]
    fn rejects_unbalanced_and_unknown_tokens() {
        let mut writer = TreeWriter::default();
        writer.begin("").begin("a");
        let blob = writer.finish(&[]);
        assert!(matches!(
            Fdt::new(&blob).unwrap().validate(),
            Err(DtbError::Unbalanced { .. })
        ));

        let mut writer = TreeWriter::default();
        writer.begin("");
        writer.structure.extend_from_slice(&7u32.to_be_bytes());
        let blob = writer.finish(&[]);
        assert!(matches!(
            Fdt::new(&blob).unwrap().validate(),
            Err(DtbError::UnknownToken { token: 7, .. })
        ));
    }

    #[test]
    fn rejects_property_with_name_outside_strings() {
        let mut writer = TreeWriter::default();
        writer.begin("").prop("x", &[1, 2, 3, 4]).end();
        // Point the name offset far past the strings block.
        let name_offset_position = 4 + 4 + 4 + 4; // begin token + root name pad + prop token + len
        writer.structure[name_offset_position..name_offset_position + 4]
            .copy_from_slice(&0xffffu32.to_be_bytes());
        let blob = writer.finish(&[]);
        assert!(matches!(
            Fdt::new(&blob).unwrap().validate(),
            Err(DtbError::BadStringOffset { .. })
        ));
    }

    #[test]
    fn rejects_nesting_deeper_than_the_limit() {
        let mut writer = TreeWriter::default();
        for _ in 0..=crate::limits::MAX_DEVICE_TREE_DEPTH {
            writer.begin("n");
        }
        for _ in 0..=crate::limits::MAX_DEVICE_TREE_DEPTH {
            writer.end();
        }
        let blob = writer.finish(&[]);
        assert!(matches!(
            Fdt::new(&blob).unwrap().validate(),
            Err(DtbError::TooDeep { .. })
        ));
    }
}
