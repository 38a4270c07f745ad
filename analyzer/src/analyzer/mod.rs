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

use rustc_hash::{FxHashMap, FxHashSet};

use crate::chunk::{self, Mapping};
use crate::frames::FrameTable;
use crate::parse::{Desc, Event, FlushMode, Line, Meta, SockKey};
use crate::report::{
    ChunkInfo, CpuSummary, Finding, History, Kind, OverallVerdict, ProbeInfo, Related, Report,
    SocketSummary, Summary, TimelineEntry, Verdict, SCHEMA_VERSION,
};
use crate::timeline::Snap;
use crate::Error;

mod dispatch;
mod explain;
mod fifo;
mod leaks;
mod learn;
mod ownership;
mod producer;
mod raw;
mod recorder;
mod rules;
mod rx;
mod sockets;
mod state;

pub use dispatch::for_each_addr;
use learn::Buffered;
pub use producer::published_before_redirect;
use raw::{Link, Raw, Tail, MAX_RAW};
use state::{ASock, ASockId, At, CpuState, Frame, IdVec, KSock, KSockId, Pool, PoolId, RawId};

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

const MAX_CONSEQUENCES: usize = 50;

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
