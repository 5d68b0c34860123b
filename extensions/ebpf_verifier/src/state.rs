//! Abstract machine state: typed registers, byte-wise stack, call frames, and inclusion.
//!
//! A register holds a [`Value`]: uninitialised, a [`Scalar`], or a typed pointer whose offset
//! is itself a `Scalar` (so `ptr + bounded index` keeps a range). Map lookups return a
//! nullable pointer tagged with an id; every copy shares the id, so one null check converts
//! all copies (registers and stack spills) at once.
//!
//! The stack is tracked per byte (uninitialised / data / part of a spill / part of a pointer
//! that was partly overwritten), plus the spilled value of every 8-byte aligned slot written
//! as a whole, so a pointer or a bounded counter saved to the stack comes back intact. Only
//! touched slots are stored, which keeps the states kept for pruning small.
//!
//! [`State::includes`] is the subsumption test of state pruning: `old.includes(new)` means
//! every concrete state `new` describes is also described by `old`, so if every path from
//! `old` was proven safe, so is every path from `new`. "Uninitialised" is the top element:
//! a path proven safe never read it.

use alloc::vec::Vec;

use crate::error::ValueClass;
use crate::scalar::Scalar;

/// Memory a pointer points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// The hook's context.
    Context,
    /// The stack of call frame `frame` (0 = main). Offsets are relative to that frame's r10:
    /// valid bytes are `[-512, 0)`.
    Stack { frame: u8 },
    /// A value of map `map`.
    MapValue { map: u16 },
}

/// What a register or spilled slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    Uninit,
    Scalar(Scalar),
    /// A pointer into `region` at a byte offset in `offset`.
    Pointer {
        region: Region,
        offset: Scalar,
    },
    /// The result of a map lookup: a pointer to a value of `map` at offset 0, or null.
    MapValueOrNull {
        map: u16,
        id: u32,
    },
    /// A map handle (only useful as a helper argument).
    MapPointer {
        map: u16,
    },
}

impl Value {
    /// The kind, for messages.
    pub fn class(&self) -> ValueClass {
        match self {
            Value::Uninit => ValueClass::Uninitialised,
            Value::Scalar(_) => ValueClass::Scalar,
            Value::Pointer { region, .. } => match region {
                Region::Context => ValueClass::ContextPointer,
                Region::Stack { .. } => ValueClass::StackPointer,
                Region::MapValue { .. } => ValueClass::MapValuePointer,
            },
            Value::MapValueOrNull { .. } => ValueClass::MapValueOrNull,
            Value::MapPointer { .. } => ValueClass::MapPointer,
        }
    }

    /// True for every kind of pointer (anything that must not leak).
    pub fn is_pointer(&self) -> bool {
        matches!(
            self,
            Value::Pointer { .. } | Value::MapValueOrNull { .. } | Value::MapPointer { .. }
        )
    }
}

/// What one stack byte holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteKind {
    /// Never written on this path.
    Uninit,
    /// Written with scalar data.
    Data,
    /// Part of a whole-slot spill (the slot's `spill` holds the value).
    Spill,
    /// Part of a spilled pointer whose slot was partly overwritten: unreadable.
    PointerPart,
}

/// One 8-byte aligned stack slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub bytes: [ByteKind; 8],
    /// Set when all 8 bytes were written at once from a register.
    pub spill: Option<Value>,
}

impl Slot {
    const EMPTY: Slot = Slot {
        bytes: [ByteKind::Uninit; 8],
        spill: None,
    };

    /// Drops the whole-slot spill before a partial overwrite: the remaining bytes of a
    /// scalar become plain data, those of a pointer become unreadable.
    fn break_spill(&mut self) {
        if let Some(value) = self.spill.take() {
            let rest = if value.is_pointer() {
                ByteKind::PointerPart
            } else {
                ByteKind::Data
            };
            for b in self.bytes.iter_mut() {
                if *b == ByteKind::Spill {
                    *b = rest;
                }
            }
        }
    }
}

/// Slots per frame.
pub const SLOTS: usize = 64;

/// The stack of one frame: the touched slots, sorted by index (0 = bytes -512..-505).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Stack {
    slots: Vec<(u8, Slot)>,
}

