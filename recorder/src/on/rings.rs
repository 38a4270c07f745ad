//! The handles an app holds and calls next to each ring operation, one call
//! per ring: a batch's addresses or descriptors go through the frame shadow,
//! the FIFO checkers, the RX poison and multi-buffer checks; then the
//! batch's line is written and what was found is reported.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::frames::w_owner;
use super::lock;
use super::order::SockTx;
use super::register::{PoolInner, SockInner, UmemInner};
use super::report::Pending;
use super::thread::small_tid;
use crate::types::{State, ViolationKind, XdpDesc, XdpStats, XDP_PKT_CONTD};

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

/// A registered socket (RX + TX rings).
#[derive(Clone)]
pub struct Sock {
    pub(super) u: Arc<UmemInner>,
    pub(super) s: Arc<SockInner>,
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
        u.write_addrs(op, None, None, addrs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }
}

impl Pool {
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
        u.write_addrs(b"fill", Some(p.id), None, addrs);
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
        u.write_addrs(b"comp", Some(p.id), None, addrs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }
}

impl Sock {
    /// The app read these descriptors from RX; the ring index is counted by
    /// the recorder from 0 (use [`Sock::rx_at`] when the app knows it).
    pub fn rx(&self, descs: &[XdpDesc]) {
        let idx = self
            .s
            .rx_next
            .fetch_add(descs.len() as u32, Ordering::Relaxed);
        self.rx_inner(idx, descs);
    }

    /// The app read these descriptors from RX starting at consumer index `idx`.
    pub fn rx_at(&self, idx: u32, descs: &[XdpDesc]) {
        self.s
            .rx_next
            .store(idx.wrapping_add(descs.len() as u32), Ordering::Relaxed);
        self.rx_inner(idx, descs);
    }

    #[inline]
    fn rx_inner(&self, idx: u32, descs: &[XdpDesc]) {
        let u = &*self.u;
        let s = &self.s;
        let p = &*s.pool;
        let tid = small_tid();
        let poison = u.cfg.poison;
        let mut pending = Vec::new();
        {
            let mut pf = lock(&p.fifo);
            for d in descs {
                let a = d.addr;
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
                    }
                }
            }
        }
        u.write_descs(b"rx", s, idx, descs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }

    /// The app put these descriptors on TX; the ring index is counted by the
    /// recorder from 0 (use [`Sock::tx_at`] when the app knows it).
    pub fn tx(&self, descs: &[XdpDesc]) {
        let idx = self
            .s
            .tx_next
            .fetch_add(descs.len() as u32, Ordering::Relaxed);
        self.tx_inner(idx, descs);
    }

    /// The app put these descriptors on TX starting at producer index `idx`.
    pub fn tx_at(&self, idx: u32, descs: &[XdpDesc]) {
        self.s
            .tx_next
            .store(idx.wrapping_add(descs.len() as u32), Ordering::Relaxed);
        self.tx_inner(idx, descs);
    }

    #[inline]
    fn tx_inner(&self, idx: u32, descs: &[XdpDesc]) {
        let u = &*self.u;
        let s = &self.s;
        let tid = small_tid();
        let mut pending = Vec::new();
        {
            let mut tx = lock(&s.tx);
            for d in descs {
                let a = d.addr;
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
        u.write_descs(b"tx", s, idx, descs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }

    /// Read `XDP_STATISTICS` now and write a `stats` line.
    pub fn stats_snapshot(&self) -> Option<XdpStats> {
        let now = self.s.stats.as_ref()?.read().ok()?;
        self.u.write_stats(&self.s, &now);
        Some(now)
    }
}
