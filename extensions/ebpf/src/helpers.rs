//! Helper prototypes: the one table saying what every callable helper takes and returns.
//!
//! The verifier reads this table to type-check `call` instructions; the interpreter's helper
//! table ([`crate::vm::HelperTable`]) implements the same ids. Ids follow Linux wherever a
//! Linux helper exists, so programs written for Linux (and clang's `bpf_helper_defs.h`) mean
//! the same thing here.
//!
//! The argument kinds follow Linux's `bpf_arg_type` closely, reduced to what our helpers
//! use: a pointer-to-memory argument is always followed by its size argument
//! ([`ArgType::MemorySize`]), and map key/value pointers take their size from the map passed
//! in the first [`ArgType::MapPointer`] argument.

/// What one helper argument must be, as the verifier checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgType {
    /// Any initialised value that is not a pointer (a scalar).
    Scalar,
    /// A map handle, as loaded by `lddw dst, map` (lddw src 1 or 5).
    MapPointer,
    /// A pointer to readable, initialised memory (stack or map value) of the key size of the
    /// map in the preceding [`ArgType::MapPointer`] argument.
    MapKey,
    /// A pointer to readable, initialised memory of the value size of that map.
    MapValue,
    /// A pointer to readable, initialised memory (stack, context, map value); its size in
    /// bytes is the next argument, which is [`ArgType::MemorySize`].
    ReadableMemory,
    /// A pointer to writable memory (stack or map value) the helper fills; its size is the
    /// next argument. Uninitialised stack is allowed (the helper initialises it).
    WritableMemory,
    /// The size of the preceding memory argument: a scalar with a known upper bound that
    /// keeps the access inside the pointed-to region. Zero is allowed.
    MemorySize,
    /// The program's context pointer (r1 at entry, unmodified offset 0).
    Context,
}

/// What a helper returns in r0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetType {
    /// An integer (including error codes: negative values).
    Scalar,
    /// A pointer to a value of the map passed as the first argument, or 0 (null): the
    /// program must test it against 0 before using it.
    MapValueOrNull,
}

/// One helper's signature. `args.len()` is the number of arguments (r1..r5); the
/// registers beyond it are not read by the helper. r1-r5 are clobbered by every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperPrototype {
    /// Helper id (the `imm` of `call`).
    pub id: u32,
    /// Linux name without the `bpf_` prefix.
    pub name: &'static str,
    /// Argument kinds for r1, r2, ... in order.
    pub args: &'static [ArgType],
    /// Return kind in r0.
    pub ret: RetType,
}

/// Linux helper ids of the helpers this runtime implements.
pub mod id {
    /// `void *bpf_map_lookup_elem(map, key)`.
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    /// `long bpf_map_update_elem(map, key, value, flags)`.
    pub const MAP_UPDATE_ELEM: u32 = 2;
    /// `long bpf_map_delete_elem(map, key)`.
    pub const MAP_DELETE_ELEM: u32 = 3;
    /// `u64 bpf_ktime_get_ns(void)`.
    pub const KTIME_GET_NS: u32 = 5;
    /// `long bpf_trace_printk(fmt, fmt_size, a, b, c)`.
    pub const TRACE_PRINTK: u32 = 6;
    /// `u32 bpf_get_prandom_u32(void)`.
    pub const GET_PRANDOM_U32: u32 = 7;
    /// `u32 bpf_get_smp_processor_id(void)`.
    pub const GET_SMP_PROCESSOR_ID: u32 = 8;
    /// `long bpf_ringbuf_output(ringbuf, data, size, flags)`.
    pub const RINGBUF_OUTPUT: u32 = 130;
}

use ArgType::*;

/// Every helper the runtime implements, in id order. The verifier engineer's single source of
/// helper signatures; a hook may allow only a subset.
pub static HELPER_PROTOTYPES: &[HelperPrototype] = &[
    HelperPrototype {
        id: id::MAP_LOOKUP_ELEM,
        name: "map_lookup_elem",
        args: &[MapPointer, MapKey],
        ret: RetType::MapValueOrNull,
    },
    HelperPrototype {
        id: id::MAP_UPDATE_ELEM,
        name: "map_update_elem",
        args: &[MapPointer, MapKey, MapValue, Scalar],
        ret: RetType::Scalar,
    },
    HelperPrototype {
        id: id::MAP_DELETE_ELEM,
        name: "map_delete_elem",
        args: &[MapPointer, MapKey],
        ret: RetType::Scalar,
    },
    HelperPrototype {
        id: id::KTIME_GET_NS,
        name: "ktime_get_ns",
        args: &[],
        ret: RetType::Scalar,
    },
    HelperPrototype {
        id: id::TRACE_PRINTK,
        name: "trace_printk",
        args: &[ReadableMemory, MemorySize, Scalar, Scalar, Scalar],
        ret: RetType::Scalar,
    },
    HelperPrototype {
        id: id::GET_PRANDOM_U32,
        name: "get_prandom_u32",
        args: &[],
        ret: RetType::Scalar,
    },
    HelperPrototype {
        id: id::GET_SMP_PROCESSOR_ID,
        name: "get_smp_processor_id",
        args: &[],
        ret: RetType::Scalar,
    },
    HelperPrototype {
        id: id::RINGBUF_OUTPUT,
        name: "ringbuf_output",
        args: &[MapPointer, ReadableMemory, MemorySize, Scalar],
        ret: RetType::Scalar,
    },
];

/// The prototype of helper `id`, if the runtime implements it.
pub fn prototype(id: u32) -> Option<&'static HelperPrototype> {
    HELPER_PROTOTYPES.iter().find(|p| p.id == id)
}

/// The prototype of the helper called `name` (Linux name, with or without `bpf_`).
pub fn prototype_by_name(name: &str) -> Option<&'static HelperPrototype> {
    let name = name.strip_prefix("bpf_").unwrap_or(name);
    HELPER_PROTOTYPES.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_sizes_follow_memory() {
        for pair in HELPER_PROTOTYPES.windows(2) {
            assert!(
                pair[0].id < pair[1].id,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for proto in HELPER_PROTOTYPES {
            assert!(proto.args.len() <= 5, "{}", proto.name);
            for (i, arg) in proto.args.iter().enumerate() {
                let needs_size = matches!(arg, ReadableMemory | WritableMemory);
                let next_is_size = proto.args.get(i + 1) == Some(&MemorySize);
                assert_eq!(needs_size, next_is_size, "{} arg {}", proto.name, i + 1);
                if matches!(arg, MapKey | MapValue) {
                    assert_eq!(proto.args[0], MapPointer, "{}", proto.name);
                }
            }
        }
    }

    #[test]
    fn lookup_by_id_and_name() {
        assert_eq!(prototype(1).map(|p| p.name), Some("map_lookup_elem"));
        assert_eq!(prototype(130).map(|p| p.args.len()), Some(4));
        assert_eq!(prototype(4), None);
        assert_eq!(
            prototype_by_name("bpf_ktime_get_ns").map(|p| p.id),
            Some(id::KTIME_GET_NS)
        );
    }
}
