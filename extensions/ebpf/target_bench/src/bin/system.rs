//! The interpreter benchmark on `qemu-system-aarch64 -M virt -cpu cortex-a72` without a
//! kernel: entered at EL1 with the MMU off (the code is built with strict alignment, so
//! Device-memory rules do not bite), output on the PL011 at 0x0900_0000, exit through
//! semihosting. Runs the five programs `REPEAT` times in one mode (feature `unchecked` picks
//! the fast mode), so the QEMU process's CPU time divided by the executed eBPF instructions
//! gives a load-independent ns per instruction under full-system emulation, the setting of
//! uBPF's published figures.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

use core::alloc::{GlobalAlloc, Layout};
use core::arch::{asm, global_asm};
use core::cell::Cell;
use core::fmt::Write;

use ebpf::runtime::{HelperTable, HostPlatform};
use ebpf::vm::{Program, RunOptions, Vm};

/// Runs per program; feature `once` runs each once, so that the difference between a normal
/// and a `once` build's CPU time excludes QEMU start-up and set-up.
const REPEAT: usize = if cfg!(feature = "once") { 1 } else { 3 };

global_asm!(
    ".section .text.boot",
    ".globl _start",
    "_start:",
    "mrs x0, mpidr_el1",
    "and x0, x0, #0xff",
    "cbnz x0, 2f",
    "ldr x1, =__stack_top",
    "mov sp, x1",
    "mov x1, #(3 << 20)", // CPACR_EL1.FPEN = 0b11: FP/SIMD at EL1
    "msr cpacr_el1, x1",
    "isb",
    "bl system_main",
    "2: wfe",
    "b 2b",
);

const UART_DR: usize = 0x0900_0000;

struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            // SAFETY: the PL011 data register of QEMU virt; a byte write sends a character.
            unsafe { core::ptr::write_volatile(UART_DR as *mut u8, b) };
        }
        Ok(())
    }
}

fn semihosting_exit(code: u64) -> ! {
    // SYS_EXIT_EXTENDED (0x20) with [ADP_Stopped_ApplicationExit, code].
    let block = [0x20026u64, code];
    // SAFETY: the semihosting call reads the two-word block; QEMU exits.
    unsafe {
        asm!("hlt #0xf000", in("x0") 0x20u64, in("x1") block.as_ptr(), options(nostack));
    }
    loop {}
}

struct Bump {
    next: Cell<usize>,
}

// SAFETY: single core, no interrupts: `next` is never accessed concurrently.
unsafe impl Sync for Bump {}

const HEAP_BASE: usize = 0x4400_0000;
const HEAP_SIZE: usize = 64 << 20;

// SAFETY: hands out disjoint, aligned ranges of RAM above the image (64 MiB at 0x4400_0000,
// inside QEMU's RAM with -m 512M); null when exhausted.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let start = (self.next.get() + layout.align() - 1) & !(layout.align() - 1);
        match start.checked_add(layout.size()) {
            Some(end) if end <= HEAP_SIZE => {
                self.next.set(end);
                (HEAP_BASE + start) as *mut u8
            }
            _ => core::ptr::null_mut(),
        }
    }
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump { next: Cell::new(0) };

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(Uart, "panic: {info}");
    semihosting_exit(101)
}

#[no_mangle]
extern "C" fn system_main() -> ! {
    let unchecked = cfg!(feature = "unchecked");
    let platform = HostPlatform::default();
    let mut vm = Vm::new();
    let options = RunOptions::default();
    let mut total = 0u64;
    for bench in ebpf::bench::PROGRAMS {
        let slots = ebpf::asm::assemble(bench.asm).expect("bench program assembles");
        let program = Program::load(&slots, &HelperTable::empty(), &[]).expect("loads");
        let mut input = ebpf::bench::input();
        for _ in 0..REPEAT {
            let out = if unchecked {
                // SAFETY: the bench programs never write their input and stay within it
                // and the stack (they pass the checked mode on the same input: see
                // `ebpf::bench` and its tests).
                unsafe { vm.run_unchecked(&program, &mut input, &options, &platform) }
            } else {
                vm.run(&program, &mut input, &options, &platform)
            };
            match out {
                Ok(o) if o.r0 == bench.expected_r0 => total += o.instructions,
                other => {
                    let _ = writeln!(Uart, "{}: wrong result {:?}", bench.name, other);
                    semihosting_exit(1)
                }
            }
        }
    }
    let _ = writeln!(
        Uart,
        "mode={} repeat={} instructions={}",
        if unchecked { "unchecked" } else { "checked" },
        REPEAT,
        total
    );
    semihosting_exit(0)
}
