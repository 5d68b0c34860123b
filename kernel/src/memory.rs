//! Physical memory: the frame allocator, the kernel heap, and what is reserved.
//!
//! Boot hands every RAM range of the DTB to `kcore`'s frame allocator and carves out what is in
//! use: the kernel image (with .bss and stacks), the DTB blob, the initrd (the model's weights are
//! read in place from it), firmware reservations (`/memreserve/`, `/reserved-memory`; on the Pi the
//! spin-table page at 0). The heap then takes the largest free range, less [`FRAME_POOL_RESERVE`]
//! kept for frames, through the linear map: the inference engine puts its KV cache and buffers
//! there. linked_list_allocator is a first-fit free list: simple, no size classes, fine for a
//! kernel whose large allocations are few and long-lived.

#![allow(unsafe_code)]

use crate::layout;
use crate::limits::FRAME_POOL_RESERVE;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use kcore::device_tree::PhysicalRange;
use kcore::frame_allocator::{FrameAllocator, FrameError};
use spin::{Mutex, Once};

struct KernelHeap(Mutex<linked_list_allocator::Heap>);

// SAFETY: every method forwards to linked_list_allocator under a lock; allocate_first_fit returns
// memory of at least `layout.size()` aligned to `layout.align()` or an error (-> null), and
// deallocate receives only pointers this allocator returned with their layout (GlobalAlloc's
// contract on the caller).
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map(|p| p.as_ptr())
            .unwrap_or(core::ptr::null_mut())
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if let Some(pointer) = NonNull::new(pointer) {
            // SAFETY: GlobalAlloc's contract: `pointer` came from `alloc` with this layout.
            unsafe { self.0.lock().deallocate(pointer, layout) };
        }
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(linked_list_allocator::Heap::empty()));

static FRAMES: Mutex<FrameAllocator> = Mutex::new(FrameAllocator::new_const());
static HEAP_SIZE: AtomicU64 = AtomicU64::new(0);
static IMAGE: Once<layout::ImageLayout> = Once::new();

/// What memory setup found.
#[derive(Debug, Clone, Copy)]
pub struct MemorySummary {
    /// Bytes of RAM in the DTB.
    pub total: u64,
    /// Number of RAM ranges.
    pub ranges: usize,
    /// Heap size in bytes.
    pub heap: u64,
    /// Physical range given to the heap.
    pub heap_range: PhysicalRange,
}

/// Why memory setup failed.
#[derive(Debug, Clone, Copy)]
pub enum MemoryError {
    /// The frame allocator rejected a range.
    Frames(FrameError),
    /// No free RAM is left for a heap.
    NoHeapMemory,
}

/// Sets up the frame allocator and the heap. Call once, after the linear map is live.
pub fn init(
    image: layout::ImageLayout,
    ram: &[PhysicalRange],
    reserved: &[PhysicalRange],
) -> Result<MemorySummary, MemoryError> {
    IMAGE.call_once(|| image);
    let mut frames = FRAMES.lock();
    for range in ram {
        let clipped_end = range.end().min(layout::MAX_PHYSICAL_ADDRESS);
        if clipped_end > range.base {
            frames
                .add_memory(PhysicalRange {
                    base: range.base,
                    size: clipped_end - range.base,
                })
                .map_err(MemoryError::Frames)?;
        }
    }
    frames
        .reserve(PhysicalRange {
            base: image.load_physical,
            size: image.size(),
        })
        .map_err(MemoryError::Frames)?;
    for range in reserved {
        frames.reserve(*range).map_err(MemoryError::Frames)?;
    }
    let largest = frames
        .largest_free_range()
        .ok_or(MemoryError::NoHeapMemory)?;
    let keep = if largest.size > 2 * FRAME_POOL_RESERVE {
        FRAME_POOL_RESERVE
    } else {
        largest.size / 8
    };
    let heap_range = PhysicalRange {
        base: largest.base,
        size: (largest.size - keep) & !4095,
    };
    if heap_range.size == 0 {
        return Err(MemoryError::NoHeapMemory);
    }
    frames.reserve(heap_range).map_err(MemoryError::Frames)?;
    // SAFETY: `heap_range` is RAM from the DTB, mapped RW in the linear map, and now reserved in
    // the frame allocator, so nothing else will use it; the heap owns it for the kernel's life.
    unsafe {
        HEAP.0.lock().init(
            layout::linear_address(heap_range.base) as *mut u8,
            heap_range.size as usize,
        );
    }
    HEAP_SIZE.store(heap_range.size, Ordering::Relaxed);
    Ok(MemorySummary {
        total: ram.iter().map(|r| r.size).sum(),
        ranges: ram.len(),
        heap: heap_range.size,
        heap_range,
    })
}

/// (free, total) heap bytes.
pub fn heap_usage() -> (u64, u64) {
    let heap = HEAP.0.lock();
    (heap.free() as u64, HEAP_SIZE.load(Ordering::Relaxed))
}

/// Allocates `count` contiguous physical frames.
pub fn allocate_frames(count: u64) -> Result<u64, FrameError> {
    FRAMES.lock().allocate(count)
}

/// Returns frames to the allocator.
pub fn free_frames(base: u64, count: u64) -> Result<(), FrameError> {
    FRAMES.lock().free(base, count)
}

/// Free bytes in the frame allocator.
pub fn free_frame_bytes() -> u64 {
    FRAMES
        .try_lock()
        .map(|frames| frames.free_bytes())
        .unwrap_or(0)
}

/// If `address` is in a stack guard page, the index of the core whose stack it guards.
pub fn guard_page_owner(address: u64) -> Option<usize> {
    let image = IMAGE.get()?;
    (0..crate::limits::MAX_CPUS).find(|&core| {
        let (guard, bottom, _top) = image.stack_slot(core);
        (guard..bottom).contains(&address)
    })
}

/// The virtual address of core 0's stack guard page: an address that is certainly unmapped
/// (used by `fault unmapped`).
pub fn boot_stack_guard_page() -> Option<u64> {
    IMAGE.get().map(|image| image.stack_slot(0).0)
}
