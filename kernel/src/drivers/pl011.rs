//! Arm PrimeCell UART (PL011), the console on QEMU virt and on the Pi 4's UART0.
//!
//! Register map and bits from the PL011 Technical Reference Manual (Arm DDI 0183G, ch. 3).
//! The kernel does not program the baud rate: QEMU ignores it, and on the Pi the firmware has set
//! UART0 up for 115200 8N1 from its fixed clock (`enable_uart=1`); rewriting IBRD/FBRD would need
//! that clock, which the DTB only gives indirectly. Initialization keeps IBRD/FBRD, sets 8-bit
//! words with FIFOs, and enables the receive (RXIM) and receive-timeout (RTIM) interrupts: RX
//! fires when the FIFO passes its level, RT when bytes sit in it for 32 bit-periods, so a single
//! typed byte and a piped burst are both delivered promptly.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {
    u32,
    /// Flag register (DDI 0183G 3.3.3).
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Line control (3.3.7).
    LCR_H [
        /// Word length: 0b11 = 8 bits.
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 0b11],
        /// Enable FIFOs.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    /// Control (3.3.8).
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt mask set/clear (3.3.10) and clear (3.3.13).
    IMSC [
        /// Receive timeout.
        RTIM OFFSET(6) NUMBITS(1) [],
        /// Receive.
        RXIM OFFSET(4) NUMBITS(1) []
    ]
}

register_structs! {
    /// PL011 registers (DDI 0183G table 3-1).
    pub Pl011Registers {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => ibrd: ReadWrite<u32>),
        (0x28 => fbrd: ReadWrite<u32>),
        (0x2c => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x30 => cr: ReadWrite<u32, CR::Register>),
        (0x34 => ifls: ReadWrite<u32>),
        (0x38 => imsc: ReadWrite<u32, IMSC::Register>),
        (0x3c => _reserved2),
        (0x44 => icr: WriteOnly<u32, IMSC::Register>),
        (0x48 => @END),
    }
}

/// A PL011 at a mapped address.
pub struct Pl011 {
    base: u64,
}

impl Pl011 {
    /// # Safety
    /// `base` must be the virtual address of a PL011 register block mapped as device memory for
    /// the kernel's lifetime, and only one `Pl011` may drive it at a time (the console lock).
    pub const unsafe fn new(base: u64) -> Self {
        Self { base }
    }

    fn registers(&self) -> &Pl011Registers {
        // SAFETY: `new`'s contract.
        unsafe { &*(self.base as *const Pl011Registers) }
    }

    /// Sets 8-bit words, keeps the baud rate and the FIFO setting, enables RX/TX and the receive
    /// interrupts.
    ///
    /// The FIFO-enable bit is kept as the firmware left it: toggling it flushes the receive FIFO
    /// (QEMU's PL011 does exactly that), which would drop input typed or piped before the kernel
    /// started. The Pi firmware leaves FIFOs on; QEMU leaves them off (one byte per interrupt).
    pub fn init(&self) {
        let registers = self.registers();
        self.flush();
        registers.cr.set(0);
        let fifo_enabled = registers.lcr_h.is_set(LCR_H::FEN);
        registers.lcr_h.write(
            LCR_H::WLEN::EightBit
                + if fifo_enabled {
                    LCR_H::FEN::SET
                } else {
                    LCR_H::FEN::CLEAR
                },
        );
        registers.ifls.set(0); // RX interrupt at 1/8 full: short latency for typed input
        registers.imsc.write(IMSC::RXIM::SET + IMSC::RTIM::SET);
        registers
            .cr
            .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Whether a baud-rate divisor is programmed (IBRD is 0 after reset: the UART sends nothing).
    pub fn baud_rate_configured(&self) -> bool {
        self.registers().ibrd.get() != 0
    }

    /// Programs the divisor for `baud` from the reference clock `clock_hz` (DDI 0183G 3.3.6:
    /// divisor = clock / (16 * baud), integer part in IBRD, 6-bit fraction in FBRD). Only valid
    /// while the UART is disabled, so call before [`Pl011::init`].
    pub fn set_baud_rate(&self, clock_hz: u64, baud: u64) {
        let divisor_times_64 = (clock_hz * 4 + baud / 2) / baud; // 64 * clock / (16 * baud), rounded
        let registers = self.registers();
        self.flush();
        registers.cr.set(0);
        registers.ibrd.set((divisor_times_64 >> 6) as u32);
        registers.fbrd.set((divisor_times_64 & 0x3f) as u32);
    }

    /// Writes one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&self, byte: u8) {
        let registers = self.registers();
        while registers.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        registers.dr.set(u32::from(byte));
    }

    /// Waits until everything written has left the UART.
    pub fn flush(&self) {
        while self.registers().fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }

    /// Reads one received byte, if any.
    pub fn read_byte(&self) -> Option<u8> {
        let registers = self.registers();
        if registers.fr.is_set(FR::RXFE) {
            None
        } else {
            Some((registers.dr.get() & 0xff) as u8)
        }
    }

    /// Acknowledges the receive interrupts (after draining the FIFO).
    pub fn clear_receive_interrupts(&self) {
        self.registers()
            .icr
            .write(IMSC::RXIM::SET + IMSC::RTIM::SET);
    }
}
