//! Leaks, judged at the end: frames that never came back while the rings
//! (or the application) moved on well past them (`frame_leak/*`).

use super::rules::Rule;
use super::state::{AppHold, At};
use super::umems::{shown, umem_index};
use super::Analyzer;
use crate::report::{Kind, Verdict};

/// A frame the app holds while it took this many others is leaked.
const APP_LEAK_GAP: u64 = 256;

impl Analyzer {
    /// An app return of frame `f` (its UMEM's) at consumption count `taken`.
    pub(super) fn note_return(last: &mut Vec<u64>, f: u64, taken: u64) {
        let u = umem_index(f);
        if last.len() <= u {
            last.resize(u + 1, 0);
        }
        last[u] = taken;
    }

    /// How far past `held_at` (a consumption count) the app last gave back
    /// a frame of `f`'s UMEM: 0 when it gave none back since.
    fn returned_since(&self, f: u64, held_at: u64) -> u64 {
        self.last_return
            .get(umem_index(f))
            .map_or(0, |&t| t.saturating_sub(held_at))
    }

    /// Frames the FILL (or TX) order has long passed without them coming back.
    pub(super) fn leaks(&mut self) {
        let mut found = Vec::new();
        for p in self.pools.iter() {
            let gap = (2 * p.peak as u64).max(256);
            for &(f, seq, at) in &p.fifo {
                if p.consumed_max > seq + gap {
                    let passed = p.consumed_max - seq;
                    found.push((None, f, at, passed, "FILL", "RX"));
                }
            }
        }
        for s in &self.asocks {
            let gap = 256u64;
            // Sent, never completed, while many sent after it completed.
            for &(f, at, seq) in &s.tx_fifo {
                if s.tx_consumed > seq + gap {
                    let root = self.overrun_root_of(s.pool, at);
                    found.push((root, f, at, s.tx_consumed - seq, "TX", "COMPLETION"));
                }
            }
        }
        // Frames the application took and never gave back while it kept
        // taking others.
        let gap = APP_LEAK_GAP.max(2 * self.max_return_hold);
        // Without `free`/`hold` lines the app's own free list is invisible and
        // a frame resting there looks exactly like a leaked one.
        let app_free_traced = self.app_free_traced;
        let mut held: Vec<(u64, At, u64, u64)> = self
            .frames
            .iter()
            .filter(|_| app_free_traced)
            .filter(|(f, fs)| {
                matches!(fs.app, AppHold::Rx | AppHold::Comp | AppHold::Held)
                    && fs.kernel_copies() == 0
                    && self.app_taken.saturating_sub(fs.held_at) > gap
                    && self.returned_since(*f, fs.held_at) > gap
            })
            .map(|(f, fs)| (f, fs.last, self.app_taken - fs.held_at, fs.held_addr))
            .collect();
        held.sort_by_key(|h| h.1.line);
        for (f, at, passed, addr) in held {
            let expl = format!(
                "The application took frame {f:#x} at {} and never put it back on FILL or TX nor freed it, while \
                 it took {passed} other descriptors from RX/COMPLETION since: the frame leaked in the application.",
                at.cite(), f = shown(f));
            let addr = if addr != 0 { addr } else { f };
            self.raw(
                Kind::FrameLeak,
                Verdict::Application,
                Rule::AppHeld,
                Some(addr),
                vec![f],
                at,
                vec![at.cpu],
                None,
                None,
                None,
                expl,
                at.order,
                false,
                at.line,
            );
        }
        for (root, f, at, passed, ring, back) in found {
            let still = self
                .frames
                .get(f)
                .map(|fs| fs.kernel_copies() > 0)
                .unwrap_or(false);
            if !still {
                continue;
            }
            let drops = if self.drops_seen {
                " XDP_STATISTICS shows drops."
            } else {
                ""
            };
            let expl = format!(
                "Frame {f:#x} left the application on {ring} at {} and never came back on {back}, while {passed} \
                 frames queued after it did.{drops} The kernel may have dropped it as an invalid descriptor \
                 (an application error), kept it on its free list, or lost it; the trace does not say which.",
                at.cite(), f = shown(f));
            let id = self.raw(
                Kind::FrameLeak,
                Verdict::Inconclusive,
                Rule::PassedByRing,
                Some(f),
                vec![f],
                at,
                vec![at.cpu],
                None,
                None,
                None,
                expl,
                at.order,
                false,
                at.line,
            );
            // A completion the kernel wrote over: the overrun's.
            if let (Some(id), Some(root)) = (id, root) {
                if let Some(r) = self.raws.get_mut(id) {
                    r.link = super::raw::Link::Consequence(root);
                }
            }
        }
    }
}
