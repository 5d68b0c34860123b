//! User memory as an allegation: address-space maps, the checked slice, and the copy trait.
//!
//! A task passes memory to the kernel as a [`UserSlice`] (address and length it *claims* are
//! its own). The portable core checks the claim against the task's [`AddressSpaceMap`] and only
//! then produces a [`CheckedSlice`], the one type the kernel's copy routines accept. The portable
//! code never dereferences anything: the kernel supplies the copy through [`UserMemory`]
//! (on AArch64: via its linear map after walking the task's tables, or with `ldtr`/`sttr`
//! while the task's TTBR0 is live). So a bad pointer is an error value returned to the task,
//! and can never become a kernel fault.
//!
//! The checks, in order: address arithmetic must not overflow; the whole range must lie below
//! [`USER_VA_END`] (everything above is TTBR1, the kernel); every byte must be covered by map
//! regions with the needed permission (a range may span adjacent regions).

use crate::limits::{COPY_CHUNK_BYTES, MAX_REGIONS};
use abi::{TaskId, UserSlice};
use alloc::vec::Vec;

/// First address not reachable through TTBR0 with T0SZ = 16 (48-bit user VA).
pub const USER_VA_END: u64 = 1 << 48;

/// Translation granule: 4 KiB pages.
pub const PAGE_BYTES: u64 = 4096;

/// What a region allows.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permissions {
    /// Loads allowed (every mapped region is readable on AArch64 EL0 mappings).
    pub read: bool,
    /// Stores allowed.
    pub write: bool,
    /// Instruction fetch allowed.
    pub execute: bool,
}

impl Permissions {
    /// Read-only data.
    pub const READ: Permissions = Permissions {
        read: true,
        write: false,
        execute: false,
    };
    /// Read-write data.
    pub const READ_WRITE: Permissions = Permissions {
        read: true,
        write: true,
        execute: false,
    };
    /// Text.
    pub const READ_EXECUTE: Permissions = Permissions {
        read: true,
        write: false,
        execute: true,
    };
}

/// What a region is for (for `ps`-style listings and fault classification).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    /// A PT_LOAD segment of the task image.
    Image,
    /// The task's stack.
    Stack,
    /// Memory shared with or lent by another party.
    Shared,
}

/// One mapped range of a task's address space.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    /// First address, page-aligned.
    pub base: u64,
    /// Size in bytes, a non-zero multiple of the page size.
    pub size: u64,
    /// Access rights.
    pub permissions: Permissions,
    /// Purpose.
    pub kind: RegionKind,
}

impl Region {
    /// One past the last address (cannot overflow for a region accepted by a map).
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// Why a region list was refused as an address-space map.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MapError {
    /// More than [`MAX_REGIONS`] regions.
    TooManyRegions(usize),
    /// Base or size not page-aligned, or size zero.
    Misaligned(Region),
    /// The region reaches beyond [`USER_VA_END`].
    OutsideUserSpace(Region),
    /// Two regions overlap.
    Overlap(Region, Region),
    /// Writable and executable at once (W^X).
    WritableAndExecutable(Region),
}

/// The regions a task may touch, sorted by address, non-overlapping.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AddressSpaceMap {
    regions: Vec<Region>,
}

/// Read or write.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// The kernel reads the task's memory (message out, log text).
    Read,
    /// The kernel writes the task's memory (message in, reply, records).
    Write,
}

/// Why a user slice was refused. Always the task's own fault; returned as `BadPointer`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserSliceError {
    /// `addr + len` overflows 64 bits.
    Overflow {
        /// Claimed start.
        addr: u64,
        /// Claimed length.
        len: u64,
    },
    /// Part of the range is at or above [`USER_VA_END`] (kernel space).
    KernelAddress {
        /// Claimed start.
        addr: u64,
        /// Claimed length.
        len: u64,
    },
    /// A byte of the range is not mapped.
    Unmapped {
        /// First unmapped address.
        addr: u64,
    },
    /// A byte is mapped without the needed permission.
    PermissionDenied {
        /// First offending address.
        addr: u64,
        /// What was needed.
        access: Access,
    },
}

/// A user slice that passed the check for `owner` and `access`. Only [`AddressSpaceMap::check`]
/// makes one, so holding one is proof of the check.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckedSlice {
    owner: TaskId,
    addr: u64,
    len: u64,
    access: Access,
}

impl CheckedSlice {
    /// The task whose address space the slice is in.
    pub fn owner(&self) -> TaskId {
        self.owner
    }
    /// First address.
    pub fn addr(&self) -> u64 {
        self.addr
    }
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True for an empty slice.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The access it was checked for.
    pub fn access(&self) -> Access {
        self.access
    }
    /// The first `len` bytes (or all, if shorter): still inside the checked range.
    pub fn prefix(&self, len: u64) -> CheckedSlice {
        CheckedSlice {
            len: len.min(self.len),
            ..*self
        }
    }
}

