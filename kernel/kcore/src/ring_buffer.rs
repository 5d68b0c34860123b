//! A fixed-size byte ring: the UART receive interrupt pushes, the console pops.
//!
//! The interrupt handler must never block or allocate, so a full ring drops the new byte and
//! counts it (the console reports drops instead of silently losing input). The kernel wraps this
//! in a spin lock taken with interrupts masked; the logic here is single-threaded and host-tested.

/// A ring of `N` bytes.
#[derive(Debug, Clone)]
pub struct ByteRing<const N: usize> {
    bytes: [u8; N],
    head: usize,
    len: usize,
    dropped: u64,
}

impl<const N: usize> Default for ByteRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ByteRing<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            bytes: [0; N],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    /// Appends `byte`; returns false (and counts a drop) when full.
    pub fn push(&mut self, byte: u8) -> bool {
        if self.len >= N || N == 0 {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        let tail = (self.head + self.len) % N;
        self.bytes[tail] = byte;
        self.len += 1;
        true
    }

    /// Removes and returns the oldest byte.
    pub fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let byte = self.bytes[self.head];
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(byte)
    }

    /// Removes the oldest waiting `byte` (the bytes around it keep their order); returns
    /// whether there was one. Lets a long-running command take an interrupt key (Ctrl-C) out of
    /// typed-ahead input without consuming the rest.
    pub fn take_first(&mut self, byte: u8) -> bool {
        let Some(found) = (0..self.len).find(|&i| self.bytes[(self.head + i) % N] == byte) else {
            return false;
        };
        for i in found..self.len - 1 {
            self.bytes[(self.head + i) % N] = self.bytes[(self.head + i + 1) % N];
        }
        self.len -= 1;
        true
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes dropped because the ring was full, since boot.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_wraps_and_counts_drops() {
        let mut ring: ByteRing<3> = ByteRing::new();
        assert!(ring.push(1) && ring.push(2) && ring.push(3));
        assert!(!ring.push(4));
        assert_eq!(ring.dropped(), 1);
        assert_eq!(ring.pop(), Some(1));
        assert!(ring.push(5));
        assert_eq!(
            [ring.pop(), ring.pop(), ring.pop(), ring.pop()],
            [Some(2), Some(3), Some(5), None]
        );
        assert!(ring.is_empty());
    }

    #[test]
    fn take_first_removes_one_byte_and_keeps_the_order_across_the_wrap() {
        let mut ring: ByteRing<4> = ByteRing::new();
        assert!(!ring.take_first(3));
        ring.push(9);
        ring.push(9);
        ring.pop();
        ring.pop();
        // head is now 2: the ring's contents wrap around the end of the array.
        for byte in [b'a', 3, b'b', 3] {
            assert!(ring.push(byte));
        }
        assert!(ring.take_first(3));
        assert_eq!(ring.len(), 3);
        assert!(ring.push(b'c'));
        assert!(ring.take_first(3));
        assert!(!ring.take_first(3));
        let rest: Vec<Option<u8>> = (0..4).map(|_| ring.pop()).collect();
        assert_eq!(rest, [Some(b'a'), Some(b'b'), Some(b'c'), None]);
    }
}
