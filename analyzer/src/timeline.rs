//! Bounded rings of recent events, so a finding can show the interleaved
//! events around its moment without keeping the trace.
//!
//! Each socket (kernel `xs` side and application side) and each CPU keeps the
//! last [`RING`] events routed to it. Entries reuse their byte buffers, so
//! recording an event copies its line and allocates nothing once warm.

use crate::parse::Event;
use crate::report::TimelineEntry;

/// Events kept per ring.
pub(crate) const RING: usize = 64;

#[derive(Default, Clone)]
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
            frame: self.frames().first().map(|f| format!("{f:#x}")),
            highlighted,
        }
    }
}

/// A fixed-size ring of recent entries.
#[derive(Default)]
pub(crate) struct Ring {
    entries: Vec<Entry>,
    next: usize,
}

impl Ring {
    pub(crate) fn push(&mut self, ev: &Event<'_>, frames: &[u64]) {
        if self.entries.len() < RING {
            self.entries.push(Entry::default());
            let i = self.entries.len() - 1;
            self.entries[i].set(ev, frames);
            return;
        }
        self.entries[self.next].set(ev, frames);
        self.next = (self.next + 1) % RING;
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}

/// Merge rings into one timeline: the last `before` entries up to and
/// including `upto_line`, plus anything already recorded after it, sorted by
/// line and deduplicated. Entries on `moment_lines` or touching `frames` are
/// highlighted.
pub(crate) fn snapshot<'r>(
    rings: impl Iterator<Item = &'r Ring>,
    frames: &[u64],
    moment_lines: &[u64],
    upto_line: u64,
    before: usize,
) -> Vec<TimelineEntry> {
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
            e.to_public(hl)
        })
        .collect()
}
