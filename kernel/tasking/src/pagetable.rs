//! Stage-1 EL1&0 translation tables for task address spaces (TTBR0), built over an abstract
//! physical memory, plus the ASID allocator.
//!
//! Format (Arm ARM, VMSAv8-64, D8.3 "Translation table descriptor formats", 4 KiB granule,
//! T0SZ = 16, so a 48-bit VA and four levels): level 0 indexes VA[47:39], level 1 VA[38:30],
//! level 2 VA[29:21], level 3 VA[20:12]. Tables at levels 0..2 point to the next table with a
//! table descriptor (bits[1:0] = 0b11); level 3 holds page descriptors (also 0b11). Blocks
//! (0b01 at levels 1 and 2) are never created for tasks (4 KiB pages keep permissions exact)
//! but the walker understands them.
//!
//! Page descriptor attributes used here (D8.3.2, D8.4):
//!
//! | bits | field | our use |
//! |---|---|---|
//! | 4:2 | AttrIndx | [`MAIR_NORMAL_INDEX`] or [`MAIR_DEVICE_INDEX`] into MAIR_EL1 |
//! | 7:6 | AP[2:1] | 0b01 EL0+EL1 read-write, 0b11 EL0+EL1 read-only (0b00/0b10: EL1 only) |
//! | 9:8 | SH | 0b11 inner shareable for normal memory (all cores see one coherent view) |
//! | 10 | AF | 1: no access-flag faults (we do not age pages) |
//! | 11 | nG | 1 for task pages: TLB entries are tagged with the ASID |
//! | 53 | PXN | 1 for every user page: the kernel never executes task memory |
//! | 54 | UXN | 1 unless the page is user-executable |
//!
//! W^X holds by construction: [`PageFlags`] refuses writable+executable. The kernel's MAIR_EL1
//! must place Normal write-back memory at index 0 and Device-nGnRE at index 1.
//!
//! The tables live in physical frames the kernel lends through [`PhysicalMemory`]; on the host
//! that is a plain map of frames, so the tests walk the real bits. Nothing here touches TLBs or
//! system registers: [`PageTable::unmap_page`] returns the address the kernel must invalidate.

use crate::limits::ASID_COUNT;
use crate::usermem::{PAGE_BYTES, USER_VA_END};

/// A physical address.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysAddr(pub u64);

/// Physical frames and their contents, as the kernel lends them.
pub trait PhysicalMemory {
    /// A zero-filled, 4 KiB-aligned frame, or `None` when memory is exhausted.
    fn allocate_frame(&mut self) -> Option<PhysAddr>;
    /// Returns a frame from [`PhysicalMemory::allocate_frame`].
    fn free_frame(&mut self, frame: PhysAddr);
    /// Reads the 8-byte word at `address` (8-aligned, inside an allocated frame).
    fn read_u64(&self, address: PhysAddr) -> u64;
    /// Writes the 8-byte word at `address` (8-aligned, inside an allocated frame).
    fn write_u64(&mut self, address: PhysAddr, value: u64);
    /// Copies `bytes` to `address` (the range stays inside one allocated frame).
    fn write_bytes(&mut self, address: PhysAddr, bytes: &[u8]);
    /// Copies from `address` into `into` (the range stays inside one allocated frame).
    fn read_bytes(&self, address: PhysAddr, into: &mut [u8]);
}

/// MAIR_EL1 index of Normal memory, inner/outer write-back (attribute 0xFF).
pub const MAIR_NORMAL_INDEX: u64 = 0;
/// MAIR_EL1 index of Device-nGnRE memory (attribute 0x04).
pub const MAIR_DEVICE_INDEX: u64 = 1;

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_INDEX_SHIFT: u64 = 2;
const AP_EL0: u64 = 1 << 6; // AP[1]: EL0 access
const AP_READ_ONLY: u64 = 1 << 7; // AP[2]: read-only
const SH_INNER: u64 = 0b11 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const NOT_GLOBAL: u64 = 1 << 11;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const ADDRESS_MASK: u64 = 0x0000_FFFF_FFFF_F000;
const ENTRIES: u64 = 512;

/// Access rights and memory type of one page.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageFlags {
    /// EL0 may access (else EL1 only).
    pub user: bool,
    /// Writable (else read-only).
    pub write: bool,
    /// Executable at the privilege level that may access it.
    pub execute: bool,
    /// Device-nGnRE instead of normal cacheable memory.
    pub device: bool,
    /// Visible in every address space (nG = 0); task pages are never global.
    pub global: bool,
}

