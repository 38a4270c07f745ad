//! One event, from its line to the checkers: the sockets it names, the
//! rings of recent events and the `--history` it feeds, then the handler of
//! its operation.

use super::state::{ASockId, AppHold, At, KSockId, RingId};
use super::umems::{shown, UmemOf};
use super::{published_before_redirect, Analyzer};
use crate::chunk::{self, Mapping};
use crate::parse::{AddrList, AppOp, Desc, Event, KernelOp, Op, RingState, RxMode, SeedOp};
use crate::report::ProbeInfo;
use crate::timeline::Entry;

/// At most this many events in `--history`; the rest are only counted.
const MAX_HISTORY: usize = 100_000;

impl Analyzer {
    /// One event: the sockets it names, its ring of recent events,
    /// `--history`, then its operation's handler. `pre`: the op's
    /// descriptor list, when the parsing thread decoded it.
    pub(super) fn process(&mut self, ev: &Event<'_>, at: At, pre: Option<&[Desc]>) {
        let (ks, a) = self.route(&ev.op, ev.pid);
        self.learn_umems(&ev.op, a);
        if ev.op.is_app_ring() && !self.ring_umem_known(&ev.op, a) {
            self.undeclared_to = Some(at);
        }
        // One UMEM (or none named): every frame key is the bare base.
        self.umem_of = if self.umems.len() > 1 {
            self.resolve_umem(&ev.op, ks, a)
        } else {
            UmemOf::default()
        };
        // A list is decoded once (on the parsing thread, or here into the
        // reused buffer, which moves out only then); the timeline and the
        // checkers read the decoded copy.
        let mut scratch = Vec::new();
        let list = ev.op.list();
        let descs: &[Desc] = match (list, pre) {
            (Some(_), Some(p)) => p,
            (Some(l), None) => {
                scratch = std::mem::take(&mut self.descs);
                scratch.clear();
                scratch.extend(l.iter());
                &scratch
            }
            (None, _) => &[],
        };
        // A list's frame entries are loaded together, their cache misses
        // overlapping, before the checkers walk it.
        if descs.len() > 1 {
            for d in descs {
                self.frames.touch(self.frame_of(d.addr));
            }
        }
        let mut fr = [0u64; 4];
        let mut n = 0;
        {
            let poison = self.poison;
            let mut add = |addr: u64| {
                if n < 4 && addr != poison {
                    fr[n] = self.frame_of(addr);
                    n += 1;
                }
            };
            if list.is_some() {
                descs.iter().take(4).for_each(|d| add(d.addr));
            } else {
                for_each_addr(&ev.op, add);
            }
        }
        let frames = &fr[..n];
        let rid = match (ks, a) {
            (Some(ks), _) => RingId::K(ks),
            (None, Some(a)) => RingId::A(a),
            (None, None) => RingId::Cpu(ev.cpu),
        };
        let batch_pos = self.batch_pos;
        if let Some(ring) = self.ring_mut(rid) {
            match batch_pos {
                Some(i) => ring.push_pending(ev, i, frames),
                None => ring.push(ev, frames),
            }
        }
        if let Some((h, list, omitted)) = &mut self.history {
            let hf = self
                .mapping
                .unwrap_or(Mapping::Aligned {
                    chunk: chunk::MIN_CHUNK,
                })
                .frame(*h);
            // The address's frame in any UMEM: `--history` takes an address.
            let touches = frames.iter().any(|&f| shown(f) == hf) || {
                let mut hit = false;
                let m = self.mapping.unwrap_or(Mapping::Aligned {
                    chunk: chunk::MIN_CHUNK,
                });
                for_each_addr(&ev.op, |x| hit |= m.frame(x) == hf);
                hit
            };
            if touches {
                if list.len() < MAX_HISTORY {
                    let mut e = Entry::default();
                    e.set(ev, frames);
                    list.push(e.to_public(true));
                } else {
                    *omitted += 1;
                }
            }
        }
        self.instr_event(ev, at, ks, a);
        match &ev.op {
            Op::App(op) => self.app_op(op, at, a, descs),
            Op::Kernel(op) => self.kernel_op(op, at, ks, descs),
            Op::Seed(SeedOp::Transition {
                addr,
                from,
                to,
                expected,
                remaining,
                ..
            }) => {
                let recorder = expected.map(|e| (e, remaining.unwrap_or_default()));
                self.transition(a, *addr, Some(*from), *to, None, at, recorder);
            }
            Op::Seed(SeedOp::Note { addr }) => {
                let f = self.frame_of(*addr);
                // Like every event that touches a frame: a stale history is
                // forgotten first, never refreshed (see `settle`).
                self.settle(f);
                if let Some(fs) = self.frames.get_mut(f) {
                    fs.last = at;
                }
            }
            Op::Unknown => {}
        }
        if scratch.capacity() > 0 {
            self.descs = scratch;
        }
        self.umem_of = UmemOf::default();
        // After the op: a seed socket may just have been joined to its xs.
        if !self.tails.is_empty() {
            let frames = &fr[..n];
            self.feed_tails(rid, ev, frames);
        }
    }

