//! ELF64 task images: a checked parse of the header and PT_LOAD segments, nothing more.
//!
//! Task images are static AArch64 executables linked by the workspace (ELF64, little-endian,
//! `ET_EXEC`, `EM_AARCH64`). The loader reads only what loading needs — the file header, the
//! program headers and the bytes of PT_LOAD segments — and checks every field before use:
//! all offsets and sizes with checked arithmetic against the file length, segments not
//! overlapping, no segment both writable and executable, the entry point inside an executable
//! segment, counts and sizes under [`crate::limits`]. A corrupt image yields an [`ElfError`]
//! naming the header and the field; nothing here can panic or read out of bounds (the tests
//! truncate and mutate images byte by byte to hold that).
//!
//! The result borrows the file: segment bytes are copied once, by the address-space builder,
//! straight into the task's frames.

use crate::limits::{MAX_IMAGE_MEMORY_BYTES, MAX_LOAD_SEGMENTS, MAX_PROGRAM_HEADERS};
use crate::usermem::Permissions;
use alloc::vec::Vec;

const HEADER_BYTES: usize = 64;
const PROGRAM_HEADER_BYTES: usize = 56;
const ELF_MAGIC: [u8; 4] = [0x7F, b'E', b'L', b'F'];
const CLASS_64: u8 = 2;
const DATA_LITTLE_ENDIAN: u8 = 1;
const VERSION_CURRENT: u8 = 1;
const TYPE_EXECUTABLE: u16 = 2;
/// `e_machine` of AArch64.
pub const MACHINE_AARCH64: u16 = 183;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// What is wrong with one program header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SegmentProblem {
    /// `p_filesz > p_memsz`.
    FileSizeExceedsMemorySize,
    /// `p_offset + p_filesz` overflows or passes the end of the file.
    DataOutsideFile,
    /// `p_vaddr + p_memsz` overflows.
    AddressOverflow,
    /// Both `PF_W` and `PF_X` (W^X).
    WritableAndExecutable,
    /// Neither readable, writable nor executable: a mapping nobody can use.
    NoAccess,
    /// Overlaps the PT_LOAD segment with this program-header index.
    Overlaps(usize),
    /// `p_memsz` is zero.
    Empty,
}

/// Why an image was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The file ends before a structure it must contain.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The first four bytes are not `\x7FELF`.
    BadMagic,
    /// Not ELFCLASS64.
    NotElf64,
    /// Not little-endian.
    NotLittleEndian,
    /// `EI_VERSION` or `e_version` is not 1.
    BadVersion,
    /// `e_type` is not `ET_EXEC` (relocatable and shared objects are not task images).
    NotExecutable {
        /// The `e_type` found.
        file_type: u16,
    },
    /// `e_machine` is not AArch64.
    WrongMachine {
        /// The `e_machine` found.
        machine: u16,
    },
    /// `e_ehsize` or `e_phentsize` is not the ELF64 size.
    BadHeaderSize,
    /// More program headers than [`MAX_PROGRAM_HEADERS`].
    TooManyProgramHeaders {
        /// `e_phnum`.
        count: u16,
    },
    /// A PT_LOAD segment is malformed.
    Segment {
        /// Index of the program header.
        index: usize,
        /// What is wrong.
        problem: SegmentProblem,
    },
    /// No PT_LOAD segment.
    NoLoadableSegments,
    /// More PT_LOAD segments than [`MAX_LOAD_SEGMENTS`].
    TooManySegments {
        /// How many.
        count: usize,
    },
    /// Total memory size over [`MAX_IMAGE_MEMORY_BYTES`].
    ImageTooLarge {
        /// Sum of `p_memsz`.
        bytes: u64,
    },
    /// The entry point is not inside an executable segment.
    EntryNotExecutable {
        /// `e_entry`.
        entry: u64,
    },
}

/// One PT_LOAD segment, checked.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// Program-header index (for messages).
    pub header_index: usize,
    /// First virtual address.
    pub virtual_address: u64,
    /// Size in memory (the tail beyond `file_size` is zero-filled).
    pub memory_size: u64,
    /// Offset of the bytes in the file.
    pub file_offset: u64,
    /// Number of bytes from the file.
    pub file_size: u64,
    /// Access rights from `p_flags`.
    pub permissions: Permissions,
}

impl LoadSegment {
    /// One past the last virtual address.
    pub fn end(&self) -> u64 {
        self.virtual_address + self.memory_size
    }
}

/// A checked task image borrowing its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfImage<'file> {
    file: &'file [u8],
    /// Entry point.
    pub entry: u64,
    /// PT_LOAD segments sorted by address.
    pub segments: Vec<LoadSegment>,
}

