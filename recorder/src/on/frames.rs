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
    /// Table index and frame key of a raw address; `None` outside the UMEM.
    #[inline]
    pub(super) fn frame_of(&self, addr: u64) -> Option<(usize, u64)> {
        let base = match self.cfg.mode {
            AddrMode::Aligned => addr,
            AddrMode::Unaligned => addr & UNALIGNED_ADDR_MASK,
        };
        if base >= self.cfg.size {
            return None;
        }
        let idx = match self.shift {
            Some(s) => base >> s,
            None => base / u64::from(self.cfg.chunk_size),
        };
        let key = match self.cfg.mode {
            AddrMode::Aligned => idx * u64::from(self.cfg.chunk_size),
            AddrMode::Unaligned => base,
        };
        Some((idx as usize, key))
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
        let (idx, _) = self.u.frame_of(addr)?;
        Some(w_state(self.u.table[idx].load(Ordering::Acquire)))
    }

    /// The frame key of `addr` (chunk base, or the low 48 bits when unaligned).
    pub fn frame_of(&self, addr: u64) -> Option<u64> {
        self.u.frame_of(addr).map(|(_, k)| k)
    }
}
