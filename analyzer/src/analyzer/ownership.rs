//! Ownership: where each frame is (how many copies each ring holds, who
//! holds it on the application side) and whether each move is one the
//! rings allow. A frame put where it already is, or in a second place while
//! the kernel still owns it, is a duplicate (`duplicate_in_flight/*`); a
//! move from the wrong place is an invalid transition
//! (`invalid_transition/*`), blamed on whoever made the move.

use super::explain::Expl;
use super::rules::Rule;
use super::state::{ASockId, AppHold, At, Frame, KSockId, Place, PoolId};
use super::umems::shown;
use super::Analyzer;
use crate::parse::RingState;
use crate::report::{Kind, Verdict};
use rustc_hash::FxHashMap;

/// Refused TX descriptors remembered for a completion that may come: past
/// this many, new ones are not (a kernel that never completes them would
/// otherwise grow the map for ever).
const REFUSED_MAX: usize = 1 << 16;

/// Kernel TX reads of frames the record did not show on TX, kept at most
/// (`ktx_unsent`): each one is an application mistake or a kernel one, and
/// a trace with this many has a recording problem the first ones show.
const KTX_UNSENT_MAX: usize = 1 << 16;

/// A kernel read from TX of a frame the record did not show on TX.
#[derive(Clone, Copy)]
pub(super) struct KtxUnsent {
    /// The `ktx`.
    read: At,
    /// The frame's last event before it, and where it was then.
    since: At,
    place: Place,
    state: &'static str,
}

impl Analyzer {
    /// The frame's move of a kernel receive: off FILL, onto RX.
    #[inline]
    pub(super) fn kernel_received(
        &mut self,
        ks: KSockId,
        f: u64,
        addr: u64,
        slot: Option<u64>,
        at: At,
    ) {
        let k = &self.ksocks[ks];
        let pool = k.asock.and_then(|a| self.asocks[a].pool);
        let seen_fill = self.seen_fill;
        self.settle(f);
        let Some(fs) = self.frames.get_mut(f) else {
            let mut fs = Frame::new(at);
            fs.krx = 1;
            fs.krx_ks = Some(ks);
            self.frames.insert(f, fs);
            self.first_seen_in_rx(Some(ks), None, addr, f, slot, at, true);
            return;
        };
        let prev = fs.last;
        fs.last = at;
        fs.krx_ks = Some(ks);
        if fs.fill > 0 {
            fs.fill -= 1;
            fs.krx += 1;
            // The FILL order the frame is in is its own pool's: a receive
            // line without `sk=` (tracefs, seed probes) names no pool until
            // the application's first read joins its socket, and with two
            // queues per device the frame may have moved pools since.
            if let Some(pool) = fs.fill_pool.or(pool) {
                self.fifo_consume(pool, f, true);
            }
            return;
        }
        let was = fs.place();
        let state = fs.state_name();
        let twice = fs.krx > 0;
        let held = fs.kernel_copies() == 0 && fs.app != AppHold::No;
        fs.krx += 1;
        if !seen_fill {
            return; // fills are not traced: nothing to compare with
        }
        if held {
            let a = self.ksocks[ks].asock;
            self.received_while_held(ks, a, f, addr, slot, was, state, prev, at);
            return;
        }
        let xs = self.ksocks[ks].xs;
        let (kind, rule, what) = if twice {
            (
                Kind::DuplicateInFlight,
                Rule::RxTwice,
                "a second time while its first copy was still on RX",
            )
        } else {
            (
                Kind::InvalidTransition,
                Rule::NotFromFill,
                "without it being on FILL",
            )
        };
        let expl = Expl::Later(Box::new(move || {
            format!(
                "The kernel received frame {f:#x} (addr {addr:#x}) into RX of xs {xs:#x} on CPU {} at {} {what}: \
                 the trace shows it {was} since {} ({state} -> RX). The kernel produced a frame it had not been given, \
                 so the same frame is now in two places.",
                at.cpu,
                at.ts_text(),
                prev.cite(), f = shown(f))
        }));
        self.raw(
            kind,
            Verdict::Kernel,
            rule,
            Some(addr),
            vec![f],
            at,
            vec![at.cpu, prev.cpu],
            Some(ks),
            None,
            slot,
            expl,
            prev.order,
            false,
            at.line,
        );
        let expl = Expl::Later(Box::new(move || {
            format!(
                "frame {f:#x} came out of RX but was not outstanding on FILL ({state} -> RX)",
                f = shown(f)
            )
        }));
        self.raw(
            Kind::FifoOrder,
            Verdict::Kernel,
            Rule::NotOutstanding,
            Some(addr),
            vec![f],
            at,
            vec![at.cpu],
            Some(ks),
            None,
            slot,
            expl,
            prev.order,
            false,
            at.line,
        );
    }

