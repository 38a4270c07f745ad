//! The per-frame state machine and the checkers.
//!
//! [`Analyzer`] consumes decoded lines in trace order and keeps, per frame
//! (chunk), how many times each ring holds it; per pool, the FILL order; per
//! kernel socket (`xs`), the RX positions the kernel wrote and the open
//! producer section of each CPU; per socket and per CPU, a ring of recent
//! events for timelines. Memory depends on live frames and sockets, not on
//! the trace length.
//!
//! Checkers fire "raw" findings as they go. [`Analyzer::finish`] then drops
//! those whose evidence reaches back before every CPU's buffer had started
//! (unknown past), folds rules firing on the same line into one finding
//! (`also`), and files later anomalies of a frame/socket that already has a
//! finding under it (`consequences`): one finding per root cause.
//!
//! Before the address → frame mapping is known (no `--chunk-size`, no `umem`
//! line yet), the first few thousand lines are kept and replayed once the
//! chunk size is inferred.

use std::fmt::Write as _;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::chunk::{self, Mapping};
use crate::frames::FrameTable;
use crate::parse::{AddrList, Desc, Event, FlushMode, Line, Meta, RingState, SockKey};
use crate::report::{
    ChunkInfo, CpuSummary, Finding, History, Kind, OverallVerdict, ProbeInfo, Related, Report,
    SocketSummary, Summary, TimelineEntry, Verdict, SCHEMA_VERSION,
};
use crate::timeline::Snap;
use crate::Error;

mod dispatch;
mod explain;
mod learn;
mod producer;
mod raw;
mod rules;
mod rx;
mod sockets;
mod state;

pub use dispatch::for_each_addr;
use explain::Expl;
use learn::Buffered;
pub use producer::published_before_redirect;
use raw::{Link, Raw, Tail, MAX_RAW};
use rules::Rule;
use state::{
    ASock, ASockId, AppHold, At, CpuState, Frame, IdVec, KSock, KSockId, Place, Pool, PoolId, RawId,
};

/// The poison value the seed story's application wrote into consumed RX slots.
pub const DEFAULT_POISON: u64 = 0xdead_beef_dead_beef;

/// Analysis options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Chunk (frame) size; `None` to take it from a `umem` line or infer it.
    pub chunk_size: Option<u64>,
    /// Force unaligned mode (frames compare by the low 48 bits).
    pub unaligned: bool,
    /// Poison value; `None` for the `umem` line's or [`DEFAULT_POISON`].
    pub poison: Option<u64>,
    /// Collect one descriptor's whole life ([`Report::history`]).
    pub history: Option<u64>,
    /// Timeline events shown before a finding's detection point.
    pub context: usize,
    /// Name of the input, for messages.
    pub input_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk_size: None,
            unaligned: false,
            poison: None,
            history: None,
            context: 24,
            input_name: "<input>".into(),
        }
    }
}

const FIFO_CAP: usize = 1 << 16;
const MAX_CONSEQUENCES: usize = 50;
/// A frame the app holds while it took this many others is leaked.
const APP_LEAK_GAP: u64 = 256;

/// The streaming analyzer. Feed it every line in order, then call
/// [`Analyzer::finish`].
pub struct Analyzer {
    opts: Options,
    mapping: Option<Mapping>,
    chunk_source: &'static str,
    chunk_note: String,
    umem_chunk: Option<(u64, bool)>,
    samples: FxHashSet<u64>,
    buffered: Vec<Buffered>,
    poison: u64,

    frames: FrameTable<Frame>,
    /// The current line's descriptor list, decoded once (reused buffer).
    descs: Vec<Desc>,
    asocks: IdVec<ASockId, ASock>,
    by_sk: FxHashMap<SockKey, ASockId>,
    by_label: FxHashMap<Vec<u8>, ASockId>,
    ksocks: IdVec<KSockId, KSock>,
    by_xs: FxHashMap<u64, KSockId>,
    pools: IdVec<PoolId, Pool>,
    by_pool: FxHashMap<u64, PoolId>,
    cpus: FxHashMap<u32, CpuState>,

    raws: IdVec<RawId, Raw>,
    raw_overflow: u64,
    raw_by_frame: FxHashMap<u64, RawId>,
    snapshots: usize,
    tails: Vec<Tail>,

    lines: u64,
    events: u64,
    skipped: u64,
    skipped_lines: Vec<u64>,
    lost: u64,
    entries: Option<(u64, u64)>,
    recycled: u64,
    probe: Option<ProbeInfo>,
    flush_mode: Option<FlushMode>,
    history: Option<(u64, Vec<TimelineEntry>, u64)>,
    drops_seen: bool,
    seen_fill: bool,
    seen_tx: bool,
    seen_kcomp: bool,
    kernel_rx_seen: bool,
    /// Running estimate of when every CPU seen so far had started.
    complete_now: u64,
    marked_max: u64,
    first_max: u64,
    markers_seen: bool,
    /// Descriptors the app took from RX or COMPLETION so far.
    app_taken: u64,
    /// Longest hold (in app takes) of a frame the app did return.
    max_return_hold: u64,
    /// The app logs its own free list (`free`/`hold` lines).
    app_free_traced: bool,
    /// The latest poisoned read (app socket, raw finding): the recorder's
    /// own `violation kind=poisoned_descriptor` right after it is the same
    /// read.
    last_poison: Option<(Option<ASockId>, RawId)>,
    /// The index of the line being fed within the batch of
    /// [`Analyzer::feed_lines`]: ring entries then wait for the batch's end
    /// to copy their text (see `timeline`).
    batch_pos: Option<u32>,
    /// The socket keys looked up last, and what they map to.
    last_sk: Option<(SockKey, ASockId)>,
    last_xs: Option<(u64, KSockId)>,
}

