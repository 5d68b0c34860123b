//! Arm Generic Interrupt Controller, v2 (QEMU virt gic-version=2, the Pi 4's GIC-400) and v3
//! (QEMU virt gic-version=3), behind one [`InterruptController`] trait.
//!
//! Register maps follow the GIC Architecture Specification (Arm IHI 0069, "GICv3 and GICv4"; and
//! IHI 0048B for GICv2): distributor (GICD) at the first `reg` of the DTB node; v2's memory-mapped
//! CPU interface (GICC) at the second; v3's redistributors (GICR, one 128 KiB frame pair per core:
//! RD_base then SGI_base) at the second, with the CPU interface in ICC_* system registers.
//!
//! Security: the kernel runs non-secure. On QEMU virt (no security extensions) every interrupt is
//! group 0 by default and GICD_CTLR bit 0 enables it; on the Pi (and QEMU raspi4b) the firmware
//! (QEMU's boot code) has made every interrupt non-secure group 1 and the NS view of bit 0 enables
//! exactly that. GICv3 interrupts are put in group 1 explicitly and signalled through
//! ICC_IAR1_EL1. Interrupt ids: 0-15 SGIs (inter-core), 16-31 PPIs (per core: timers), 32+ SPIs.

use kcore::device_tree::GicVersion;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

/// Default priority for every interrupt we enable (lower is more urgent; 0xa0 sits mid-range so
/// a later nested scheme has room on both sides).
const DEFAULT_PRIORITY: u8 = 0xa0;
/// Interrupt ids 1020-1023 are special (spurious); an acknowledge that returns them means none.
const SPURIOUS_FIRST: u32 = 1020;

/// What the kernel needs from an interrupt controller.
pub trait InterruptController: Sync {
    /// v2 or v3.
    #[allow(dead_code)] // part of the controller interface; `info` uses the boot record
    fn version(&self) -> GicVersion;
    /// One-time global setup (boot core, before any core enables interrupts).
    fn init_distributor(&self);
    /// Per-core setup (each core, for its banked SGI/PPI state and CPU interface).
    fn init_this_core(&self, core_index: usize);
    /// Enables interrupt `id`; SPIs are routed to core 0.
    fn enable(&self, id: u32);
    /// Acknowledges the highest-priority pending interrupt; `None` when spurious.
    fn acknowledge(&self) -> Option<u32>;
    /// Signals end of handling for `id`.
    fn end_of_interrupt(&self, id: u32);
    /// Sends software-generated interrupt `id` (0-15) to core `target_core`.
    fn send_sgi(&self, id: u32, target_core: usize);
}

register_structs! {
    /// GIC distributor (GICv2 IHI 0048B 4.3; GICv3 IHI 0069 12.9).
    #[allow(non_snake_case)]
    pub DistributorRegisters {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => typer: ReadOnly<u32>),
        (0x008 => _reserved0),
        (0x080 => igroupr: [ReadWrite<u32>; 32]),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        (0x400 => ipriorityr: [ReadWrite<u32>; 255]),
        (0x7fc => _reserved2),
        (0x800 => itargetsr: [ReadWrite<u32>; 255]),
        (0xbfc => _reserved3),
        (0xc00 => icfgr: [ReadWrite<u32>; 64]),
        (0xd00 => _reserved4),
        (0xf00 => sgir: WriteOnly<u32>),
        (0xf04 => _reserved5),
        (0x6000 => irouter: [ReadWrite<u64>; 988]),
        (0x7ee0 => @END),
    }
}

register_structs! {
    /// GICv2 CPU interface (IHI 0048B 4.4).
    pub CpuInterfaceRegisters {
        (0x00 => ctlr: ReadWrite<u32>),
        (0x04 => pmr: ReadWrite<u32>),
        (0x08 => bpr: ReadWrite<u32>),
        (0x0c => iar: ReadOnly<u32>),
        (0x10 => eoir: WriteOnly<u32>),
        (0x14 => @END),
    }
}

register_structs! {
    /// GICv3 redistributor, RD_base frame (IHI 0069 12.11).
    pub RedistributorRegisters {
        (0x00 => ctlr: ReadWrite<u32>),
        (0x04 => iidr: ReadOnly<u32>),
        (0x08 => typer: ReadOnly<u64>),
        (0x10 => _reserved0),
        (0x14 => waker: ReadWrite<u32>),
        (0x18 => @END),
    }
}

