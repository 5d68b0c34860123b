//! The kernel's side of two `tasking` traits: physical frames for page tables and task images
//! (`PhysicalMemory` over the frame allocator and the linear map), and copies in and out of task
//! memory (`UserMemory`, walking the owner's page tables page by page and copying through the
//! linear map). The slices reaching `UserMemory` were already checked against the owner's
//! address-space map, so a failed walk means a kernel bookkeeping bug and becomes a `CopyError`,
//! never a fault: the kernel never dereferences a user address.

use super::TaskContext;
use crate::layout::linear_address;
use alloc::vec::Vec;
use tasking::pagetable::{PhysAddr, PhysicalMemory};
use tasking::usermem::{CheckedSlice, CopyError, UserMemory, PAGE_BYTES};

/// Frames from `memory::allocate_frames`, zeroed, addressed through the linear map.
pub struct FrameAllocator;

impl PhysicalMemory for FrameAllocator {
    fn allocate_frame(&mut self) -> Option<PhysAddr> {
        let physical = crate::memory::allocate_frames(1).ok()?;
        let pointer = linear_address(physical) as *mut u8;
        // SAFETY: the frame was just allocated to us (4 KiB of RAM, in the linear map RW).
        unsafe { core::ptr::write_bytes(pointer, 0, PAGE_BYTES as usize) };
        Some(PhysAddr(physical))
    }

    fn free_frame(&mut self, frame: PhysAddr) {
        let _ = crate::memory::free_frames(frame.0, 1);
    }

    fn read_u64(&self, address: PhysAddr) -> u64 {
        // SAFETY: `address` is an 8-byte aligned word of a frame this allocator handed out
        // (page-table entries), mapped RW in the linear map.
        unsafe { (linear_address(address.0) as *const u64).read_volatile() }
    }

    fn write_u64(&mut self, address: PhysAddr, value: u64) {
        // SAFETY: as in read_u64; page-table frames belong to the task layer alone.
        unsafe { (linear_address(address.0) as *mut u64).write_volatile(value) }
    }

    fn write_bytes(&mut self, address: PhysAddr, bytes: &[u8]) {
        // SAFETY: the task layer writes only inside frames it allocated from us (never across a
        // frame end: its callers split at page boundaries).
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                linear_address(address.0) as *mut u8,
                bytes.len(),
            )
        }
    }

    fn read_bytes(&self, address: PhysAddr, into: &mut [u8]) {
        // SAFETY: as in write_bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(
                linear_address(address.0) as *const u8,
                into.as_mut_ptr(),
                into.len(),
            )
        }
    }
}

/// Copies through the owning task's page tables and the linear map.
pub struct LinearUserMemory<'a> {
    pub contexts: &'a mut Vec<Option<TaskContext>>,
    pub frames: &'a mut FrameAllocator,
}

impl LinearUserMemory<'_> {
    /// Calls `each(physical, length, done)` for the pieces of `slice[offset..offset+length]`,
    /// page by page.
    fn walk(
        &mut self,
        slice: &CheckedSlice,
        offset: u64,
        length: usize,
        mut each: impl FnMut(u64, usize, usize),
    ) -> Result<(), CopyError> {
        let owner = slice.owner();
        let error = |address| CopyError {
            task: owner,
            addr: address,
        };
        let context = self
            .contexts
            .get(owner.index_usize())
            .and_then(Option::as_ref)
            .ok_or(error(slice.addr()))?;
        let mut done = 0usize;
        while done < length {
            let address = slice.addr() + offset + done as u64;
            let translation = context
                .space
                .table
                .translate(&*self.frames, address)
                .ok_or(error(address))?;
            let in_page = (PAGE_BYTES - (address & (PAGE_BYTES - 1))) as usize;
            let piece = in_page.min(length - done);
            each(translation.physical.0, piece, done);
            done += piece;
        }
        Ok(())
    }
}

impl UserMemory for LinearUserMemory<'_> {
    fn read(&mut self, from: &CheckedSlice, offset: u64, into: &mut [u8]) -> Result<(), CopyError> {
        let length = into.len();
        let target = into.as_mut_ptr();
        self.walk(from, offset, length, |physical, piece, done| {
            // SAFETY: `physical..+piece` lies in one mapped user page (translated just now) in
            // the linear map; `target + done..+piece` is inside `into`.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    linear_address(physical) as *const u8,
                    target.add(done),
                    piece,
                )
            }
        })
    }

    fn write(&mut self, to: &CheckedSlice, offset: u64, bytes: &[u8]) -> Result<(), CopyError> {
        let source = bytes.as_ptr();
        self.walk(to, offset, bytes.len(), |physical, piece, done| {
            // SAFETY: as in read, the other way round; the slice was checked writable.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    source.add(done),
                    linear_address(physical) as *mut u8,
                    piece,
                )
            }
        })
    }
}
