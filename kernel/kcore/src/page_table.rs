//! AArch64 stage-1 translation tables, 4 KiB granule, 39-bit virtual addresses (3 levels).
//!
//! Why 39 bits: TTBR1 then covers the top 512 GiB (0xFFFF_FF80_0000_0000 upwards), enough for the
//! kernel image, a linear map of up to 256 GiB of RAM and a device window, and a walk starts at
//! level 1, so a lookup costs three memory reads instead of four. TTBR0 uses the same shape for
//! tasks.
//!
//! The builder writes descriptors through the [`TableMemory`] trait, so the same code fills
//! tables in a static pool during boot, in frames from the frame allocator later, and in a
//! `HashMap` in the host tests that check every mapping by walking it back with [`translate`].
//! It uses the largest block that fits (1 GiB at level 1, 2 MiB at level 2) when the caller allows
//! blocks, which keeps the linear map of all RAM to a handful of entries and boot fast under TCG.
//!
//! Descriptor bits are from the Arm ARM D8.3 (VMSAv8-64 translation table format):
//! bits[1:0] 0b11 = table (levels 1-2) or page (level 3), 0b01 = block; AttrIndx [4:2] selects a
//! MAIR_EL1 byte; AP[7:6]; SH[9:8]; AF[10]; nG[11]; PXN[53]; UXN[54].

/// Entries per table (4 KiB / 8).
pub const ENTRIES_PER_TABLE: usize = 512;
/// Bytes mapped by one level-3 page.
pub const PAGE_SIZE: u64 = 4096;
/// Bytes mapped by one level-2 block.
pub const LEVEL2_BLOCK_SIZE: u64 = 2 << 20;
/// Bytes mapped by one level-1 block.
pub const LEVEL1_BLOCK_SIZE: u64 = 1 << 30;
/// Virtual address bits translated (T0SZ = T1SZ = 64 - 39 = 25).
pub const VIRTUAL_ADDRESS_BITS: u32 = 39;

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ACCESS_FLAG: u64 = 1 << 10;
const INNER_SHAREABLE: u64 = 0b11 << 8;
const AP_READ_ONLY: u64 = 1 << 7;
const AP_EL0_ACCESS: u64 = 1 << 6;
const NOT_GLOBAL: u64 = 1 << 11;
const PRIVILEGED_EXECUTE_NEVER: u64 = 1 << 53;
const UNPRIVILEGED_EXECUTE_NEVER: u64 = 1 << 54;
const OUTPUT_ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;

/// MAIR_EL1 index for normal write-back cacheable memory (attribute 0xff).
pub const MAIR_INDEX_NORMAL: u64 = 0;
/// MAIR_EL1 index for Device-nGnRE memory (attribute 0x04).
pub const MAIR_INDEX_DEVICE: u64 = 1;
/// MAIR_EL1 index for normal non-cacheable memory (attribute 0x44).
pub const MAIR_INDEX_NON_CACHEABLE: u64 = 2;
/// The MAIR_EL1 value these indices assume.
pub const MAIR_VALUE: u64 = 0xff | (0x04 << 8) | (0x44 << 16);

/// Memory type of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Normal, inner/outer write-back cacheable, inner shareable (RAM).
    Normal,
    /// Device-nGnRE (MMIO): no gathering, no reordering, early write acknowledgement.
    Device,
    /// Normal non-cacheable (buffers shared with non-coherent observers).
    NonCacheable,
}

/// Access permissions and type of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    /// Memory type.
    pub kind: MemoryKind,
    /// Writable at EL1 (and EL0 if `user`).
    pub writable: bool,
    /// Executable at EL1 (kernel text) or EL0 (if `user`).
    pub executable: bool,
    /// Accessible from EL0 (task mappings); such mappings are also non-global (ASID-tagged).
    pub user: bool,
}

