//! The timer queue: sleeping tasks and notification timers, ordered by deadline.
//!
//! A binary heap with *lazy cancellation*: cancelling or re-arming a timer does not search the
//! heap; instead every entry carries a sequence number and the task slot remembers the sequence
//! of its one live entry of each kind. Expired entries whose sequence no longer matches are
//! dropped by the caller ([`crate::system`]). When stale entries pile up past
//! [`MAX_TIMER_ENTRIES`] the owner compacts the heap with [`TimerQueue::retain`]. This keeps
//! arming O(log n) and the tick path O(expired · log n).

use crate::limits::MAX_TIMER_ENTRIES;
use crate::sched::CoreId;
use crate::time::Instant;
use abi::TaskId;
use alloc::collections::BinaryHeap;
use core::cmp::Reverse;

/// What happens when an entry expires.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// End a `sleep`.
    Wake,
    /// Post the task's timer notification bits.
    Notify,
}

/// One armed timer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerEntry {
    /// When it fires (ordering key).
    pub deadline: Instant,
    /// Unique per entry; ties on the deadline fire in arming order.
    pub sequence: u64,
    /// The task it belongs to (with generation: a restart makes it stale).
    pub task: TaskId,
    /// What it does.
    pub kind: TimerKind,
    /// The core whose one-shot comparator fires it: the core the task armed it on (the one it
    /// ran on, where it will most likely be woken). Any core's pass fires due entries.
    pub core: CoreId,
}

/// Deadline-ordered timers.
#[derive(Clone, Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<TimerEntry>>,
}

impl TimerQueue {
    /// An empty queue.
    pub fn new() -> TimerQueue {
        TimerQueue {
            heap: BinaryHeap::new(),
        }
    }

    /// Arms an entry.
    pub fn push(&mut self, entry: TimerEntry) {
        self.heap.push(Reverse(entry));
    }

    /// The earliest deadline (for programming a one-shot comparator).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(entry)| entry.deadline)
    }

    /// Every entry, live or stale, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &TimerEntry> {
        self.heap.iter().map(|Reverse(entry)| entry)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<TimerEntry> {
        if self.heap.peek()?.0.deadline <= now {
            self.heap.pop().map(|Reverse(entry)| entry)
        } else {
            None
        }
    }

    /// Entries held, live or stale.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// True when stale entries should be compacted away.
    pub fn needs_compaction(&self) -> bool {
        self.heap.len() > MAX_TIMER_ENTRIES
    }

    /// Keeps only the entries `live` accepts.
    pub fn retain(&mut self, mut live: impl FnMut(&TimerEntry) -> bool) {
        self.heap.retain(|Reverse(entry)| live(entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::Generation;

    fn entry(deadline: u64, sequence: u64) -> TimerEntry {
        TimerEntry {
            deadline: Instant(deadline),
            sequence,
            task: TaskId::new(sequence as u16, Generation(0)),
            kind: TimerKind::Wake,
            core: CoreId(0),
        }
    }

    #[test]
    fn entries_fire_in_deadline_then_arming_order_and_not_early() {
        let mut queue = TimerQueue::new();
        queue.push(entry(30, 1));
        queue.push(entry(10, 2));
        queue.push(entry(10, 3));
        assert_eq!(queue.next_deadline(), Some(Instant(10)));
        assert_eq!(queue.pop_expired(Instant(9)), None);
        assert_eq!(queue.pop_expired(Instant(10)).map(|e| e.sequence), Some(2));
        assert_eq!(queue.pop_expired(Instant(10)).map(|e| e.sequence), Some(3));
        assert_eq!(queue.pop_expired(Instant(29)), None);
        assert_eq!(queue.pop_expired(Instant(100)).map(|e| e.sequence), Some(1));
        assert!(queue.is_empty());
    }

    #[test]
    fn retain_drops_stale_entries() {
        let mut queue = TimerQueue::new();
        for sequence in 0..(MAX_TIMER_ENTRIES as u64 + 1) {
            queue.push(entry(sequence, sequence));
        }
        assert!(queue.needs_compaction());
        queue.retain(|entry| entry.sequence % 2 == 0);
        assert!(!queue.needs_compaction());
        assert_eq!(
            queue.pop_expired(Instant(u64::MAX)).map(|e| e.sequence),
            Some(0)
        );
        assert_eq!(
            queue.pop_expired(Instant(u64::MAX)).map(|e| e.sequence),
            Some(2)
        );
    }
}
