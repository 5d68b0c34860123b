//! What the kernel needs to know from the device tree, extracted in one checked pass.
//!
//! The device tree is the source of truth for the machine: memory ranges (all of them: the Pi 4
//! has memory above 1 GiB in separate ranges), reservations, `/chosen` bootargs and initrd, the
//! PL011 UART, the GIC (v2 `arm,cortex-a15-gic` / `arm,gic-400`, v3 `arm,gic-v3`), the generic
//! timer's PPIs, every CPU with its MPIDR and enable method (PSCI or spin-table with its release
//! address), and the PSCI conduit. Board code supplies constants only where the tree is silent.
//!
//! Design: a single walk of [`Fdt::tokens`] with a fixed stack of open nodes. A node's properties
//! precede its children in the FDT encoding, so when a node closes every ancestor's
//! `#address-cells`, `#size-cells` and `ranges` are known, and its `reg` can be translated up to a
//! CPU physical address (the BCM2711 `/soc` bus maps 0x7e00_0000 to 0xfe00_0000; its GIC sits
//! behind another range). Each node's interesting properties are gathered while it is open and
//! classified when it closes, because `compatible` may come after `reg`. A node that cannot be
//! understood (cells wider than 64 bits, an address no range covers) is skipped, not fatal; a
//! blob whose encoding is broken is an error. No path allocates or panics.

use crate::bounded::BoundedList;
use crate::fdt::{DtbError, Fdt, Token};
use crate::limits::{
    MAX_CPUS, MAX_DEVICE_TREE_DEPTH, MAX_MEMORY_RANGES, MAX_RANGES_ENTRIES, MAX_RESERVED_RANGES,
};

/// A physical address range `[base, base + size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhysicalRange {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl PhysicalRange {
    /// One past the last byte, saturating at `u64::MAX`.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// Which board the root `compatible` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Board {
    /// QEMU `virt` (`linux,dummy-virt`).
    QemuVirt,
    /// Raspberry Pi 4 Model B (`raspberrypi,4-model-b` / `brcm,bcm2711`).
    RaspberryPi4,
    /// Anything else: the kernel runs with what the tree says and no board constants.
    #[default]
    Unknown,
}

impl Board {
    /// The name `info` prints.
    pub fn name(&self) -> &'static str {
        match self {
            Board::QemuVirt => "qemu-virt",
            Board::RaspberryPi4 => "raspberrypi-4b",
            Board::Unknown => "unknown",
        }
    }
}

/// GIC architecture version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (memory-mapped CPU interface), also GIC-400.
    V2,
    /// GICv3 (system-register CPU interface, redistributors).
    V3,
}

/// The interrupt controller's registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GicFacts {
    /// v2 or v3.
    pub version: GicVersion,
    /// Distributor (GICD) registers.
    pub distributor: PhysicalRange,
    /// v2: CPU interface (GICC); v3: the redistributor (GICR) region.
    pub cpu_interface_or_redistributors: PhysicalRange,
}

/// The PL011 UART the console uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UartFacts {
    /// Register block.
    pub registers: PhysicalRange,
    /// GIC interrupt id (SPI number + 32), when the tree gives one in GIC three-cell form.
    pub interrupt: Option<u32>,
}

/// How a secondary CPU is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnableMethod {
    /// PSCI CPU_ON (through the conduit in [`DeviceTreeFacts::psci`]).
    Psci,
    /// Spin table: write the entry address to `release_address`, then `sev`.
    SpinTable { release_address: u64 },
    /// No method given (the boot CPU on a single-core virt) or one we do not know.
    #[default]
    None,
}

/// One CPU node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuFacts {
    /// `reg`: the MPIDR affinity bits of this CPU.
    pub mpidr: u64,
    /// How to start it.
    pub enable_method: EnableMethod,
}

/// How PSCI calls reach the firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciConduit {
    /// `hvc #0` (firmware at EL2, e.g. QEMU virt without virtualization).
    Hvc,
    /// `smc #0` (firmware at EL3).
    Smc,
}

