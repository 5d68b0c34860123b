//! Physical memory: the frame allocator, the kernel heap, and what is reserved.
//!
//! Boot hands every RAM range of the DTB to `kcore`'s frame allocator and carves out what is in
//! use: the kernel image (with .bss and stacks), the DTB blob, the initrd (the model's weights are
//! read in place from it), firmware reservations (`/memreserve/`, `/reserved-memory`; on the Pi the
//! spin-table page at 0). The heap then takes every remaining free range (largest first, one
//! linked_list_allocator region each, at most four) less [`FRAME_POOL_RESERVE`] kept for frames,
//! through the linear map: the inference engine puts its KV cache and buffers there, so the heap
//! must be most of RAM even when the initrd splits it. linked_list_allocator is a first-fit free
//! list: simple, no size classes, fine for a kernel whose large allocations are few and
//! long-lived.

#![allow(unsafe_code)]

use crate::layout;
use crate::limits::FRAME_POOL_RESERVE;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use kcore::device_tree::PhysicalRange;
use kcore::frame_allocator::{FrameAllocator, FrameError};
use spin::{Mutex, Once};

/// Most separate RAM ranges the heap spans. Boot splits RAM around the image, the DTB and the
/// initrd (the model), so the free memory is 2-4 ranges; each becomes one region.
const MAX_HEAP_REGIONS: usize = 4;

/// Smallest free range worth a heap region.
const MIN_HEAP_REGION: u64 = 2 * 1024 * 1024;

/// The heap: up to [`MAX_HEAP_REGIONS`] linked_list_allocator regions, largest first.
struct KernelHeap(Mutex<[linked_list_allocator::Heap; MAX_HEAP_REGIONS]>);

// SAFETY: every method forwards to linked_list_allocator under a lock; allocate_first_fit returns
// memory of at least `layout.size()` aligned to `layout.align()` or an error (-> null), and
// deallocate gives a pointer back to the region that contains it, which is the region that
// returned it (regions do not overlap). GlobalAlloc's contract makes the caller pass only
// pointers this allocator returned, with their layout.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut regions = self.0.lock();
        for region in regions.iter_mut().filter(|region| region.size() > 0) {
            if let Ok(pointer) = region.allocate_first_fit(layout) {
                return pointer.as_ptr();
            }
        }
        core::ptr::null_mut()
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        let Some(non_null) = NonNull::new(pointer) else {
            return;
        };
        let mut regions = self.0.lock();
        let owner = regions
            .iter_mut()
            .find(|region| (region.bottom()..region.top()).contains(&pointer));
        if let Some(region) = owner {
            // SAFETY: GlobalAlloc's contract: `pointer` came from `alloc` with this layout, and
            // the region containing it is the one that handed it out.
            unsafe { region.deallocate(non_null, layout) };
        }
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(
    [const { linked_list_allocator::Heap::empty() }; MAX_HEAP_REGIONS],
));

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
    /// Physical ranges given to the heap, largest first.
    pub heap_regions: kcore::bounded::BoundedList<PhysicalRange, MAX_HEAP_REGIONS>,
}

/// Why memory setup failed.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // fields read through Debug in the boot log
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
    // Keep FRAME_POOL_RESERVE for frames (from the top of the largest range that can spare it),
    // then give every remaining free range of at least MIN_HEAP_REGION to the heap.
    let mut free: kcore::bounded::BoundedList<
        PhysicalRange,
        { kcore::limits::MAX_FREE_FRAME_RANGES },
    > = kcore::bounded::BoundedList::new();
    for range in frames.free_ranges() {
        let _ = free.push(*range);
    }
    free.as_mut_slice()
        .sort_unstable_by_key(|range| core::cmp::Reverse(range.size));
    let mut regions: kcore::bounded::BoundedList<PhysicalRange, MAX_HEAP_REGIONS> =
        kcore::bounded::BoundedList::new();
    let mut kept_for_frames = false;
    for range in free.as_slice() {
        let mut range = *range;
        if !kept_for_frames && range.size >= 2 * FRAME_POOL_RESERVE {
            range.size -= FRAME_POOL_RESERVE;
            kept_for_frames = true;
        }
        range.size &= !4095;
        if range.size >= MIN_HEAP_REGION && regions.push(range).is_err() {
            break;
        }
    }
    if regions.is_empty() {
        return Err(MemoryError::NoHeapMemory);
    }
    let mut heap_total = 0u64;
    let mut heap = HEAP.0.lock();
    for (region, range) in heap.iter_mut().zip(regions.as_slice()) {
        frames.reserve(*range).map_err(MemoryError::Frames)?;
        // SAFETY: `range` is RAM from the DTB, mapped RW in the linear map, and now reserved in
        // the frame allocator, so nothing else uses it; the heap owns it for the kernel's life.
        unsafe {
            region.init(
                layout::linear_address(range.base) as *mut u8,
                range.size as usize,
            )
        };
        heap_total += range.size;
    }
    drop(heap);
    HEAP_SIZE.store(heap_total, Ordering::Relaxed);
    Ok(MemorySummary {
        total: ram.iter().map(|r| r.size).sum(),
        ranges: ram.len(),
        heap: heap_total,
        heap_regions: regions,
    })
}

/// (free, total) heap bytes.
pub fn heap_usage() -> (u64, u64) {
    let regions = HEAP.0.lock();
    let free = regions.iter().map(|region| region.free() as u64).sum();
    (free, HEAP_SIZE.load(Ordering::Relaxed))
}

#[allow(dead_code)] // API for the tasking layer (page tables, task stacks)
/// Allocates `count` contiguous physical frames.
pub fn allocate_frames(count: u64) -> Result<u64, FrameError> {
    FRAMES.lock().allocate(count)
}

#[allow(dead_code)] // API for the tasking layer
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

static INITRD: Once<PhysicalRange> = Once::new();

/// Records the initrd's physical range (from `/chosen`); it is reserved from frames and heap.
pub fn set_initrd(range: PhysicalRange) {
    INITRD.call_once(|| range);
}

/// The initrd's bytes, read in place through the linear map (the model's GGUF file when QEMU runs
/// with `-initrd model.gguf`). `None` when the boot had no initrd or it lies outside RAM.
#[allow(dead_code)] // API for the inference engine
pub fn initrd() -> Option<&'static [u8]> {
    let range = INITRD.get()?;
    if range.end() > layout::MAX_PHYSICAL_ADDRESS {
        return None;
    }
    // SAFETY: the initrd lies in RAM that the linear map covers read-write for the kernel's
    // lifetime (memory::init reserved it from the frame allocator and the heap, so nothing writes
    // to it), hence a shared 'static slice over it is sound.
    Some(unsafe {
        core::slice::from_raw_parts(
            layout::linear_address(range.base) as *const u8,
            range.size as usize,
        )
    })
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
