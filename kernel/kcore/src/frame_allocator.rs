//! Physical frame (4 KiB page) allocator over the RAM the device tree describes.
//!
//! Design: a sorted list of free, page-aligned, non-overlapping ranges. Boot hands it every
//! memory range, then carves out what is in use (the kernel image, the DTB, the initrd, firmware
//! reservations, the heap). Allocation is first fit from the low end of a range; freeing inserts
//! the range back and merges it with its neighbours. This is deliberately simpler than a buddy
//! allocator: the kernel's big consumer (the model's buffers) uses the heap, and frames are for
//! page tables and stacks, which are few. All bookkeeping is in a fixed-size list, so it works
//! before the heap exists, and a list that is full reports an error instead of losing memory.

use crate::bounded::BoundedList;
use crate::device_tree::PhysicalRange;
use crate::limits::MAX_FREE_FRAME_RANGES;

/// Bytes per frame.
pub const FRAME_SIZE: u64 = 4096;

/// Why a frame operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// No free range holds `frames` contiguous frames (aligned as asked).
    OutOfMemory { frames: u64 },
    /// The range to free overlaps memory that is already free.
    DoubleFree { base: u64 },
    /// The address or size is not a multiple of [`FRAME_SIZE`], or the alignment is not a power of two.
    Misaligned { value: u64 },
    /// The free list is at capacity; the range could not be recorded.
    TooFragmented,
}

/// The allocator.
#[derive(Debug, Clone, Default)]
pub struct FrameAllocator {
    free: BoundedList<PhysicalRange, MAX_FREE_FRAME_RANGES>,
}

fn align_up(value: u64, align: u64) -> Option<u64> {
    value.checked_add(align - 1).map(|v| v & !(align - 1))
}

impl FrameAllocator {
    /// An allocator with no memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// An allocator with no memory, usable in a `static`.
    pub const fn new_const() -> Self {
        Self {
            free: BoundedList::new_with(PhysicalRange { base: 0, size: 0 }),
        }
    }

    /// The free ranges, sorted by address.
    pub fn free_ranges(&self) -> &[PhysicalRange] {
        self.free.as_slice()
    }

    /// Total free bytes.
    pub fn free_bytes(&self) -> u64 {
        self.free.as_slice().iter().map(|r| r.size).sum()
    }

    /// The largest free range.
    pub fn largest_free_range(&self) -> Option<PhysicalRange> {
        self.free.as_slice().iter().copied().max_by_key(|r| r.size)
    }

    /// Adds RAM (shrunk inward to whole frames). Overlap with free memory is an error.
    pub fn add_memory(&mut self, range: PhysicalRange) -> Result<(), FrameError> {
        let Some(base) = align_up(range.base, FRAME_SIZE) else {
            return Ok(());
        };
        let end = range.end() & !(FRAME_SIZE - 1);
        if end <= base {
            return Ok(());
        }
        self.insert_free(PhysicalRange {
            base,
            size: end - base,
        })
    }

    /// Removes `range` (grown outward to whole frames) from the free memory, wherever it overlaps.
    /// Reserving memory that is not free is not an error (firmware reservations may lie outside RAM).
    pub fn reserve(&mut self, range: PhysicalRange) -> Result<(), FrameError> {
        let base = range.base & !(FRAME_SIZE - 1);
        let end = align_up(range.end(), FRAME_SIZE).unwrap_or(!(FRAME_SIZE - 1));
        let mut index = 0;
        while index < self.free.len() {
            let free = self.free.as_slice()[index];
            if free.end() <= base || free.base >= end {
                index += 1;
                continue;
            }
            let below = PhysicalRange {
                base: free.base,
                size: base.saturating_sub(free.base),
            };
            let above_base = end.max(free.base);
            let above = PhysicalRange {
                base: above_base,
                size: free.end().saturating_sub(above_base),
            };
            self.free.remove(index);
            if above.size > 0 {
                self.free
                    .insert(index, above)
                    .map_err(|_| FrameError::TooFragmented)?;
            }
            if below.size > 0 {
                self.free
                    .insert(index, below)
                    .map_err(|_| FrameError::TooFragmented)?;
                index += 1;
            }
            if above.size > 0 {
                index += 1;
            }
        }
        Ok(())
    }

    /// Allocates `frames` contiguous frames; returns the physical base address.
    pub fn allocate(&mut self, frames: u64) -> Result<u64, FrameError> {
        self.allocate_aligned(frames, FRAME_SIZE)
    }

    /// Allocates `frames` contiguous frames whose base is a multiple of `alignment` bytes.
    pub fn allocate_aligned(&mut self, frames: u64, alignment: u64) -> Result<u64, FrameError> {
        if !alignment.is_power_of_two() || alignment < FRAME_SIZE {
            return Err(FrameError::Misaligned { value: alignment });
        }
        let size = frames
            .checked_mul(FRAME_SIZE)
            .filter(|&s| s > 0)
            .ok_or(FrameError::OutOfMemory { frames })?;
        let found = self.free.as_slice().iter().find_map(|free| {
            let base = align_up(free.base, alignment)?;
            (base.checked_add(size)? <= free.end()).then_some(base)
        });
        let base = found.ok_or(FrameError::OutOfMemory { frames })?;
        self.reserve(PhysicalRange { base, size })?;
        Ok(base)
    }

