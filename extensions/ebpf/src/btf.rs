//! Just enough BTF to read BTF-style map definitions (`SEC(".maps")`).
//!
//! libbpf's modern map syntax declares each map as a global struct in `.maps` whose members
//! encode the map's shape in their *types*: `__uint(type, 2)` is a member `int (*type)[2]`
//! (a pointer to an array of 2 elements), `__type(key, T)` is a member `T *key`. The numbers
//! therefore exist only in the `.BTF` section. This module parses the BTF type table (every
//! kind, so it can step over them), finds the `.maps` DATASEC and reads each map variable's
//! struct. All reads are bounds-checked; recursion through typedefs/qualifiers is capped.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::maps::{MapDef, MapKind};

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;
/// Most types read (clang emits hundreds at most for a program).
const MAX_TYPES: usize = 1 << 16;
/// Deepest typedef/qualifier/array chain followed when sizing a type.
const MAX_DEPTH: usize = 32;

#[derive(Clone, Debug)]
struct Type {
    name: u32,
    kind: u32,
    /// `size` for INT/STRUCT/UNION/ENUM/DATASEC, `type` for PTR/TYPEDEF/qualifiers/VAR/FUNC.
    size_or_type: u32,
    /// ARRAY: (elem type, nelems); STRUCT: members (name, type); DATASEC: (type, offset).
    array: Option<(u32, u32)>,
    members: Vec<(u32, u32, u32)>,
}

/// A BTF map definition read from `.maps`: the variable name and its shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfMap {
    /// Variable name (the map's name).
    pub name: String,
    /// Offset of the variable as the DATASEC records it (0 in clang's object files, where
    /// the symbol table has the real offset).
    pub offset: u32,
    /// Kind and sizes.
    pub def: MapDef,
}

/// Why the BTF could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfError(pub String);

fn err(what: &str) -> BtfError {
    BtfError(what.to_string())
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, BtfError> {
    let end = off.checked_add(4).ok_or_else(|| err("offset overflow"))?;
    let s = b.get(off..end).ok_or_else(|| err("type table truncated"))?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

struct Btf<'a> {
    types: Vec<Type>,
    strings: &'a [u8],
}

impl Btf<'_> {
    fn name(&self, off: u32) -> String {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    }

    fn get(&self, id: u32) -> Result<&Type, BtfError> {
        // Type id 0 is void; ids start at 1.
        id.checked_sub(1)
            .and_then(|i| self.types.get(i as usize))
            .ok_or_else(|| err("type id out of range"))
    }

    /// Skips typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> Result<&Type, BtfError> {
        for _ in 0..MAX_DEPTH {
            let t = self.get(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return Ok(t),
            }
        }
        Err(err("type chain too deep"))
    }

    fn size_of(&self, id: u32, depth: usize) -> Result<u64, BtfError> {
        if depth > MAX_DEPTH {
            return Err(err("type chain too deep"));
        }
        let t = self.resolve(id)?;
        Ok(match t.kind {
            KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 => t.size_or_type as u64,
            KIND_PTR => 8,
            KIND_ARRAY => {
                let (elem, n) = t.array.ok_or_else(|| err("array without element"))?;
                self.size_of(elem, depth + 1)?.saturating_mul(n as u64)
            }
            _ => return Err(err("type has no size")),
        })
    }

    /// `int (*name)[N]` → N.
    fn uint_member(&self, ty: u32) -> Result<u32, BtfError> {
        let ptr = self.resolve(ty)?;
        if ptr.kind != KIND_PTR {
            return Err(err("__uint member is not a pointer to an array"));
        }
        let array = self.resolve(ptr.size_or_type)?;
        array
            .array
            .map(|(_, n)| n)
            .ok_or_else(|| err("__uint member is not a pointer to an array"))
    }

    /// `T *name` → sizeof(T).
    fn type_member(&self, ty: u32) -> Result<u32, BtfError> {
        let ptr = self.resolve(ty)?;
        if ptr.kind != KIND_PTR {
            return Err(err("__type member is not a pointer"));
        }
        u32::try_from(self.size_of(ptr.size_or_type, 0)?).map_err(|_| err("type too large"))
    }
}

