//! RX reads: what the application read at each RX position against what
//! the kernel wrote there (`rx_mismatch/*`), and who is to blame for a
//! poisoned slot (`poisoned_descriptor/*`): a slot published before its
//! write, overlapping producers, or a read past the producer.

use std::fmt::Write as _;

use super::explain::Expl;
use super::raw::Link;
use super::rules::Rule;
use super::state::{ASockId, AppHold, At, KRx, KSock, KSockId};
use super::umems::shown;
use super::Analyzer;
use crate::parse::{AddrList, RingState};
use crate::report::{Kind, Verdict};

/// Kernel receives kept per socket for the comparison.
const KQ_CAP: usize = 16384;

/// One read of RX by the application, with what the kernel wrote at that
/// position.
#[derive(Clone, Copy)]
struct Read {
    a: Option<ASockId>,
    ks: Option<KSockId>,
    addr: u64,
    pos: Option<u64>,
    at: At,
    /// The kernel's entry at the read's position (see `kq_take`).
    kernel: Option<KRx>,
    /// The oldest moment the comparison relies on.
    evidence_from: u64,
    /// The position is at or past the last published producer.
    past_producer: bool,
}

impl Analyzer {
    /// A `krx`: the kernel reserved (and, for a tracepoint, wrote) an RX
    /// slot for `addr`; what an application read at that position is
    /// compared with it.
    #[inline]
    pub(super) fn rx_reserved(
        &mut self,
        ks: KSockId,
        f: u64,
        addr: u64,
        slot: Option<u64>,
        at: At,
    ) {
        let taken = self.app_taken;
        let k = &mut self.ksocks[ks];
        k.krx += 1;
        k.q.push_back(KRx {
            frame: f,
            addr,
            slot,
            at,
            written: false,
            published_unwritten: false,
            early: false,
            early_raw: None,
            pub_by: At::default(),
            done: At::default(),
            taken,
        });
        if k.q.len() > KQ_CAP {
            k.q.pop_front();
        }
        if let Some(s) = slot {
            k.unwritten.push_back(s);
            if k.unwritten.len() > KQ_CAP {
                k.unwritten.pop_front();
            }
        }
    }

    /// A `krxdone`: the kernel's write of an RX slot landed.
    #[inline]
    pub(super) fn rx_written(&mut self, ks: KSockId, slot: u64, at: At) {
        let k = &mut self.ksocks[ks];
        k.rxdone_seen = true;
        // The write follows its reservation closely, so look from
        // the newest entry back; when two CPUs reserved the same slot
        // (a broken producer), the writer's own reservation is the
        // one written.
        let want = Some(slot);
        let pos =
            k.q.iter()
                .rposition(|e| e.slot == want && !e.written && e.at.cpu == at.cpu)
                .or_else(|| k.q.iter().rposition(|e| e.slot == want));
        if let Some(i) = pos {
            k.q[i].written = true;
            k.q[i].done = at;
        }
        if let Some(j) = k.unwritten.iter().rposition(|&s| s == slot) {
            k.unwritten.remove(j);
        }
    }

    /// A flush with its producer value: the slots below it are visible
    /// to user space, written or not.
    #[inline]
    pub(super) fn rx_published(&mut self, ks: KSockId, p: u64, at: At) {
        let k = &mut self.ksocks[ks];
        k.published = Some(k.published.map_or(p, |q| q.max(p)));
        k.last_flush = Some((at, p));
        if k.rxdone_seen {
            let KSock { q, unwritten, .. } = k;
            unwritten.retain(|&s| {
                if s >= p {
                    return true;
                }
                for e in q.iter_mut() {
                    if e.slot == Some(s) && !e.written {
                        e.published_unwritten = true;
                        e.pub_by = at;
                    }
                }
                false
            });
        }
    }

