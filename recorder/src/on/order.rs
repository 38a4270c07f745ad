//! FIFO order: frames come back from RX in the order they were put on FILL
//! (per pool), and from COMPLETION in the order they were put on TX (per
//! socket). A FILL→RX mismatch that the kernel's free-list recycling explains
//! (`rx_dropped`/`rx_ring_full` rose) is counted, not reported. Ring
//! indexes the app gives must continue from one batch to the next
//! ([`RingIdx`]): a masked index passed where the free-running counter
//! belongs, or a batch recorded twice or not at all, breaks the chain.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use super::lock;
use super::register::{PoolInner, SockInner, UmemInner};
use super::report::Pending;
use crate::fifo::Deque;
use crate::types::{State, ViolationKind};

/// How many FIFO entries a violation keeps for its `remaining=` list.
const REMAINING_MAX: usize = 512;

/// FILL→RX order of one pool, under the pool's lock.
pub(super) struct PoolFifo {
    /// Frames put on FILL, in order, not yet seen on RX.
    pub(super) fill: Deque,
    /// Frames skipped over by RX and explained as sitting in the kernel's
    /// free list (`xp_free` pushes to its head, `xp_alloc` takes from there
    /// before FILL); they may come back on RX out of FILL order.
    pub(super) kfree: Deque,
    /// Recycling events (`rx_dropped` + `rx_ring_full` increase, × frames
    /// per packet) not yet used to explain a mismatch.
    pub(super) budget: u64,
}

/// TX→COMP order of one socket, under its TX lock.
pub(super) struct SockTx {
    /// Frames put on TX, in order, not yet completed.
    pub(super) fifo: Deque,
    /// Thread (small id) with a multi-buffer packet open on TX, or 0.
    pub(super) open: u16,
}

impl UmemInner {
    /// Read the statistics of the pool's sockets and add recycling events to
    /// the budget. Called under the pool lock, only when a mismatch needs it.
    #[cold]
    fn refresh_budget(&self, p: &PoolInner, pf: &mut PoolFifo) {
        let socks = p.socks.read().unwrap_or_else(|e| e.into_inner());
        for s in socks.iter() {
            let Some(src) = lock(&s.stats).clone() else {
                continue;
            };
            let Ok(now) = src.read() else { continue };
            let mut last = lock(&s.last_stats);
            if let Some(prev) = *last {
                let events = now.rx_dropped.saturating_sub(prev.rx_dropped)
                    + now.rx_ring_full.saturating_sub(prev.rx_ring_full);
                pf.budget += events * u64::from(s.max_frags.max(1));
            }
            *last = Some(now);
            drop(last);
            self.write_stats(s, &now);
        }
    }

    /// Check one RX frame against the pool FIFO. `Some` is a violation.
    #[inline]
    pub(super) fn fifo_rx(
        &self,
        p: &PoolInner,
        pf: &mut PoolFifo,
        s: &Arc<SockInner>,
        addr: u64,
        key: u64,
    ) -> Option<Pending> {
        if pf.fill.front() == Some(key) {
            pf.fill.pop_front();
            return None;
        }
        self.fifo_rx_slow(p, pf, s, addr, key)
    }

    #[cold]
    fn fifo_rx_slow(
        &self,
        p: &PoolInner,
        pf: &mut PoolFifo,
        s: &Arc<SockInner>,
        addr: u64,
        key: u64,
    ) -> Option<Pending> {
        // A frame the kernel freed earlier and took back from its free list.
        if let Some(i) = pf.kfree.position(key) {
            pf.kfree.remove(i);
            return None;
        }
        let expected = pf.fill.front();
        let Some(k) = pf.fill.position(key) else {
            // Filled nowhere in this pool's order (the state machine or the
            // pool check has more to say); FIFO order is still broken.
            return Some(self.fifo_violation(pf, s, addr, key, expected));
        };
        // Sockets sharing this pool's FILL ring (several sockets of one
        // device queue and UMEM: XDP_SHARED_UMEM; sockets of other queues
        // on the pool have FILL rings of their own) split its order:
        // one socket's RX skips the frames the kernel gave the others, and
        // those come back on their RX later (6.12's xskxceiver,
        // XDP_SHARED_UMEM). Only the state machine judges them.
        let sharing = p
            .socks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|o| o.key == s.key && !o.closed.load(Ordering::Acquire))
            .count();
        if sharing > 1 {
            self.skip_to_kfree(p, s, pf, k, false);
            pf.fill.pop_front();
            return None;
        }
        if pf.budget < k as u64 {
            self.refresh_budget(p, pf);
        }
        if pf.budget >= k as u64 {
            pf.budget -= k as u64;
            self.rec.recycled.fetch_add(k as u64, Ordering::Relaxed);
            self.skip_to_kfree(p, s, pf, k, true);
            pf.fill.pop_front();
            return None;
        }
        let v = self.fifo_violation(pf, s, addr, key, expected);
        // Resynchronise so one reordering is reported once: the skipped
        // frames may still come back (as if recycled).
        self.skip_to_kfree(p, s, pf, k, false);
        pf.fill.pop_front();
        Some(v)
    }

    #[cold]
    fn fifo_violation(
        &self,
        pf: &PoolFifo,
        s: &Arc<SockInner>,
        addr: u64,
        key: u64,
        expected: Option<u64>,
    ) -> Pending {
        let (remaining, more) = if self.rec.loud(ViolationKind::FifoOrder) {
            remaining(&pf.fill)
        } else {
            (Vec::new(), 0)
        };
        Pending {
            kind: ViolationKind::FifoOrder,
            addr,
            frame: key,
            from: State::Fill,
            to: State::Rx,
            sock: Some(s.clone()),
            pool: Some(s.pool.id),
            expected,
            remaining,
            more,
            index: None,
        }
    }

    /// Move the first `k` FIFO entries to the kernel free-list model,
    /// writing a `recycle` line when they were explained.
    #[cold]
    fn skip_to_kfree(&self, p: &PoolInner, s: &SockInner, pf: &mut PoolFifo, k: usize, line: bool) {
        if line {
            self.write_recycle(p, s, pf.fill.iter(), k);
        }
        for _ in 0..k {
            let Some(f) = pf.fill.pop_front() else { break };
            if !pf.kfree.push_back(f) {
                // The model holds at most every frame once; drop the oldest.
                pf.kfree.pop_front();
                pf.kfree.push_back(f);
            }
        }
    }
}

