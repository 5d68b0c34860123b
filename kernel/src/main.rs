//! Anneal: a bare-metal AArch64 microkernel for QEMU `virt` and the Raspberry Pi 4.
//!
//! This crate is the kernel binary. Boot order (each step needs the one before):
//!
//! 1. boot/entry.S: Image header, drop to EL1, FP/SIMD on, .bss zeroed, boot page tables (image
//!    in TTBR1 as 2 MiB blocks), MMU + caches on, jump high, [`kernel_main`].
//! 2. Read the device tree through the early boot window; parse it with `kcore::device_tree`
//!    (checked, never panics). No usable tree: report on a board-guessed UART and halt.
//! 3. Build the real TTBR1 tables (text RX, rodata R, data RW+NX, stacks with guard pages, linear
//!    map of all RAM, MMIO as device) and switch to them; map the UART and the GIC.
//! 4. Console and `log`, banner. Frame allocator and heap (most of RAM).
//! 5. GIC (v2 or v3 per the DTB), timer tick, UART receive interrupt, IRQs on.
//! 6. Secondary cores (PSCI or spin table), each with its own stack, tick and GIC setup.
//! 7. The shell.
//!
//! Only `arch`, `drivers` and `memory` may use `unsafe` (each with `#![allow(unsafe_code)]` and a
//! `// SAFETY:` comment per block); everything portable lives in `kcore` and is host-tested.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod bsp;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod drivers;
#[cfg(target_os = "none")]
mod extensions;
#[cfg(target_os = "none")]
mod interrupts;
#[cfg(target_os = "none")]
mod layout;
#[cfg(target_os = "none")]
mod limits;
#[cfg(target_os = "none")]
mod logger;
#[cfg(target_os = "none")]
mod memory;
#[cfg(target_os = "none")]
mod power;
#[cfg(target_os = "none")]
mod services;
#[cfg(target_os = "none")]
mod shell;
#[cfg(target_os = "none")]
mod task;

/// The worker pool and per-core data, at a short path: `crate::smp::run_on_all_cores(...)`.
#[cfg(target_os = "none")]
#[allow(unused_imports)] // re-export for the inference engine
pub(crate) use arch::aarch64::smp;

