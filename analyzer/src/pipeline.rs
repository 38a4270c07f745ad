//! Two-stage pipeline: one thread reads and parses, the caller's thread
//! analyzes.
//!
//! Parsing is independent per line and the checkers are sequential, so on a
//! machine with two cores the two halves run side by side and a trace takes
//! about as long as the slower half instead of the sum. Lines travel in
//! batches of about [`BATCH_BYTES`]: each batch owns the buffer its lines
//! were read into and the [`Line`]s decoded from them (a self-referential pair, so
//! nothing is parsed twice). At most [`DEPTH`] batches wait in the channel,
//! which bounds memory whatever the trace's size.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::parse::{parse_line, Line, MAX_LINE};

/// Input bytes per batch.
const BATCH_BYTES: usize = 512 * 1024;
/// Batches in flight between the threads.
const DEPTH: usize = 4;

type Lines<'a> = Vec<Line<'a>>;

self_cell::self_cell!(
    /// A run of consecutive lines: their bytes and what they decode to.
    pub(crate) struct Batch {
        owner: Vec<u8>,
        #[covariant]
        dependent: Lines,
    }
);

/// What the parsing thread sends: a batch and the input bytes consumed so
/// far, or the read error that ended the input.
pub(crate) type Message = io::Result<(Batch, u64)>;

