//! The task address-space plan, and building it into page tables from an ELF image.
//!
//! Every task sees the same shape of TTBR0 space (48-bit, 256 TiB):
//!
//! ```text
//! 0x0000_0000_0000 .. 0x0000_0001_0000   null guard: never mapped (null-pointer derefs fault)
//! 0x0000_0001_0000 .. 0x0000_4000_0000   image window: the ELF's PT_LOAD segments, page-rounded
//!        ...                              unmapped
//! STACK_TOP - stack - STACK_GUARD_BYTES  stack guard: never mapped (overflow faults, reported
//!                                         as StackOverflow by the task system)
//! STACK_TOP - stack .. STACK_TOP         stack, read-write, never executable
//! STACK_TOP = 0x0000_8000_0000 ..         unmapped (an underflow faults too)
//! 0x0001_0000_0000_0000 and above         not TTBR0: every such address is the kernel's
//! ```
//!
//! Fixed addresses (no ASLR) keep faults reproducible and reports comparable run to run; the
//! isolation comes from separate tables and ASIDs, not from secrecy. The guard is 16 pages, not
//! one, because a function with a large frame can step over a single page.
//!
//! [`plan`] checks an [`ElfImage`] against this shape and yields the [`AddressSpaceMap`] the
//! user-slice checks use; [`build`] allocates frames, copies segment bytes, zero-fills bss and
//! stack and maps everything with the segment's permissions. The map and the tables are made
//! from the same plan, so what a syscall may touch is exactly what the task can touch.

use crate::elf::{ElfImage, LoadSegment};
use crate::limits::{DEFAULT_STACK_BYTES, MAX_STACK_BYTES};
use crate::pagetable::{PageFlags, PageTable, PageTableError, PhysAddr, PhysicalMemory};
use crate::sched::{CoreMask, Priority};
use crate::system::TaskDescriptor;
use crate::usermem::{AddressSpaceMap, MapError, Permissions, Region, RegionKind, PAGE_BYTES};
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

/// End of the never-mapped null guard.
pub const NULL_GUARD_END: u64 = 0x1_0000;
/// End of the window PT_LOAD segments must lie in (1 GiB).
pub const IMAGE_WINDOW_END: u64 = 0x4000_0000;
/// Top of every task's stack (2 GiB); the initial SP.
pub const STACK_TOP: u64 = 0x8000_0000;
/// Unmapped bytes below the stack.
pub const STACK_GUARD_BYTES: u64 = 16 * PAGE_BYTES;

/// Why an image does not fit the layout.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// A segment reaches outside `NULL_GUARD_END..IMAGE_WINDOW_END`.
    SegmentOutsideImageWindow {
        /// Program-header index.
        header_index: usize,
        /// First address.
        start: u64,
        /// One past the last.
        end: u64,
    },
    /// Two segments share a page after rounding (their permissions could not both hold).
    SegmentsSharePage {
        /// Program-header index of the lower segment.
        first: usize,
        /// Program-header index of the higher segment.
        second: usize,
    },
    /// Stack size zero or above [`MAX_STACK_BYTES`].
    BadStackSize {
        /// Requested bytes.
        bytes: u64,
    },
    /// The region list was refused (should not happen after the checks above).
    Map(MapError),
}

/// A segment with its page-rounded range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedSegment {
    /// Page-aligned virtual range covering the segment.
    pub pages: Range<u64>,
    /// The segment.
    pub segment: LoadSegment,
}

/// Where everything of one task goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressSpacePlan {
    /// What the task may touch (for user-slice checks).
    pub map: AddressSpaceMap,
    /// Initial PC.
    pub entry: u64,
    /// Initial SP.
    pub stack_top: u64,
    /// The stack's pages.
    pub stack: Range<u64>,
    /// The unmapped guard below the stack.
    pub stack_guard: Range<u64>,
    /// Image segments, by address.
    pub segments: Vec<PlannedSegment>,
}

fn page_floor(address: u64) -> u64 {
    address & !(PAGE_BYTES - 1)
}

fn page_ceil(address: u64) -> Option<u64> {
    address.checked_add(PAGE_BYTES - 1).map(page_floor)
}

