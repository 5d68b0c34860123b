//! A transition cache over recogniser states: a lazily built DFA.
//!
//! The mask walks ~100 000 trie nodes for a 49 152-token vocabulary. In permissive grammar
//! states (inside a comment or a string, where almost every token is allowed) that walk used to
//! advance every parse stack at every node: ~100 ms per token on the host. But the set of parse
//! stacks reached after a byte depends only on the set before it and the byte, and walks meet
//! few distinct sets (inside `[^\n]*` every ordinary byte leads back to the same set). So stack
//! sets are interned (hash table over their contents) and each `(set, byte)` transition is
//! computed once and remembered, as a regex engine's lazy DFA does. Transitions persist across
//! tokens (the grammar does not change), so later masks are mostly table lookups.
//!
//! Bounded: at most [`MAX_CACHED_SETS`] sets; the owner clears the cache when it fills.

use alloc::vec;
use alloc::vec::Vec;

use super::limits::MAX_CACHED_SETS;
use super::state::{advance, StackSet};
use super::trie::{byte_class, BYTE_CLASSES};
use super::{ByteSet, Grammar};
use crate::grammar::GrammarStateError;

/// Sets the cache holds. The crate's unit tests use a tiny capacity so that the fallback path
/// (cache full in the middle of a walk) runs in every mask test and is compared with the
/// uncached walk; integration tests and the kernel use [`MAX_CACHED_SETS`].
pub(crate) const CAPACITY: usize = if cfg!(test) { 12 } else { MAX_CACHED_SETS };

/// Transition entries: 0 = not computed yet, 1 = dead (no stack survives), n + 2 = set n.
const UNKNOWN: u16 = 0;
const DEAD: u16 = 1;
const EMPTY_BUCKET: u32 = u32::MAX;

/// Why a cached step failed.
pub(crate) enum CacheError {
    /// The cache holds [`MAX_CACHED_SETS`] sets; clear it or walk uncached.
    Full,
    /// The recogniser itself failed (too many stacks, too deep).
    State(GrammarStateError),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TransitionCache {
    sets: Vec<StackSet>,
    hashes: Vec<u64>,
    next_bytes: Vec<ByteSet>,
    /// Per set: bit c set when every byte of class c leads back to the set; `None` until
    /// computed.
    loop_classes: Vec<Option<u8>>,
    transitions: Vec<u16>,
    buckets: Vec<u32>,
}

fn hash_set(set: &StackSet) -> u64 {
    // FNV-1a over the stack lengths and contents.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |value: u32| {
        for byte in value.to_le_bytes() {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x100_0000_01b3);
        }
    };
    for index in 0..set.len() {
        let stack = set.get(index);
        mix(stack.len() as u32);
        for &position in stack {
            mix(position);
        }
    }
    hash
}

impl TransitionCache {
    /// Number of interned sets.
    pub(crate) fn len(&self) -> usize {
        self.sets.len()
    }

    /// Forget everything (keeps the allocations).
    pub(crate) fn clear(&mut self) {
        self.sets.clear();
        self.hashes.clear();
        self.next_bytes.clear();
        self.loop_classes.clear();
        self.transitions.clear();
        self.buckets.clear();
    }

    /// Bytes some stack of set `id` accepts next.
    pub(crate) fn next_bytes(&self, id: u32) -> &ByteSet {
        &self.next_bytes[id as usize]
    }

    /// The id of a set equal to `set`, interning a copy if new.
    pub(crate) fn intern(&mut self, grammar: &Grammar, set: &StackSet) -> Result<u32, CacheError> {
        let hash = hash_set(set);
        if !self.buckets.is_empty() {
            let mask = self.buckets.len() - 1;
            let mut slot = hash as usize & mask;
            loop {
                let id = self.buckets[slot];
                if id == EMPTY_BUCKET {
                    break;
                }
                if self.hashes[id as usize] == hash && self.sets[id as usize].same_as(set) {
                    return Ok(id);
                }
                slot = (slot + 1) & mask;
            }
        }
        if self.sets.len() >= CAPACITY {
            return Err(CacheError::Full);
        }
        let id = self.sets.len() as u32;
        let mut copy = StackSet::default();
        copy.copy_from(set);
        self.next_bytes.push(copy.next_bytes(grammar));
        self.loop_classes.push(None);
        self.sets.push(copy);
        self.hashes.push(hash);
        self.transitions.extend_from_slice(&[UNKNOWN; 256]);
        // Keep the table at most half full.
        if self.buckets.len() < self.sets.len() * 2 {
            let size = (self.sets.len() * 4).next_power_of_two().max(64);
            self.buckets = vec![EMPTY_BUCKET; size];
            for index in 0..self.hashes.len() {
                self.place(self.hashes[index], index as u32);
            }
        } else {
            self.place(hash, id);
        }
        Ok(id)
    }

    fn place(&mut self, hash: u64, id: u32) {
        let mask = self.buckets.len() - 1;
        let mut slot = hash as usize & mask;
        while self.buckets[slot] != EMPTY_BUCKET {
            slot = (slot + 1) & mask;
        }
        self.buckets[slot] = id;
    }

    /// The byte classes (see `trie::byte_class`) all of whose bytes lead from set `id` back to
    /// itself: any run of such bytes keeps the output valid and the state unchanged. Computed
    /// once per set; a class whose check fails to compute (cache full) counts as not looping.
    pub(crate) fn loop_classes(
        &mut self,
        grammar: &Grammar,
        id: u32,
        scratch: &mut StackSet,
        work: &mut Vec<u32>,
    ) -> u8 {
        if let Some(classes) = self.loop_classes[id as usize] {
            return classes;
        }
        let mut classes = 0u8;
        for class in 0..BYTE_CLASSES - 1 {
            let mut loops = true;
            for byte in 0..=0x7fu8 {
                if byte_class(byte) != class {
                    continue;
                }
                let back = self.next_bytes[id as usize].contains(byte)
                    && matches!(self.step(grammar, id, byte, scratch, work), Ok(Some(to)) if to == id);
                if !back {
                    loops = false;
                    break;
                }
            }
            if loops {
                classes |= 1 << class;
            }
        }
        // The last class (controls, newline, non-ASCII) never counts: UTF-8 lead bytes cannot
        // lead back to the same set.
        self.loop_classes[id as usize] = Some(classes);
        classes
    }

    /// The cached transition, if computed: `Some(None)` dead, `Some(Some(set))`, or `None`
    /// when not known yet.
    #[inline]
    pub(crate) fn cached_step(&self, from: u32, byte: u8) -> Option<Option<u32>> {
        match self.transitions[from as usize * 256 + byte as usize] {
            UNKNOWN => None,
            DEAD => Some(None),
            entry => Some(Some((entry - 2) as u32)),
        }
    }

    /// The set reached from set `from` by `byte` (`None` when no stack survives).
    pub(crate) fn step(
        &mut self,
        grammar: &Grammar,
        from: u32,
        byte: u8,
        scratch: &mut StackSet,
        work: &mut Vec<u32>,
    ) -> Result<Option<u32>, CacheError> {
        let slot = from as usize * 256 + byte as usize;
        match self.transitions[slot] {
            UNKNOWN => {}
            DEAD => return Ok(None),
            entry => return Ok(Some((entry - 2) as u32)),
        }
        advance(grammar, &self.sets[from as usize], byte, scratch, work)
            .map_err(CacheError::State)?;
        if scratch.is_empty() {
            self.transitions[slot] = DEAD;
            return Ok(None);
        }
        let to = self.intern(grammar, scratch)?;
        self.transitions[slot] = to as u16 + 2;
        Ok(Some(to))
    }
}
