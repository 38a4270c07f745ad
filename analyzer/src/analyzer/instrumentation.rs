//! `instrumentation`: the recording itself is incomplete or wrong, so what
//! it seems to show about the kernel or the application cannot be trusted.
//!
//! Three analyzer rules, which fire only on traces with the recorder's
//! declarations (a `umem` line and the socket's `sock` line), so that
//! kernel-only and seed-style traces are never judged by them:
//!
//! - `instrumentation/first-seen-in-rx`: the trace starts at the UMEM's
//!   registration (its `umem` line comes before any frame moves, nothing was
//!   lost since, and every ring counter the trace shows starts at 0: the
//!   first `rx`/`tx` `idx=` of each recorder socket, the first `krx` `slot=`
//!   of its kernel socket), and a frame shows up in RX with no earlier event. Nothing
//!   else puts a frame on RX but the kernel, and the kernel takes frames only
//!   from FILL (or from its pool's free list, which only holds frames it took
//!   from FILL): the app put it on FILL without recording it, typically the
//!   initial FILL. With probes the rule fires at the kernel's receive (the
//!   kernel took it from FILL); without them at the app's read.
//! - `instrumentation/outside-ring`: an all-zero descriptor read on a socket
//!   whose RX ring was poisoned before the first FILL (`rxpoison`): every
//!   slot holds the poison until the kernel writes an address and a length,
//!   and the kernel never writes a length of 0, so the app read it from
//!   outside the ring (a batch read as one array past the ring's end).
//!   The descriptor is then not taken as a read of frame 0.
//! - `instrumentation/rx-index`: an `rx` line's `idx=` does not continue the
//!   socket's previous one (a masked index, a batch recorded twice or not
//!   at all).
//!
//! And the recorder's own reports of the same mistakes (`violation
//! kind=not_recorded|ring_index|read_outside_ring`), which the analyzer
//! takes as they are: `instrumentation/recorder-*`.
//!
//! One mistake repeats on every frame it touches: the first finding of each
//! rule on a socket is the root, the later ones are its consequences.

use rustc_hash::{FxHashMap, FxHashSet};

use super::raw::Link;
use super::rules::Rule;
use super::state::{ASockId, At, KSockId, RawId};
use super::umems::shown;
use super::Analyzer;
use crate::parse::{AppOp, Desc, Event, KernelOp, Op, SeedOp};
use crate::report::{Kind, Verdict};
use xskdbg_format::key::bytes as key;
use xskdbg_format::lex::Fields;
use xskdbg_format::SockKey;

