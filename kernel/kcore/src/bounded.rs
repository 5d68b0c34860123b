//! A fixed-capacity list that never allocates and never panics on overflow.
//!
//! The kernel reads the device tree before its heap exists, so the facts it keeps live in arrays
//! of known size. `push` reports [`Full`] instead of growing; callers decide what overflow means.

/// The list was at capacity; the value was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A list of at most `N` values of a `Copy + Default` type, stored inline.
#[derive(Clone, Copy)]
pub struct BoundedList<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Default for BoundedList<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + Default, const N: usize> BoundedList<T, N> {
    /// An empty list.
    pub fn new() -> Self {
        Self {
            items: [T::default(); N],
            len: 0,
        }
    }

    /// An empty list whose unused slots hold `fill` (usable in `const` and `static` items).
    pub const fn new_with(fill: T) -> Self {
        Self {
            items: [fill; N],
            len: 0,
        }
    }

    /// Appends `value`, or returns [`Full`] when the list holds `N` values already.
    pub fn push(&mut self, value: T) -> Result<(), Full> {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = value;
                self.len += 1;
                Ok(())
            }
            None => Err(Full),
        }
    }

    /// Removes the value at `index`, keeping order; returns it, or `None` if out of range.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        let value = self.items[index];
        self.items.copy_within(index + 1..self.len, index);
        self.len -= 1;
        Some(value)
    }

    /// Inserts `value` at `index` (shifting later values), or [`Full`].
    pub fn insert(&mut self, index: usize, value: T) -> Result<(), Full> {
        if self.len >= N || index > self.len {
            return Err(Full);
        }
        self.items.copy_within(index..self.len, index + 1);
        self.items[index] = value;
        self.len += 1;
        Ok(())
    }

    /// The stored values.
    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    /// The stored values, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl<T: Copy + Default + core::fmt::Debug, const N: usize> core::fmt::Debug for BoundedList<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice().iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_until_full_then_reports_full() {
        let mut list: BoundedList<u32, 2> = BoundedList::new();
        assert_eq!(list.push(1), Ok(()));
        assert_eq!(list.push(2), Ok(()));
        assert_eq!(list.push(3), Err(Full));
        assert_eq!(list.as_slice(), &[1, 2]);
    }

    #[test]
    fn insert_and_remove_keep_order() {
        let mut list: BoundedList<u32, 4> = BoundedList::new();
        list.push(1).unwrap();
        list.push(3).unwrap();
        list.insert(1, 2).unwrap();
        assert_eq!(list.as_slice(), &[1, 2, 3]);
        assert_eq!(list.remove(0), Some(1));
        assert_eq!(list.as_slice(), &[2, 3]);
        assert_eq!(list.remove(5), None);
        assert_eq!(list.insert(9, 1), Err(Full));
    }
}
