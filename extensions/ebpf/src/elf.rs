//! ELF loader for `clang -target bpf -O2 -c` objects.
//!
//! What it reads (and why this much):
//! - **Programs**: every executable PROGBITS section other than `.text`; its name is the
//!   hook (`SEC("sched/slice")`). `.text` holds non-inlined functions (BPF-to-BPF calls); it
//!   is appended after each program's code and `call` relocations (`R_BPF_64_32`) are
//!   resolved to PC-relative offsets, as libbpf does (target slot = symbol value / 8 + imm +
//!   1 in the target section). An object with only `.text` yields `.text` as its program.
//! - **Maps**, in this order: the legacy `maps` section (`struct bpf_map_def`: type,
//!   key_size, value_size, max_entries, flags); BTF-style `SEC(".maps")` definitions (their
//!   shape is read from `.BTF` by [`crate::btf`]; the object must be built with `-g`); and
//!   global data sections (`.rodata*`, `.data*`, `.bss*`), each turned into a one-entry
//!   array map holding the section, as libbpf does, so constant strings and globals work.
//! - **Map relocations** (`R_BPF_64_64` on `lddw`): a map symbol becomes `lddw src=1
//!   (map by fd), imm = map index`; a data symbol becomes `src=2 (map value), imm = map
//!   index, upper imm = offset`. The map index is the position in [`ElfObject::maps`], which
//!   is also the order [`ElfObject::create_maps`] returns, so `Program::load` resolves them.
//!
//! The parser is our own (no_std, no dependencies): every offset and size read from the file
//! is checked against the buffer with checked arithmetic, counts are capped by limits, and
//! every failure is an [`ElfError`] naming the part of the file at fault. Nothing in here can
//! panic on input (fuzzed: see `fuzz/`).

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::insn::{call_src, class, jmp, lddw_src, RawInsn, SLOT_SIZE};
use crate::limits::{MAX_ELF_SIZE, MAX_MAPS_PER_PROGRAM, MAX_PROGRAM_SLOTS};
use crate::maps::{Map, MapDef, MapError, MapKind};