    /// An application operation (recorder line), for each descriptor it moves.
    fn app_op(&mut self, op: &AppOp<'_>, at: At, a: Option<ASockId>, descs: &[Desc]) {
        match op {
            AppOp::Umem { .. } | AppOp::Other { .. } => {}
            AppOp::Pool { pool, sk, .. } => {
                let p = self.pool_id(*pool);
                if let Some(sk) = sk {
                    // The key's socket takes the pool when its own `sock`
                    // line does not name one. A socket known by its `sid=`
                    // has a `sock` line that names its pool: when that line
                    // was overwritten (a wrapped buffer), a `pool` line on
                    // its key is the next socket's, declared before it
                    // (xskxceiver's TEARDOWN, each round a UMEM of its
                    // own), and taking it gave the old socket the new UMEM:
                    // it then looked alive beside the new one, the key was
                    // shared, the new socket's receives were joined to no
                    // socket and went to a stale UMEM (false `kernel`).
                    let s = self.asock_sk(*sk);
                    if self.asocks[s].pool.is_none() && self.asocks[s].sid.is_none() {
                        self.asocks[s].pool = Some(p);
                    }
                }
            }
            AppOp::Sock { pool, label, .. } => {
                // `route` names the socket of every `sock` line.
                let Some(a) = a else { return };
                if let Some(p) = pool {
                    let p = self.pool_id(*p);
                    self.asocks[a].pool = Some(p);
                }
                if let Some(l) = label {
                    self.asocks[a].name = String::from_utf8_lossy(l).into_owned();
                    self.by_label.entry(l.to_vec()).or_insert(a);
                }
            }
            AppOp::Fill { pool, .. } => {
                let p = match pool {
                    Some(p) => self.pool_id(*p),
                    None => match a {
                        Some(a) => self.asock_pool(a),
                        None => self.pool_id(u64::MAX),
                    },
                };
                for d in descs {
                    self.app_fill(a, p, d.addr, None, at);
                }
            }
            AppOp::Rx { idx, prod, .. } => {
                self.rx_claim = self.rx_batch(a, *idx, descs.len(), *prod);
                self.rx_index(a, *idx, descs.first().map(|d| d.addr), descs.len(), at);
                let first_raw = self.raws.len();
                for (i, d) in descs.iter().enumerate() {
                    let pos = idx.map(|x| x.wrapping_add(i as u64));
                    if self.read_outside_ring(a, d, pos, at) {
                        continue;
                    }
                    self.app_read(a, d.addr, None, pos, at, None);
                }
                self.rx_claim = None;
                // The raws this batch made: which batch of the socket it was
                // (an overlap right before it is tied to them).
                if let Some(ks) = a.and_then(|a| self.asocks[a].ks) {
                    let n = self.ksocks[ks].rx_batches;
                    for r in self.raws.iter().skip(first_raw) {
                        self.read_batch.insert(r.id, n);
                    }
                }
            }
            AppOp::Audit {
                umem,
                held,
                taken,
                hold_max,
                freelist,
                frames,
                since,
                age_ms,
            } => {
                self.audit_line(
                    *umem, *held, *taken, *hold_max, *freelist, frames, since, age_ms, at,
                );
            }
            AppOp::Tx { .. } => {
                let geom = self.tx_geometry(a);
                for d in descs {
                    // The kernel skips a descriptor it refuses: no send,
                    // the frame stays the app's, and recent kernels may hand
                    // the address back on COMPLETION (the recorder does the
                    // same).
                    if let Some(why) =
                        geom.and_then(|g| xskdbg_format::tx_rejected(d.addr, d.len, d.options, &g))
                    {
                        self.tx_rejected += 1;
                        self.tx_rejected_first.get_or_insert((
                            d.addr,
                            d.len.unwrap_or(0),
                            why.as_str(),
                            at,
                        ));
                        self.note_refused(d.addr);
                        continue;
                    }
                    self.app_tx(a, d.addr, None, at);
                }
            }
            AppOp::Comp { .. } => {
                for d in descs {
                    self.app_comp(a, d.addr, None, at);
                }
            }
            AppOp::Hold { .. } => {
                for d in descs {
                    self.app_own(d.addr, AppHold::Held, at);
                }
            }
            AppOp::Free { .. } => {
                for d in descs {
                    self.app_own(d.addr, AppHold::Free, at);
                }
            }
            AppOp::Stats {
                rx_dropped,
                rx_full,
                ..
            } => {
                if rx_dropped.unwrap_or(0) > 0 || rx_full.unwrap_or(0) > 0 {
                    self.drops_seen = true;
                }
                self.stats_rx_full(a, *rx_full);
            }
            AppOp::Violation {
                kind,
                addr,
                from,
                to,
                expected,
                remaining,
                ..
            } => {
                self.recorder_violation(a, kind, *addr, *from, *to, *expected, *remaining, at);
            }
        }
    }

