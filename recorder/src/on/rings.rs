//! The handles an app holds and calls next to each ring operation, one call
//! per ring: a batch's addresses or descriptors go through the frame shadow,
//! the FIFO checkers, the RX poison and multi-buffer checks; then the
//! batch's line is written and what was found is reported.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::frames::w_owner;
use super::lines::Owner;
use super::lock;
use super::order::IndexFault;
use super::order::SockTx;
use super::register::{PoolInner, SockInner, UmemInner, REFUSED_MAX};
use super::report::Pending;
use super::thread::small_tid;
use crate::types::{AddrMode, Error, State, ViolationKind, XdpDesc, XdpStats, XDP_PKT_CONTD};

/// A registered UMEM.
#[derive(Clone)]
pub struct Umem {
    pub(super) u: Arc<UmemInner>,
}

/// A registered buffer pool (FILL + COMPLETION rings).
#[derive(Clone)]
pub struct Pool {
    pub(super) u: Arc<UmemInner>,
    pub(super) p: Arc<PoolInner>,
}

/// A registered socket (RX + TX rings). Dropping the last handle closes it
/// in the recorder: its statistics source (a duplicate of the socket's fd)
/// is let go, and it no longer shares its pool's FILL order.
pub struct Sock {
    pub(super) u: Arc<UmemInner>,
    pub(super) s: Arc<SockInner>,
}

impl Clone for Sock {
    fn clone(&self) -> Self {
        self.s.handles.fetch_add(1, Ordering::Relaxed);
        Sock {
            u: self.u.clone(),
            s: self.s.clone(),
        }
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        if self.s.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.s.closed.store(true, Ordering::Release);
            self.u.sock_line(&self.s, None, true);
            let stats = lock(&self.s.stats).take();
            drop(stats);
        }
    }
}

impl std::fmt::Debug for Umem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Umem({})", self.u.id)
    }
}
impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({})", self.p.id)
    }
}
impl std::fmt::Debug for Sock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sock({}, sk={})", self.s.id, self.s.key)
    }
}

impl Umem {
    /// The app took these frames from its own free list.
    pub fn hold(&self, addrs: &[u64]) {
        self.app_move(b"hold", State::Held, addrs);
    }

    /// The app returned these frames to its own free list.
    pub fn free(&self, addrs: &[u64]) {
        self.app_move(b"free", State::Free, addrs);
    }

    #[inline]
    fn app_move(&self, op: &[u8], to: State, addrs: &[u64]) {
        let u = &*self.u;
        if !u.freelist.load(Ordering::Relaxed) {
            u.freelist.store(true, Ordering::Relaxed);
        }
        let tid = small_tid();
        let mut pending = Vec::new();
        for &a in addrs {
            let Some((idx, key)) = u.frame_of(a) else {
                pending.push(Pending::new(
                    ViolationKind::AddressOutOfRange,
                    a,
                    a,
                    State::Unknown,
                    to,
                    None,
                    None,
                ));
                continue;
            };
            if let Err(cur) = u.transition(idx, to, 0, tid) {
                pending.push(Pending::transition(cur, a, key, to, None, None));
                u.force(idx, to, 0, tid);
            }
        }
        u.write_addrs(op, Owner::Umem, None, addrs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }
}

impl Pool {
    /// The app put these frames on the FILL ring, in this order, the first
    /// at producer index `idx` (the free-running counter, not masked): an
    /// index that does not continue the previous batch is reported as
    /// `ring_index`.
    pub fn fill_at(&self, idx: u32, addrs: &[u64]) {
        if let Some(v) = self.p.fill_idx.next(idx, addrs.len(), None, 0) {
            self.u
                .report(vec![self.index_violation(v, State::Fill, addrs)]);
        }
        self.fill(addrs);
    }

    /// The app read these frames from the COMPLETION ring, the first at
    /// consumer index `idx` (free-running): checked like [`Pool::fill_at`].
    pub fn comp_at(&self, idx: u32, addrs: &[u64]) {
        if let Some(v) = self.p.comp_idx.next(idx, addrs.len(), None, 0) {
            self.u
                .report(vec![self.index_violation(v, State::Comp, addrs)]);
        }
        self.comp(addrs);
    }

    #[cold]
    fn index_violation(&self, v: IndexFault, to: State, addrs: &[u64]) -> Pending {
        let a = addrs.first().copied().unwrap_or(0);
        let key = self.u.frame_of(a).map_or(a, |(_, k)| k);
        let mut p = Pending::new(
            ViolationKind::RingIndex,
            a,
            key,
            State::Unknown,
            to,
            None,
            Some(self.p.id),
        );
        p.index = Some(v);
        p
    }

