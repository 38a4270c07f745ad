//! Renders ftrace `trace` file lines: the header, `##### CPU N buffer
//! started ####` annotations and entries `TASK-PID [CPU] FLAGS TS: EVENT: BODY`
//! (the body is the simulator's, `sim::lines`).
//!
//! Hot path for `--size 1G`: every number is written by hand into one reused
//! byte buffer (no `format!`, no allocation per line), and the buffer goes to
//! the sink in large blocks.

use std::io::{self, Write};

use crate::{Clock, Counts, Op};

/// Flush the line buffer to the sink once it holds this much.
const BLOCK: usize = 256 * 1024;

/// A task as ftrace prints it: `comm` right-aligned in 16 columns, `-`, the
/// PID left-aligned in 7, then the space before `[CPU]`.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    prefix: Vec<u8>,
}

impl Task {
    pub(crate) fn new(comm: &str, pid: u32) -> Self {
        // The kernel keeps at most 15 bytes of comm (TASK_COMM_LEN 16).
        let comm: String = comm.chars().take(15).collect();
        Task {
            prefix: format!("{comm:>16}-{pid:<7} ").into_bytes(),
        }
    }
}

/// Writes lines, applies the per-CPU "buffer wrapped" window and counts what
/// it emitted.
pub(crate) struct Emitter<W: Write> {
    out: W,
    buf: Vec<u8>,
    pub(crate) clock: Clock,
    /// Entries on CPU c are dropped (overwritten) while `started[c]` is false.
    pub(crate) started: Vec<bool>,
    /// Whether the buffer had overruns: ftrace then annotates every CPU's
    /// first entry except the trace's very first one.
    annotate: bool,
    seen: Vec<bool>,
    any_entry: bool,
    /// Lines written so far (1-based number of the last line).
    pub(crate) line: u64,
    /// Bytes of entries and annotations (the header excluded, so that a
    /// `--size` limit stops at the same entry whatever the header says).
    pub(crate) body_bytes: u64,
    pub(crate) counts: Counts,
    /// Entry counter for `Clock::Counter`.
    counter: u64,
    /// Timestamp of the first entry after every CPU started.
    pub(crate) complete_from: Option<u64>,
    /// The timestamp text of the last entry written.
    last_ts: Vec<u8>,
}

impl<W: Write> Emitter<W> {
    pub(crate) fn new(out: W, clock: Clock, cpus: usize, annotate: bool) -> Self {
        Emitter {
            out,
            buf: Vec::with_capacity(BLOCK + 8192),
            clock,
            started: vec![!annotate; cpus],
            annotate,
            seen: vec![false; cpus],
            any_entry: false,
            line: 0,
            body_bytes: 0,
            counts: Counts::new(cpus),
            counter: 0,
            complete_from: None,
            last_ts: Vec::with_capacity(24),
        }
    }

    /// The `trace` file header, as `tracer: nop` prints it on a 6.x kernel.
    pub(crate) fn header(&mut self, in_buffer: u64, written: u64, cpus: usize) -> io::Result<()> {
        let h = format!(
            "# tracer: nop\n\
             #\n\
             # entries-in-buffer/entries-written: {in_buffer}/{written}   #P:{cpus}\n\
             #\n\
             #                                _-----=> irqs-off/BH-disabled\n\
             #                               / _----=> need-resched\n\
             #                              | / _---=> hardirq/softirq\n\
             #                              || / _--=> preempt-depth\n\
             #                              ||| / _-=> migrate-disable\n\
             #                              |||| /     delay\n\
             #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n\
             #              | |         |   |||||     |         |\n"
        );
        self.line += h.bytes().filter(|&b| b == b'\n').count() as u64;
        self.buf.extend_from_slice(h.as_bytes());
        self.maybe_flush()
    }

    /// Whether an entry on `cpu` would be kept.
    pub(crate) fn keeps(&self, cpu: u16) -> bool {
        self.started.get(usize::from(cpu)).copied().unwrap_or(false)
    }

