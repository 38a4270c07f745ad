//! What a poisoned read proves on its own, and what it proves about the
//! overlap before it.
//!
//! The recorder's applications poison only slots they consumed, before they
//! release them. So a read of the poison from a slot the application was
//! entitled to read (below the producer it saw when it peeked, `rx ...
//! prod=`, at an index continuing the socket's previous batch) means the
//! kernel published a slot it had not written: `kernel`, with no probe at
//! all (`poisoned_descriptor/entitled-read`). At or past that producer, or
//! at an index that repeats or goes back, the read is the application's.
//!
//! A producer overlap whose end is only inferred (a NAPI poll end, a
//! `flush=inferred` flush) is no proof: a correct driver shows such
//! overlaps too. It becomes a finding only when evidence ties something to
//! it (`settle_overlaps`, at the end): a proven poisoned read on its socket
//! inside it, right after it, or at a slot it produced makes it `kernel`
//! (`concurrent_producer/poisoned-read`); a `krx` that found such a slot
//! already published files it under that proof; any other read anomaly
//! there keeps it as the inconclusive finding it was. Untied, it is a note
//! with its count.

use rustc_hash::FxHashMap;

use super::raw::Link;
use super::rules::Rule;
use super::state::{ASockId, At, KSockId, RawId};
use super::Analyzer;
use crate::report::{Kind, Verdict};

/// How an RX batch's index follows the socket's previous batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Chain {
    /// No earlier batch of the socket in the trace.
    First,
    /// It starts where the previous one ended.
    Continues,
    /// It starts before the previous one's end: slots read again.
    Back { expected: u64 },
    /// It starts after the previous one's end: slots skipped.
    Jump { expected: u64 },
}

/// What the application said about the RX batch being read: its index,
/// the producer it saw, how the index follows the previous batch.
#[derive(Clone, Copy, Debug)]
pub(super) struct RxBatch {
    pub(super) idx: u64,
    pub(super) prod: Option<u64>,
    pub(super) chain: Chain,
}

/// An overlap whose end is only inferred, waiting for evidence.
pub(super) struct Overlap {
    raw: RawId,
    ks: KSockId,
    start: At,
    close: At,
    /// The RX slots reserved in the overlapping sections.
    slots: Vec<u64>,
    /// The application's RX batches on the socket when it closed.
    batches: u64,
}

/// More entries between an index and the producer the app saw than any RX
/// ring has (the soak's go up to 16384): the index is not the free-running
/// counter (a masked one, in a trace that starts mid-run), so it proves
/// nothing.
const MAX_AHEAD: i64 = 1 << 16;

/// Ring counters are 32-bit and wrap: the signed distance from `from` to `to`.
fn ring_dist(from: u64, to: u64) -> i64 {
    i64::from((to as u32).wrapping_sub(from as u32) as i32)
}

/// Rules whose poisoned read proves the kernel published a slot it had not
/// written (by the application's entitlement, or by the kernel's own
/// flush and write events).
fn proves_unwritten(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::PoisonEntitledRead | Rule::PoisonPublishedBeforeWrite
    )
}

impl Analyzer {
    /// An `rx` line of socket `a` at index `idx` with `n` descriptors and
    /// the producer the app saw: how it follows the previous batch. Counts
    /// the batch on the joined kernel socket.
    pub(super) fn rx_batch(
        &mut self,
        a: Option<ASockId>,
        idx: Option<u64>,
        n: usize,
        prod: Option<u64>,
    ) -> Option<RxBatch> {
        let a = a?;
        if let Some(ks) = self.asocks[a].ks {
            self.ksocks[ks].rx_batches += 1;
        }
        let idx = idx?;
        let s = &mut self.asocks[a];
        let chain = match s.rx_end {
            None => Chain::First,
            Some(e) => match ring_dist(e, idx) {
                0 => Chain::Continues,
                d if d < 0 => Chain::Back { expected: e },
                _ => Chain::Jump { expected: e },
            },
        };
        s.rx_end = Some(u64::from((idx as u32).wrapping_add(n as u32)));
        // An index that went back once may be a masked one (it wraps at the
        // ring's size): the socket's producer values prove nothing after.
        if matches!(chain, Chain::Back { .. }) {
            s.rx_masked = true;
        }
        let prod = prod.filter(|_| !s.rx_masked);
        Some(RxBatch { idx, prod, chain })
    }

