//! Host side of the capability boundary: the host functions a module may be granted, and the
//! trait through which they reach the kernel.
//!
//! Every host function lives in import module [`HOST_MODULE`]; its grant name is its import
//! name. The kernel implements [`HostServices`] (telemetry counters by name, maps shared with
//! eBPF) over its own state; tests use [`InMemoryServices`]. Console output and log records
//! are not services: the runtime buffers them per call and hands them to the caller, so a
//! module can never write to the console while it holds a lock or runs on a hook path.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Import module name of every host function.
pub const HOST_MODULE: &str = "anneal";

/// Value type in a host function signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostValueType {
    /// `i32`
    I32,
    /// `i64`
    I64,
}

impl fmt::Display for HostValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::I32 => "i32",
            Self::I64 => "i64",
        })
    }
}

/// Description of one host function a manifest can grant.
#[derive(Debug, Clone, Copy)]
pub struct HostFunction {
    /// Import field name (and grant name).
    pub name: &'static str,
    /// Parameter types.
    pub params: &'static [HostValueType],
    /// Result types.
    pub results: &'static [HostValueType],
    /// One-line description for `wasm info`, the README and model prompts.
    pub summary: &'static str,
}

use HostValueType::{I32, I64};

/// Every host function, in the order the README documents them.
pub const HOST_FUNCTIONS: &[HostFunction] = &[
    HostFunction {
        name: "console_write",
        params: &[I32, I32],
        results: &[],
        summary: "console_write(ptr, len): append memory[ptr..ptr+len] to the call's console output",
    },
    HostFunction {
        name: "log",
        params: &[I32, I32, I32],
        results: &[],
        summary: "log(level, ptr, len): one log record (level 0=error 1=warn 2=info 3=debug) of UTF-8 text",
    },
    HostFunction {
        name: "telemetry_read",
        params: &[I32, I32],
        results: &[I64],
        summary: "telemetry_read(name_ptr, name_len) -> value: a counter listed in the manifest; -1 if the kernel has none by that name",
    },
    HostFunction {
        name: "map_lookup",
        params: &[I32, I32, I32, I32, I32],
        results: &[I32],
        summary: "map_lookup(map, key_ptr, key_len, val_ptr, val_len) -> n: copy the value (n bytes) of a shared map (manifest index); -1 if absent",
    },
    HostFunction {
        name: "map_update",
        params: &[I32, I32, I32, I32, I32],
        results: &[I32],
        summary: "map_update(map, key_ptr, key_len, val_ptr, val_len) -> status: 0 stored, -1 refused by the map",
    },
    HostFunction {
        name: "hook_input_len",
        params: &[],
        results: &[I32],
        summary: "hook_input_len() -> n: number of input words in this call's hook context",
    },
    HostFunction {
        name: "hook_input",
        params: &[I32],
        results: &[I64],
        summary: "hook_input(index) -> word: one input word (traps past the end)",
    },
    HostFunction {
        name: "hook_output",
        params: &[I32, I64],
        results: &[],
        summary: "hook_output(index, word): set output word `index` of this call's hook context",
    },
];

/// Looks a host function up by import name.
pub fn host_function(name: &str) -> Option<&'static HostFunction> {
    HOST_FUNCTIONS.iter().find(|h| h.name == name)
}

/// Log level of a record a module emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// 0
    Error,
    /// 1
    Warn,
    /// 2
    Info,
    /// 3 (and anything larger)
    Debug,
}

impl LogLevel {
    /// Maps the wasm-side level number; values past 3 are clamped to `Debug`.
    pub fn from_wasm(level: i32) -> Self {
        match level {
            i32::MIN..=0 => Self::Error,
            1 => Self::Warn,
            2 => Self::Info,
            _ => Self::Debug,
        }
    }
}

/// One log record a module emitted during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Level.
    pub level: LogLevel,
    /// Message (lossily decoded UTF-8, at most `MAX_LOG_MESSAGE_BYTES`).
    pub message: String,
}

/// Why a shared map refused an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// No map by that name exists in the kernel.
    NoSuchMap,
    /// Key or value size does not match the map's definition.
    WrongSize,
    /// The map is full.
    Full,
}

/// Kernel services reached by host functions. The kernel implements this over its telemetry
/// registry and eBPF map table; a `&mut` receiver lets in-memory test doubles mutate freely.
pub trait HostServices {
    /// Current value of telemetry counter `name`, or `None` if the kernel has no such counter.
    fn read_counter(&self, name: &str) -> Option<u64>;
    /// Copies the value stored under `key` in shared map `map` into `value`; returns the
    /// value's full length (which may exceed `value.len()`: only the prefix is copied), or
    /// `None` when the key is absent.
    fn map_lookup(&mut self, map: &str, key: &[u8], value: &mut [u8]) -> Option<usize>;
    /// Stores `value` under `key` in shared map `map`.
    fn map_update(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), MapError>;
}

/// In-memory [`HostServices`]: counters and maps in B-trees. Used by host tests, the
/// console's default environment and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct InMemoryServices {
    /// Telemetry counters by name.
    pub counters: BTreeMap<String, u64>,
    /// Shared maps by name; each maps key bytes to value bytes.
    pub maps: BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl InMemoryServices {
    /// Sets a counter.
    pub fn set_counter(&mut self, name: &str, value: u64) {
        self.counters.insert(String::from(name), value);
    }

    /// Creates an empty map if none exists by that name.
    pub fn create_map(&mut self, name: &str) {
        self.maps.entry(String::from(name)).or_default();
    }
}

impl HostServices for InMemoryServices {
    fn read_counter(&self, name: &str) -> Option<u64> {
        self.counters.get(name).copied()
    }

    fn map_lookup(&mut self, map: &str, key: &[u8], value: &mut [u8]) -> Option<usize> {
        let stored = self.maps.get(map)?.get(key)?;
        let n = stored.len().min(value.len());
        value[..n].copy_from_slice(&stored[..n]);
        Some(stored.len())
    }

    fn map_update(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), MapError> {
        let map = self.maps.get_mut(map).ok_or(MapError::NoSuchMap)?;
        map.insert(key.to_vec(), value.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_function_names_are_unique_and_found() {
        for (i, h) in HOST_FUNCTIONS.iter().enumerate() {
            assert!(HOST_FUNCTIONS[i + 1..].iter().all(|o| o.name != h.name));
            assert_eq!(host_function(h.name).map(|f| f.name), Some(h.name));
        }
        assert!(host_function("reboot").is_none());
    }

    #[test]
    fn in_memory_maps_copy_prefixes_and_report_full_length() {
        let mut s = InMemoryServices::default();
        assert_eq!(s.map_update("m", b"k", b"v"), Err(MapError::NoSuchMap));
        s.create_map("m");
        s.map_update("m", b"k", b"value").unwrap();
        let mut buf = [0u8; 3];
        assert_eq!(s.map_lookup("m", b"k", &mut buf), Some(5));
        assert_eq!(&buf, b"val");
        assert_eq!(s.map_lookup("m", b"x", &mut buf), None);
    }

    #[test]
    fn log_levels_clamp() {
        assert_eq!(LogLevel::from_wasm(-5), LogLevel::Error);
        assert_eq!(LogLevel::from_wasm(2), LogLevel::Info);
        assert_eq!(LogLevel::from_wasm(99), LogLevel::Debug);
    }
}
