//! Leaks judged from the recorder's `audit` lines alone
//! (`frame_leak/audit`): a wrapped buffer loses a leaked frame's history,
//! not the recorder's account of what the application holds.
//!
//! Threshold: a listed frame is leaked when the application took more than
//! max(256, 2 × `hold_max`) descriptors from RX and COMPLETION since it took
//! that frame (`taken` − `since`), `hold_max` being the longest hold of any
//! frame it did return: the rule of `frame_leak/app-held`, on the
//! recorder's counts. Only when the application records its own free list
//! (`freelist=1`): otherwise a frame resting there looks like a leaked one.

use super::rules::Rule;
use super::state::{AppHold, At};
use super::umems::shown;
use super::Analyzer;
use crate::parse::AddrList;
use crate::report::{Kind, Verdict};

/// Frames kept from one `audit` line.
const MAX_LISTED: usize = 256;
/// The fewest takes that make a hold a leak.
const MIN_GAP: u64 = 256;

/// The latest `audit` line of a UMEM.
pub(super) struct Audit {
    at: At,
    taken: u64,
    hold_max: u64,
    held: Option<u64>,
    freelist: bool,
    /// (frame, `taken` when it was taken, ms held).
    frames: Vec<(u64, u64, Option<u64>)>,
}

impl Analyzer {
    /// An `audit` line: it replaces the UMEM's previous one.
    #[expect(clippy::too_many_arguments, reason = "mirrors the line's fields")]
    pub(super) fn audit_line(
        &mut self,
        umem: Option<u64>,
        held: Option<u64>,
        taken: Option<u64>,
        hold_max: Option<u64>,
        freelist: bool,
        frames: &AddrList<'_>,
        since: &AddrList<'_>,
        age_ms: &AddrList<'_>,
        at: At,
    ) {
        let (Some(taken), Some(hold_max)) = (taken, hold_max) else {
            return;
        };
        let mut since = since.iter();
        let mut ages = age_ms.iter();
        let frames: Vec<(u64, u64, Option<u64>)> = frames
            .iter()
            .take(MAX_LISTED)
            .map_while(|f| {
                let s = since.next()?;
                Some((f.addr, s.addr, ages.next().map(|a| a.addr)))
            })
            .collect();
        self.audits.insert(
            umem.unwrap_or(0),
            Audit {
                at,
                taken,
                hold_max,
                held,
                freelist,
                frames,
            },
        );
    }

    /// At the end: the frames each UMEM's latest audit names as held for
    /// longer than the threshold, unless the trace shows them returned
    /// after that audit.
    pub(super) fn audit_leaks(&mut self) {
        let mut audits: Vec<(u64, Audit)> = std::mem::take(&mut self.audits).into_iter().collect();
        audits.sort_by_key(|(u, _)| *u);
        for (umem, a) in audits {
            if !a.freelist {
                continue;
            }
            let gap = MIN_GAP.max(2 * a.hold_max);
            for &(addr, since, age) in &a.frames {
                let passed = a.taken.saturating_sub(since);
                if passed <= gap {
                    continue;
                }
                let f = self.frame_of(addr);
                let returned = self.frames.get(f).is_some_and(|fs| {
                    fs.last.line > a.at.line
                        && !matches!(fs.app, AppHold::Rx | AppHold::Comp | AppHold::Held)
                });
                if returned {
                    continue;
                }
                let age = age
                    .map(|ms| format!(" for {}.{:03} s", ms / 1000, ms % 1000))
                    .unwrap_or_default();
                let held = a
                    .held
                    .map(|h| format!(" (it held {h} frames then)"))
                    .unwrap_or_default();
                let expl = format!(
                    "The recorder's audit of UMEM {umem} at {} lists frame {f:#x} as held by the application{age}: \
                     taken when the application had taken {since} descriptors from RX and COMPLETION, it was never \
                     put back on FILL or TX nor freed while the application took {passed} more{held}. That is more \
                     than max({MIN_GAP}, 2 x {}), twice the longest hold of any frame it did return: the frame \
                     leaked in the application. The audit is the recorder's own account, so it holds even when the \
                     trace lost the frame's history.",
                    a.at.cite(),
                    a.hold_max, f = shown(f));
                self.raw(
                    Kind::FrameLeak,
                    Verdict::Application,
                    Rule::AuditHeld,
                    Some(addr),
                    vec![f],
                    a.at,
                    vec![a.at.cpu],
                    None,
                    None,
                    None,
                    expl,
                    // The audit line proves it alone.
                    a.at.order,
                    false,
                    a.at.line,
                );
            }
        }
    }
}