fn parse_types(section: &[u8]) -> Result<Btf<'_>, BtfError> {
    let magic = u16::from_le_bytes([
        *section.first().ok_or_else(|| err("empty .BTF"))?,
        *section.get(1).ok_or_else(|| err("empty .BTF"))?,
    ]);
    if magic != BTF_MAGIC {
        return Err(err("bad .BTF magic"));
    }
    let hdr_len = u32_at(section, 4)? as usize;
    let type_off = u32_at(section, 8)? as usize;
    let type_len = u32_at(section, 12)? as usize;
    let str_off = u32_at(section, 16)? as usize;
    let str_len = u32_at(section, 20)? as usize;
    let range = |off: usize, len: usize| -> Result<&[u8], BtfError> {
        let start = hdr_len
            .checked_add(off)
            .ok_or_else(|| err("offset overflow"))?;
        let end = start
            .checked_add(len)
            .ok_or_else(|| err("offset overflow"))?;
        section.get(start..end).ok_or_else(|| err(".BTF truncated"))
    };
    let table = range(type_off, type_len)?;
    let strings = range(str_off, str_len)?;
    let mut types = Vec::new();
    let mut at = 0usize;
    while at < table.len() {
        if types.len() >= MAX_TYPES {
            return Err(err("too many BTF types"));
        }
        let name = u32_at(table, at)?;
        let info = u32_at(table, at + 4)?;
        let size_or_type = u32_at(table, at + 8)?;
        at += 12;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let mut t = Type {
            name,
            kind,
            size_or_type,
            array: None,
            members: Vec::new(),
        };
        let entries = |size: usize| vlen.checked_mul(size).ok_or_else(|| err("vlen overflow"));
        match kind {
            KIND_INT | KIND_VAR | KIND_DECL_TAG => at += 4,
            KIND_ARRAY => {
                t.array = Some((u32_at(table, at)?, u32_at(table, at + 8)?));
                at += 12;
            }
            KIND_STRUCT | KIND_UNION | KIND_DATASEC => {
                for i in 0..vlen {
                    let m = at + i * 12;
                    t.members.push((
                        u32_at(table, m)?,
                        u32_at(table, m + 4)?,
                        u32_at(table, m + 8)?,
                    ));
                }
                at += entries(12)?;
            }
            KIND_ENUM | KIND_FUNC_PROTO => at += entries(8)?,
            KIND_ENUM64 => at += entries(12)?,
            2 | 7..=13 | 16 | KIND_TYPE_TAG => {}
            _ => return Err(err("unknown BTF kind")),
        }
        types.push(t);
    }
    Ok(Btf { types, strings })
}

/// Reads every map of the `.maps` DATASEC in `btf_section` (the raw `.BTF` bytes).
pub fn maps_from_btf(btf_section: &[u8]) -> Result<Vec<BtfMap>, BtfError> {
    let btf = parse_types(btf_section)?;
    let Some(datasec) = btf
        .types
        .iter()
        .find(|t| t.kind == KIND_DATASEC && btf.name(t.name) == ".maps")
    else {
        return Ok(Vec::new());
    };
    let mut maps = Vec::new();
    for &(var_type, offset, _size) in &datasec.members {
        let var = btf.get(var_type)?;
        if var.kind != KIND_VAR {
            return Err(err(".maps entry is not a variable"));
        }
        let name = btf.name(var.name);
        let def_struct = btf.resolve(var.size_or_type)?;
        if def_struct.kind != KIND_STRUCT {
            return Err(BtfError(alloc::format!(
                "map {name}: definition is not a struct"
            )));
        }
        let (mut kind, mut key_size, mut value_size, mut max_entries) = (None, 0, 0, 0);
        for &(member_name, member_type, _) in &def_struct.members {
            let with_name = |e: BtfError| BtfError(alloc::format!("map {name}: {}", e.0));
            match btf.name(member_name).as_str() {
                "type" => kind = Some(btf.uint_member(member_type).map_err(with_name)?),
                "key" => key_size = btf.type_member(member_type).map_err(with_name)?,
                "value" => value_size = btf.type_member(member_type).map_err(with_name)?,
                "key_size" => key_size = btf.uint_member(member_type).map_err(with_name)?,
                "value_size" => value_size = btf.uint_member(member_type).map_err(with_name)?,
                "max_entries" => max_entries = btf.uint_member(member_type).map_err(with_name)?,
                "map_flags" | "pinning" | "numa_node" => {}
                other => {
                    return Err(BtfError(alloc::format!(
                        "map {name}: unsupported member `{other}`"
                    )))
                }
            }
        }
        let kind_raw = kind.ok_or_else(|| BtfError(alloc::format!("map {name}: no type")))?;
        let kind = MapKind::from_linux(kind_raw).ok_or_else(|| {
            BtfError(alloc::format!(
                "map {name}: unsupported map type {kind_raw}"
            ))
        })?;
        maps.push(BtfMap {
            name,
            offset,
            def: MapDef {
                kind,
                key_size,
                value_size,
                max_entries,
            },
        });
    }
    Ok(maps)
}
