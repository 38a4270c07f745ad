//! Producer sections: an RX ring has one producer, so two CPUs receiving
//! into one socket at once are the race of the seed story
//! (`concurrent_producer/*`). A CPU's section runs from its first receive
//! to its flush (or the end of its NAPI poll); a receive of another CPU
//! inside it is an overlap. A `krx` that finds its own slot already
//! published proves a second producer without any flush event.

use std::fmt::Write as _;

use super::explain::Expl;
use super::raw::Link;
use super::rules::Rule;
use super::state::{At, KSockId, Section};
use super::Analyzer;
use crate::parse::{FlushMode, KernelOp, RxMode};
use crate::report::{Kind, Verdict};

impl Analyzer {
    /// A flush (`kflush`, `xsk_flush`): closes this CPU's producer
    /// section on the socket.
    #[inline]
    pub(super) fn flushed(&mut self, ks: KSockId, exact: bool, at: At) {
        let exact = exact || !matches!(self.flush_mode, Some(FlushMode::Inferred));
        let why = if exact {
            "its flush"
        } else {
            "its flush (inferred position)"
        };
        self.close_section(ks, at, exact, why);
    }

    /// The end of a NAPI poll: closes every section this CPU had open
    /// (no flush event seen).
    #[inline]
    pub(super) fn poll_ended(&mut self, at: At) {
        let open = self
            .cpus
            .get_mut(&at.cpu)
            .map(|c| std::mem::take(&mut c.open))
            .unwrap_or_default();
        for k in open {
            self.close_section(
                k,
                at,
                false,
                "the end of its NAPI poll (no flush event seen)",
            );
        }
    }

    /// A receive: opens (or extends) this CPU's section, and is an
    /// intruder in every other CPU's open section.
    #[inline]
    pub(super) fn open_section(
        &mut self,
        ks: KSockId,
        at: At,
        f: u64,
        addr: u64,
        slot: Option<u64>,
    ) {
        let k = &mut self.ksocks[ks];
        for s in k.sections.iter_mut() {
            if s.cpu != at.cpu && s.intruders.len() < 8 {
                s.intruders.push((at, f, addr, slot));
            }
        }
        if let Some(s) = k.sections.iter_mut().find(|s| s.cpu == at.cpu) {
            if s.frames.len() < 16 {
                s.frames.push(f);
            }
            if let Some(sl) = slot.filter(|_| s.slots.len() < 16) {
                s.slots.push(sl);
            }
            return;
        }
        let mut s = k.spare_sections.pop().unwrap_or_else(|| Section {
            cpu: at.cpu,
            start: at,
            frames: Vec::with_capacity(16),
            slots: Vec::new(),
            intruders: Vec::new(),
        });
        s.cpu = at.cpu;
        s.start = at;
        s.frames.push(f);
        s.slots.extend(slot);
        k.sections.push(s);
        if let Some(c) = self.cpus.get_mut(&at.cpu) {
            if !c.open.contains(&ks) {
                c.open.push(ks);
            }
        }
    }

    /// The end of this CPU's section on `ks` (`why` says which event):
    /// another CPU's receive inside it is an overlap.
    fn close_section(&mut self, ks: KSockId, at: At, exact: bool, why: &str) {
        let k = &mut self.ksocks[ks];
        k.flush_seen = true;
        let Some(i) = k.sections.iter().position(|s| s.cpu == at.cpu) else {
            return;
        };
        let mut s = k.sections.swap_remove(i);
        if let Some(c) = self.cpus.get_mut(&at.cpu) {
            c.open.retain(|&x| x != ks);
        }
        if !s.intruders.is_empty() {
            self.overlap(ks, &s, at, exact, why);
        }
        // Its vectors serve the socket's next section: a section per NAPI
        // poll, each growing them from nothing (and reallocating them a
        // few times), was about 4% of the checkers' work.
        let k = &mut self.ksocks[ks];
        if k.spare_sections.len() < 4 {
            s.frames.clear();
            s.slots.clear();
            s.intruders.clear();
            k.spare_sections.push(s);
        }
    }