impl PageFlags {
    /// Task text.
    pub const USER_TEXT: PageFlags = PageFlags {
        user: true,
        write: false,
        execute: true,
        device: false,
        global: false,
    };
    /// Task read-only data.
    pub const USER_READ_ONLY: PageFlags = PageFlags {
        user: true,
        write: false,
        execute: false,
        device: false,
        global: false,
    };
    /// Task data, bss, stack.
    pub const USER_DATA: PageFlags = PageFlags {
        user: true,
        write: true,
        execute: false,
        device: false,
        global: false,
    };

    /// The page descriptor bits for these flags (without the output address).
    pub fn descriptor_bits(self) -> Result<u64, PageTableError> {
        if self.write && self.execute {
            return Err(PageTableError::WritableAndExecutable);
        }
        if self.device && self.execute {
            return Err(PageTableError::ExecutableDevice);
        }
        let attr = if self.device {
            MAIR_DEVICE_INDEX
        } else {
            MAIR_NORMAL_INDEX
        };
        let mut bits = VALID | TABLE_OR_PAGE | (attr << ATTR_INDEX_SHIFT) | ACCESS_FLAG;
        if !self.device {
            bits |= SH_INNER;
        }
        if self.user {
            bits |= AP_EL0 | PXN;
            if !self.execute {
                bits |= UXN;
            }
        } else {
            bits |= UXN;
            if !self.execute {
                bits |= PXN;
            }
        }
        if !self.write {
            bits |= AP_READ_ONLY;
        }
        if !self.global {
            bits |= NOT_GLOBAL;
        }
        Ok(bits)
    }

    /// Decodes a leaf descriptor's attribute bits.
    pub fn from_descriptor(descriptor: u64) -> PageFlags {
        let user = descriptor & AP_EL0 != 0;
        let execute = if user {
            descriptor & UXN == 0
        } else {
            descriptor & PXN == 0
        };
        PageFlags {
            user,
            write: descriptor & AP_READ_ONLY == 0,
            execute,
            device: (descriptor >> ATTR_INDEX_SHIFT) & 0b111 == MAIR_DEVICE_INDEX,
            global: descriptor & NOT_GLOBAL == 0,
        }
    }
}

/// Why a mapping operation was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PageTableError {
    /// A virtual or physical address is not page-aligned.
    Misaligned {
        /// The offending address.
        address: u64,
    },
    /// The virtual address is not below [`USER_VA_END`] (not TTBR0's range).
    NotUserAddress {
        /// The offending address.
        address: u64,
    },
    /// The physical address needs more than 48 bits.
    PhysicalAddressTooHigh {
        /// The offending address.
        address: u64,
    },
    /// The page is already mapped.
    AlreadyMapped {
        /// The virtual address.
        address: u64,
    },
    /// The page is not mapped.
    NotMapped {
        /// The virtual address.
        address: u64,
    },
    /// No frame for a table.
    OutOfFrames,
    /// W^X violation.
    WritableAndExecutable,
    /// Device memory is never executable.
    ExecutableDevice,
}

/// A successful walk.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Output physical address (the page's frame plus the offset of the VA).
    pub physical: PhysAddr,
    /// The leaf's attributes.
    pub flags: PageFlags,
    /// Level of the leaf (3 for pages, 1 or 2 for blocks).
    pub level: u8,
}

/// One task's TTBR0 translation tables.
#[derive(Debug, PartialEq, Eq)]
pub struct PageTable {
    root: PhysAddr,
    table_frames: usize,
}

fn index_at(virtual_address: u64, level: u8) -> u64 {
    (virtual_address >> (39 - 9 * level as u64)) & (ENTRIES - 1)
}

fn check_page_address(address: u64) -> Result<(), PageTableError> {
    if !address.is_multiple_of(PAGE_BYTES) {
        return Err(PageTableError::Misaligned { address });
    }
    if address >= USER_VA_END {
        return Err(PageTableError::NotUserAddress { address });
    }
    Ok(())
}

impl PageTable {
    /// An empty table (one zeroed level-0 frame).
    pub fn new(memory: &mut impl PhysicalMemory) -> Result<PageTable, PageTableError> {
        let root = memory.allocate_frame().ok_or(PageTableError::OutOfFrames)?;
        Ok(PageTable {
            root,
            table_frames: 1,
        })
    }

    /// Physical address of the level-0 table.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// Frames used by tables (not by mapped pages).
    pub fn table_frames(&self) -> usize {
        self.table_frames
    }