/// Generic timer interrupts (GIC interrupt ids, PPI number + 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimerFacts {
    /// Non-secure EL1 physical timer (CNTP), entry 1 of `interrupts`.
    pub physical: Option<u32>,
    /// Virtual timer (CNTV), entry 2 of `interrupts`.
    pub virtual_timer: Option<u32>,
}

/// Everything the kernel takes from the device tree.
#[derive(Debug, Clone, Copy)]
pub struct DeviceTreeFacts<'a> {
    /// Board named by the root `compatible`.
    pub board: Board,
    /// Root `model` string, if any.
    pub model: Option<&'a str>,
    /// RAM ranges from every `device_type = "memory"` node, in tree order.
    pub memory: BoundedList<PhysicalRange, MAX_MEMORY_RANGES>,
    /// Memory ranges the tree gave beyond [`MAX_MEMORY_RANGES`] (not used).
    pub memory_ranges_dropped: usize,
    /// `/memreserve/` entries and `/reserved-memory` children with a `reg`.
    pub reserved: BoundedList<PhysicalRange, MAX_RESERVED_RANGES>,
    /// `/chosen/bootargs` (empty when absent or not UTF-8).
    pub bootargs: &'a str,
    /// `/chosen/linux,initrd-start` .. `linux,initrd-end`.
    pub initrd: Option<PhysicalRange>,
    /// The first enabled `arm,pl011` node.
    pub uart: Option<UartFacts>,
    /// The GIC.
    pub gic: Option<GicFacts>,
    /// Timer interrupt ids.
    pub timer: TimerFacts,
    /// CPUs in tree order (at most [`MAX_CPUS`]).
    pub cpus: BoundedList<CpuFacts, MAX_CPUS>,
    /// How many CPU nodes the tree has, including any beyond [`MAX_CPUS`].
    pub cpus_in_tree: usize,
    /// PSCI conduit from the `/psci` node.
    pub psci: Option<PsciConduit>,
}

impl Default for DeviceTreeFacts<'_> {
    fn default() -> Self {
        Self {
            board: Board::Unknown,
            model: None,
            memory: BoundedList::new(),
            memory_ranges_dropped: 0,
            reserved: BoundedList::new(),
            bootargs: "",
            initrd: None,
            uart: None,
            gic: None,
            timer: TimerFacts::default(),
            cpus: BoundedList::new(),
            cpus_in_tree: 0,
            psci: None,
        }
    }
}

impl DeviceTreeFacts<'_> {
    /// Total bytes of RAM over all kept memory ranges.
    pub fn total_memory(&self) -> u64 {
        self.memory
            .as_slice()
            .iter()
            .fold(0u64, |sum, range| sum.saturating_add(range.size))
    }
}

/// What we remember about one open node while its properties stream past.
#[derive(Clone, Copy, Default)]
struct OpenNode<'a> {
    name: &'a [u8],
    /// `#address-cells` for this node's children (default 2 per the spec).
    address_cells: u32,
    /// `#size-cells` for this node's children (default 1).
    size_cells: u32,
    ranges: Option<&'a [u8]>,
    compatible: &'a [u8],
    device_type: &'a [u8],
    status: &'a [u8],
    reg: Option<&'a [u8]>,
    interrupts: Option<&'a [u8]>,
    enable_method: &'a [u8],
    release_address: Option<&'a [u8]>,
    method: &'a [u8],
    bootargs: Option<&'a [u8]>,
    initrd_start: Option<&'a [u8]>,
    initrd_end: Option<&'a [u8]>,
    model: Option<&'a [u8]>,
}

/// Iterates the NUL-separated strings of a string-list property.
fn string_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == 0).filter(|s| !s.is_empty())
}

fn has_compatible(value: &[u8], wanted: &[u8]) -> bool {
    string_list(value).any(|s| s == wanted)
}

fn string_value(value: &[u8]) -> &[u8] {
    value.split(|&b| b == 0).next().unwrap_or(&[])
}

/// Reads `cells` big-endian 32-bit cells (0..=2) at `*cursor` as one number.
fn read_cells(value: &[u8], cursor: &mut usize, cells: u32) -> Option<u64> {
    if cells > 2 {
        return None;
    }
    let mut result = 0u64;
    for _ in 0..cells {
        let end = cursor.checked_add(4)?;
        let word = value.get(*cursor..end)?;
        result =
            (result << 32) | u64::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]]));
        *cursor = end;
    }
    Some(result)
}