register_structs! {
    /// GICv3 redistributor, SGI_base frame (RD_base + 64 KiB): banked SGI/PPI state.
    pub RedistributorSgiRegisters {
        (0x000 => _reserved0),
        (0x080 => igroupr0: ReadWrite<u32>),
        (0x084 => _reserved1),
        (0x100 => isenabler0: ReadWrite<u32>),
        (0x104 => _reserved2),
        (0x180 => icenabler0: ReadWrite<u32>),
        (0x184 => _reserved3),
        (0x400 => ipriorityr: [ReadWrite<u32>; 8]),
        (0x420 => @END),
    }
}

fn set_priority_byte(registers: &[ReadWrite<u32>], id: u32, priority: u8) {
    if let Some(register) = registers.get((id / 4) as usize) {
        let shift = (id % 4) * 8;
        let value = (register.get() & !(0xff << shift)) | (u32::from(priority) << shift);
        register.set(value);
    }
}

/// GICv2 / GIC-400.
pub struct GicV2 {
    distributor: u64,
    cpu_interface: u64,
    /// Each core's CPU-interface bit for GICD_SGIR targets (read from the banked ITARGETSR0).
    interface_bits: [core::sync::atomic::AtomicU8; crate::limits::MAX_CPUS],
}

impl GicV2 {
    /// # Safety
    /// `distributor` and `cpu_interface` must be the virtual addresses of the mapped GICD and
    /// GICC register blocks, mapped as device memory for the kernel's lifetime.
    pub const unsafe fn new(distributor: u64, cpu_interface: u64) -> Self {
        Self {
            distributor,
            cpu_interface,
            interface_bits: [const { core::sync::atomic::AtomicU8::new(0) };
                crate::limits::MAX_CPUS],
        }
    }

    fn gicd(&self) -> &DistributorRegisters {
        // SAFETY: `new`'s contract: a mapped GICD block that lives forever.
        unsafe { &*(self.distributor as *const DistributorRegisters) }
    }

    fn gicc(&self) -> &CpuInterfaceRegisters {
        // SAFETY: `new`'s contract: a mapped GICC block that lives forever.
        unsafe { &*(self.cpu_interface as *const CpuInterfaceRegisters) }
    }
}

impl InterruptController for GicV2 {
    fn version(&self) -> GicVersion {
        GicVersion::V2
    }

    fn init_distributor(&self) {
        let gicd = self.gicd();
        gicd.ctlr.set(0);
        let lines = ((gicd.typer.get() & 0x1f) + 1) * 32;
        for index in 1..(lines / 32) as usize {
            if let Some(register) = gicd.icenabler.get(index) {
                register.set(u32::MAX);
            }
        }
        gicd.ctlr.set(1);
    }

    fn init_this_core(&self, core_index: usize) {
        let gicd = self.gicd();
        // ITARGETSR0..7 are banked and read as this core's own interface bit.
        let own_bit = (gicd.itargetsr[0].get() & 0xff) as u8;
        if let Some(slot) = self.interface_bits.get(core_index) {
            slot.store(own_bit, core::sync::atomic::Ordering::Relaxed);
        }
        for id in 0..32 {
            set_priority_byte(&gicd.ipriorityr, id, DEFAULT_PRIORITY);
        }
        let gicc = self.gicc();
        gicc.pmr.set(0xff);
        gicc.bpr.set(0);
        gicc.ctlr.set(1);
    }

    fn enable(&self, id: u32) {
        let gicd = self.gicd();
        set_priority_byte(&gicd.ipriorityr, id, DEFAULT_PRIORITY);
        if id >= 32 {
            let target = u32::from(
                self.interface_bits[0]
                    .load(core::sync::atomic::Ordering::Relaxed)
                    .max(1),
            );
            if let Some(register) = gicd.itargetsr.get((id / 4) as usize) {
                let shift = (id % 4) * 8;
                register.set((register.get() & !(0xff << shift)) | (target << shift));
            }
        }
        if let Some(register) = gicd.isenabler.get((id / 32) as usize) {
            register.set(1 << (id % 32));
        }
    }

    fn acknowledge(&self) -> Option<u32> {
        let id = self.gicc().iar.get() & 0x3ff;
        (id < SPURIOUS_FIRST).then_some(id)
    }

    fn end_of_interrupt(&self, id: u32) {
        self.gicc().eoir.set(id);
    }

