//! Raw findings: a rule firing, with the evidence and a timeline taken on
//! the spot, before [`super::Analyzer::finish`] judges, folds and files it.

use super::explain::Expl;
use super::rules::Rule;
use super::state::{ASockId, At, Id as _, KSockId, RawId, RingId};
use super::Analyzer;
use crate::parse::Event;
use crate::report::{Kind, Verdict};
use crate::timeline::{self, Snap};

/// At most this many raw findings; the rest are only counted.
pub(super) const MAX_RAW: usize = 100_000;
/// At most this many timelines taken (each copies a few rings).
const MAX_SNAPSHOTS: usize = 2000;

/// A finding before folding.
pub(super) struct Raw {
    pub(super) kind: Kind,
    pub(super) verdict: Verdict,
    pub(super) rule: Rule,
    pub(super) addr: Option<u64>,
    pub(super) frame: Option<u64>,
    pub(super) frames: Vec<u64>,
    pub(super) at: At,
    pub(super) cpus: Vec<u32>,
    pub(super) xs: Option<u64>,
    pub(super) ks: Option<KSockId>,
    pub(super) socket: Option<String>,
    pub(super) slot: Option<u64>,
    pub(super) explanation: Expl,
    pub(super) evidence_from: u64,
    pub(super) recorder: bool,
    pub(super) timeline: Vec<Snap>,
    /// Its id at creation (stable until `finish`).
    pub(super) id: RawId,
    /// Where it belongs whatever lines lie between (see [`Link`]).
    pub(super) link: Link,
}

/// An explicit tie between two raw findings, made when the evidence that
/// joins them is in the trace (not by line distance).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Link {
    None,
    /// Same moment, another report of it: goes to the target's `also`
    /// (the recorder's `violation` of a poisoned read the analyzer saw).
    Also(RawId),
    /// A consequence of the target, even when it comes first in the trace
    /// (a slot read before the `krx` that proves it was published early).
    Consequence(RawId),
}

pub(super) struct Tail {
    pub(super) raw: RawId,
    rings: [Option<RingId>; 4],
    left: u8,
}

