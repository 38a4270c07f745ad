//! A fixed-capacity double-ended queue of frame keys, allocated once.

/// Ring deque of `u64` with a capacity fixed at construction.
#[derive(Debug)]
pub struct Deque {
    buf: Box<[u64]>,
    head: usize,
    len: usize,
}

impl Deque {
    /// An empty deque holding at most `cap` entries (at least 1).
    pub fn with_capacity(cap: usize) -> Deque {
        Deque {
            buf: vec![0; cap.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    /// Entries held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn slot(&self, i: usize) -> usize {
        let s = self.head + i;
        if s >= self.buf.len() {
            s - self.buf.len()
        } else {
            s
        }
    }

    /// Append at the tail; false when full (the entry is not stored).
    #[inline]
    pub fn push_back(&mut self, v: u64) -> bool {
        if self.len == self.buf.len() {
            return false;
        }
        let s = self.slot(self.len);
        self.buf[s] = v;
        self.len += 1;
        true
    }

    /// The head entry.
    #[inline]
    pub fn front(&self) -> Option<u64> {
        (self.len > 0).then(|| self.buf[self.head])
    }

    /// Remove and return the head entry.
    #[inline]
    pub fn pop_front(&mut self) -> Option<u64> {
        let v = self.front()?;
        self.head = self.slot(1);
        self.len -= 1;
        Some(v)
    }

    /// Position of `v` from the head.
    pub fn position(&self, v: u64) -> Option<usize> {
        (0..self.len).find(|&i| self.buf[self.slot(i)] == v)
    }

    /// Remove entry `i`, keeping the order of the others.
    pub fn remove(&mut self, i: usize) -> Option<u64> {
        if i >= self.len {
            return None;
        }
        let v = self.buf[self.slot(i)];
        for j in i..self.len - 1 {
            let (a, b) = (self.slot(j), self.slot(j + 1));
            self.buf[a] = self.buf[b];
        }
        self.len -= 1;
        Some(v)
    }

    /// Iterate from head to tail.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).map(move |i| self.buf[self.slot(i)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_keeps_order() {
        let mut d = Deque::with_capacity(3);
        assert!(d.push_back(1) && d.push_back(2) && d.push_back(3));
        assert!(!d.push_back(4));
        assert_eq!(d.pop_front(), Some(1));
        assert!(d.push_back(4));
        assert_eq!(d.iter().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(d.position(4), Some(2));
        assert_eq!(d.remove(1), Some(3));
        assert_eq!(d.iter().collect::<Vec<_>>(), [2, 4]);
        assert_eq!(d.pop_front(), Some(2));
        assert_eq!(d.pop_front(), Some(4));
        assert_eq!(d.pop_front(), None);
        assert_eq!(d.len(), 0);
    }
}
