//! Where lines go: nowhere, an in-memory ring of the last N lines, or the
//! `trace_marker` of an ftrace buffer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use xskdbg_tracefs::{Buffer, Marker, TraceFs};

use crate::sys;
use crate::types::{Error, SinkConfig};

/// Bytes of line text the memory ring keeps per line on average.
const MEM_BYTES_PER_EVENT: usize = 512;

#[derive(Debug, Clone, Copy)]
struct Rec {
    ts_ns: u64,
    tid: u32,
    off: usize,
    len: usize,
}

/// The last N lines, in a byte ring allocated once.
#[derive(Debug)]
pub struct MemRing {
    bytes: Box<[u8]>,
    recs: VecDeque<Rec>,
    max_recs: usize,
    w: usize,
    written: u64,
}

impl MemRing {
    /// A ring for `events` lines.
    pub fn new(events: usize) -> MemRing {
        let events = events.max(1);
        MemRing {
            bytes: vec![0; (events * MEM_BYTES_PER_EVENT).max(crate::line::LINE_MAX)]
                .into_boxed_slice(),
            recs: VecDeque::with_capacity(events),
            max_recs: events,
            w: 0,
            written: 0,
        }
    }

    /// Store one line (without its newline), evicting the oldest as needed.
    pub fn push(&mut self, ts_ns: u64, tid: u32, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let len = line.len().min(self.bytes.len());
        if self.w + len > self.bytes.len() {
            // Wrap: the records past `w` are the oldest; drop them.
            while self.recs.front().is_some_and(|r| r.off >= self.w) {
                self.recs.pop_front();
            }
            self.w = 0;
        }
        let (start, end) = (self.w, self.w + len);
        while self
            .recs
            .front()
            .is_some_and(|r| r.off < end && start < r.off + r.len)
        {
            self.recs.pop_front();
        }
        if self.recs.len() == self.max_recs {
            self.recs.pop_front();
        }
        self.bytes[start..end].copy_from_slice(&line[..len]);
        self.recs.push_back(Rec {
            ts_ns,
            tid,
            off: start,
            len,
        });
        self.w = end;
        self.written += 1;
    }

    /// Lines held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    /// The lines, oldest first.
    #[cfg(test)]
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.recs.iter().map(|r| &self.bytes[r.off..r.off + r.len])
    }

    /// Render as an ftrace `trace` file: header, then one
    /// `tracing_mark_write:` entry per line, so `xskdbg analyze` reads it.
    pub fn render(&self, comm: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.recs.len() * 128 + 512);
        out.extend_from_slice(
            format!(
                "# tracer: nop\n#\n# entries-in-buffer/entries-written: {}/{}   #P:1\n#\n\
                 #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n\
                 #              | |         |   |||||     |         |\n",
                self.recs.len(),
                self.written
            )
            .as_bytes(),
        );
        for r in &self.recs {
            let secs = r.ts_ns / 1_000_000_000;
            let us = (r.ts_ns % 1_000_000_000) / 1000;
            out.extend_from_slice(
                format!(
                    "{:>16}-{:<7} [000] ..... {secs:>6}.{us:06}: tracing_mark_write: ",
                    comm, r.tid
                )
                .as_bytes(),
            );
            out.extend_from_slice(&self.bytes[r.off..r.off + r.len]);
            out.push(b'\n');
        }
        out
    }
}

/// A sink in use.
#[derive(Debug)]
pub enum Sink {
    /// Lines are not written.
    Null,
    /// The last N lines in memory.
    Memory {
        /// The ring.
        ring: Mutex<MemRing>,
        /// Set on freeze: the ring keeps what led up to the violation.
        frozen: AtomicBool,
        /// Process name for rendering.
        comm: String,
    },
    /// `trace_marker` of an ftrace buffer.
    Marker {
        /// Opened once.
        marker: Marker,
        /// The buffer, for `tracing_on`.
        buffer: Buffer,
    },
}