    /// A closed section `s` that other CPUs received into: the overlap.
    fn overlap(&mut self, ks: KSockId, s: &Section, at: At, exact: bool, why: &str) {
        let k = &mut self.ksocks[ks];
        let xs = k.xs;
        let still_open: Vec<String> = k
            .sections
            .iter()
            .map(|o| {
                format!(
                    "CPU {} (open since line {}, {})",
                    o.cpu,
                    o.start.line,
                    o.start.ts_text()
                )
            })
            .collect();
        // The intruding receive's frame first: it is the finding's `addr`.
        let mut frames: Vec<u64> = Vec::new();
        for f in s
            .intruders
            .iter()
            .map(|(_, f, _, _)| f)
            .chain(s.frames.iter())
        {
            if !frames.contains(f) {
                frames.push(*f);
            }
        }
        // Only an exact overlap makes the frames it produced evidence on
        // their own; one whose end is inferred needs a consequence that
        // proves it (`poison::settle_overlaps`).
        for f in frames.iter().filter(|_| exact) {
            if k.racy.len() < 64 && !k.racy.contains(f) {
                k.racy.push(*f);
            }
        }
        let mut slots: Vec<u64> = s.slots.clone();
        slots.extend(s.intruders.iter().filter_map(|i| i.3));
        let (iat, _, iaddr, islot) = s.intruders[0];
        let mut cpus = vec![s.cpu];
        cpus.extend(s.intruders.iter().map(|(a, _, _, _)| a.cpu));
        let mut others = String::new();
        for (a, _, addr, _) in s.intruders.iter().skip(1) {
            let _ = write!(
                others,
                "; CPU {} also received {addr:#x} at {}",
                a.cpu,
                a.cite()
            );
        }
        let mut expl = format!(
            "For xs {xs:#x}, CPU {} opened a producer section with its first receive at {} and closed it with {why} \
             at {}; meanwhile CPU {} received {iaddr:#x} for the same socket at {}{others}. An RX ring has a single \
             producer: with two CPUs producing at once, one CPU's flush publishes the producer index over a slot \
             the other has reserved but not written yet, so user space reads a stale or poisoned descriptor \
             (the veth race of the seed story: veth_poll() called xdp_do_flush() after napi_complete_done(), \
             so another CPU could poll the same queue before the flush; fixed in fa349e396e48).",
            s.cpu,
            s.start.cite(),
            at.cite(),
            iat.cpu,
            iat.cite(),
        );
        if !still_open.is_empty() {
            let _ = write!(
                expl,
                " When CPU {} flushed, {} still had reservations it had not flushed.",
                s.cpu,
                still_open.join(", ")
            );
        }
        let (verdict, rule) = if exact {
            (Verdict::Kernel, Rule::ProducerOverlapFlush)
        } else {
            expl.push_str(
                " The section's end is not an exact flush event (flush=inferred or only a NAPI poll end); a correct \
                 driver can show a short overlap between napi_complete_done and that point, so this is inconclusive.",
            );
            (Verdict::Inconclusive, Rule::ProducerOverlapInferredEnd)
        };
        let r = self.raw(
            Kind::ConcurrentProducer,
            verdict,
            rule,
            Some(iaddr),
            frames,
            iat,
            cpus,
            Some(ks),
            None,
            islot,
            expl,
            // Each CPU's history is complete from its own first event, so the
            // overlap needs nothing older than the intruding receive.
            iat.order,
            false,
            at.line,
        );
        if let Some(r) = r.filter(|_| !exact) {
            self.inferred_overlap(r, ks, s.start, at, slots);
        }
        // The closing flush is evidence too.
        if let Some(r) = self
            .raws
            .last_mut()
            .filter(|r| r.kind == Kind::ConcurrentProducer)
        {
            for e in r
                .timeline
                .iter_mut()
                .filter(|e| e.line() == at.line || e.line() == s.start.line)
            {
                e.highlighted = true;
            }
        }
    }

