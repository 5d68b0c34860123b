//! QEMU `virt` facts the kernel cannot read from the DTB (only used when the DTB is unusable).

/// Where QEMU loads an arm64 Image on virt (RAM base 0x4000_0000 + text_offset 0x80000).
pub const LOAD_ADDRESS: u64 = 0x4008_0000;
/// The PL011 of `virt` (hw/arm/virt.c, VIRT_UART), for a fatal early error only.
pub const FALLBACK_UART: u64 = 0x0900_0000;