    fn send_sgi(&self, id: u32, target_core: usize) {
        let bit = self
            .interface_bits
            .get(target_core)
            .map(|b| b.load(core::sync::atomic::Ordering::Relaxed))
            .unwrap_or(0);
        if bit != 0 {
            // SAFETY: ordering only; make the job data visible before the wake-up interrupt.
            unsafe { core::arch::asm!("dsb ishst", options(nostack)) };
            self.gicd().sgir.set((u32::from(bit) << 16) | (id & 0xf));
        }
    }
}

/// GICv3.
pub struct GicV3 {
    distributor: u64,
    redistributors: u64,
    redistributors_size: u64,
    /// MPIDR affinity of each core, for SGI targets.
    affinities: [core::sync::atomic::AtomicU64; crate::limits::MAX_CPUS],
}

macro_rules! write_sysreg {
    ($name:literal, $value:expr) => {
        // SAFETY: writing a GIC CPU-interface system register of this core; the caller keeps the
        // GIC protocol (acknowledge before end-of-interrupt, enable after configuration).
        unsafe { core::arch::asm!(concat!("msr ", $name, ", {0}"), in(reg) $value as u64, options(nostack)) }
    };
}

macro_rules! read_sysreg {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reading a GIC CPU-interface system register of this core (IAR reads have the
        // intended side effect of acknowledging the interrupt).
        unsafe { core::arch::asm!(concat!("mrs {0}, ", $name), out(reg) value, options(nostack)) };
        value
    }};
}

impl GicV3 {
    /// # Safety
    /// `distributor` and `redistributors` must be virtual addresses of the mapped GICD block and of
    /// `redistributors_size` bytes of GICR frames, mapped as device memory for the kernel's lifetime.
    pub const unsafe fn new(
        distributor: u64,
        redistributors: u64,
        redistributors_size: u64,
    ) -> Self {
        Self {
            distributor,
            redistributors,
            redistributors_size,
            affinities: [const { core::sync::atomic::AtomicU64::new(0) }; crate::limits::MAX_CPUS],
        }
    }

    fn gicd(&self) -> &DistributorRegisters {
        // SAFETY: `new`'s contract.
        unsafe { &*(self.distributor as *const DistributorRegisters) }
    }

    fn wait_for_distributor_writes(&self) {
        // GICD_CTLR.RWP (bit 31) is set while a register write is still taking effect.
        for _ in 0..1_000_000 {
            if self.gicd().ctlr.get() & (1 << 31) == 0 {
                return;
            }
        }
    }

    /// Finds this core's redistributor frame by matching GICR_TYPER.Affinity_Value with MPIDR.
    fn own_redistributor(&self) -> Option<u64> {
        let mpidr = super::cpu::mpidr_affinity();
        let affinity = (mpidr & 0xff_ffff) | ((mpidr >> 32) & 0xff) << 24;
        let mut frame = self.redistributors;
        while frame + 0x2_0000 <= self.redistributors + self.redistributors_size {
            // SAFETY: `frame` lies inside the mapped redistributor region (checked by the loop).
            let registers = unsafe { &*(frame as *const RedistributorRegisters) };
            let typer = registers.typer.get();
            if typer >> 32 == affinity {
                return Some(frame);
            }
            if typer & (1 << 4) != 0 {
                return None; // Last
            }
            // Frames are 2 x 64 KiB, or 4 x 64 KiB when virtual LPIs are supported (GICv4).
            frame += if typer & (1 << 1) != 0 {
                0x4_0000
            } else {
                0x2_0000
            };
        }
        None
    }
}

impl InterruptController for GicV3 {
    fn version(&self) -> GicVersion {
        GicVersion::V3
    }

    fn init_distributor(&self) {
        let gicd = self.gicd();
        gicd.ctlr.set(0);
        self.wait_for_distributor_writes();
        let lines = ((gicd.typer.get() & 0x1f) + 1) * 32;
        for index in 1..(lines / 32) as usize {
            if let (Some(disable), Some(group)) =
                (gicd.icenabler.get(index), gicd.igroupr.get(index))
            {
                disable.set(u32::MAX);
                group.set(u32::MAX);
            }
        }
        self.wait_for_distributor_writes();
        // ARE_NS (bit 4) | EnableGrp1NS (bit 1) | EnableGrp1/Grp0 (bit 0, per security view).
        gicd.ctlr.set((1 << 4) | (1 << 1) | 1);
        self.wait_for_distributor_writes();
    }

