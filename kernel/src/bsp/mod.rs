//! Board support: what the device tree does not say.
//!
//! The DTB root `compatible` picks the board at run time; one kernel image serves both. Board
//! constants appear only here: the load addresses (to find a UART for an early error when there is
//! no usable DTB at all) and, on the Pi, the peripheral window mapped as device memory for drivers
//! to come. Everything else (UART, GIC, timer, memory, cpus) comes from the tree.

pub mod rpi4;
pub mod virt;

use kcore::device_tree::Board;

/// A UART to report a fatal early error on, guessed from the load address, when the DTB is
/// missing or unreadable.
pub fn fallback_uart(load_physical: u64) -> Option<u64> {
    if load_physical == virt::LOAD_ADDRESS {
        Some(virt::FALLBACK_UART)
    } else if load_physical == rpi4::LOAD_ADDRESS {
        Some(rpi4::FALLBACK_UART)
    } else {
        None
    }
}

/// The PL011 reference clock, used only if the firmware left the UART's baud divisor unset.
pub fn uart_clock_hz(board: Board) -> Option<u64> {
    match board {
        Board::RaspberryPi4 => Some(rpi4::UART_CLOCK_HZ),
        Board::QemuVirt | Board::Unknown => None,
    }
}

/// Device regions to map whole at boot, beyond the devices the DTB names.
pub fn device_windows(board: Board) -> &'static [(u64, u64)] {
    match board {
        Board::RaspberryPi4 => &[(rpi4::PERIPHERAL_WINDOW_BASE, rpi4::PERIPHERAL_WINDOW_SIZE)],
        Board::QemuVirt | Board::Unknown => &[],
    }
}