/// Host builds of the workspace (`cargo build --workspace`) compile this stub instead.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the Anneal kernel builds only for aarch64-unknown-none (use `cargo xtask build`)");
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod boot_sequence {
    #![allow(unsafe_code)]

    use crate::arch::aarch64::gic::{GicV2, GicV3, InterruptController};
    use crate::arch::aarch64::{cpu, mmu, smp, timer};
    use crate::layout::ImageLayout;
    use crate::{bsp, console, interrupts, logger, memory, power, println, shell};
    use core::fmt::Write;
    use kcore::bootargs::{BootOptions, LogLevel};
    use kcore::device_tree::{DeviceTreeFacts, GicVersion, PhysicalRange};

    /// Stops with a message on a UART guessed from the load address (no usable DTB).
    fn early_fatal(load_physical: u64, message: core::fmt::Arguments<'_>) -> ! {
        if let Some(uart) = bsp::fallback_uart(load_physical) {
            if let Some(base) = mmu::map_boot_window(uart, 0x1000, true) {
                // SAFETY: the boot window now maps the board's PL011 as device memory, for good.
                unsafe { console::init(base, None) };
                let _ = write!(
                    console::EmergencyWriter,
                    "Anneal: fatal early boot error: {message}\n"
                );
            }
        }
        cpu::halt()
    }

    /// Rust entry of the boot core (called by boot/entry.S, MMU on, running high, IRQs masked).
    #[no_mangle]
    extern "C" fn kernel_main(dtb_physical: u64, load_physical: u64) -> ! {
        let image = ImageLayout::from_linker(load_physical);
        let stack_slots = (crate::limits::STACK_GUARD_SIZE + crate::limits::KERNEL_STACK_SIZE)
            * crate::limits::MAX_CPUS;
        if image.stacks_end - image.stacks_start != stack_slots as u64 {
            early_fatal(
                load_physical,
                format_args!(
                    "boot/kernel.ld and kernel/src/limits.rs disagree on the stack layout"
                ),
            );
        }

        // 2. The device tree, through the boot window: header first, then the whole blob.
        if dtb_physical == 0 {
            early_fatal(
                load_physical,
                format_args!("no device tree pointer in x0 (QEMU raspi4b needs -dtb)"),
            );
        }
        let Some(header) = mmu::map_boot_window(dtb_physical, 40, false) else {
            early_fatal(
                load_physical,
                format_args!("cannot map the device tree at {dtb_physical:#x}"),
            );
        };
        // SAFETY: the boot window maps 40 bytes at `header` as normal memory.
        let (magic, total_size) = unsafe {
            let words = header as *const u32;
            (
                u32::from_be(words.read_volatile()),
                u32::from_be(words.add(1).read_volatile()) as usize,
            )
        };
        if magic != kcore::fdt::FDT_MAGIC {
            early_fatal(
                load_physical,
                format_args!(
                    "no device tree at {dtb_physical:#x} (magic {magic:#010x}); QEMU raspi4b needs -dtb"
                ),
            );
        }
        if total_size > crate::limits::MAX_DEVICE_TREE_SIZE {
            early_fatal(
                load_physical,
                format_args!("the device tree at {dtb_physical:#x} claims {total_size} bytes: corrupt or missing (QEMU raspi4b needs -dtb)"),
            );
        }
        let Some(window) = mmu::map_boot_window(dtb_physical, total_size.max(40) as u64, false)
        else {
            early_fatal(
                load_physical,
                format_args!("cannot map the device tree at {dtb_physical:#x}"),
            );
        };
        // SAFETY: the window maps `total_size` bytes of RAM holding the DTB; it stays mapped until
        // the switch to the kernel tables, after which this slice is no longer used.
        let early_blob =
            unsafe { core::slice::from_raw_parts(window as *const u8, total_size.max(40)) };
        let early_facts = match DeviceTreeFacts::from_blob(early_blob) {
            Ok(facts) => facts,
            Err(error) => early_fatal(load_physical, format_args!("device tree rejected: {error}")),
        };

        // Everything below reads RAM through the linear map, which covers only what the tree
        // calls memory: the tree itself and the image must lie inside it.
        let inside_memory = |base: u64, size: u64| {
            early_facts.memory.as_slice().iter().any(|ram| {
                base >= ram.base
                    && base.saturating_add(size)
                        <= ram.end().min(crate::layout::MAX_PHYSICAL_ADDRESS)
            })
        };
        if early_facts.memory.is_empty() {
            early_fatal(
                load_physical,
                format_args!("the device tree describes no memory"),
            );
        }
        if !inside_memory(dtb_physical, total_size as u64)
            || !inside_memory(load_physical, image.size())
        {
            early_fatal(
                load_physical,
                format_args!("the device tree or the kernel image lies outside the memory the tree describes"),
            );
        }

        // 3. Kernel page tables: image, stacks, linear map of RAM; then devices; then switch.
        let cores_in_tree = early_facts.cpus.len().max(1);
        if let Err(error) =
            mmu::build_kernel_tables(image, early_facts.memory.as_slice(), cores_in_tree)
        {
            early_fatal(
                load_physical,
                format_args!("building the kernel page tables failed: {error:?}"),
            );
        }
        for &(base, size) in bsp::device_windows(early_facts.board) {
            if let Err(error) = mmu::map_device_window(base, size) {
                early_fatal(
                    load_physical,
                    format_args!("mapping the peripheral window failed: {error:?}"),
                );
            }
        }
        let Some(uart) = early_facts.uart else {
            early_fatal(
                load_physical,
                format_args!("the device tree names no enabled arm,pl011 UART"),
            );
        };
        let uart_virtual =
            match mmu::map_device(uart.registers.base, uart.registers.size.max(0x1000)) {
                Ok(address) => address,
                Err(error) => early_fatal(
                    load_physical,
                    format_args!("mapping the UART failed: {error:?}"),
                ),
            };
        let gic_mapping = early_facts.gic.map(|gic| {
            let second_size = match gic.version {
                // Only the frames of the cores we can run (128 KiB each, 256 KiB with GICv4).
                GicVersion::V3 => gic
                    .cpu_interface_or_redistributors
                    .size
                    .min(crate::limits::MAX_CPUS as u64 * 0x4_0000),
                GicVersion::V2 => gic.cpu_interface_or_redistributors.size.max(0x2000),
            };
            (
                gic.version,
                mmu::map_device(gic.distributor.base, gic.distributor.size.max(0x1_0000)),
                mmu::map_device(gic.cpu_interface_or_redistributors.base, second_size),
                second_size,
            )
        });
        mmu::switch_to_kernel_tables(image);

        // From here the DTB is read through the linear map, where it stays mapped (and reserved).
        let blob_address = crate::layout::linear_address(dtb_physical);
        // SAFETY: the linear map covers all RAM of the DTB's memory nodes RW; the blob lies in RAM
        // and is reserved from the frame allocator and the heap below, so it is never reused.
        let blob: &'static [u8] =
            unsafe { core::slice::from_raw_parts(blob_address as *const u8, total_size) };
        let facts = match DeviceTreeFacts::from_blob(blob) {
            Ok(facts) => facts,
            Err(error) => early_fatal(
                load_physical,
                format_args!("device tree changed under us: {error}"),
            ),
        };

        // 4. Console, log, banner.
        // SAFETY: `uart_virtual` maps the DTB's PL011 as device memory in the kernel tables.
        unsafe { console::init(uart_virtual, bsp::uart_clock_hz(facts.board)) };
        let options = BootOptions::parse(facts.bootargs);
        power::configure(options.semihosting, facts.psci);
        logger::init(options.log_level.unwrap_or(LogLevel::Info));
        println!(
            "Anneal {} on {} ({}, {} cores in DTB, {} MiB RAM)",
            env!("CARGO_PKG_VERSION"),
            facts.board.name(),
            kcore::cpu_model::CpuModel { midr: cpu::midr() },
            facts.cpus_in_tree,
            facts.total_memory() / (1024 * 1024)
        );
        log::info!(
            "image {:#x}..{:#x} loaded at {:#x}, DTB at {:#x} ({} bytes)",
            image.start,
            image.end,
            load_physical,
            dtb_physical,
            total_size
        );

        let mut reserved: kcore::bounded::BoundedList<
            PhysicalRange,
            { kcore::limits::MAX_RESERVED_RANGES + 2 },
        > = kcore::bounded::BoundedList::new();
        let _ = reserved.push(PhysicalRange {
            base: dtb_physical,
            size: total_size as u64,
        });
        if let Some(initrd) = facts.initrd {
            let _ = reserved.push(initrd);
            let in_ram = facts
                .memory
                .as_slice()
                .iter()
                .any(|ram| initrd.base >= ram.base && initrd.end() <= ram.end());
            if in_ram {
                memory::set_initrd(initrd);
            } else {
                log::warn!(
                    "the initrd at {:#x} is not inside RAM; ignored",
                    initrd.base
                );
            }
        }
        for range in facts.reserved.as_slice() {
            let _ = reserved.push(*range);
        }
        let summary = match memory::init(image, facts.memory.as_slice(), reserved.as_slice()) {
            Ok(summary) => summary,
            Err(error) => {
                log::error!("memory setup failed: {error:?}");
                power::exit(power::EXIT_FATAL_EXCEPTION)
            }
        };
        log::info!(
            "memory: {} MiB in {} range(s); heap {} MiB in {} region(s); {} MiB left for frames",
            summary.total / (1024 * 1024),
            summary.ranges,
            summary.heap / (1024 * 1024),
            summary.heap_regions.len(),
            memory::free_frame_bytes() / (1024 * 1024)
        );

        if let Some(bytes) = memory::initrd() {
            let kind = if bytes.starts_with(b"GGUF") {
                "a GGUF model"
            } else {
                "not a GGUF file"
            };
            log::info!("initrd: {} bytes, {kind}, readable in place", bytes.len());
        }

        // 5. Interrupts.
        if let Some(id) = facts.timer.virtual_timer {
            timer::set_interrupt_id(id);
        }
        let gic_name = match gic_mapping {
            Some((GicVersion::V2, Ok(distributor), Ok(cpu_interface), _)) => {
                // SAFETY: both blocks were mapped as device memory above, permanently.
                let gic: &'static GicV2 = alloc::boxed::Box::leak(alloc::boxed::Box::new(unsafe {
                    GicV2::new(distributor, cpu_interface)
                }));
                interrupts::install(gic as &dyn InterruptController);
                "v2"
            }
            Some((GicVersion::V3, Ok(distributor), Ok(redistributors), size)) => {
                // SAFETY: both blocks were mapped as device memory above, permanently.
                let gic: &'static GicV3 = alloc::boxed::Box::leak(alloc::boxed::Box::new(unsafe {
                    GicV3::new(distributor, redistributors, size)
                }));
                interrupts::install(gic as &dyn InterruptController);
                "v3"
            }
            _ => {
                log::warn!("no usable GIC in the device tree: no interrupts, the console polls");
                "none"
            }
        };
        interrupts::init_this_core(0);
        if let Some(id) = uart.interrupt {
            interrupts::enable_uart_interrupt(id);
        } else {
            log::warn!("the UART has no interrupt in the device tree: the console polls");
        }
        timer::start_tick_on_this_core();
        cpu::unmask_irqs();

        // 6. Secondary cores.
        let ram = facts.memory;
        let online =
            smp::start_secondary_cores(facts.cpus.as_slice(), facts.psci, image, |address| {
                ram.as_slice()
                    .iter()
                    .any(|range| address >= range.base && address + 8 <= range.end())
            });
        log::info!(
            "{online} of {} cores online, GIC {gic_name}, tick {} Hz",
            facts.cpus_in_tree,
            crate::limits::TICK_HZ
        );

        crate::services::init();

        shell::set_boot_info(shell::BootInfo {
            board: facts.board.name(),
            cores_in_tree: facts.cpus_in_tree.max(1),
            memory_total: summary.total,
            memory_ranges: summary.ranges,
            gic: gic_name,
            initrd: facts.initrd,
            bootargs: facts.bootargs,
        });

        // 7. The shell.
        shell::run()
    }

    /// Set by the first panic: a panic while printing a panic exits without printing again.
    static PANICKING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        cpu::mask_irqs();
        if PANICKING.swap(true, core::sync::atomic::Ordering::AcqRel) {
            power::exit_silently(power::EXIT_PANIC);
        }
        let core = cpu::core_index();
        let mut out = console::EmergencyWriter;
        match info.location() {
            Some(location) => {
                let _ = write!(
                    out,
                    "\n[panic] core {core}: {} at {}:{}\n",
                    info.message(),
                    location.file(),
                    location.line()
                );
            }
            None => {
                let _ = write!(out, "\n[panic] core {core}: {}\n", info.message());
            }
        }
        power::exit(power::EXIT_PANIC)
    }
}
