//! Drained kernel records: their own CPU and stamp, and the stage that puts
//! them back in time order before the checkers see them.
//!
//! With ring output the probes' records reach the trace through drainer
//! threads (`probes/src/drain.rs`): one per CPU, writing into
//! `trace_marker` every few milliseconds. Such a line sits where it was
//! drained, not where its event happened, so it carries its own CPU and
//! stamp right after the op word (`xskdbg:1 krx cpu=1 t=13.352313042 ...`),
//! and every drain ends with a watermark, `xskdbg:1 kdrain cpu=C t=W ...`:
//! CPU C's records stamped before W are all in the trace by then.
//!
//! [`Stage`] sits between the parsed batches and the checkers. It stays out
//! of the way (every batch passes as it is) until the first drained line;
//! from then on it holds the lines back and releases them in the order of
//! their stamps (a drained line's own `t=`, any other line's ftrace
//! timestamp, which the `mono` trace clock makes the same clock), as far as
//! every drainer's latest watermark allows. A drained line reaches the
//! checkers with its own CPU and stamp in place of the drainer's. The
//! reorder bound is therefore not a guess: a line waits until every
//! drainer has written past it, however late a drainer ran; memory is
//! bounded by [`MAX_HELD`] batches, past which the oldest lines go out
//! anyway and a record arriving behind them is counted as late.
//!
//! A CPU's buffer that wrapped (`##### CPU N buffer started ####`, or, for
//! the CPU of the trace's first entry, which ftrace never marks, a header
//! whose `entries-in-buffer` is below `entries-written`) starts at its
//! first entry, whether or not the stage is holding lines yet; records drained into it that are stamped before that
//! entry are the survivors of a stretch whose other records were lost with
//! the overwritten part, so they are dropped like the rest of the unknown
//! past: CPU N's history then starts where its buffer does, and the
//! analyzer's `complete_from` stays right. A `kdrain` whose `lost=` grew
//! (a full ring refused records) becomes a lost-events line for that CPU.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::parse::{Event, Line, Meta, Timestamp};
use crate::pipeline::{recycle, Parsed};

/// Batches (of about half a megabyte each) the stage may hold before it
/// releases the oldest lines without waiting for the watermarks.
pub(crate) const MAX_HELD: usize = 128;

/// A drained line's own CPU, its stamp in nanoseconds, and the stamp's text
/// (inside the line, so the report quotes it as written).
pub fn own_stamp<'a>(ev: &Event<'a>) -> Option<(u32, u64, &'a [u8])> {
    stamp_of(ev.body)
}

/// [`own_stamp`] of a line's body (`xskdbg:1 k<op> cpu=C t=S.NNNNNNNNN ...`).
pub fn stamp_of(body: &[u8]) -> Option<(u32, u64, &[u8])> {
    let b = body.strip_prefix(b"xskdbg:1 k")?;
    let sp = memchr::memchr(b' ', b)?;
    let rest = b[sp..].strip_prefix(b" cpu=")?;
    let end = memchr::memchr(b' ', rest)?;
    let cpu = u32::from_str_radix(std::str::from_utf8(&rest[..end]).ok()?, 16).ok()?;
    let t = rest[end..].strip_prefix(b" t=")?;
    let tend = memchr::memchr(b' ', t).unwrap_or(t.len());
    let text = &t[..tend];
    let dot = memchr::memchr(b'.', text)?;
    let (secs, frac) = (&text[..dot], &text[dot + 1..]);
    if secs.is_empty() || frac.len() != 9 {
        return None;
    }
    let mut s = 0u64;
    for &c in secs {
        if !c.is_ascii_digit() {
            return None;
        }
        s = s.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    let mut f = 0u64;
    for &c in frac {
        if !c.is_ascii_digit() {
            return None;
        }
        f = f * 10 + u64::from(c - b'0');
    }
    Some((cpu, s.checked_mul(1_000_000_000)?.checked_add(f)?, text))
}

/// `key=` of a drained line's body as a hex number.
fn hex_field(body: &[u8], key: &[u8]) -> Option<u64> {
    let mut at = 0;
    while let Some(i) = memchr::memmem::find(&body[at..], key) {
        let start = at + i;
        at = start + key.len();
        if start > 0 && body[start - 1] != b' ' {
            continue;
        }
        let v = &body[at..];
        let end = memchr::memchr(b' ', v).unwrap_or(v.len());
        return u64::from_str_radix(std::str::from_utf8(&v[..end]).ok()?, 16).ok();
    }
    None
}

/// A line as the checkers must see it: a drained record with its own CPU
/// and stamp, anything else unchanged.
pub fn as_recorded<'a>(ev: &Event<'a>) -> Event<'a> {
    let mut e = ev.clone();
    if let Some((cpu, ns, text)) = own_stamp(ev) {
        e.cpu = cpu;
        e.ts = Timestamp {
            text,
            ns: Some(ns),
            order: ns,
        };
    }
    e
}