impl Attributes {
    /// Kernel text: read-only, executable.
    pub const KERNEL_TEXT: Self = Self {
        kind: MemoryKind::Normal,
        writable: false,
        executable: true,
        user: false,
    };
    /// Kernel read-only data.
    pub const KERNEL_READ_ONLY: Self = Self {
        kind: MemoryKind::Normal,
        writable: false,
        executable: false,
        user: false,
    };
    /// Kernel data, bss, stacks, the linear map: read-write, never executable.
    pub const KERNEL_DATA: Self = Self {
        kind: MemoryKind::Normal,
        writable: true,
        executable: false,
        user: false,
    };
    /// MMIO registers.
    pub const DEVICE: Self = Self {
        kind: MemoryKind::Device,
        writable: true,
        executable: false,
        user: false,
    };

    /// The descriptor bits (everything but the type bits and the output address).
    pub fn descriptor_bits(&self) -> u64 {
        let index = match self.kind {
            MemoryKind::Normal => MAIR_INDEX_NORMAL,
            MemoryKind::Device => MAIR_INDEX_DEVICE,
            MemoryKind::NonCacheable => MAIR_INDEX_NON_CACHEABLE,
        };
        let mut bits = (index << 2) | ACCESS_FLAG;
        if self.kind != MemoryKind::Device {
            bits |= INNER_SHAREABLE;
        }
        if !self.writable {
            bits |= AP_READ_ONLY;
        }
        if self.user {
            bits |= AP_EL0_ACCESS | NOT_GLOBAL | PRIVILEGED_EXECUTE_NEVER;
            if !self.executable {
                bits |= UNPRIVILEGED_EXECUTE_NEVER;
            }
        } else {
            bits |= UNPRIVILEGED_EXECUTE_NEVER;
            if !self.executable {
                bits |= PRIVILEGED_EXECUTE_NEVER;
            }
        }
        bits
    }

    /// Decodes the attribute bits of a block or page descriptor.
    pub fn from_descriptor(descriptor: u64) -> Self {
        let kind = match (descriptor >> 2) & 0b111 {
            MAIR_INDEX_DEVICE => MemoryKind::Device,
            MAIR_INDEX_NON_CACHEABLE => MemoryKind::NonCacheable,
            _ => MemoryKind::Normal,
        };
        let user = descriptor & AP_EL0_ACCESS != 0;
        let execute_never = if user {
            UNPRIVILEGED_EXECUTE_NEVER
        } else {
            PRIVILEGED_EXECUTE_NEVER
        };
        Self {
            kind,
            writable: descriptor & AP_READ_ONLY == 0,
            executable: descriptor & execute_never == 0,
            user,
        }
    }
}

/// Where table memory lives: physical addresses in, descriptors out.
pub trait TableMemory {
    /// A zeroed 4 KiB table; returns its physical address, or `None` when out of tables.
    fn allocate_table(&mut self) -> Option<u64>;
    /// Reads entry `index` of the table at physical address `table`.
    fn read(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the table at physical address `table`.
    fn write(&mut self, table: u64, index: usize, descriptor: u64);
}

/// Why a mapping could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// The virtual address, physical address or size is not a multiple of 4 KiB.
    Misaligned {
        virtual_address: u64,
        physical_address: u64,
        size: u64,
    },
    /// A page or block already maps `virtual_address`.
    AlreadyMapped { virtual_address: u64 },
    /// The table memory could not supply another table.
    OutOfTables,
}

fn index_at(virtual_address: u64, level: u32) -> usize {
    let shift = 12 + 9 * (3 - level);
    ((virtual_address >> shift) & 0x1ff) as usize
}

fn level_size(level: u32) -> u64 {
    1u64 << (12 + 9 * (3 - level))
}