    /// Returns `frames` frames at `base` to the free memory, merging with neighbours.
    pub fn free(&mut self, base: u64, frames: u64) -> Result<(), FrameError> {
        if !base.is_multiple_of(FRAME_SIZE) {
            return Err(FrameError::Misaligned { value: base });
        }
        let size = frames
            .checked_mul(FRAME_SIZE)
            .ok_or(FrameError::Misaligned { value: frames })?;
        if size == 0 {
            return Ok(());
        }
        self.insert_free(PhysicalRange { base, size })
    }

    fn insert_free(&mut self, range: PhysicalRange) -> Result<(), FrameError> {
        if range.base.checked_add(range.size).is_none() {
            return Err(FrameError::Misaligned { value: range.base });
        }
        let position = self
            .free
            .as_slice()
            .iter()
            .position(|r| r.base >= range.base)
            .unwrap_or(self.free.len());
        let overlaps_previous =
            position > 0 && self.free.as_slice()[position - 1].end() > range.base;
        let overlaps_next = self
            .free
            .as_slice()
            .get(position)
            .is_some_and(|next| next.base < range.end());
        if overlaps_previous || overlaps_next {
            return Err(FrameError::DoubleFree { base: range.base });
        }
        let merges_previous =
            position > 0 && self.free.as_slice()[position - 1].end() == range.base;
        let merges_next = self
            .free
            .as_slice()
            .get(position)
            .is_some_and(|next| next.base == range.end());
        let slots = self.free.as_mut_slice();
        match (merges_previous, merges_next) {
            (true, true) => {
                let next_size = slots[position].size;
                slots[position - 1].size += range.size + next_size;
                self.free.remove(position);
            }
            (true, false) => slots[position - 1].size += range.size,
            (false, true) => {
                slots[position].base = range.base;
                slots[position].size += range.size;
            }
            (false, false) => self
                .free
                .insert(position, range)
                .map_err(|_| FrameError::TooFragmented)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(base: u64, size: u64) -> PhysicalRange {
        PhysicalRange { base, size }
    }

    #[test]
    fn reserve_splits_and_allocation_avoids_reserved_memory() {
        let mut frames = FrameAllocator::new();
        frames.add_memory(range(0x4000_0000, 0x100_0000)).unwrap();
        // Kernel image and an unaligned DTB.
        frames.reserve(range(0x4008_0000, 0x20_0000)).unwrap();
        frames.reserve(range(0x4050_0010, 0x100)).unwrap();
        assert_eq!(
            frames.free_ranges(),
            &[
                range(0x4000_0000, 0x8_0000),
                range(0x4028_0000, 0x28_0000),
                range(0x4050_1000, 0xaf_f000)
            ]
        );
        let first = frames.allocate(0x80).unwrap();
        assert_eq!(first, 0x4000_0000);
        let big = frames.allocate(0x100).unwrap();
        assert_eq!(big, 0x4028_0000);
        let aligned = frames.allocate_aligned(1, 0x20_0000).unwrap();
        assert_eq!(aligned % 0x20_0000, 0);
        assert_eq!(
            frames.allocate(0x1_0000),
            Err(FrameError::OutOfMemory { frames: 0x1_0000 })
        );
    }

    #[test]
    fn free_merges_neighbours_and_detects_double_free() {
        let mut frames = FrameAllocator::new();
        frames.add_memory(range(0, 0x10_000)).unwrap();
        let a = frames.allocate(4).unwrap();
        let b = frames.allocate(4).unwrap();
        let total = frames.free_bytes();
        frames.free(a, 4).unwrap();
        assert_eq!(frames.free(a, 1), Err(FrameError::DoubleFree { base: a }));
        frames.free(b, 4).unwrap();
        assert_eq!(frames.free_bytes(), total + 8 * FRAME_SIZE);
        assert_eq!(frames.free_ranges(), &[range(0, 0x10_000)]);
        assert_eq!(frames.free(3, 1), Err(FrameError::Misaligned { value: 3 }));
    }

    #[test]
    fn reservations_outside_ram_and_unaligned_memory_are_harmless() {
        let mut frames = FrameAllocator::new();
        frames.add_memory(range(0x1001, 0x3000)).unwrap();
        assert_eq!(frames.free_ranges(), &[range(0x2000, 0x2000)]);
        frames
            .reserve(range(0xffff_ffff_ffff_f000, 0x2000))
            .unwrap();
        frames.reserve(range(0, 0x1000)).unwrap();
        assert_eq!(frames.free_bytes(), 0x2000);
        assert_eq!(frames.largest_free_range(), Some(range(0x2000, 0x2000)));
        assert!(frames.allocate(0).is_err());
    }

    #[test]
    fn fragmentation_beyond_the_limit_is_an_error_not_a_panic() {
        let mut frames = FrameAllocator::new();
        frames
            .add_memory(range(0, FRAME_SIZE * 4 * MAX_FREE_FRAME_RANGES as u64))
            .unwrap();
        let mut saw_error = false;
        for index in 0..(2 * MAX_FREE_FRAME_RANGES as u64) {
            if frames
                .reserve(range(index * 2 * FRAME_SIZE, FRAME_SIZE))
                .is_err()
            {
                saw_error = true;
                break;
            }
        }
        assert!(saw_error);
    }
}
