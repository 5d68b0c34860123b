//! Maps: array, hash, per-CPU array and ring buffer, shared by programs on every core.
//!
//! Design, following Linux where it matters to programs:
//! - Sizes are fixed at creation and bounded by [`crate::limits`]; all value memory is
//!   preallocated in one [`RawBuffer`] per map, so a value pointer handed to a program stays
//!   valid for the map's life and the interpreter can bounds-check it against one region.
//! - Value strides are rounded up to 8 bytes (as Linux does), so 64-bit atomics on values
//!   are aligned.
//! - Metadata (hash slots, ring records) sits behind a [`SpinLock`]; value bytes are accessed
//!   lock-free through raw pointers, which is the eBPF memory model (programs use atomic
//!   instructions for shared counters).
//! - The ring buffer carries events to the kernel: programs append with
//!   `bpf_ringbuf_output`, the kernel drains with [`Map::ringbuf_pop`].

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::limits::{
    MAX_CPUS, MAX_MAP_BYTES, MAX_MAP_ENTRIES, MAX_MAP_KEY_SIZE, MAX_MAP_VALUE_SIZE,
};
use crate::memory::{RawBuffer, Region};
use crate::sync::SpinLock;

/// Linux map type numbers (`enum bpf_map_type`), used by ELF map definitions.
pub mod map_type {
    /// `BPF_MAP_TYPE_HASH`.
    pub const HASH: u32 = 1;
    /// `BPF_MAP_TYPE_ARRAY`.
    pub const ARRAY: u32 = 2;
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`.
    pub const PERCPU_ARRAY: u32 = 6;
    /// `BPF_MAP_TYPE_RINGBUF`.
    pub const RINGBUF: u32 = 27;
}

/// Update flags of `bpf_map_update_elem`.
pub mod update_flags {
    /// Create or replace.
    pub const ANY: u64 = 0;
    /// Create only.
    pub const NOEXIST: u64 = 1;
    /// Replace only.
    pub const EXIST: u64 = 2;
}

/// The kind of a map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// Fixed array indexed by a u32 key; every entry exists (zeroed at creation).
    Array,
    /// Hash table with up to `max_entries` keys.
    Hash,
    /// An array with one copy of every value per CPU.
    PerCpuArray,
    /// Event queue to the kernel; `max_entries` is its capacity in bytes (power of two).
    RingBuf,
}

impl MapKind {
    /// From a Linux map type number.
    pub fn from_linux(value: u32) -> Option<MapKind> {
        match value {
            map_type::HASH => Some(MapKind::Hash),
            map_type::ARRAY => Some(MapKind::Array),
            map_type::PERCPU_ARRAY => Some(MapKind::PerCpuArray),
            map_type::RINGBUF => Some(MapKind::RingBuf),
            _ => None,
        }
    }
}

/// A map's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapDef {
    /// What kind of map.
    pub kind: MapKind,
    /// Key size in bytes (4 for arrays, 0 for ring buffers).
    pub key_size: u32,
    /// Value size in bytes (0 for ring buffers).
    pub value_size: u32,
    /// Entry count, or byte capacity for a ring buffer.
    pub max_entries: u32,
}

/// Why a map operation failed. [`MapError::errno`] gives the Linux error a helper returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The definition is not allowed (sizes, kind).
    BadDefinition(String),
    /// The key is not in the map (or an array index is out of range).
    NotFound,
    /// `NOEXIST` update of an existing key.
    Exists,
    /// The map is full (hash) or the ring buffer has no room.
    Full,
    /// An operation this map kind does not have (delete on an array...).
    Unsupported,
    /// A key or value of the wrong size.
    WrongSize { expected: u32, found: usize },
    /// Unknown update flags.
    BadFlags(u64),
}

impl MapError {
    /// The negative Linux errno a helper returns for this error.
    pub fn errno(&self) -> i64 {
        match self {
            MapError::NotFound => -2, // ENOENT
            MapError::Exists => -17,  // EEXIST
            MapError::Full => -7,     // E2BIG (hash full), like Linux
            MapError::BadDefinition(_)
            | MapError::Unsupported
            | MapError::WrongSize { .. }
            | MapError::BadFlags(_) => -22, // EINVAL
        }
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::BadDefinition(why) => write!(f, "bad map definition: {why}"),
            MapError::NotFound => write!(f, "no such key"),
            MapError::Exists => write!(f, "key already exists"),
            MapError::Full => write!(f, "map is full"),
            MapError::Unsupported => write!(f, "operation not supported by this map kind"),
            MapError::WrongSize { expected, found } => {
                write!(f, "expected {expected} bytes, got {found}")
            }
            MapError::BadFlags(flags) => write!(f, "unknown update flags {flags:#x}"),
        }
    }
}

const EMPTY: u32 = u32::MAX;
const TOMBSTONE: u32 = u32::MAX - 1;

/// Hash table metadata: an open-addressing index into a slab of key/value slots.
struct HashState {
    /// Open-addressing table of slot numbers (`EMPTY`, `TOMBSTONE` or a slot).
    index: Vec<u32>,
    /// Keys of the slots, `key_size` bytes each.
    keys: Vec<u8>,
    /// Free slots.
    free: Vec<u32>,
    /// Tombstones in `index`; past a quarter of it the index is rebuilt, so lookups stay
    /// short however many inserts and deletes a long-running hook makes.
    tombstones: usize,
}

impl HashState {
    /// Re-inserts every live slot into a clean index (removes all tombstones).
    fn rebuild(&mut self, key_size: usize) {
        let live: Vec<u32> = self
            .index
            .iter()
            .copied()
            .filter(|&s| s != EMPTY && s != TOMBSTONE)
            .collect();
        self.index.iter_mut().for_each(|e| *e = EMPTY);
        let mask = self.index.len() - 1;
        for slot in live {
            let start = slot as usize * key_size;
            let mut pos = fnv1a(&self.keys[start..start + key_size]) as usize & mask;
            while self.index[pos] != EMPTY {
                pos = (pos + 1) & mask;
            }
            self.index[pos] = slot;
        }
        self.tombstones = 0;
    }
}

struct RingState {
    records: VecDeque<Vec<u8>>,
    used: usize,
    dropped: u64,
}

enum Storage {
    /// Array and per-CPU array: values only.
    Plain,
    Hash(SpinLock<HashState>),
    Ring(SpinLock<RingState>),
}

/// One map. Shared between programs (and cores) through `Arc<Map>`.
pub struct Map {
    name: String,
    def: MapDef,
    /// Value stride (value size rounded up to 8).
    stride: usize,
    /// Copies kept (CPU count for per-CPU maps, else 1).
    copies: usize,
    values: RawBuffer,
    storage: Storage,
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("name", &self.name)
            .field("def", &self.def)
            .finish()
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf29ce484222325u64;
    for &b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash
}

impl Map {
    /// Creates a map. `cpus` is the number of per-CPU copies (per-CPU arrays only; at most
    /// [`MAX_CPUS`]).
    pub fn new(name: &str, def: MapDef, cpus: usize) -> Result<Map, MapError> {
        let bad = |why: &str| Err(MapError::BadDefinition(alloc::format!("{name}: {why}")));
        if def.max_entries == 0 || def.max_entries > MAX_MAP_ENTRIES && def.kind != MapKind::RingBuf
        {
            return bad("max_entries must be 1..=1048576");
        }
        let (stride, copies, storage, total) = match def.kind {
            MapKind::Array | MapKind::PerCpuArray | MapKind::Hash => {
                if def.value_size == 0 || def.value_size > MAX_MAP_VALUE_SIZE {
                    return bad("value size must be 1..=65536");
                }
                let key_ok = match def.kind {
                    MapKind::Hash => def.key_size > 0 && def.key_size <= MAX_MAP_KEY_SIZE,
                    _ => def.key_size == 4,
                };
                if !key_ok {
                    return bad("array keys are 4 bytes; hash keys 1..=512");
                }
                let stride = (def.value_size as usize).div_ceil(8) * 8;
                let copies = if def.kind == MapKind::PerCpuArray {
                    if cpus == 0 || cpus > MAX_CPUS {
                        return bad("per-CPU map needs 1..=MAX_CPUS cpus");
                    }
                    cpus
                } else {
                    1
                };
                let total = stride
                    .saturating_mul(def.max_entries as usize)
                    .saturating_mul(copies);
                let key_bytes = def.key_size as usize * def.max_entries as usize;
                if total.saturating_add(key_bytes) > MAX_MAP_BYTES {
                    return bad("map larger than MAX_MAP_BYTES");
                }
                let storage = if def.kind == MapKind::Hash {
                    let index_len = (def.max_entries as usize * 2).next_power_of_two();
                    Storage::Hash(SpinLock::new(HashState {
                        index: alloc::vec![EMPTY; index_len],
                        keys: alloc::vec![0; key_bytes],
                        free: (0..def.max_entries).rev().collect(),
                        tombstones: 0,
                    }))
                } else {
                    Storage::Plain
                };
                (stride, copies, storage, total)
            }
            MapKind::RingBuf => {
                if def.key_size != 0 || def.value_size != 0 {
                    return bad("ring buffers have no key or value size");
                }
                if !def.max_entries.is_power_of_two() || def.max_entries as usize > MAX_MAP_BYTES {
                    return bad("ring buffer size must be a power of two up to MAX_MAP_BYTES");
                }
                let storage = Storage::Ring(SpinLock::new(RingState {
                    records: VecDeque::new(),
                    used: 0,
                    dropped: 0,
                }));
                (0, 1, storage, 0)
            }
        };
        Ok(Map {
            name: String::from(name),
            def,
            stride,
            copies,
            values: RawBuffer::zeroed(total),
            storage,
        })
    }

    /// The map's name (from its definition or ELF symbol).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The map's shape.
    pub fn def(&self) -> &MapDef {
        &self.def
    }

    /// The region holding every value (programs may access it through value pointers), or
    /// `None` for a ring buffer.
    pub fn value_region(&self) -> Option<Region> {
        (!self.values.is_empty()).then(|| self.values.region())
    }

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.def.key_size as usize {
            return Err(MapError::WrongSize {
                expected: self.def.key_size,
                found: key.len(),
            });
        }
        Ok(())
    }

    fn array_offset(&self, key: &[u8], cpu: usize) -> Result<usize, MapError> {
        self.check_key(key)?;
        let index = u32::from_le_bytes([key[0], key[1], key[2], key[3]]);
        // Only per-CPU maps keep copies; the others ignore the core.
        let cpu = if self.copies == 1 { 0 } else { cpu };
        if index >= self.def.max_entries || cpu >= self.copies {
            return Err(MapError::NotFound);
        }
        Ok((cpu * self.def.max_entries as usize + index as usize) * self.stride)
    }

    /// Finds the slot of `key` in a hash map (lock held by the caller).
    fn hash_find(&self, state: &HashState, key: &[u8]) -> Option<(usize, u32)> {
        let mask = state.index.len() - 1;
        let mut pos = fnv1a(key) as usize & mask;
        let key_size = self.def.key_size as usize;
        for _ in 0..state.index.len() {
            match state.index[pos] {
                EMPTY => return None,
                TOMBSTONE => {}
                slot => {
                    let start = slot as usize * key_size;
                    if state.keys.get(start..start + key_size) == Some(key) {
                        return Some((pos, slot));
                    }
                }
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Address of the value of `key` for `cpu`, as a program sees it (lookup helper).
    pub fn lookup_addr(&self, key: &[u8], cpu: usize) -> Option<u64> {
        match &self.storage {
            Storage::Plain => {
                let offset = self.array_offset(key, cpu).ok()?;
                Some(self.values.addr(offset))
            }
            Storage::Hash(lock) => {
                if self.check_key(key).is_err() {
                    return None;
                }
                let state = lock.lock();
                let (_, slot) = self.hash_find(&state, key)?;
                Some(self.values.addr(slot as usize * self.stride))
            }
            Storage::Ring(_) => None,
        }
    }

    /// A copy of the value of `key` for `cpu` (kernel/host side).
    pub fn lookup(&self, key: &[u8], cpu: usize) -> Option<Vec<u8>> {
        let offset = match &self.storage {
            Storage::Plain => self.array_offset(key, cpu).ok()?,
            Storage::Hash(lock) => {
                self.check_key(key).ok()?;
                let state = lock.lock();
                let (_, slot) = self.hash_find(&state, key)?;
                slot as usize * self.stride
            }
            Storage::Ring(_) => return None,
        };
        let mut out = alloc::vec![0u8; self.def.value_size as usize];
        self.values.read(offset, &mut out).then_some(out)
    }

    /// Sets the value of `key` for `cpu` (per-CPU arrays; other maps ignore `cpu`).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64, cpu: usize) -> Result<(), MapError> {
        if value.len() != self.def.value_size as usize {
            return Err(MapError::WrongSize {
                expected: self.def.value_size,
                found: value.len(),
            });
        }
        let offset = self.update_slot(key, flags, cpu)?;
        self.values.write(offset, value);
        Ok(())
    }

    /// Finds or creates the value slot for an update and returns its byte offset.
    fn update_slot(&self, key: &[u8], flags: u64, cpu: usize) -> Result<usize, MapError> {
        if flags > update_flags::EXIST {
            return Err(MapError::BadFlags(flags));
        }
        match &self.storage {
            Storage::Plain => {
                let offset = self.array_offset(key, cpu).map_err(|_| MapError::Full)?;
                if flags == update_flags::NOEXIST {
                    return Err(MapError::Exists);
                }
                Ok(offset)
            }
            Storage::Hash(lock) => {
                self.check_key(key)?;
                let mut state = lock.lock();
                if let Some((_, slot)) = self.hash_find(&state, key) {
                    if flags == update_flags::NOEXIST {
                        return Err(MapError::Exists);
                    }
                    return Ok(slot as usize * self.stride);
                }
                if flags == update_flags::EXIST {
                    return Err(MapError::NotFound);
                }
                let slot = state.free.pop().ok_or(MapError::Full)?;
                let key_size = self.def.key_size as usize;
                let start = slot as usize * key_size;
                state.keys[start..start + key_size].copy_from_slice(key);
                let mask = state.index.len() - 1;
                let mut pos = fnv1a(key) as usize & mask;
                // The index is twice the slab, so a free position always exists.
                while state.index[pos] != EMPTY && state.index[pos] != TOMBSTONE {
                    pos = (pos + 1) & mask;
                }
                if state.index[pos] == TOMBSTONE {
                    state.tombstones -= 1;
                }
                state.index[pos] = slot;
                self.values.zero(slot as usize * self.stride, self.stride);
                Ok(slot as usize * self.stride)
            }
            Storage::Ring(_) => Err(MapError::Unsupported),
        }
    }

    /// Update from program memory: the value is copied from `value_addr` (already checked
    /// readable for `value_size` bytes by the caller) into the slot.
    pub(crate) fn update_from_addr(
        &self,
        key: &[u8],
        value_addr: u64,
        flags: u64,
        cpu: usize,
    ) -> Result<(), MapError> {
        let offset = self.update_slot(key, flags, cpu)?;
        #[allow(unsafe_code)]
        // SAFETY: the caller checked the source range against the run's regions; the
        // destination is inside this map's live buffer (offset from update_slot, stride >=
        // value_size); `copy_within` is overlap-safe.
        unsafe {
            crate::memory::copy_within(
                value_addr,
                self.values.addr(offset),
                self.def.value_size as usize,
            )
        };
        Ok(())
    }

    /// Removes `key` (hash maps only).
    pub fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        match &self.storage {
            Storage::Hash(lock) => {
                self.check_key(key)?;
                let mut state = lock.lock();
                let (pos, slot) = self.hash_find(&state, key).ok_or(MapError::NotFound)?;
                state.index[pos] = TOMBSTONE;
                state.free.push(slot);
                state.tombstones += 1;
                if state.tombstones > state.index.len() / 4 {
                    state.rebuild(self.def.key_size as usize);
                }
                Ok(())
            }
            Storage::Plain => Err(MapError::Unsupported),
            Storage::Ring(_) => Err(MapError::Unsupported),
        }
    }

    /// Every (key, value) pair as seen from `cpu` (arrays: every index; hash maps: the keys
    /// present, in no particular order; ring buffers: none). For the kernel's map display and
    /// telemetry; at most `max_entries` pairs.
    pub fn entries(&self, cpu: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        match &self.storage {
            Storage::Plain => (0..self.def.max_entries)
                .filter_map(|i| {
                    let key = i.to_le_bytes();
                    self.lookup(&key, cpu).map(|v| (key.to_vec(), v))
                })
                .collect(),
            Storage::Hash(lock) => {
                let state = lock.lock();
                let key_size = self.def.key_size as usize;
                state
                    .index
                    .iter()
                    .filter(|&&s| s != EMPTY && s != TOMBSTONE)
                    .map(|&slot| {
                        let start = slot as usize * key_size;
                        let key = state.keys[start..start + key_size].to_vec();
                        let mut value = alloc::vec![0u8; self.def.value_size as usize];
                        self.values.read(slot as usize * self.stride, &mut value);
                        (key, value)
                    })
                    .collect()
            }
            Storage::Ring(_) => Vec::new(),
        }
    }

    /// Number of keys present (arrays: max_entries).
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Plain => self.def.max_entries as usize,
            Storage::Hash(lock) => self.def.max_entries as usize - lock.lock().free.len(),
            Storage::Ring(lock) => lock.lock().records.len(),
        }
    }

    /// Whether the map holds no key / record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one record to a ring buffer. Each record costs its length plus an 8-byte
    /// header, as in Linux.
    pub fn ringbuf_output(&self, data: &[u8]) -> Result<(), MapError> {
        let Storage::Ring(lock) = &self.storage else {
            return Err(MapError::Unsupported);
        };
        let cost = data.len().div_ceil(8) * 8 + 8;
        let mut state = lock.lock();
        if state.used + cost > self.def.max_entries as usize {
            state.dropped += 1;
            return Err(MapError::Full);
        }
        state.used += cost;
        state.records.push_back(data.to_vec());
        Ok(())
    }

    /// Takes the oldest record of a ring buffer (the kernel's consumer side).
    pub fn ringbuf_pop(&self) -> Option<Vec<u8>> {
        let Storage::Ring(lock) = &self.storage else {
            return None;
        };
        let mut state = lock.lock();
        let record = state.records.pop_front()?;
        state.used -= record.len().div_ceil(8) * 8 + 8;
        Some(record)
    }

    /// Records refused because the ring buffer was full.
    pub fn ringbuf_dropped(&self) -> u64 {
        match &self.storage {
            Storage::Ring(lock) => lock.lock().dropped,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(kind: MapKind, key: u32, value: u32, entries: u32) -> MapDef {
        MapDef {
            kind,
            key_size: key,
            value_size: value,
            max_entries: entries,
        }
    }

    #[test]
    fn array_map_semantics() {
        let map = Map::new("a", def(MapKind::Array, 4, 12, 4), 1).unwrap();
        let key = 2u32.to_le_bytes();
        assert_eq!(map.lookup(&key, 0), Some(alloc::vec![0; 12]));
        map.update(&key, &[7; 12], update_flags::ANY, 0).unwrap();
        assert_eq!(map.lookup(&key, 0), Some(alloc::vec![7; 12]));
        assert_eq!(
            map.update(&key, &[1; 12], update_flags::NOEXIST, 0),
            Err(MapError::Exists)
        );
        assert!(map.lookup(&4u32.to_le_bytes(), 0).is_none());
        assert_eq!(map.delete(&key), Err(MapError::Unsupported));
        assert!(map.update(&key, &[1; 3], 0, 0).is_err());
        // Values are 8-aligned (stride 16).
        let a0 = map.lookup_addr(&0u32.to_le_bytes(), 0).unwrap();
        let a1 = map.lookup_addr(&1u32.to_le_bytes(), 0).unwrap();
        assert_eq!((a0 % 8, a1 - a0), (0, 16));
    }

    #[test]
    fn hash_map_insert_delete_reuse_and_full() {
        let map = Map::new("h", def(MapKind::Hash, 8, 8, 3), 1).unwrap();
        for k in 0u64..3 {
            map.update(&k.to_le_bytes(), &(k * 10).to_le_bytes(), 0, 0)
                .unwrap();
        }
        assert_eq!(
            map.update(&9u64.to_le_bytes(), &[0; 8], 0, 0),
            Err(MapError::Full)
        );
        assert_eq!(
            map.lookup(&1u64.to_le_bytes(), 0),
            Some(10u64.to_le_bytes().to_vec())
        );
        map.delete(&1u64.to_le_bytes()).unwrap();
        assert_eq!(map.delete(&1u64.to_le_bytes()), Err(MapError::NotFound));
        assert!(map.lookup(&1u64.to_le_bytes(), 0).is_none());
        assert_eq!(
            map.update(&5u64.to_le_bytes(), &[1; 8], update_flags::EXIST, 0),
            Err(MapError::NotFound)
        );
        map.update(&9u64.to_le_bytes(), &[9; 8], update_flags::NOEXIST, 0)
            .unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(
            map.lookup(&2u64.to_le_bytes(), 0),
            Some(20u64.to_le_bytes().to_vec())
        );
        // Many inserts and deletes with tombstones keep working.
        map.delete(&0u64.to_le_bytes()).unwrap();
        for round in 0u64..1000 {
            let k = (100 + round).to_le_bytes();
            map.update(&k, &[1; 8], 0, 0).unwrap();
            map.delete(&k).unwrap();
        }
        assert_eq!(map.lookup(&9u64.to_le_bytes(), 0), Some(alloc::vec![9; 8]));
        let mut entries = map.entries(0);
        entries.sort();
        assert_eq!(
            entries,
            [
                (2u64.to_le_bytes().to_vec(), 20u64.to_le_bytes().to_vec()),
                (9u64.to_le_bytes().to_vec(), alloc::vec![9; 8]),
            ]
        );
    }

    #[test]
    fn hash_index_is_rebuilt_so_tombstones_do_not_accumulate() {
        let map = Map::new("t", def(MapKind::Hash, 4, 4, 64), 1).unwrap();
        for k in 0u32..32 {
            map.update(&k.to_le_bytes(), &k.to_le_bytes(), 0, 0)
                .unwrap();
        }
        for round in 0u32..10_000 {
            let k = (1000 + round).to_le_bytes();
            map.update(&k, &k, 0, 0).unwrap();
            map.delete(&k).unwrap();
            if let Storage::Hash(lock) = &map.storage {
                let state = lock.lock();
                assert!(state.tombstones <= state.index.len() / 4);
            }
        }
        for k in 0u32..32 {
            assert_eq!(
                map.lookup(&k.to_le_bytes(), 0),
                Some(k.to_le_bytes().to_vec())
            );
        }
        assert_eq!(map.entries(0).len(), 32);
    }

    #[test]
    fn percpu_array_keeps_one_copy_per_cpu() {
        let map = Map::new("p", def(MapKind::PerCpuArray, 4, 8, 2), 4).unwrap();
        let key = 1u32.to_le_bytes();
        map.update(&key, &[3; 8], 0, 3).unwrap();
        assert_eq!(map.lookup(&key, 3), Some(alloc::vec![3; 8]));
        assert_eq!(map.lookup(&key, 0), Some(alloc::vec![0; 8]));
        assert!(map.lookup(&key, 4).is_none());
        let plain = Map::new("a", def(MapKind::Array, 4, 8, 2), 1).unwrap();
        assert!(plain.lookup(&key, 3).is_some(), "arrays ignore the core");
    }

    #[test]
    fn ring_buffer_fifo_and_capacity() {
        let map = Map::new("r", def(MapKind::RingBuf, 0, 0, 64), 1).unwrap();
        map.ringbuf_output(&[1, 2, 3]).unwrap();
        map.ringbuf_output(&[4; 20]).unwrap(); // 8 + 8 + 24 + 8 = 48 bytes used
        assert_eq!(map.ringbuf_output(&[5; 9]), Err(MapError::Full));
        assert_eq!(map.ringbuf_dropped(), 1);
        assert_eq!(map.ringbuf_pop(), Some(alloc::vec![1, 2, 3]));
        map.ringbuf_output(&[5; 9]).unwrap();
        assert_eq!(map.ringbuf_pop().map(|r| r.len()), Some(20));
        assert_eq!(map.ringbuf_pop().map(|r| r.len()), Some(9));
        assert_eq!(map.ringbuf_pop(), None);
    }

    #[test]
    fn rejects_bad_definitions() {
        assert!(Map::new("x", def(MapKind::Array, 8, 4, 1), 1).is_err());
        assert!(Map::new("x", def(MapKind::Hash, 4, 4, 0), 1).is_err());
        assert!(Map::new("x", def(MapKind::Hash, 4, 1 << 20, 1 << 20), 1).is_err());
        assert!(Map::new("x", def(MapKind::RingBuf, 0, 0, 100), 1).is_err());
        assert!(Map::new("x", def(MapKind::PerCpuArray, 4, 4, 1), 99).is_err());
    }

    #[test]
    fn concurrent_hash_updates_are_safe() {
        use std::sync::Arc;
        let map = Arc::new(Map::new("c", def(MapKind::Hash, 4, 4, 256), 1).unwrap());
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let map = map.clone();
                std::thread::spawn(move || {
                    for i in 0..64u32 {
                        let k = (t * 64 + i).to_le_bytes();
                        map.update(&k, &k, 0, 0).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(map.len(), 256);
        for k in 0..256u32 {
            assert_eq!(
                map.lookup(&k.to_le_bytes(), 0),
                Some(k.to_le_bytes().to_vec())
            );
        }
    }
}