impl Analyzer {
    /// A new analyzer.
    pub fn new(opts: Options) -> Analyzer {
        let mut a = Analyzer {
            poison: opts.poison.unwrap_or(DEFAULT_POISON),
            mapping: None,
            chunk_source: "inferred",
            chunk_note: String::new(),
            umem_chunk: None,
            samples: FxHashSet::default(),
            buffered: Vec::new(),
            frames: FrameTable::new(),
            descs: Vec::new(),
            asocks: IdVec::default(),
            by_sk: FxHashMap::default(),
            by_label: FxHashMap::default(),
            ksocks: IdVec::default(),
            by_xs: FxHashMap::default(),
            pools: IdVec::default(),
            by_pool: FxHashMap::default(),
            cpus: FxHashMap::default(),
            raws: IdVec::default(),
            raw_overflow: 0,
            raw_by_frame: FxHashMap::default(),
            snapshots: 0,
            tails: Vec::new(),
            lines: 0,
            events: 0,
            skipped: 0,
            skipped_lines: Vec::new(),
            lost: 0,
            entries: None,
            recycled: 0,
            probe: None,
            flush_mode: None,
            history: None,
            drops_seen: false,
            seen_fill: false,
            seen_tx: false,
            seen_kcomp: false,
            kernel_rx_seen: false,
            app_taken: 0,
            complete_now: 0,
            marked_max: 0,
            first_max: 0,
            markers_seen: false,
            max_return_hold: 0,
            app_free_traced: false,
            last_poison: None,
            batch_pos: None,
            last_sk: None,
            last_xs: None,
            opts,
        };
        if let Some(c) = a.opts.chunk_size {
            let chunk = c.clamp(1, 1 << 32).next_power_of_two();
            a.mapping = Some(if a.opts.unaligned {
                Mapping::Unaligned
            } else {
                Mapping::Aligned { chunk }
            });
            a.chunk_source = "option";
            a.chunk_note = if a.opts.unaligned {
                "unaligned mode (--unaligned): frames compare by the low 48 bits".into()
            } else {
                format!("chunk size {chunk:#x} from --chunk-size")
            };
        } else if a.opts.unaligned {
            a.mapping = Some(Mapping::Unaligned);
            a.chunk_source = "option";
            a.chunk_note = "unaligned mode (--unaligned): frames compare by the low 48 bits".into();
        }
        if let Some(h) = a.opts.history {
            a.history = Some((h, Vec::new(), 0));
        }
        if let Some(Mapping::Aligned { chunk }) = a.mapping {
            a.frames.set_chunk(chunk);
        }
        a
    }