/// What the instrumentation rules keep.
#[derive(Default)]
pub(super) struct Instr {
    /// The first `umem` line, when it came before any frame moved: the
    /// trace holds everything since the UMEM was registered.
    registered: Option<At>,
    /// A frame moved (or a violation was reported) before any `umem` line,
    /// or right after it: the trace does not start at the registration.
    not_from_start: bool,
    /// A frame moved since the first `umem` line.
    moved: bool,
    /// Rings whose first batch was seen: (socket, 0 = RX, 1 = TX).
    counted: FxHashSet<(ASockId, u8)>,
    /// Kernel sockets whose first receive was seen.
    krx_seen: FxHashSet<KSockId>,
    /// Sockets declared by a recorder `sock` line.
    declared: FxHashSet<ASockId>,
    /// Sockets whose RX ring was poisoned before the first FILL.
    prepoisoned: FxHashSet<ASockId>,
    /// Per socket: the RX index the next `rx` line should start at, where
    /// the last one was, and the lost-event count then.
    rx_next: FxHashMap<ASockId, (u64, At, u64)>,
    /// The first finding of each rule per socket: later ones go under it.
    first: FxHashMap<(&'static str, Option<ASockId>), RawId>,
    /// The line of the last outside-ring finding (one per line).
    outside_line: u64,
    /// The recorder's last line, and whether it reported a violation
    /// (after which it freezes: see `first_seen_in_rx`).
    last_app: Option<At>,
    violation: bool,
}

/// The rule of a recorder `violation kind=` that reports an
/// instrumentation mistake.
pub(super) fn recorder_rule(kind: &[u8]) -> Option<Rule> {
    Some(match kind {
        b"not_recorded" => Rule::RecorderNotRecorded,
        b"ring_index" => Rule::RecorderRingIndex,
        b"read_outside_ring" => Rule::RecorderReadOutsideRing,
        _ => return None,
    })
}

/// Whether an operation moves a frame (for "did the trace start at the
/// registration").
fn moves_frames(op: &Op<'_>) -> bool {
    match op {
        Op::App(a) => matches!(
            a,
            AppOp::Fill { .. }
                | AppOp::Rx { .. }
                | AppOp::Tx { .. }
                | AppOp::Comp { .. }
                | AppOp::Hold { .. }
                | AppOp::Free { .. }
        ),
        Op::Kernel(k) => matches!(
            k,
            KernelOp::Rx { .. } | KernelOp::Tx { .. } | KernelOp::Comp { .. }
        ),
        Op::Seed(SeedOp::Transition { .. }) => true,
        _ => false,
    }
}

impl Analyzer {
    /// Every event, before its handler: what the rules need to know about
    /// the declarations and the start of the trace.
    pub(super) fn instr_event(
        &mut self,
        ev: &Event<'_>,
        at: At,
        ks: Option<KSockId>,
        a: Option<ASockId>,
    ) {
        // The recorder's own lines (the drainers' `kdrain` are not).
        if let Op::App(op) = &ev.op {
            if !matches!(op, AppOp::Other { .. }) {
                self.instr.last_app = Some(at);
            }
            if matches!(op, AppOp::Violation { .. }) {
                self.instr.violation = true;
            }
        }
        if moves_frames(&ev.op) {
            // A ring counter that does not start at 0 shows that the
            // socket's first batches are not in the trace (an excerpt, a
            // socket older than the recording).
            let first = match (&ev.op, a, ks) {
                (Op::App(AppOp::Rx { idx, .. }), Some(a), _) => {
                    self.instr.counted.insert((a, 0)).then_some(*idx)
                }
                (Op::App(AppOp::Tx { idx, .. }), Some(a), _) => {
                    self.instr.counted.insert((a, 1)).then_some(*idx)
                }
                (Op::Kernel(KernelOp::Rx { slot, .. }), _, Some(k))
                    if self.ksocks[k]
                        .asock
                        .is_some_and(|a| self.instr.declared.contains(&a)) =>
                {
                    self.instr.krx_seen.insert(k).then_some(*slot)
                }
                _ => None,
            };
            let i = &mut self.instr;
            if i.registered.is_none() || first.flatten().is_some_and(|x| x != 0) {
                i.not_from_start = true;
                i.registered = None;
            }
            i.moved = true;
            return;
        }
        let i = &mut self.instr;
        let Op::App(op) = &ev.op else { return };
        match op {
            AppOp::Umem { .. } if i.registered.is_none() && !i.not_from_start => {
                i.registered = Some(at);
            }
            AppOp::Sock { .. } => {
                if let Some(a) = a {
                    i.declared.insert(a);
                    // A socket registered again starts its indices afresh.
                    i.rx_next.remove(&a);
                }
            }
            // Nothing moved between the `umem` line and a violation: the
            // `umem` line was the recorder declaring again before its
            // report, in a buffer whose start is lost.
            AppOp::Violation { .. } if i.registered.is_some() && !i.moved => {
                i.registered = None;
                i.not_from_start = true;
            }
            AppOp::Other { op } if *op == b"rxpoison" => {
                let sk = Fields::new(ev.body)
                    .find(|(k, _)| *k == key::SK)
                    .and_then(|(_, v)| SockKey::parse(v));
                if let Some(sk) = sk {
                    let s = self.asock_sk(sk);
                    self.instr.prepoisoned.insert(s);
                }
            }
            _ => {}
        }
    }

