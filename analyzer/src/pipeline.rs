//! Two-stage pipeline: one thread reads and parses, the caller's thread
//! analyzes.
//!
//! Parsing is independent per line and the checkers are sequential, so on a
//! machine with two cores the two halves run side by side and a trace takes
//! about as long as the slower half instead of the sum. Lines travel in
//! batches of about [`crate::reader::BATCH_BYTES`]: each batch owns the buffer its lines
//! were read into and the [`Line`]s decoded from them (a self-referential pair, so
//! nothing is parsed twice). At most [`DEPTH`] batches wait in the channel,
//! which bounds memory whatever the trace's size.
//!
//! Which half is slower depends on the trace (long descriptor lists weigh on
//! the checkers, short kernel lines on the parser) and on the machine, so
//! the parsing thread parses only the first part of each batch, a share that
//! keeps the queue about half full: when the caller takes a batch and finds
//! the queue shorter than that the share shrinks, longer and it grows. The
//! caller parses the rest of each batch itself before checking it. Neither
//! thread then waits for the other, and a trace takes about half the total
//! work instead of the larger half.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::drained::{Counts, Holds, Stage};
use crate::parse::{parse_line_into, Desc, Line};
use crate::reader::{split_mapped, Blocks, CAP};

/// Batches in flight between the threads. A deep queue rides out the
/// stretches where one side is briefly slower without moving parsing to the
/// checkers' side, where it costs more (the line's bytes are in the other
/// core's cache): 16 against 4 took about 5% off the 1 GB benchmark, for
/// about 25 MB more memory.
const DEPTH: usize = 16;

/// The parsing thread's share of each batch's lines is `share / SHARE_ONE`.
const SHARE_ONE: u32 = 1024;

/// How far one batch taken from a short or long queue moves the share.
const SHARE_STEP: u32 = 8;

/// Batches queued between the threads, and the channel's send side.
struct Queue<'q> {
    tx: SyncSender<Message>,
    len: &'q AtomicUsize,
}

/// A batch's lines: where they are in the buffer and what they decode to.
pub(crate) struct Parsed<'a> {
    /// `(line number, start, end)` of every line of the batch.
    spans: Vec<(u64, u32, u32)>,
    /// The decoded lines: the first ones until [`Parsed::parse_to`] has
    /// reached the end, then one per span.
    pub(crate) lines: Vec<Line<'a>>,
    /// Every line's descriptor list ([`crate::parse::Op::list`]), one after
    /// the other, decoded with the line (on the checkers' thread the lists
    /// were about a sixth of its work).
    pub(crate) descs: Vec<Desc>,
    /// Where each line's descriptors end in `descs`.
    pub(crate) ends: Vec<u32>,
}

impl<'a> Parsed<'a> {
    /// A batch view made of lines taken from other batches (the reordering
    /// stage's output).
    pub(crate) fn from_parts(lines: Vec<Line<'a>>, descs: Vec<Desc>, ends: Vec<u32>) -> Self {
        Parsed {
            spans: Vec::new(),
            lines,
            descs,
            ends,
        }
    }

    /// The parts [`Parsed::from_parts`] took.
    pub(crate) fn into_parts(self) -> (Vec<Line<'a>>, Vec<Desc>, Vec<u32>) {
        (self.lines, self.descs, self.ends)
    }

    /// Empty, keeping the allocations.
    fn clear(&mut self) {
        self.spans.clear();
        self.lines.clear();
        self.descs.clear();
        self.ends.clear();
    }

    /// The parsing thread's part of a batch just split: its first lines,
    /// by `share`.
    fn parse_share(&mut self, bytes: &'a [u8], share: &AtomicU32) {
        let n = self.spans.len();
        let mine = (n * share.load(Ordering::Relaxed) as usize).div_ceil(SHARE_ONE as usize);
        self.parse_to(bytes, mine);
    }

    /// Decode the lines up to `upto` (a span index) from `bytes`, the
    /// batch's buffer.
    fn parse_to(&mut self, bytes: &'a [u8], upto: usize) {
        let from = self.lines.len();
        let upto = upto.clamp(from, self.spans.len());
        for &(n, s, e) in &self.spans[from..upto] {
            self.lines.push(Line::Blank { line: n });
            let Some(line) = self.lines.last_mut() else {
                break;
            };
            parse_line_into(n, &bytes[s as usize..e as usize], line);
            if let Line::Event(ev) = line {
                if let Some(list) = ev.op.list() {
                    self.descs.extend(list.iter());
                }
            }
            // A batch holds far fewer than 2^32 descriptors (at most one per
            // two input bytes).
            self.ends.push(self.descs.len() as u32);
        }
    }
}

