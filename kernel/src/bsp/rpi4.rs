//! Raspberry Pi 4 (BCM2711) facts the DTB does not give directly.
//!
//! The firmware (and QEMU raspi4b) loads kernel8.img at 0x8_0000 and enters it at EL2 with the
//! DTB address in x0; cores 1-3 wait in the armstub's spin loop for a non-zero value at their
//! `cpu-release-addr` (0xe0/0xe8/0xf0, named in the DTB). The kernel runs with the "low
//! peripheral" address map (the default): peripherals at 0xFC00_0000..0xFF80_0000 and the ARM
//! local block with the GIC-400 at 0xFF80_0000..0x1_0000_0000 (BCM2711 ARM Peripherals, 1.2).

/// Where the firmware loads kernel8.img.
pub const LOAD_ADDRESS: u64 = 0x8_0000;
/// UART0 (PL011) in the low-peripheral map, for a fatal early error only.
pub const FALLBACK_UART: u64 = 0xfe20_1000;
/// UART0's reference clock as the firmware sets it (config.txt `init_uart_clock`, default 48 MHz
/// on the Pi 4). The DTB names the clock only through the firmware clock driver, so this is one of
/// the few board constants; it is used only if the firmware left the baud divisor unset.
pub const UART_CLOCK_HZ: u64 = 48_000_000;
/// Start of the peripheral window mapped as Device-nGnRE.
pub const PERIPHERAL_WINDOW_BASE: u64 = 0xfc00_0000;
/// Size of the peripheral window (to 4 GiB, including the ARM local block and the GIC).
pub const PERIPHERAL_WINDOW_SIZE: u64 = 0x400_0000;
