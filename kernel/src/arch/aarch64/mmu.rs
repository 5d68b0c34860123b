//! The kernel's own translation tables (TTBR1) and the early boot window.
//!
//! Boot (boot/entry.S) turns the MMU on with minimal tables: the image as 2 MiB blocks in TTBR1
//! and a 1 GiB identity block in TTBR0. That is enough to run Rust, but not to read the device
//! tree (it lies anywhere in RAM) or to enforce permissions. So:
//!
//! 1. [`map_boot_window`] adds up to four 2 MiB blocks to the *boot* level-2 table (free slots
//!    at the top of the kernel's first GiB) so the DTB can be read before anything else exists;
//!    it can also map a fallback UART (device memory) to report a fatal early error.
//! 2. [`build_kernel_tables`] builds the real tables from a pool of page-aligned tables in .bss
//!    using `kcore::page_table`: text RX, rodata R, data/bss RW+NX at 4 KiB granularity, each
//!    core's stack RW+NX with its guard page left unmapped, a linear map of every RAM range (1 GiB
//!    and 2 MiB blocks where aligned), and MMIO as Device-nGnRE.
//! 3. [`switch_to_kernel_tables`] installs them. It runs the TTBR1 write from the identity map
//!    (the `switch_ttbr1_identity` routine at its physical address) so no instruction is fetched
//!    through TTBR1 while the TLB may hold both the old 2 MiB blocks and the new 4 KiB pages of
//!    the same addresses (which could raise a TLB conflict abort on real hardware).
//! 4. After the switch, TTBR0 walks are disabled (TCR_EL1.EPD0) on every core once it runs high:
//!    null-pointer bugs fault, and TTBR0 stays free for user tasks.

use crate::layout::{self, ImageLayout};
use crate::limits::KERNEL_TABLE_POOL_SIZE;
use kcore::page_table::{
    self, Attributes, MapError, TableMemory, ENTRIES_PER_TABLE, LEVEL2_BLOCK_SIZE,
};
use spin::Mutex;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES_PER_TABLE]);

/// Page-aligned tables in .bss for the kernel's TTBR1 tables (they must exist before any
/// allocator does).
#[allow(dead_code)] // `tables` is only reached through raw pointers (PoolTables)
struct TablePool {
    tables: [Table; KERNEL_TABLE_POOL_SIZE],
}

static mut TABLE_POOL: TablePool = TablePool {
    tables: [const { Table([0; ENTRIES_PER_TABLE]) }; KERNEL_TABLE_POOL_SIZE],
};

extern "C" {
    static mut boot_ttbr1_level2: [u64; ENTRIES_PER_TABLE];
    fn switch_ttbr1_identity(ttbr1: u64);
}

/// Tables handed out from the pool, addressed by physical address.
pub struct PoolTables {
    image: ImageLayout,
    next_free: usize,
}

impl PoolTables {
    fn pool_base_virtual() -> u64 {
        (&raw const TABLE_POOL) as u64
    }

    fn table_virtual(&self, table_physical: u64) -> *mut u64 {
        let offset = table_physical - self.image.to_physical(Self::pool_base_virtual());
        (Self::pool_base_virtual() + offset) as *mut u64
    }
}

impl TableMemory for PoolTables {
    fn allocate_table(&mut self) -> Option<u64> {
        if self.next_free >= KERNEL_TABLE_POOL_SIZE {
            return None;
        }
        let virtual_address = Self::pool_base_virtual() + (self.next_free * 4096) as u64;
        self.next_free += 1;
        // The pool is zeroed with .bss and each table is handed out once.
        Some(self.image.to_physical(virtual_address))
    }

    fn read(&self, table: u64, index: usize) -> u64 {
        let entry = self
            .table_virtual(table)
            .wrapping_add(index % ENTRIES_PER_TABLE);
        // SAFETY: `table` came from allocate_table, so it is a pool table inside the mapped image;
        // the index is reduced modulo the table length. Volatile: the MMU reads these too.
        unsafe { entry.read_volatile() }
    }

    fn write(&mut self, table: u64, index: usize, descriptor: u64) {
        let entry = self
            .table_virtual(table)
            .wrapping_add(index % ENTRIES_PER_TABLE);
        // SAFETY: as in `read`; the pool is only written under the KERNEL_TABLES lock (or before
        // other cores run), and table walks are coherent with this core's stores (TCR_EL1
        // says walks are inner-shareable write-back), so a barrier before use suffices.
        unsafe { entry.write_volatile(descriptor) }
    }
}

/// The kernel's tables and their root, after [`build_kernel_tables`].
pub struct KernelTables {
    tables: PoolTables,
    root: u64,
}

static KERNEL_TABLES: Mutex<Option<KernelTables>> = Mutex::new(None);