self_cell::self_cell!(
    /// A run of consecutive lines: their bytes and what they decode to.
    pub(crate) struct Batch {
        owner: Vec<u8>,
        #[covariant]
        dependent: Parsed,
    }
);

/// What the parsing thread sends: a batch and the input bytes consumed so
/// far, or the read error that ended the input.
pub(crate) type Message = io::Result<(Batch, u64)>;

/// A consumed batch's allocations, going back to the parsing thread: a
/// batch's line vector is about a megabyte, and allocating and freeing one
/// per batch on two threads cost page faults on every batch.
type Spare = (Vec<u8>, Parsed<'static>);

/// Empty `lines` and give its allocation a lifetime that no longer ties it
/// to the bytes it pointed into (an in-place collect: no element is ever
/// produced, so nothing can outlive its batch).
#[expect(
    clippy::unnecessary_filter_map,
    reason = "filter_map is what changes the element type; filter would keep the lifetime"
)]
pub(crate) fn recycle(mut lines: Vec<Line<'_>>) -> Vec<Line<'static>> {
    lines.clear();
    lines.into_iter().filter_map(|_| None).collect()
}

fn empty() -> Parsed<'static> {
    Parsed::empty()
}

impl Parsed<'static> {
    /// No lines, no allocations.
    pub(crate) fn empty() -> Self {
        Parsed {
            spans: Vec::new(),
            lines: Vec::new(),
            descs: Vec::new(),
            ends: Vec::new(),
        }
    }
}

impl Holds for Batch {
    fn parsed(&self) -> &Parsed<'_> {
        self.borrow_dependent()
    }
}

/// A batch of a mapped input: its lines, where it starts, and the input
/// consumed after it.
struct MappedBatch<'a> {
    lines: Parsed<'a>,
    from: usize,
}

/// Sends a mapped batch's line vector back to the parsing thread.
fn recycler<'a, 's>(tx: &'s SyncSender<Parsed<'a>>) -> impl FnMut(MappedBatch<'a>) + 's
where
    'a: 's,
{
    move |m| {
        let mut p = m.lines;
        // No line of the batch outlives it (see `release`).
        p.lines.clear();
        let _ = tx.try_send(p);
    }
}

impl Holds for MappedBatch<'_> {
    fn parsed(&self) -> &Parsed<'_> {
        &self.lines
    }
}

/// Split `reader` into lines, parse this thread's share of them and send
/// them in order. Returns when the input ends, on a read error (sent as the
/// last message), or when the receiver has gone away.
fn produce(reader: impl Read, queue: &Queue<'_>, spare: &Receiver<Spare>, share: &AtomicU32) {
    let mut blocks = Blocks::new(reader);
    loop {
        let (mut buf, mut parsed) = spare
            .try_recv()
            .unwrap_or_else(|_| (Vec::with_capacity(CAP), empty()));
        parsed.clear();
        let more = blocks.fill(&mut buf, &mut parsed.spans);
        if !parsed.spans.is_empty() {
            let batch = Batch::new(buf, move |b| {
                let mut p: Parsed<'_> = parsed;
                p.parse_share(b, share);
                p
            });
            queue.len.fetch_add(1, Ordering::Relaxed);
            if queue.tx.send(Ok((batch, blocks.bytes_read()))).is_err() {
                return;
            }
        }
        if !more {
            if let Some(e) = blocks.take_error() {
                queue.len.fetch_add(1, Ordering::Relaxed);
                let _ = queue.tx.send(Err(e));
            }
            return;
        }
    }
}