    fn init_this_core(&self, core_index: usize) {
        if let Some(slot) = self.affinities.get(core_index) {
            slot.store(
                super::cpu::mpidr_affinity(),
                core::sync::atomic::Ordering::Relaxed,
            );
        }
        if let Some(frame) = self.own_redistributor() {
            // SAFETY: `frame` is this core's mapped RD_base frame; SGI_base follows at +64 KiB.
            let (rd, sgi) = unsafe {
                (
                    &*(frame as *const RedistributorRegisters),
                    &*((frame + 0x1_0000) as *const RedistributorSgiRegisters),
                )
            };
            // Wake the redistributor: clear ProcessorSleep, wait for ChildrenAsleep to clear.
            rd.waker.set(rd.waker.get() & !(1 << 1));
            for _ in 0..1_000_000 {
                if rd.waker.get() & (1 << 2) == 0 {
                    break;
                }
            }
            sgi.igroupr0.set(u32::MAX);
            sgi.icenabler0.set(u32::MAX);
            for register in sgi.ipriorityr.iter() {
                register.set(u32::from_ne_bytes([DEFAULT_PRIORITY; 4]));
            }
        }
        // ICC_SRE_EL1.SRE, then priority mask, binary point, group 1 enable.
        let sre = read_sysreg!("S3_0_C12_C12_5");
        write_sysreg!("S3_0_C12_C12_5", sre | 1);
        // SAFETY: synchronization barrier after enabling the system-register interface.
        unsafe { core::arch::asm!("isb", options(nostack)) };
        write_sysreg!("S3_0_C4_C6_0", 0xffu64); // ICC_PMR_EL1
        write_sysreg!("S3_0_C12_C12_3", 0u64); // ICC_BPR1_EL1
        write_sysreg!("S3_0_C12_C12_7", 1u64); // ICC_IGRPEN1_EL1
                                               // SAFETY: as above.
        unsafe { core::arch::asm!("isb", options(nostack)) };
    }

    fn enable(&self, id: u32) {
        if id < 32 {
            if let Some(frame) = self.own_redistributor() {
                // SAFETY: this core's mapped SGI_base frame.
                let sgi = unsafe { &*((frame + 0x1_0000) as *const RedistributorSgiRegisters) };
                set_priority_byte(&sgi.ipriorityr, id, DEFAULT_PRIORITY);
                sgi.isenabler0.set(1 << id);
            }
            return;
        }
        let gicd = self.gicd();
        set_priority_byte(&gicd.ipriorityr, id, DEFAULT_PRIORITY);
        let target = self.affinities[0].load(core::sync::atomic::Ordering::Relaxed);
        if let Some(router) = gicd.irouter.get(id as usize - 32) {
            // IROUTER's layout: Aff3 in [39:32], Aff2..Aff0 in [23:0], like MPIDR.
            router.set(target);
        }
        if let Some(register) = gicd.isenabler.get((id / 32) as usize) {
            register.set(1 << (id % 32));
        }
    }

    fn acknowledge(&self) -> Option<u32> {
        let id = (read_sysreg!("S3_0_C12_C12_0") & 0xff_ffff) as u32; // ICC_IAR1_EL1
        (!(SPURIOUS_FIRST..1024).contains(&id)).then_some(id)
    }

    fn end_of_interrupt(&self, id: u32) {
        write_sysreg!("S3_0_C12_C12_1", id); // ICC_EOIR1_EL1
    }

    fn send_sgi(&self, id: u32, target_core: usize) {
        let Some(affinity) = self
            .affinities
            .get(target_core)
            .map(|a| a.load(core::sync::atomic::Ordering::Relaxed))
        else {
            return;
        };
        // ICC_SGI1R_EL1: TargetList [15:0] (bit per Aff0), Aff1 [23:16], INTID [27:24],
        // Aff2 [39:32], Aff3 [55:48].
        let aff0 = affinity & 0xf;
        let aff1 = (affinity >> 8) & 0xff;
        let aff2 = (affinity >> 16) & 0xff;
        let aff3 = (affinity >> 32) & 0xff;
        let value = (1u64 << aff0)
            | (aff1 << 16)
            | (u64::from(id & 0xf) << 24)
            | (aff2 << 32)
            | (aff3 << 48);
        // SAFETY: ordering only, so the woken core sees the job data.
        unsafe { core::arch::asm!("dsb ishst", options(nostack)) };
        write_sysreg!("S3_0_C12_C11_5", value);
        // SAFETY: as above.
        unsafe { core::arch::asm!("isb", options(nostack)) };
    }
}