    /// Drop the `first-seen-in-rx` findings of kernel receives after the
    /// recorder's last line once it reported a violation: it stops writing
    /// when it freezes, and the kernel's lines go on until the freeze
    /// takes effect (writing `tracing_on` takes a while under emulation),
    /// so the fills of those frames were never going to be in the trace.
    /// Seen in a 6.12 guest soak whose injected fault was caught.
    pub(super) fn drop_after_freeze(&mut self) {
        let (true, Some(last)) = (self.instr.violation, self.instr.last_app) else {
            return;
        };
        for r in &self.raws {
            if r.rule == Rule::FirstSeenInRx && r.at.order > last.order {
                self.dropped.insert(r.id);
            }
        }
    }

    /// Whether the trace holds everything since the UMEM's registration
    /// and nothing was lost, so that a frame without history truly has
    /// none; the moment the claim reaches back to.
    fn since_registration(&self) -> Option<At> {
        let r = self.instr.registered?;
        (self.lost == 0 && (self.complete_now == 0 || r.order >= self.complete_now)).then_some(r)
    }

    /// The root finding of `rule` on socket `a`, once one fired.
    pub(super) fn instr_first(&self, rule: Rule, a: Option<ASockId>) -> Option<RawId> {
        self.instr.first.get(&(rule.as_str(), a)).copied()
    }

    /// The root of `rule` on socket `a` (the first finding), to file a
    /// later one under; `None` makes this one the root.
    pub(super) fn instr_fire(&mut self, rule: Rule, a: Option<ASockId>, id: Option<RawId>) {
        let Some(id) = id else { return };
        match self.instr.first.get(&(rule.as_str(), a)) {
            Some(&root) => self.raws[id].link = Link::Consequence(root),
            None => {
                self.instr.first.insert((rule.as_str(), a), id);
            }
        }
    }