impl Stack {
    /// The slot with `index` (an untouched slot is all uninitialised).
    pub fn slot(&self, index: usize) -> Slot {
        match self.slots.binary_search_by_key(&(index as u8), |(i, _)| *i) {
            Ok(pos) => self.slots[pos].1,
            Err(_) => Slot::EMPTY,
        }
    }

    fn slot_mut(&mut self, index: usize) -> &mut Slot {
        let key = index as u8;
        let pos = match self.slots.binary_search_by_key(&key, |(i, _)| *i) {
            Ok(pos) => pos,
            Err(pos) => {
                self.slots.insert(pos, (key, Slot::EMPTY));
                pos
            }
        };
        &mut self.slots[pos].1
    }

    /// Byte index (0..512) of a frame offset in `[-512, 0)`.
    fn byte_index(offset: i64) -> usize {
        (offset + crate::limits::STACK_FRAME_SIZE) as usize
    }

    /// The kind of the byte at frame offset `offset` (in `[-512, 0)`).
    pub fn byte(&self, offset: i64) -> ByteKind {
        let b = Stack::byte_index(offset);
        self.slot(b / 8).bytes[b % 8]
    }

    /// Marks `[offset, offset + size)` as scalar data (a store of a scalar that is not a
    /// whole aligned slot, or a helper writing into a buffer).
    pub fn write_data(&mut self, offset: i64, size: usize) {
        for b in Stack::byte_index(offset)..Stack::byte_index(offset) + size {
            let slot = self.slot_mut(b / 8);
            slot.break_spill();
            slot.bytes[b % 8] = ByteKind::Data;
        }
    }

    /// Breaks the spills of every slot meeting `[offset, offset + size)` (a helper may
    /// write any of those bytes) without marking the bytes written.
    pub fn clobber(&mut self, offset: i64, size: usize) {
        for b in Stack::byte_index(offset)..Stack::byte_index(offset) + size {
            self.slot_mut(b / 8).break_spill();
        }
    }

    /// Stores a whole aligned slot from a register.
    pub fn spill(&mut self, offset: i64, value: Value) {
        let slot = self.slot_mut(Stack::byte_index(offset) / 8);
        slot.bytes = [ByteKind::Spill; 8];
        slot.spill = Some(value);
    }

    /// Replaces spilled values (null-check conversion); `f` returns the new value.
    pub fn map_spills(&mut self, mut f: impl FnMut(&Value) -> Option<Value>) {
        for (_, slot) in self.slots.iter_mut() {
            if let Some(v) = slot.spill {
                if let Some(new) = f(&v) {
                    slot.spill = Some(new);
                }
            }
        }
    }

    /// Spilled values (for scanning).
    pub fn spills(&self) -> impl Iterator<Item = &Value> {
        self.slots.iter().filter_map(|(_, s)| s.spill.as_ref())
    }

    fn includes(&self, other: &Stack, ids: &mut IdMap) -> bool {
        for (index, old) in &self.slots {
            let new = other.slot(*index as usize);
            if let Some(old_value) = &old.spill {
                match &new.spill {
                    Some(new_value) if value_includes(old_value, new_value, ids) => continue,
                    _ => {
                        // An old spill of an unknown scalar is the same as 8 data bytes.
                        if matches!(old_value, Value::Scalar(s) if *s == Scalar::UNKNOWN)
                            && bytes_are_data(&new)
                        {
                            continue;
                        }
                        return false;
                    }
                }
            }
            for (i, kind) in old.bytes.iter().enumerate() {
                if *kind == ByteKind::Data {
                    let ok = match new.bytes[i] {
                        ByteKind::Data => true,
                        ByteKind::Spill => matches!(new.spill, Some(Value::Scalar(_))),
                        _ => false,
                    };
                    if !ok {
                        return false;
                    }
                }
            }
        }
        true
    }
}

fn bytes_are_data(slot: &Slot) -> bool {
    slot.bytes.iter().all(|b| match b {
        ByteKind::Data => true,
        ByteKind::Spill => matches!(slot.spill, Some(Value::Scalar(_))),
        _ => false,
    })
}

/// One call frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub regs: [Value; 11],
    pub stack: Stack,
    /// Slot to continue at when this frame's function exits (unused for the main frame).
    pub return_pc: usize,
}

/// The abstract state of one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub frames: Vec<Frame>,
}

/// Pairs of nullable-pointer ids that must correspond between two states.
#[derive(Default)]
pub struct IdMap {
    pairs: Vec<(u32, u32)>,
}