/// Lays out `image` with a stack of `stack_bytes` (rounded up to pages; 0 means the default).
pub fn plan(image: &ElfImage<'_>, stack_bytes: u64) -> Result<AddressSpacePlan, LayoutError> {
    let stack_bytes = if stack_bytes == 0 {
        DEFAULT_STACK_BYTES
    } else {
        stack_bytes
    };
    let stack_size = page_ceil(stack_bytes)
        .filter(|size| *size <= MAX_STACK_BYTES)
        .ok_or(LayoutError::BadStackSize { bytes: stack_bytes })?;
    let mut segments: Vec<PlannedSegment> = Vec::new();
    let mut regions = Vec::new();
    for segment in &image.segments {
        let start = segment.virtual_address;
        let end = segment.end();
        let outside = LayoutError::SegmentOutsideImageWindow {
            header_index: segment.header_index,
            start,
            end,
        };
        if start < NULL_GUARD_END || end > IMAGE_WINDOW_END {
            return Err(outside);
        }
        let pages = page_floor(start)..page_ceil(end).ok_or(outside)?;
        if let Some(previous) = segments.last() {
            if previous.pages.end > pages.start {
                return Err(LayoutError::SegmentsSharePage {
                    first: previous.segment.header_index,
                    second: segment.header_index,
                });
            }
        }
        regions.push(Region {
            base: pages.start,
            size: pages.end - pages.start,
            permissions: segment.permissions,
            kind: RegionKind::Image,
        });
        segments.push(PlannedSegment {
            pages,
            segment: *segment,
        });
    }
    let stack = STACK_TOP - stack_size..STACK_TOP;
    regions.push(Region {
        base: stack.start,
        size: stack_size,
        permissions: Permissions::READ_WRITE,
        kind: RegionKind::Stack,
    });
    let map = AddressSpaceMap::new(regions).map_err(LayoutError::Map)?;
    Ok(AddressSpacePlan {
        map,
        entry: image.entry,
        stack_top: STACK_TOP,
        stack_guard: stack.start - STACK_GUARD_BYTES..stack.start,
        stack,
        segments,
    })
}

impl AddressSpacePlan {
    /// The task-system descriptor for a task with this layout.
    pub fn task_descriptor(
        &self,
        name: &str,
        priority: Priority,
        affinity: CoreMask,
        supervisor: bool,
    ) -> TaskDescriptor {
        TaskDescriptor {
            name: String::from(name),
            priority,
            affinity,
            supervisor,
            address_space: self.map.clone(),
            entry: self.entry,
            stack_top: self.stack_top,
            stack_guard: self.stack_guard.clone(),
        }
    }
}

/// Why building an address space failed (everything allocated was returned).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// No frame for a page.
    OutOfFrames,
    /// The table refused a mapping.
    PageTable(PageTableError),
}

/// A task's built address space: its tables and the frames behind its pages.
#[derive(Debug)]
pub struct BuiltAddressSpace {
    /// TTBR0 tables.
    pub table: PageTable,
    /// (virtual page, frame) of every mapped page, in mapping order.
    pub pages: Vec<(u64, PhysAddr)>,
}

fn flags_for(permissions: Permissions) -> PageFlags {
    if permissions.execute {
        PageFlags::USER_TEXT
    } else if permissions.write {
        PageFlags::USER_DATA
    } else {
        PageFlags::USER_READ_ONLY
    }
}

/// Writes the file bytes of `segment` that fall in the page at `page` (the frame is zeroed).
fn fill_page(
    memory: &mut impl PhysicalMemory,
    image: &ElfImage<'_>,
    segment: &LoadSegment,
    page: u64,
    frame: PhysAddr,
) {
    let bytes = image.segment_bytes(segment);
    let data_start = segment.virtual_address;
    let data_end = data_start + bytes.len() as u64;
    let start = data_start.max(page);
    let end = data_end.min(page + PAGE_BYTES);
    if start < end {
        let from = (start - data_start) as usize..(end - data_start) as usize;
        memory.write_bytes(PhysAddr(frame.0 + (start - page)), &bytes[from]);
    }
}

/// Allocates, fills and maps every page of `plan`.
pub fn build(
    plan: &AddressSpacePlan,
    image: &ElfImage<'_>,
    memory: &mut impl PhysicalMemory,
) -> Result<BuiltAddressSpace, BuildError> {
    let table = PageTable::new(memory).map_err(|_| BuildError::OutOfFrames)?;
    let mut built = BuiltAddressSpace {
        table,
        pages: Vec::new(),
    };
    match populate(plan, image, memory, &mut built) {
        Ok(()) => Ok(built),
        Err(error) => {
            release(built, memory);
            Err(error)
        }
    }
}

fn populate(
    plan: &AddressSpacePlan,
    image: &ElfImage<'_>,
    memory: &mut impl PhysicalMemory,
    built: &mut BuiltAddressSpace,
) -> Result<(), BuildError> {
    let stack_pages = (plan.stack.start..plan.stack.end).step_by(PAGE_BYTES as usize);
    let segment_pages = plan.segments.iter().flat_map(|planned| {
        (planned.pages.start..planned.pages.end)
            .step_by(PAGE_BYTES as usize)
            .map(move |page| (page, Some(planned.segment)))
    });
    for (page, segment) in segment_pages.chain(stack_pages.map(|page| (page, None))) {
        let frame = memory.allocate_frame().ok_or(BuildError::OutOfFrames)?;
        built.pages.push((page, frame));
        let flags = match segment {
            Some(segment) => {
                fill_page(memory, image, &segment, page, frame);
                flags_for(segment.permissions)
            }
            None => PageFlags::USER_DATA,
        };
        built
            .table
            .map_page(memory, page, frame, flags)
            .map_err(|error| match error {
                PageTableError::OutOfFrames => BuildError::OutOfFrames,
                other => BuildError::PageTable(other),
            })?;
    }
    Ok(())
}