    /// A frame with no history came out of RX: its FILL was not recorded
    /// (`instrumentation/first-seen-in-rx`). `kernel`: seen at the kernel's
    /// receive (probes), else at the app's read. Called where the frame is
    /// first seen; does nothing unless the trace starts at the registration
    /// and the socket is the recorder's.
    #[expect(
        clippy::too_many_arguments,
        reason = "the two call sites know different halves"
    )]
    pub(super) fn first_seen_in_rx(
        &mut self,
        ks: Option<KSockId>,
        a: Option<ASockId>,
        addr: u64,
        f: u64,
        slot: Option<u64>,
        at: At,
        kernel: bool,
    ) {
        let a = a.or_else(|| self.ksocks[ks?].asock);
        let Some(a) = a.filter(|a| self.instr.declared.contains(a)) else {
            return;
        };
        let Some(reg) = self.since_registration() else {
            return;
        };
        if self.instr.not_from_start {
            return;
        }
        let how = if kernel {
            format!(
                "the kernel received it into RX at {} (it takes frames only from FILL, or from its pool's free \
                 list, which holds only frames it took from FILL)",
                at.cite()
            )
        } else {
            format!("the application read it from RX at {}", at.cite())
        };
        let expl = format!(
            "Frame {f:#x} (addr {addr:#x}) has no event in the trace before {how}, and the trace holds everything \
             since the UMEM was registered ({}): only the application puts frames on FILL, so it put this one \
             there without recording it. The recording is incomplete, not the kernel wrong. Fix: record every \
             FILL batch, the initial FILL included, before submitting it (xskdbg_fill_ring / Pool::fill), then \
             record again.",
            reg.cite(), f = shown(f));
        let id = self.raw(
            Kind::Instrumentation,
            Verdict::Instrumentation,
            Rule::FirstSeenInRx,
            Some(addr),
            vec![f],
            at,
            vec![at.cpu],
            ks,
            Some(a),
            slot,
            expl,
            reg.order,
            false,
            at.line,
        );
        self.instr_fire(Rule::FirstSeenInRx, Some(a), id);
    }

    /// An `rx` line's descriptor: `true` when it is an all-zero descriptor
    /// on a socket whose ring was poisoned up front, which is then reported
    /// (`instrumentation/outside-ring`) and not taken as a read.
    pub(super) fn read_outside_ring(
        &mut self,
        a: Option<ASockId>,
        d: &Desc,
        pos: Option<u64>,
        at: At,
    ) -> bool {
        let Some(a) = a.filter(|a| self.instr.prepoisoned.contains(a)) else {
            return false;
        };
        if d.addr != 0 || d.len.unwrap_or(0) != 0 || d.options != 0 {
            return false;
        }
        if self.instr.outside_line == at.line {
            return true;
        }
        self.instr.outside_line = at.line;
        let expl = format!(
            "The application recorded an all-zero descriptor (0:0) from RX at {}{}, but every slot of this \
             socket's RX ring was poisoned before the first FILL (its `rxpoison` line) and the kernel writes an \
             address and a non-zero length into a slot before publishing it: the descriptor was not read from the \
             ring. Typically a batch recorded through a pointer into the ring (xsk_ring_cons__rx_desc(&rx, idx)) \
             that runs past the ring's end where the ring wraps. Fix: record with the ring-aware calls \
             (xskdbg_rx_ring, CheckedRx), or copy each descriptor with its masked index, then record again.",
            at.cite(),
            pos.map(|p| format!(" (RX index {p:#x})")).unwrap_or_default()
        );
        let id = self.raw(
            Kind::Instrumentation,
            Verdict::Instrumentation,
            Rule::OutsideRing,
            Some(d.addr),
            Vec::new(),
            at,
            vec![at.cpu],
            None,
            Some(a),
            pos,
            expl,
            at.order,
            false,
            at.line,
        );
        self.instr_fire(Rule::OutsideRing, Some(a), id);
        true
    }

    /// An `rx` line of `n` descriptors at index `idx`: it must continue the
    /// socket's previous one (`instrumentation/rx-index`).
    pub(super) fn rx_index(
        &mut self,
        a: Option<ASockId>,
        idx: Option<u64>,
        first: Option<u64>,
        n: usize,
        at: At,
    ) {
        let (Some(a), Some(idx)) = (a, idx) else {
            return;
        };
        if !self.instr.declared.contains(&a) || n == 0 {
            return;
        }
        let lost = self.lost;
        let next = idx.wrapping_add(n as u64) & 0xffff_ffff;
        let prev = self.instr.rx_next.insert(a, (next, at, lost));
        let Some((want, last, lost_then)) = prev else {
            return;
        };
        if want == idx || lost_then != lost {
            return;
        }
        // Free-running 32-bit counters: ahead or behind, across the wrap.
        let ahead = idx.wrapping_sub(want) & 0xffff_ffff;
        let how = if ahead < 1 << 31 {
            // The slots skipped were read without being recorded: what
            // the kernel wrote there was the application's since.
            if let Some(ks) = self.asocks[a].ks {
                let skipped: Vec<_> = self.ksocks[ks]
                    .q
                    .iter()
                    .filter_map(|e| {
                        let s = e.slot?;
                        (s.wrapping_sub(want) & 0xffff_ffff < ahead).then_some((e.frame, s, e.at))
                    })
                    .take(64)
                    .collect();
                for (g, s, written) in skipped {
                    self.read_unrecorded(g, Some(s), written, at);
                }
            }
            "skips ahead (a batch not recorded, or a masked index after the ring wrapped)"
        } else {
            "goes back (a batch recorded twice, or a masked index)"
        };
        let expl = format!(
            "The application recorded an RX batch at index {idx:#x} at {}, but the socket's previous batch (at {}) \
             ended where index {want:#x} begins: the index {how}. RX indices are the ring's free-running consumer \
             counter and each batch continues the last; a masked index (idx & mask), a batch recorded twice or one \
             not recorded breaks that, and every RX position checked after it is wrong. Fix: pass the index \
             xsk_ring_cons__peek handed out, or use the ring-aware calls (xskdbg_rx_ring, CheckedRx), and record \
             each batch exactly once, then record again.",
            at.cite(),
            last.cite()
        );
        let frames = first.map(|x| vec![self.frame_of(x)]).unwrap_or_default();
        let id = self.raw(
            Kind::Instrumentation,
            Verdict::Instrumentation,
            Rule::RxIndex,
            first,
            frames,
            at,
            vec![at.cpu, last.cpu],
            None,
            Some(a),
            Some(idx),
            expl,
            last.order,
            false,
            at.line,
        );
        self.instr_fire(Rule::RxIndex, Some(a), id);
    }

    /// A recorder `violation` of an instrumentation kind (`rule`).
    pub(super) fn recorder_instrumentation(
        &mut self,
        rule: Rule,
        a: Option<ASockId>,
        addr: u64,
        at: At,
    ) {
        let what = match rule {
            Rule::RecorderNotRecorded => {
                "a frame came out of RX (or COMPLETION) whose FILL (TX) it never recorded. Fix: record every \
                 batch put on FILL and TX, the initial FILL included, before submitting it"
            }
            Rule::RecorderRingIndex => {
                "a ring index that does not continue the previous batch, ends past the producer the app saw, or \
                 lies a ring behind it. Fix: pass the free-running index libxdp's peek/reserve handed out, never \
                 idx & mask, and record each batch exactly once"
            }
            _ => {
                "an all-zero descriptor from an RX ring poisoned before the first FILL: it was read from outside \
                 the ring. Fix: use the ring-aware calls (xskdbg_rx_ring, CheckedRx)"
            }
        };
        let expl = format!(
            "The recorder reported in-process at {}: {what}; then record again. The recording is wrong, not the \
             kernel or the rings' use.",
            at.cite()
        );
        let frames = if addr == 0 && rule == Rule::RecorderReadOutsideRing {
            Vec::new()
        } else {
            vec![self.frame_of(addr)]
        };
        let id = self.raw(
            Kind::Instrumentation,
            Verdict::Instrumentation,
            rule,
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
        // Only the first of a kind stands alone: the recorder reports the
        // first few of each, all of one mistake.
        self.instr_fire(rule, a, id);
    }
}