impl AddressSpaceMap {
    /// Builds a map from regions in any order, refusing overlaps, misalignment, W^X violations
    /// and anything outside user space.
    pub fn new(mut regions: Vec<Region>) -> Result<AddressSpaceMap, MapError> {
        if regions.len() > MAX_REGIONS {
            return Err(MapError::TooManyRegions(regions.len()));
        }
        for region in &regions {
            if region.size == 0 || region.base % PAGE_BYTES != 0 || region.size % PAGE_BYTES != 0 {
                return Err(MapError::Misaligned(*region));
            }
            match region.base.checked_add(region.size) {
                Some(end) if end <= USER_VA_END => {}
                _ => return Err(MapError::OutsideUserSpace(*region)),
            }
            if region.permissions.write && region.permissions.execute {
                return Err(MapError::WritableAndExecutable(*region));
            }
        }
        regions.sort_by_key(|region| region.base);
        for pair in regions.windows(2) {
            if pair[0].end() > pair[1].base {
                return Err(MapError::Overlap(pair[0], pair[1]));
            }
        }
        Ok(AddressSpaceMap { regions })
    }

    /// The regions, sorted by address.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The region containing `addr`.
    pub fn region_containing(&self, addr: u64) -> Option<&Region> {
        self.regions
            .iter()
            .find(|region| region.base <= addr && addr < region.end())
    }

    /// Checks `slice` for `owner` and `access`.
    pub fn check(
        &self,
        owner: TaskId,
        slice: UserSlice,
        access: Access,
    ) -> Result<CheckedSlice, UserSliceError> {
        let UserSlice { addr, len } = slice;
        let end = addr
            .checked_add(len)
            .ok_or(UserSliceError::Overflow { addr, len })?;
        if end > USER_VA_END || addr >= USER_VA_END {
            return Err(UserSliceError::KernelAddress { addr, len });
        }
        // Walk the covering regions from `addr` to `end`; they are sorted, so each step
        // either advances `cursor` to a region end or fails.
        let mut cursor = addr;
        while cursor < end {
            let region = self
                .region_containing(cursor)
                .ok_or(UserSliceError::Unmapped { addr: cursor })?;
            let allowed = match access {
                Access::Read => region.permissions.read,
                Access::Write => region.permissions.write,
            };
            if !allowed {
                return Err(UserSliceError::PermissionDenied {
                    addr: cursor,
                    access,
                });
            }
            cursor = region.end();
        }
        Ok(CheckedSlice {
            owner,
            addr,
            len,
            access,
        })
    }
}

/// The kernel's copy failed even though the slice was checked (a page the map promises is not
/// present: a kernel bookkeeping bug, reported to the task as `BadPointer` and logged).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CopyError {
    /// The task whose memory failed.
    pub task: TaskId,
    /// The address that failed.
    pub addr: u64,
}

/// Copies between checked user memory and kernel buffers. Implemented by the kernel; by a
/// plain in-memory model in tests. The portable core never calls it with an empty range (an
/// empty slice is valid at any user address, so its address may be unmapped).
pub trait UserMemory {
    /// Reads `into.len()` bytes at `offset` inside `from` (`offset + into.len() <= from.len()`).
    fn read(&mut self, from: &CheckedSlice, offset: u64, into: &mut [u8]) -> Result<(), CopyError>;

    /// Writes `bytes` at `offset` inside `to` (`offset + bytes.len() <= to.len()`).
    fn write(&mut self, to: &CheckedSlice, offset: u64, bytes: &[u8]) -> Result<(), CopyError>;
}