    /// Feed consecutive decoded lines: the same as [`Analyzer::feed_line`]
    /// on each, faster (a line's text is copied into the timelines only if
    /// it is still among the recent events when the batch ends).
    pub fn feed_lines(&mut self, lines: &[Line<'_>]) {
        self.feed_lines_observed(lines, None, &mut |_| {});
    }

    /// [`Analyzer::feed_lines`], calling `observer` with each entry first
    /// (in the same pass: a second walk over a batch's lines would read them
    /// from memory again). `decoded`, from the parsing thread: every line's
    /// descriptor list (see [`Op::list`]) one after the other, and where
    /// each line's ends.
    pub(crate) fn feed_lines_observed(
        &mut self,
        lines: &[Line<'_>],
        decoded: Option<(&[Desc], &[u32])>,
        observer: &mut dyn FnMut(&Event<'_>),
    ) {
        let first_raw = self.raws.len();
        let mut start = 0;
        for (i, line) in lines.iter().enumerate() {
            self.batch_pos = u32::try_from(i).ok();
            if let Line::Event(ev) = line {
                observer(ev);
            }
            let pre = decoded.and_then(|(descs, ends)| {
                let end = *ends.get(i)? as usize;
                let pre = descs.get(start..end);
                start = end;
                pre
            });
            self.feed_line_decoded(line, pre);
        }
        self.batch_pos = None;
        // Every ring (a few dozen, 64 entries each) and the timelines of the
        // findings made during the batch get the text of what they took
        // from it.
        let rings = self.ksocks.iter_mut().map(|k| &mut k.ring);
        let rings = rings.chain(self.asocks.iter_mut().map(|s| &mut s.ring));
        for r in rings.chain(self.cpus.values_mut().map(|c| &mut c.ring)) {
            r.resolve(lines);
        }
        for raw in self.raws.iter_mut().skip(first_raw) {
            for t in &mut raw.timeline {
                t.resolve(lines);
            }
        }
    }

    /// Feed one decoded line (any kind). Lines must come in input order.
    pub fn feed_line(&mut self, line: &Line<'_>) {
        self.feed_line_decoded(line, None);
    }

    #[inline]
    fn feed_line_decoded(&mut self, line: &Line<'_>, pre: Option<&[Desc]>) {
        self.lines = self.lines.max(line.number());
        match line {
            Line::Blank { .. } => {}
            Line::Bad { line, .. } => self.skip(*line),
            Line::Meta { meta, .. } => {
                if let Meta::Entries {
                    in_buffer, written, ..
                } = meta
                {
                    self.entries = Some((*in_buffer, *written));
                }
                if let Meta::CpuBufferStarted(cpu) = meta {
                    // Recorded live: the marker precedes the CPU's first entry.
                    self.cpus
                        .entry(*cpu)
                        .or_insert_with(|| CpuState::new(At::default()))
                        .marker = true;
                }
                if self.mapping.is_none() {
                    self.buffered.push(Buffered::Meta(*meta));
                } else {
                    self.meta(*meta);
                }
            }
            Line::Event(ev) => self.feed_decoded(ev, pre),
        }
    }

    /// Feed one entry (as produced by [`crate::parse::parse_line`]).
    pub fn feed(&mut self, ev: &Event<'_>) {
        self.feed_decoded(ev, None);
    }

    #[inline]
    fn feed_decoded(&mut self, ev: &Event<'_>, pre: Option<&[Desc]>) {
        self.lines = self.lines.max(ev.line);
        self.events += 1;
        let at = At::of(ev);
        let c = self.cpus.entry(ev.cpu).or_insert_with(|| CpuState::new(at));
        if c.events == 0 {
            c.first = at;
            if c.marker {
                self.markers_seen = true;
                self.marked_max = self.marked_max.max(at.order);
            }
            self.first_max = self.first_max.max(at.order);
            // `entries-in-buffer/entries-written` equal: nothing was
            // overwritten, so even a quiet CPU showing up late lost nothing.
            let nothing_lost = self.entries.is_some_and(|(inb, w)| inb >= w);
            self.complete_now = if self.markers_seen {
                self.marked_max
            } else if nothing_lost {
                0
            } else {
                self.first_max
            };
        }
        c.events += 1;
        c.last = at;
        if self.mapping.is_some() {
            self.process(ev, at, pre);
            return;
        }
        // Still learning the chunk size: sample, keep the line, replay later.
        self.learn(ev);
    }

    fn skip(&mut self, line: u64) {
        self.skipped += 1;
        if self.skipped_lines.len() < 5 {
            self.skipped_lines.push(line);
        }
    }

    fn meta(&mut self, m: Meta) {
        match m {
            Meta::CpuBufferStarted(_) => {}
            Meta::Entries {
                in_buffer, written, ..
            } => self.entries = Some((in_buffer, written)),
            Meta::Lost { count, .. } => self.lost += count,
        }
    }

    /// A frame whose last event came before every CPU's buffer had started
    /// has a partial history (the other CPUs' events are lost): forget it,
    /// so that its next event starts it afresh (unknown past) instead of
    /// stacking on counts that may be wrong.
    #[inline(always)]
    fn settle(&mut self, f: u64) {
        if self.complete_now == 0 {
            return;
        }
        let stale = self
            .frames
            .get(f)
            .is_some_and(|fs| fs.last.order < self.complete_now);
        if stale {
            self.forget(f);
        }
    }

    /// The slow half of [`Analyzer::settle`], apart so that the check
    /// made on every frame event stays a few instructions.
    #[cold]
    #[inline(never)]
    fn forget(&mut self, f: u64) {
        if let Some(fs) = self.frames.remove(f) {
            if let Some(p) = fs.fill_pool.filter(|_| fs.fill > 0) {
                self.fifo_forget(p, f);
            }
            if let Some(a) = fs.tx_as.filter(|_| fs.tx > 0) {
                let q = &mut self.asocks[a].tx_fifo;
                if let Some(i) = q.iter().take(512).position(|e| e.0 == f) {
                    q.remove(i);
                }
            }
        }
    }

    #[inline]
    fn frame_of(&self, addr: u64) -> u64 {
        self.mapping
            .unwrap_or(Mapping::Aligned {
                chunk: chunk::MIN_CHUNK,
            })
            .frame(addr)
    }

    /// The frame's move of a kernel receive: off FILL, onto RX.
    #[inline]
    fn kernel_received(&mut self, ks: KSockId, f: u64, addr: u64, slot: Option<u64>, at: At) {
        let k = &self.ksocks[ks];
        let pool = k.asock.and_then(|a| self.asocks[a].pool);
        let seen_fill = self.seen_fill;
        self.settle(f);
        let Some(fs) = self.frames.get_mut(f) else {
            let mut fs = Frame::new(at);
            fs.krx = 1;
            fs.krx_ks = Some(ks);
            self.frames.insert(f, fs);
            return;
        };
        let prev = fs.last;
        fs.last = at;
        fs.krx_ks = Some(ks);
        if fs.fill > 0 {
            fs.fill -= 1;
            fs.krx += 1;
            if let Some(pool) = pool {
                self.fifo_consume(pool, f, true);
            }
            return;
        }
        let was = fs.place();
        let state = fs.state_name();
        let twice = fs.krx > 0;
        fs.krx += 1;
        if !seen_fill {
            return; // fills are not traced: nothing to compare with
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
                prev.cite(),
            )
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
            format!("frame {f:#x} came out of RX but was not outstanding on FILL ({state} -> RX)")
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

    // -----------------------------------------------------------------------
    // application side

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

    fn app_fill(
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
        let pool = &mut self.pools[p];
        pool.seq += 1;
        let seq = pool.seq;
        pool.fifo.push_back((f, seq, at));
        if pool.fifo.len() > FIFO_CAP {
            pool.fifo.pop_front();
        }
        pool.peak = pool.peak.max(pool.fifo.len());
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
            prev.cite()
        );
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
        let short = format!("frame {f:#x} is now both {was} and on {ring}");
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
            prev.cite()
        );
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
    fn rx_taken(
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
                    if let Some(pool) = pool {
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
                        prev.cite()
                    );
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
                    let expl = format!("frame {f:#x} came out of RX but was not outstanding on FILL ({state} -> RX)");
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

    fn recorder_fifo(
        &mut self,
        a: Option<ASockId>,
        addr: u64,
        f: u64,
        expected: u64,
        remaining: AddrList<'_>,
        at: At,
    ) {
        let m = self.mapping.unwrap_or(Mapping::Aligned {
            chunk: chunk::MIN_CHUNK,
        });
        let listed = remaining.iter().any(|d| m.frame(d.addr) == f);
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

    /// Drop a frame whose kernel receive is missing from the FILL order
    /// without counting it as reordered.
    fn fifo_forget(&mut self, p: PoolId, f: u64) {
        let pool = &mut self.pools[p];
        // Stale entries sit near the front (they are old): a short scan.
        if let Some(i) = pool.fifo.iter().take(512).position(|e| e.0 == f) {
            if let Some((_, seq, _)) = pool.fifo.remove(i) {
                pool.consumed_max = pool.consumed_max.max(seq);
            }
        }
    }

    fn fifo_consume(&mut self, p: PoolId, f: u64, by_kernel: bool) {
        let complete_now = self.complete_now;
        let pool = &mut self.pools[p];
        if by_kernel {
            pool.kernel_consumes = true;
        } else if pool.kernel_consumes {
            return;
        }
        // Fills from before every CPU's buffer had started may have been
        // received unseen: they say nothing about order.
        while pool
            .fifo
            .front()
            .is_some_and(|e| e.2.order < complete_now && e.0 != f)
        {
            pool.fifo.pop_front();
        }
        if pool.fifo.front().is_some_and(|e| e.0 == f) {
            let (_, seq, _) = pool.fifo.pop_front().unwrap_or_default();
            pool.consumed_max = pool.consumed_max.max(seq);
            return;
        }
        if let Some(i) = pool.fifo.iter().position(|e| e.0 == f) {
            // Out of FILL order but outstanding: the kernel's free list
            // (LIFO, used before the FILL ring) explains this.
            let (_, seq, _) = pool.fifo.remove(i).unwrap_or_default();
            pool.consumed_max = pool.consumed_max.max(seq);
            self.recycled += 1;
        }
    }

    fn app_tx(&mut self, a: Option<ASockId>, addr: u64, from: Option<RingState>, at: At) {
        if addr == self.poison {
            return;
        }
        self.seen_tx = true;
        let f = self.frame_of(addr);
        if let Some(a) = a {
            let s = &mut self.asocks[a];
            s.tx_seq += 1;
            let seq = s.tx_seq;
            s.tx_fifo.push_back((f, at, seq));
            if s.tx_fifo.len() > FIFO_CAP {
                s.tx_fifo.pop_front();
            }
        }
        self.settle(f);
        let Some(fs) = self.frames.get_mut(f) else {
            let mut fs = Frame::new(at);
            fs.tx = 1;
            fs.tx_as = a;
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
        }
        let mismatch = !dup && Self::claimed_mismatch(fs, from);
        fs.tx += 1;
        fs.tx_as = a;
        fs.app = AppHold::No;
        fs.last = at;
        if dup {
            self.app_dup(a, addr, f, "TX", was, state, prev, at);
        } else if mismatch {
            self.claimed(a, addr, f, from, "TX", was, prev, at);
        }
    }

    fn tx_fifo_check(&mut self, a: Option<ASockId>, f: u64, addr: u64, at: At) {
        let Some(a) = a else {
            return;
        };
        let complete_now = self.complete_now;
        let s = &mut self.asocks[a];
        // Sends from before every CPU had started may have completed unseen.
        while s
            .tx_fifo
            .front()
            .is_some_and(|e| e.1.order < complete_now && e.0 != f)
        {
            s.tx_fifo.pop_front();
        }
        if s.tx_fifo.front().is_some_and(|e| e.0 == f) {
            if let Some((_, _, seq)) = s.tx_fifo.pop_front() {
                s.tx_consumed = s.tx_consumed.max(seq);
            }
            return;
        }
        let Some(i) = s.tx_fifo.iter().position(|e| e.0 == f) else {
            return;
        };
        let (head, head_at, _) = s.tx_fifo[0];
        if let Some((_, _, seq)) = s.tx_fifo.remove(i) {
            s.tx_consumed = s.tx_consumed.max(seq);
        }
        let expl = format!(
            "Frame {f:#x} (addr {addr:#x}) completed at {} before {head:#x}, which was put on TX earlier at {}. \
             Completions usually come back in TX order (copy mode and the common zero-copy drivers); a driver that \
             completes out of order would explain it, so this alone is inconclusive.",
            at.cite(),
            head_at.cite()
        );
        self.raw(
            Kind::FifoOrder,
            Verdict::Inconclusive,
            Rule::TxCompletionOrder,
            Some(addr),
            vec![f, head],
            at,
            vec![at.cpu],
            None,
            Some(a),
            None,
            expl,
            head_at.order,
            false,
            at.line,
        );
    }

    fn kernel_comp(&mut self, ks: Option<KSockId>, addr: u64, at: At) {
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
            self.tx_fifo_check(a, f, addr, at);
            return;
        }
        fs.kcomp += 1;
        if !seen_tx {
            return;
        }
        let was = fs.place();
        let state = fs.state_name();
        let expl = format!(
            "The kernel completed frame {f:#x} (addr {addr:#x}) at {}, but the trace shows it {was} since {}, \
             not on TX ({state} -> COMP): the kernel returned a frame it was not sending.",
            at.cite(),
            prev.cite()
        );
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

    fn app_comp(&mut self, a: Option<ASockId>, addr: u64, from: Option<RingState>, at: At) {
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
            return;
        };
        let prev = fs.last;
        fs.last = at;
        let _ = from;
        if fs.kcomp > 0 {
            fs.kcomp -= 1;
            fs.app = AppHold::Comp;
            fs.held_at = taken;
            fs.held_addr = addr;
            return;
        }
        if fs.tx > 0 {
            fs.tx -= 1;
            fs.app = AppHold::Comp;
            fs.held_at = taken;
            fs.held_addr = addr;
            let txa = fs.tx_as.or(a);
            if !seen_kcomp {
                self.tx_fifo_check(txa, f, addr, at);
            }
            return;
        }
        let was = fs.place();
        let state = fs.state_name();
        fs.app = AppHold::Comp;
        fs.held_at = taken;
        fs.held_addr = addr;
        if !seen_tx {
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
            prev.cite()
        );
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

    fn app_own(&mut self, addr: u64, hold: AppHold, at: At) {
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
                if hold == AppHold::Free { "FREE" } else { "HELD" }
            );
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

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per rule; a struct would only rename the same fields"
    )]
    fn recorder_violation(
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
        let verdict = match (k, to) {
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

    // -----------------------------------------------------------------------
    // the end

    /// Like [`Analyzer::finish`], but an input without any entry is an error.
    pub fn finish_checked(self) -> Result<Report, Error> {
        if self.events == 0 {
            return Err(Error::NoEntries {
                lines: self.lines,
                skipped: self.skipped,
                first: self
                    .skipped_lines
                    .first()
                    .map(|l| format!(", first at line {l}"))
                    .unwrap_or_default(),
            });
        }
        Ok(self.finish())
    }

    /// Finish the analysis and build the report.
    pub fn finish(mut self) -> Report {
        if self.mapping.is_none() {
            self.decide();
        }
        self.leaks();
        let mut notes = Vec::new();

        // When every CPU's buffer had started.
        let marked: Vec<&CpuState> = self
            .cpus
            .values()
            .filter(|c| c.marker && c.events > 0)
            .collect();
        let nothing_lost = self.entries.is_some_and(|(inb, w)| inb >= w) && self.lost == 0;
        let complete = if !marked.is_empty() {
            marked
                .iter()
                .map(|c| c.first)
                .max_by_key(|a| (a.order, a.line))
        } else if nothing_lost {
            self.cpus
                .values()
                .filter(|c| c.events > 0)
                .map(|c| c.first)
                .min_by_key(|a| (a.order, a.line))
        } else {
            self.cpus
                .values()
                .filter(|c| c.events > 0)
                .map(|c| c.first)
                .max_by_key(|a| (a.order, a.line))
        };
        let cf = complete.map(|c| c.order);

        let raws = std::mem::take(&mut self.raws);
        let mut unjudged = 0u64;
        let mut kept: Vec<Raw> = Vec::with_capacity(raws.len());
        for r in raws {
            if cf.is_some_and(|c| r.evidence_from < c) {
                unjudged += 1;
            } else {
                kept.push(r);
            }
        }
        // Raws tied to another by evidence go where their target went; a
        // tie to a raw that was not judged is dropped (judged on its own).
        let kept_ids: FxHashSet<RawId> = kept.iter().map(|r| r.id).collect();
        let (linked, mut kept): (Vec<Raw>, Vec<Raw>) =
            kept.into_iter().partition(|r| match r.link {
                Link::Also(t) | Link::Consequence(t) => kept_ids.contains(&t),
                Link::None => false,
            });
        kept.sort_by_key(|r| (r.at.line, r.kind.rank(), r.recorder));

        // Same moment → one group (recorder reports join the analyzer's
        // finding on the same frame within a few lines).
        struct Group {
            primary: Raw,
            also: Vec<Raw>,
        }
        let mut groups: Vec<Group> = Vec::new();
        for r in kept {
            if let Some(g) = groups.last_mut() {
                let same_line = g.primary.at.line == r.at.line;
                let near_recorder = r.recorder
                    && r.at.line.saturating_sub(g.primary.at.line) <= 16
                    && (r.frames.iter().any(|f| g.primary.frames.contains(f))
                        || (r.addr.is_some() && r.addr == g.primary.addr));
                if same_line || near_recorder {
                    g.also.push(r);
                    continue;
                }
            }
            groups.push(Group {
                primary: r,
                also: Vec::new(),
            });
        }
        let mut consequence_links: Vec<Raw> = Vec::new();
        {
            let mut group_of: FxHashMap<RawId, usize> = FxHashMap::default();
            for (i, g) in groups.iter().enumerate() {
                group_of.insert(g.primary.id, i);
                for r in &g.also {
                    group_of.insert(r.id, i);
                }
            }
            for r in linked {
                match r.link {
                    Link::Also(t) => {
                        // Its target is itself tied elsewhere: folded into
                        // the target's explanation, nothing more to show.
                        if let Some(&i) = group_of.get(&t) {
                            groups[i].also.push(r);
                        }
                    }
                    Link::Consequence(_) => consequence_links.push(r),
                    Link::None => {}
                }
            }
        }
        consequence_links.sort_by_key(|r| r.at.line);

        let mut findings: Vec<Finding> = Vec::new();
        let mut placed: FxHashMap<RawId, usize> = FxHashMap::default();
        let mut root_frames: FxHashMap<u64, usize> = FxHashMap::default();
        let mut root_xs: FxHashMap<KSockId, usize> = FxHashMap::default();
        for g in groups {
            let p = &g.primary;
            let by_frame = p
                .frames
                .iter()
                .chain(g.also.iter().flat_map(|r| r.frames.iter()))
                .find_map(|f| root_frames.get(f).copied());
            let by_sock =
                p.ks.filter(|_| {
                    matches!(
                        p.kind,
                        Kind::ConcurrentProducer | Kind::PoisonedDescriptor | Kind::RxMismatch
                    )
                })
                .and_then(|ks| root_xs.get(&ks).copied());
            // Proof of a second producer is not a mere consequence of an
            // earlier overlap that could not be proven.
            let root = [by_frame, by_sock].into_iter().flatten().find(|&r| {
                !(p.kind == Kind::ConcurrentProducer
                    && p.verdict == Verdict::Kernel
                    && findings[r].verdict != Verdict::Kernel)
            });
            if let Some(root) = root {
                let f = &mut findings[root];
                for e in f.timeline.iter_mut().filter(|e| e.line == p.at.line) {
                    e.highlighted = true;
                }
                add_consequence(f, related(p));
                placed.insert(p.id, root);
                for r in &g.also {
                    placed.insert(r.id, root);
                }
                continue;
            }
            let idx = findings.len();
            for f in p
                .frames
                .iter()
                .chain(g.also.iter().flat_map(|r| r.frames.iter()))
            {
                root_frames.entry(*f).or_insert(idx);
            }
            if let Some(ks) = p.ks.filter(|_| p.kind == Kind::ConcurrentProducer) {
                if p.verdict == Verdict::Kernel {
                    // Later anomalies of the socket belong to the proven race.
                    let e = root_xs.entry(ks).or_insert(idx);
                    if *e != idx && findings[*e].verdict != Verdict::Kernel {
                        *e = idx;
                    }
                } else {
                    root_xs.entry(ks).or_insert(idx);
                }
            }
            placed.insert(p.id, idx);
            for r in &g.also {
                placed.insert(r.id, idx);
            }
            let Group { primary, also } = g;
            findings.push(self.finding_of(primary, also));
        }
        // Consequences tied by evidence (a read before the receive that
        // proves its slot was published early).
        let mut late: Vec<Finding> = Vec::new();
        for r in consequence_links {
            let Link::Consequence(t) = r.link else {
                continue;
            };
            match placed.get(&t) {
                Some(&root) => {
                    let f = &mut findings[root];
                    for e in f.timeline.iter_mut().filter(|e| e.line == r.at.line) {
                        e.highlighted = true;
                    }
                    add_consequence(f, related(&r));
                }
                None => late.push(self.finding_of(r, Vec::new())),
            }
        }
        if !late.is_empty() {
            findings.extend(late);
            findings.sort_by_key(|f| f.line);
        }
        for f in &mut findings {
            f.consequences.sort_by_key(|c| c.line);
        }

        let verdict = if findings.is_empty() {
            OverallVerdict::Clean
        } else {
            let first = findings[0].verdict;
            if findings.iter().all(|f| f.verdict == first) {
                match first {
                    Verdict::Kernel => OverallVerdict::Kernel,
                    Verdict::Application => OverallVerdict::Application,
                    Verdict::Inconclusive => OverallVerdict::Inconclusive,
                }
            } else {
                OverallVerdict::Mixed
            }
        };

        if self.raw_overflow > 0 {
            notes.push(format!(
                "{} further anomalies were not recorded (limit {MAX_RAW})",
                self.raw_overflow
            ));
        }
        for k in &self.ksocks {
            if k.krx > 0 && !k.flush_seen {
                notes.push(format!(
                    "xs {:#x}: no flush or NAPI poll events, so producer overlap (concurrent_producer) cannot be checked",
                    k.xs
                ));
            }
        }
        if self.flush_mode == Some(FlushMode::Inferred) {
            notes.push("probe header says flush=inferred: producer sections end at an inferred point; overlaps are inconclusive (a krx that finds its own slot already published is proof nonetheless)".into());
        }
        if self.flush_mode == Some(FlushMode::None) {
            notes.push("probe header says flush=none: without flush events producer overlap cannot be proven".into());
        }
        if !self.app_free_traced && self.app_taken > 0 {
            notes.push(
                "the application's own free list is not traced (no free/hold lines): frames it keeps cannot be told \
                 from leaked ones, so frame_leak only covers frames the rings passed by"
                    .into(),
            );
        }
        if !self.kernel_rx_seen {
            notes.push("no kernel receive events: RX positions cannot be compared with what the kernel wrote".into());
        }
        if let Some((inb, w)) = self.entries {
            if w > inb {
                notes.push(format!(
                    "the ring buffers wrapped: {} of {w} entries were overwritten",
                    w - inb
                ));
            }
        }
        if unjudged > 0 {
            notes.push(format!(
                "{unjudged} anomalies reach back before every CPU's buffer had started (unknown past) and were not judged"
            ));
        }

        let mut cpus: Vec<CpuSummary> = self
            .cpus
            .iter()
            .filter(|(_, c)| c.events > 0)
            .map(|(n, c)| CpuSummary {
                cpu: *n,
                events: c.events,
                first: c.first.tsref(),
                last: c.last.tsref(),
                buffer_started: c.marker,
            })
            .collect();
        cpus.sort_by_key(|c| c.cpu);

        let mut sockets: Vec<SocketSummary> = self
            .asocks
            .iter()
            .map(|s| SocketSummary {
                socket: s.name.clone(),
                xs: s
                    .ks
                    .map(|k| vec![format!("{:#x}", self.ksocks[k].xs)])
                    .unwrap_or_default(),
                rx: s.rx,
                krx: s.ks.map_or(0, |k| self.ksocks[k].krx),
            })
            .collect();
        for k in self.ksocks.iter().filter(|k| k.asock.is_none()) {
            sockets.push(SocketSummary {
                socket: format!("xs={:#x}", k.xs),
                xs: vec![format!("{:#x}", k.xs)],
                rx: 0,
                krx: k.krx,
            });
        }

        let (mode, size) = match self.mapping {
            Some(Mapping::Unaligned) => ("unaligned", None),
            Some(Mapping::Aligned { chunk }) => ("aligned", Some(format!("{chunk:#x}"))),
            None => ("aligned", None),
        };
        let history = self.history.take().map(|(h, events, omitted)| History {
            addr: format!("{h:#x}"),
            frame: format!("{:#x}", self.frame_of(h)),
            events,
            omitted,
        });
        let summary = Summary {
            verdict,
            findings: findings.len() as u64,
            lines: self.lines,
            events: self.events,
            lines_skipped: self.skipped,
            skipped_lines: self.skipped_lines.clone(),
            complete_from: complete.map(|c| c.tsref()),
            unjudged_before_complete: unjudged,
            cpus,
            recycled_reorders: self.recycled,
            chunk: ChunkInfo {
                mode,
                size,
                source: self.chunk_source,
                samples: self.samples.len() as u64,
                note: self.chunk_note.clone(),
            },
            backend: self.probe.clone().or_else(|| {
                self.kernel_rx_seen.then(|| ProbeInfo {
                    backend: "perf-probe".into(),
                    kernel: None,
                    flush: if self.ksocks.iter().any(|k| k.flush_seen) {
                        FlushMode::Exact
                    } else {
                        FlushMode::None
                    },
                })
            }),
            sockets,
            frames: self.frames.len() as u64,
            entries_in_buffer: self.entries.map(|e| e.0),
            entries_written: self.entries.map(|e| e.1),
            lost_events: self.lost,
            notes,
        };
        Report {
            schema_version: SCHEMA_VERSION,
            findings,
            summary,
            history,
        }
    }

    /// The finding a group's primary raw becomes.
    fn finding_of(&self, mut primary: Raw, also: Vec<Raw>) -> Finding {
        if primary.socket.is_none() {
            // The socket may have been joined to its xs after the finding.
            primary.socket = self.sock_name(primary.ks, None);
        }
        Finding {
            kind: primary.kind,
            verdict: primary.verdict,
            rule: primary.rule.as_str().to_string(),
            addr: primary.addr.map(|a| format!("{a:#x}")),
            frame: primary.frame.map(|f| format!("{f:#x}")),
            ts: primary.at.ts_text(),
            ts_ns: primary.at.ns(),
            cpus: primary.cpus,
            xs: primary.xs.map(|x| format!("{x:#x}")),
            socket: primary.socket,
            slot: primary.slot,
            line: primary.at.line,
            explanation: primary.explanation.into_text(),
            also: also.iter().map(related).collect(),
            consequences: Vec::new(),
            consequences_omitted: 0,
            timeline: primary.timeline.iter().map(Snap::to_public).collect(),
        }
    }

    /// Frames the FILL (or TX) order has long passed without them coming back.
    fn leaks(&mut self) {
        let mut found = Vec::new();
        for (pi, p) in self.pools.iter().enumerate() {
            let gap = (2 * p.peak as u64).max(256);
            for &(f, seq, at) in &p.fifo {
                if p.consumed_max > seq + gap {
                    let passed = p.consumed_max - seq;
                    found.push((pi, f, at, passed, "FILL", "RX"));
                }
            }
        }
        for s in &self.asocks {
            let gap = 256u64;
            // Sent, never completed, while many sent after it completed.
            for &(f, at, seq) in &s.tx_fifo {
                if s.tx_consumed > seq + gap {
                    found.push((usize::MAX, f, at, s.tx_consumed - seq, "TX", "COMPLETION"));
                }
            }
        }
        // Frames the application took and never gave back while it kept
        // taking others.
        let gap = APP_LEAK_GAP.max(2 * self.max_return_hold);
        // Without `free`/`hold` lines the app's own free list is invisible and
        // a frame resting there looks exactly like a leaked one.
        let app_free_traced = self.app_free_traced;
        let mut held: Vec<(u64, At, u64, u64)> = self
            .frames
            .iter()
            .filter(|_| app_free_traced)
            .filter(|(_, fs)| {
                matches!(fs.app, AppHold::Rx | AppHold::Comp | AppHold::Held)
                    && fs.kernel_copies() == 0
                    && self.app_taken.saturating_sub(fs.held_at) > gap
            })
            .map(|(f, fs)| (f, fs.last, self.app_taken - fs.held_at, fs.held_addr))
            .collect();
        held.sort_by_key(|h| h.1.line);
        for (f, at, passed, addr) in held {
            let expl = format!(
                "The application took frame {f:#x} at {} and never put it back on FILL or TX nor freed it, while \
                 it took {passed} other descriptors from RX/COMPLETION since: the frame leaked in the application.",
                at.cite()
            );
            let addr = if addr != 0 { addr } else { f };
            self.raw(
                Kind::FrameLeak,
                Verdict::Application,
                Rule::AppHeld,
                Some(addr),
                vec![f],
                at,
                vec![at.cpu],
                None,
                None,
                None,
                expl,
                at.order,
                false,
                at.line,
            );
        }
        for (_, f, at, passed, ring, back) in found {
            let still = self
                .frames
                .get(f)
                .map(|fs| fs.kernel_copies() > 0)
                .unwrap_or(false);
            if !still {
                continue;
            }
            let drops = if self.drops_seen {
                " XDP_STATISTICS shows drops."
            } else {
                ""
            };
            let expl = format!(
                "Frame {f:#x} left the application on {ring} at {} and never came back on {back}, while {passed} \
                 frames queued after it did.{drops} The kernel may have dropped it as an invalid descriptor \
                 (an application error), kept it on its free list, or lost it; the trace does not say which.",
                at.cite()
            );
            self.raw(
                Kind::FrameLeak,
                Verdict::Inconclusive,
                Rule::PassedByRing,
                Some(f),
                vec![f],
                at,
                vec![at.cpu],
                None,
                None,
                None,
                expl,
                at.order,
                false,
                at.line,
            );
        }
    }
}

/// File `r` under `f`, at most [`MAX_CONSEQUENCES`] of them. A consequence
/// of another kind than the finding's own (the poisoned or mismatched read
/// after hundreds of overlaps) takes the place of the latest repeat of the
/// finding's own kind; a poisoned or mismatched read is never dropped.
fn add_consequence(f: &mut Finding, r: Related) {
    if f.consequences.len() < MAX_CONSEQUENCES {
        f.consequences.push(r);
        return;
    }
    if r.kind != f.kind {
        if let Some(i) = f.consequences.iter().rposition(|c| c.kind == f.kind) {
            f.consequences.remove(i);
            f.consequences.push(r);
            f.consequences_omitted += 1;
            return;
        }
        if matches!(r.kind, Kind::PoisonedDescriptor | Kind::RxMismatch) {
            f.consequences.push(r);
            return;
        }
    }
    f.consequences_omitted += 1;
}

fn related(r: &Raw) -> Related {
    Related {
        kind: r.kind,
        rule: r.rule.as_str().to_string(),
        verdict: r.verdict,
        addr: r.addr.map(|a| format!("{a:#x}")),
        frame: r.frame.map(|f| format!("{f:#x}")),
        ts: r.at.ts_text(),
        ts_ns: r.at.ns(),
        line: r.at.line,
        cpus: r.cpus.clone(),
        explanation: r.explanation.render(),
    }
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
