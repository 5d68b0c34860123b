//! Bare-metal-target harness for `ebpf::bench` and `ebpf::selftest` under `qemu-aarch64`.
//!
//! The binary is built for `aarch64-unknown-none` (the kernel's target) and speaks the Linux
//! system-call ABI directly (`svc #0`: write, clock_gettime, exit), so the same code the
//! kernel links runs under user-mode emulation. Memory comes from a bump allocator over a
//! static array (nothing is freed: the run is short and bounded). This is a measuring tool
//! beside the crate, not kernel code.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

use core::alloc::{GlobalAlloc, Layout};
use core::arch::{asm, global_asm};
use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};

use ebpf::runtime::HostPlatform;

global_asm!(
    ".globl _start",
    "_start:",
    "mov x29, xzr",
    "mov x30, xzr",
    "bl harness_main",
    "mov x8, #93", // exit(x0)
    "svc #0",
);

const SYS_WRITE: u64 = 64;
const SYS_EXIT: u64 = 93;
const SYS_CLOCK_GETTIME: u64 = 113;
const CLOCK_THREAD_CPUTIME_ID: u64 = 3;

fn syscall3(number: u64, a0: u64, a1: u64, a2: u64) -> u64 {
    let ret: u64;
    // SAFETY: a Linux system call; the arguments are plain values or pointers to live
    // buffers owned by the caller for the duration of the call.
    unsafe {
        asm!("svc #0", in("x8") number, inlateout("x0") a0 => ret, in("x1") a1, in("x2") a2,
             options(nostack));
    }
    ret
}

fn write_stdout(bytes: &[u8]) {
    syscall3(SYS_WRITE, 1, bytes.as_ptr() as u64, bytes.len() as u64);
}

fn exit(code: u64) -> ! {
    syscall3(SYS_EXIT, code, 0, 0);
    loop {}
}

fn now_ns() -> u64 {
    let mut ts = [0u64; 2];
    syscall3(
        SYS_CLOCK_GETTIME,
        CLOCK_THREAD_CPUTIME_ID,
        ts.as_mut_ptr() as u64,
        0,
    );
    ts[0] * 1_000_000_000 + ts[1]
}

struct Stdout;

impl Write for Stdout {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_stdout(s.as_bytes());
        Ok(())
    }
}

const HEAP_SIZE: usize = 64 << 20;

/// The heap's backing store (used only through its address).
#[repr(align(16))]
#[allow(dead_code)]
struct Heap([u8; HEAP_SIZE]);

static mut HEAP: Heap = Heap([0; HEAP_SIZE]);

struct Bump {
    next: AtomicUsize,
}

// SAFETY: hands out disjoint, suitably aligned ranges of the static heap (the offset only
// grows, by compare-and-swap); returns null when the heap is exhausted.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = core::ptr::addr_of_mut!(HEAP) as *mut u8;
        let mut current = self.next.load(Ordering::Relaxed);
        loop {
            let start = (current + layout.align() - 1) & !(layout.align() - 1);
            let end = match start.checked_add(layout.size()) {
                Some(end) if end <= HEAP_SIZE => end,
                _ => return core::ptr::null_mut(),
            };
            match self
                .next
                .compare_exchange(current, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return base.wrapping_add(start),
                Err(seen) => current = seen,
            }
        }
    }
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    next: AtomicUsize::new(0),
};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(Stdout, "panic: {info}");
    exit(101)
}

#[no_mangle]
extern "C" fn harness_main() -> u64 {
    let mut out = Stdout;
    let report = ebpf::selftest::run_all(&HostPlatform::default());
    let _ = writeln!(
        out,
        "selftest: {} passed, {} failed",
        report.passed,
        report.failed.len()
    );
    for (name, why) in &report.failed {
        let _ = writeln!(out, "  FAIL {name}: {why}");
    }
    let results = match ebpf::bench::run_all(&now_ns, 3) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "bench failed: {e}");
            return 1;
        }
    };
    for r in &results {
        let _ = writeln!(
            out,
            "{:<16} {:>10} insns  checked {:>6.2} ns/insn  unchecked {:>6.2} ns/insn",
            r.name,
            r.instructions,
            r.checked_ns_per_insn(),
            r.unchecked_ns_per_insn()
        );
    }
    if report.failed.is_empty() {
        0
    } else {
        1
    }
}