/// A consumed batch's allocations, going back to the parsing thread: a
/// batch's line vector is about a megabyte, and allocating and freeing one
/// per batch on two threads cost page faults on every batch.
type Spare = (Vec<u8>, Vec<Line<'static>>);

/// Empty `lines` and give its allocation a lifetime that no longer ties it
/// to the bytes it pointed into (an in-place collect: no element is ever
/// produced, so nothing can outlive its batch).
#[expect(
    clippy::unnecessary_filter_map,
    reason = "filter_map is what changes the element type; filter would keep the lifetime"
)]
fn recycle(mut lines: Vec<Line<'_>>) -> Vec<Line<'static>> {
    lines.clear();
    lines.into_iter().filter_map(|_| None).collect()
}

/// Buffer size: a batch plus room for the line that straddles its end.
const CAP: usize = BATCH_BYTES + MAX_LINE + 2;

/// Reads straight into batch buffers and finds the lines in place, so a
/// line's bytes are copied once (by `read`), not again into a batch. The
/// line rules are [`TraceReader`]'s: lines end at `\n`, a last line without
/// one still counts, and a line longer than [`MAX_LINE`] is handed out as
/// its first `MAX_LINE + 1` bytes (which the parser rejects as too long)
/// with the rest skipped.
///
/// [`TraceReader`]: crate::reader::TraceReader
struct Blocks<R> {
    inner: R,
    eof: bool,
    skipping: bool,
    line_no: u64,
    bytes: u64,
    /// The unfinished last line of the previous buffer.
    carry: Vec<u8>,
    /// A read error, reported after the complete lines read before it.
    error: Option<io::Error>,
}

impl<R: Read> Blocks<R> {
    fn new(inner: R) -> Self {
        Blocks {
            inner,
            eof: false,
            skipping: false,
            line_no: 0,
            bytes: 0,
            carry: Vec::new(),
            error: None,
        }
    }

    /// Fill `buf` with about a batch of input and push the spans
    /// `(line number, start, end)` of the lines in it. Returns false once
    /// the input has ended or failed (the last lines may still be in
    /// `spans`; a failure is then in `error`).
    fn fill(&mut self, buf: &mut Vec<u8>, spans: &mut Vec<(u64, u32, u32)>) -> bool {
        if buf.len() < CAP {
            buf.resize(CAP, 0);
        }
        let mut end = self.carry.len();
        buf[..end].copy_from_slice(&self.carry);
        self.carry.clear();
        while end < BATCH_BYTES && !self.eof {
            match self.inner.read(&mut buf[end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    end += n;
                    self.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        let mut start = 0;
        if self.skipping {
            match memchr::memchr(b'\n', &buf[..end]) {
                Some(p) => {
                    start = p + 1;
                    self.skipping = false;
                }
                None => return !self.eof && self.error.is_none(),
            }
        }
        let base = start;
        for nl in memchr::memchr_iter(b'\n', &buf[base..end]) {
            let e = base + nl;
            self.line_no += 1;
            spans.push((self.line_no, start as u32, e as u32));
            start = e + 1;
        }
        if self.eof {
            if start < end {
                self.line_no += 1;
                spans.push((self.line_no, start as u32, end as u32));
            }
            return false;
        }
        if self.error.is_some() {
            // The unfinished line is dropped, as the line reader does.
            return false;
        }
        if end - start > MAX_LINE {
            self.line_no += 1;
            spans.push((self.line_no, start as u32, (start + MAX_LINE + 1) as u32));
            self.skipping = true;
        } else {
            self.carry.extend_from_slice(&buf[start..end]);
        }
        true
    }
}

/// Split `reader` into lines, parse them and send them in order. Returns
/// when the input ends, on a read error (sent as the last message), or when
/// the receiver has gone away.
fn produce(reader: impl Read, tx: &SyncSender<Message>, spare: &Receiver<Spare>) {
    let mut blocks = Blocks::new(reader);
    let mut spans: Vec<(u64, u32, u32)> = Vec::new();
    loop {
        let (mut buf, lines) = spare
            .try_recv()
            .unwrap_or_else(|_| (Vec::with_capacity(CAP), Vec::new()));
        let more = blocks.fill(&mut buf, &mut spans);
        if !spans.is_empty() {
            let spans_ref: &[(u64, u32, u32)] = &spans;
            let batch = Batch::new(buf, move |b| {
                let mut lines: Vec<Line<'_>> = lines;
                lines.extend(
                    spans_ref
                        .iter()
                        .map(|&(n, s, e)| parse_line(n, &b[s as usize..e as usize])),
                );
                lines
            });
            spans.clear();
            if tx.send(Ok((batch, blocks.bytes))).is_err() {
                return;
            }
        }
        if !more {
            if let Some(e) = blocks.error.take() {
                let _ = tx.send(Err(e));
            }
            return;
        }
    }
}

/// Run `consume` on every batch of lines of `reader`, in order, while
/// another thread reads and parses ahead. `progress` gets the input bytes
/// consumed after each batch. A read error stops the run and is returned.
pub(crate) fn for_each_batch(
    reader: impl Read + Send,
    consume: &mut dyn FnMut(&[Line<'_>]),
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let (tx, rx) = sync_channel::<Message>(DEPTH);
    // Emptied batch buffers go back to the reader so that steady state
    // allocates nothing.
    let (spare_tx, spare_rx) = sync_channel::<Spare>(DEPTH + 1);
    std::thread::scope(|s| {
        s.spawn(move || produce(reader, &tx, &spare_rx));
        // `rx` moves into the loop so that an early return drops it before
        // the scope joins the reader, which then stops at its next send.
        for msg in rx {
            let (mut batch, bytes) = msg?;
            consume(batch.borrow_dependent());
            progress(bytes);
            let lines = batch.with_dependent_mut(|_, lines| recycle(std::mem::take(lines)));
            // The buffer keeps its length: the next fill overwrites it.
            let _ = spare_tx.try_send((batch.into_owner(), lines));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Reads at most `step` bytes at a time.
    struct Dribble<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(out.len()).min(self.step);
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// (number, first 300 bytes, longer than MAX_LINE) of every line.
    type Shape = (u64, Vec<u8>, bool);

    fn shape(n: u64, raw: &[u8]) -> Shape {
        (n, raw[..raw.len().min(300)].to_vec(), raw.len() > MAX_LINE)
    }

    fn by_blocks(data: &[u8], step: usize) -> Vec<Shape> {
        let mut b = Blocks::new(Dribble { data, step });
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        loop {
            let more = b.fill(&mut buf, &mut spans);
            for &(n, s, e) in &spans {
                out.push(shape(n, &buf[s as usize..e as usize]));
            }
            spans.clear();
            if !more {
                return out;
            }
        }
    }

    fn by_reader(data: &[u8], step: usize) -> Vec<Shape> {
        let mut r = crate::reader::TraceReader::new(Dribble { data, step });
        let mut out = Vec::new();
        while let Some((n, raw)) = r.next_raw().unwrap() {
            out.push(shape(n, raw));
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn blocks_split_lines_like_the_reader(
            pieces in proptest::collection::vec((0usize..3, 0usize..2000, 0u8..4), 0..40),
            step in 1usize..200_000,
            huge in 0usize..3,
        ) {
            let mut data = Vec::new();
            for (i, (kind, len, end)) in pieces.iter().enumerate() {
                let len = match (kind, i % 7 == huge) {
                    (_, true) => MAX_LINE + len * 200,
                    (0, _) => *len,
                    _ => len % 40,
                };
                data.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
                match end {
                    0 => data.extend_from_slice(b"\r\n"),
                    1 | 2 => data.push(b'\n'),
                    _ => {}
                }
            }
            // Over-long lines differ only in how much of them is handed
            // out, which the parser cuts to the same 256 bytes.
            proptest::prop_assert_eq!(by_blocks(&data, step), by_reader(&data, step));
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
            &mut |lines| {
                for l in lines {
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

    #[test]
    fn read_error_comes_back_after_the_lines_before_it() {
        let mut seen = 0;
        let err =
            for_each_batch(Failing(b"a\nb\n"), &mut |l| seen += l.len(), &mut |_| {}).unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert_eq!(seen, 2);
    }
}
