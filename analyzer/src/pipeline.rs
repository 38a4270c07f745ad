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

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::parse::{parse_line, Line};
use crate::reader::{Blocks, CAP};

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
            if tx.send(Ok((batch, blocks.bytes_read()))).is_err() {
                return;
            }
        }
        if !more {
            if let Some(e) = blocks.take_error() {
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