    /// The kernel's RX entry at the position of the app's read of frame `f`,
    /// and the oldest moment the comparison relies on.
    ///
    /// With slots (`idx=`/`slot=`) the position is exact. Without, the
    /// sequences are matched in order: RX is a FIFO, so once one read matched
    /// a kernel receive (the anchor), the next read is the next receive,
    /// unless receives were lost because a CPU's buffer had not started yet.
    /// Then a read that matches nothing is not evidence: the entry stays.
    fn kq_take(&mut self, ks: KSockId, f: u64, pos: Option<u64>) -> Option<(KRx, u64)> {
        let complete_now = self.complete_now;
        let Analyzer { ksocks, frames, .. } = self;
        let k = &mut ksocks[ks];
        if let Some(pos) = pos {
            if k.q.front().is_some_and(|e| e.slot.is_some()) {
                while k.q.front().is_some_and(|e| e.slot.is_some_and(|s| s < pos)) {
                    k.q.pop_front();
                }
                if k.q.front().is_some_and(|e| e.slot == Some(pos)) {
                    k.aligned = true;
                    let e = k.q.pop_front()?;
                    return Some((e, e.at.order));
                }
                return None;
            }
        }
        // Receives whose frame the application has taken since were read
        // by a take this queue did not line up with (its receive lost, or
        // read before the app's buffer started): they are not what this
        // read found, and left in place they would keep every later read
        // behind by one.
        while k.q.front().is_some_and(|e| {
            e.frame != f && frames.get(e.frame).is_some_and(|fs| fs.held_at > e.taken)
        }) {
            k.q.pop_front();
        }
        let find = |k: &KSock| k.q.iter().take(256).position(|e| e.frame == f);
        if !k.aligned {
            // The app's first reads may be of frames received before the trace
            // started; align on the first frame both sides saw.
            let i = find(k)?;
            k.q.drain(..i);
            k.aligned = true;
            let e = k.q.pop_front()?;
            k.anchor = Some(e.at.order);
            return Some((e, e.at.order));
        }
        if k.q.front().is_some_and(|e| e.frame == f) {
            let e = k.q.pop_front()?;
            k.anchor = Some(e.at.order);
            return Some((e, e.at.order));
        }
        let judgeable = k.anchor.is_some_and(|a| a >= complete_now);
        let anchor = k.anchor.unwrap_or(0);
        match find(k) {
            Some(i) => {
                // The app read a later entry: the ones before it were skipped.
                let front = k.q.front().copied();
                k.q.drain(..i);
                let e = k.q.pop_front()?;
                k.anchor = Some(e.at.order);
                match front {
                    Some(fr) if judgeable => Some((fr, anchor.min(fr.at.order))),
                    _ => Some((e, e.at.order)),
                }
            }
            None if judgeable => {
                let e = k.q.pop_front()?;
                Some((e, anchor.min(e.at.order)))
            }
            // A receive lost before every CPU's buffer started: keep the entry.
            None => None,
        }
    }