impl<'file> ElfImage<'file> {
    /// The file bytes of `segment` (checked at parse time to lie inside the file).
    pub fn segment_bytes(&self, segment: &LoadSegment) -> &'file [u8] {
        let start = segment.file_offset as usize;
        self.file
            .get(start..start + segment.file_size as usize)
            .unwrap_or(&[])
    }
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Parses and checks a task image.
pub fn parse(file: &[u8]) -> Result<ElfImage<'_>, ElfError> {
    let actual = file.len() as u64;
    // Every fixed-offset read below is inside `header`, which has exactly HEADER_BYTES.
    let header = file.get(..HEADER_BYTES).ok_or(ElfError::Truncated {
        needed: HEADER_BYTES as u64,
        actual,
    })?;
    if header[..4] != ELF_MAGIC {
        return Err(ElfError::BadMagic);
    }
    if header[4] != CLASS_64 {
        return Err(ElfError::NotElf64);
    }
    if header[5] != DATA_LITTLE_ENDIAN {
        return Err(ElfError::NotLittleEndian);
    }
    if header[6] != VERSION_CURRENT || read_u32(header, 20) != 1 {
        return Err(ElfError::BadVersion);
    }
    let file_type = read_u16(header, 16);
    if file_type != TYPE_EXECUTABLE {
        return Err(ElfError::NotExecutable { file_type });
    }
    let machine = read_u16(header, 18);
    if machine != MACHINE_AARCH64 {
        return Err(ElfError::WrongMachine { machine });
    }
    if read_u16(header, 52) as usize != HEADER_BYTES
        || read_u16(header, 54) as usize != PROGRAM_HEADER_BYTES
    {
        return Err(ElfError::BadHeaderSize);
    }
    let entry = read_u64(header, 24);
    let program_headers_offset = read_u64(header, 32);
    let count = read_u16(header, 56);
    if count as usize > MAX_PROGRAM_HEADERS {
        return Err(ElfError::TooManyProgramHeaders { count });
    }
    let table_bytes = count as u64 * PROGRAM_HEADER_BYTES as u64;
    let table_end = program_headers_offset.saturating_add(table_bytes);
    if table_end > actual {
        return Err(ElfError::Truncated {
            needed: table_end,
            actual,
        });
    }
    let table = &file[program_headers_offset as usize..table_end as usize];

    let mut segments: Vec<LoadSegment> = Vec::new();
    let mut total_memory = 0u64;
    for (index, entry_bytes) in table.chunks_exact(PROGRAM_HEADER_BYTES).enumerate() {
        if read_u32(entry_bytes, 0) != PT_LOAD {
            continue;
        }
        let fail = |problem| ElfError::Segment { index, problem };
        let flags = read_u32(entry_bytes, 4);
        let segment = LoadSegment {
            header_index: index,
            file_offset: read_u64(entry_bytes, 8),
            virtual_address: read_u64(entry_bytes, 16),
            file_size: read_u64(entry_bytes, 32),
            memory_size: read_u64(entry_bytes, 40),
            permissions: Permissions {
                read: flags & PF_R != 0,
                write: flags & PF_W != 0,
                execute: flags & PF_X != 0,
            },
        };
        if segment.memory_size == 0 {
            return Err(fail(SegmentProblem::Empty));
        }
        if segment.file_size > segment.memory_size {
            return Err(fail(SegmentProblem::FileSizeExceedsMemorySize));
        }
        match segment.file_offset.checked_add(segment.file_size) {
            Some(end) if end <= actual => {}
            _ => return Err(fail(SegmentProblem::DataOutsideFile)),
        }
        if segment
            .virtual_address
            .checked_add(segment.memory_size)
            .is_none()
        {
            return Err(fail(SegmentProblem::AddressOverflow));
        }
        let Permissions {
            read,
            write,
            execute,
        } = segment.permissions;
        if write && execute {
            return Err(fail(SegmentProblem::WritableAndExecutable));
        }
        if !read && !write && !execute {
            return Err(fail(SegmentProblem::NoAccess));
        }
        if let Some(other) = segments.iter().find(|other| {
            segment.virtual_address < other.end() && other.virtual_address < segment.end()
        }) {
            return Err(fail(SegmentProblem::Overlaps(other.header_index)));
        }
        total_memory = total_memory.saturating_add(segment.memory_size);
        if segments.len() == MAX_LOAD_SEGMENTS {
            return Err(ElfError::TooManySegments {
                count: MAX_LOAD_SEGMENTS + 1,
            });
        }
        segments.push(segment);
    }
    if segments.is_empty() {
        return Err(ElfError::NoLoadableSegments);
    }
    if total_memory > MAX_IMAGE_MEMORY_BYTES {
        return Err(ElfError::ImageTooLarge {
            bytes: total_memory,
        });
    }
    if !segments.iter().any(|segment| {
        segment.permissions.execute && segment.virtual_address <= entry && entry < segment.end()
    }) {
        return Err(ElfError::EntryNotExecutable { entry });
    }
    segments.sort_by_key(|segment| segment.virtual_address);
    Ok(ElfImage {
        file,
        entry,
        segments,
    })
}