    /// A `krx` printed after its slot was written (tracepoint backend,
    /// `xdp:xdp_redirect`, driver or zero-copy mode) found the ring's
    /// producer already past that slot: only this CPU's own later flush may
    /// publish it, so another CPU published it, a second producer on one
    /// ring. A poisoned read of that slot seen before this line is tied to it.
    #[inline]
    pub(super) fn early_published(&mut self, ks: KSockId, addr: u64, slot: u64, prod: u64, at: At) {
        let f = self.frame_of(addr);
        let k = &self.ksocks[ks];
        let xs = k.xs;
        let mut cpus = vec![at.cpu];
        let by = match k.last_flush {
            Some((fa, p)) if fa.cpu != at.cpu && ring_after(p, slot) => {
                cpus.push(fa.cpu);
                format!(
                    " The last flush before it was CPU {}'s at {}, which published producer {p:#x}.",
                    fa.cpu,
                    fa.cite()
                )
            }
            _ => String::new(),
        };
        let expl = format!(
            "For xs {xs:#x}, CPU {} received {addr:#x} into slot {slot:#x} at {}, and its xdp_redirect tracepoint, \
             printed after the slot was reserved and written, read the ring's producer already at {prod:#x}: the slot \
             was published before this CPU's own flush.{by} In driver and zero-copy XDP only the reserving CPU's later \
             flush publishes its slots, so another CPU produced into the same RX ring at the same time: while this CPU \
             was between reserving and writing the slot, user space could read it unwritten (the veth race of the seed \
             story: veth_poll() called xdp_do_flush() after napi_complete_done(), so another CPU could poll the same \
             queue before the flush; fixed in fa349e396e48).",
            at.cpu,
            at.cite(),
        );
        let Some(cp) = self.raw(
            Kind::ConcurrentProducer,
            Verdict::Kernel,
            Rule::ProducerPublishedBeforeRedirect,
            Some(addr),
            vec![f],
            at,
            cpus,
            Some(ks),
            None,
            Some(slot),
            expl,
            // The line proves it alone.
            at.order,
            false,
            at.line,
        ) else {
            return;
        };
        let k = &mut self.ksocks[ks];
        if let Some(e) = k.q.back_mut().filter(|e| e.slot == Some(slot)) {
            e.early = true;
            e.early_raw = Some(cp);
        }
        let Some(j) = k.pending_poison.iter().position(|&(s, _)| s == slot) else {
            return;
        };
        let Some((_, ri)) = k.pending_poison.remove(j) else {
            return;
        };
        let cp_id = self.raws[cp].id;
        let r = &mut self.raws[ri];
        r.verdict = Verdict::Kernel;
        r.rule = Rule::PoisonPublishedBeforeRedirect;
        r.explanation = Expl::Text(format!(
            "The application read the poison value {:#x} from RX slot {slot:#x} at {}: a slot it had poisoned after \
             consuming it was handed out again without the kernel's write. Verdict: the slot was published before \
             the kernel wrote it: CPU {}'s receive of {addr:#x} into this slot only returned at {}, and found it \
             already published (producer {prod:#x}), so another CPU's flush had exposed it.",
            r.addr.unwrap_or(0),
            r.at.cite(),
            at.cpu,
            at.cite(),
        ));
        if !r.frames.contains(&f) {
            r.frames.push(f);
        }
        r.frame = r.frames.first().copied();
        if !r.cpus.contains(&at.cpu) {
            r.cpus.push(at.cpu);
            r.cpus.sort_unstable();
        }
        r.link = Link::Consequence(cp_id);
    }
}

