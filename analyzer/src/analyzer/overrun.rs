//! The COMPLETION ring as one root cause (`duplicate_in_flight/comp-twice*`).
//!
//! When the kernel writes completions over entries the application has not
//! read (it overran the ring, or two producers raced for one slot), the
//! application, reading as the producer says, is handed some frames twice
//! and others never. Judged frame by frame that is hundreds of findings of
//! every kind: completions out of TX order, frames passed by the ring,
//! completions of frames not on TX, and whatever the application did with
//! a frame it was handed twice. They are one fault, so the first frame
//! completed twice becomes their root and the rest its consequences.
//!
//! What makes a second completion of a frame this fault, and not the
//! application reading one entry twice (a stale consumer index, a second
//! pass over one batch: `comp-not-produced`), is the loss next to it: the
//! frame's first completion came ahead of an older one that, by the second,
//! has still not come back. Re-reading entries loses none and keeps their
//! order. Whether the lost one was in the ring at all only the kernel's
//! completion events say: with them (`kcomp` naming frames) the kernel
//! completed it and the application never got it, which is the kernel's
//! (`comp-twice`); from the application's lines alone it may instead have
//! been a descriptor the kernel dropped as invalid, so the fault stays
//! unproven (`comp-twice-untraced`, inconclusive), one finding all the same.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::raw::Link;
use super::rules::Rule;
use super::state::{ASockId, At, PoolId, RawId};
use super::umems::shown;
use super::Analyzer;
use crate::report::{Kind, Verdict};

/// Kernel completions kept per pool while the application has not taken
/// them (more than any COMPLETION ring holds).
const PENDING_CAP: usize = 1 << 16;
/// Early completions remembered (the frames of one or two ring laps).
const EARLY_CAP: usize = 4096;
/// `fifo_order/tx-completion-order` findings remembered, to file the ones
/// made before the root under it.
const ORDER_CAP: usize = 4096;
/// Lost frames named in an explanation.
const NAMED: usize = 4;

/// A completion the application took ahead of an older one.
#[derive(Clone, Copy)]
struct Early {
    frame: u64,
    pool: Option<PoolId>,
    /// The application's read of it.
    read: At,
    /// The kernel completion it read, when completions are traced; else
    /// its send.
    kcomp: Option<At>,
    sent: Option<At>,
    /// The older frame it overtook, and when that one was sent (completed,
    /// when completions are traced).
    ahead_of: u64,
    ahead_at: At,
}

/// A pool's overrun: its root finding and the frames it lost.
struct Root {
    pool: Option<PoolId>,
    raw: RawId,
    lost: Vec<u64>,
    /// The oldest lost frame's send (completion): where the fault's window
    /// opens.
    from: u64,
    at: u64,
}

#[derive(Default)]
pub(super) struct CompOrder {
    /// Per pool, the kernel's completions the application has not taken,
    /// in the kernel's order: frame and completion.
    pending: FxHashMap<Option<PoolId>, VecDeque<(u64, At)>>,
    early: VecDeque<Early>,
    /// Out-of-TX-order completions found: pool, finding, frames.
    order: VecDeque<(Option<PoolId>, RawId, [u64; 2])>,
    roots: Vec<Root>,
}

impl Analyzer {
    /// The pool a socket takes its frames from.
    fn pool_of(&self, a: Option<ASockId>) -> Option<PoolId> {
        self.asocks.get(a?)?.pool
    }

    /// The kernel completed frame `f`, sent on socket `a`.
    pub(super) fn comp_produced(&mut self, a: Option<ASockId>, f: u64, at: At) {
        let pool = self.pool_of(a);
        let q = self.comp.pending.entry(pool).or_default();
        q.push_back((f, at));
        if q.len() > PENDING_CAP {
            q.pop_front();
        }
    }

    /// The application took the kernel's completion of `f` (sent on `a`):
    /// in the kernel's order, or ahead of older ones still not taken.
    pub(super) fn comp_taken_traced(&mut self, a: Option<ASockId>, f: u64, at: At) {
        let pool = self.pool_of(a);
        let complete_now = self.complete_now;
        let Some(q) = self.comp.pending.get_mut(&pool) else {
            return;
        };
        // Completions from before every CPU had started may have been
        // taken unseen.
        while q
            .front()
            .is_some_and(|e| e.1.order < complete_now && e.0 != f)
        {
            q.pop_front();
        }
        if q.front().is_some_and(|e| e.0 == f) {
            q.pop_front();
            return;
        }
        let Some(i) = q.iter().position(|e| e.0 == f) else {
            return;
        };
        // The application reads COMPLETION in ring order, the order the
        // kernel completed in: the completions before `f` were read before
        // it, without being recorded (or lost to an overrun, judged below).
        let skipped: Vec<(u64, At)> = q.iter().take(i.min(64)).copied().collect();
        let (head, head_at) = q[0];
        let kcomp = q.remove(i).map(|e| e.1);
        for (h, completed) in skipped {
            self.taken_unrecorded(h, completed, || {
                format!(
                    " But the kernel completed it at {} and frame {:#x} after it, and the application read that \
                     one from COMPLETION at {}: it reads COMPLETION in ring order, so it may have read this \
                     frame's completion before without recording it (a forgotten comp call), and this is no \
                     proof against the application.",
                    completed.cite(),
                    shown(f),
                    at.cite()
                )
            });
        }
        self.early(Early {
            frame: f,
            pool,
            read: at,
            kcomp,
            sent: None,
            ahead_of: head,
            ahead_at: head_at,
        });
    }

