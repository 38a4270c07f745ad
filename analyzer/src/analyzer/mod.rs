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
//!
//! Each module has one job:
//!
//! - here: [`Analyzer`] and [`Options`], feeding lines in, and what every
//!   checker shares (`frame_of`, `settle`);
//! - `learn`: the chunk size, before the address → frame mapping is known;
//! - `dispatch`: one event, from its line to the checkers' handlers;
//! - `attempts`: a kernel receive is an attempt until confirmed; a failed
//!   one (RX ring full) is taken back from the checkers and noted;
//! - `skb`: generic mode, where the kernel's receive line comes after the
//!   application's read: the receive is placed before the read;
//! - `sockets`: the sockets and pools a line names;
//! - `umems`: the UMEM a line's frames are in, when a trace has several;
//! - `state`: the state kept (frames, sockets, pools, CPUs), typed ids;
//! - the checkers, one per family of rules: `ownership`
//!   (`invalid_transition`, `duplicate_in_flight`), `producer`
//!   (`concurrent_producer`), `rx` (`rx_mismatch`, `poisoned_descriptor`),
//!   `poison` (what the application's own producer proves about a poisoned
//!   read, and the overlaps with an inferred end that need such proof),
//!   `audit` (`frame_leak/audit`, from the recorder's `audit` lines),
//!   `fifo` (`fifo_order`), `recorder` (the recorder's own lines), `leaks`
//!   (`frame_leak`, at the end), `instrumentation` (the recording itself
//!   is incomplete or wrong), `overrun` (a COMPLETION ring the kernel
//!   wrote over: one root for its duplicates, losses and reorders);
//! - `rules`: every rule's name; `raw`: a rule firing; `explain`: how
//!   explanations are written;
//! - `judge`: the end (cut, fold, file); `summary`: the report's summary.
//!
//! A new rule is a variant of `rules::Rule` (with its row in `docs/JSON.md`,
//! which a test holds it to), fired with `Analyzer::raw` from its checker's
//! module; a new checker is a module with its own `impl Analyzer` block,
//! called from `dispatch`.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::chunk::{self, Mapping};
use crate::frames::FrameTable;
use crate::parse::{Desc, Event, FlushMode, Line, Meta, SockKey};
use crate::report::{ProbeInfo, TimelineEntry};

mod attempts;
mod audit;
mod dispatch;
mod explain;
mod fifo;
mod instrumentation;
mod judge;
mod leaks;
mod learn;
mod overrun;
mod ownership;
mod poison;
mod producer;
mod raw;
mod recorder;
mod rules;
mod rx;
mod skb;
mod sockets;
mod state;
mod summary;
mod umems;

pub use dispatch::for_each_addr;
use learn::Buffered;
pub use producer::published_before_redirect;
use raw::{Raw, Tail};
use state::{ASock, ASockId, At, CpuState, Frame, IdVec, KSock, KSockId, Pool, PoolId, RawId};
use umems::UmemOf;

pub use crate::parse::DEFAULT_POISON;