    /// Writes one entry; `body` appends the text after `EVENT: `. Returns the
    /// entry's line number, or `None` when the CPU's buffer had not started
    /// (the entry was overwritten in the ring buffer).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn entry(
        &mut self,
        cpu: u16,
        task: &Task,
        flags: &[u8; 5],
        ts_ns: u64,
        event: &str,
        op: Op,
        sock: Option<usize>,
        descs: u64,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> io::Result<Option<u64>> {
        let c = usize::from(cpu);
        self.counts.written += 1;
        if !self.keeps(cpu) {
            return Ok(None);
        }
        let start = self.buf.len();
        if !self.seen[c] {
            self.seen[c] = true;
            if self.annotate && self.any_entry {
                self.buf.extend_from_slice(b"##### CPU ");
                put_dec(&mut self.buf, u64::from(cpu));
                self.buf.extend_from_slice(b" buffer started ####\n");
                self.line += 1;
            }
            if self.complete_from.is_none() && self.seen.iter().all(|&s| s) {
                self.complete_from = Some(ts_ns);
            }
        }
        self.any_entry = true;
        self.buf.extend_from_slice(&task.prefix);
        self.buf.push(b'[');
        put_dec_width(&mut self.buf, u64::from(cpu), 3, b'0');
        self.buf.extend_from_slice(b"] ");
        self.buf.extend_from_slice(flags);
        self.buf.push(b' ');
        let ts_start = self.buf.len();
        self.put_ts(ts_ns);
        self.last_ts.clear();
        self.last_ts
            .extend_from_slice(self.buf[ts_start..].trim_ascii_start());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(event.as_bytes());
        self.buf.extend_from_slice(b": ");
        body(&mut self.buf);
        self.buf.push(b'\n');
        self.line += 1;
        self.body_bytes += (self.buf.len() - start) as u64;
        self.counts.add(c, op, sock, descs);
        self.maybe_flush()?;
        Ok(Some(self.line))
    }

    /// The timestamp text of the last entry written (as the trace shows it).
    pub(crate) fn last_ts_text(&self) -> String {
        String::from_utf8_lossy(&self.last_ts).into_owned()
    }

    fn put_ts(&mut self, ns: u64) {
        match self.clock {
            Clock::Local => {
                // `%5lu.%06lu`, like trace_print_context() for ns clocks.
                let us = ns / 1000;
                put_dec_width(&mut self.buf, crate::BASE_SECS + us / 1_000_000, 5, b' ');
                self.buf.push(b'.');
                put_dec_width(&mut self.buf, us % 1_000_000, 6, b'0');
            }
            Clock::Counter => {
                // `%12llu` for clocks that are not times.
                self.counter += 1;
                put_dec_width(&mut self.buf, self.counter, 12, b' ');
            }
            Clock::X86Tsc => {
                // A 2.9 GHz TSC that started counting at boot.
                let ticks = (crate::BASE_SECS * 1_000_000_000 + ns).saturating_mul(29) / 10;
                put_dec_width(&mut self.buf, ticks, 12, b' ');
            }
        }
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= BLOCK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes out what is buffered and returns the sink.
    pub(crate) fn finish(mut self) -> io::Result<(W, Counts, u64, u64, Option<u64>)> {
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok((
            self.out,
            self.counts,
            self.line,
            self.body_bytes,
            self.complete_from,
        ))
    }
}

/// Decimal.
pub(crate) fn put_dec(buf: &mut Vec<u8>, v: u64) {
    put_dec_width(buf, v, 0, b' ');
}

/// Decimal, right-aligned in `width` columns padded with `pad`.
pub(crate) fn put_dec_width(buf: &mut Vec<u8>, v: u64, width: usize, pad: u8) {
    let mut tmp = [0u8; 20];
    let mut i = 20;
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = 20 - i;
    for _ in digits..width {
        buf.push(pad);
    }
    buf.extend_from_slice(&tmp[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let mut b = Vec::new();
        put_dec(&mut b, 0);
        b.push(b' ');
        put_dec_width(&mut b, 7, 3, b'0');
        b.push(b' ');
        put_dec_width(&mut b, 1234567, 3, b'0');
        assert_eq!(String::from_utf8(b).unwrap(), "0 007 1234567");
    }

    #[test]
    fn entry_layout_matches_ftrace() {
        let mut e = Emitter::new(Vec::new(), Clock::Local, 4, false);
        let t = Task::new("flowtrackd-p9zw", 209120);
        e.entry(
            1,
            &t,
            b".....",
            657_037_000,
            "tracing_mark_write",
            Op::Rx,
            None,
            1,
            |b| b.extend_from_slice(b"hello"),
        )
        .unwrap();
        let (out, ..) = e.finish().unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            format!(
                " flowtrackd-p9zw-209120  [001] ..... {}.657037: tracing_mark_write: hello\n",
                crate::BASE_SECS
            )
        );
    }
}