    /// The application read `addr` from RX (at slot `pos`, when known).
    pub(super) fn app_read(
        &mut self,
        a: Option<ASockId>,
        addr: u64,
        from: Option<RingState>,
        pos: Option<u64>,
        at: At,
        recorder: Option<(u64, AddrList<'_>)>,
    ) {
        let poisoned = addr == self.poison;
        self.app_taken += 1;
        let f = self.frame_of(addr);
        if let Some(a) = a {
            self.asocks[a].rx += 1;
            if let Some(p) = pos {
                self.asocks[a].rx_read = Some(p.wrapping_add(1));
            }
            // Seed traces name sockets by label only: join the label to the
            // kernel socket that just received this frame.
            if self.asocks[a].ks.is_none() && !poisoned {
                if let Some(fs) = self.frames.get(f) {
                    if let Some(k) = fs.krx_ks.filter(|_| fs.krx > 0) {
                        self.link(a, k);
                    }
                }
            }
        }
        let ks = a.and_then(|a| self.asocks[a].ks);
        if let Some(k) = ks.filter(|_| !poisoned) {
            if let Some(p) = pos {
                self.skb_read_ahead(k, addr, f, p, at);
            }
            self.attempts_read(k, f, pos);
        }
        let taken_k = ks.and_then(|ks| self.kq_take(ks, f, pos));
        let r = Read {
            a,
            ks,
            addr,
            pos,
            at,
            kernel: taken_k.map(|(e, _)| e),
            evidence_from: taken_k.map_or(at.order, |(_, ev)| ev),
            past_producer: match (pos, ks) {
                (Some(p), Some(k)) => self.ksocks[k].published.is_some_and(|pr| p >= pr),
                _ => false,
            },
        };
        if poisoned {
            self.poisoned_read(&r);
        } else {
            if let Some(e) = r.kernel.filter(|e| e.frame != f) {
                self.mismatched_read(&r, e, f);
            }
            self.rx_taken(a, ks, addr, f, pos, at);
        }
        let _ = from;
        if let Some((exp, rem)) = recorder {
            self.recorder_fifo(a, addr, f, exp, rem, at);
        }
    }

    /// A read of the poison: whose fault is the unwritten slot.
    fn poisoned_read(&mut self, r: &Read) {
        let Read {
            a,
            ks,
            addr,
            pos,
            at,
            kernel: kpos,
            evidence_from: kev,
            past_producer,
        } = *r;
        let racy = ks.is_some_and(|ks| match kpos {
            Some(e) => self.ksocks[ks].racy.contains(&e.frame),
            // No position evidence, but this socket's producers
            // already overlapped: the race exposes such slots.
            None => !self.ksocks[ks].racy.is_empty(),
        });
        // What the application's own index and producer say (`poison`).
        let own = Analyzer::entitlement(self.rx_claim, pos);
        let (verdict, rule, why) = if let Some(back) =
            own.clone().filter(|o| o.1 == Rule::PoisonIndexBack)
        {
            back
        } else if let Some(e) = kpos.filter(|e| e.early) {
            (
                Verdict::Kernel,
                Rule::PoisonPublishedBeforeRedirect,
                format!(
                    "the slot was published before the kernel wrote it: CPU {}'s receive into it returned at {} \
                     and found it already published, so another CPU's flush had exposed it",
                    e.at.cpu,
                    e.at.cite()
                ),
            )
        } else if let Some(e) = kpos.filter(|e| e.published_unwritten) {
            (
                Verdict::Kernel,
                Rule::PoisonPublishedBeforeWrite,
                published_before_write(&e),
            )
        } else if let Some(own) = own {
            own
        } else if racy {
            (Verdict::Kernel, Rule::PoisonConcurrentProducer, "the kernel entry for this position was produced during overlapping producer sections on two CPUs, so a flush could publish it before its write landed".to_string())
        } else if past_producer {
            (
                Verdict::Application,
                Rule::PoisonReadPastProducer,
                "the application read a position the kernel had not published yet".to_string(),
            )
        } else {
            (Verdict::Inconclusive, Rule::PoisonNoEvidence, "no flush or slot evidence says whether the kernel published the slot early or the application read past the producer".to_string())
        };
        let slot_txt = pos.map(|p| format!(" slot {p:#x}")).unwrap_or_default();
        let mut expl = format!(
            "The application read the poison value {addr:#x} from RX{slot_txt} at {}: a slot it had poisoned \
             after consuming it was handed out again without the kernel's write. Verdict: {why}.",
            at.cite()
        );
        let mut frames = Vec::new();
        let mut cpus = vec![at.cpu];
        let mut ev_from = at.order;
        if let Some(e) = kpos {
            // The published-before-write wording already names the
            // reservation and the write.
            if !e.published_unwritten || e.early {
                let _ = write!(
                    expl,
                    " The kernel's entry for this position is {:#x} (reserved at {}).",
                    e.addr,
                    e.at.cite()
                );
            }
            frames.push(e.frame);
            cpus.push(e.at.cpu);
            ev_from = kev;
        }
        let read = self.raw(
            Kind::PoisonedDescriptor,
            verdict,
            rule,
            Some(addr),
            frames.clone(),
            at,
            cpus.clone(),
            ks,
            a,
            pos.or(kpos.and_then(|e| e.slot)),
            expl,
            ev_from,
            false,
            at.line,
        );
        if let Some(ri) = read {
            self.last_poison = Some((a, ri));
            match (kpos, ks, pos) {
                (
                    Some(KRx {
                        early: true,
                        early_raw: Some(cp),
                        ..
                    }),
                    _,
                    _,
                ) => {
                    self.raws[ri].link = Link::Consequence(cp);
                }
                // Nothing received there yet: a later `krx` of this slot
                // may prove it was published early (not when the
                // application's own index already convicts it).
                (None, Some(ks), Some(pos)) if verdict != Verdict::Application => {
                    let k = &mut self.ksocks[ks];
                    if k.pending_poison.len() >= 8 {
                        k.pending_poison.pop_front();
                    }
                    k.pending_poison.push_back((pos, ri));
                }
                _ => {}
            }
        }
        if let Some(e) = kpos {
            let expl = format!("the kernel wrote {:#x} at this RX position ({}) but the application read {addr:#x}", e.addr, e.at.cite());
            let mismatch = self.raw(
                Kind::RxMismatch,
                Verdict::Kernel,
                Rule::RxMismatchPosition,
                Some(addr),
                frames,
                at,
                cpus,
                ks,
                a,
                pos,
                expl,
                ev_from,
                false,
                at.line,
            );
            // The same read: it stays with the poisoned read wherever
            // that goes (its `also`).
            if let (Some(mi), Some(ri)) = (mismatch, read) {
                self.raws[mi].link = Link::Also(ri);
            }
        }
    }

    /// A read of another frame than the kernel wrote at that position.
    fn mismatched_read(&mut self, r: &Read, e: KRx, f: u64) {
        let Read {
            a,
            ks,
            addr,
            pos,
            at,
            evidence_from: kev,
            past_producer,
            ..
        } = *r;
        let (verdict, rule) = if e.early {
            (Verdict::Kernel, Rule::RxMismatchPublishedBeforeRedirect)
        } else if e.published_unwritten {
            (Verdict::Kernel, Rule::RxMismatchPublishedBeforeWrite)
        } else if past_producer {
            (Verdict::Application, Rule::RxMismatchReadPastProducer)
        } else {
            if let Some(w) = self.written_elsewhere(ks, f, pos, &e) {
                self.read_at_other_index(r, e, f, Ok(w));
                return;
            }
            if let Some(root) = self.index_root(a) {
                self.read_at_other_index(r, e, f, Err(root));
                return;
            }
            (Verdict::Kernel, Rule::RxMismatchPosition)
        };
        // Written only if reported: a wrapped trace without slots can make
        // tens of thousands of these before the reads and the receives line
        // up again, and most are never reported.
        let expl = Expl::Later(Box::new(move || {
            let why = match rule {
                Rule::RxMismatchPublishedBeforeRedirect => {
                    "the slot was published before the kernel wrote it: the receive into it found it already \
                     published by another CPU's flush"
                        .to_string()
                }
                Rule::RxMismatchPublishedBeforeWrite => published_before_write(&e),
                Rule::RxMismatchReadPastProducer => {
                    "the application read a position the kernel had not published yet".to_string()
                }
                _ => "the RX ring is written only by the kernel, and what the application found there is not what the kernel wrote (an application reading past the producer index would also show this; no flush/slot event here says it did)".to_string(),
            };
            format!(
                "The kernel wrote frame {:#x} (addr {:#x}) into RX of this socket on CPU {} at {}, but at that \
                 position the application read {addr:#x} at {}. Verdict: {why}.",
                shown(e.frame),
                e.addr,
                e.at.cpu,
                e.at.cite(),
                at.cite(),
            )
        }));
        let read = self.raw(
            Kind::RxMismatch,
            verdict,
            rule,
            Some(addr),
            vec![f, e.frame],
            at,
            vec![at.cpu, e.at.cpu],
            ks,
            a,
            pos.or(e.slot),
            expl,
            kev,
            false,
            at.line,
        );
        if let (Some(ri), Some(cp)) = (read, e.early_raw.filter(|_| e.early)) {
            self.raws[ri].link = Link::Consequence(cp);
        }
    }
}

impl Analyzer {
    /// The kernel's unread receive of frame `f` on `ks` at another slot
    /// than `pos`, if there is one; without slots (receives matched in
    /// order), that the kernel wrote `f` into this socket's RX and the
    /// application had not read it (slot unknown, `at` its last event).
    fn written_elsewhere(
        &self,
        ks: Option<KSockId>,
        f: u64,
        pos: Option<u64>,
        e: &KRx,
    ) -> Option<KRx> {
        let ks = ks?;
        if e.slot.is_none() {
            let fs = self.frames.get(f)?;
            return (fs.krx > 0 && fs.krx_ks == Some(ks)).then_some(KRx {
                frame: f,
                slot: None,
                at: fs.last,
                ..*e
            });
        }
        let pos = pos?;
        self.ksocks[ks]
            .q
            .iter()
            .find(|w| w.frame == f && w.slot.is_some_and(|s| s != pos))
            .copied()
    }

