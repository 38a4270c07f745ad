//! FIFO order: the kernel takes FILL in order and completes TX in order, so
//! a frame that comes back out of order, or was not outstanding at all, is
//! evidence (`fifo_order/*`); reordering the kernel's own free list
//! explains is only counted.

use super::rules::Rule;
use super::state::{ASockId, At, PoolId, RawId};
use super::umems::shown;
use super::Analyzer;
use crate::report::{Kind, Verdict};

/// Entries kept per FILL (TX) order.
const FIFO_CAP: usize = 1 << 16;

impl Analyzer {
    /// A frame put on FILL: the end of its pool's FILL order.
    #[inline]
    pub(super) fn fill_queued(&mut self, p: PoolId, f: u64, at: At) {
        let pool = &mut self.pools[p];
        pool.seq += 1;
        let seq = pool.seq;
        pool.fifo.push_back((f, seq, at));
        if pool.fifo.len() > FIFO_CAP {
            pool.fifo.pop_front();
        }
        pool.peak = pool.peak.max(pool.fifo.len());
    }

    /// A frame put on TX: the end of its socket's TX order.
    #[inline]
    pub(super) fn tx_queued(&mut self, a: ASockId, f: u64, at: At) {
        let s = &mut self.asocks[a];
        s.tx_seq += 1;
        let seq = s.tx_seq;
        s.tx_fifo.push_back((f, at, seq));
        if s.tx_fifo.len() > FIFO_CAP {
            s.tx_fifo.pop_front();
        }
    }

    /// Drop a frame whose kernel receive is missing from the FILL order
    /// without counting it as reordered.
    #[inline]
    pub(super) fn fifo_forget(&mut self, p: PoolId, f: u64) {
        let pool = &mut self.pools[p];
        // Old entries sit near the front, but not always within a few
        // hundred: a pool's FILL ring holds thousands, and an entry left
        // behind here is later reported as a frame the ring passed by (a
        // clean soak whose CPU buffer started late gave `passed-by-ring`).
        // This path is rare: a receive the trace lost.
        if let Some(i) = pool.fifo.iter().position(|e| e.0 == f) {
            if let Some((_, seq, _)) = pool.fifo.remove(i) {
                pool.consumed_max = pool.consumed_max.max(seq);
            }
        }
    }

    /// A frame leaving FILL (`by_kernel`: its kernel receive, else the
    /// app's read when receives are not traced): in FILL order, or
    /// reordered by the kernel's free list (counted, not a finding).
    pub(super) fn fifo_consume(&mut self, p: PoolId, f: u64, by_kernel: bool) {
        let complete_now = self.complete_now;
        let pool = &mut self.pools[p];
        if by_kernel {
            pool.kernel_consumes = true;
        } else if pool.kernel_consumes {
            return;
        }
        // Fills from before every CPU's buffer had started may have been
        // received unseen: they say nothing about order.
        while pool
            .fifo
            .front()
            .is_some_and(|e| e.2.order < complete_now && e.0 != f)
        {
            pool.fifo.pop_front();
        }
        if pool.fifo.front().is_some_and(|e| e.0 == f) {
            let (_, seq, _) = pool.fifo.pop_front().unwrap_or_default();
            pool.consumed_max = pool.consumed_max.max(seq);
            return;
        }
        if let Some(i) = pool.fifo.iter().position(|e| e.0 == f) {
            // Out of FILL order but outstanding: the kernel's free list
            // (LIFO, used before the FILL ring) explains this.
            let (_, seq, _) = pool.fifo.remove(i).unwrap_or_default();
            pool.consumed_max = pool.consumed_max.max(seq);
            self.recycled += 1;
        }
    }

    /// A completion (`read`: the application's read of it, kernel
    /// completions not traced): the frame should be the oldest sent on its
    /// socket. Out of order: when `f` was sent, the oldest and when it was
    /// sent, and the finding.
    pub(super) fn tx_fifo_check(
        &mut self,
        a: Option<ASockId>,
        f: u64,
        addr: u64,
        at: At,
        read: bool,
    ) -> Option<(At, u64, At, Option<RawId>)> {
        let a = a?;
        let complete_now = self.complete_now;
        let s = &mut self.asocks[a];
        // Sends from before every CPU had started may have completed unseen.
        while s
            .tx_fifo
            .front()
            .is_some_and(|e| e.1.order < complete_now && e.0 != f)
        {
            s.tx_fifo.pop_front();
        }
        if s.tx_fifo.front().is_some_and(|e| e.0 == f) {
            if let Some((_, _, seq)) = s.tx_fifo.pop_front() {
                s.tx_consumed = s.tx_consumed.max(seq);
            }
            return None;
        }
        let i = s.tx_fifo.iter().position(|e| e.0 == f)?;
        let (head, head_at, _) = s.tx_fifo[0];
        // Completions come back in TX order on copy mode and the common
        // zero-copy drivers: the ones of the frames sent before `f` were
        // then read before it, without being recorded (the application
        // reads COMPLETION in ring order).
        let skipped: Vec<(u64, At)> = if read {
            s.tx_fifo
                .iter()
                .take(i.min(64))
                .map(|e| (e.0, e.1))
                .collect()
        } else {
            Vec::new()
        };
        for (h, sent) in skipped {
            self.taken_unrecorded(h, sent, || {
                format!(
                    " But frame {:#x}, put on TX after it, came back on COMPLETION at {}: completions come back \
                     in TX order on copy mode and the common zero-copy drivers, so this frame's completion may \
                     have been read before, without being recorded (a forgotten comp call), and this is no \
                     proof against the application.",
                    shown(f),
                    at.cite()
                )
            });
        }
        let s = &mut self.asocks[a];
        let mut sent = at;
        if let Some((_, sent_at, seq)) = s.tx_fifo.remove(i) {
            s.tx_consumed = s.tx_consumed.max(seq);
            sent = sent_at;
        }
        let expl = format!(
            "Frame {f:#x} (addr {addr:#x}) completed at {} before {head:#x}, which was put on TX earlier at {}. \
             Completions usually come back in TX order (copy mode and the common zero-copy drivers); a driver that \
             completes out of order would explain it, so this alone is inconclusive.",
            at.cite(),
            head_at.cite(), f = shown(f), head = shown(head));
        let raw = self.raw(
            Kind::FifoOrder,
            Verdict::Inconclusive,
            Rule::TxCompletionOrder,
            Some(addr),
            vec![f, head],
            at,
            vec![at.cpu],
            None,
            Some(a),
            None,
            expl,
            head_at.order,
            false,
            at.line,
        );
        Some((sent, head, head_at, raw))
    }
}