/// `(slot, prod)` of a `krx` that proves its slot was published before its
/// own flush: printed after the write (`mode=drv` or `mode=zc`: the
/// tracepoint backend at `xdp:xdp_redirect`; `mode=skb` flushes before the
/// tracepoint, and function probes print no `mode=`) with the producer
/// (`prod=`) already past the slot, so another CPU's flush published it: two
/// producers on one ring, without any flush event (the
/// `concurrent_producer/published-before-redirect` rule). `None` for any
/// other operation.
pub fn published_before_redirect(op: &KernelOp<'_>) -> Option<(u64, u64)> {
    let KernelOp::Rx {
        slot: Some(slot),
        prod: Some(prod),
        mode: Some(RxMode::Drv | RxMode::Zc),
        ..
    } = *op
    else {
        return None;
    };
    (prod <= u64::from(u32::MAX) && slot <= u64::from(u32::MAX) && ring_after(prod, slot))
        .then_some((slot, prod))
}

/// Ring counters are 32-bit and wrap: `a` is past `b` when it is ahead by
/// less than half the counter space.
fn ring_after(a: u64, b: u64) -> bool {
    let d = (a as u32).wrapping_sub(b as u32);
    d != 0 && d < 0x8000_0000
}

#[cfg(test)]
mod tests {
    use super::published_before_redirect;
    use crate::parse::{parse_line, Event, Line, Op};

    /// The rule on a `krx` body as the probes print it (parsed as a whole
    /// line); `None` when the body is no `krx`.
    fn check(body: &[u8], slot: u64) -> Option<u64> {
        let line = [
            b"  xskdbg-1 [000] ..... 1.000000: bpf_trace_printk: ".as_slice(),
            body,
        ]
        .concat();
        match parse_line(1, &line) {
            Line::Event(Event {
                op: Op::Kernel(op), ..
            }) => published_before_redirect(&op)
                .filter(|&(s, _)| s == slot)
                .map(|(_, p)| p),
            _ => None,
        }
    }

    #[test]
    fn a_receive_finding_its_slot_published() {
        // Real lines of the eval kernel (tracepoint backend), bodies only.
        let early = b"xskdbg:1 krx xs=ff34f6ea1f82c400 sk=1002:1267:0 a=16e900 len=46 slot=15d kpool=ff34f6ea1f8b0700 prod=15e fcons=15e mode=drv";
        let normal = b"xskdbg:1 krx xs=ff34f6ea1f82c400 sk=1002:1267:0 a=16e100 len=3e8 slot=15c kpool=ff34f6ea1f8b0700 prod=15c fcons=15d mode=drv";
        assert_eq!(check(early, 0x15d), Some(0x15e));
        assert_eq!(check(normal, 0x15c), None);
        let zc = b"xskdbg:1 krx xs=1 sk=1:2:0 a=100 len=40 slot=4 prod=6 fcons=5 mode=zc\r";
        assert_eq!(check(zc, 4), Some(6));
        // Generic XDP flushes before the tracepoint; fentry prints no mode.
        let skb = b"xskdbg:1 krx xs=1 sk=1:2:0 a=100 len=40 slot=4 prod=5 fcons=5 mode=skb";
        assert_eq!(check(skb, 4), None);
        let fentry = b"xskdbg:1 krx xs=1 sk=1:2:0 a=100 len=40 slot=4 kpool=9 prod=5 fcons=5";
        assert_eq!(check(fentry, 4), None);
        // 32-bit counters wrap; behind is not past.
        let wrap = b"xskdbg:1 krx xs=1 a=100 len=40 slot=ffffffff prod=1 mode=drv";
        assert_eq!(check(wrap, 0xffff_ffff), Some(1));
        let behind = b"xskdbg:1 krx xs=1 a=100 len=40 slot=1 prod=ffffffff mode=drv";
        assert_eq!(check(behind, 1), None);
        assert_eq!(check(b"krx prod=zz mode=drv", 1), None);
        assert_eq!(check(b"mode=drv", 1), None);
    }
}