    /// The TTBR0_EL1 value for this table and `asid` (ASID in bits 63:48, D19.2.152; TCR_EL1.A1
    /// must be 0 so the ASID comes from TTBR0).
    pub fn ttbr0(&self, asid: Asid) -> u64 {
        (asid.0 as u64) << 48 | (self.root.0 & ADDRESS_MASK)
    }

    /// Maps the 4 KiB page at `virtual_address` to the frame `physical` with `flags`,
    /// allocating intermediate tables as needed.
    pub fn map_page(
        &mut self,
        memory: &mut impl PhysicalMemory,
        virtual_address: u64,
        physical: PhysAddr,
        flags: PageFlags,
    ) -> Result<(), PageTableError> {
        check_page_address(virtual_address)?;
        if !physical.0.is_multiple_of(PAGE_BYTES) {
            return Err(PageTableError::Misaligned {
                address: physical.0,
            });
        }
        if physical.0 & !ADDRESS_MASK != 0 {
            return Err(PageTableError::PhysicalAddressTooHigh {
                address: physical.0,
            });
        }
        let bits = flags.descriptor_bits()?;
        let mut table = self.root;
        for level in 0..3u8 {
            let slot = PhysAddr(table.0 + 8 * index_at(virtual_address, level));
            let descriptor = memory.read_u64(slot);
            table = if descriptor & VALID == 0 {
                let next = memory.allocate_frame().ok_or(PageTableError::OutOfFrames)?;
                self.table_frames += 1;
                memory.write_u64(slot, next.0 | VALID | TABLE_OR_PAGE);
                next
            } else if descriptor & TABLE_OR_PAGE == 0 {
                // A block already covers this address.
                return Err(PageTableError::AlreadyMapped {
                    address: virtual_address,
                });
            } else {
                PhysAddr(descriptor & ADDRESS_MASK)
            };
        }
        let slot = PhysAddr(table.0 + 8 * index_at(virtual_address, 3));
        if memory.read_u64(slot) & VALID != 0 {
            return Err(PageTableError::AlreadyMapped {
                address: virtual_address,
            });
        }
        memory.write_u64(slot, physical.0 | bits);
        Ok(())
    }

    /// Walks the tables for `virtual_address` as the MMU would.
    pub fn translate(
        &self,
        memory: &impl PhysicalMemory,
        virtual_address: u64,
    ) -> Option<Translation> {
        if virtual_address >= USER_VA_END {
            return None;
        }
        let mut table = self.root;
        for level in 0..4u8 {
            let descriptor =
                memory.read_u64(PhysAddr(table.0 + 8 * index_at(virtual_address, level)));
            if descriptor & VALID == 0 {
                return None;
            }
            let is_table_or_page = descriptor & TABLE_OR_PAGE != 0;
            if level == 3 || (!is_table_or_page && level > 0) {
                if level == 3 && !is_table_or_page {
                    return None; // 0b01 at level 3 is reserved (invalid)
                }
                let span = 1u64 << (39 - 9 * level as u64);
                let base = descriptor & ADDRESS_MASK & !(span - 1);
                return Some(Translation {
                    physical: PhysAddr(base + (virtual_address & (span - 1))),
                    flags: PageFlags::from_descriptor(descriptor),
                    level,
                });
            }
            if !is_table_or_page {
                return None; // block at level 0 is not allowed with 4 KiB granule
            }
            table = PhysAddr(descriptor & ADDRESS_MASK);
        }
        None
    }

    /// Removes the mapping of the page at `virtual_address`; returns its frame. The kernel must
    /// then `TLBI VAE1IS` for (address, ASID) before reusing the frame.
    pub fn unmap_page(
        &mut self,
        memory: &mut impl PhysicalMemory,
        virtual_address: u64,
    ) -> Result<PhysAddr, PageTableError> {
        check_page_address(virtual_address)?;
        let not_mapped = PageTableError::NotMapped {
            address: virtual_address,
        };
        let mut table = self.root;
        for level in 0..3u8 {
            let descriptor =
                memory.read_u64(PhysAddr(table.0 + 8 * index_at(virtual_address, level)));
            if descriptor & (VALID | TABLE_OR_PAGE) != VALID | TABLE_OR_PAGE {
                return Err(not_mapped);
            }
            table = PhysAddr(descriptor & ADDRESS_MASK);
        }
        let slot = PhysAddr(table.0 + 8 * index_at(virtual_address, 3));
        let descriptor = memory.read_u64(slot);
        if descriptor & VALID == 0 {
            return Err(not_mapped);
        }
        memory.write_u64(slot, 0);
        Ok(PhysAddr(descriptor & ADDRESS_MASK))
    }