impl IdMap {
    fn check(&mut self, old: u32, new: u32) -> bool {
        for &(o, n) in &self.pairs {
            if o == old || n == new {
                return o == old && n == new;
            }
        }
        self.pairs.push((old, new));
        true
    }
}

fn value_includes(old: &Value, new: &Value, ids: &mut IdMap) -> bool {
    match (old, new) {
        (Value::Uninit, _) => true,
        (Value::Scalar(a), Value::Scalar(b)) => a.includes(b),
        (
            Value::Pointer {
                region: ra,
                offset: oa,
            },
            Value::Pointer {
                region: rb,
                offset: ob,
            },
        ) => ra == rb && oa.includes(ob),
        (Value::MapValueOrNull { map: ma, id: ia }, Value::MapValueOrNull { map: mb, id: ib }) => {
            ma == mb && ids.check(*ia, *ib)
        }
        (Value::MapPointer { map: a }, Value::MapPointer { map: b }) => a == b,
        _ => false,
    }
}

/// The join of two values: a value describing both, `Uninit` (unusable) when they differ in
/// kind. Sound because `Uninit` is the top element: a path never reads it.
fn join_value(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(x.join(y)),
        (
            Value::Pointer {
                region: ra,
                offset: oa,
            },
            Value::Pointer {
                region: rb,
                offset: ob,
            },
        ) if ra == rb => Value::Pointer {
            region: *ra,
            offset: oa.join(ob),
        },
        (x, y) if x == y => *x,
        _ => Value::Uninit,
    }
}

fn readable_data(kind: ByteKind, spill: &Option<Value>) -> bool {
    match kind {
        ByteKind::Data => true,
        ByteKind::Spill => matches!(spill, Some(Value::Scalar(_))),
        _ => false,
    }
}

impl Stack {
    fn join(&self, other: &Stack) -> Stack {
        let mut out = Stack::default();
        // Only slots touched in both can hold anything readable in the join.
        for (index, a) in &self.slots {
            let b = other.slot(*index as usize);
            let mut slot = Slot::EMPTY;
            if let (Some(va), Some(vb)) = (&a.spill, &b.spill) {
                let v = join_value(va, vb);
                if v != Value::Uninit {
                    slot.bytes = [ByteKind::Spill; 8];
                    slot.spill = Some(v);
                    out.slots.push((*index, slot));
                    continue;
                }
            }
            let mut any = false;
            for i in 0..8 {
                if readable_data(a.bytes[i], &a.spill) && readable_data(b.bytes[i], &b.spill) {
                    slot.bytes[i] = ByteKind::Data;
                    any = true;
                }
            }
            if any {
                out.slots.push((*index, slot));
            }
        }
        out
    }
}

impl State {
    /// A state describing every concrete state of both, or `None` when the call stacks
    /// differ (then they cannot be merged).
    pub fn join(&self, other: &State) -> Option<State> {
        if self.frames.len() != other.frames.len() {
            return None;
        }
        let mut frames = Vec::with_capacity(self.frames.len());
        for (a, b) in self.frames.iter().zip(other.frames.iter()) {
            if a.return_pc != b.return_pc {
                return None;
            }
            let mut regs = [Value::Uninit; 11];
            for (r, out) in regs.iter_mut().enumerate() {
                *out = join_value(&a.regs[r], &b.regs[r]);
            }
            frames.push(Frame {
                regs,
                stack: a.stack.join(&b.stack),
                return_pc: a.return_pc,
            });
        }
        Some(State { frames })
    }

    /// The entry state: r1 = context pointer at offset 0, r10 = top of frame 0's stack.
    pub fn entry() -> State {
        let mut regs = [Value::Uninit; 11];
        regs[1] = Value::Pointer {
            region: Region::Context,
            offset: Scalar::constant(0),
        };
        regs[10] = Value::Pointer {
            region: Region::Stack { frame: 0 },
            offset: Scalar::constant(0),
        };
        State {
            frames: alloc::vec![Frame {
                regs,
                stack: Stack::default(),
                return_pc: 0,
            }],
        }
    }

    /// The current (innermost) frame.
    pub fn frame(&self) -> &Frame {
        // A state always has at least the main frame: frames are popped only while more
        // than one remains.
        &self.frames[self.frames.len() - 1]
    }