    /// Frame `g`, which the kernel wrote into RX (at `slot`, when known) at
    /// `written`, was read without being recorded (seen at `seen`): the
    /// application holds it since, and findings that rested on it sitting
    /// unread in RX are no proof.
    pub(super) fn read_unrecorded(&mut self, g: u64, slot: Option<u64>, written: At, seen: At) {
        if let Some(fs) = self.frames.get_mut(g) {
            if fs.krx > 0 {
                fs.krx -= 1;
                if fs.kernel_copies() == 0 {
                    fs.app = AppHold::Rx;
                }
            }
        }
        self.taken_unrecorded(g, written, || {
            let slot = slot.map(|s| format!(" slot {s:#x}")).unwrap_or_default();
            format!(
                " But the kernel had written frame {:#x} into RX{slot} at {}, and the application's later \
                 reads show it read without being recorded ({}): it may have read this frame before, so this \
                 is no proof against the application.",
                shown(g),
                written.cite(),
                seen.cite()
            )
        });
    }

    /// The application took frame `g` out of a kernel ring (RX or
    /// COMPLETION) since `since` without recording it, as `sentence` says
    /// (written only if a finding takes it):
    /// a finding since that rested on `g` still being the kernel's (the
    /// application moving a frame the kernel owned) may be about a frame
    /// the application had taken. No proof against the application, then.
    pub(super) fn taken_unrecorded(
        &mut self,
        g: u64,
        since: At,
        sentence: impl FnOnce() -> String,
    ) {
        // Once per frame and moment: a frame left behind in a FIFO order is
        // passed by every later completion.
        if self.unrecorded_walked.len() >= 1 << 16 {
            self.unrecorded_walked.clear();
        }
        if !self.unrecorded_walked.insert((g, since.order)) {
            return;
        }
        const RESTS_ON_KERNEL_OWNED: &[Rule] = &[
            Rule::AppIntoKernelOwned,
            Rule::AppReusesKernelOwned,
            Rule::TxWhileKernelOwned,
            Rule::FillWhileKernelOwned,
            Rule::RecorderViolation,
        ];
        let mut sentence = Some(sentence);
        let mut text = String::new();
        for r in self.raws.iter_mut().rev() {
            if r.at.order < since.order {
                break;
            }
            if r.verdict != Verdict::Application
                || !RESTS_ON_KERNEL_OWNED.contains(&r.rule)
                || !r.frames.contains(&g)
            {
                continue;
            }
            if let Some(s) = sentence.take() {
                text = s();
            }
            r.verdict = Verdict::Inconclusive;
            r.explanation.text_mut().push_str(&text);
        }
    }