impl SockTx {
    /// Check one frame read from COMPLETION against the socket's TX FIFO.
    /// `Some` is a violation.
    #[inline]
    pub(super) fn comp(
        &mut self,
        s: &Arc<SockInner>,
        pool: u32,
        addr: u64,
        key: u64,
    ) -> Option<Pending> {
        if self.fifo.front() == Some(key) {
            self.fifo.pop_front();
            return None;
        }
        Some(self.comp_slow(s, pool, addr, key))
    }

    #[cold]
    fn comp_slow(&mut self, s: &Arc<SockInner>, pool: u32, addr: u64, key: u64) -> Pending {
        let expected = self.fifo.front();
        let (remaining, more) = remaining(&self.fifo);
        if let Some(i) = self.fifo.position(key) {
            self.fifo.remove(i);
        }
        Pending {
            kind: ViolationKind::FifoOrder,
            addr,
            frame: key,
            from: State::Tx,
            to: State::Comp,
            sock: Some(s.clone()),
            pool: Some(pool),
            expected,
            remaining,
            more,
            index: None,
        }
    }
}

/// The next index of one ring, as the app's calls give it.
#[derive(Default)]
pub(super) struct RingIdx {
    next: AtomicU32,
    used: AtomicBool,
}

/// Why a ring index is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexWhy {
    /// Before the end of the previous batch (recorded twice, or a masked
    /// index that wrapped to 0).
    Back,
    /// Past the end of the previous batch (a batch not recorded).
    Jump,
    /// The batch ends past the producer the app saw.
    PastProducer,
    /// More than a ring size behind the producer: a masked index.
    BehindProducer,
}

impl IndexWhy {
    /// The `why=` word of the violation line.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            IndexWhy::Back => "back",
            IndexWhy::Jump => "jump",
            IndexWhy::PastProducer => "past-producer",
            IndexWhy::BehindProducer => "behind-producer",
        }
    }
}

/// A ring index that does not fit: what was given and what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexFault {
    pub(crate) why: IndexWhy,
    /// The index the app gave.
    pub(crate) idx: u32,
    /// Where the previous batch ended, when there was one.
    pub(crate) expected: Option<u32>,
    /// The producer the app saw (RX).
    pub(crate) prod: Option<u32>,
    /// Entries in the batch.
    pub(crate) n: u32,
}

impl RingIdx {
    /// A batch of `n` at the recorder's own count; returns its index.
    #[inline]
    pub(super) fn count(&self, n: usize) -> u32 {
        self.used.store(true, Ordering::Relaxed);
        self.next.fetch_add(n as u32, Ordering::Relaxed)
    }

    /// Whether any batch went through.
    pub(super) fn used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }

    /// A batch of `n` at index `idx`, with the producer the app saw (`prod`)
    /// on a ring of `size` entries (0: unknown). The first batch sets the
    /// chain; after a fault it restarts at this batch, so one mistake is
    /// reported once.
    #[inline]
    pub(super) fn next(
        &self,
        idx: u32,
        n: usize,
        prod: Option<u32>,
        size: u32,
    ) -> Option<IndexFault> {
        if n == 0 {
            return None;
        }
        let n = n as u32;
        let prev = self.next.swap(idx.wrapping_add(n), Ordering::Relaxed);
        let used = self.used.swap(true, Ordering::Relaxed);
        let why = if used && prev != idx {
            // Signed distance: the counters wrap at 2^32.
            Some(if (idx.wrapping_sub(prev) as i32) < 0 {
                IndexWhy::Back
            } else {
                IndexWhy::Jump
            })
        } else if let Some(p) = prod {
            let avail = p.wrapping_sub(idx);
            if avail < n {
                Some(IndexWhy::PastProducer)
            } else if size > 0 && avail > size {
                Some(IndexWhy::BehindProducer)
            } else {
                None
            }
        } else {
            None
        };
        why.map(|why| IndexFault {
            why,
            idx,
            expected: used.then_some(prev),
            prod,
            n,
        })
    }
}

/// What a FIFO held after the expected frame, for a violation's
/// `remaining=` list: at most [`REMAINING_MAX`] entries, and how many more.
#[cold]
fn remaining(fifo: &Deque) -> (Vec<u64>, usize) {
    let remaining: Vec<u64> = fifo.iter().skip(1).take(REMAINING_MAX).collect();
    let more = fifo.len().saturating_sub(1 + remaining.len());
    (remaining, more)
}