/// Copies `min(from.len(), to.len())` bytes from one task's memory to another's through a
/// bounded bounce buffer; returns the number of bytes copied.
pub fn copy_between(
    memory: &mut impl UserMemory,
    from: &CheckedSlice,
    to: &CheckedSlice,
) -> Result<u64, CopyError> {
    let total = from.len().min(to.len());
    let mut buffer = [0u8; COPY_CHUNK_BYTES];
    let mut done = 0u64;
    while done < total {
        let chunk = (total - done).min(COPY_CHUNK_BYTES as u64) as usize;
        memory.read(from, done, &mut buffer[..chunk])?;
        memory.write(to, done, &buffer[..chunk])?;
        done += chunk as u64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::Generation;

    fn owner() -> TaskId {
        TaskId::new(1, Generation(0))
    }

    fn map() -> AddressSpaceMap {
        AddressSpaceMap::new(alloc::vec![
            Region {
                base: 0x20_0000,
                size: 0x1000,
                permissions: Permissions::READ_WRITE,
                kind: RegionKind::Image,
            },
            Region {
                base: 0x10_0000,
                size: 0x2000,
                permissions: Permissions::READ_EXECUTE,
                kind: RegionKind::Image,
            },
            Region {
                base: 0x20_1000,
                size: 0x1000,
                permissions: Permissions::READ_WRITE,
                kind: RegionKind::Stack,
            },
        ])
        .unwrap()
    }

    #[test]
    fn mapped_ranges_pass_with_the_right_permission() {
        let map = map();
        let checked = map.check(owner(), UserSlice::new(0x20_0ff0, 0x20), Access::Write);
        let checked = checked.expect("a range spanning two adjacent writable regions");
        assert_eq!(
            (checked.addr(), checked.len(), checked.owner()),
            (0x20_0ff0, 0x20, owner())
        );
        assert!(map
            .check(owner(), UserSlice::new(0x10_0000, 0x2000), Access::Read)
            .is_ok());
        assert_eq!(
            map.check(owner(), UserSlice::new(0x10_0000, 4), Access::Write),
            Err(UserSliceError::PermissionDenied {
                addr: 0x10_0000,
                access: Access::Write
            })
        );
    }

    #[test]
    fn kernel_addresses_are_refused() {
        let map = map();
        for (addr, len) in [
            (0xFFFF_0000_0000_0000, 8),
            (USER_VA_END, 0),
            (USER_VA_END - 4, 8),
            (0x0000_FFFF_FFFF_FFF0, 0x20),
        ] {
            assert_eq!(
                map.check(owner(), UserSlice::new(addr, len), Access::Read),
                Err(UserSliceError::KernelAddress { addr, len })
            );
        }
    }

    #[test]
    fn overflowing_ranges_are_refused() {
        let map = map();
        assert_eq!(
            map.check(owner(), UserSlice::new(0x20_0000, u64::MAX), Access::Read),
            Err(UserSliceError::Overflow {
                addr: 0x20_0000,
                len: u64::MAX
            })
        );
        assert_eq!(
            map.check(owner(), UserSlice::new(u64::MAX, 1), Access::Read),
            Err(UserSliceError::Overflow {
                addr: u64::MAX,
                len: 1
            })
        );
    }

    #[test]
    fn unmapped_ranges_are_refused_at_the_first_hole() {
        let map = map();
        assert_eq!(
            map.check(owner(), UserSlice::new(0x0, 1), Access::Read),
            Err(UserSliceError::Unmapped { addr: 0 })
        );
        // Starts mapped, runs off the end of the stack into nothing.
        assert_eq!(
            map.check(owner(), UserSlice::new(0x20_1ff0, 0x20), Access::Read),
            Err(UserSliceError::Unmapped { addr: 0x20_2000 })
        );
        // Gap between text and data.
        assert_eq!(
            map.check(owner(), UserSlice::new(0x10_1ff8, 0x10_0010), Access::Read),
            Err(UserSliceError::Unmapped { addr: 0x10_2000 })
        );
    }

    #[test]
    fn empty_slices_are_fine_anywhere_in_user_space() {
        let map = map();
        assert!(map
            .check(owner(), UserSlice::new(0x1234, 0), Access::Write)
            .is_ok());
    }

    #[test]
    fn bad_region_lists_are_refused() {
        let region = |base, size, permissions| Region {
            base,
            size,
            permissions,
            kind: RegionKind::Image,
        };
        let rwx = Permissions {
            read: true,
            write: true,
            execute: true,
        };
        assert!(matches!(
            AddressSpaceMap::new(alloc::vec![region(0x1000, 0x1000, rwx)]),
            Err(MapError::WritableAndExecutable(_))
        ));
        assert!(matches!(
            AddressSpaceMap::new(alloc::vec![region(0x1001, 0x1000, Permissions::READ)]),
            Err(MapError::Misaligned(_))
        ));
        assert!(matches!(
            AddressSpaceMap::new(alloc::vec![region(
                USER_VA_END - 0x1000,
                0x2000,
                Permissions::READ
            )]),
            Err(MapError::OutsideUserSpace(_))
        ));
        assert!(matches!(
            AddressSpaceMap::new(alloc::vec![
                region(0x1000, 0x2000, Permissions::READ),
                region(0x2000, 0x1000, Permissions::READ)
            ]),
            Err(MapError::Overlap(_, _))
        ));
        let many = (0..=MAX_REGIONS as u64)
            .map(|n| region(n * 0x2000, 0x1000, Permissions::READ))
            .collect();
        assert_eq!(
            AddressSpaceMap::new(many),
            Err(MapError::TooManyRegions(MAX_REGIONS + 1))
        );
    }
}