/// Restores a built space to its initial contents for a restart: writable pages are zeroed and
/// refilled from the image; text and read-only pages cannot have changed and are left alone, so
/// no instruction-cache maintenance is needed and the mappings (and TLB entries) stay valid.
pub fn reset_writable(
    built: &BuiltAddressSpace,
    plan: &AddressSpacePlan,
    image: &ElfImage<'_>,
    memory: &mut impl PhysicalMemory,
) {
    let zero = [0u8; 512];
    for (page, frame) in &built.pages {
        let segment = plan
            .segments
            .iter()
            .find(|planned| planned.pages.contains(page))
            .map(|planned| planned.segment);
        let writable = segment.is_none_or(|segment| segment.permissions.write);
        if !writable {
            continue;
        }
        for offset in (0..PAGE_BYTES).step_by(zero.len()) {
            memory.write_bytes(PhysAddr(frame.0 + offset), &zero);
        }
        if let Some(segment) = segment {
            fill_page(memory, image, &segment, *page, *frame);
        }
    }
}

/// Returns every frame of a built space (tables and pages). The kernel must have switched away
/// from it and invalidated its ASID first.
pub fn release(built: BuiltAddressSpace, memory: &mut impl PhysicalMemory) {
    built.table.destroy(memory, false);
    for (_, frame) in built.pages {
        memory.free_frame(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{build as elf_build, parse};
    use crate::pagetable::tests::FrameHeap;
    use crate::usermem::{Access, UserSliceError};
    use abi::{Generation, TaskId, UserSlice};

    fn read(memory: &FrameHeap, table: &PageTable, address: u64, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|offset| {
                let t = table.translate(memory, address + offset).expect("mapped");
                let mut byte = [0u8];
                memory.read_bytes(t.physical, &mut byte);
                byte[0]
            })
            .collect()
    }

    #[test]
    fn plan_places_segments_stack_and_guards() {
        let file = elf_build::typical();
        let image = parse(&file).unwrap();
        let plan = plan(&image, 0).unwrap();
        assert_eq!(plan.entry, 0x1_0000);
        assert_eq!(plan.stack, STACK_TOP - DEFAULT_STACK_BYTES..STACK_TOP);
        assert_eq!(plan.stack_guard.end, plan.stack.start);
        assert_eq!(plan.segments[2].pages, 0x1_2000..0x1_5000);
        let owner = TaskId::new(0, Generation(0));
        let guard = UserSlice::new(plan.stack_guard.start + 8, 8);
        assert_eq!(
            plan.map.check(owner, guard, Access::Read),
            Err(UserSliceError::Unmapped {
                addr: plan.stack_guard.start + 8
            })
        );
        assert!(plan
            .map
            .check(owner, UserSlice::new(STACK_TOP - 64, 64), Access::Write)
            .is_ok());
        assert!(plan
            .map
            .check(owner, UserSlice::new(0x1_0000, 4), Access::Write)
            .is_err());
        let descriptor = plan.task_descriptor("t", Priority(3), CoreMask::ALL, false);
        assert_eq!(
            (descriptor.entry, descriptor.stack_top),
            (0x1_0000, STACK_TOP)
        );
    }

    #[test]
    fn images_outside_the_window_or_sharing_pages_are_refused() {
        let low = elf_build::image(0x8000, &[(0x8000, 5, b"\0\0\0\0", 4)]);
        assert!(matches!(
            plan(&parse(&low).unwrap(), 0),
            Err(LayoutError::SegmentOutsideImageWindow { start: 0x8000, .. })
        ));
        let high = elf_build::image(IMAGE_WINDOW_END, &[(IMAGE_WINDOW_END, 5, b"\0\0\0\0", 4)]);
        assert!(matches!(
            plan(&parse(&high).unwrap(), 0),
            Err(LayoutError::SegmentOutsideImageWindow { .. })
        ));
        let shared = elf_build::image(
            0x1_0000,
            &[(0x1_0000, 5, b"\0\0\0\0", 4), (0x1_0800, 6, b"x", 1)],
        );
        assert_eq!(
            plan(&parse(&shared).unwrap(), 0),
            Err(LayoutError::SegmentsSharePage {
                first: 0,
                second: 1
            })
        );
        let image_file = elf_build::typical();
        let image = parse(&image_file).unwrap();
        assert_eq!(
            plan(&image, MAX_STACK_BYTES + 1),
            Err(LayoutError::BadStackSize {
                bytes: MAX_STACK_BYTES + 1
            })
        );
        assert!(matches!(
            plan(&image, u64::MAX),
            Err(LayoutError::BadStackSize { .. })
        ));
    }

    #[test]
    fn built_tables_hold_the_image_bytes_with_the_segment_permissions() {
        let file = elf_build::typical();
        let image = parse(&file).unwrap();
        let plan = plan(&image, 8192).unwrap();
        let mut memory = FrameHeap::default();
        let built = build(&plan, &image, &mut memory).unwrap();
        let table = &built.table;
        assert_eq!(
            read(&memory, table, 0x1_0000, 8),
            [0x01, 0x00, 0x00, 0xd4, 0x00, 0x00, 0x00, 0x14]
        );
        assert_eq!(read(&memory, table, 0x1_1000, 7), b"rodata!");
        assert_eq!(read(&memory, table, 0x1_2000, 6), b"data\0\0");
        assert_eq!(read(&memory, table, 0x1_40F0, 16), [0; 16], "bss is zero");
        assert_eq!(
            table.translate(&memory, 0x1_0000).unwrap().flags,
            PageFlags::USER_TEXT
        );
        assert_eq!(
            table.translate(&memory, 0x1_1000).unwrap().flags,
            PageFlags::USER_READ_ONLY
        );
        assert_eq!(
            table.translate(&memory, 0x1_4000).unwrap().flags,
            PageFlags::USER_DATA
        );
        assert_eq!(
            table.translate(&memory, STACK_TOP - 8).unwrap().flags,
            PageFlags::USER_DATA
        );
        // Guards and holes are unmapped, and the map agrees with the tables page by page.
        for address in [
            0,
            0xFFF8,
            plan.stack_guard.start,
            plan.stack_guard.end - 8,
            STACK_TOP,
            0x1_5000,
        ] {
            assert_eq!(
                table.translate(&memory, address),
                None,
                "{address:#x} must be unmapped"
            );
        }
        for region in plan.map.regions() {
            for page in (region.base..region.end()).step_by(PAGE_BYTES as usize) {
                let flags = table
                    .translate(&memory, page)
                    .expect("region page mapped")
                    .flags;
                assert_eq!(flags.write, region.permissions.write);
                assert_eq!(flags.execute, region.permissions.execute);
                assert!(flags.user && !flags.global);
            }
        }
        // 1 text + 1 rodata + 3 data/bss pages and 2 stack pages, each its own frame.
        assert_eq!(built.pages.len(), 7);
        let mut frames: Vec<u64> = built.pages.iter().map(|(_, f)| f.0).collect();
        frames.sort();
        frames.dedup();
        assert_eq!(frames.len(), 7);
        release(built, &mut memory);
        assert!(memory.frames.is_empty(), "release must return every frame");
    }

    #[test]
    fn reset_restores_writable_pages_only() {
        let file = elf_build::typical();
        let image = parse(&file).unwrap();
        let plan = plan(&image, 4096).unwrap();
        let mut memory = FrameHeap::default();
        let built = build(&plan, &image, &mut memory).unwrap();
        let data = built.table.translate(&memory, 0x1_2000).unwrap().physical;
        let stack = built
            .table
            .translate(&memory, STACK_TOP - 16)
            .unwrap()
            .physical;
        memory.write_bytes(data, b"DIRTY!");
        memory.write_bytes(stack, b"old frame");
        reset_writable(&built, &plan, &image, &mut memory);
        assert_eq!(read(&memory, &built.table, 0x1_2000, 6), b"data\0\0");
        assert_eq!(read(&memory, &built.table, STACK_TOP - 16, 9), [0; 9]);
        release(built, &mut memory);
    }

    #[test]
    fn running_out_of_memory_midway_returns_everything() {
        let file = elf_build::typical();
        let image = parse(&file).unwrap();
        let plan = plan(&image, 4096).unwrap();
        // 6 pages + 6 tables (root; L1, L2, L3 for the image; L2, L3 for the stack).
        let mut successes = 0;
        for limit in 0..16 {
            let mut memory = FrameHeap {
                limit: Some(limit),
                ..FrameHeap::default()
            };
            match build(&plan, &image, &mut memory) {
                Err(error) => {
                    assert_eq!(error, BuildError::OutOfFrames);
                    assert!(memory.frames.is_empty(), "leak with {limit} frames");
                }
                Ok(built) => {
                    assert!(limit >= 12, "built with only {limit} frames?");
                    successes += 1;
                    release(built, &mut memory);
                }
            }
        }
        assert_eq!(successes, 4, "12 frames are enough");
    }
}
