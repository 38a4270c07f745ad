//! Bounded rings of recent events, so a finding can show the interleaved
//! events around its moment without keeping the trace.
//!
//! Each socket (kernel `xs` side and application side) and each CPU keeps the
//! last [`RING`] events routed to it. Entries reuse their byte buffers, so
//! recording an event allocates nothing once warm.
//!
//! Copying every line into its ring cost the checkers about 15% of their
//! time, while at most [`RING`] lines per ring survive a batch of thousands.
//! So an event fed from a batch ([`Ring::push_pending`]) only notes its
//! index in the batch; [`Ring::resolve`] copies the survivors when the batch
//! ends. A snapshot taken meanwhile copies such entries as they are, and
//! [`Snap::resolve`] fills in their text at the same point.
//!
//! A snapshot keeps [`Snap`]s (the entries as recorded), turned into report
//! entries only for the findings that are reported: a wrapped trace's first
//! stretch can make thousands of findings that cannot be judged, and
//! formatting their timelines cost more than finding them.

use crate::parse::{Event, Line};
use crate::report::TimelineEntry;

/// Events kept per ring.
pub(crate) const RING: usize = 64;

/// `Entry::pending` when the entry's text is in place.
const RESOLVED: u32 = u32::MAX;

#[derive(Clone)]
pub(crate) struct Entry {
    pub line: u64,
    pub cpu: u32,
    pub ts_ns: Option<u64>,
    raw: Vec<u8>,
    task: (u32, u32),
    pid: Option<u32>,
    ts: (u32, u32),
    name: (u32, u32),
    body: (u32, u32),
    pub frames: [u64; 4],
    pub nframes: u8,
    /// The event's index in the current batch while its text is not copied
    /// yet, or [`RESOLVED`].
    pending: u32,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            line: 0,
            cpu: 0,
            ts_ns: None,
            raw: Vec::new(),
            task: (0, 0),
            pid: None,
            ts: (0, 0),
            name: (0, 0),
            body: (0, 0),
            frames: [0; 4],
            nframes: 0,
            pending: RESOLVED,
        }
    }
}

fn range(outer: &[u8], inner: &[u8]) -> (u32, u32) {
    let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
    if start + inner.len() > outer.len() {
        return (0, 0);
    }
    (start as u32, (start + inner.len()) as u32)
}

fn text(raw: &[u8], r: (u32, u32)) -> String {
    String::from_utf8_lossy(raw.get(r.0 as usize..r.1 as usize).unwrap_or(&[])).into_owned()
}

impl Entry {
    pub(crate) fn set(&mut self, ev: &Event<'_>, frames: &[u64]) {
        self.line = ev.line;
        self.cpu = ev.cpu;
        self.ts_ns = ev.ts.ns;
        self.raw.clear();
        self.raw.extend_from_slice(ev.raw);
        self.task = range(ev.raw, ev.task);
        self.pid = ev.pid;
        self.ts = range(ev.raw, ev.ts.text);
        self.name = range(ev.raw, ev.name);
        self.body = range(ev.raw, ev.body);
        self.set_frames(frames);
        self.pending = RESOLVED;
    }