fn comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim().replace(' ', "_"))
        .unwrap_or_else(|_| "app".to_string())
}

impl Sink {
    /// Open the sink a configuration names.
    pub fn open(cfg: &SinkConfig) -> Result<Sink, Error> {
        Ok(match cfg {
            SinkConfig::Null => Sink::Null,
            SinkConfig::Memory { events } => Sink::Memory {
                ring: Mutex::new(MemRing::new(*events)),
                frozen: AtomicBool::new(false),
                comm: comm(),
            },
            SinkConfig::TraceMarker { instance } => {
                let fs = TraceFs::find()?;
                let buffer = fs.buffer(instance.as_deref())?;
                Sink::Marker {
                    marker: buffer.open_marker()?,
                    buffer,
                }
            }
            SinkConfig::Buffer(b) => Sink::Marker {
                marker: b.open_marker()?,
                buffer: b.clone(),
            },
        })
    }

    /// Whether lines are dropped anyway (then they are not even formatted).
    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self, Sink::Null)
    }

    /// Write one line; the error is a message for the error counter.
    #[inline]
    pub fn write(&self, line: &[u8]) -> Result<(), xskdbg_tracefs::Error> {
        match self {
            Sink::Null => Ok(()),
            Sink::Memory { ring, frozen, .. } => {
                if !frozen.load(Ordering::Relaxed) {
                    let ts = sys::monotonic_ns();
                    let tid = crate::on::os_tid();
                    ring.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(ts, tid, line);
                }
                Ok(())
            }
            Sink::Marker { marker, .. } => marker.write(line),
        }
    }

    /// Stop recording so the buffer keeps what led up to now.
    pub fn freeze(&self) -> Result<(), xskdbg_tracefs::Error> {
        match self {
            Sink::Null => Ok(()),
            Sink::Memory { frozen, .. } => {
                frozen.store(true, Ordering::Relaxed);
                Ok(())
            }
            Sink::Marker { buffer, .. } => buffer.set_tracing_on(false),
        }
    }

    /// The memory ring rendered as an ftrace trace (empty for other sinks).
    pub fn dump(&self) -> Vec<u8> {
        match self {
            Sink::Memory { ring, comm, .. } => {
                ring.lock().unwrap_or_else(|p| p.into_inner()).render(comm)
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_lines_across_wraps() {
        let mut r = MemRing::new(4);
        for i in 0..1000u32 {
            let line = format!(
                "xskdbg:1 hold n=1 a={i:x} pad={}",
                "x".repeat((i % 300) as usize)
            );
            r.push(u64::from(i) * 1000, 7, line.as_bytes());
            assert!(r.len() <= 4);
            let last = r.lines().last().unwrap();
            assert_eq!(last, line.as_bytes());
        }
        let lines: Vec<String> = r
            .lines()
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .collect();
        // Consecutive, ending with the last one written.
        assert!(lines
            .last()
            .unwrap()
            .starts_with("xskdbg:1 hold n=1 a=3e7 "));
        for w in lines.windows(2) {
            let num = |l: &str| {
                u32::from_str_radix(l.split(' ').nth(3).unwrap().strip_prefix("a=").unwrap(), 16)
                    .unwrap()
            };
            let (a, b) = (num(&w[0]), num(&w[1]));
            assert_eq!(a + 1, b, "{lines:?}");
        }
    }

    #[test]
    fn render_looks_like_ftrace() {
        let mut r = MemRing::new(8);
        r.push(1_234_567_890_123, 42, b"xskdbg:1 hold n=1 a=1000\n");
        let s = String::from_utf8(r.render("fwd")).unwrap();
        assert!(s.starts_with("# tracer: nop\n"));
        assert!(
            s.contains("             fwd-42      [000] .....   1234.567890: tracing_mark_write: xskdbg:1 hold n=1 a=1000\n"),
            "{s}"
        );
    }
}
