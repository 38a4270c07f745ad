//! Per-frame state by chunk base, indexed directly where it can be.
//!
//! Every descriptor of the trace looks its frame up once or twice, and a
//! UMEM's frames are a dense range of chunk numbers (a few thousand to a
//! few hundred thousand), so a vector indexed by `base >> chunk_shift` finds
//! one without hashing and in one memory access instead of two. Bases that
//! do not fit (unaligned addresses, garbage, huge UMEMs) go to a hash map,
//! so memory stays bounded by [`DENSE_MAX`] entries plus the frames seen.

use rustc_hash::FxHashMap;

/// Largest dense index: 2^19 frames (1 GiB of 2 KiB chunks).
const DENSE_MAX: u64 = 1 << 19;

/// A map from frame base to `T`.
pub(crate) struct FrameTable<T> {
    shift: u32,
    dense: Vec<Option<T>>,
    sparse: FxHashMap<u64, T>,
    len: usize,
}

impl<T> FrameTable<T> {
    pub(crate) fn new() -> Self {
        FrameTable {
            shift: 0,
            dense: Vec::new(),
            sparse: FxHashMap::default(),
            len: 0,
        }
    }

    /// Index by chunk number for this chunk size (a power of two). Only
    /// takes effect while the table is empty (keys already stored keep
    /// their slots).
    pub(crate) fn set_chunk(&mut self, chunk: u64) {
        if self.len == 0 && chunk.is_power_of_two() {
            self.shift = chunk.trailing_zeros();
        }
    }

    #[inline]
    fn slot(&self, f: u64) -> Option<usize> {
        let i = f >> self.shift;
        (i << self.shift == f && i < DENSE_MAX).then_some(i as usize)
    }

    #[inline]
    pub(crate) fn get(&self, f: u64) -> Option<&T> {
        match self.slot(f) {
            Some(i) => self.dense.get(i).and_then(Option::as_ref),
            None => self.sparse.get(&f),
        }
    }

    /// Load `f`'s entry (if dense) without using it: a software prefetch in
    /// safe code (nothing waits for the load, so several overlap).
    #[inline]
    pub(crate) fn touch(&self, f: u64) {
        if let Some(i) = self.slot(f) {
            std::hint::black_box(self.dense.get(i).is_some_and(Option::is_some));
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, f: u64) -> Option<&mut T> {
        match self.slot(f) {
            Some(i) => self.dense.get_mut(i).and_then(Option::as_mut),
            None => self.sparse.get_mut(&f),
        }
    }

    pub(crate) fn insert(&mut self, f: u64, v: T) {
        let old = match self.slot(f) {
            Some(i) => {
                if i >= self.dense.len() {
                    let n = (i + 1).next_power_of_two().max(1024);
                    self.dense.resize_with(n, || None);
                }
                self.dense[i].replace(v)
            }
            None => self.sparse.insert(f, v),
        };
        if old.is_none() {
            self.len += 1;
        }
    }

    pub(crate) fn remove(&mut self, f: u64) -> Option<T> {
        let old = match self.slot(f) {
            Some(i) => self.dense.get_mut(i).and_then(Option::take),
            None => self.sparse.remove(&f),
        };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every entry with its frame base, dense ones first (in base order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        let shift = self.shift;
        self.dense
            .iter()
            .enumerate()
            .filter_map(move |(i, v)| v.as_ref().map(|v| ((i as u64) << shift, v)))
            .chain(self.sparse.iter().map(|(&f, v)| (f, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse_keys_behave_like_a_map() {
        let mut t = FrameTable::new();
        t.set_chunk(0x800);
        let keys = [
            0u64,
            0x800,
            0x1000_0000,
            0xffff_ffff_f800,
            0x801,
            0x7fff_f800,
        ];
        for (i, &k) in keys.iter().enumerate() {
            assert!(t.get(k).is_none());
            t.insert(k, i);
        }
        assert_eq!(t.len(), keys.len());
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(t.get(k), Some(&i));
        }
        let mut all: Vec<(u64, usize)> = t.iter().map(|(k, &v)| (k, v)).collect();
        all.sort_unstable();
        let mut want: Vec<(u64, usize)> = keys.iter().copied().zip(0..).collect();
        want.sort_unstable();
        assert_eq!(all, want);
        *t.get_mut(0x800).unwrap() = 99;
        t.insert(0x800, 7);
        assert_eq!(t.len(), keys.len());
        assert_eq!(t.remove(0x800), Some(7));
        assert_eq!(t.remove(0x800), None);
        assert_eq!(t.remove(0x801), Some(4));
        assert_eq!(t.len(), keys.len() - 2);
        assert!(t.get(0x800).is_none());
    }

    #[test]
    fn chunk_is_fixed_once_something_is_stored() {
        let mut t = FrameTable::new();
        t.insert(0x1000, 1);
        t.set_chunk(0x1000);
        assert_eq!(t.get(0x1000), Some(&1));
    }
}