#[cfg(test)]
mod tests {
    use crate::report::{Kind, OverallVerdict, Report, Verdict};
    use crate::{analyze_reader, Options};

    const DECL: &[&str] = &[
        "0 xskdbg:1 umem umem=1 size=100000 chunk=800 mode=aligned poison=deadbeefdeadbeef",
        "0 xskdbg:1 pool pool=1 umem=1 sk=1:5:0",
        "0 xskdbg:1 sock sk=1:5:0 pool=1 umem=1 fd=9 label=ingress q:0",
    ];

    /// A trace of `lines` (`CPU body`), app lines as `tracing_mark_write`
    /// and `k*` lines as `bpf_trace_printk`, nothing overwritten.
    fn analyze(lines: &[&str]) -> Report {
        let mut t = format!(
            "# tracer: nop\n#\n# entries-in-buffer/entries-written: {0}/{0}   #P:2\n#\n",
            lines.len()
        );
        for (i, l) in lines.iter().enumerate() {
            let (cpu, body) = l.split_once(' ').expect("CPU body");
            let (task, event) =
                if body.starts_with("xskdbg:1 k") || body.starts_with("xskdbg:1 probe") {
                    ("<idle>-0", "bpf_trace_printk")
                } else {
                    ("fwd-100", "tracing_mark_write")
                };
            t += &format!(
                "{task:>20} [{cpu:0>3}] ..... 100.{:06}: {event}: {body}\n",
                10 + i
            );
        }
        analyze_reader(t.as_bytes(), &Options::default()).expect("analyzes")
    }