    /// The verdict the application's own bookkeeping gives a poisoned read
    /// at `pos` of `batch`, when it gives one: an index that went back, a
    /// read at or past the producer it saw (`application`), or a read it
    /// was entitled to (`kernel`).
    pub(super) fn entitlement(
        batch: Option<RxBatch>,
        pos: Option<u64>,
    ) -> Option<(Verdict, Rule, String)> {
        let b = batch?;
        let pos = pos?;
        if let Chain::Back { expected } = b.chain {
            return Some((
                Verdict::Application,
                Rule::PoisonIndexBack,
                format!(
                    "the batch starts at index {:#x} although the socket's previous batch had ended at {expected:#x}: \
                     the application read again slots it had already consumed and poisoned",
                    b.idx
                ),
            ));
        }
        let prod = b.prod?;
        let ahead = ring_dist(pos, prod);
        if ahead <= 0 {
            return Some((
                Verdict::Application,
                Rule::PoisonReadPastProducer,
                format!(
                    "the application read slot {pos:#x}, at or past the producer {prod:#x} it had seen itself \
                     (prod= of its rx line): a slot the kernel had not published to it"
                ),
            ));
        }
        (b.chain == Chain::Continues && ring_dist(b.idx, prod) <= MAX_AHEAD).then(|| {
            (
                Verdict::Kernel,
                Rule::PoisonEntitledRead,
                format!(
                    "the application was entitled to read slot {pos:#x}: the producer it saw was {prod:#x} and its \
                     index continued its previous batch, and it poisons a slot only after consuming it; so the kernel \
                     published this slot without having written it (no kernel probe needed)"
                ),
            )
        })
    }

    /// An overlap whose end is only inferred was recorded as raw `r`: it
    /// waits for evidence.
    pub(super) fn inferred_overlap(
        &mut self,
        r: RawId,
        ks: KSockId,
        start: At,
        close: At,
        slots: Vec<u64>,
    ) {
        let batches = self.ksocks[ks].rx_batches;
        self.overlaps.push(Overlap {
            raw: r,
            ks,
            start,
            close,
            slots,
            batches,
        });
    }

    /// At the end: each overlap whose end is only inferred becomes `kernel`
    /// when a proven poisoned read ties to it, goes under the `krx` that
    /// proved its slot published early, stays inconclusive when another
    /// read anomaly ties to it, and is otherwise dropped (counted in a
    /// note).
    pub(super) fn settle_overlaps(&mut self) {
        let overlaps = std::mem::take(&mut self.overlaps);
        if overlaps.is_empty() {
            return;
        }
        // The candidates per socket, in trace order: read anomalies that
        // stand on their own, and proofs of an early publication.
        let mut by_ks: FxHashMap<KSockId, Vec<RawId>> = FxHashMap::default();
        for r in self.raws.iter() {
            let Some(ks) = r.ks else { continue };
            let read = matches!(r.kind, Kind::PoisonedDescriptor | Kind::RxMismatch)
                && !matches!(r.link, Link::Also(_));
            let early = r.rule == Rule::ProducerPublishedBeforeRedirect;
            if read || early {
                by_ks.entry(ks).or_default().push(r.id);
            }
        }
        for o in overlaps {
            let cands = by_ks.get(&o.ks).map_or(&[][..], |v| &v[..]);
            let mid = cands.partition_point(|&c| self.raws[c].at.order < o.start.order);
            let lo = mid.saturating_sub(32);
            let hi = (mid + 64).min(cands.len());
            let (mut proved, mut early, mut tied) = (None, None, false);
            for &c in &cands[lo..hi] {
                let r = &self.raws[c];
                let by_slot = r.slot.is_some_and(|s| o.slots.contains(&s));
                let inside = r.at.order >= o.start.order && r.at.order <= o.close.order;
                let right_after = self.read_batch.get(&c) == Some(&(o.batches + 1));
                if !(by_slot || inside || right_after) {
                    continue;
                }
                if r.kind == Kind::ConcurrentProducer {
                    // An early publication ties by its slot or its moment.
                    if (by_slot || inside) && early.is_none() {
                        early = Some(c);
                    }
                } else if r.verdict == Verdict::Kernel && proves_unwritten(r.rule) {
                    proved.get_or_insert(c);
                } else {
                    tied = true;
                }
            }
            if let Some(c) = proved {
                self.prove_overlap(&o, c);
            } else if let Some(c) = early {
                self.raws[o.raw].link = Link::Consequence(self.raws[c].id);
            } else if !tied {
                self.dropped.insert(o.raw);
                self.inferred_untied += 1;
            }
        }
    }