/// ELF machine number of BPF.
pub const EM_BPF: u16 = 247;
const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_NOBITS: u32 = 8;
const SHT_REL: u32 = 9;
const SHF_WRITE: u64 = 0x1;
const SHF_ALLOC: u64 = 0x2;
const SHF_EXECINSTR: u64 = 0x4;
const STT_SECTION: u8 = 3;
/// `R_BPF_64_64`: 64-bit immediate of an `lddw`.
pub const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_32`: the 32-bit immediate of a `call` (BPF-to-BPF).
pub const R_BPF_64_32: u32 = 10;
/// Most sections an object may have (far above what clang emits, ~30).
const MAX_SECTIONS: usize = 4096;
/// Most symbols read.
const MAX_SYMBOLS: usize = 1 << 16;

/// Why an object could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The buffer ends before a structure the header promises.
    Truncated { what: &'static str, offset: u64 },
    /// Not an ELF file, or not 64-bit little-endian.
    NotElf64Le,
    /// An ELF file for another machine.
    NotBpf { machine: u16 },
    /// A structural field out of its allowed range.
    Malformed { what: &'static str, value: u64 },
    /// A relocation that cannot be applied.
    BadRelocation {
        section: String,
        offset: u64,
        why: &'static str,
    },
    /// A map definition that cannot be used.
    BadMap { name: String, why: String },
    /// A section or feature this loader does not read.
    Unsupported { what: String },
    /// No program section.
    NoPrograms,
    /// The file is larger than [`MAX_ELF_SIZE`].
    TooLarge { len: usize },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::Truncated { what, offset } => {
                write!(
                    f,
                    "file truncated: {what} at offset {offset:#x} is past the end"
                )
            }
            ElfError::NotElf64Le => write!(f, "not a 64-bit little-endian ELF file"),
            ElfError::NotBpf { machine } => {
                write!(f, "ELF machine {machine}, not BPF ({EM_BPF})")
            }
            ElfError::Malformed { what, value } => write!(f, "malformed {what}: {value:#x}"),
            ElfError::BadRelocation {
                section,
                offset,
                why,
            } => write!(f, "relocation in {section} at {offset:#x}: {why}"),
            ElfError::BadMap { name, why } => write!(f, "map {name}: {why}"),
            ElfError::Unsupported { what } => write!(f, "unsupported: {what}"),
            ElfError::NoPrograms => write!(f, "no program section in the object"),
            ElfError::TooLarge { len } => {
                write!(f, "object of {len} bytes exceeds the limit {MAX_ELF_SIZE}")
            }
        }
    }
}

/// A map the object defines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfMap {
    /// Symbol name (legacy maps) or section name (global data).
    pub name: String,
    /// Kind and sizes.
    pub def: MapDef,
    /// Initial content of the single value (global data maps).
    pub initial: Option<Vec<u8>>,
}

/// One program: the code of one section with `.text` appended and relocations applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfProgram {
    /// Section name: the hook (`sched/slice`).
    pub section: String,
    /// Name of the function at the start of the section (or the section name).
    pub name: String,
    /// Ready-to-load slots.
    pub slots: Vec<RawInsn>,
}

/// A parsed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfObject {
    /// Programs, one per code section, in section order.
    pub programs: Vec<ElfProgram>,
    /// Maps in index order (`lddw` map fds refer to positions here).
    pub maps: Vec<ElfMap>,
    /// The `license` section, if any.
    pub license: Option<String>,
}

impl ElfObject {
    /// The program attached to `section` (the hook name).
    pub fn program(&self, section: &str) -> Option<&ElfProgram> {
        self.programs.iter().find(|p| p.section == section)
    }

    /// Creates the maps (with their initial data), in index order, ready for
    /// [`crate::vm::Program::load`]. `cpus` sizes per-CPU maps.
    pub fn create_maps(&self, cpus: usize) -> Result<Vec<Arc<Map>>, MapError> {
        self.maps
            .iter()
            .map(|m| {
                let map = Map::new(&m.name, m.def, cpus)?;
                if let Some(data) = &m.initial {
                    map.update(&0u32.to_le_bytes(), data, 0, 0)?;
                }
                Ok(Arc::new(map))
            })
            .collect()
    }
}

fn read<const N: usize>(
    bytes: &[u8],
    offset: u64,
    what: &'static str,
) -> Result<[u8; N], ElfError> {
    let start = usize::try_from(offset).map_err(|_| ElfError::Truncated { what, offset })?;
    let end = start
        .checked_add(N)
        .ok_or(ElfError::Truncated { what, offset })?;
    let slice = bytes
        .get(start..end)
        .ok_or(ElfError::Truncated { what, offset })?;
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    Ok(out)
}

fn u16_at(b: &[u8], off: u64, what: &'static str) -> Result<u16, ElfError> {
    read::<2>(b, off, what).map(u16::from_le_bytes)
}
fn u32_at(b: &[u8], off: u64, what: &'static str) -> Result<u32, ElfError> {
    read::<4>(b, off, what).map(u32::from_le_bytes)
}
fn u64_at(b: &[u8], off: u64, what: &'static str) -> Result<u64, ElfError> {
    read::<8>(b, off, what).map(u64::from_le_bytes)
}

fn slice<'a>(b: &'a [u8], off: u64, len: u64, what: &'static str) -> Result<&'a [u8], ElfError> {
    let start = usize::try_from(off).map_err(|_| ElfError::Truncated { what, offset: off })?;
    let len = usize::try_from(len).map_err(|_| ElfError::Truncated { what, offset: off })?;
    let end = start
        .checked_add(len)
        .ok_or(ElfError::Truncated { what, offset: off })?;
    b.get(start..end)
        .ok_or(ElfError::Truncated { what, offset: off })
}

fn c_string(table: &[u8], offset: u32) -> String {
    let rest = table.get(offset as usize..).unwrap_or(&[]);
    let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}

#[derive(Clone, Debug)]
struct Section {
    name: String,
    kind: u32,
    flags: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
}

#[derive(Clone, Debug)]
struct Symbol {
    name: String,
    kind: u8,
    shndx: u16,
    value: u64,
}

/// What a symbol's section is, for relocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SectionRole {
    Code,
    LegacyMaps,
    /// Global data: the map index.
    Data(usize),
    Other,
}

/// Parses an object and links every program in it.
pub fn parse(bytes: &[u8]) -> Result<ElfObject, ElfError> {
    if bytes.len() > MAX_ELF_SIZE {
        return Err(ElfError::TooLarge { len: bytes.len() });
    }
    let ident = read::<16>(bytes, 0, "ELF identification")?;
    if ident[..4] != *b"\x7fELF" || ident[4] != 2 || ident[5] != 1 {
        return Err(ElfError::NotElf64Le);
    }
    let machine = u16_at(bytes, 18, "e_machine")?;
    if machine != EM_BPF {
        return Err(ElfError::NotBpf { machine });
    }
    let shoff = u64_at(bytes, 40, "e_shoff")?;
    let shentsize = u16_at(bytes, 58, "e_shentsize")?;
    let shnum = u16_at(bytes, 60, "e_shnum")? as usize;
    let shstrndx = u16_at(bytes, 62, "e_shstrndx")? as usize;
    if shentsize != 64 {
        return Err(ElfError::Malformed {
            what: "section header size",
            value: shentsize as u64,
        });
    }
    if shnum == 0 || shnum > MAX_SECTIONS || shstrndx >= shnum {
        return Err(ElfError::Malformed {
            what: "section count or string table index",
            value: shnum as u64,
        });
    }
    let mut raw = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let base = shoff
            .checked_add(i as u64 * 64)
            .ok_or(ElfError::Truncated {
                what: "section header",
                offset: shoff,
            })?;
        let h = slice(bytes, base, 64, "section header")?;
        let f32 = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let f64 = |o: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&h[o..o + 8]);
            u64::from_le_bytes(w)
        };
        raw.push((f32(0), f32(4), f64(8), f64(24), f64(32), f32(40), f32(44)));
    }
    let (_, _, _, str_off, str_size, _, _) = raw[shstrndx];
    let shstrtab = slice(bytes, str_off, str_size, "section name table")?;
    let mut sections = Vec::with_capacity(shnum);
    for &(name, kind, flags, offset, size, link, info) in &raw {
        if kind != SHT_NOBITS && kind != 0 {
            slice(bytes, offset, size, "section contents")?;
        }
        sections.push(Section {
            name: c_string(shstrtab, name),
            kind,
            flags,
            offset,
            size,
            link,
            info,
        });
    }
    // Symbols.
    let mut symbols = Vec::new();
    if let Some(symtab) = sections.iter().find(|s| s.kind == SHT_SYMTAB) {
        let strtab = sections
            .get(symtab.link as usize)
            .ok_or(ElfError::Malformed {
                what: "symbol string table index",
                value: symtab.link as u64,
            })?;
        let strings = slice(bytes, strtab.offset, strtab.size, "symbol names")?;
        let data = slice(bytes, symtab.offset, symtab.size, "symbol table")?;
        let count = data.len() / 24;
        if count > MAX_SYMBOLS {
            return Err(ElfError::Malformed {
                what: "symbol count",
                value: count as u64,
            });
        }
        for entry in data.chunks_exact(24) {
            let name = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let mut value = [0u8; 8];
            value.copy_from_slice(&entry[8..16]);
            symbols.push(Symbol {
                name: c_string(strings, name),
                kind: entry[4] & 0xf,
                shndx: u16::from_le_bytes([entry[6], entry[7]]),
                value: u64::from_le_bytes(value),
            });
        }
    }

    // Maps: legacy `maps` sections first (in symbol-value order), then global data.
    let mut roles = alloc::vec![SectionRole::Other; sections.len()];
    let mut maps: Vec<ElfMap> = Vec::new();
    // (section index, symbol value) -> map index, for legacy maps.
    let mut legacy_index: Vec<(usize, u64, usize)> = Vec::new();
    for (index, section) in sections.iter().enumerate() {
        let is_code = section.kind == SHT_PROGBITS && section.flags & SHF_EXECINSTR != 0;
        if is_code {
            roles[index] = SectionRole::Code;
        } else if section.name == "maps" || section.name.starts_with("maps/") {
            // Legacy definitions: struct bpf_map_def at each symbol.
            roles[index] = SectionRole::LegacyMaps;
            let data = slice(bytes, section.offset, section.size, "maps section")?;
            let mut defs: Vec<&Symbol> = symbols
                .iter()
                .filter(|s| s.shndx as usize == index && s.kind != STT_SECTION)
                .collect();
            defs.sort_by_key(|s| s.value);
            for sym in defs {
                let bad = |why: &str| ElfError::BadMap {
                    name: sym.name.clone(),
                    why: why.to_string(),
                };
                let at = sym.value;
                let field = |i: u64| u32_at(data, at.saturating_add(i * 4), "map definition");
                let kind_raw = field(0).map_err(|_| bad("definition truncated"))?;
                let kind = MapKind::from_linux(kind_raw).ok_or_else(|| {
                    bad("unsupported map type (array 2, hash 1, percpu_array 6, ringbuf 27)")
                })?;
                let def = MapDef {
                    kind,
                    key_size: field(1).map_err(|_| bad("definition truncated"))?,
                    value_size: field(2).map_err(|_| bad("definition truncated"))?,
                    max_entries: field(3).map_err(|_| bad("definition truncated"))?,
                };
                legacy_index.push((index, sym.value, maps.len()));
                maps.push(ElfMap {
                    name: sym.name.clone(),
                    def,
                    initial: None,
                });
            }
        }
    }
    if let Some(maps_index) = sections.iter().position(|s| s.name == ".maps") {
        let btf =
            sections
                .iter()
                .find(|s| s.name == ".BTF")
                .ok_or_else(|| ElfError::Unsupported {
                    what: "a `.maps` section without `.BTF` (compile with -g)".to_string(),
                })?;
        let btf_bytes = slice(bytes, btf.offset, btf.size, ".BTF section")?;
        let btf_maps = crate::btf::maps_from_btf(btf_bytes).map_err(|e| ElfError::BadMap {
            name: ".maps".to_string(),
            why: e.0,
        })?;
        roles[maps_index] = SectionRole::LegacyMaps;
        // Object files carry DATASEC offsets of 0 (libbpf fixes them up from the symbol
        // table), so each BTF variable is matched to its symbol by name.
        let mut defs: Vec<&Symbol> = symbols
            .iter()
            .filter(|s| s.shndx as usize == maps_index && s.kind != STT_SECTION)
            .collect();
        defs.sort_by_key(|s| s.value);
        for sym in defs {
            let m = btf_maps
                .iter()
                .find(|m| m.name == sym.name)
                .ok_or_else(|| ElfError::BadMap {
                    name: sym.name.clone(),
                    why: "no BTF description in the .maps DATASEC".to_string(),
                })?;
            legacy_index.push((maps_index, sym.value, maps.len()));
            maps.push(ElfMap {
                name: m.name.clone(),
                def: m.def,
                initial: None,
            });
        }
    }
    for (index, section) in sections.iter().enumerate() {
        let data_section = [".rodata", ".data", ".bss"]
            .iter()
            .any(|p| section.name == *p || section.name.starts_with(&alloc::format!("{p}.")));
        if data_section && section.flags & SHF_ALLOC != 0 && section.size > 0 {
            if section.size > crate::limits::MAX_MAP_VALUE_SIZE as u64 {
                return Err(ElfError::BadMap {
                    name: section.name.clone(),
                    why: "global data section larger than a map value may be".to_string(),
                });
            }
            let initial = if section.kind == SHT_NOBITS {
                alloc::vec![0u8; section.size as usize]
            } else {
                slice(bytes, section.offset, section.size, "data section")?.to_vec()
            };
            roles[index] = SectionRole::Data(maps.len());
            let _ = section.flags & SHF_WRITE; // read-only data is writable here too
            maps.push(ElfMap {
                name: section.name.clone(),
                def: MapDef {
                    kind: MapKind::Array,
                    key_size: 4,
                    value_size: section.size as u32,
                    max_entries: 1,
                },
                initial: Some(initial),
            });
        }
    }
    if maps.len() > MAX_MAPS_PER_PROGRAM {
        return Err(ElfError::Malformed {
            what: "map count",
            value: maps.len() as u64,
        });
    }

    // Programs.
    let text_index = sections
        .iter()
        .enumerate()
        .position(|(i, s)| s.name == ".text" && roles[i] == SectionRole::Code && s.size > 0);
    let mut program_sections: Vec<usize> = (0..sections.len())
        .filter(|&i| roles[i] == SectionRole::Code && Some(i) != text_index && sections[i].size > 0)
        .collect();
    if program_sections.is_empty() {
        if let Some(t) = text_index {
            program_sections.push(t);
        }
    }
    if program_sections.is_empty() {
        return Err(ElfError::NoPrograms);
    }
    let slots_of = |index: usize| -> Result<Vec<RawInsn>, ElfError> {
        let s = &sections[index];
        let data = slice(bytes, s.offset, s.size, "code section")?;
        if data.len() % SLOT_SIZE != 0 {
            return Err(ElfError::Malformed {
                what: "code section size",
                value: data.len() as u64,
            });
        }
        Ok(data
            .chunks_exact(SLOT_SIZE)
            .map(|c| {
                let mut w = [0u8; SLOT_SIZE];
                w.copy_from_slice(c);
                RawInsn::from_bytes(w)
            })
            .collect())
    };
    let mut programs = Vec::new();
    for &index in &program_sections {
        let mut code = slots_of(index)?;
        let main_len = code.len();
        let mut bases = alloc::vec![(index, 0usize)];
        if let Some(t) = text_index {
            if t != index {
                bases.push((t, main_len));
                code.extend(slots_of(t)?);
            }
        }
        if code.len() > MAX_PROGRAM_SLOTS {
            return Err(ElfError::Malformed {
                what: "program length in slots",
                value: code.len() as u64,
            });
        }
        for &(code_section, base) in &bases.clone() {
            for rel in sections
                .iter()
                .filter(|r| r.kind == SHT_REL && r.info as usize == code_section)
            {
                let data = slice(bytes, rel.offset, rel.size, "relocation section")?;
                for entry in data.chunks_exact(16) {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&entry[..8]);
                    let offset = u64::from_le_bytes(w);
                    w.copy_from_slice(&entry[8..16]);
                    let info = u64::from_le_bytes(w);
                    relocate(
                        &mut code,
                        &sections,
                        &symbols,
                        &roles,
                        &legacy_index,
                        &bases,
                        code_section,
                        base,
                        offset,
                        info,
                    )?;
                }
            }
        }
        let name = symbols
            .iter()
            .find(|s| s.shndx as usize == index && s.value == 0 && s.kind == 2)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| sections[index].name.clone());
        programs.push(ElfProgram {
            section: sections[index].name.clone(),
            name,
            slots: code,
        });
    }
    let license = sections
        .iter()
        .find(|s| s.name == "license")
        .and_then(|s| slice(bytes, s.offset, s.size, "license").ok())
        .map(|d| c_string(d, 0));
    Ok(ElfObject {
        programs,
        maps,
        license,
    })
}

#[allow(clippy::too_many_arguments)]
fn relocate(
    code: &mut [RawInsn],
    sections: &[Section],
    symbols: &[Symbol],
    roles: &[SectionRole],
    legacy_index: &[(usize, u64, usize)],
    bases: &[(usize, usize)],
    code_section: usize,
    base: usize,
    offset: u64,
    info: u64,
) -> Result<(), ElfError> {
    let section_name = &sections[code_section].name;
    let bad = |why: &'static str| ElfError::BadRelocation {
        section: section_name.clone(),
        offset,
        why,
    };
    if !offset.is_multiple_of(SLOT_SIZE as u64) {
        return Err(bad("offset is not on an instruction boundary"));
    }
    let slot = usize::try_from(offset / SLOT_SIZE as u64)
        .ok()
        .and_then(|s| s.checked_add(base))
        .ok_or_else(|| bad("offset outside the section"))?;
    let sym_index = (info >> 32) as usize;
    let kind = info as u32;
    let sym = symbols
        .get(sym_index)
        .ok_or_else(|| bad("symbol index out of range"))?;
    let sym_section = sym.shndx as usize;
    let role = roles
        .get(sym_section)
        .copied()
        .unwrap_or(SectionRole::Other);
    let insn = *code
        .get(slot)
        .ok_or_else(|| bad("offset outside the section"))?;
    match kind {
        R_BPF_64_64 => {
            if insn.opcode != (class::LD | 0x18) || slot + 1 >= code.len() {
                return Err(bad("R_BPF_64_64 not on an lddw"));
            }
            match role {
                SectionRole::LegacyMaps => {
                    let map = legacy_index
                        .iter()
                        .find(|(s, v, _)| *s == sym_section && *v == sym.value)
                        .map(|(_, _, m)| *m)
                        .ok_or_else(|| bad("symbol is not a map definition"))?;
                    code[slot].src = lddw_src::MAP_BY_FD;
                    code[slot].imm = map as i32;
                    code[slot + 1].imm = 0;
                }
                SectionRole::Data(map) => {
                    let addend =
                        (insn.imm as u32 as u64) | ((code[slot + 1].imm as u32 as u64) << 32);
                    let within = sym
                        .value
                        .checked_add(addend)
                        .filter(|&o| o < sections[sym_section].size)
                        .ok_or_else(|| bad("data reference outside its section"))?;
                    code[slot].src = lddw_src::MAP_VALUE_BY_FD;
                    code[slot].imm = map as i32;
                    code[slot + 1].imm = within as i32;
                }
                _ => return Err(bad("lddw refers to something that is neither map nor data")),
            }
        }
        R_BPF_64_32 => {
            if insn.opcode != (class::JMP | jmp::CALL) || insn.src != call_src::LOCAL {
                return Err(bad("R_BPF_64_32 not on a BPF-to-BPF call"));
            }
            let target_base = bases
                .iter()
                .find(|(s, _)| *s == sym_section)
                .map(|(_, b)| *b)
                .ok_or_else(|| bad("call into a section that is not linked in"))?;
            let local = (sym.value / SLOT_SIZE as u64) as i64 + insn.imm as i64 + 1;
            let target = target_base as i64 + local;
            if target < 0 || target >= code.len() as i64 {
                return Err(bad("call target outside the program"));
            }
            let rel = target - slot as i64 - 1;
            code[slot].imm = i32::try_from(rel).map_err(|_| bad("call offset overflow"))?;
        }
        _ => return Err(bad("relocation type not supported in code")),
    }
    let _ = code_section;
    Ok(())
}