/// A property holding one number of 1 or 2 cells (e.g. `linux,initrd-start`).
fn number_value(value: &[u8]) -> Option<u64> {
    let mut cursor = 0;
    match value.len() {
        4 => read_cells(value, &mut cursor, 1),
        8 => read_cells(value, &mut cursor, 2),
        _ => None,
    }
}

fn single_cell(value: &[u8]) -> Option<u32> {
    let mut cursor = 0;
    if value.len() != 4 {
        return None;
    }
    read_cells(value, &mut cursor, 1).map(|v| v as u32)
}

/// Translates `address` from the bus of `ancestors.last()`'s children up to the root.
/// `ancestors[0]` is the root. Returns `None` when a `ranges` table cannot map it.
fn translate(mut address: u64, ancestors: &[OpenNode<'_>]) -> Option<u64> {
    // Walk from the innermost bus up; the root's children need no translation.
    let mut level = ancestors.len();
    while level > 1 {
        level -= 1;
        let bus = &ancestors[level];
        let parent = &ancestors[level - 1];
        let Some(ranges) = bus.ranges else {
            // No `ranges`: strictly untranslatable; we treat it as identity, which is what the
            // simple buses on our boards mean.
            continue;
        };
        if ranges.is_empty() {
            continue;
        }
        let entry_cells = bus
            .address_cells
            .checked_add(parent.address_cells)?
            .checked_add(bus.size_cells)?;
        let entry_len = (entry_cells as usize).checked_mul(4)?;
        if entry_len == 0 {
            return None;
        }
        let mut cursor: usize = 0;
        let mut translated = None;
        for _ in 0..MAX_RANGES_ENTRIES {
            if cursor.checked_add(entry_len)? > ranges.len() {
                break;
            }
            let child = read_cells(ranges, &mut cursor, bus.address_cells)?;
            let parent_address = read_cells(ranges, &mut cursor, parent.address_cells)?;
            let size = read_cells(ranges, &mut cursor, bus.size_cells)?;
            if address >= child && address - child < size {
                translated = Some(parent_address.checked_add(address - child)?);
                break;
            }
        }
        address = translated?;
    }
    Some(address)
}

/// The `index`-th (address, size) pair of a node's `reg`, translated to a CPU physical address.
fn reg_entry(
    node: &OpenNode<'_>,
    ancestors: &[OpenNode<'_>],
    index: usize,
) -> Option<PhysicalRange> {
    let parent = ancestors.last()?;
    let reg = node.reg?;
    let entry_len =
        (parent.address_cells.checked_add(parent.size_cells)? as usize).checked_mul(4)?;
    let mut cursor = index.checked_mul(entry_len)?;
    let base = read_cells(reg, &mut cursor, parent.address_cells)?;
    let size = read_cells(reg, &mut cursor, parent.size_cells)?;
    let base = translate(base, ancestors)?;
    Some(PhysicalRange { base, size })
}

/// All (address, size) pairs of a `reg`, untranslated count.
fn reg_count(node: &OpenNode<'_>, parent: &OpenNode<'_>) -> usize {
    let entry_len =
        (parent.address_cells.saturating_add(parent.size_cells) as usize).saturating_mul(4);
    match (node.reg, entry_len) {
        (Some(reg), len) if len > 0 => reg.len() / len,
        _ => 0,
    }
}

/// The `index`-th GIC three-cell interrupt of `interrupts` as a GIC interrupt id.
fn gic_interrupt(value: &[u8], index: usize) -> Option<u32> {
    let mut cursor = index.checked_mul(12)?;
    let kind = read_cells(value, &mut cursor, 1)?;
    let number = read_cells(value, &mut cursor, 1)?;
    let number = u32::try_from(number).ok()?;
    match kind {
        0 => number.checked_add(32),
        1 => number.checked_add(16),
        _ => None,
    }
}

impl<'a> DeviceTreeFacts<'a> {
    /// Parses `blob` and extracts the facts. Errors only for a malformed encoding; nodes we do not
    /// understand are skipped.
    pub fn from_blob(blob: &'a [u8]) -> Result<Self, DtbError> {
        let fdt = Fdt::new(blob)?;
        Self::from_fdt(&fdt)
    }

    /// Extracts the facts from an already-opened tree.
    pub fn from_fdt(fdt: &Fdt<'a>) -> Result<Self, DtbError> {
        let mut facts = DeviceTreeFacts::default();
        for reservation in fdt.reservations() {
            let (base, size) = reservation?;
            // A full list drops further reservations: callers reserve the DTB itself separately.
            let _ = facts.reserved.push(PhysicalRange { base, size });
        }

        let mut stack: [OpenNode<'a>; MAX_DEVICE_TREE_DEPTH] =
            [OpenNode::default(); MAX_DEVICE_TREE_DEPTH];
        let mut depth = 0usize;
        let mut saw_root = false;
        for token in fdt.tokens() {
            match token? {
                Token::BeginNode { name } => {
                    if depth == 0 && saw_root {
                        // A second top-level node: not a valid tree.
                        return Err(DtbError::NoRootNode);
                    }
                    saw_root = true;
                    let Some(slot) = stack.get_mut(depth) else {
                        return Err(DtbError::TooDeep { offset: 0 });
                    };
                    *slot = OpenNode {
                        name,
                        address_cells: 2,
                        size_cells: 1,
                        ..OpenNode::default()
                    };
                    depth += 1;
                }
                Token::Property { name, value } => {
                    let Some(node) = depth.checked_sub(1).and_then(|i| stack.get_mut(i)) else {
                        return Err(DtbError::Unbalanced { offset: 0 });
                    };
                    match name {
                        b"#address-cells" => {
                            node.address_cells = single_cell(value).unwrap_or(u32::MAX)
                        }
                        b"#size-cells" => node.size_cells = single_cell(value).unwrap_or(u32::MAX),
                        b"ranges" => node.ranges = Some(value),
                        b"compatible" => node.compatible = value,
                        b"device_type" => node.device_type = string_value(value),
                        b"status" => node.status = string_value(value),
                        b"reg" => node.reg = Some(value),
                        b"interrupts" => node.interrupts = Some(value),
                        b"enable-method" => node.enable_method = string_value(value),
                        b"cpu-release-addr" => node.release_address = Some(value),
                        b"method" => node.method = string_value(value),
                        b"bootargs" => node.bootargs = Some(value),
                        b"linux,initrd-start" => node.initrd_start = Some(value),
                        b"linux,initrd-end" => node.initrd_end = Some(value),
                        b"model" => node.model = Some(value),
                        _ => {}
                    }
                }
                Token::EndNode => {
                    let Some(index) = depth.checked_sub(1) else {
                        return Err(DtbError::Unbalanced { offset: 0 });
                    };
                    let node = stack[index];
                    facts.classify(&node, &stack[..index]);
                    depth = index;
                }
            }
        }
        if !saw_root {
            return Err(DtbError::NoRootNode);
        }
        Ok(facts)
    }

    fn classify(&mut self, node: &OpenNode<'a>, ancestors: &[OpenNode<'a>]) {
        let depth = ancestors.len();
        if depth == 0 {
            if has_compatible(node.compatible, b"linux,dummy-virt") {
                self.board = Board::QemuVirt;
            } else if has_compatible(node.compatible, b"raspberrypi,4-model-b")
                || has_compatible(node.compatible, b"brcm,bcm2711")
            {
                self.board = Board::RaspberryPi4;
            }
            self.model = node
                .model
                .and_then(|m| core::str::from_utf8(string_value(m)).ok());
            return;
        }
        let Some(parent) = ancestors.last() else {
            return;
        };
        let disabled = !node.status.is_empty() && node.status != b"okay" && node.status != b"ok";

        if depth == 1 && node.name == b"chosen" {
            if let Some(bootargs) = node.bootargs {
                self.bootargs = core::str::from_utf8(string_value(bootargs)).unwrap_or("");
            }
            if let (Some(start), Some(end)) = (
                node.initrd_start.and_then(number_value),
                node.initrd_end.and_then(number_value),
            ) {
                if end > start {
                    self.initrd = Some(PhysicalRange {
                        base: start,
                        size: end - start,
                    });
                }
            }
            return;
        }
        if node.device_type == b"memory" && !disabled {
            for index in 0..reg_count(node, parent) {
                if let Some(range) = reg_entry(node, ancestors, index) {
                    if range.size == 0 {
                        continue;
                    }
                    if self.memory.push(range).is_err() {
                        self.memory_ranges_dropped += 1;
                    }
                }
            }
            return;
        }
        if depth == 2 && ancestors[1].name == b"reserved-memory" {
            for index in 0..reg_count(node, parent) {
                if let Some(range) = reg_entry(node, ancestors, index) {
                    let _ = self.reserved.push(range);
                }
            }
            return;
        }
        if node.device_type == b"cpu" && depth == 2 && ancestors[1].name == b"cpus" {
            if disabled {
                return;
            }
            self.cpus_in_tree += 1;
            let mut cursor = 0;
            let Some(mpidr) = node
                .reg
                .and_then(|reg| read_cells(reg, &mut cursor, parent.address_cells))
            else {
                return;
            };
            let enable_method = match node.enable_method {
                b"psci" => EnableMethod::Psci,
                b"spin-table" => match node.release_address.and_then(number_value) {
                    Some(release_address) => EnableMethod::SpinTable { release_address },
                    None => EnableMethod::None,
                },
                _ => EnableMethod::None,
            };
            let _ = self.cpus.push(CpuFacts {
                mpidr,
                enable_method,
            });
            return;
        }
        if has_compatible(node.compatible, b"arm,psci")
            || has_compatible(node.compatible, b"arm,psci-0.2")
            || has_compatible(node.compatible, b"arm,psci-1.0")
        {
            self.psci = match node.method {
                b"hvc" => Some(PsciConduit::Hvc),
                b"smc" => Some(PsciConduit::Smc),
                _ => None,
            };
            return;
        }
        if disabled {
            return;
        }
        if self.uart.is_none() && has_compatible(node.compatible, b"arm,pl011") {
            if let Some(registers) = reg_entry(node, ancestors, 0) {
                let interrupt = node.interrupts.and_then(|value| gic_interrupt(value, 0));
                self.uart = Some(UartFacts {
                    registers,
                    interrupt,
                });
            }
            return;
        }
        if self.gic.is_none() {
            let version = if has_compatible(node.compatible, b"arm,gic-v3") {
                Some(GicVersion::V3)
            } else if [
                &b"arm,cortex-a15-gic"[..],
                b"arm,gic-400",
                b"arm,cortex-a7-gic",
                b"arm,gic-v2",
            ]
            .iter()
            .any(|c| has_compatible(node.compatible, c))
            {
                Some(GicVersion::V2)
            } else {
                None
            };
            if let Some(version) = version {
                if let (Some(distributor), Some(second)) =
                    (reg_entry(node, ancestors, 0), reg_entry(node, ancestors, 1))
                {
                    self.gic = Some(GicFacts {
                        version,
                        distributor,
                        cpu_interface_or_redistributors: second,
                    });
                }
                return;
            }
        }
        if has_compatible(node.compatible, b"arm,armv8-timer") {
            if let Some(value) = node.interrupts {
                self.timer.physical = gic_interrupt(value, 1);
                self.timer.virtual_timer = gic_interrupt(value, 2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::tests::TreeWriter;

    const VIRT_GICV2: &[u8] = include_bytes!("../testdata/qemu-virt-gicv2-smp1.dtb");
    const VIRT_GICV3: &[u8] = include_bytes!("../testdata/qemu-virt-gicv3-smp4.dtb");
    const RASPI4B: &[u8] = include_bytes!("../testdata/raspi4b-qemu.dtb");

    #[test]
    fn qemu_virt_gicv2_single_core() {
        let facts = DeviceTreeFacts::from_blob(VIRT_GICV2).unwrap();
        assert_eq!(facts.board, Board::QemuVirt);
        assert_eq!(
            facts.memory.as_slice(),
            &[PhysicalRange {
                base: 0x4000_0000,
                size: 512 << 20
            }]
        );
        assert_eq!(facts.bootargs, "semihosting");
        assert_eq!(
            facts.initrd,
            Some(PhysicalRange {
                base: 0x4800_0000,
                size: 0x1004
            })
        );
        let uart = facts.uart.unwrap();
        assert_eq!(
            uart.registers,
            PhysicalRange {
                base: 0x0900_0000,
                size: 0x1000
            }
        );
        assert_eq!(uart.interrupt, Some(33));
        let gic = facts.gic.unwrap();
        assert_eq!(gic.version, GicVersion::V2);
        assert_eq!(gic.distributor.base, 0x0800_0000);
        assert_eq!(gic.cpu_interface_or_redistributors.base, 0x0801_0000);
        assert_eq!(facts.timer.virtual_timer, Some(27));
        assert_eq!(facts.timer.physical, Some(30));
        assert_eq!(facts.cpus_in_tree, 1);
        assert_eq!(facts.cpus.as_slice()[0].mpidr, 0);
        assert_eq!(facts.psci, Some(PsciConduit::Hvc));
    }

    #[test]
    fn qemu_virt_gicv3_four_cores_two_gib() {
        let facts = DeviceTreeFacts::from_blob(VIRT_GICV3).unwrap();
        assert_eq!(facts.total_memory(), 2 << 30);
        let gic = facts.gic.unwrap();
        assert_eq!(gic.version, GicVersion::V3);
        assert_eq!(
            gic.cpu_interface_or_redistributors,
            PhysicalRange {
                base: 0x080a_0000,
                size: 0xf6_0000
            }
        );
        assert_eq!(facts.cpus_in_tree, 4);
        let mpidrs: Vec<u64> = facts.cpus.as_slice().iter().map(|c| c.mpidr).collect();
        assert_eq!(mpidrs, vec![0, 1, 2, 3]);
        assert!(facts
            .cpus
            .as_slice()
            .iter()
            .all(|c| c.enable_method == EnableMethod::Psci));
        assert_eq!(facts.initrd, None);
        assert_eq!(facts.bootargs, "");
    }

    #[test]
    fn raspberry_pi_4_tree_from_qemu_with_nops_and_bus_ranges() {
        let facts = DeviceTreeFacts::from_blob(RASPI4B).unwrap();
        assert_eq!(facts.board, Board::RaspberryPi4);
        assert_eq!(
            facts.memory.as_slice(),
            &[PhysicalRange {
                base: 0,
                size: 0x3c00_0000
            }]
        );
        assert!(facts.reserved.as_slice().contains(&PhysicalRange {
            base: 0,
            size: 0x1000
        }));
        // PL011 at bus 0x7e201000 is CPU 0xfe201000 through /soc ranges.
        let uart = facts.uart.unwrap();
        assert_eq!(uart.registers.base, 0xfe20_1000);
        assert_eq!(uart.interrupt, Some(32 + 121));
        // GIC-400 at bus 0x40041000 is CPU 0xff841000.
        let gic = facts.gic.unwrap();
        assert_eq!(gic.version, GicVersion::V2);
        assert_eq!(gic.distributor.base, 0xff84_1000);
        assert_eq!(gic.cpu_interface_or_redistributors.base, 0xff84_2000);
        assert_eq!(facts.cpus_in_tree, 4);
        let releases: Vec<EnableMethod> = facts
            .cpus
            .as_slice()
            .iter()
            .map(|c| c.enable_method)
            .collect();
        assert_eq!(
            releases,
            vec![0xd8, 0xe0, 0xe8, 0xf0]
                .into_iter()
                .map(|release_address| EnableMethod::SpinTable { release_address })
                .collect::<Vec<_>>()
        );
        assert_eq!(facts.timer.virtual_timer, Some(27));
        assert_eq!(facts.bootargs, "semihosting loglevel=info");
    }

    #[test]
    fn memory_ranges_above_four_gib_and_multiple_regs() {
        let mut writer = TreeWriter::default();
        writer
            .begin("")
            .prop_cells("#address-cells", &[2])
            .prop_cells("#size-cells", &[1])
            .prop("compatible", b"raspberrypi,4-model-b\0brcm,bcm2711\0")
            .begin("memory@0")
            .prop_str("device_type", "memory")
            .prop_cells(
                "reg",
                &[
                    0,
                    0,
                    0x3b40_0000,
                    0,
                    0x4000_0000,
                    0xbc00_0000,
                    1,
                    0,
                    0x8000_0000,
                ],
            )
            .end()
            .end();
        let blob = writer.finish(&[]);
        let facts = DeviceTreeFacts::from_blob(&blob).unwrap();
        assert_eq!(facts.memory.len(), 3);
        assert_eq!(
            facts.memory.as_slice()[2],
            PhysicalRange {
                base: 1 << 32,
                size: 0x8000_0000
            }
        );
        assert_eq!(
            facts.total_memory(),
            0x3b40_0000 + 0xbc00_0000 + 0x8000_0000
        );
    }

    #[test]
    fn hostile_cells_and_ranges_skip_the_node_without_panic() {
        let mut writer = TreeWriter::default();
        writer
            .begin("")
            .prop_cells("#address-cells", &[7])
            .prop_cells("#size-cells", &[0xffff_ffff])
            .begin("memory@0")
            .prop_str("device_type", "memory")
            .prop_cells("reg", &[1, 2, 3])
            .end()
            .begin("soc")
            .prop_cells("#address-cells", &[1])
            .prop_cells("#size-cells", &[1])
            .prop_cells("ranges", &[0x7e00_0000, 0, 0xfe00_0000])
            .begin("serial@1")
            .prop("compatible", b"arm,pl011\0")
            .prop_cells("reg", &[0x7e20_1000, 0x200])
            .end()
            .end()
            .end();
        let blob = writer.finish(&[]);
        let facts = DeviceTreeFacts::from_blob(&blob).unwrap();
        assert!(facts.memory.is_empty());
        assert!(facts.uart.is_none());
    }

    /// Runs the parser on `blob` inside catch_unwind and checks the result is sane if Ok.
    fn parse_must_not_panic(blob: &[u8]) {
        let outcome = std::panic::catch_unwind(|| {
            if let Ok(facts) = DeviceTreeFacts::from_blob(blob) {
                assert!(facts.memory.len() <= MAX_MEMORY_RANGES);
                assert!(facts.cpus.len() <= MAX_CPUS);
                for range in facts.memory.as_slice() {
                    assert!(range.size > 0);
                }
                let _ = facts.total_memory();
            }
        });
        assert!(
            outcome.is_ok(),
            "parser panicked on a {}-byte blob",
            blob.len()
        );
    }

    /// A small deterministic generator (xorshift64*) so the fuzz cases repeat exactly.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn every_truncation_of_real_trees_is_an_error_or_sane() {
        for blob in [VIRT_GICV2, VIRT_GICV3, RASPI4B] {
            for length in (0..blob.len()).step_by(7) {
                parse_must_not_panic(&blob[..length]);
                // A truncated blob whose header still claims the full size must be rejected.
                if length < blob.len() {
                    assert!(DeviceTreeFacts::from_blob(&blob[..length]).is_err());
                }
            }
        }
    }

    #[test]
    fn truncation_with_a_patched_totalsize_never_panics() {
        for blob in [VIRT_GICV2, RASPI4B] {
            for length in (40..blob.len()).step_by(13) {
                let mut cut = blob[..length].to_vec();
                cut[4..8].copy_from_slice(&(length as u32).to_be_bytes());
                parse_must_not_panic(&cut);
            }
        }
    }

    #[test]
    fn bit_flips_in_real_trees_never_panic() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for blob in [VIRT_GICV2, VIRT_GICV3, RASPI4B] {
            for _ in 0..3000 {
                let mut mutated = blob.to_vec();
                for _ in 0..(1 + rng.next() % 4) {
                    let position = (rng.next() % mutated.len() as u64) as usize;
                    mutated[position] ^= 1 << (rng.next() % 8);
                }
                parse_must_not_panic(&mutated);
            }
            // Every header word replaced by a hostile value.
            for word in 0..10 {
                for hostile in [0u32, 1, 0x7fff_ffff, 0xffff_ffff, blob.len() as u32, 40] {
                    let mut mutated = blob.to_vec();
                    mutated[word * 4..word * 4 + 4].copy_from_slice(&hostile.to_be_bytes());
                    parse_must_not_panic(&mutated);
                }
            }
        }
    }

    #[test]
    fn random_well_formed_trees_report_exactly_what_they_describe() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        for _ in 0..500 {
            let mut writer = TreeWriter::default();
            let size_cells = 1 + (rng.next() % 2) as u32;
            writer
                .begin("")
                .prop_cells("#address-cells", &[2])
                .prop_cells("#size-cells", &[size_cells])
                .prop("compatible", b"linux,dummy-virt\0");
            // Memory: 1-3 ranges in one node, sometimes split across two nodes.
            let mut expected = Vec::new();
            let mut cells = Vec::new();
            let ranges = 1 + rng.next() % 3;
            for index in 0..ranges {
                let base = (index << 32) | ((rng.next() % 16) << 26);
                let size = (1 + rng.next() % 15) << 20;
                expected.push(PhysicalRange { base, size });
                cells.extend([(base >> 32) as u32, base as u32]);
                if size_cells == 2 {
                    cells.push((size >> 32) as u32);
                }
                cells.push(size as u32);
            }
            writer
                .begin("memory@0")
                .prop_str("device_type", "memory")
                .prop_cells("reg", &cells)
                .end();
            // Noise nodes with random properties the parser must skip.
            for noise in 0..(rng.next() % 5) {
                let value: Vec<u8> = (0..(rng.next() % 24)).map(|_| rng.next() as u8).collect();
                writer
                    .begin(&format!("noise@{noise}"))
                    .prop("x-random", &value)
                    .nop()
                    .end();
            }
            let cpus = 1 + rng.next() % 6;
            writer
                .begin("cpus")
                .prop_cells("#address-cells", &[1])
                .prop_cells("#size-cells", &[0]);
            for cpu in 0..cpus {
                writer
                    .begin(&format!("cpu@{cpu}"))
                    .prop_str("device_type", "cpu")
                    .prop_cells("reg", &[cpu as u32])
                    .prop_str("enable-method", "psci")
                    .end();
            }
            writer.end();
            let bootargs = format!("loglevel=debug n={}", rng.next() % 1000);
            writer.begin("chosen").prop_str("bootargs", &bootargs).end();
            writer.end();
            let blob = writer.finish(&[]);
            let facts = DeviceTreeFacts::from_blob(&blob).unwrap();
            assert_eq!(facts.memory.as_slice(), expected.as_slice());
            assert_eq!(facts.cpus_in_tree as u64, cpus);
            assert_eq!(facts.cpus.len() as u64, cpus);
            assert_eq!(facts.bootargs, bootargs);
            assert_eq!(facts.board, Board::QemuVirt);
        }
    }

    #[test]
    fn random_blobs_with_a_valid_header_never_panic() {
        let mut rng = Rng(42);
        for _ in 0..2000 {
            let length = 40 + (rng.next() % 600) as usize;
            let mut blob: Vec<u8> = (0..length).map(|_| rng.next() as u8).collect();
            let header = [
                0xd00d_feed,
                length as u32,
                56,
                (length / 2) as u32,
                40,
                17,
                16,
                0,
            ];
            for (index, word) in header.iter().enumerate() {
                blob[index * 4..index * 4 + 4].copy_from_slice(&word.to_be_bytes());
            }
            // Make the structure block start with tokens drawn from the valid set, sometimes.
            for slot in (56..length.min(200)).step_by(4) {
                if rng.next().is_multiple_of(2) && slot + 4 <= length {
                    let token = [1u32, 2, 3, 4, 9][(rng.next() % 5) as usize];
                    blob[slot..slot + 4].copy_from_slice(&token.to_be_bytes());
                }
            }
            parse_must_not_panic(&blob);
        }
    }
}