    /// Where this socket's recorded RX indices were first shown to
    /// disagree with the kernel's slots (`rx_mismatch/index`), if they were.
    fn index_root(&self, a: Option<ASockId>) -> Option<At> {
        a?;
        let root = self.instr_first(Rule::RxMismatchIndex, a)?;
        Some(self.raws[root].at)
    }

    /// A read of frame `f` at recorded index `pos`, where the kernel wrote
    /// `e`, of a frame the kernel wrote at slot `w` (unread); or, `Err`, on
    /// a socket whose indices were shown off at that moment before. The ring holds
    /// what the kernel wrote; the index the application recorded disagrees
    /// with it. A batch read but not recorded, its indices counted by the
    /// recorder (`Sock::rx`), shifts every later index by its length: every
    /// later read then looks like this one. Proving the kernel wrong would
    /// take the same frame in two slots; its own records show it in one.
    /// One mistake: the first is the root, every later one its consequence.
    #[cold]
    fn read_at_other_index(&mut self, r: &Read, e: KRx, f: u64, w: Result<KRx, At>) {
        let Read {
            a,
            ks,
            addr,
            pos,
            at,
            evidence_from: kev,
            ..
        } = *r;
        let p = pos.unwrap_or_default();
        let expl = Expl::Later(Box::new(move || {
            let read = format!(
                "The application recorded reading frame {:#x} (addr {addr:#x}) at RX index {p:#x} at {}, where the \
                 kernel wrote frame {:#x} (addr {:#x}) at {}.",
                shown(f),
                at.cite(),
                shown(e.frame),
                e.addr,
                e.at.cite(),
            );
            let why = match w {
                Ok(w) => format!(
                    "The kernel wrote frame {:#x} itself{} at {}, and the application had not read it: what it \
                     read matches the kernel's writes, at another index than the one it recorded. Either the \
                     recorded index is not the ring's (a batch read but not recorded while the recorder counts \
                     the indices itself, Sock::rx: every later index is then off by that batch's length), or \
                     the kernel wrote the frame to another slot than the one it reserved; the trace cannot say \
                     which.",
                    shown(f),
                    w.slot.map(|s| format!(" at slot {s:#x}")).unwrap_or_default(),
                    w.at.cite(),
                ),
                Err(root) => format!(
                    "This socket's recorded RX indices already disagreed with the kernel's slots at {} (a read \
                     matching a kernel write at another index), so a comparison by index is no evidence here.",
                    root.cite()
                ),
            };
            format!(
                "{read} {why} Fix: record every batch read from RX with the ring's consumer index \
                 (Sock::rx_at_prod, xskdbg_rx_prod): the recorder then reports a batch left out as a ring_index \
                 violation."
            )
        }));
        let (cpus, from) = match w {
            Ok(w) => (vec![at.cpu, e.at.cpu, w.at.cpu], kev.min(w.at.order)),
            Err(_) => (vec![at.cpu, e.at.cpu], kev),
        };
        if w.is_ok() {
            // The kernel's entry at the recorded index (or next in order):
            // read, unrecorded.
            self.read_unrecorded(e.frame, e.slot.or(pos), e.at, at);
        }
        let id = self.raw(
            Kind::RxMismatch,
            Verdict::Inconclusive,
            Rule::RxMismatchIndex,
            Some(addr),
            vec![f, e.frame],
            at,
            cpus,
            ks,
            a,
            pos,
            expl,
            from,
            false,
            at.line,
        );
        self.instr_fire(Rule::RxMismatchIndex, a, id);
    }
}

/// Why a read of a slot published before its write is the kernel's: the
/// flush that published it, the reservation and the write.
pub(super) fn published_before_write(e: &KRx) -> String {
    let slot = e.slot.map(|s| format!(" {s:#x}")).unwrap_or_default();
    let wrote = if e.done.line != 0 {
        format!("wrote only at {}", e.done.cite())
    } else {
        "had not written when it was read".to_string()
    };
    if e.pub_by.line != 0 {
        format!(
            "CPU {}'s flush at {} published slot{slot}, which CPU {} had reserved for {:#x} at {} and {wrote}",
            e.pub_by.cpu,
            e.pub_by.cite(),
            e.at.cpu,
            e.addr,
            e.at.cite(),
        )
    } else {
        format!(
            "a flush published slot{slot} before the kernel's write of it landed: CPU {} had reserved it for \
             {:#x} at {} and {wrote}",
            e.at.cpu,
            e.addr,
            e.at.cite(),
        )
    }
}