    /// The app put these frames on the FILL ring, in this order.
    pub fn fill(&self, addrs: &[u64]) {
        let u = &*self.u;
        let p = &*self.p;
        let tid = small_tid();
        let mut pending = Vec::new();
        {
            let mut pf = lock(&p.fifo);
            for &a in addrs {
                let Some((idx, key)) = u.frame_of(a) else {
                    pending.push(Pending::new(
                        ViolationKind::AddressOutOfRange,
                        a,
                        a,
                        State::Unknown,
                        State::Fill,
                        None,
                        Some(p.id),
                    ));
                    continue;
                };
                if let Err(cur) = u.transition(idx, State::Fill, p.local, tid) {
                    pending.push(Pending::transition(
                        cur,
                        a,
                        key,
                        State::Fill,
                        None,
                        Some(p.id),
                    ));
                    u.force(idx, State::Fill, p.local, tid);
                }
                // Full only if the app fills more than it has frames.
                let _ = pf.fill.push_back(key);
            }
        }
        u.write_addrs(b"fill", Owner::Pool(p.id), None, addrs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }

    /// The app read these frames from the COMPLETION ring, in this order.
    pub fn comp(&self, addrs: &[u64]) {
        let u = &*self.u;
        let p = &*self.p;
        let tid = small_tid();
        let mut pending = Vec::new();
        {
            let socks = u.socks.read().unwrap_or_else(|e| e.into_inner());
            let mut held: Option<(u16, MutexGuard<'_, SockTx>)> = None;
            for &a in addrs {
                let Some((idx, key)) = u.frame_of(a) else {
                    // A refused descriptor's address handed back (see
                    // `PoolInner::refused`).
                    if take_refused(&p.refused, a) {
                        continue;
                    }
                    pending.push(Pending::new(
                        ViolationKind::AddressOutOfRange,
                        a,
                        a,
                        State::Unknown,
                        State::Comp,
                        None,
                        Some(p.id),
                    ));
                    continue;
                };
                let prev = match u.transition(idx, State::Comp, p.local, tid) {
                    Ok(prev) => prev,
                    // Not on TX: a refused descriptor's address handed back
                    // is no violation, the frame was the app's all along (a
                    // copy on TX, sent for real, completes first, above).
                    Err(_) if take_refused(&p.refused, a) => {
                        u.force(idx, State::Comp, p.local, tid);
                        continue;
                    }
                    Err(cur) => {
                        pending.push(Pending::transition(
                            cur,
                            a,
                            key,
                            State::Comp,
                            None,
                            Some(p.id),
                        ));
                        u.force(idx, State::Comp, p.local, tid);
                        // Whatever TX FIFO still expects it would otherwise
                        // stay stuck on it and fail every later completion.
                        drop(held.take());
                        forget_sent(&socks, key);
                        continue;
                    }
                };
                let sl = w_owner(prev);
                let Some(s) = socks.get(usize::from(sl).wrapping_sub(1)) else {
                    continue;
                };
                if s.pool.local != p.local {
                    pending.push(Pending::new(
                        ViolationKind::WrongPool,
                        a,
                        key,
                        State::Tx,
                        State::Comp,
                        Some(s),
                        Some(p.id),
                    ));
                }
                if held.as_ref().is_none_or(|(l, _)| *l != sl) {
                    // Release one socket's lock before taking another's.
                    drop(held.take());
                    held = Some((sl, lock(&s.tx)));
                }
                let Some((_, tx)) = held.as_mut() else {
                    continue;
                };
                if let Some(v) = tx.comp(s, p.id, a, key) {
                    pending.push(v);
                }
            }
        }
        u.write_addrs(b"comp", Owner::Pool(p.id), None, addrs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }
}

impl Sock {
    /// The app read these descriptors from RX; the ring index is counted by
    /// the recorder from 0 (use [`Sock::rx_at`] when the app knows it).
    pub fn rx(&self, descs: &[XdpDesc]) {
        let idx = self.s.rx_idx.count(descs.len());
        self.rx_inner(idx, None, descs, None);
    }

    /// The app read these descriptors from RX starting at consumer index
    /// `idx` (the free-running counter, not masked). An index that does not
    /// continue the previous batch is reported as `ring_index`.
    pub fn rx_at(&self, idx: u32, descs: &[XdpDesc]) {
        let fault = self.s.rx_idx.next(idx, descs.len(), None, 0);
        self.rx_inner(idx, None, descs, fault);
    }

    /// [`Sock::rx_at`] with the producer index the app saw when it peeked
    /// (libxdp's `cached_prod` after `xsk_ring_cons__peek`), written as
    /// `prod=`: it proves the app was entitled to read these slots. Reading
    /// at or past it, or an index more than a ring size behind it (a masked
    /// index), is reported as `ring_index`.
    pub fn rx_at_prod(&self, idx: u32, prod: u32, descs: &[XdpDesc]) {
        let fault = self
            .s
            .rx_idx
            .next(idx, descs.len(), Some(prod), self.s.rx_size);
        self.rx_inner(idx, Some(prod), descs, fault);
    }

    /// The app wrote the UMEM's poison value into every slot of this
    /// socket's RX ring before any frame reached it: a descriptor read later
    /// that is all zero then cannot come from the ring (the app read outside
    /// it, e.g. past its end at the wrap) and is reported as
    /// `read_outside_ring`. Writes an `rxpoison` line. Refused (with the
    /// reason) once frames were put on the pool's FILL ring, when the kernel
    /// may already have written slots, or without a poison value.
    pub fn declare_rx_poisoned(&self) -> Result<(), Error> {
        let Some(poison) = self.u.cfg.poison else {
            return Err(Error::Config(
                "the RX ring can only be declared poisoned when the UMEM has a poison value (UmemConfig::with_poison)".into(),
            ));
        };
        if self.s.pool.fill_idx.used() || lock(&self.s.pool.fifo).fill.len() > 0 {
            return Err(Error::Config(
                "the RX ring must be poisoned before the first FILL of its pool: the kernel may have written slots since".into(),
            ));
        }
        self.s.prepoisoned.store(true, Ordering::Relaxed);
        self.u.write_rx_poisoned(&self.s, poison);
        Ok(())
    }

    #[inline]
    fn rx_inner(&self, idx: u32, prod: Option<u32>, descs: &[XdpDesc], fault: Option<IndexFault>) {
        let u = &*self.u;
        let s = &self.s;
        let p = &*s.pool;
        let tid = small_tid();
        let poison = u.cfg.poison;
        let mut pending = Vec::new();
        if let Some(f) = fault {
            pending.push(self.index_violation(f, State::Rx, descs));
        }
        let prepoisoned = s.prepoisoned.load(Ordering::Relaxed);
        {
            let mut pf = lock(&p.fifo);
            for d in descs {
                let a = d.addr;
                if prepoisoned && *d == XdpDesc::default() {
                    pending.push(Pending::new(
                        ViolationKind::ReadOutsideRing,
                        a,
                        a,
                        State::Unknown,
                        State::Rx,
                        Some(s),
                        Some(p.id),
                    ));
                    continue;
                }
                if Some(a) == poison {
                    let mut v = Pending::new(
                        ViolationKind::PoisonedDescriptor,
                        a,
                        a,
                        State::Fill,
                        State::Rx,
                        Some(s),
                        Some(p.id),
                    );
                    v.expected = pf.fill.front();
                    pending.push(v);
                    continue;
                }
                let Some((fidx, key)) = u.frame_of(a) else {
                    pending.push(Pending::new(
                        ViolationKind::AddressOutOfRange,
                        a,
                        a,
                        State::Unknown,
                        State::Rx,
                        Some(s),
                        Some(p.id),
                    ));
                    continue;
                };
                let open = s.rx_open.load(Ordering::Relaxed);
                if open != 0 && open != u32::from(tid) {
                    pending.push(Pending::new(
                        ViolationKind::MultibufferSplit,
                        a,
                        key,
                        State::Fill,
                        State::Rx,
                        Some(s),
                        Some(p.id),
                    ));
                }
                let now_open = if d.options & XDP_PKT_CONTD != 0 {
                    u32::from(tid)
                } else {
                    0
                };
                if now_open != open {
                    s.rx_open.store(now_open, Ordering::Relaxed);
                }
                match u.transition(fidx, State::Rx, s.local, tid) {
                    Ok(prev) => {
                        if w_owner(prev) != p.local {
                            pending.push(Pending::new(
                                ViolationKind::WrongPool,
                                a,
                                key,
                                State::Fill,
                                State::Rx,
                                Some(s),
                                Some(p.id),
                            ));
                            continue;
                        }
                        if let Some(v) = u.fifo_rx(p, &mut pf, s, a, key) {
                            pending.push(v);
                        }
                    }
                    Err(cur) => {
                        pending.push(Pending::transition(
                            cur,
                            a,
                            key,
                            State::Rx,
                            Some(s),
                            Some(p.id),
                        ));
                        u.force(fidx, State::Rx, s.local, tid);
                        // Out of the FILL order too, so its place there does
                        // not hold up every later receive.
                        if let Some(i) = pf.fill.position(key) {
                            pf.fill.remove(i);
                        }
                    }
                }
            }
        }
        u.write_descs(b"rx", s, idx, prod, descs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }

    /// The app put these descriptors on TX; the ring index is counted by the
    /// recorder from 0 (use [`Sock::tx_at`] when the app knows it).
    pub fn tx(&self, descs: &[XdpDesc]) {
        let idx = self.s.tx_idx.count(descs.len());
        self.tx_inner(idx, descs, None);
    }

    /// The app put these descriptors on TX starting at producer index `idx`
    /// (free-running): an index that does not continue the previous batch
    /// is reported as `ring_index`.
    pub fn tx_at(&self, idx: u32, descs: &[XdpDesc]) {
        let fault = self.s.tx_idx.next(idx, descs.len(), None, 0);
        self.tx_inner(idx, descs, fault);
    }

    #[cold]
    fn index_violation(&self, v: IndexFault, to: State, descs: &[XdpDesc]) -> Pending {
        let a = descs.first().map_or(0, |d| d.addr);
        let key = self.u.frame_of(a).map_or(a, |(_, k)| k);
        let mut p = Pending::new(
            ViolationKind::RingIndex,
            a,
            key,
            State::Unknown,
            to,
            Some(&self.s),
            Some(self.s.pool.id),
        );
        p.index = Some(v);
        p
    }

    #[inline]
    fn tx_inner(&self, idx: u32, descs: &[XdpDesc], fault: Option<IndexFault>) {
        let u = &*self.u;
        let s = &self.s;
        let tid = small_tid();
        let mut pending = Vec::new();
        if let Some(f) = fault {
            pending.push(self.index_violation(f, State::Tx, descs));
        }
        {
            let mut tx = lock(&s.tx);
            let geom = xskdbg_format::Geometry {
                size: u.cfg.size,
                chunk: u64::from(u.cfg.chunk_size),
                unaligned: u.cfg.mode == AddrMode::Unaligned,
            };
            for d in descs {
                let a = d.addr;
                // The kernel skips a descriptor it refuses (counted in
                // tx_invalid_descs): never sent, the frame stays the app's
                // (xskdbg_format::reject); recent kernels may complete it,
                // so the pool remembers it. Written on the line all the
                // same: the analyzer applies the same rule.
                if xskdbg_format::tx_rejected(
                    a,
                    Some(u64::from(d.len)),
                    u64::from(d.options),
                    &geom,
                )
                .is_some()
                {
                    u.rec.tx_rejected.fetch_add(1, Ordering::Relaxed);
                    let mut r = lock(&s.pool.refused);
                    if r.len() == REFUSED_MAX {
                        r.pop_front();
                    }
                    r.push_back(a);
                    continue;
                }
                let Some((fidx, key)) = u.frame_of(a) else {
                    pending.push(Pending::new(
                        ViolationKind::AddressOutOfRange,
                        a,
                        a,
                        State::Unknown,
                        State::Tx,
                        Some(s),
                        Some(s.pool.id),
                    ));
                    continue;
                };
                if tx.open != 0 && tx.open != tid {
                    pending.push(Pending::new(
                        ViolationKind::MultibufferSplit,
                        a,
                        key,
                        State::Unknown,
                        State::Tx,
                        Some(s),
                        Some(s.pool.id),
                    ));
                }
                tx.open = if d.options & XDP_PKT_CONTD != 0 {
                    tid
                } else {
                    0
                };
                if let Err(cur) = u.transition(fidx, State::Tx, s.local, tid) {
                    pending.push(Pending::transition(
                        cur,
                        a,
                        key,
                        State::Tx,
                        Some(s),
                        Some(s.pool.id),
                    ));
                    u.force(fidx, State::Tx, s.local, tid);
                }
                let _ = tx.fifo.push_back(key);
            }
        }
        u.write_descs(b"tx", s, idx, None, descs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }

    /// The poison value of the socket's UMEM, if it has one.
    pub fn poison(&self) -> Option<u64> {
        self.u.cfg.poison
    }

    /// Read `XDP_STATISTICS` now and write a `stats` line.
    pub fn stats_snapshot(&self) -> Option<XdpStats> {
        let src = lock(&self.s.stats).clone()?;
        let now = src.read().ok()?;
        self.u.write_stats(&self.s, &now);
        Some(now)
    }
}

/// Removes one `addr` from the pool's refused TX descriptors; whether it
/// was there.
#[cold]
fn take_refused(refused: &std::sync::Mutex<std::collections::VecDeque<u64>>, addr: u64) -> bool {
    let mut r = lock(refused);
    if r.is_empty() {
        return false;
    }
    match r.iter().position(|&x| x == addr) {
        Some(i) => {
            r.remove(i);
            true
        }
        None => false,
    }
}

/// Take frame `key` out of the TX FIFO of whichever socket holds it (after
/// a completion the state machine refused: the FIFO must not stay stuck on
/// it). Takes each socket's TX lock in turn; the caller holds none.
#[cold]
fn forget_sent(socks: &[Arc<SockInner>], key: u64) {
    for s in socks {
        let mut tx = lock(&s.tx);
        if let Some(i) = tx.fifo.position(key) {
            tx.fifo.remove(i);
            return;
        }
    }
}