    /// Frees every table frame; with `free_pages`, also every mapped page's frame. The kernel
    /// must have switched away from this table and invalidated its ASID first.
    pub fn destroy(self, memory: &mut impl PhysicalMemory, free_pages: bool) {
        Self::free_level(memory, self.root, 0, free_pages);
    }

    fn free_level(memory: &mut impl PhysicalMemory, table: PhysAddr, level: u8, free_pages: bool) {
        for index in 0..ENTRIES {
            let descriptor = memory.read_u64(PhysAddr(table.0 + 8 * index));
            if descriptor & VALID == 0 {
                continue;
            }
            let next = PhysAddr(descriptor & ADDRESS_MASK);
            if level < 3 && descriptor & TABLE_OR_PAGE != 0 {
                Self::free_level(memory, next, level + 1, free_pages);
            } else if level == 3 && free_pages {
                memory.free_frame(next);
            }
        }
        memory.free_frame(table);
    }
}

/// An address-space identifier (8 bits used; 0 is never handed out, it tags no task).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Asid(pub u16);

/// An ASID and whether stale TLB entries may carry it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AsidGrant {
    /// The ASID.
    pub asid: Asid,
    /// It was used before: the kernel must `TLBI ASIDE1IS` before running with it.
    pub needs_flush: bool,
}

/// Hands out ASIDs 1..[`ASID_COUNT`]; remembers which were used so that reuse flushes.
#[derive(Clone, Debug)]
pub struct AsidAllocator {
    in_use: [bool; ASID_COUNT],
    used_before: [bool; ASID_COUNT],
}

impl Default for AsidAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl AsidAllocator {
    /// All ASIDs free and clean.
    pub const fn new() -> AsidAllocator {
        AsidAllocator {
            in_use: [false; ASID_COUNT],
            used_before: [false; ASID_COUNT],
        }
    }

    /// The lowest free ASID, or `None` when all are taken.
    pub fn allocate(&mut self) -> Option<AsidGrant> {
        let index = (1..ASID_COUNT).find(|index| !self.in_use[*index])?;
        self.in_use[index] = true;
        let needs_flush = core::mem::replace(&mut self.used_before[index], true);
        Some(AsidGrant {
            asid: Asid(index as u16),
            needs_flush,
        })
    }