    /// The current frame, mutably.
    pub fn frame_mut(&mut self) -> &mut Frame {
        let last = self.frames.len() - 1;
        &mut self.frames[last]
    }

    /// True when every concrete state `other` describes, `self` describes too.
    pub fn includes(&self, other: &State) -> bool {
        if self.frames.len() != other.frames.len() {
            return false;
        }
        let mut ids = IdMap::default();
        for (old, new) in self.frames.iter().zip(other.frames.iter()) {
            if old.return_pc != new.return_pc {
                return false;
            }
            for (a, b) in old.regs.iter().zip(new.regs.iter()) {
                if !value_includes(a, b, &mut ids) {
                    return false;
                }
            }
            if !old.stack.includes(&new.stack, &mut ids) {
                return false;
            }
        }
        true
    }

    /// Applies `f` to every register and spill of every frame (null-check conversion).
    pub fn map_values(&mut self, mut f: impl FnMut(&Value) -> Option<Value>) {
        for frame in self.frames.iter_mut() {
            for r in frame.regs.iter_mut() {
                if let Some(new) = f(r) {
                    *r = new;
                }
            }
            frame.stack.map_spills(&mut f);
        }
    }

    /// Rough heap bytes held by this state (for the peak-memory figure).
    pub fn heap_bytes(&self) -> usize {
        self.frames.len() * core::mem::size_of::<Frame>()
            + self
                .frames
                .iter()
                .map(|f| f.stack.slots.capacity() * core::mem::size_of::<(u8, Slot)>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uninitialised_is_top_and_ranges_nest() {
        let mut wide = State::entry();
        let mut narrow = State::entry();
        narrow.frame_mut().regs[2] = Value::Scalar(Scalar::constant(3));
        assert!(wide.includes(&narrow));
        assert!(!narrow.includes(&wide));
        wide.frame_mut().regs[2] = Value::Scalar(Scalar::unsigned_range(0, 10));
        assert!(wide.includes(&narrow));
        narrow.frame_mut().regs[2] = Value::Scalar(Scalar::constant(11));
        assert!(!wide.includes(&narrow));
    }

    #[test]
    fn stack_bytes_and_spills() {
        let mut s = Stack::default();
        s.spill(-8, Value::Scalar(Scalar::constant(1)));
        s.write_data(-6, 2);
        assert_eq!(s.byte(-8), ByteKind::Data);
        assert_eq!(s.byte(-6), ByteKind::Data);
        assert_eq!(s.byte(-9), ByteKind::Uninit);
        let ptr = Value::Pointer {
            region: Region::Context,
            offset: Scalar::constant(0),
        };
        s.spill(-16, ptr);
        s.write_data(-16, 1);
        assert_eq!(s.byte(-16), ByteKind::Data);
        assert_eq!(s.byte(-15), ByteKind::PointerPart);
        assert_eq!(s.slot(SLOTS - 2).spill, None);
    }

    #[test]
    fn join_includes_both() {
        let mut a = State::entry();
        let mut b = State::entry();
        a.frame_mut().regs[2] = Value::Scalar(Scalar::constant(1));
        b.frame_mut().regs[2] = Value::Scalar(Scalar::constant(5));
        a.frame_mut().regs[3] = Value::Scalar(Scalar::constant(1));
        b.frame_mut().regs[3] = a.frame().regs[1];
        a.frame_mut()
            .stack
            .spill(-8, Value::Scalar(Scalar::constant(3)));
        b.frame_mut().stack.write_data(-8, 8);
        a.frame_mut().stack.write_data(-16, 4);
        let j = a.join(&b).unwrap();
        assert!(j.includes(&a) && j.includes(&b));
        assert_eq!(j.frame().regs[3], Value::Uninit);
        assert_eq!(j.frame().stack.byte(-8), ByteKind::Data);
        assert_eq!(j.frame().stack.byte(-16), ByteKind::Uninit);
    }

    #[test]
    fn null_ids_must_correspond() {
        let mut a = State::entry();
        a.frame_mut().regs[0] = Value::MapValueOrNull { map: 0, id: 1 };
        a.frame_mut().regs[6] = Value::MapValueOrNull { map: 0, id: 1 };
        let mut b = a.clone();
        assert!(a.includes(&b));
        b.frame_mut().regs[6] = Value::MapValueOrNull { map: 0, id: 2 };
        assert!(!a.includes(&b));
    }
}