/// Run `consume` on every batch of lines of `reader`, in order (drained
/// kernel records put back in time order, see [`crate::drained`]), while
/// another thread reads and parses ahead. `progress` gets the input bytes
/// consumed after each batch. A read error stops the run and is returned.
pub(crate) fn for_each_batch(
    reader: impl Read + Send,
    consume: &mut dyn FnMut(&Parsed<'_>),
    progress: &mut dyn FnMut(u64),
) -> io::Result<Counts> {
    run(reader, consume, progress, SHARE_ONE, true)
}

/// [`for_each_batch`] starting from the parsing thread's share `start`,
/// steered or not.
fn run(
    reader: impl Read + Send,
    consume: &mut dyn FnMut(&Parsed<'_>),
    progress: &mut dyn FnMut(u64),
    start: u32,
    steer: bool,
) -> io::Result<Counts> {
    let (tx, rx) = sync_channel::<Message>(DEPTH);
    // Emptied batch buffers go back to the reader so that steady state
    // allocates nothing.
    let (spare_tx, spare_rx) = sync_channel::<Spare>(DEPTH + 1);
    let share = AtomicU32::new(start);
    let len = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let share = &share;
        let queue = Queue { tx, len: &len };
        s.spawn(move || produce(reader, &queue, &spare_rx, share));
        let mut stage = Stage::new();
        let mut done = |mut batch: Batch| {
            let parsed = batch.with_dependent_mut(|_, p| Parsed {
                spans: std::mem::take(&mut p.spans),
                lines: recycle(std::mem::take(&mut p.lines)),
                descs: std::mem::take(&mut p.descs),
                ends: std::mem::take(&mut p.ends),
            });
            // The buffer keeps its length: the next fill overwrites it.
            let _ = spare_tx.try_send((batch.into_owner(), parsed));
        };
        // `rx` moves into the loop so that an early return drops it before
        // the scope joins the reader, which then stops at its next send.
        for msg in rx {
            if steer {
                steer_share(share, &len);
            }
            let (mut batch, bytes) = msg?;
            batch.with_dependent_mut(|b, p| p.parse_to(b, usize::MAX));
            stage.push(batch, consume, &mut done);
            progress(bytes);
        }
        stage.finish(consume, &mut done);
        Ok(stage.counts())
    })
}

/// A batch was taken from the queue: what is left queued behind it steers
/// the parsing thread's share.
fn steer_share(share: &AtomicU32, len: &AtomicUsize) {
    let left = len.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
    let s = share.load(Ordering::Relaxed);
    if left < DEPTH / 2 {
        share.store(s.saturating_sub(SHARE_STEP), Ordering::Relaxed);
    } else if left > DEPTH / 2 {
        share.store((s + SHARE_STEP).min(SHARE_ONE), Ordering::Relaxed);
    }
}

