//! Raw memory access for running programs: the one module where eBPF addresses become
//! pointers.
//!
//! An eBPF program computes addresses as plain 64-bit integers (r1 + 8, r10 - 16, a map value
//! pointer returned by a helper). The interpreter turns them back into host pointers here and
//! nowhere else, so the unsafe surface of the crate is this file and `sync.rs`.
//!
//! Soundness argument:
//! - In **checked** mode every access is first tested against [`Regions`]: the address range
//!   `[addr, addr + size)` must lie inside one region the program was given (its context or
//!   input memory, its stack, a map's value storage), and a write must hit a writable region.
//!   Every region is memory the caller keeps alive and does not otherwise touch for the whole
//!   run (the run borrows the input mutably, owns the stack, and holds an `Arc` to each map).
//! - In **fast** mode the check is skipped. That is sound only for programs the verifier
//!   proved stay inside those same regions, which is why the entry points that skip checks are
//!   `unsafe fn` and say so.
//! - Accesses use unaligned reads and writes (eBPF permits misaligned plain loads). Atomics
//!   require natural alignment and are refused otherwise (RFC 9669 leaves them undefined).
//! - Map values may be read and written by programs on several cores at once, as in Linux.
//!   Plain accesses to the same value from two cores are racy by design of eBPF (programs use
//!   the atomic instructions when they care); since every access here goes through a raw
//!   pointer (never a Rust reference) and a racing read returns some byte pattern of an
//!   integer, no Rust reference invariant is involved.

#![allow(unsafe_code)]

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::insn::AtomicOp;

/// Most regions one run can see: input, stack, and one value storage per map.
pub const MAX_REGIONS: usize = 2 + crate::limits::MAX_MAPS_PER_PROGRAM;

/// One address range a program may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Whether stores (and atomics) may hit it.
    pub writable: bool,
}

impl Region {
    /// The region covering `bytes`.
    pub fn of_slice(bytes: &mut [u8], writable: bool) -> Region {
        Region {
            start: bytes.as_mut_ptr().expose_provenance() as u64,
            len: bytes.len() as u64,
            writable,
        }
    }

    #[inline(always)]
    fn contains(&self, addr: u64, size: u64) -> bool {
        let rel = addr.wrapping_sub(self.start);
        rel < self.len && self.len - rel >= size
    }
}

/// The regions of one run, searched in order (stack first: most accesses hit it).
#[derive(Clone, Debug)]
pub struct Regions {
    list: [Region; MAX_REGIONS],
    count: usize,
}

impl Default for Regions {
    fn default() -> Self {
        Regions {
            list: [Region {
                start: 0,
                len: 0,
                writable: false,
            }; MAX_REGIONS],
            count: 0,
        }
    }
}

impl Regions {
    /// Adds a region; returns false when the table is full.
    pub fn push(&mut self, region: Region) -> bool {
        if self.count == MAX_REGIONS {
            return false;
        }
        if region.len > 0 {
            self.list[self.count] = region;
            self.count += 1;
        }
        true
    }

    /// Removes every region.
    pub fn clear(&mut self) {
        self.count = 0;
    }

    /// The regions in search order.
    pub fn as_slice(&self) -> &[Region] {
        &self.list[..self.count]
    }

    /// Whether `[addr, addr + size)` is inside one region allowing this access.
    #[inline(always)]
    pub fn allows(&self, addr: u64, size: u64, write: bool) -> bool {
        for region in &self.list[..self.count] {
            if region.contains(addr, size) {
                return region.writable || !write;
            }
        }
        false
    }
}

/// Reads `size` (1, 2, 4, 8) bytes little-endian at `addr`, zero-extended.
///
/// # Safety
/// `[addr, addr + size)` must be readable memory of a live region (checked by
/// [`Regions::allows`] or proven by the verifier).
#[inline(always)]
pub unsafe fn load(addr: u64, size: usize) -> u64 {
    let ptr = core::ptr::with_exposed_provenance::<u8>(addr as usize);
    // The bare-metal AArch64 target compiles with strict alignment, where an unaligned read
    // becomes byte loads; aligned addresses (nearly all) take one load instead.
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    if addr % size as u64 == 0 {
        // SAFETY: in a live region (caller) and naturally aligned (just checked).
        return unsafe {
            match size {
                1 => ptr.read() as u64,
                2 => u16::from_le((ptr as *const u16).read()) as u64,
                4 => u32::from_le((ptr as *const u32).read()) as u64,
                _ => u64::from_le((ptr as *const u64).read()),
            }
        };
    }
    // SAFETY: the caller guarantees the range is inside a live region; unaligned reads are
    // used because eBPF allows misaligned loads.
    unsafe {
        match size {
            1 => ptr.read() as u64,
            2 => u16::from_le((ptr as *const u16).read_unaligned()) as u64,
            4 => u32::from_le((ptr as *const u32).read_unaligned()) as u64,
            _ => u64::from_le((ptr as *const u64).read_unaligned()),
        }
    }
}