    /// Returns an ASID (ignored if it was not handed out).
    pub fn free(&mut self, asid: Asid) {
        if let Some(slot) = self.in_use.get_mut(asid.0 as usize) {
            *slot = false;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;

    /// Frames in a map; addresses start at 1 GiB like RAM on `virt`.
    #[derive(Default)]
    pub(crate) struct FrameHeap {
        pub frames: BTreeMap<u64, Vec<u8>>,
        pub next: u64,
        pub limit: Option<usize>,
        pub freed: Vec<u64>,
    }

    impl PhysicalMemory for FrameHeap {
        fn allocate_frame(&mut self) -> Option<PhysAddr> {
            if self.limit.is_some_and(|limit| self.frames.len() >= limit) {
                return None;
            }
            let address = 0x4000_0000 + self.next * PAGE_BYTES;
            self.next += 1;
            self.frames
                .insert(address, alloc::vec![0; PAGE_BYTES as usize]);
            Some(PhysAddr(address))
        }
        fn free_frame(&mut self, frame: PhysAddr) {
            assert!(
                self.frames.remove(&frame.0).is_some(),
                "double or foreign free {frame:?}"
            );
            self.freed.push(frame.0);
        }
        fn read_u64(&self, address: PhysAddr) -> u64 {
            let mut bytes = [0u8; 8];
            self.read_bytes(address, &mut bytes);
            u64::from_le_bytes(bytes)
        }
        fn write_u64(&mut self, address: PhysAddr, value: u64) {
            self.write_bytes(address, &value.to_le_bytes());
        }
        fn write_bytes(&mut self, address: PhysAddr, bytes: &[u8]) {
            let base = address.0 & !(PAGE_BYTES - 1);
            let offset = (address.0 - base) as usize;
            let frame = self
                .frames
                .get_mut(&base)
                .expect("write to an unallocated frame");
            frame[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
        fn read_bytes(&self, address: PhysAddr, into: &mut [u8]) {
            let base = address.0 & !(PAGE_BYTES - 1);
            let offset = (address.0 - base) as usize;
            let frame = self
                .frames
                .get(&base)
                .expect("read of an unallocated frame");
            into.copy_from_slice(&frame[offset..offset + into.len()]);
        }
    }

    #[test]
    fn mapped_pages_walk_to_their_frames_with_their_permissions() {
        let mut memory = FrameHeap::default();
        let mut table = PageTable::new(&mut memory).unwrap();
        let text = memory.allocate_frame().unwrap();
        let data = memory.allocate_frame().unwrap();
        let far = memory.allocate_frame().unwrap();
        table
            .map_page(&mut memory, 0x40_0000, text, PageFlags::USER_TEXT)
            .unwrap();
        table
            .map_page(&mut memory, 0x40_1000, data, PageFlags::USER_DATA)
            .unwrap();
        table
            .map_page(
                &mut memory,
                0x7FFF_FFFF_F000,
                far,
                PageFlags::USER_READ_ONLY,
            )
            .unwrap();

        let t = table.translate(&memory, 0x40_0123).unwrap();
        assert_eq!(
            (t.physical, t.flags, t.level),
            (PhysAddr(text.0 + 0x123), PageFlags::USER_TEXT, 3)
        );
        let d = table.translate(&memory, 0x40_1ff8).unwrap();
        assert_eq!(
            (d.physical, d.flags),
            (PhysAddr(data.0 + 0xff8), PageFlags::USER_DATA)
        );
        let f = table.translate(&memory, 0x7FFF_FFFF_F010).unwrap();
        assert_eq!(
            (f.physical, f.flags),
            (PhysAddr(far.0 + 0x10), PageFlags::USER_READ_ONLY)
        );
        assert_eq!(table.translate(&memory, 0x40_2000), None);
        assert_eq!(table.translate(&memory, 0), None);
        assert_eq!(table.translate(&memory, USER_VA_END), None);
        // Root + (L1, L2, L3) for the 4 MiB area + (L1, L2, L3) for the top of user space.
        assert_eq!(table.table_frames(), 7);
    }

    #[test]
    fn descriptor_bits_follow_the_arm_arm() {
        let mut memory = FrameHeap::default();
        let mut table = PageTable::new(&mut memory).unwrap();
        let frame = memory.allocate_frame().unwrap();
        table
            .map_page(&mut memory, 0x1000, frame, PageFlags::USER_TEXT)
            .unwrap();
        // Walk by hand: L0[0] -> L1[0] -> L2[0] -> L3[1].
        let l0 = memory.read_u64(table.root());
        assert_eq!(l0 & 0b11, 0b11, "table descriptor");
        let l1 = memory.read_u64(PhysAddr(l0 & ADDRESS_MASK));
        let l2 = memory.read_u64(PhysAddr(l1 & ADDRESS_MASK));
        let leaf = memory.read_u64(PhysAddr((l2 & ADDRESS_MASK) + 8));
        assert_eq!(leaf & ADDRESS_MASK, frame.0);
        assert_eq!(leaf & 0b11, 0b11, "page descriptor");
        assert_eq!((leaf >> 2) & 0b111, MAIR_NORMAL_INDEX, "AttrIndx");
        assert_eq!((leaf >> 6) & 0b11, 0b11, "AP: EL0 and EL1 read-only");
        assert_eq!((leaf >> 8) & 0b11, 0b11, "inner shareable");
        assert_eq!((leaf >> 10) & 1, 1, "AF");
        assert_eq!((leaf >> 11) & 1, 1, "nG");
        assert_eq!((leaf >> 53) & 1, 1, "PXN: the kernel never runs task text");
        assert_eq!((leaf >> 54) & 1, 0, "UXN clear: EL0 may execute");

        let data = PageFlags::USER_DATA.descriptor_bits().unwrap();
        assert_eq!((data >> 6) & 0b11, 0b01, "AP: EL0 and EL1 read-write");
        assert_eq!((data >> 54) & 1, 1, "UXN: data is not executable");
        let device = PageFlags {
            device: true,
            ..PageFlags::USER_DATA
        }
        .descriptor_bits()
        .unwrap();
        assert_eq!((device >> 2) & 0b111, MAIR_DEVICE_INDEX);
        let kernel = PageFlags {
            user: false,
            global: true,
            ..PageFlags::USER_DATA
        };
        let kernel_bits = kernel.descriptor_bits().unwrap();
        assert_eq!((kernel_bits >> 6) & 0b11, 0b00, "AP: EL1 only");
        assert_eq!(kernel_bits >> 53 & 0b11, 0b11, "kernel data: PXN and UXN");
        assert_eq!(kernel_bits >> 11 & 1, 0, "global");
        assert_eq!(PageFlags::from_descriptor(kernel_bits), kernel);
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut memory = FrameHeap::default();
        let mut table = PageTable::new(&mut memory).unwrap();
        let frame = memory.allocate_frame().unwrap();
        let rwx = PageFlags {
            execute: true,
            ..PageFlags::USER_DATA
        };
        assert_eq!(
            table.map_page(&mut memory, 0x1000, frame, rwx),
            Err(PageTableError::WritableAndExecutable)
        );
        let device_text = PageFlags {
            device: true,
            ..PageFlags::USER_TEXT
        };
        assert_eq!(
            table.map_page(&mut memory, 0x1000, frame, device_text),
            Err(PageTableError::ExecutableDevice)
        );
        assert_eq!(
            table.map_page(&mut memory, 0x1001, frame, PageFlags::USER_DATA),
            Err(PageTableError::Misaligned { address: 0x1001 })
        );
        assert_eq!(
            table.map_page(
                &mut memory,
                0x1000,
                PhysAddr(frame.0 + 8),
                PageFlags::USER_DATA
            ),
            Err(PageTableError::Misaligned {
                address: frame.0 + 8
            })
        );
        assert_eq!(
            table.map_page(
                &mut memory,
                0xFFFF_0000_0000_0000,
                frame,
                PageFlags::USER_DATA
            ),
            Err(PageTableError::NotUserAddress {
                address: 0xFFFF_0000_0000_0000
            })
        );
        assert_eq!(
            table.map_page(&mut memory, 0x1000, PhysAddr(1 << 48), PageFlags::USER_DATA),
            Err(PageTableError::PhysicalAddressTooHigh { address: 1 << 48 })
        );
        table
            .map_page(&mut memory, 0x1000, frame, PageFlags::USER_DATA)
            .unwrap();
        assert_eq!(
            table.map_page(&mut memory, 0x1000, frame, PageFlags::USER_DATA),
            Err(PageTableError::AlreadyMapped { address: 0x1000 })
        );
    }

    #[test]
    fn running_out_of_frames_is_an_error_not_a_panic() {
        let mut memory = FrameHeap {
            limit: Some(2),
            ..FrameHeap::default()
        };
        let mut table = PageTable::new(&mut memory).unwrap();
        let frame = memory.allocate_frame().unwrap();
        assert_eq!(
            table.map_page(&mut memory, 0x1000, frame, PageFlags::USER_DATA),
            Err(PageTableError::OutOfFrames)
        );
    }

    #[test]
    fn unmap_and_destroy_return_every_frame() {
        let mut memory = FrameHeap::default();
        let mut table = PageTable::new(&mut memory).unwrap();
        let mut pages = Vec::new();
        for page in 0..4u64 {
            let frame = memory.allocate_frame().unwrap();
            let address = 0x10_0000 + page * 0x20_0000; // one L3 table each
            table
                .map_page(&mut memory, address, frame, PageFlags::USER_DATA)
                .unwrap();
            pages.push((address, frame));
        }
        let (address, frame) = pages[0];
        assert_eq!(table.unmap_page(&mut memory, address), Ok(frame));
        assert_eq!(table.translate(&memory, address), None);
        assert_eq!(
            table.unmap_page(&mut memory, address),
            Err(PageTableError::NotMapped { address })
        );
        memory.free_frame(frame);
        table.destroy(&mut memory, true);
        assert!(
            memory.frames.is_empty(),
            "leaked {:?}",
            memory.frames.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn ttbr0_carries_the_asid_and_reuse_needs_a_flush() {
        let mut memory = FrameHeap::default();
        let table = PageTable::new(&mut memory).unwrap();
        let mut asids = AsidAllocator::new();
        let first = asids.allocate().unwrap();
        assert_eq!(
            first,
            AsidGrant {
                asid: Asid(1),
                needs_flush: false
            }
        );
        assert_eq!(table.ttbr0(first.asid), 1 << 48 | table.root().0);
        asids.free(first.asid);
        assert_eq!(
            asids.allocate(),
            Some(AsidGrant {
                asid: Asid(1),
                needs_flush: true
            })
        );
        for expected in 2..ASID_COUNT as u16 {
            assert_eq!(
                asids.allocate().map(|grant| grant.asid),
                Some(Asid(expected))
            );
        }
        assert_eq!(asids.allocate(), None);
        asids.free(Asid(9999));
    }
}