/// What the stage did, for the report's notes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Drained records seen.
    pub drained: u64,
    /// Records that arrived after lines stamped later had been released.
    pub late: u64,
    /// Records dropped because their CPU buffer's overwritten part held
    /// their neighbours.
    pub before_start: u64,
    /// Records the rings refused (from `kdrain lost=`).
    pub lost: u64,
}

/// Where a held line is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    /// Line `idx` of held batch `batch` (absolute batch number).
    Held { batch: u64, idx: u32 },
    /// A lost-events line made from a `kdrain` (line number, CPU, count).
    Lost { line: u64, cpu: u32, count: u64 },
}

/// A CPU buffer's start, for wrapped buffers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    /// No `buffer started` line for this CPU.
    Whole,
    /// Its `buffer started` line was read, its first entry not yet.
    Pending,
    /// Its first entry's stamp.
    At(u64),
}

/// Something holding a batch of parsed lines.
pub(crate) trait Holds {
    /// The lines.
    fn parsed(&self) -> &Parsed<'_>;
}

/// The reordering stage (see the module's documentation).
pub(crate) struct Stage<H> {
    active: bool,
    held: VecDeque<(H, usize)>,
    /// Absolute number of `held[0]`.
    base: u64,
    /// Absolute number of the next batch.
    next: u64,
    heap: BinaryHeap<Reverse<(u64, u64, Item)>>,
    seq: u64,
    /// Every drainer's latest watermark (`u64::MAX` after its last drain).
    marks: Vec<(u32, u64)>,
    /// Drainers in the session (`kdrain of=`).
    of: usize,
    /// The largest stamp released.
    released: u64,
    /// The largest ftrace stamp read.
    last_key: u64,
    starts: Vec<Start>,
    /// CPUs whose start is [`Start::Pending`].
    pending: usize,
    /// The header says entries were overwritten (`entries-in-buffer` below
    /// `entries-written`).
    wrapped: bool,
    /// The trace's first entry was read.
    entry_seen: bool,
    lost_seen: Vec<(u32, u64)>,
    counts: Counts,
    scratch: Vec<Item>,
    out: Parsed<'static>,
}

