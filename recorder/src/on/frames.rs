//! The frame shadow: one `u64` word per UMEM frame holding its ownership
//! state, owner, last thread and a sequence number, moved only by
//! compare-exchange along [`State::allowed_from`], so two threads racing on
//! one frame are caught (the loser sees a state it may not leave).

use std::sync::atomic::Ordering;

use super::register::UmemInner;
use super::rings::Umem;
use crate::types::{AddrMode, State, UNALIGNED_ADDR_MASK};

// Frame word: state (8 bits) | owner (16) | thread (16) | sequence (24).
const OWNER_SHIFT: u32 = 8;
const TID_SHIFT: u32 = 24;
const SEQ_SHIFT: u32 = 40;

#[inline]
fn pack(state: State, owner: u16, tid: u16, seq: u64) -> u64 {
    state as u64
        | (u64::from(owner) << OWNER_SHIFT)
        | (u64::from(tid) << TID_SHIFT)
        | ((seq & 0xff_ffff) << SEQ_SHIFT)
}

#[inline]
pub(super) fn w_state(w: u64) -> State {
    State::from_u8((w & 0xff) as u8)
}

#[inline]
pub(super) fn w_owner(w: u64) -> u16 {
    (w >> OWNER_SHIFT) as u16
}

#[inline]
fn w_seq(w: u64) -> u64 {
    w >> SEQ_SHIFT
}

impl UmemInner {
    /// Table index and frame key of a raw address; `None` outside the UMEM
    /// (or, unaligned, when the table holds no more buffer addresses).
    #[inline]
    pub(super) fn frame_of(&self, addr: u64) -> Option<(usize, u64)> {
        self.slot_of(addr, true)
    }

    /// [`UmemInner::frame_of`]; unaligned, a buffer address not seen yet
    /// gets a slot only when `claim`.
    #[inline]
    pub(super) fn slot_of(&self, addr: u64, claim: bool) -> Option<(usize, u64)> {
        let base = match self.cfg.mode {
            AddrMode::Aligned => addr,
            AddrMode::Unaligned => addr & UNALIGNED_ADDR_MASK,
        };
        if base >= self.cfg.size {
            return None;
        }
        if self.cfg.mode == AddrMode::Unaligned {
            return self.unaligned_slot(base, claim).map(|i| (i, base));
        }
        let idx = match self.shift {
            Some(s) => base >> s,
            None => base / u64::from(self.cfg.chunk_size),
        };
        Some((idx as usize, idx * u64::from(self.cfg.chunk_size)))
    }

    /// The slot of buffer address `base` in the open-addressed unaligned
    /// table: linear probing from its hash, a free slot claimed by
    /// compare-exchange (slots are never given back, so a found key stays).
    /// Every descriptor of an unaligned UMEM comes here: not cold.
    fn unaligned_slot(&self, base: u64, claim: bool) -> Option<usize> {
        let n = self.keys.len();
        if n == 0 {
            return None;
        }
        let want = base + 1;
        let mask = n - 1;
        // Fibonacci hashing spreads buffers of one chunk apart.
        let mut i = (base.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask;
        for _ in 0..n {
            let k = self.keys[i].load(Ordering::Acquire);
            if k == want {
                return Some(i);
            }
            if k == 0 {
                if !claim {
                    return None;
                }
                match self.keys[i].compare_exchange(0, want, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Some(i),
                    Err(k) if k == want => return Some(i),
                    Err(_) => {}
                }
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// The frame key of table slot `i`.
    pub(super) fn key_of(&self, i: usize) -> u64 {
        match self.cfg.mode {
            AddrMode::Aligned => i as u64 * u64::from(self.cfg.chunk_size),
            AddrMode::Unaligned => self
                .keys
                .get(i)
                .map_or(0, |k| k.load(Ordering::Acquire).saturating_sub(1)),
        }
    }

    /// Move frame `idx` to `to` if its state allows; `Err(word)` otherwise.
    #[inline]
    pub(super) fn transition(
        &self,
        idx: usize,
        to: State,
        owner: u16,
        tid: u16,
    ) -> Result<u64, u64> {
        let allowed = to.allowed_from();
        let slot = &self.table[idx];
        let mut cur = slot.load(Ordering::Acquire);
        loop {
            if allowed & (1 << (cur & 0xff)) == 0 {
                return Err(cur);
            }
            let new = pack(to, owner, tid, w_seq(cur) + 1);
            match slot.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.note_move(idx, w_state(cur), to);
                    return Ok(cur);
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// After a violation the frame is where the app or kernel just put it.
    #[cold]
    pub(super) fn force(&self, idx: usize, to: State, owner: u16, tid: u16) {
        let slot = &self.table[idx];
        let cur = slot.load(Ordering::Acquire);
        slot.store(pack(to, owner, tid, w_seq(cur) + 1), Ordering::Release);
        self.note_move(idx, w_state(cur), to);
    }
}

impl Umem {
    /// The state the recorder holds for the frame of `addr`.
    pub fn state(&self, addr: u64) -> Option<State> {
        let Some((idx, _)) = self.u.slot_of(addr, false) else {
            // Unaligned, never seen: the state every frame starts in.
            return (self.u.cfg.mode == AddrMode::Unaligned
                && addr & UNALIGNED_ADDR_MASK < self.u.cfg.size)
                .then(|| w_state(0));
        };
        Some(w_state(self.u.table[idx].load(Ordering::Acquire)))
    }

    /// The frame key of `addr` (chunk base, or the low 48 bits when unaligned).
    pub fn frame_of(&self, addr: u64) -> Option<u64> {
        match self.u.cfg.mode {
            AddrMode::Unaligned => {
                Some(addr & UNALIGNED_ADDR_MASK).filter(|&b| b < self.u.cfg.size)
            }
            AddrMode::Aligned => self.u.slot_of(addr, false).map(|(_, k)| k),
        }
    }
}