impl Analyzer {
    /// A rule fires: record the finding with its evidence (`evidence_from`:
    /// the oldest moment it relies on), and the timeline of its first
    /// finding on a frame. `None` past [`MAX_RAW`].
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per rule; a struct would only rename the same fields"
    )]
    pub(super) fn raw(
        &mut self,
        kind: Kind,
        verdict: Verdict,
        rule: Rule,
        addr: Option<u64>,
        frames: Vec<u64>,
        at: At,
        mut cpus: Vec<u32>,
        ks: Option<KSockId>,
        a: Option<ASockId>,
        slot: Option<u64>,
        explanation: impl Into<Expl>,
        evidence_from: u64,
        recorder: bool,
        now_line: u64,
    ) -> Option<RawId> {
        debug_assert!(
            rule.kind().is_none_or(|k| k == kind),
            "{} fired as {kind:?}",
            rule.as_str()
        );
        let mut explanation = explanation.into();
        cpus.sort_unstable();
        cpus.dedup();
        let mut verdict = verdict;
        // Two events of different CPUs whose stamps tie (within the
        // clock's resolution) are not ordered by the trace: a verdict that
        // rests on their order would rest on nothing.
        let tied = at.order.abs_diff(evidence_from) < at.resolution_ns();
        if tied
            && cpus.len() > 1
            && !recorder
            && matches!(kind, Kind::InvalidTransition | Kind::DuplicateInFlight)
            && matches!(verdict, Verdict::Kernel | Verdict::Application)
        {
            verdict = Verdict::Inconclusive;
            let res = at.resolution_ns();
            let inner = explanation;
            explanation = Expl::Later(Box::new(move || {
                format!(
                    "{} The events this rests on were on different CPUs {}: the trace cannot tell which came \
                     first, so this is not a verdict.",
                    inner.render(),
                    if res > 1 {
                        format!("within the clock's resolution ({res} ns)")
                    } else {
                        "with equal stamps".to_string()
                    }
                )
            }));
        }
        if self.raws.len() >= MAX_RAW {
            self.raw_overflow += 1;
            return None;
        }
        let ks = ks.or_else(|| self.asocks[a?].ks);
        let a = a.or_else(|| self.ksocks[ks?].asock);
        let idx = RawId::from_index(self.raws.len());
        // Only a frame's first finding (a likely root) gets a timeline, not
        // counting one whose evidence is already older than the cut (it
        // will not be judged, and a wrapped trace's first stretch makes
        // such findings on many frames that are judged later).
        let complete_now = self.complete_now;
        let first_for_frames = frames.iter().all(|f| {
            self.raw_by_frame.get(f).is_none_or(|&i| {
                self.raws
                    .get(i)
                    .is_none_or(|r| r.evidence_from < complete_now)
            })
        });
        for f in &frames {
            let i = self.raw_by_frame.entry(*f).or_insert(idx);
            if first_for_frames {
                *i = idx;
            }
        }
        let mut timeline = Vec::new();
        if (first_for_frames || kind == Kind::ConcurrentProducer) && self.snapshots < MAX_SNAPSHOTS
        {
            self.snapshots += 1;
            let mut rings: Vec<RingId> = Vec::new();
            if let Some(ks) = ks {
                rings.push(RingId::K(ks));
            }
            if let Some(a) = a {
                rings.push(RingId::A(a));
            }
            for c in &cpus {
                rings.push(RingId::Cpu(*c));
            }
            let refs = rings.iter().filter_map(|r| match r {
                RingId::K(k) => Some(&self.ksocks[*k].ring),
                RingId::A(x) => Some(&self.asocks[*x].ring),
                RingId::Cpu(c) => self.cpus.get(c).map(|s| &s.ring),
            });
            timeline = timeline::snapshot(refs, &frames, &[at.line], now_line, self.opts.context);
            if self.tails.len() < 16 {
                let mut t = [None; 4];
                for (i, r) in rings.iter().take(4).enumerate() {
                    t[i] = Some(*r);
                }
                self.tails.push(Tail {
                    raw: idx,
                    rings: t,
                    left: 6,
                });
            }
        }
        let socket = self.sock_name(ks, a);
        self.raws.push(Raw {
            kind,
            verdict,
            rule,
            addr,
            frame: frames.first().copied(),
            frames,
            at,
            cpus,
            xs: ks.map(|ks| self.ksocks[ks].xs),
            ks,
            socket,
            slot,
            explanation,
            evidence_from,
            recorder,
            timeline,
            id: idx,
            link: Link::None,
        });
        Some(idx)
    }

    /// The events right after a finding join its timeline.
    #[inline]
    pub(super) fn feed_tails(&mut self, rid: RingId, ev: &Event<'_>, frames: &[u64]) {
        let mut i = 0;
        while i < self.tails.len() {
            let t = &mut self.tails[i];
            let linked = |r: &Option<RingId>| match (*r, rid) {
                (Some(a), b) if a == b => true,
                (Some(RingId::K(k)), RingId::A(x)) => self.asocks[x].ks == Some(k),
                (Some(RingId::A(x)), RingId::K(k)) => self.ksocks[k].asock == Some(x),
                _ => false,
            };
            if t.rings.iter().any(linked) {
                if let Some(raw) = self.raws.get_mut(t.raw) {
                    if raw.timeline.last().is_none_or(|e| e.line() < ev.line) {
                        let hl = frames.iter().any(|f| raw.frames.contains(f));
                        raw.timeline.push(Snap::of(ev, frames, hl));
                    }
                }
                t.left -= 1;
                if t.left == 0 {
                    self.tails.swap_remove(i);
                    continue;
                }
            }
            i += 1;
        }
    }
}
