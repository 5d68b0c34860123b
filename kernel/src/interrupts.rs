//! Interrupt routing: which controller, which handler for which id.
//!
//! The controller is chosen at boot from the DTB (GICv2 or GICv3) and kept behind the
//! [`InterruptController`] trait; handlers are a fixed match here rather than a registration
//! table, because the kernel has three sources today (timer PPI, UART SPI, wake-up SGI) and a
//! match is obviously complete. IRQ handlers never allocate and never take a lock that code with
//! IRQs unmasked could hold on the same core.

use crate::arch::aarch64::gic::InterruptController;
use crate::arch::aarch64::{cpu, smp, timer};
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Once;

static CONTROLLER: Once<&'static dyn InterruptController> = Once::new();
/// GIC id of the console UART's interrupt (0 = none, console polls).
static UART_INTERRUPT: AtomicU32 = AtomicU32::new(0);

/// Installs the controller and initializes its distributor (boot core, once).
pub fn install(controller: &'static dyn InterruptController) {
    let controller = *CONTROLLER.call_once(|| controller);
    controller.init_distributor();
}

/// The controller, once installed.
pub fn controller() -> Option<&'static dyn InterruptController> {
    CONTROLLER.get().copied()
}

/// Per-core setup: CPU interface, SGIs and the timer PPI enabled.
pub fn init_this_core(core_index: usize) {
    if let Some(controller) = controller() {
        controller.init_this_core(core_index);
        controller.enable(smp::WAKE_SGI);
        controller.enable(timer::interrupt_id());
    }
}

/// Routes the UART's receive interrupt to the boot core.
pub fn enable_uart_interrupt(id: u32) {
    if let Some(controller) = controller() {
        UART_INTERRUPT.store(id, Ordering::Relaxed);
        controller.enable(id);
        // Bytes that arrived before the interrupt was enabled raised no interrupt we saw, and an
        // emulated UART hands over the next byte only after the guest reads the last: drain once.
        let were_enabled = crate::arch::aarch64::cpu::mask_irqs();
        crate::console::on_receive_interrupt();
        crate::arch::aarch64::cpu::restore_irqs(were_enabled);
    }
}

/// True when the console's UART raises a receive interrupt (else the console polls it on
/// every wake-up, and core 0 must keep its tick).
pub fn console_has_interrupt() -> bool {
    UART_INTERRUPT.load(Ordering::Relaxed) != 0
}

/// Sends SGI `id` to `core`.
pub fn send_sgi(id: u32, core: usize) {
    if let Some(controller) = controller() {
        controller.send_sgi(id, core);
    }
}

/// Called from the IRQ vector: handles every pending interrupt.
pub fn handle_irq() {
    let Some(controller) = controller() else {
        return;
    };
    while let Some(id) = controller.acknowledge() {
        if id == timer::interrupt_id() {
            // A one-shot wake-up (task timer) is not a tick: only the periodic one counts.
            if timer::on_tick() {
                if let Some(core) = smp::PER_CORE.get(cpu::core_index()) {
                    core.ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else if id == UART_INTERRUPT.load(Ordering::Relaxed) {
            crate::console::on_receive_interrupt();
        }
        // SGIs (WAKE_SGI) need no work: waking the core was the point.
        controller.end_of_interrupt(id);
    }
}
