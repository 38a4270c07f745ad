//! The recorder's own lines: a `violation` it caught in-process
//! (`recorder/violation`), and the FILL order it checks on every RX read
//! (`fifo_order/recorder-*`). A violation of a poisoned read the analyzer
//! saw too is folded into that read.

use std::fmt::Write as _;

use super::raw::Link;
use super::rules::Rule;
use super::state::{ASockId, At};
use super::Analyzer;

use crate::parse::{AddrList, RingState};
use crate::report::{Kind, Verdict};

impl Analyzer {
    /// A recorder `violation` line.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per rule; a struct would only rename the same fields"
    )]
    #[inline]
    pub(super) fn recorder_violation(
        &mut self,
        a: Option<ASockId>,
        kind: &[u8],
        addr: u64,
        from: Option<RingState>,
        to: Option<RingState>,
        expected: Option<u64>,
        remaining: AddrList<'_>,
        at: At,
    ) {
        if let Some(rule) = super::instrumentation::recorder_rule(kind) {
            // A completion of an address never sent that the analyzer
            // reported (`comp_never_sent`): the same observation.
            if rule == Rule::RecorderNotRecorded
                && to == Some(RingState::Comp)
                && !self.comp_unsent.is_empty()
                && self.comp_unsent.contains(&(self.frame_of(addr), addr))
            {
                return;
            }
            self.recorder_instrumentation(rule, a, addr, at);
            return;
        }
        let Some(k) = Kind::parse(kind) else { return };
        let poisoned = addr == self.poison;
        // The poison is not a frame: the frame is the one that should have
        // been there (`expected=`), when the recorder knows it.
        let frames = if poisoned {
            expected.map(|e| vec![self.frame_of(e)]).unwrap_or_default()
        } else {
            vec![self.frame_of(addr)]
        };
        let f = self.frame_of(addr);
        if !poisoned && self.refused_explains(f, addr, from, to) {
            self.refused_recorder_lines += 1;
            return;
        }
        // The recorder's report of a poisoned read the analyzer already saw
        // (the `rx` line is written first): one read, one entry.
        let same_read = match (k, self.last_poison) {
            (Kind::PoisonedDescriptor, Some((pa, ri)))
                if poisoned && (pa == a || pa.is_none() || a.is_none()) =>
            {
                Some(ri)
            }
            _ => None,
        };
        if let Some(ri) = same_read {
            self.last_poison = None;
            let r = &mut self.raws[ri];
            let _ = write!(
                r.explanation.text_mut(),
                " The recorder caught the same read in-process at {}.",
                at.cite()
            );
        }
        if k == Kind::FifoOrder {
            if let Some(e) = expected {
                self.recorder_fifo(a, addr, f, e, remaining, at);
                return;
            }
        }
        // Whoever made the move into the target state is to blame: the kernel
        // produces RX and COMPLETION, the application FILL, TX and its own
        // held/free states (a completion recycled twice lands in `free` twice).
        // But a frame the application held (read, taken, held, freed) comes
        // back on RX or COMPLETION also when the application put it on FILL
        // or TX without telling the recorder: one forgotten call, so that is
        // no proof against the kernel.
        let held = matches!(
            from,
            Some(RingState::Rx | RingState::Comp | RingState::Held | RingState::Free)
        );
        let verdict = match (k, to) {
            (
                Kind::InvalidTransition | Kind::DuplicateInFlight,
                Some(RingState::Rx | RingState::Comp),
            ) if held => Verdict::Inconclusive,
            (
                Kind::InvalidTransition | Kind::DuplicateInFlight,
                Some(RingState::Rx | RingState::Comp),
            ) => Verdict::Kernel,
            (
                Kind::InvalidTransition | Kind::DuplicateInFlight,
                Some(RingState::Fill | RingState::Tx | RingState::Held | RingState::Free),
            ) => Verdict::Application,
            _ => Verdict::Inconclusive,
        };
        let mut expl = format!(
            "The recorder reported {} in-process for {addr:#x} at {}",
            k.name(),
            at.cite()
        );
        if let (Some(fr), Some(t)) = (from, to) {
            let _ = write!(expl, " ({} -> {})", fr.name(), t.name());
        }
        expl.push('.');
        if held && verdict == Verdict::Inconclusive {
            let (ring, call) = if to == Some(RingState::Rx) {
                ("FILL", "fill")
            } else {
                ("TX", "tx")
            };
            let _ = write!(
                expl,
                " The application held the frame by its own record, and the kernel puts on {} only frames \
                 from {ring}: either the kernel handed back a frame it was not given, or the application put it \
                 on {ring} without recording that batch (a forgotten {call} call); the trace cannot say which. \
                 Fix: record every batch put on {ring} before submitting it, with its ring index where the \
                 call takes one.",
                to.map_or("", RingState::name),
            );
        }
        let id = self.raw(
            k,
            verdict,
            Rule::RecorderViolation,
            Some(addr),
            frames,
            at,
            vec![at.cpu],
            None,
            a,
            None,
            expl,
            at.order,
            true,
            at.line,
        );
        if let (Some(id), Some(ri)) = (id, same_read) {
            self.raws[id].link = Link::Also(ri);
        }
    }

    /// Whether a recorder violation is what a recorder that did not know
    /// refused TX descriptors (before xskdbg_format::reject) made of one:
    /// a second send of a frame with a refused descriptor on TX (`tx` ->
    /// `tx`), or a completion the analyzer matched to a refused descriptor
    /// (-> `comp`). Such a line is a gap of that recorder's model, not
    /// evidence.
    #[cold]
    fn refused_explains(
        &self,
        f: u64,
        addr: u64,
        from: Option<RingState>,
        to: Option<RingState>,
    ) -> bool {
        match (from, to) {
            (_, Some(RingState::Comp)) => self.refused_back.contains(&(f, addr)),
            (Some(RingState::Tx), Some(RingState::Tx)) => {
                self.refused.keys().any(|&(rf, _)| rf == f)
            }
            _ => false,
        }
    }

    /// The recorder's FILL-order check of an RX read: `expected` was due,
    /// `remaining` still outstanding.
    pub(super) fn recorder_fifo(
        &mut self,
        a: Option<ASockId>,
        addr: u64,
        f: u64,
        expected: u64,
        remaining: AddrList<'_>,
        at: At,
    ) {
        let listed = remaining.iter().any(|d| self.frame_of(d.addr) == f);
        let truncated = remaining.truncated();
        let (verdict, rule, why) = if listed {
            (Verdict::Inconclusive, Rule::RecorderOutOfOrder, "it is still listed as outstanding on FILL, so it arrived out of FILL order; free-list recycling alone could explain that")
        } else if addr == self.poison {
            (
                Verdict::Inconclusive,
                Rule::RecorderPoison,
                "the value is the poison, not a frame",
            )
        } else if truncated {
            (
                Verdict::Inconclusive,
                Rule::RecorderNotListed,
                "it is not in the printed part of the outstanding list, which was cut",
            )
        } else {
            (
                Verdict::Kernel,
                Rule::RecorderNotOutstanding,
                "it was not outstanding on FILL at all",
            )
        };
        let expl = format!(
            "The recorder caught this in-process at {}: RX gave {addr:#x} where FILL order expected {expected:#x}; {why}.",
            at.cite()
        );
        let ef = self.frame_of(expected);
        self.raw(
            Kind::FifoOrder,
            verdict,
            rule,
            Some(addr),
            vec![f, ef],
            at,
            vec![at.cpu],
            None,
            a,
            None,
            expl,
            at.order,
            true,
            at.line,
        );
    }
}