impl<H: Holds> Stage<H> {
    pub(crate) fn new() -> Self {
        Stage {
            active: false,
            held: VecDeque::new(),
            base: 0,
            next: 0,
            heap: BinaryHeap::new(),
            seq: 0,
            marks: Vec::new(),
            of: 1,
            released: 0,
            last_key: 0,
            starts: Vec::new(),
            pending: 0,
            wrapped: false,
            entry_seen: false,
            lost_seen: Vec::new(),
            counts: Counts::default(),
            scratch: Vec::new(),
            out: Parsed::empty(),
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }

    /// The oldest batch still held.
    pub(crate) fn front(&self) -> Option<&H> {
        self.held.front().map(|h| &h.0)
    }

    /// Takes the next batch; `consume` gets lines in stamp order, `done`
    /// every batch no line of which is held any more.
    pub(crate) fn push(
        &mut self,
        h: H,
        consume: &mut dyn FnMut(&Parsed<'_>),
        done: &mut dyn FnMut(H),
    ) {
        if !self.active {
            let p = h.parsed();
            if !p.lines.iter().any(is_drained) {
                for l in &p.lines {
                    match l {
                        Line::Event(ev) => {
                            // Past the first entry with no start pending,
                            // an entry changes no start: one test a line.
                            if self.pending > 0 || !self.entry_seen {
                                self.note_start(l, false);
                            }
                            self.last_key = self.last_key.max(ev.ts.order);
                        }
                        Line::Meta { .. } => self.note_start(l, false),
                        _ => {}
                    }
                }
                consume(p);
                done(h);
                return;
            }
            self.active = true;
            // Lines already checked are behind us: a record stamped before
            // them arrives late.
            self.released = self.last_key;
        }
        let batch = self.next;
        self.next += 1;
        let n = self.classify(batch, h.parsed());
        self.held.push_back((h, n));
        let mark = self.watermark();
        let force = self.held.len() > MAX_HELD;
        self.release(mark, force, consume, done);
    }

    /// The input ended: everything goes out in order.
    pub(crate) fn finish(&mut self, consume: &mut dyn FnMut(&Parsed<'_>), done: &mut dyn FnMut(H)) {
        self.release(u64::MAX, false, consume, done);
        while let Some((h, _)) = self.held.pop_front() {
            done(h);
        }
    }

    /// The stamp up to which every drainer has written.
    fn watermark(&self) -> u64 {
        if self.marks.len() < self.of {
            return 0;
        }
        self.marks.iter().map(|m| m.1).min().unwrap_or(0)
    }

    fn queue(&mut self, key: u64, item: Item) {
        self.seq += 1;
        self.heap.push(Reverse((key, self.seq, item)));
    }

    fn start_of(&mut self, cpu: u32) -> &mut Start {
        let i = cpu as usize;
        if self.starts.len() <= i {
            self.starts.resize(i + 1, Start::Whole);
        }
        &mut self.starts[i]
    }

    /// Where the CPU buffers start, from every line, held or not: a
    /// `buffer started` marker makes its CPU's start pending, and so does
    /// the trace's first entry when the header says entries were
    /// overwritten, since ftrace marks the start of every CPU's buffer but
    /// that entry's (`test_cpu_buff_start()`: not before the first entry;
    /// a one-CPU trace that wrapped has no marker at all). A pending start
    /// is its CPU's first entry's ftrace stamp, whatever the entry carries:
    /// a drainer's entry (its first line has the header; the packed ones
    /// after it have none) is written after the records in it, and the
    /// application's lines of their time on this CPU went with the
    /// overwritten part.
    fn note_start(&mut self, l: &Line<'_>, drained: bool) {
        match l {
            Line::Event(ev) if !drained || !ev.task.is_empty() => {
                if !self.entry_seen {
                    self.entry_seen = true;
                    if self.wrapped && *self.start_of(ev.cpu) == Start::Whole {
                        *self.start_of(ev.cpu) = Start::Pending;
                        self.pending += 1;
                    }
                }
                if self.pending > 0 {
                    let s = self.start_of(ev.cpu);
                    if *s == Start::Pending {
                        *s = Start::At(ev.ts.order);
                        self.pending -= 1;
                    }
                }
            }
            Line::Meta {
                meta: Meta::CpuBufferStarted(cpu),
                ..
            } => {
                let s = self.start_of(*cpu);
                if *s != Start::Pending {
                    *s = Start::Pending;
                    self.pending += 1;
                }
            }
            Line::Meta {
                meta: Meta::Entries {
                    in_buffer, written, ..
                },
                ..
            } => self.wrapped = in_buffer < written,
            _ => {}
        }
    }

    /// Queues a batch's lines by their stamps; returns how many it holds.
    fn classify(&mut self, batch: u64, p: &Parsed<'_>) -> usize {
        let mut n = 0;
        for (idx, l) in p.lines.iter().enumerate() {
            let item = Item::Held {
                batch,
                idx: idx as u32,
            };
            let stamp = match l {
                Line::Event(ev) => own_stamp(ev),
                _ => None,
            };
            self.note_start(l, stamp.is_some());
            let key = match l {
                Line::Event(ev) => match stamp {
                    Some((cpu, t, _)) => {
                        if let Start::At(s) = *self.start_of(ev.cpu) {
                            if t < s {
                                self.counts.before_start += 1;
                                continue;
                            }
                        }
                        if ev.body.starts_with(b"xskdbg:1 kdrain ") {
                            self.drain_mark(ev, cpu, t);
                        } else {
                            self.counts.drained += 1;
                        }
                        if t < self.released {
                            // Behind what was released: out now, in place.
                            self.counts.late +=
                                u64::from(!ev.body.starts_with(b"xskdbg:1 kdrain "));
                            self.released
                        } else {
                            t
                        }
                    }
                    None => {
                        self.last_key = self.last_key.max(ev.ts.order);
                        ev.ts.order.max(self.released)
                    }
                },
                _ => self.last_key.max(self.released),
            };
            self.queue(key, item);
            n += 1;
        }
        n
    }

    /// A `kdrain` line: the drainer's watermark, its drainer count, and
    /// records its ring lost since the last one.
    fn drain_mark(&mut self, ev: &Event<'_>, cpu: u32, t: u64) {
        if let Some(of) = hex_field(ev.body, b"of=") {
            self.of = self.of.max(of as usize);
        }
        let fin = memchr::memmem::find(ev.body, b" final=1").is_some();
        let mark = if fin { u64::MAX } else { t };
        match self.marks.iter_mut().find(|m| m.0 == cpu) {
            Some(m) => m.1 = m.1.max(mark),
            None => self.marks.push((cpu, mark)),
        }
        if let Some(lost) = hex_field(ev.body, b"lost=") {
            let seen = match self.lost_seen.iter_mut().find(|m| m.0 == cpu) {
                Some(m) => m,
                None => {
                    self.lost_seen.push((cpu, 0));
                    let i = self.lost_seen.len() - 1;
                    &mut self.lost_seen[i]
                }
            };
            if lost > seen.1 {
                let count = lost - seen.1;
                seen.1 = lost;
                self.counts.lost += count;
                self.queue(
                    t.max(self.released),
                    Item::Lost {
                        line: ev.line,
                        cpu,
                        count,
                    },
                );
            }
        }
    }

    /// Sends every queued line stamped up to `mark` (and, with `force`, the
    /// oldest ones until few enough batches are held) to `consume`.
    fn release(
        &mut self,
        mark: u64,
        force: bool,
        consume: &mut dyn FnMut(&Parsed<'_>),
        done: &mut dyn FnMut(H),
    ) {
        let mut items = std::mem::take(&mut self.scratch);
        items.clear();
        // Forced: the oldest batch's worth of lines at least.
        let mut forced = if force {
            self.held.front().map_or(0, |h| h.1)
        } else {
            0
        };
        while let Some(Reverse((key, _, item))) = self.heap.peek().copied() {
            if key > mark && forced == 0 {
                break;
            }
            self.heap.pop();
            forced = forced.saturating_sub(1);
            self.released = self.released.max(key);
            items.push(item);
        }
        if items.is_empty() {
            self.scratch = items;
            return;
        }
        let out = std::mem::replace(&mut self.out, Parsed::empty());
        let (mut lines, mut descs, mut ends) = (out.lines, out.descs, out.ends);
        lines.clear();
        descs.clear();
        ends.clear();
        for item in &items {
            match *item {
                Item::Held { batch, idx } => {
                    let slot = (batch - self.base) as usize;
                    let p = self.held[slot].0.parsed();
                    let i = idx as usize;
                    let line = match &p.lines[i] {
                        Line::Event(ev) if own_stamp(ev).is_some() => Line::Event(as_recorded(ev)),
                        l => l.clone(),
                    };
                    lines.push(line);
                    let from = if i == 0 { 0 } else { p.ends[i - 1] as usize };
                    descs.extend_from_slice(&p.descs[from..p.ends[i] as usize]);
                    ends.push(descs.len() as u32);
                }
                Item::Lost { line, cpu, count } => {
                    lines.push(Line::Meta {
                        line,
                        meta: Meta::Lost { cpu, count },
                    });
                    ends.push(descs.len() as u32);
                }
            }
        }
        let view = Parsed::from_parts(lines, descs, ends);
        consume(&view);
        let (lines, descs, ends) = view.into_parts();
        self.out = Parsed::from_parts(recycle(lines), descs, ends);
        for item in &items {
            if let Item::Held { batch, .. } = *item {
                self.held[(batch - self.base) as usize].1 -= 1;
            }
        }
        while self.held.front().is_some_and(|h| h.1 == 0) {
            if let Some((h, _)) = self.held.pop_front() {
                done(h);
            }
            self.base += 1;
        }
        self.scratch = items;
    }
}

fn is_drained(l: &Line<'_>) -> bool {
    matches!(l, Line::Event(ev) if own_stamp(ev).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_line;

    #[test]
    fn a_drained_line_has_its_own_cpu_and_stamp() {
        let raw = b"  xskdbg-drain1-88  [001] ..... 13.360000: tracing_mark_write: xskdbg:1 krx cpu=0 t=13.352313042 xs=1 sk=1:2:0 a=100 len=40 slot=3 prod=3 mode=drv";
        let Line::Event(ev) = parse_line(1, raw) else {
            panic!("not an event")
        };
        let (cpu, ns, text) = own_stamp(&ev).unwrap();
        assert_eq!((cpu, ns, text), (0, 13_352_313_042, &b"13.352313042"[..]));
        let r = as_recorded(&ev);
        assert_eq!((r.cpu, r.ts.order, r.ts.ns), (0, ns, Some(ns)));
        // A printk line has no own stamp.
        let raw = b"  <idle>-0  [001] ..s.. 13.352313: bpf_trace_printk: xskdbg:1 krx xs=1 sk=1:2:0 a=100 len=40 slot=3";
        let Line::Event(ev) = parse_line(1, raw) else {
            panic!()
        };
        assert!(own_stamp(&ev).is_none());
        for bad in [
            &b"xskdbg:1 kpoll cpu=0 t=13.35231304 napi=1 dev=2 work=1 budget=40"[..],
            b"xskdbg:1 kpoll cpu=zz t=13.352313042 napi=1 dev=2 work=1 budget=40",
            b"xskdbg:1 kpoll t=13.352313042 cpu=0 napi=1 dev=2 work=1 budget=40",
            b"xskdbg:1 kpoll cpu=0 t=.352313042 napi=1 dev=2 work=1 budget=40",
        ] {
            let raw = [
                &b"  d-1 [001] ..... 1.000000: tracing_mark_write: "[..],
                bad,
            ]
            .concat();
            if let Line::Event(ev) = parse_line(1, &raw) {
                assert!(own_stamp(&ev).is_none(), "{}", String::from_utf8_lossy(bad));
            }
        }
        // The lines after an entry's first (packed by the drainer) have no
        // ftrace header: the record's own CPU and stamp are the event's.
        let raw =
            b"xskdbg:1 krx cpu=1 t=13.352313042 xs=1 sk=1:2:0 a=100 len=40 slot=3 prod=3 mode=drv";
        for l in [parse_line(7, raw), crate::parse::parse_line_general(7, raw)] {
            let Line::Event(ev) = l else {
                panic!("a packed record is not an event: {l:?}")
            };
            assert_eq!(
                (ev.cpu, ev.ts.order, ev.ts.text),
                (1, 13_352_313_042, &b"13.352313042"[..])
            );
            assert_eq!(
                (ev.name, ev.task, ev.pid),
                (&b"tracing_mark_write"[..], &b""[..], None)
            );
            assert!(matches!(ev.op, crate::parse::Op::Kernel(_)), "{:?}", ev.op);
            assert!(is_drained(&Line::Event(ev)));
        }
        // Without its own stamp, or not at the start, it is no entry.
        for raw in [
            &b"xskdbg:1 krx xs=1 sk=1:2:0 a=100 len=40 slot=3"[..],
            b" xskdbg:1 krx cpu=1 t=13.352313042 xs=1",
            b"xskdbg:1 hold cpu=1 t=13.352313042 n=1 a=1000",
        ] {
            assert!(
                matches!(parse_line(1, raw), Line::Bad { .. }),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        // A packed record with a malformed field is a bad project line.
        assert!(matches!(
            parse_line(1, b"xskdbg:1 krx cpu=1 t=13.352313042 xs=zz"),
            Line::Bad {
                reason: crate::parse::BadReason::BadField,
                ..
            }
        ));
        assert_eq!(
            hex_field(b"xskdbg:1 kdrain cpu=1 t=1.0 n=a lost=3 of=2", b"of="),
            Some(2)
        );
        assert_eq!(
            hex_field(b"xskdbg:1 kdrain cpu=1 t=1.0 xof=5 of=2", b"of="),
            Some(2)
        );
    }
}