    /// Overlap `o` is proven by the poisoned read `c`: `kernel`, and the
    /// read becomes its consequence.
    fn prove_overlap(&mut self, o: &Overlap, c: RawId) {
        let (line_txt, slot_txt, how) = {
            let r = &self.raws[c];
            let how = if r.rule == Rule::PoisonEntitledRead {
                "a slot it was entitled to read (below the producer it saw, its index continuing)"
            } else {
                "a slot a flush had published before the kernel's write of it"
            };
            (
                r.at.cite(),
                r.slot.map(|s| format!(" slot {s:#x}")).unwrap_or_default(),
                how,
            )
        };
        let where_ = if self.raws[c].slot.is_some_and(|s| o.slots.contains(&s)) {
            "a slot reserved during this overlap"
        } else if self.raws[c].at.order <= o.close.order {
            "during this overlap"
        } else {
            "in its first RX batch after this overlap"
        };
        let o_raw = &mut self.raws[o.raw];
        o_raw.verdict = Verdict::Kernel;
        o_raw.rule = Rule::ProducerOverlapPoisonedRead;
        let t = o_raw.explanation.text_mut();
        if let Some(i) = t.find(" The section's end is not an exact flush event") {
            t.truncate(i);
        }
        t.push_str(&format!(
            " The section's end is only inferred (a NAPI poll end or flush=inferred), which alone would be \
             inconclusive, but on this socket the application then read the poison from RX{slot_txt} at \
             {line_txt}, {where_}: {how}. The kernel published a slot it had not written, which is what two \
             producers on one ring do. Verdict: kernel."
        ));
        let id = o_raw.id;
        let r = &mut self.raws[c];
        if r.link == Link::None {
            r.link = Link::Consequence(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Analyzer, Chain, RxBatch};
    use crate::analyzer::rules::Rule;
    use crate::report::Verdict;

    fn judge(chain: Chain, prod: Option<u64>, pos: u64) -> Option<(Verdict, Rule)> {
        let b = RxBatch {
            idx: pos,
            prod,
            chain,
        };
        Analyzer::entitlement(Some(b), Some(pos)).map(|(v, r, _)| (v, r))
    }

    #[test]
    fn entitlement_needs_the_producer_and_a_continuing_index() {
        let k = Some((Verdict::Kernel, Rule::PoisonEntitledRead));
        assert_eq!(judge(Chain::Continues, Some(0x16), 0x15), k);
        // At or past the producer the app saw: its own fault.
        let past = Some((Verdict::Application, Rule::PoisonReadPastProducer));
        assert_eq!(judge(Chain::Continues, Some(0x15), 0x15), past);
        assert_eq!(judge(Chain::Continues, Some(0x10), 0x15), past);
        // Going back: slots read again.
        let back = Some((Verdict::Application, Rule::PoisonIndexBack));
        assert_eq!(
            judge(Chain::Back { expected: 0x20 }, Some(0x30), 0x15),
            back
        );
        assert_eq!(judge(Chain::Back { expected: 0x20 }, None, 0x15), back);
        // No producer, a first batch or a jump: nothing from the app.
        assert_eq!(judge(Chain::Continues, None, 0x15), None);
        assert_eq!(judge(Chain::First, Some(0x16), 0x15), None);
        assert_eq!(judge(Chain::Jump { expected: 0x2 }, Some(0x16), 0x15), None);
        // 32-bit counters wrap.
        assert_eq!(judge(Chain::Continues, Some(0x1), 0xffff_ffff), k);
        assert_eq!(judge(Chain::Continues, Some(0xffff_ffff), 0x1), past);
        // More than any ring between the index and the producer: a masked
        // index, not the counter.
        assert_eq!(judge(Chain::Continues, Some(0x20015), 0x15), None);
    }
}