/// Maps `[virtual_address, +size)` to `[physical_address, +size)` under the level-1 table `root`.
/// With `allow_blocks`, 1 GiB and 2 MiB blocks are used where alignment permits.
pub fn map_range(
    memory: &mut dyn TableMemory,
    root: u64,
    virtual_address: u64,
    physical_address: u64,
    size: u64,
    attributes: Attributes,
    allow_blocks: bool,
) -> Result<(), MapError> {
    if !(virtual_address | physical_address | size).is_multiple_of(PAGE_SIZE) {
        return Err(MapError::Misaligned {
            virtual_address,
            physical_address,
            size,
        });
    }
    let bits = attributes.descriptor_bits();
    let mut offset = 0u64;
    while offset < size {
        let va = virtual_address.wrapping_add(offset);
        let pa = physical_address.wrapping_add(offset);
        let remaining = size - offset;
        let mut table = root;
        let mut level = 1;
        loop {
            let index = index_at(va, level);
            let block = level_size(level);
            let existing = memory.read(table, index);
            let can_block = level == 3
                || (allow_blocks
                    && level >= 1
                    && va.is_multiple_of(block)
                    && pa.is_multiple_of(block)
                    && remaining >= block);
            if can_block {
                if existing & VALID != 0 {
                    return Err(MapError::AlreadyMapped {
                        virtual_address: va,
                    });
                }
                let kind_bits = if level == 3 {
                    VALID | TABLE_OR_PAGE
                } else {
                    VALID
                };
                memory.write(table, index, (pa & OUTPUT_ADDRESS_MASK) | bits | kind_bits);
                offset += block;
                break;
            }
            let next = if existing & VALID == 0 {
                let next = memory.allocate_table().ok_or(MapError::OutOfTables)?;
                memory.write(
                    table,
                    index,
                    (next & OUTPUT_ADDRESS_MASK) | VALID | TABLE_OR_PAGE,
                );
                next
            } else if existing & TABLE_OR_PAGE == 0 {
                return Err(MapError::AlreadyMapped {
                    virtual_address: va,
                });
            } else {
                existing & OUTPUT_ADDRESS_MASK
            };
            table = next;
            level += 1;
        }
    }
    Ok(())
}