    fn with_decl(rest: &[&str]) -> Vec<&'static str> {
        DECL.iter()
            .copied()
            .chain(rest.iter().map(|s| &*s.to_string().leak()))
            .collect()
    }

    fn rules(r: &Report) -> Vec<(String, Verdict)> {
        r.findings
            .iter()
            .map(|f| (f.rule.clone(), f.verdict))
            .collect()
    }

    fn no_kernel(r: &Report) {
        for f in &r.findings {
            assert_ne!(f.verdict, Verdict::Kernel, "{}: {}", f.rule, f.explanation);
            for x in f.also.iter().chain(&f.consequences) {
                assert_ne!(x.verdict, Verdict::Kernel, "{} under {}", x.rule, f.rule);
            }
        }
    }

    #[test]
    fn initial_fill_not_recorded_is_instrumentation_without_probes() {
        // The app filled 1000..2800 without recording it, then read two.
        let r = analyze(&with_decl(&[
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=2 d=1100:40,1900:40",
            "0 xskdbg:1 umem umem=1 size=100000 chunk=800 mode=aligned poison=deadbeefdeadbeef",
            "0 xskdbg:1 pool pool=1 umem=1 sk=1:5:0",
            "0 xskdbg:1 sock sk=1:5:0 pool=1 umem=1 label=ingress q:0",
            "0 xskdbg:1 violation kind=not_recorded sk=1:5:0 pool=1 a=1100 frame=1000 from=unknown to=rx label=ingress q:0",
        ]));
        assert_eq!(r.summary.verdict, OverallVerdict::Instrumentation);
        assert_eq!(
            rules(&r),
            [(
                "instrumentation/first-seen-in-rx".to_string(),
                Verdict::Instrumentation
            )]
        );
        let f = &r.findings[0];
        assert_eq!(f.kind, Kind::Instrumentation);
        assert_eq!(f.frame.as_deref(), Some("0x1000"));
        assert!(
            f.explanation.contains("initial FILL included"),
            "{}",
            f.explanation
        );
        // The recorder's own report is the same mistake; the second frame
        // is a consequence of the first.
        assert!(f
            .also
            .iter()
            .any(|x| x.rule == "instrumentation/recorder-not-recorded"));
        assert!(f
            .consequences
            .iter()
            .any(|x| x.rule == "instrumentation/first-seen-in-rx"));
        no_kernel(&r);
    }

    #[test]
    fn initial_fill_not_recorded_with_probes_fires_at_the_kernels_receive() {
        let r = analyze(&with_decl(&[
            "1 xskdbg:1 probe backend=tracepoint kernel=6.18.0 flush=exact rxslot=1 tx=1 comp=1",
            "1 xskdbg:1 krx xs=ffff888001000000 sk=1:5:0 a=1100 len=40 slot=0",
            "1 xskdbg:1 krxdone xs=ffff888001000000 slot=0",
            "1 xskdbg:1 kflush xs=ffff888001000000 sk=1:5:0 prod=1",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=1 d=1100:40",
            "0 xskdbg:1 fill pool=1 sk=1:5:0 n=1 a=1000",
        ]));
        assert_eq!(r.summary.verdict, OverallVerdict::Instrumentation);
        assert_eq!(
            rules(&r),
            [(
                "instrumentation/first-seen-in-rx".to_string(),
                Verdict::Instrumentation
            )]
        );
        assert!(r.findings[0].explanation.contains("the kernel received it"));
        assert_eq!(r.findings[0].line, 9);
        no_kernel(&r);
    }

    #[test]
    fn a_trace_that_does_not_start_at_the_registration_is_not_judged_so() {
        // Frames moved before the `umem` line: the start is not in the trace.
        let r = analyze(&[
            "0 xskdbg:1 fill pool=1 sk=1:5:0 n=1 a=3000",
            DECL[0],
            DECL[1],
            DECL[2],
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=1 d=1100:40",
        ]);
        assert_eq!(r.summary.verdict, OverallVerdict::Clean, "{:?}", rules(&r));
        // No declarations at all (seed-style or hand-written app lines).
        let r = analyze(&["0 xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=1 d=1100:40"]);
        assert_eq!(r.summary.verdict, OverallVerdict::Clean, "{:?}", rules(&r));
    }

    #[test]
    fn an_excerpt_whose_counters_do_not_start_at_0_is_not_from_the_start() {
        // Cut out of a longer trace: the declarations are kept, but the
        // socket had sent 0x159 frames before (tracepoint-early-publish.txt).
        let r = analyze(&with_decl(&[
            "0 xskdbg:1 tx sk=1:5:0 pool=1 idx=159 n=1 d=3100:40",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=15a n=1 d=1100:40",
        ]));
        assert!(
            r.findings.iter().all(|f| f.kind != Kind::Instrumentation),
            "{:?}",
            rules(&r)
        );
        // The kernel's first receive of the socket at slot 0x15a.
        let r = analyze(&with_decl(&[
            "1 xskdbg:1 probe backend=tracepoint kernel=6.18.0 flush=exact rxslot=1 tx=1 comp=1",
            "1 xskdbg:1 krx xs=ffff888001000000 sk=1:5:0 a=1100 len=40 slot=15a",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=15a n=1 d=1100:40",
        ]));
        assert!(
            r.findings.iter().all(|f| f.kind != Kind::Instrumentation),
            "{:?}",
            rules(&r)
        );
    }

    #[test]
    fn a_recorder_declaring_again_before_its_report_is_no_registration() {
        // A buffer whose start is lost: the first `umem` line is the one
        // the recorder writes again right before its violation.
        let r = analyze(&[
            DECL[0],
            DECL[1],
            "0 xskdbg:1 sock sk=1:5:0 pool=1 umem=1 label=ingress q:0",
            "0 xskdbg:1 violation kind=fifo_order sk=1:5:0 pool=1 a=2100 frame=2000 from=fill to=rx expected=1000 remaining=1000,1800 label=ingress q:0",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=7 n=1 d=4100:40",
        ]);
        assert!(
            r.findings
                .iter()
                .all(|f| f.rule != "instrumentation/first-seen-in-rx"),
            "{:?}",
            rules(&r)
        );
    }

    #[test]
    fn ring_wrap_read_on_a_poisoned_ring_is_instrumentation() {
        // A 4-slot ring poisoned up front; the app recorded a batch of 3 from
        // slot 3 through a pointer into the ring: slots "4" and "5" are past
        // its end (zeros), while the real slots 0 and 1 held 2100 and 2900.
        let r = analyze(&with_decl(&[
            "0 xskdbg:1 rxpoison sk=1:5:0 size=4 poison=deadbeefdeadbeef",
            "0 xskdbg:1 fill pool=1 sk=1:5:0 n=4 a=0,800,1000,1800",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=3 d=100:40,900:40,1100:40",
            "0 xskdbg:1 fill pool=1 sk=1:5:0 n=3 a=2000,2800,3000",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=3 n=3 d=1900:40,0:0,0:0",
            "0 xskdbg:1 violation kind=read_outside_ring sk=1:5:0 pool=1 a=0 frame=0 from=unknown to=rx label=ingress q:0",
            // The app forwards what really sat in slots 0 and 1.
            "0 xskdbg:1 tx sk=1:5:0 idx=0 n=2 d=2100:40,2900:40",
        ]));
        assert_eq!(
            r.summary.verdict,
            OverallVerdict::Instrumentation,
            "{:?}",
            rules(&r)
        );
        let f = &r.findings[0];
        assert_eq!(f.rule, "instrumentation/outside-ring");
        assert_eq!(f.addr.as_deref(), Some("0x0"));
        assert_eq!(f.slot, Some(4));
        assert!(f
            .also
            .iter()
            .any(|x| x.rule == "instrumentation/recorder-read-outside-ring"));
        // Frame 0 was not taken as read: no RX -> RX later, no FILL -> RX.
        assert!(r
            .findings
            .iter()
            .all(|f| f.frame.as_deref() != Some("0x0") || f.kind == Kind::Instrumentation));
        no_kernel(&r);
    }

    #[test]
    fn zero_descriptors_on_a_ring_not_poisoned_up_front_are_not_judged_so() {
        let r = analyze(&with_decl(&[
            "0 xskdbg:1 fill pool=1 sk=1:5:0 n=2 a=0,800",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=1 d=0:0",
        ]));
        assert!(
            r.findings.iter().all(|f| f.kind != Kind::Instrumentation),
            "{:?}",
            rules(&r)
        );
    }

    #[test]
    fn an_rx_index_that_does_not_continue_is_instrumentation() {
        let r = analyze(&with_decl(&[
            "0 xskdbg:1 fill pool=1 sk=1:5:0 n=4 a=0,800,1000,1800",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=7fe n=2 d=100:40,900:40",
            // Masked after the wrap: 0 where 800 was due.
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=2 d=1100:40,1900:40",
        ]));
        assert_eq!(
            rules(&r),
            [(
                "instrumentation/rx-index".to_string(),
                Verdict::Instrumentation
            )]
        );
        let e = &r.findings[0].explanation;
        assert!(
            e.contains("index 0x800 begins") && e.contains("goes back"),
            "{e}"
        );
        // Continuing indices, across the 32-bit wrap, and a socket declared
        // again (a new run) are fine.
        let r = analyze(&with_decl(&[
            "0 xskdbg:1 fill pool=1 sk=1:5:0 n=4 a=0,800,1000,1800",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=fffffffe n=2 d=100:40,900:40",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=1 d=1100:40",
            DECL[2],
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=1 d=1900:40",
        ]));
        assert_eq!(r.summary.verdict, OverallVerdict::Clean, "{:?}", rules(&r));
    }

    #[test]
    fn the_recorders_instrumentation_kinds_are_instrumentation() {
        for (kind, rule) in [
            ("ring_index", "instrumentation/recorder-ring-index"),
            ("not_recorded", "instrumentation/recorder-not-recorded"),
            (
                "read_outside_ring",
                "instrumentation/recorder-read-outside-ring",
            ),
        ] {
            let v = format!(
                "0 xskdbg:1 violation kind={kind} sk=1:5:0 pool=1 a=1000 frame=1000 from=unknown to=fill label=ingress q:0"
            );
            let r = analyze(&["0 xskdbg:1 fill pool=1 sk=1:5:0 n=1 a=1000", &v]);
            assert_eq!(rules(&r), [(rule.to_string(), Verdict::Instrumentation)]);
            assert_eq!(r.summary.verdict, OverallVerdict::Instrumentation);
        }
    }

    #[test]
    fn instrumentation_outranks_every_other_summary_verdict() {
        // An application mistake (FILL then TX of one frame) next to an
        // unrecorded FILL: the summary says instrumentation.
        let r = analyze(&with_decl(&[
            "0 xskdbg:1 fill pool=1 sk=1:5:0 n=1 a=1000",
            "0 xskdbg:1 tx sk=1:5:0 idx=0 n=1 d=1000:40",
            "0 xskdbg:1 rx sk=1:5:0 pool=1 idx=0 n=1 d=3100:40",
        ]));
        let verdicts: Vec<Verdict> = r.findings.iter().map(|f| f.verdict).collect();
        assert!(
            verdicts.contains(&Verdict::Application)
                && verdicts.contains(&Verdict::Instrumentation)
        );
        assert_eq!(r.summary.verdict, OverallVerdict::Instrumentation);
        assert_eq!(r.exit_code(), 1);
    }
}