/// Analysis options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Chunk (frame) size; `None` to take it from a `umem` line or infer it.
    pub chunk_size: Option<u64>,
    /// Force unaligned mode (frames compare by the low 48 bits).
    pub unaligned: bool,
    /// Poison value; `None` for the `umem` line's or [`DEFAULT_POISON`].
    pub poison: Option<u64>,
    /// Collect one descriptor's whole life ([`Report::history`](crate::Report::history)).
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
    /// Sockets by identity (`sid=`).
    by_sid: FxHashMap<u64, ASockId>,
    /// Every socket declared on a key, in order of declaration.
    sk_groups: FxHashMap<SockKey, Vec<ASockId>>,
    /// The current line's socket was picked among several of one key
    /// without certainty: its TX order is not judged.
    order_blind: bool,
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
    /// Per UMEM (by ordinal): `app_taken` when the app last gave one of its
    /// frames back (FILL, TX or its free list). A frame held while others
    /// of its UMEM kept coming back is leaked; a UMEM whose frames the app
    /// never gives back (a test that stops refilling FILL on purpose) leaks
    /// nothing frame by frame.
    last_return: Vec<u64>,
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
    /// The RX batch being read (`rx` line): what the app said about it.
    rx_claim: Option<poison::RxBatch>,
    /// Overlaps whose end is only inferred, waiting for evidence.
    overlaps: Vec<poison::Overlap>,
    /// The app's RX batch (count on its kernel socket) of each raw finding
    /// made while reading one.
    read_batch: FxHashMap<RawId, u64>,
    /// Raw findings left out at the end (overlaps nothing tied to).
    dropped: FxHashSet<RawId>,
    /// How many overlaps with an inferred end nothing tied to.
    inferred_untied: u64,
    /// The latest `audit` line of each UMEM.
    audits: FxHashMap<u64, audit::Audit>,
    /// What the instrumentation rules keep.
    instr: instrumentation::Instr,
    /// The COMPLETION rings' order, for the overrun rule.
    comp: overrun::CompOrder,
    /// Every UMEM id named, with its ordinal (see `umems`).
    umems: FxHashMap<u64, u16>,
    /// The UMEM ordinal of each kernel pool pointer seen next to a socket.
    kpools: FxHashMap<u64, u16>,
    /// The UMEM of the event being processed.
    umem_of: UmemOf,
    /// Each UMEM's own address → frame mapping, by ordinal, from its `umem`
    /// line (a program may give its UMEMs different chunk sizes: 6.12's
    /// xskxceiver opens one of 4 KiB chunks before a test's two of 2 KiB).
    umem_maps: Vec<Option<Mapping>>,
    /// Each UMEM's layout, by ordinal, from its `umem` line: which TX
    /// descriptors the kernel refuses (`xskdbg_format::reject`).
    umem_geoms: Vec<Option<xskdbg_format::Geometry>>,
    /// TX descriptors left out as refused by the kernel, and the first.
    tx_rejected: u64,
    tx_rejected_first: Option<(u64, u64, &'static str, At)>,
    /// Refused TX descriptors not completed (yet), by frame key and raw
    /// address: kernels whose copy mode completes a refused descriptor
    /// (Debian's 6.12.118, 6.18) hand them back on COMPLETION, older ones
    /// and zero-copy never do. At most `REFUSED_MAX`.
    refused: FxHashMap<(u64, u64), u32>,
    /// Completions that handed a refused descriptor back, and (frame key,
    /// address) of each (at most `REFUSED_MAX`).
    refused_completed: u64,
    refused_back: FxHashSet<(u64, u64)>,
    /// Recorder violation lines that a refused descriptor explains.
    refused_recorder_lines: u64,
    /// (frame key, address) of completions of addresses never sent that
    /// `comp_never_sent` reported: the recorder's `not_recorded` about the
    /// same completion folds into it.
    comp_unsent: FxHashSet<(u64, u64)>,
    /// Frames the kernel read from TX (`ktx`) while the application's
    /// record did not show them there, and where: a completion of one is
    /// no proof that the kernel completed a frame it was not sending (the
    /// app may have sent it without recording the batch). At most
    /// `KTX_UNSENT_MAX`.
    ktx_unsent: FxHashMap<u64, ownership::KtxUnsent>,
    /// (frame, moment) pairs `taken_unrecorded` already looked back from.
    unrecorded_walked: FxHashSet<(u64, u64)>,
    /// Some UMEM's mapping differs from `mapping`: `frame_of` looks the
    /// event's UMEM up (else one mapping serves all, as it always did).
    mixed_maps: bool,
    /// The last application ring operation seen before any line named a
    /// UMEM: a trace whose start (with the recorder's declarations) was
    /// overwritten. If it names several UMEMs in the end, frames before
    /// this point cannot be told apart by UMEM (see `judge`).
    undeclared_to: Option<At>,
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
            by_sid: FxHashMap::default(),
            sk_groups: FxHashMap::default(),
            order_blind: false,
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
            last_return: Vec::new(),
            app_free_traced: false,
            last_poison: None,
            batch_pos: None,
            last_sk: None,
            last_xs: None,
            rx_claim: None,
            overlaps: Vec::new(),
            read_batch: FxHashMap::default(),
            dropped: FxHashSet::default(),
            inferred_untied: 0,
            audits: FxHashMap::default(),
            instr: instrumentation::Instr::default(),
            comp: overrun::CompOrder::default(),
            umems: FxHashMap::default(),
            kpools: FxHashMap::default(),
            umem_of: UmemOf::default(),
            umem_maps: Vec::new(),
            umem_geoms: Vec::new(),
            tx_rejected: 0,
            tx_rejected_first: None,
            refused: FxHashMap::default(),
            refused_completed: 0,
            refused_back: FxHashSet::default(),
            refused_recorder_lines: 0,
            comp_unsent: FxHashSet::default(),
            ktx_unsent: FxHashMap::default(),
            unrecorded_walked: FxHashSet::default(),
            mixed_maps: false,
            undeclared_to: None,
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
    /// descriptor list (see [`Op::list`](crate::parse::Op::list)) one after the other, and where
    /// each line's ends.
    pub(crate) fn feed_lines_observed(
        &mut self,
        lines: &[Line<'_>],
        decoded: Option<(&[Desc], &[u32])>,
        observer: &mut dyn FnMut(&Event<'_>),
    ) {
        let first_raw = self.raws.len();
        let order = seq_order(lines);
        let at = |k: usize| order.as_ref().map_or(k, |o| o[k]);
        for k in 0..lines.len() {
            let i = at(k);
            let line = &lines[i];
            self.batch_pos = u32::try_from(i).ok();
            if let Line::Event(ev) = line {
                observer(ev);
            }
            let pre = decoded.and_then(|(descs, ends)| {
                let start = match i {
                    0 => 0,
                    _ => *ends.get(i - 1)? as usize,
                };
                let end = *ends.get(i)? as usize;
                descs.get(start..end)
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

    /// An entry: the CPU's bookkeeping, then its checkers (or the chunk
    /// size's learning). `pre`: its descriptor list, when decoded already.
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

    /// The frame an address is in: its chunk base, in the current
    /// event's UMEM (see `umems`).
    #[inline]
    fn frame_of(&self, addr: u64) -> u64 {
        if self.mixed_maps {
            return self.frame_of_mixed(addr);
        }
        let base = self
            .mapping
            .unwrap_or(Mapping::Aligned {
                chunk: chunk::MIN_CHUNK,
            })
            .frame(addr);
        match self.umem_of {
            UmemOf::Tag(t) => base | t,
            UmemOf::Guess(w) => self.guess_frame(|_| base, w),
        }
    }
}

/// The order to feed a batch in when the recorder's sequence numbers
/// (`seq=`) say that ftrace printed some of its lines out of order (stamps
/// of different CPUs that tie or cross): `None` when they are in order.
/// A line printed after lines of its recorder with higher numbers moves
/// up, to right before the first of them; every other line keeps its
/// place relative to the rest. It only ever moves earlier: a kernel event
/// it enabled (the transmit of a frame it put on TX) was printed after it
/// anyway. Within one batch of lines only.
fn seq_order(lines: &[Line<'_>]) -> Option<Vec<usize>> {
    let seq = |l: &Line<'_>| match l {
        Line::Event(ev) if matches!(ev.op, crate::parse::Op::App(_)) => {
            crate::parse::seq_of(ev.body)
        }
        _ => None,
    };
    // The top 24 bits name the recorder (its process).
    let mut last: FxHashMap<u64, u64> = FxHashMap::default();
    let mut inverted = false;
    for l in lines {
        if let Some(s) = seq(l) {
            let prev = last.entry(s >> 40).or_insert(s);
            if s < *prev {
                inverted = true;
                break;
            }
            *prev = s;
        }
    }
    if !inverted {
        return None;
    }
    let seqs: Vec<Option<u64>> = lines.iter().map(seq).collect();
    let mut order: Vec<usize> = Vec::with_capacity(lines.len());
    for (i, s) in seqs.iter().enumerate() {
        let Some(s) = *s else {
            order.push(i);
            continue;
        };
        // Back over what is placed: the earliest line of this recorder
        // numbered after this one, up to one of it numbered before.
        let mut to = order.len();
        for (k, &j) in order.iter().enumerate().rev().take(4096) {
            match seqs[j] {
                Some(t) if t >> 40 == s >> 40 && t > s => to = k,
                Some(t) if t >> 40 == s >> 40 => break,
                _ => {}
            }
        }
        order.insert(to, i);
    }
    Some(order)
}