/// Maps `[physical, physical + length)` through the boot window; returns its virtual address.
/// `device` selects Device-nGnRE. Returns `None` if it needs more than the window's slots.
pub fn map_boot_window(physical: u64, length: u64, device: bool) -> Option<u64> {
    let first_block = physical & !(LEVEL2_BLOCK_SIZE - 1);
    let end = physical.checked_add(length.max(1))?;
    let blocks = (end - first_block).div_ceil(LEVEL2_BLOCK_SIZE) as usize;
    if blocks > layout::BOOT_WINDOW_SLOTS {
        return None;
    }
    let attributes = if device {
        Attributes::DEVICE
    } else {
        Attributes::KERNEL_DATA
    };
    for block in 0..blocks {
        let descriptor = (first_block + (block as u64) * LEVEL2_BLOCK_SIZE)
            | attributes.descriptor_bits()
            | 0b01;
        let slot = layout::BOOT_WINDOW_FIRST_SLOT + block;
        // SAFETY: boot_ttbr1_level2 is the live level-2 table of the boot TTBR1 (in .bss, mapped
        // RW by the boot tables); slots 508-511 are never used by the image (it is far smaller
        // than 1016 MiB). Replacing an entry: break (invalid + TLB flush) before make.
        unsafe {
            let entry = (&raw mut boot_ttbr1_level2).cast::<u64>().add(slot);
            entry.write_volatile(0);
            core::arch::asm!(
                "dsb ishst",
                "tlbi vmalle1",
                "dsb ish",
                "isb",
                options(nostack)
            );
            entry.write_volatile(descriptor);
            core::arch::asm!("dsb ishst", "isb", options(nostack));
        }
    }
    Some(
        layout::KERNEL_VIRTUAL_BASE
            + (layout::BOOT_WINDOW_FIRST_SLOT as u64) * LEVEL2_BLOCK_SIZE
            + (physical - first_block),
    )
}

/// Why the kernel tables could not be built.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // fields read through Debug in the early boot error
pub enum TableBuildError {
    /// Mapping the named region failed.
    Map {
        region: &'static str,
        error: MapError,
    },
}

/// Builds TTBR1 tables for the image, the stacks, the linear map of `memory` and the `devices`.
pub fn build_kernel_tables(
    image: ImageLayout,
    memory: &[kcore::device_tree::PhysicalRange],
    cores: usize,
) -> Result<(), TableBuildError> {
    let mut tables = PoolTables {
        image,
        next_free: 0,
    };
    let root = tables.allocate_table().ok_or(TableBuildError::Map {
        region: "root",
        error: MapError::OutOfTables,
    })?;
    let mut map =
        |region: &'static str, start: u64, end: u64, attributes: Attributes, blocks: bool| {
            page_table::map_range(
                &mut tables,
                root,
                start,
                image.to_physical(start),
                end - start,
                attributes,
                blocks,
            )
            .map_err(|error| TableBuildError::Map { region, error })
        };
    map(
        "text",
        image.start,
        image.text_end,
        Attributes::KERNEL_TEXT,
        false,
    )?;
    map(
        "rodata",
        image.text_end,
        image.rodata_end,
        Attributes::KERNEL_READ_ONLY,
        false,
    )?;
    map(
        "data",
        image.rodata_end,
        image.bss_end,
        Attributes::KERNEL_DATA,
        false,
    )?;
    for core in 0..cores.min(crate::limits::MAX_CPUS) {
        let (_guard, bottom, top) = image.stack_slot(core);
        map("stack", bottom, top, Attributes::KERNEL_DATA, false)?;
    }
    for range in memory {
        let start = range.base.next_multiple_of(4096);
        let end = range.end().min(layout::MAX_PHYSICAL_ADDRESS) & !4095;
        if end <= start {
            continue;
        }
        page_table::map_range(
            &mut tables,
            root,
            layout::linear_address(start),
            start,
            end - start,
            Attributes::KERNEL_DATA,
            true,
        )
        .map_err(|error| TableBuildError::Map {
            region: "linear map",
            error,
        })?;
    }
    *KERNEL_TABLES.lock() = Some(KernelTables { tables, root });
    Ok(())
}

/// Maps an MMIO block into the device window (idempotent per page); returns its virtual address.
pub fn map_device(physical: u64, length: u64) -> Result<u64, MapError> {
    let start = physical & !4095;
    let end = physical
        .checked_add(length)
        .ok_or(MapError::OutOfTables)?
        .next_multiple_of(4096);
    let mut guard = KERNEL_TABLES.lock();
    let kernel = guard.as_mut().ok_or(MapError::OutOfTables)?;
    let mut page = start;
    while page < end {
        let virtual_address = layout::device_address(page);
        if page_table::translate(&kernel.tables, kernel.root, virtual_address).is_err() {
            page_table::map_range(
                &mut kernel.tables,
                kernel.root,
                virtual_address,
                page,
                4096,
                Attributes::DEVICE,
                false,
            )?;
        }
        page += 4096;
    }
    // SAFETY: barriers only; they make the new entries visible to the table walker.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack)) };
    Ok(layout::device_address(physical))
}