    /// A `krx`, for each checker of a receive: the producer section it
    /// opens, the RX position it writes, the frame's move off FILL.
    #[inline]
    fn kernel_rx(&mut self, ks: KSockId, addr: u64, slot: Option<u64>, at: At) {
        self.kernel_rx_seen = true;
        let f = self.frame_of(addr);
        self.open_section(ks, at, f, addr, slot);
        self.rx_reserved(ks, f, addr, slot, at);
        self.kernel_received(ks, f, addr, slot, at);
    }

    /// A seed trace's `FROM -> TO` line: the move it names, as the
    /// recorder's operation for `TO` would make it.
    #[expect(clippy::too_many_arguments, reason = "mirrors the seed line's fields")]
    fn transition(
        &mut self,
        a: Option<ASockId>,
        addr: u64,
        from: Option<RingState>,
        to: RingState,
        pos: Option<u64>,
        at: At,
        recorder: Option<(u64, AddrList<'_>)>,
    ) {
        match to {
            RingState::Fill => {
                let p = match a {
                    Some(a) => self.asock_pool(a),
                    None => self.pool_id(u64::MAX),
                };
                self.app_fill(a, p, addr, from, at);
            }
            RingState::Rx => self.app_read(a, addr, from, pos, at, recorder),
            RingState::Tx => self.app_tx(a, addr, from, at),
            RingState::Comp => self.app_comp(a, addr, from, at),
            RingState::Held => self.app_own(addr, AppHold::Held, at),
            RingState::Free => self.app_own(addr, AppHold::Free, at),
            RingState::Unknown => {}
        }
    }

    /// A kernel operation (probe line).
    fn kernel_op(&mut self, op: &KernelOp<'_>, at: At, ks: Option<KSockId>, descs: &[Desc]) {
        match op {
            KernelOp::Probe {
                backend,
                kernel,
                flush,
            } => {
                self.flush_mode = Some(*flush);
                self.probe = Some(ProbeInfo {
                    backend: String::from_utf8_lossy(backend).into_owned(),
                    kernel: (!kernel.is_empty())
                        .then(|| String::from_utf8_lossy(kernel).into_owned()),
                    flush: *flush,
                });
            }
            KernelOp::Rx {
                addr, slot, mode, ..
            } => {
                // `route` names the socket of every receive, write and flush.
                let Some(ks) = ks else { return };
                let f = self.frame_of(*addr);
                if *mode == Some(RxMode::Skb) && self.skb_received(ks, f, *slot, at) {
                    return;
                }
                if self.read_before_its_receive(ks, f, *addr, *slot, at) {
                    return;
                }
                self.attempt_supersedes(ks, f, *slot);
                let early = published_before_redirect(op);
                self.kernel_rx(ks, *addr, *slot, at);
                if let Some((s, p)) = early {
                    self.early_published(ks, *addr, s, p, at);
                }
                // The tracepoint fires after the reservation (it prints
                // `mode=`); every entry probe before it.
                let reserved = mode.is_some()
                    || self
                        .probe
                        .as_ref()
                        .is_some_and(|p| p.backend == "tracepoint");
                self.attempt_begin(ks, f, *slot, at, reserved);
            }
            KernelOp::RxDone { slot, .. } => {
                let Some(ks) = ks else { return };
                self.attempt_written(ks, *slot, at);
                self.rx_written(ks, *slot, at);
            }
            KernelOp::RxOutcome { slot, ret, .. } => {
                self.attempt_outcome(ks, *slot, *ret, at);
            }
            KernelOp::Flush { prod, exact, .. } => {
                let Some(ks) = ks else { return };
                self.attempts_flushed(ks, *prod, at);
                if let Some(p) = prod {
                    self.rx_published(ks, *p, at);
                }
                self.flushed(ks, *exact, at);
            }
            KernelOp::Poll { .. } => self.poll_ended(at),
            KernelOp::Tx { addr, .. } => {
                let f = self.frame_of(*addr);
                // A transmit changes no count, but it refreshes `last`: a frame
                // whose counts date from before every CPU's buffer had started
                // must be forgotten here, or a later app event would be judged
                // against that partial past (a wrapped buffer's false
                // "RX -> FREE").
                self.settle(f);
                let unsent = match self.frames.get_mut(f) {
                    Some(fs) => {
                        let was = (fs.tx == 0).then(|| (fs.last, fs.place(), fs.state_name()));
                        fs.last = at;
                        was
                    }
                    None => None,
                };
                if let Some(was) = unsent.filter(|_| self.seen_tx) {
                    self.ktx_unrecorded(f, at, was);
                }
            }
            KernelOp::Comp { .. } => {
                for d in descs {
                    self.seen_kcomp = true;
                    self.kernel_comp(ks, d.addr, at);
                }
            }
        }
    }
}

/// Call `f` with every descriptor address an operation moves (not the
/// recorder's `expected`/`remaining` context lists).
pub fn for_each_addr(op: &Op<'_>, mut f: impl FnMut(u64)) {
    let mut list = |l: &AddrList<'_>| l.iter().for_each(|d| f(d.addr));
    match op {
        Op::App(a) => match a {
            AppOp::Fill { addrs, .. }
            | AppOp::Comp { addrs, .. }
            | AppOp::Hold { addrs, .. }
            | AppOp::Free { addrs, .. } => list(addrs),
            AppOp::Rx { descs, .. } | AppOp::Tx { descs, .. } => list(descs),
            AppOp::Violation { addr, .. } => f(*addr),
            _ => {}
        },
        Op::Kernel(k) => match k {
            KernelOp::Rx { addr, .. } | KernelOp::Tx { addr, .. } => f(*addr),
            KernelOp::Comp { addrs, .. } => list(addrs),
            _ => {}
        },
        Op::Seed(SeedOp::Transition { addr, .. }) => f(*addr),
        Op::Seed(SeedOp::Note { addr }) => f(*addr),
        Op::Unknown => {}
    }
}