    /// Copy the text of an entry recorded from `batch` (see
    /// [`Ring::push_pending`]); nothing for an entry whose text is in place.
    fn resolve(&mut self, batch: &[Line<'_>]) {
        if self.pending == RESOLVED {
            return;
        }
        let frames = self.frames;
        match batch.get(self.pending as usize) {
            Some(Line::Event(ev)) => self.set(ev, &frames[..usize::from(self.nframes)]),
            // Not reachable when callers keep the contract; an empty entry
            // beats a wrong one.
            _ => self.pending = RESOLVED,
        }
    }

    fn set_frames(&mut self, frames: &[u64]) {
        let n = frames.len().min(4);
        self.frames[..n].copy_from_slice(&frames[..n]);
        self.nframes = n as u8;
    }

    pub(crate) fn frames(&self) -> &[u64] {
        &self.frames[..self.nframes as usize]
    }

    pub(crate) fn to_public(&self, highlighted: bool) -> TimelineEntry {
        let task = text(&self.raw, self.task);
        TimelineEntry {
            line: self.line,
            cpu: self.cpu,
            ts: text(&self.raw, self.ts),
            ts_ns: self.ts_ns,
            task: match self.pid {
                Some(p) => format!("{task}-{p}"),
                None => task,
            },
            event: text(&self.raw, self.name),
            body: text(&self.raw, self.body),
            raw: String::from_utf8_lossy(&self.raw).into_owned(),
            frame: self
                .frames()
                .first()
                .map(|&f| format!("{:#x}", crate::chunk::shown(f))),
            highlighted,
        }
    }
}

/// One entry of a finding's timeline, kept as recorded until the report.
#[derive(Clone)]
pub(crate) struct Snap {
    entry: Entry,
    /// One of the events the finding is about.
    pub highlighted: bool,
}

impl Snap {
    pub(crate) fn of(ev: &Event<'_>, frames: &[u64], highlighted: bool) -> Snap {
        let mut entry = Entry::default();
        entry.set(ev, frames);
        Snap { entry, highlighted }
    }

    pub(crate) fn line(&self) -> u64 {
        self.entry.line
    }

    pub(crate) fn to_public(&self) -> TimelineEntry {
        self.entry.to_public(self.highlighted)
    }

    /// Copy the text of an entry snapshotted from the batch being fed.
    pub(crate) fn resolve(&mut self, batch: &[Line<'_>]) {
        self.entry.resolve(batch);
    }
}

/// A fixed-size ring of recent entries.
#[derive(Default)]
pub(crate) struct Ring {
    entries: Vec<Entry>,
    next: usize,
}

impl Ring {
    fn slot(&mut self) -> &mut Entry {
        if self.entries.len() < RING {
            self.entries.push(Entry::default());
            return self.entries.last_mut().expect("just pushed");
        }
        let i = self.next;
        self.next = (self.next + 1) % RING;
        &mut self.entries[i]
    }

    pub(crate) fn push(&mut self, ev: &Event<'_>, frames: &[u64]) {
        self.slot().set(ev, frames);
    }

    /// Record `ev`, line `index` of the batch being fed, without copying its
    /// text; [`Ring::resolve`] with that batch must follow.
    pub(crate) fn push_pending(&mut self, ev: &Event<'_>, index: u32, frames: &[u64]) {
        let e = self.slot();
        e.line = ev.line;
        e.cpu = ev.cpu;
        e.ts_ns = ev.ts.ns;
        e.set_frames(frames);
        e.pending = index;
    }

    /// Copy the text of the entries recorded from `batch`.
    pub(crate) fn resolve(&mut self, batch: &[Line<'_>]) {
        for e in &mut self.entries {
            e.resolve(batch);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}

/// Merge rings into one timeline: the last `before` entries up to and
/// including `upto_line`, plus anything already recorded after it, sorted by
/// line and deduplicated. Entries on `moment_lines` or touching `frames` are
/// highlighted. Entries whose text is not copied yet stay so until
/// [`Snap::resolve`].
pub(crate) fn snapshot<'r>(
    rings: impl Iterator<Item = &'r Ring>,
    frames: &[u64],
    moment_lines: &[u64],
    upto_line: u64,
    before: usize,
) -> Vec<Snap> {
    let mut all: Vec<&Entry> = rings.flat_map(|r| r.iter()).collect();
    all.sort_by_key(|e| e.line);
    all.dedup_by_key(|e| e.line);
    let split = all.partition_point(|e| e.line <= upto_line);
    let start = split.saturating_sub(before);
    let end = (split + 8).min(all.len());
    all[start..end]
        .iter()
        .map(|e| {
            let hl =
                moment_lines.contains(&e.line) || e.frames().iter().any(|f| frames.contains(f));
            Snap {
                entry: (*e).clone(),
                highlighted: hl,
            }
        })
        .collect()
}