/// Maps a large MMIO window with 2 MiB blocks where aligned (the Pi's peripheral window). Call
/// before mapping single devices inside it.
pub fn map_device_window(physical: u64, length: u64) -> Result<u64, MapError> {
    let mut guard = KERNEL_TABLES.lock();
    let kernel = guard.as_mut().ok_or(MapError::OutOfTables)?;
    page_table::map_range(
        &mut kernel.tables,
        kernel.root,
        layout::device_address(physical),
        physical,
        length,
        Attributes::DEVICE,
        true,
    )?;
    // SAFETY: barriers only.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack)) };
    Ok(layout::device_address(physical))
}

/// Physical address of the kernel's TTBR1 root (for secondary cores).
pub fn kernel_root() -> Option<u64> {
    KERNEL_TABLES.lock().as_ref().map(|kernel| kernel.root)
}

/// Installs the kernel tables on the boot core.
pub fn switch_to_kernel_tables(image: ImageLayout) {
    let Some(root) = kernel_root() else { return };
    let trampoline = image.to_physical(switch_ttbr1_identity as *const () as u64);
    // SAFETY: the trampoline's physical address is identity-mapped by the boot TTBR0 (the 1 GiB
    // block around the image), it touches no memory and returns to our (high) return address,
    // which the new tables map to the same physical text. `root` holds complete tables.
    unsafe {
        let switch: extern "C" fn(u64) = core::mem::transmute(trampoline as usize);
        switch(root);
    }
    disable_ttbr0_walks();
    enable_privileged_access_never();
}

/// Set once a core found PAN (ID_AA64MMFR1_EL1.PAN, FEAT_PAN, ARMv8.1) and turned it on.
static PAN_ENABLED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// True when Privileged Access Never is on (every core enables it at start when the CPU has it).
pub fn privileged_access_never() -> bool {
    PAN_ENABLED.load(core::sync::atomic::Ordering::Relaxed)
}

/// Turns on PAN on this core if the CPU has it: the kernel then faults on any load or store to
/// memory EL0 can access (task pages), so its only way into user memory is the checked copy
/// through the linear map (task/memory.rs), which PAN does not cover. PSTATE.PAN is set now,
/// and SCTLR_EL1.SPAN cleared (bit 23, RES1 on ARMv8.0 and set by boot/entry.S) so that every
/// exception taken to EL1, from EL0 too, sets PAN again (Arm ARM D8.4.2, D19.2.118).
pub fn enable_privileged_access_never() {
    let features: u64;
    // SAFETY: reading an ID register has no side effect.
    unsafe {
        core::arch::asm!("mrs {0}, id_aa64mmfr1_el1", out(reg) features, options(nomem, nostack))
    };
    if (features >> 20) & 0xF == 0 {
        return;
    }
    // SAFETY: clearing SPAN only changes what exception entry does to PSTATE.PAN; `msr pan, #1`
    // (encoded by hand: assemblers want +pan for it) forbids EL1 access to EL0 pages, which the
    // kernel never makes (task memory is copied through the linear map).
    unsafe {
        core::arch::asm!(
            "mrs {t}, sctlr_el1",
            "bic {t}, {t}, #(1 << 23)",
            "msr sctlr_el1, {t}",
            "isb",
            ".inst 0xd500419f",
            t = out(reg) _,
            options(nostack)
        );
    }
    PAN_ENABLED.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Sets TCR_EL1.EPD0 so TTBR0 (the boot identity map) is no longer walked on this core.
pub fn disable_ttbr0_walks() {
    set_ttbr0_walks(false);
    // SAFETY: invalidating this core's TLB only costs later walks; it drops the boot identity
    // map's entries.
    unsafe { core::arch::asm!("tlbi vmalle1", "dsb nsh", "isb", options(nostack)) };
}

/// Clears (`true`) or sets (`false`) TCR_EL1.EPD0 on this core, without TLB maintenance: the
/// task switch enables TTBR0 walks before it enters a task and disables them when the core is
/// back in the kernel (task/mod.rs).
pub fn set_ttbr0_walks(enabled: bool) {
    let epd0: u64 = if enabled { 0 } else { 1 << 7 };
    // SAFETY: this core runs entirely from TTBR1 addresses (kernel image, stacks, linear map),
    // so enabling or disabling TTBR0 translations cannot affect the running code.
    unsafe {
        core::arch::asm!(
            "mrs {t}, tcr_el1",
            "bic {t}, {t}, #(1 << 7)",
            "orr {t}, {t}, {epd0}",
            "msr tcr_el1, {t}",
            "isb",
            t = out(reg) _,
            epd0 = in(reg) epd0,
            options(nostack)
        );
    }
}
