//! The kernel's virtual address layout and the linker symbols that describe the image.
//!
//! TTBR1 covers the top 512 GiB (39-bit VAs, see kcore::page_table):
//!
//! | virtual range                           | what                                      |
//! |-----------------------------------------|-------------------------------------------|
//! | 0xFFFF_FF80_0000_0000 + 0x80000 ...     | the kernel image (text RX, rodata R, data RW+NX, stacks with guard pages) |
//! | 0xFFFF_FF80_3FC0_0000 .. +8 MiB         | early boot window (DTB, fallback UART) in the boot tables only |
//! | 0xFFFF_FFA0_0000_0000 + physical        | device window: MMIO mapped Device-nGnRE on demand |
//! | 0xFFFF_FFC0_0000_0000 + physical        | linear map of all RAM from the DTB (RW, NX, write-back) |
//!
//! Fixed offsets make translation arithmetic (no lookups) and keep the 2 MiB congruence of the
//! image with both boards' load addresses, so the boot tables can use 2 MiB blocks. TTBR0 is left
//! for user tasks (T0SZ = 16: 48-bit task address spaces with 4-level tables).

/// Virtual address of the 2 MiB-aligned base below the image (the image starts 0x80000 above).
pub const KERNEL_VIRTUAL_BASE: u64 = 0xFFFF_FF80_0000_0000;
/// Start of the device window.
pub const DEVICE_MAP_BASE: u64 = 0xFFFF_FFA0_0000_0000;
/// Start of the linear map of RAM.
pub const LINEAR_MAP_BASE: u64 = 0xFFFF_FFC0_0000_0000;
/// Largest physical address the linear map and the device window can express (128 GiB).
pub const MAX_PHYSICAL_ADDRESS: u64 = 128 << 30;
/// Level-2 index (in the kernel's first GiB) of the early boot window's first 2 MiB block.
pub const BOOT_WINDOW_FIRST_SLOT: usize = 508;
/// Number of 2 MiB slots in the boot window.
pub const BOOT_WINDOW_SLOTS: usize = 4;

extern "C" {
    static __kernel_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __bss_end: u8;
    static __stacks_start: u8;
    static __stacks_end: u8;
    static __kernel_end: u8;
}

/// Addresses of the kernel image's sections (virtual), read from linker symbols.
#[derive(Debug, Clone, Copy)]
pub struct ImageLayout {
    /// First byte of the image (the arm64 Image header).
    pub start: u64,
    /// End of .text (page aligned).
    pub text_end: u64,
    /// End of .rodata (page aligned).
    pub rodata_end: u64,
    /// End of .bss (page aligned); .data and .bss lie between `rodata_end` and here.
    pub bss_end: u64,
    /// First byte of the per-core stack slots.
    pub stacks_start: u64,
    /// End of the stack slots.
    pub stacks_end: u64,
    /// End of the image (page aligned).
    pub end: u64,
    /// Physical address the loader put `start` at.
    pub load_physical: u64,
}

impl ImageLayout {
    /// Reads the linker symbols.
    pub fn from_linker(load_physical: u64) -> Self {
        // Taking the address of an extern static is safe; only reading it would not be.
        let address = |symbol: *const u8| symbol as u64;
        Self {
            start: address(&raw const __kernel_start),
            text_end: address(&raw const __text_end),
            rodata_end: address(&raw const __rodata_end),
            bss_end: address(&raw const __bss_end),
            stacks_start: address(&raw const __stacks_start),
            stacks_end: address(&raw const __stacks_end),
            end: address(&raw const __kernel_end),
            load_physical,
        }
    }

    /// Physical address of a virtual address inside the image.
    pub fn to_physical(self, virtual_address: u64) -> u64 {
        virtual_address - self.start + self.load_physical
    }

    /// Size of the image in memory (with .bss and stacks).
    pub fn size(self) -> u64 {
        self.end - self.start
    }

    /// The guard page and the stack range `[bottom, top)` of core `index`'s slot.
    pub fn stack_slot(self, index: usize) -> (u64, u64, u64) {
        let slot = (crate::limits::STACK_GUARD_SIZE + crate::limits::KERNEL_STACK_SIZE) as u64;
        let guard = self.stacks_start + slot * index as u64;
        let bottom = guard + crate::limits::STACK_GUARD_SIZE as u64;
        (
            guard,
            bottom,
            bottom + crate::limits::KERNEL_STACK_SIZE as u64,
        )
    }
}

/// Virtual address of physical RAM in the linear map.
pub fn linear_address(physical: u64) -> u64 {
    LINEAR_MAP_BASE + physical
}

/// Virtual address of an MMIO register block in the device window.
pub fn device_address(physical: u64) -> u64 {
    DEVICE_MAP_BASE + physical
}