    /// The kernel received frame `f` while the record shows the
    /// application holding it (read from RX or COMPLETION, held, freed)
    /// and no kernel ring holding it. The kernel takes frames from FILL
    /// only up to the producer the application sets (or from its free
    /// list, of frames it took from FILL): either the application put the
    /// frame on FILL without recording it (a forgotten fill call: the
    /// usual cause), or the kernel handed out a frame it had not been
    /// given. Nothing in the trace proves the record complete, so this is
    /// no proof against the kernel. One forgotten batch touches each of
    /// its frames: the first is the root.
    #[cold]
    #[expect(
        clippy::too_many_arguments,
        reason = "the caller has the frame's history at hand"
    )]
    fn received_while_held(
        &mut self,
        ks: KSockId,
        a: Option<ASockId>,
        f: u64,
        addr: u64,
        slot: Option<u64>,
        was: Place,
        state: &'static str,
        prev: At,
        at: At,
    ) {
        let xs = self.ksocks[ks].xs;
        let expl = Expl::Later(Box::new(move || {
            format!(
                "The kernel received frame {f:#x} (addr {addr:#x}) into RX of xs {xs:#x} at {}, but the \
                 application never recorded putting it on FILL: the trace shows it {was} since {} ({state} -> \
                 RX). The kernel takes frames from FILL, up to the producer the application sets, so either the \
                 application put the frame on FILL without recording it (a forgotten fill call: the usual \
                 cause) or the kernel handed out a frame the application still held; the trace cannot say \
                 which. Fix: record every batch put on FILL, the first one included, before submitting it \
                 (Pool::fill, xskdbg_fill). If every batch is recorded, the kernel handed out a frame it was \
                 not given.",
                at.cite(),
                prev.cite(),
                f = shown(f)
            )
        }));
        let id = self.raw(
            Kind::InvalidTransition,
            Verdict::Inconclusive,
            Rule::NotFromFillHeld,
            Some(addr),
            vec![f],
            at,
            vec![at.cpu, prev.cpu],
            Some(ks),
            a,
            slot,
            expl,
            prev.order,
            false,
            at.line,
        );
        self.instr_fire(Rule::NotFromFillHeld, a, id);
    }

    /// The app's stated `from` state contradicts where it holds the frame.
    fn claimed_mismatch(fs: &Frame, from: Option<RingState>) -> bool {
        let Some(from) = from else { return false };
        let actual = match fs.app {
            AppHold::Rx => RingState::Rx,
            AppHold::Comp => RingState::Comp,
            AppHold::Held => RingState::Held,
            AppHold::Free => RingState::Free,
            AppHold::No => return false,
        };
        from != actual && !matches!(from, RingState::Unknown)
    }

    /// The app put `addr` on FILL of pool `p`.
    pub(super) fn app_fill(
        &mut self,
        a: Option<ASockId>,
        p: PoolId,
        addr: u64,
        from: Option<RingState>,
        at: At,
    ) {
        if addr == self.poison {
            return;
        }
        self.seen_fill = true;
        let f = self.frame_of(addr);
        self.fill_queued(p, f, at);
        self.settle(f);
        let Some(fs) = self.frames.get_mut(f) else {
            let mut fs = Frame::new(at);
            fs.fill = 1;
            fs.fill_pool = Some(p);
            self.frames.insert(f, fs);
            return;
        };
        fs.fill_pool = Some(p);
        let prev = fs.last;
        let was = fs.place();
        let state = fs.state_name();
        let dup = fs.kernel_copies() > 0;
        if matches!(fs.app, AppHold::Rx | AppHold::Comp | AppHold::Held) {
            // How long the app kept a frame it did give back: the yardstick
            // for "never came back" (an app's own free list is not traced).
            self.max_return_hold = self
                .max_return_hold
                .max(self.app_taken.saturating_sub(fs.held_at));
            Self::note_return(&mut self.last_return, f, self.app_taken);
        }
        let mismatch = !dup && Self::claimed_mismatch(fs, from);
        fs.fill += 1;
        fs.app = AppHold::No;
        fs.last = at;
        if dup {
            self.app_dup(a, addr, f, "FILL", was, state, prev, at);
        } else if mismatch {
            self.claimed(a, addr, f, from, "FILL", was, prev, at);
        }
    }

    /// The app put a frame the kernel owns on `ring`: a duplicate, or a
    /// forbidden move that is one too.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per rule; a struct would only rename the same fields"
    )]
    fn app_dup(
        &mut self,
        a: Option<ASockId>,
        addr: u64,
        f: u64,
        ring: &str,
        was: Place,
        state: &str,
        prev: At,
        at: At,
    ) {
        let expl = format!(
            "The application put frame {f:#x} (addr {addr:#x}) on {ring} at {} while the kernel still owned it: \
             the trace shows it {was} since {}. The same frame is now in two kernel-owned places, which corrupts \
             packets (the AF_XDP FAQ case); the application made this move.",
            at.cite(),
            prev.cite(), f = shown(f));
        let cpus = vec![at.cpu, prev.cpu];
        if state == ring {
            // The same ring twice: a duplicate, not a forbidden move.
            let rule = if ring == "FILL" {
                Rule::FillTwice
            } else {
                Rule::TxTwice
            };
            self.raw(
                Kind::DuplicateInFlight,
                Verdict::Application,
                rule,
                Some(addr),
                vec![f],
                at,
                cpus,
                None,
                a,
                None,
                expl,
                prev.order,
                false,
                at.line,
            );
            return;
        }
        // A forbidden move (FILL -> TX, TX -> FILL before completion, ...)
        // that also leaves the frame in two places.
        self.raw(
            Kind::InvalidTransition,
            Verdict::Application,
            Rule::AppIntoKernelOwned,
            Some(addr),
            vec![f],
            at,
            cpus.clone(),
            None,
            a,
            None,
            format!("{state} -> {ring}: {expl}"),
            prev.order,
            false,
            at.line,
        );
        let short = format!("frame {f:#x} is now both {was} and on {ring}", f = shown(f));
        let rule = if ring == "FILL" {
            Rule::FillWhileKernelOwned
        } else {
            Rule::TxWhileKernelOwned
        };
        self.raw(
            Kind::DuplicateInFlight,
            Verdict::Application,
            rule,
            Some(addr),
            vec![f],
            at,
            cpus,
            None,
            a,
            None,
            short,
            prev.order,
            false,
            at.line,
        );
    }

    /// The app's bookkeeping (`from`) disagrees with the frame's history.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per rule; a struct would only rename the same fields"
    )]
    fn claimed(
        &mut self,
        a: Option<ASockId>,
        addr: u64,
        f: u64,
        from: Option<RingState>,
        to: &str,
        was: Place,
        prev: At,
        at: At,
    ) {
        let from = from.map_or("?", RingState::name);
        let expl = format!(
            "The application says frame {f:#x} (addr {addr:#x}) moved {from} -> {to} at {}, but the trace shows it \
             {was} since {}. The app's own bookkeeping disagrees with its ring operations; no kernel event is \
             involved, so the trace cannot say which side is wrong.",
            at.cite(),
            prev.cite(), f = shown(f));
        self.raw(
            Kind::InvalidTransition,
            Verdict::Inconclusive,
            Rule::ClaimedFrom,
            Some(addr),
            vec![f],
            at,
            vec![at.cpu, prev.cpu],
            None,
            a,
            None,
            expl,
            prev.order,
            false,
            at.line,
        );
    }

    /// The frame's move of an application read: off RX (or FILL, when its
    /// receive is not in the trace), into the app's hands.
    #[inline]
    pub(super) fn rx_taken(
        &mut self,
        a: Option<ASockId>,
        ks: Option<KSockId>,
        addr: u64,
        f: u64,
        pos: Option<u64>,
        at: At,
    ) {
        let taken = self.app_taken;
        let tracing_kernel = ks.is_some_and(|ks| self.ksocks[ks].krx > 0);
        let seen_fill = self.seen_fill;
        let pool = a.and_then(|a| self.asocks[a].pool);
        self.settle(f);
        match self.frames.get_mut(f) {
            None => {
                let mut fs = Frame::new(at);
                fs.app = AppHold::Rx;
                fs.held_at = taken;
                fs.held_addr = addr;
                self.frames.insert(f, fs);
                if !tracing_kernel {
                    self.first_seen_in_rx(ks, a, addr, f, pos, at, false);
                }
            }
            Some(fs) => {
                let prev = fs.last;
                fs.last = at;
                if fs.krx > 0 {
                    fs.krx -= 1;
                    fs.app = AppHold::Rx;
                    fs.held_at = taken;
                    fs.held_addr = addr;
                } else if fs.fill > 0 {
                    // Its kernel receive is not in the trace (not traced, or
                    // lost before every CPU's buffer had started). If the
                    // kernel really handed out a frame it had not received,
                    // the RX position check above says so; the frame's next
                    // receive from FILL then shows as that finding's
                    // consequence.
                    fs.fill -= 1;
                    fs.app = AppHold::Rx;
                    fs.held_at = taken;
                    fs.held_addr = addr;
                    // The FILL order the frame is in: its own pool's.
                    if let Some(pool) = fs.fill_pool.or(pool) {
                        if tracing_kernel {
                            self.fifo_forget(pool, f);
                        } else {
                            self.fifo_consume(pool, f, false);
                        }
                    }
                } else if seen_fill {
                    let was = fs.place();
                    let state = fs.state_name();
                    fs.app = AppHold::Rx;
                    fs.held_at = taken;
                    fs.held_addr = addr;
                    let expl = format!(
                        "The application read frame {f:#x} (addr {addr:#x}) from RX at {}, but the trace shows it \
                         {was} since {} and never put on FILL again ({state} -> RX). Only the kernel produces RX, \
                         so the kernel handed out a frame it did not own.",
                        at.cite(),
                        prev.cite(), f = shown(f));
                    self.raw(
                        Kind::InvalidTransition,
                        Verdict::Kernel,
                        Rule::RxNotGiven,
                        Some(addr),
                        vec![f],
                        at,
                        vec![at.cpu, prev.cpu],
                        ks,
                        a,
                        pos,
                        expl,
                        prev.order,
                        false,
                        at.line,
                    );
                    let expl = format!("frame {f:#x} came out of RX but was not outstanding on FILL ({state} -> RX)", f = shown(f));
                    self.raw(
                        Kind::FifoOrder,
                        Verdict::Kernel,
                        Rule::NotOutstanding,
                        Some(addr),
                        vec![f],
                        at,
                        vec![at.cpu],
                        ks,
                        a,
                        pos,
                        expl,
                        prev.order,
                        false,
                        at.line,
                    );
                } else {
                    fs.app = AppHold::Rx;
                    fs.held_at = taken;
                    fs.held_addr = addr;
                }
            }
        }
    }

    /// The app took from COMPLETION an address the trace never shows on TX.
    /// With the whole recording in the trace (not wrapped) and a recorded
    /// send still due, this is no missing `tx` line alone: either the
    /// kernel completed an address it was not sending, or the program sent
    /// it without recording it. (6.18's generic transmit keeps one
    /// completion address as `addr | 1` and drops bit 0 on the way back: an
    /// odd unaligned address completes as its even neighbour.) The
    /// recorder's `not_recorded` about it is this same observation.
    #[cold]
    fn comp_never_sent(&mut self, a: Option<ASockId>, f: u64, addr: u64, at: At) {
        if self.entries.is_some_and(|(inb, w)| w > inb) || at.order < self.complete_now {
            return;
        }
        let due = self
            .asocks
            .iter()
            .flat_map(|s| s.tx_fifo.front())
            .filter(|e| self.frames.get(e.0).is_some_and(|fs| fs.tx > 0))
            .min_by_key(|e| e.1.order)
            .map(|e| (e.0, e.1));
        let Some((yf, yat)) = due else { return };
        if self.comp_unsent.len() < REFUSED_MAX {
            self.comp_unsent.insert((f, addr));
        }
        let expl = format!(
            "The application took {addr:#x} from COMPLETION at {}, an address the trace never shows on TX, while \
             frame {:#x}, put on TX at {}, has not come back. Either the kernel completed an address it was not \
             sending (on 6.18 generic transmit was seen completing an odd unaligned address as its even neighbour), \
             or the program put {addr:#x} on TX without recording it; without kernel completion events the trace \
             cannot say which.",
            at.cite(),
            shown(yf),
            yat.cite()
        );
        self.raw(
            Kind::InvalidTransition,
            Verdict::Inconclusive,
            Rule::CompNotSent,
            Some(addr),
            vec![f, yf],
            at,
            vec![at.cpu, yat.cpu],
            None,
            a,
            None,
            expl,
            yat.order,
            false,
            at.line,
        );
    }

    /// A TX descriptor the kernel refuses (`xskdbg_format::reject`): its
    /// address may come back on COMPLETION.
    pub(super) fn note_refused(&mut self, addr: u64) {
        let f = self.frame_of(addr);
        if self.refused.len() < REFUSED_MAX {
            *self.refused.entry((f, addr)).or_insert(0) += 1;
        }
    }

    /// A completion handed refused descriptor (`f`, `addr`) back: a
    /// recorder violation about it is no evidence (`refused_explains`).
    fn note_refused_back(&mut self, f: u64, addr: u64) {
        if self.refused_back.len() < REFUSED_MAX {
            self.refused_back.insert((f, addr));
        }
    }

    /// Removes one refused descriptor of frame `f` at `addr`; whether there
    /// was one.
    #[inline]
    fn take_refused(
        refused: &mut FxHashMap<(u64, u64), u32>,
        completed: &mut u64,
        f: u64,
        addr: u64,
    ) -> bool {
        if refused.is_empty() {
            return false;
        }
        let Some(n) = refused.get_mut(&(f, addr)) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            refused.remove(&(f, addr));
        }
        *completed += 1;
        true
    }

    /// The app put `addr` on TX.
    pub(super) fn app_tx(
        &mut self,
        a: Option<ASockId>,
        addr: u64,
        from: Option<RingState>,
        at: At,
    ) {
        if addr == self.poison {
            return;
        }
        self.seen_tx = true;
        let f = self.frame_of(addr);
        if !self.ktx_unsent.is_empty() {
            // Recorded after the kernel read it: a line written after the
            // fact, not a send left out.
            self.ktx_unsent.remove(&f);
        }
        self.comp_resent(f);
        // The sender is not known for sure (see `ring_sock`): its place in
        // a socket's TX order is not either.
        let order_as = a.filter(|_| !self.order_blind);
        if let Some(a) = order_as {
            self.tx_queued(a, f, at);
        }
        self.settle(f);
        let Some(fs) = self.frames.get_mut(f) else {
            let mut fs = Frame::new(at);
            fs.tx = 1;
            fs.tx_as = order_as;
            self.frames.insert(f, fs);
            return;
        };
        let prev = fs.last;
        let was = fs.place();
        let state = fs.state_name();
        let dup = fs.kernel_copies() > 0;
        if matches!(fs.app, AppHold::Rx | AppHold::Comp | AppHold::Held) {
            // How long the app kept a frame it did give back: the yardstick
            // for "never came back" (an app's own free list is not traced).
            self.max_return_hold = self
                .max_return_hold
                .max(self.app_taken.saturating_sub(fs.held_at));
            Self::note_return(&mut self.last_return, f, self.app_taken);
        }
        let mismatch = !dup && Self::claimed_mismatch(fs, from);
        fs.tx += 1;
        fs.tx_as = order_as;
        fs.app = AppHold::No;
        fs.last = at;
        if dup {
            self.app_dup(a, addr, f, "TX", was, state, prev, at);
        } else if mismatch {
            self.claimed(a, addr, f, from, "TX", was, prev, at);
        }
    }

    /// The kernel completed `addr` (put it on COMPLETION).
    #[inline]
    pub(super) fn kernel_comp(&mut self, ks: Option<KSockId>, addr: u64, at: At) {
        let f = self.frame_of(addr);
        let seen_tx = self.seen_tx;
        self.settle(f);
        let Some(fs) = self.frames.get_mut(f) else {
            let mut fs = Frame::new(at);
            fs.kcomp = 1;
            self.frames.insert(f, fs);
            return;
        };
        let prev = fs.last;
        fs.last = at;
        if fs.tx > 0 {
            fs.tx -= 1;
            fs.kcomp += 1;
            let a = fs.tx_as;
            self.tx_fifo_check(a, f, addr, at, false);
            self.comp_produced(a, f, at);
            return;
        }
        fs.kcomp += 1;
        if !seen_tx {
            return;
        }
        let was = fs.place();
        let state = fs.state_name();
        let a = fs.tx_as;
        if Self::take_refused(&mut self.refused, &mut self.refused_completed, f, addr) {
            // A refused descriptor handed back (see `refused`).
            self.note_refused_back(f, addr);
            return;
        }
        if let Some(read) = self.ktx_unsent.remove(&f) {
            self.kcomp_tx_unrecorded(ks, a, f, addr, read, at);
            return;
        }
        let expl = format!(
            "The kernel completed frame {f:#x} (addr {addr:#x}) at {}, but the trace shows it {was} since {}, \
             not on TX ({state} -> COMP): the kernel returned a frame it was not sending.",
            at.cite(),
            prev.cite(), f = shown(f));
        self.raw(
            Kind::InvalidTransition,
            Verdict::Kernel,
            Rule::KcompNotSent,
            Some(addr),
            vec![f],
            at,
            vec![at.cpu, prev.cpu],
            ks,
            None,
            None,
            expl,
            prev.order,
            false,
            at.line,
        );
    }

    /// The kernel read frame `f` from TX (`ktx`) at `at` while the record
    /// showed it elsewhere (`was`: since when, where, the state's name):
    /// remembered until its completion (`ktx_unsent`).
    pub(super) fn ktx_unrecorded(&mut self, f: u64, at: At, was: (At, Place, &'static str)) {
        if self.ktx_unsent.len() < KTX_UNSENT_MAX || self.ktx_unsent.contains_key(&f) {
            let (since, place, state) = was;
            self.ktx_unsent.insert(
                f,
                KtxUnsent {
                    read: at,
                    since,
                    place,
                    state,
                },
            );
        }
    }

    /// A kernel completion of a frame not on TX that the kernel had read
    /// from TX (`read`). The kernel reads TX only up to the producer the
    /// application sets, so either the application put the frame there
    /// without recording the batch (a forgotten call: the usual cause) or
    /// the kernel read a slot that was never produced; the record cannot
    /// say which, so this is no proof against the kernel. One forgotten
    /// batch touches each of its frames: the first is the root.
    #[cold]
    fn kcomp_tx_unrecorded(
        &mut self,
        ks: Option<KSockId>,
        a: Option<ASockId>,
        f: u64,
        addr: u64,
        k: KtxUnsent,
        at: At,
    ) {
        let KtxUnsent {
            read,
            since,
            place,
            state,
        } = k;
        let expl = format!(
            "The kernel completed frame {f:#x} (addr {addr:#x}) at {}, after reading it from TX at {}, but the \
             application never recorded putting it on TX: when the kernel read it, the trace showed it {place} \
             since {} ({state} -> TX). The kernel reads TX only up to the producer the application sets, so \
             either the application sent the frame without recording that batch (a forgotten tx call: the \
             usual cause) or the kernel read a TX slot that was never produced; the trace cannot say which. \
             Fix: record every batch put on TX before submitting it, with its ring index (Sock::tx_at, \
             xskdbg_tx): the recorder then reports a batch left out as a ring_index violation.",
            at.cite(),
            read.cite(),
            since.cite(),
            f = shown(f)
        );
        let id = self.raw(
            Kind::InvalidTransition,
            Verdict::Inconclusive,
            Rule::KcompTxUnrecorded,
            Some(addr),
            vec![f],
            at,
            vec![at.cpu, read.cpu, since.cpu],
            ks,
            a,
            None,
            expl,
            since.order,
            false,
            at.line,
        );
        self.instr_fire(Rule::KcompTxUnrecorded, a, id);
    }

    /// The app took `addr` from COMPLETION.
    pub(super) fn app_comp(
        &mut self,
        a: Option<ASockId>,
        addr: u64,
        from: Option<RingState>,
        at: At,
    ) {
        self.app_taken += 1;
        let taken = self.app_taken;
        let f = self.frame_of(addr);
        let seen_tx = self.seen_tx;
        let seen_kcomp = self.seen_kcomp;
        self.settle(f);
        let Some(fs) = self.frames.get_mut(f) else {
            let mut fs = Frame::new(at);
            fs.app = AppHold::Comp;
            fs.held_at = taken;
            fs.held_addr = addr;
            self.frames.insert(f, fs);
            if Self::take_refused(&mut self.refused, &mut self.refused_completed, f, addr) {
                self.note_refused_back(f, addr);
            } else if seen_tx && !seen_kcomp {
                self.comp_never_sent(a, f, addr, at);
            }
            return;
        };
        let prev = fs.last;
        fs.last = at;
        let _ = from;
        // A refused descriptor's address handed back (see `refused`): no
        // send ends here, the frame was the app's all along. A copy on TX
        // (sent for real) is completed first, in ring order.
        if fs.kcomp == 0
            && fs.tx == 0
            && Self::take_refused(&mut self.refused, &mut self.refused_completed, f, addr)
        {
            fs.app = AppHold::Comp;
            fs.held_at = taken;
            fs.held_addr = addr;
            self.note_refused_back(f, addr);
            return;
        }
        if fs.kcomp > 0 {
            fs.kcomp -= 1;
            fs.app = AppHold::Comp;
            fs.held_at = taken;
            fs.held_addr = addr;
            let txa = fs.tx_as.or(a);
            self.comp_taken_traced(txa, f, at);
            return;
        }
        if fs.tx > 0 {
            fs.tx -= 1;
            fs.app = AppHold::Comp;
            fs.held_at = taken;
            fs.held_addr = addr;
            let txa = fs.tx_as.or(a);
            if !seen_kcomp {
                if let Some((sent, head, head_at, raw)) = self.tx_fifo_check(txa, f, addr, at, true)
                {
                    self.comp_taken_early(txa, f, sent, head, head_at, raw, at);
                }
            }
            return;
        }
        let was = fs.place();
        let state = fs.state_name();
        let txa = fs.tx_as.or(a);
        fs.app = AppHold::Comp;
        fs.held_at = taken;
        fs.held_addr = addr;
        if !seen_tx {
            return;
        }
        if self.comp_twice(txa, f, addr, prev, at) {
            return;
        }
        let (verdict, rule, why) = if seen_kcomp {
            (
                Verdict::Application,
                Rule::CompNotProduced,
                "The kernel's completions are traced and none covers this frame, so the application read a \
                 completion the kernel never produced (a stale consumer index or a second pass over one batch).",
            )
        } else {
            (
                Verdict::Inconclusive,
                Rule::CompNotSent,
                "Either the kernel completed a frame it was not sending or the application misread the \
                 COMPLETION ring; without kernel completion events the trace cannot say which.",
            )
        };
        let expl = format!(
            "The application took frame {f:#x} (addr {addr:#x}) from COMPLETION at {}, but the trace shows it \
             {was} since {}, not on TX ({state} -> COMP). {why}",
            at.cite(),
            prev.cite(), f = shown(f));
        self.raw(
            Kind::InvalidTransition,
            verdict,
            rule,
            Some(addr),
            vec![f],
            at,
            vec![at.cpu, prev.cpu],
            None,
            a,
            None,
            expl,
            prev.order,
            false,
            at.line,
        );
    }

    /// The app took a frame for a thread (`hold`) or freed it.
    pub(super) fn app_own(&mut self, addr: u64, hold: AppHold, at: At) {
        self.app_free_traced = true;
        let f = self.frame_of(addr);
        self.settle(f);
        let Some(fs) = self.frames.get_mut(f) else {
            let mut fs = Frame::new(at);
            fs.app = hold;
            self.frames.insert(f, fs);
            return;
        };
        let prev = fs.last;
        let was = fs.place();
        let state = fs.state_name();
        let bad = fs.kernel_copies() > 0;
        if hold == AppHold::Free && matches!(fs.app, AppHold::Rx | AppHold::Comp | AppHold::Held) {
            Self::note_return(&mut self.last_return, f, self.app_taken);
        }
        fs.app = hold;
        fs.last = at;
        if bad {
            let what = if hold == AppHold::Free {
                "returned it to its free list"
            } else {
                "took it for a thread"
            };
            let expl = format!(
                "The application {what} at {}, but frame {f:#x} (addr {addr:#x}) is {was} since {} \
                 ({state} -> {}): the app is about to reuse a frame the kernel still owns.",
                at.cite(),
                prev.cite(),
                if hold == AppHold::Free { "FREE" } else { "HELD" }, f = shown(f));
            self.raw(
                Kind::InvalidTransition,
                Verdict::Application,
                Rule::AppReusesKernelOwned,
                Some(addr),
                vec![f],
                at,
                vec![at.cpu, prev.cpu],
                None,
                None,
                None,
                expl,
                prev.order,
                false,
                at.line,
            );
        }
    }
}