/// Builds minimal valid images for tests (here and in the address-space tests).
#[cfg(test)]
pub(crate) mod build {
    use alloc::vec::Vec;

    /// A segment to emit: (vaddr, flags, file bytes, memory size).
    pub(crate) type Spec<'a> = (u64, u32, &'a [u8], u64);

    /// An ELF64 AArch64 executable with the given PT_LOAD segments, data at 4 KiB-aligned
    /// file offsets.
    pub(crate) fn image(entry: u64, segments: &[Spec<'_>]) -> Vec<u8> {
        let mut file = alloc::vec![0u8; 0x1000];
        file[..4].copy_from_slice(&[0x7F, b'E', b'L', b'F']);
        file[4] = 2;
        file[5] = 1;
        file[6] = 1;
        file[16..18].copy_from_slice(&2u16.to_le_bytes());
        file[18..20].copy_from_slice(&183u16.to_le_bytes());
        file[20..24].copy_from_slice(&1u32.to_le_bytes());
        file[24..32].copy_from_slice(&entry.to_le_bytes());
        file[32..40].copy_from_slice(&64u64.to_le_bytes());
        file[52..54].copy_from_slice(&64u16.to_le_bytes());
        file[54..56].copy_from_slice(&56u16.to_le_bytes());
        file[56..58].copy_from_slice(&(segments.len() as u16 + 1).to_le_bytes());
        for (index, (vaddr, flags, bytes, memory_size)) in segments.iter().enumerate() {
            let offset = file.len() as u64;
            file.extend_from_slice(bytes);
            file.resize(file.len().next_multiple_of(0x1000), 0);
            let at = 64 + 56 * index;
            let header = &mut file[at..at + 56];
            header[0..4].copy_from_slice(&1u32.to_le_bytes());
            header[4..8].copy_from_slice(&flags.to_le_bytes());
            header[8..16].copy_from_slice(&offset.to_le_bytes());
            header[16..24].copy_from_slice(&vaddr.to_le_bytes());
            header[24..32].copy_from_slice(&vaddr.to_le_bytes());
            header[32..40].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            header[40..48].copy_from_slice(&memory_size.to_le_bytes());
            header[48..56].copy_from_slice(&0x1000u64.to_le_bytes());
        }
        // A trailing PT_GNU_STACK, which the loader must skip.
        let at = 64 + 56 * segments.len();
        file[at..at + 4].copy_from_slice(&0x6474_e551u32.to_le_bytes());
        file[at + 4..at + 8].copy_from_slice(&6u32.to_le_bytes());
        file
    }

    /// Text at 0x1_0000 (two instructions), read-only data at 0x1_1000, data+bss at 0x1_2000.
    pub(crate) fn typical() -> Vec<u8> {
        let text: &[u8] = &[0x01, 0x00, 0x00, 0xd4, 0x00, 0x00, 0x00, 0x14]; // svc #0; b .
        image(
            0x1_0000,
            &[
                (0x1_0000, 5, text, 8),
                (0x1_1000, 4, b"rodata!", 7),
                (0x1_2000, 6, b"data", 0x2100),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn a_typical_image_parses_into_sorted_checked_segments() {
        let file = typical();
        let image = parse(&file).unwrap();
        assert_eq!(image.entry, 0x1_0000);
        assert_eq!(image.segments.len(), 3);
        let text = image.segments[0];
        assert_eq!((text.virtual_address, text.memory_size), (0x1_0000, 8));
        assert_eq!(text.permissions, Permissions::READ_EXECUTE);
        assert_eq!(
            image.segment_bytes(&text),
            &[0x01, 0x00, 0x00, 0xd4, 0x00, 0x00, 0x00, 0x14]
        );
        let data = image.segments[2];
        assert_eq!((data.file_size, data.memory_size), (4, 0x2100));
        assert_eq!(data.permissions, Permissions::READ_WRITE);
        assert_eq!(image.segment_bytes(&image.segments[1]), b"rodata!");
    }

    #[test]
    fn header_corruptions_are_named() {
        let good = typical();
        let corrupt = |at: usize, bytes: &[u8]| {
            let mut file = good.clone();
            file[at..at + bytes.len()].copy_from_slice(bytes);
            parse(&file).map(|_| ())
        };
        assert_eq!(corrupt(0, b"\x7FELG"), Err(ElfError::BadMagic));
        assert_eq!(corrupt(4, &[1]), Err(ElfError::NotElf64));
        assert_eq!(corrupt(5, &[2]), Err(ElfError::NotLittleEndian));
        assert_eq!(corrupt(6, &[0]), Err(ElfError::BadVersion));
        assert_eq!(
            corrupt(16, &[3, 0]),
            Err(ElfError::NotExecutable { file_type: 3 })
        );
        assert_eq!(
            corrupt(18, &[62, 0]),
            Err(ElfError::WrongMachine { machine: 62 })
        );
        assert_eq!(corrupt(54, &[32, 0]), Err(ElfError::BadHeaderSize));
        assert_eq!(
            corrupt(56, &[200, 0]),
            Err(ElfError::TooManyProgramHeaders { count: 200 })
        );
        assert!(matches!(
            corrupt(32, &[0xF0, 0xFF, 0xFF, 0xFF]),
            Err(ElfError::Truncated { .. })
        ));
        assert_eq!(
            corrupt(24, &[0x00, 0x20, 0x01, 0]),
            Err(ElfError::EntryNotExecutable { entry: 0x1_2000 })
        );
        assert_eq!(
            parse(&good[..10]),
            Err(ElfError::Truncated {
                needed: 64,
                actual: 10
            })
        );
    }

    #[test]
    fn segment_corruptions_are_named_with_their_header() {
        let segment_field = |index: usize, field: usize, value: u64| {
            let mut file = typical();
            let at = 64 + 56 * index + field;
            if field == 4 {
                file[at..at + 4].copy_from_slice(&(value as u32).to_le_bytes());
            } else {
                file[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
            parse(&file).map(|_| ())
        };
        let problem = |index, problem| Err(ElfError::Segment { index, problem });
        assert_eq!(
            segment_field(1, 32, 100),
            problem(1, SegmentProblem::FileSizeExceedsMemorySize)
        );
        assert_eq!(
            segment_field(2, 8, 1 << 40),
            problem(2, SegmentProblem::DataOutsideFile)
        );
        assert_eq!(
            segment_field(2, 8, u64::MAX),
            problem(2, SegmentProblem::DataOutsideFile)
        );
        assert_eq!(
            segment_field(2, 16, u64::MAX - 8),
            problem(2, SegmentProblem::AddressOverflow)
        );
        assert_eq!(
            segment_field(2, 4, 7),
            problem(2, SegmentProblem::WritableAndExecutable)
        );
        assert_eq!(segment_field(1, 4, 0), problem(1, SegmentProblem::NoAccess));
        assert_eq!(segment_field(1, 40, 0), problem(1, SegmentProblem::Empty));
        assert_eq!(
            segment_field(2, 16, 0x1_1004),
            problem(2, SegmentProblem::Overlaps(1))
        );
        let none = {
            let mut file = typical();
            for index in 0..3 {
                file[64 + 56 * index] = 0; // PT_NULL
            }
            parse(&file).map(|_| ())
        };
        assert_eq!(none, Err(ElfError::NoLoadableSegments));
        let huge = segment_field(2, 40, MAX_IMAGE_MEMORY_BYTES + 1);
        assert!(matches!(huge, Err(ElfError::ImageTooLarge { .. })));
    }

    #[test]
    fn too_many_segments_are_refused() {
        let specs: Vec<Spec<'_>> = (0..=MAX_LOAD_SEGMENTS as u64)
            .map(|n| (0x1_0000 + n * 0x1000, 5u32, &b"x"[..], 1u64))
            .collect();
        let file = image(0x1_0000, &specs);
        assert_eq!(
            parse(&file),
            Err(ElfError::TooManySegments {
                count: MAX_LOAD_SEGMENTS + 1
            })
        );
    }

    #[test]
    fn every_truncation_and_single_byte_mutation_is_handled_without_panic() {
        let good = typical();
        let parsed = parse(&good).unwrap();
        let data_end = parsed
            .segments
            .iter()
            .map(|s| s.file_offset + s.file_size)
            .max()
            .unwrap();
        for length in 0..good.len() {
            let result = parse(&good[..length]);
            assert_eq!(
                result.is_ok(),
                length as u64 >= data_end,
                "truncated to {length}"
            );
        }
        // Mutate every header byte (and a sample of data) through several values.
        let mut accepted = 0;
        for at in (0..0x200).chain((0x1000..good.len()).step_by(97)) {
            for value in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                let mut file = good.clone();
                file[at] = value;
                if let Ok(image) = parse(&file) {
                    accepted += 1;
                    for segment in &image.segments {
                        assert_eq!(image.segment_bytes(segment).len() as u64, segment.file_size);
                        assert!(!(segment.permissions.write && segment.permissions.execute));
                    }
                }
            }
        }
        assert!(
            accepted > 0,
            "harmless mutations (padding bytes) must still parse"
        );
    }
}