/// Writes the low `size` bytes of `value` little-endian at `addr`.
///
/// # Safety
/// `[addr, addr + size)` must be writable memory of a live region.
#[inline(always)]
pub unsafe fn store(addr: u64, size: usize, value: u64) {
    let ptr = core::ptr::with_exposed_provenance_mut::<u8>(addr as usize);
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    if addr % size as u64 == 0 {
        // SAFETY: in a live writable region (caller) and naturally aligned (just checked).
        unsafe {
            match size {
                1 => ptr.write(value as u8),
                2 => (ptr as *mut u16).write((value as u16).to_le()),
                4 => (ptr as *mut u32).write((value as u32).to_le()),
                _ => (ptr as *mut u64).write(value.to_le()),
            }
        }
        return;
    }
    // SAFETY: the caller guarantees the range is inside a live writable region.
    unsafe {
        match size {
            1 => ptr.write(value as u8),
            2 => (ptr as *mut u16).write_unaligned((value as u16).to_le()),
            4 => (ptr as *mut u32).write_unaligned((value as u32).to_le()),
            _ => (ptr as *mut u64).write_unaligned(value.to_le()),
        }
    }
}

/// Performs an atomic read-modify-write of 4 or 8 bytes at `addr`; returns the old value
/// (zero-extended). For `CmpXchg`, `expected` is r0.
///
/// # Safety
/// `[addr, addr + size)` must be writable memory of a live region, and `addr` a multiple of
/// `size` (callers check alignment before calling).
#[inline]
pub unsafe fn atomic(addr: u64, size: usize, op: AtomicOp, operand: u64, expected: u64) -> u64 {
    let ptr = core::ptr::with_exposed_provenance_mut::<u8>(addr as usize);
    if size == 4 {
        // SAFETY: in a live writable region and 4-aligned (caller), so a valid AtomicU32 for
        // the duration of this call; all concurrent accesses are atomics or raw-pointer
        // accesses, never Rust references.
        let cell = unsafe { AtomicU32::from_ptr(ptr as *mut u32) };
        let v = operand as u32;
        let old = match op {
            AtomicOp::Add => cell.fetch_add(v, Ordering::SeqCst),
            AtomicOp::Or => cell.fetch_or(v, Ordering::SeqCst),
            AtomicOp::And => cell.fetch_and(v, Ordering::SeqCst),
            AtomicOp::Xor => cell.fetch_xor(v, Ordering::SeqCst),
            AtomicOp::Xchg => cell.swap(v, Ordering::SeqCst),
            AtomicOp::CmpXchg => {
                match cell.compare_exchange(expected as u32, v, Ordering::SeqCst, Ordering::SeqCst)
                {
                    Ok(old) | Err(old) => old,
                }
            }
        };
        old as u64
    } else {
        // SAFETY: as above, 8 bytes and 8-aligned.
        let cell = unsafe { AtomicU64::from_ptr(ptr as *mut u64) };
        match op {
            AtomicOp::Add => cell.fetch_add(operand, Ordering::SeqCst),
            AtomicOp::Or => cell.fetch_or(operand, Ordering::SeqCst),
            AtomicOp::And => cell.fetch_and(operand, Ordering::SeqCst),
            AtomicOp::Xor => cell.fetch_xor(operand, Ordering::SeqCst),
            AtomicOp::Xchg => cell.swap(operand, Ordering::SeqCst),
            AtomicOp::CmpXchg => {
                match cell.compare_exchange(expected, operand, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(old) | Err(old) => old,
                }
            }
        }
    }
}

/// Copies `len` bytes from program memory at `addr` into `out` (overlap-safe).
///
/// # Safety
/// `[addr, addr + len)` must be readable memory of a live region.
pub unsafe fn copy_out(addr: u64, out: &mut [u8]) {
    let src = core::ptr::with_exposed_provenance::<u8>(addr as usize);
    // SAFETY: the source is a live region (caller); `out` is a distinct Rust buffer, and
    // `copy` tolerates overlap should the caller have passed memory aliasing a region.
    unsafe { core::ptr::copy(src, out.as_mut_ptr(), out.len()) }
}