/// Walks the tables under `root` for `virtual_address`: the physical address and attributes, or
/// `None` when unmapped (also the level at which the walk stopped, for fault reports).
pub fn translate(
    memory: &dyn TableMemory,
    root: u64,
    virtual_address: u64,
) -> Result<(u64, Attributes), u32> {
    let mut table = root;
    for level in 1..=3u32 {
        let descriptor = memory.read(table, index_at(virtual_address, level));
        if descriptor & VALID == 0 {
            return Err(level);
        }
        let is_table_or_page = descriptor & TABLE_OR_PAGE != 0;
        if level == 3 || !is_table_or_page {
            if level == 3 && !is_table_or_page {
                return Err(level);
            }
            let size = level_size(level);
            let physical =
                (descriptor & OUTPUT_ADDRESS_MASK & !(size - 1)) | (virtual_address & (size - 1));
            return Ok((physical, Attributes::from_descriptor(descriptor)));
        }
        table = descriptor & OUTPUT_ADDRESS_MASK;
    }
    Err(3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct HostTables {
        tables: HashMap<u64, Vec<u64>>,
        next: u64,
        limit: usize,
    }

    impl TableMemory for HostTables {
        fn allocate_table(&mut self) -> Option<u64> {
            if self.tables.len() >= self.limit {
                return None;
            }
            self.next += PAGE_SIZE;
            self.tables.insert(self.next, vec![0; ENTRIES_PER_TABLE]);
            Some(self.next)
        }
        fn read(&self, table: u64, index: usize) -> u64 {
            self.tables[&table][index]
        }
        fn write(&mut self, table: u64, index: usize, descriptor: u64) {
            self.tables.get_mut(&table).unwrap()[index] = descriptor;
        }
    }

    const KERNEL_BASE: u64 = 0xffff_ff80_0000_0000;

    fn new_tables(limit: usize) -> (HostTables, u64) {
        let mut tables = HostTables {
            limit,
            ..Default::default()
        };
        let root = tables.allocate_table().unwrap();
        (tables, root)
    }

    #[test]
    fn kernel_sections_at_page_granularity_with_their_permissions() {
        let (mut tables, root) = new_tables(16);
        let text = KERNEL_BASE + 0x8_0000;
        map_range(
            &mut tables,
            root,
            text,
            0x4008_0000,
            0x3000,
            Attributes::KERNEL_TEXT,
            false,
        )
        .unwrap();
        map_range(
            &mut tables,
            root,
            text + 0x3000,
            0x4008_3000,
            0x1000,
            Attributes::KERNEL_READ_ONLY,
            false,
        )
        .unwrap();
        map_range(
            &mut tables,
            root,
            text + 0x5000,
            0x4008_5000,
            0x2000,
            Attributes::KERNEL_DATA,
            false,
        )
        .unwrap();
        assert_eq!(
            translate(&tables, root, text + 0x1234),
            Ok((0x4008_1234, Attributes::KERNEL_TEXT))
        );
        assert_eq!(
            translate(&tables, root, text + 0x3008).unwrap().1,
            Attributes::KERNEL_READ_ONLY
        );
        // The page between rodata and data is a hole (a guard page): the walk stops at level 3.
        assert_eq!(translate(&tables, root, text + 0x4000), Err(3));
        assert_eq!(
            translate(&tables, root, text + 0x6fff),
            Ok((0x4008_6fff, Attributes::KERNEL_DATA))
        );
        assert_eq!(
            map_range(
                &mut tables,
                root,
                text,
                0x5000_0000,
                0x1000,
                Attributes::KERNEL_DATA,
                false
            ),
            Err(MapError::AlreadyMapped {
                virtual_address: text
            })
        );
    }

    #[test]
    fn linear_map_uses_gib_and_mib_blocks() {
        let (mut tables, root) = new_tables(8);
        let linear = 0xffff_ffc0_0000_0000u64;
        // 0x4000_0000 .. 0x1_3fe0_0000: 1 GiB blocks where aligned, then 2 MiB blocks.
        let (base, size) = (0x4000_0000u64, 0xffe0_0000u64);
        map_range(
            &mut tables,
            root,
            linear + base,
            base,
            size,
            Attributes::KERNEL_DATA,
            true,
        )
        .unwrap();
        // Root + one level-2 table for the last partial GiB.
        assert_eq!(tables.tables.len(), 2);
        assert_eq!(
            translate(&tables, root, linear + 0x7fff_fff8),
            Ok((0x7fff_fff8, Attributes::KERNEL_DATA))
        );
        assert_eq!(
            translate(&tables, root, linear + 0x1_3fdf_ffff).unwrap().0,
            0x1_3fdf_ffff
        );
        assert_eq!(translate(&tables, root, linear + 0x1_3fe0_0000), Err(2));
        let device = Attributes::from_descriptor(Attributes::DEVICE.descriptor_bits());
        assert_eq!(device, Attributes::DEVICE);
    }

    #[test]
    fn descriptor_bits_match_the_arm_arm_encoding() {
        // AttrIndx 0, SH inner (0b11 << 8), AF (1 << 10), UXN (54), PXN (53).
        assert_eq!(
            Attributes::KERNEL_DATA.descriptor_bits(),
            0x0060_0000_0000_0700
        );
        // Text: read-only (AP[2] = bit 7), executable at EL1 (no PXN), never at EL0 (UXN).
        assert_eq!(
            Attributes::KERNEL_TEXT.descriptor_bits(),
            0x0040_0000_0000_0780
        );
        // Device: AttrIndx 1, not shareable-tagged, never executable.
        assert_eq!(Attributes::DEVICE.descriptor_bits(), 0x0060_0000_0000_0404);
        // The boot assembly's block descriptor (boot/entry.S PAGE_DESC_NORMAL_BLOCK) is a
        // normal-memory block with the same low attribute bits.
        assert_eq!(
            Attributes::KERNEL_DATA.descriptor_bits() & 0xfff | 0b01,
            0x701
        );
        assert_eq!(MAIR_VALUE, 0x44_04ff);
    }

    #[test]
    fn user_mappings_and_errors() {
        let (mut tables, root) = new_tables(3);
        let user = Attributes {
            kind: MemoryKind::Normal,
            writable: true,
            executable: false,
            user: true,
        };
        map_range(
            &mut tables,
            root,
            0x40_0000,
            0x8000_0000,
            0x1000,
            user,
            false,
        )
        .unwrap();
        assert_eq!(translate(&tables, root, 0x40_0010), Ok((0x8000_0010, user)));
        assert!(user.descriptor_bits() & NOT_GLOBAL != 0);
        assert!(matches!(
            map_range(&mut tables, root, 0x123, 0, 0x1000, user, false),
            Err(MapError::Misaligned { .. })
        ));
        // A far-away address needs new tables, and the pool has none left.
        assert_eq!(
            map_range(&mut tables, root, 0x10_0000_0000, 0, 0x1000, user, false),
            Err(MapError::OutOfTables)
        );
    }
}