    /// The application took the completion of `f` (sent on `a` at `sent`)
    /// before `head`, sent earlier at `head_at` (kernel completions not
    /// traced); `raw`: the `fifo_order` finding it made.
    #[expect(
        clippy::too_many_arguments,
        reason = "what tx_fifo_check found, passed on as it is"
    )]
    pub(super) fn comp_taken_early(
        &mut self,
        a: Option<ASockId>,
        f: u64,
        sent: At,
        head: u64,
        head_at: At,
        raw: Option<RawId>,
        at: At,
    ) {
        let pool = self.pool_of(a);
        if let Some(raw) = raw {
            self.comp.order.push_back((pool, raw, [f, head]));
            if self.comp.order.len() > ORDER_CAP {
                self.comp.order.pop_front();
            }
            if let Some(root) = self.comp.roots.iter().find(|r| r.pool == pool) {
                if root.lost.contains(&head) {
                    // Tied by its frames already (the root names them).
                    return;
                }
            }
        }
        self.early(Early {
            frame: f,
            pool,
            read: at,
            kcomp: None,
            sent: Some(sent),
            ahead_of: head,
            ahead_at: head_at,
        });
    }

    fn early(&mut self, e: Early) {
        self.comp.early.push_back(e);
        if self.comp.early.len() > EARLY_CAP {
            self.comp.early.pop_front();
        }
    }

    /// The application put `f` on TX: a completion of it is due again.
    pub(super) fn comp_resent(&mut self, f: u64) {
        if !self.comp.early.is_empty() {
            self.comp.early.retain(|e| e.frame != f);
        }
    }

    /// The frame is still missing: sent and never completed, or (traced)
    /// completed by the kernel and never taken.
    fn still_missing(&self, g: u64, traced: bool) -> bool {
        self.frames
            .get(g)
            .is_some_and(|gs| if traced { gs.kcomp > 0 } else { gs.tx > 0 })
    }

    /// The application took a completion of `f` (addr `addr`) while it was
    /// not on TX, the completion of its last send already taken. When that
    /// first completion came early and what it overtook never came back,
    /// this is the ring's fault (see the module): fire it, as the pool's
    /// root or under it, and say so. `prev`: the frame's last event.
    pub(super) fn comp_twice(
        &mut self,
        a: Option<ASockId>,
        f: u64,
        addr: u64,
        prev: At,
        at: At,
    ) -> bool {
        let Some(i) = self.comp.early.iter().rposition(|e| e.frame == f) else {
            return false;
        };
        let e = self.comp.early[i];
        let traced = e.kcomp.is_some();
        if !self.still_missing(e.ahead_of, traced) {
            return false;
        }
        self.comp.early.remove(i);
        // What its first completion overtook and is still missing: the
        // entries the kernel wrote over.
        let before = e.kcomp.or(e.sent).map_or(e.read.order, |k| k.order);
        let mut lost: Vec<(u64, At)> = if traced {
            self.comp
                .pending
                .get(&e.pool)
                .map(|q| {
                    q.iter()
                        .take_while(|x| x.1.order < before)
                        .filter(|x| self.still_missing(x.0, true))
                        .copied()
                        .collect()
                })
                .unwrap_or_default()
        } else {
            self.asocks
                .iter()
                .filter(|s| s.pool == e.pool)
                .flat_map(|s| s.tx_fifo.iter())
                .filter(|x| x.1.order < before && self.still_missing(x.0, false))
                .map(|x| (x.0, x.1))
                .collect()
        };
        if !lost.iter().any(|x| x.0 == e.ahead_of) {
            lost.push((e.ahead_of, e.ahead_at));
        }
        lost.sort_by_key(|x| x.1.order);
        lost.dedup_by_key(|x| x.0);
        let from = lost.first().map_or(e.ahead_at.order, |x| x.1.order);
        let (verdict, rule) = if traced {
            (Verdict::Kernel, Rule::CompTwice)
        } else {
            (Verdict::Inconclusive, Rule::CompTwiceUntraced)
        };
        let root = self.comp.roots.iter().position(|r| r.pool == e.pool);
        let named: Vec<String> = lost
            .iter()
            .take(NAMED)
            .map(|(g, gat)| {
                if traced {
                    format!(
                        "{g:#x} (completed by the kernel at {})",
                        gat.cite(),
                        g = shown(*g)
                    )
                } else {
                    format!("{g:#x} (sent at {})", gat.cite(), g = shown(*g))
                }
            })
            .collect();
        let more = lost.len().saturating_sub(NAMED);
        let named = if more > 0 {
            format!("{} and {more} more", named.join(", "))
        } else {
            named.join(", ")
        };
        let wrote = match e.kcomp {
            Some(k) => format!(
                " The kernel completed it once since it was sent, at {}: the entry read at {} and this one \
                 both hold that completion, so the slot was read again after the kernel had lapped the \
                 application.",
                k.cite(),
                e.read.cite()
            ),
            None => String::new(),
        };
        let lost_what = if traced {
            "completed by the kernel and never read by the application"
        } else {
            "sent and never completed"
        };
        let expl = if root.is_some() {
            format!(
                "Frame {f:#x} (addr {addr:#x}) came out of COMPLETION a second time at {}, after its early \
                 completion at {} and no send since: another entry of the same overrun.{wrote}",
                at.cite(),
                e.read.cite(), f = shown(f))
        } else {
            let why = if traced {
                "The kernel wrote completions over entries the application had not read (it overran the \
                 COMPLETION ring, or two producers took one slot): the application, reading what the producer \
                 published, got the overwriting entries twice, a ring lap apart, and the overwritten ones \
                 never. The kernel's own completion events show the lost frames completed, so they were in the \
                 ring; an application that reads its ring again (a stale consumer index) loses nothing."
            } else {
                "That is the mark of a COMPLETION ring the kernel overran (entries written over ones the \
                 application had not read, so it reads some twice, a ring lap apart, and those never) or that \
                 two kernel producers shared; an application that reads its ring again (a stale consumer index) \
                 loses nothing. Without the kernel's completion events the trace cannot show that the lost \
                 frames were ever completed (the kernel drops an invalid descriptor without completing it), so \
                 this is not a verdict; probes with completion events (fentry, kprobe) settle it."
            };
            format!(
                "The application took frame {f:#x} (addr {addr:#x}) from COMPLETION at {}, a second time since \
                 it last sent it: it had taken its completion at {}, ahead of older frames that have still not \
                 come back: {named}, {lost_what}.{wrote} {why} The missing completions, the completions out of \
                 TX order and what the application did with the frames it was handed twice are this fault's \
                 consequences.",
                at.cite(),
                e.read.cite(), f = shown(f))
        };
        let mut frames = vec![f];
        if root.is_none() {
            frames.extend(lost.iter().map(|x| x.0));
        }
        let cpus = vec![at.cpu, e.read.cpu];
        let Some(id) = self.raw(
            Kind::DuplicateInFlight,
            verdict,
            rule,
            Some(addr),
            frames,
            at,
            cpus,
            None,
            a,
            None,
            expl,
            from.min(prev.order),
            false,
            at.line,
        ) else {
            return true;
        };
        match root {
            Some(r) => {
                let rid = self.comp.roots[r].raw;
                if let Some(raw) = self.raws.get_mut(id) {
                    raw.link = Link::Consequence(rid);
                }
                // Its later anomalies are the root's too.
                if let Some(raw) = self.raws.get_mut(rid) {
                    if !raw.frames.contains(&f) {
                        raw.frames.push(f);
                    }
                }
            }
            None => {
                let lost: Vec<u64> = lost.iter().map(|x| x.0).collect();
                // The completions out of TX order it made before it.
                for &(pool, o, fr) in &self.comp.order {
                    if pool != e.pool || !fr.iter().any(|g| lost.contains(g) || *g == f) {
                        continue;
                    }
                    if let Some(raw) = self.raws.get_mut(o) {
                        if raw.link == Link::None && raw.at.line <= at.line {
                            raw.link = Link::Consequence(id);
                        }
                    }
                }
                self.comp.roots.push(Root {
                    pool: e.pool,
                    raw: id,
                    lost,
                    from,
                    at: at.order,
                });
            }
        }
        true
    }

    /// The overrun root a frame of `pool` sent at `sent` and passed by its
    /// ring belongs to: sent inside its window.
    pub(super) fn overrun_root_of(&self, pool: Option<PoolId>, sent: At) -> Option<RawId> {
        self.comp
            .roots
            .iter()
            .find(|r| r.pool == pool && r.from <= sent.order && sent.order <= r.at)
            .map(|r| r.raw)
    }
}