/// Copies `len` bytes between two addresses of live regions (overlap-safe).
///
/// # Safety
/// Both ranges must lie in live regions, the destination writable.
pub unsafe fn copy_within(src: u64, dst: u64, len: usize) {
    let s = core::ptr::with_exposed_provenance::<u8>(src as usize);
    let d = core::ptr::with_exposed_provenance_mut::<u8>(dst as usize);
    // SAFETY: guaranteed by the caller; `copy` is memmove.
    unsafe { core::ptr::copy(s, d, len) }
}

/// A zeroed, 8-aligned byte buffer owned by a map and accessed only through raw pointers,
/// so that programs on several cores may hold pointers into it at once.
pub struct RawBuffer {
    /// Backing words (8-aligned). Never resized, so addresses stay valid for its lifetime.
    words: Vec<u64>,
    ptr: *mut u64,
    len: usize,
}

// SAFETY: the buffer is only accessed through raw pointers (racy accesses are the eBPF
// memory model for map values, see the module comment) and its allocation never moves.
unsafe impl Send for RawBuffer {}
// SAFETY: as above; no `&`/`&mut` to the contents is ever created.
unsafe impl Sync for RawBuffer {}

impl RawBuffer {
    /// Allocates `len` zero bytes (rounded up to whole words internally).
    pub fn zeroed(len: usize) -> RawBuffer {
        let mut words = alloc::vec![0u64; len.div_ceil(8).max(1)];
        let ptr = words.as_mut_ptr();
        RawBuffer { words, ptr, len }
    }

    /// Address of byte `offset` (no check).
    pub fn addr(&self, offset: usize) -> u64 {
        (self.ptr as *mut u8)
            .wrapping_add(offset)
            .expose_provenance() as u64
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The region covering the whole buffer.
    pub fn region(&self) -> Region {
        Region {
            start: self.addr(0),
            len: self.len as u64,
            writable: true,
        }
    }

    /// Copies `out.len()` bytes from `offset`. Returns false when out of range.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> bool {
        if offset
            .checked_add(out.len())
            .is_none_or(|end| end > self.len)
        {
            return false;
        }
        // SAFETY: in range of the live allocation (checked above).
        unsafe { copy_out(self.addr(offset), out) };
        true
    }

    /// Copies `data` to `offset`. Returns false when out of range.
    pub fn write(&self, offset: usize, data: &[u8]) -> bool {
        if offset
            .checked_add(data.len())
            .is_none_or(|end| end > self.len)
        {
            return false;
        }
        let dst = (self.ptr as *mut u8).wrapping_add(offset);
        // SAFETY: in range of the live allocation; `copy` tolerates `data` aliasing it.
        unsafe { core::ptr::copy(data.as_ptr(), dst, data.len()) };
        true
    }

    /// Zeroes `len` bytes at `offset`. Returns false when out of range.
    pub fn zero(&self, offset: usize, len: usize) -> bool {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return false;
        }
        let dst = (self.ptr as *mut u8).wrapping_add(offset);
        // SAFETY: in range of the live allocation.
        unsafe { core::ptr::write_bytes(dst, 0, len) };
        true
    }

    #[allow(dead_code)]
    fn keep_alive(&self) -> usize {
        self.words.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_check_bounds_and_writability() {
        let mut a = [0u8; 16];
        let mut regions = Regions::default();
        let ro = Region::of_slice(&mut a, false);
        regions.push(ro);
        let base = ro.start;
        assert!(regions.allows(base, 8, false));
        assert!(regions.allows(base + 8, 8, false));
        assert!(!regions.allows(base + 9, 8, false));
        assert!(!regions.allows(base, 1, true));
        assert!(!regions.allows(base.wrapping_sub(1), 1, false));
        assert!(!regions.allows(u64::MAX, 2, false));
    }

    #[test]
    fn raw_buffer_reads_and_writes_in_range_only() {
        let buf = RawBuffer::zeroed(12);
        assert!(buf.write(8, &[1, 2, 3, 4]));
        assert!(!buf.write(9, &[1, 2, 3, 4]));
        let mut out = [0u8; 4];
        assert!(buf.read(8, &mut out));
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(!buf.read(usize::MAX, &mut out));
        assert_eq!(buf.addr(0) % 8, 0);
    }
}
