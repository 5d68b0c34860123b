//! The console: formatted output to the UART and line input from its receive ring.
//!
//! Output is serialized by a spin lock so lines from different cores do not interleave; `\n`
//! becomes `\r\n` for terminals. The fault and panic paths use [`EmergencyWriter`], which skips
//! the lock (the faulting code may hold it) — a garbled line beats a deadlocked report.
//! Input arrives by the UART receive interrupt into a [`ByteRing`]; [`read_byte`] waits for it
//! with interrupts masked around the emptiness check and `wfi`, so a byte arriving in between
//! still wakes the core. Without a UART interrupt (DTB silent) the console polls on each wake-up
//! (timer ticks).

use crate::drivers::pl011::Pl011;
use kcore::limits::RECEIVE_RING_CAPACITY;
use kcore::ring_buffer::ByteRing;
use spin::{Mutex, Once};

static UART: Once<Pl011> = Once::new();
static OUTPUT_LOCK: Mutex<()> = Mutex::new(());
static RECEIVED: Mutex<ByteRing<RECEIVE_RING_CAPACITY>> = Mutex::new(ByteRing::new());

/// Starts the console on the PL011 mapped at `base`. `fallback_clock_hz`: the UART reference
/// clock to program 115200 baud from, if the firmware left the divisor unset.
///
/// # Safety
/// `base` must be the virtual address of a PL011 register block mapped as device memory forever.
#[allow(unsafe_code)]
pub unsafe fn init(base: u64, fallback_clock_hz: Option<u64>) {
    // SAFETY: forwarded from this function's contract; Once makes it the only driver instance.
    let uart = UART.call_once(|| unsafe { Pl011::new(base) });
    if let Some(clock_hz) = fallback_clock_hz {
        if !uart.baud_rate_configured() {
            uart.set_baud_rate(clock_hz, 115_200);
        }
    }
    uart.init();
}

fn write_bytes_unlocked(bytes: &[u8]) {
    if let Some(uart) = UART.get() {
        for &byte in bytes {
            if byte == b'\n' {
                uart.write_byte(b'\r');
            }
            uart.write_byte(byte);
        }
    }
}

/// Writes raw bytes (no `\n` translation) under the output lock: the line editor's echo.
pub fn write_raw(bytes: &[u8]) {
    let _guard = OUTPUT_LOCK.lock();
    if let Some(uart) = UART.get() {
        for &byte in bytes {
            uart.write_byte(byte);
        }
    }
}

struct LockedWriter;

impl core::fmt::Write for LockedWriter {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        write_bytes_unlocked(text.as_bytes());
        Ok(())
    }
}

/// Writes text without taking the output lock (fault and panic reports only).
pub struct EmergencyWriter;

impl core::fmt::Write for EmergencyWriter {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        write_bytes_unlocked(text.as_bytes());
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(arguments: core::fmt::Arguments<'_>) {
    use core::fmt::Write;
    let _guard = OUTPUT_LOCK.lock();
    let _ = LockedWriter.write_fmt(arguments);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::_print(format_args!($($arg)*)));
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}

/// Waits until the UART has sent everything (before powering off).
pub fn flush() {
    if let Some(uart) = UART.get() {
        uart.flush();
    }
}

/// UART receive interrupt: moves every received byte into the ring.
pub fn on_receive_interrupt() {
    if let Some(uart) = UART.get() {
        let mut ring = RECEIVED.lock();
        while let Some(byte) = uart.read_byte() {
            ring.push(byte);
        }
        uart.clear_receive_interrupts();
    }
}

/// Bytes dropped because the receive ring was full.
pub fn dropped_input_bytes() -> u64 {
    with_received(|ring| ring.dropped())
}

/// Runs `work` on the receive ring with IRQs masked: the UART receive interrupt takes the same
/// lock, so holding it with IRQs enabled would let that interrupt spin forever on its own core.
fn with_received<R>(work: impl FnOnce(&mut ByteRing<RECEIVE_RING_CAPACITY>) -> R) -> R {
    let were_enabled = crate::arch::aarch64::cpu::mask_irqs();
    let result = work(&mut RECEIVED.lock());
    crate::arch::aarch64::cpu::restore_irqs(were_enabled);
    result
}

/// Ctrl-C (ETX), the key that interrupts a long-running command.
pub const INTERRUPT_KEY: u8 = 0x03;

/// Takes a waiting Ctrl-C out of the input, leaving every other byte for the shell; true when
/// there was one. A long command (`ai`) polls this between steps, so typed-ahead or piped
/// commands wait their turn instead of stopping it. Bytes still in the UART's receive FIFO
/// (not yet moved by the interrupt, or every byte when the UART has no interrupt) are moved
/// into the ring first, in order.
pub fn take_interrupt_key() -> bool {
    with_received(|ring| {
        if let Some(uart) = UART.get() {
            while let Some(byte) = uart.read_byte() {
                ring.push(byte);
            }
        }
        ring.take_first(INTERRUPT_KEY)
    })
}

/// Waits for the next input byte.
pub fn read_byte() -> u8 {
    use crate::arch::aarch64::cpu;
    loop {
        let were_enabled = cpu::mask_irqs();
        let byte = RECEIVED.lock().pop();
        if let Some(byte) = byte {
            cpu::restore_irqs(were_enabled);
            return byte;
        }
        // Also look at the UART itself: the only input path without an interrupt, and a safety
        // net if an interrupt was missed (the ring is empty, so no byte is taken out of order).
        {
            if let Some(byte) = UART.get().and_then(|uart| uart.read_byte()) {
                cpu::restore_irqs(were_enabled);
                return byte;
            }
        }
        if were_enabled {
            // Idle: core 0 runs its tasks until the next interrupt (a received byte ends it).
            crate::task::console_wait();
        } else {
            core::hint::spin_loop();
        }
        cpu::restore_irqs(were_enabled);
    }
}