/// [`for_each_batch`] over a whole input already in memory (a mapped
/// file): the lines are decoded where they lie, nothing is read or copied.
/// `release` is told, after each batch, where the input still needed
/// starts (nothing before it is referenced any more).
pub(crate) fn for_each_mapped(
    bytes: &[u8],
    consume: &mut dyn FnMut(&Parsed<'_>),
    progress: &mut dyn FnMut(u64),
    release: &mut dyn FnMut(usize),
) -> Counts {
    // (lines, where the batch starts, bytes consumed after it)
    let (tx, rx) = sync_channel::<(Parsed<'_>, usize, u64)>(DEPTH);
    let (spare_tx, spare_rx) = sync_channel::<Parsed<'_>>(DEPTH + 1);
    let share = AtomicU32::new(SHARE_ONE);
    let len = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let (share, len_ref) = (&share, &len);
        s.spawn(move || {
            let mut from = 0;
            let mut line_no = 0;
            while from < bytes.len() {
                let mut p = spare_rx.try_recv().unwrap_or_else(|_| empty());
                p.clear();
                let next = split_mapped(bytes, from, &mut line_no, &mut p.spans);
                p.parse_share(&bytes[from..], share);
                len_ref.fetch_add(1, Ordering::Relaxed);
                if tx.send((p, from, next as u64)).is_err() {
                    return;
                }
                from = next;
            }
        });
        let mut stage = Stage::new();
        let mut done = recycler(&spare_tx);
        for (mut p, from, consumed) in rx {
            steer_share(share, &len);
            p.parse_to(&bytes[from..], usize::MAX);
            stage.push(MappedBatch { lines: p, from }, consume, &mut done);
            progress(consumed);
            // Everything before the oldest batch still held is done with.
            release(stage.front().map_or(consumed as usize, |m| m.from));
        }
        stage.finish(consume, &mut done);
        release(bytes.len());
        stage.counts()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_line;

    /// A reader that fails after handing out some bytes.
    struct Failing(&'static [u8]);

    impl Read for Failing {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = self.0.len().min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn recycling_keeps_the_allocation() {
        let text = b"a\nb\n".to_vec();
        let mut lines: Vec<Line<'_>> = Vec::with_capacity(100);
        lines.push(parse_line(1, &text[..1]));
        let cap = lines.capacity();
        let ptr = lines.as_ptr() as usize;
        let back = recycle(lines);
        assert!(back.is_empty());
        assert_eq!(back.capacity(), cap);
        assert_eq!(back.as_ptr() as usize, ptr);
    }

    #[test]
    fn lines_arrive_in_order_across_batches() {
        let mut text = Vec::new();
        for i in 0..100_000u32 {
            text.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let mut seen = 0u64;
        let mut last_progress = 0;
        for_each_batch(
            &text[..],
            &mut |p| {
                for l in &p.lines {
                    seen += 1;
                    assert_eq!(l.number(), seen);
                }
            },
            &mut |b| last_progress = b,
        )
        .unwrap();
        assert_eq!(seen, 100_000);
        assert_eq!(last_progress, text.len() as u64);
    }

    /// Whichever thread parses a line, and whatever the share, the batches
    /// hold what `parse_line` gives, and each line's descriptors.
    #[test]
    fn lines_parsed_on_either_side_are_the_same() {
        let mut text = Vec::new();
        for i in 0..20_000u64 {
            let line = match i % 4 {
                0 => format!(
                    "          <idle>-0       [001] ..s1. 100.{i:06}: bpf_trace_printk: xskdbg:1 krx xs=ffff1 sk=1:5:0 a={:x} len=40 slot={i:x}\n",
                    0x1000 + (i % 64) * 0x800
                ),
                1 => format!(
                    "           app-1       [000] ..... 100.{i:06}: tracing_mark_write: xskdbg:1 fill pool=1 n=3 a={:x},{:x},1800\n",
                    i * 0x800,
                    i * 0x1000
                ),
                2 => format!("garbage {i}\n"),
                _ => "\n".to_string(),
            };
            text.extend_from_slice(line.as_bytes());
        }
        let want: Vec<String> = text
            .split(|&b| b == b'\n')
            .enumerate()
            .take(20_000)
            .map(|(i, raw)| format!("{:?}", parse_line(i as u64 + 1, raw)))
            .collect();
        for (start, steer) in [
            (0, false),
            (SHARE_ONE / 3, false),
            (SHARE_ONE, false),
            (SHARE_ONE, true),
        ] {
            let mut got = Vec::new();
            let mut descs = 0;
            run(
                &text[..],
                &mut |p| {
                    assert_eq!(p.lines.len(), p.ends.len());
                    assert_eq!(p.ends.last().copied().unwrap_or(0) as usize, p.descs.len());
                    descs += p.descs.len();
                    got.extend(p.lines.iter().map(|l| format!("{l:?}")));
                },
                &mut |_| {},
                start,
                steer,
            )
            .unwrap();
            assert_eq!(got, want, "share {start}, steered {steer}");
            assert_eq!(descs, 5_000 * 3, "share {start}, steered {steer}");
        }
    }

    #[test]
    fn a_mapped_input_gives_the_lines_the_reader_gives() {
        let mut text = Vec::new();
        for i in 0..30_000u64 {
            text.extend_from_slice(
                format!(
                    "           app-1       [000] ..... 100.{i:06}: tracing_mark_write: xskdbg:1 fill pool=1 n=2 a={:x},1800\n",
                    i * 0x800
                )
                .as_bytes(),
            );
        }
        text.extend_from_slice(b"no newline at the end");
        let collect = |p: &Parsed<'_>, out: &mut Vec<String>, descs: &mut usize| {
            *descs += p.descs.len();
            out.extend(p.lines.iter().map(|l| format!("{l:?}")));
        };
        let (mut want, mut want_descs) = (Vec::new(), 0);
        for_each_batch(
            &text[..],
            &mut |p| collect(p, &mut want, &mut want_descs),
            &mut |_| {},
        )
        .unwrap();
        let (mut got, mut got_descs) = (Vec::new(), 0);
        let mut last = 0;
        let mut released = 0;
        for_each_mapped(
            &text,
            &mut |p| collect(p, &mut got, &mut got_descs),
            &mut |b| last = b,
            &mut |upto| {
                assert!(upto >= released);
                released = upto;
            },
        );
        assert_eq!(released, text.len());
        assert_eq!(got.len(), 30_001);
        assert_eq!(got, want);
        assert_eq!(got_descs, want_descs);
        assert_eq!(last, text.len() as u64);
    }

    #[test]
    fn read_error_comes_back_after_the_lines_before_it() {
        let mut seen = 0;
        let err = for_each_batch(
            Failing(b"a\nb\n"),
            &mut |p| seen += p.lines.len(),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert_eq!(seen, 2);
    }
}
