//! Decoding one text line of an ftrace trace into a [`Line`].
//!
//! Everything here works on `&[u8]` borrowed from the reader's buffer: no
//! allocation per line. A line is either an [`Event`] (an ftrace entry
//! `TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: BODY`), a [`Meta`] line the
//! analyzer needs (`##### CPU N buffer started ####`, the entries header, lost
//! events), a header/blank line, or a [`Line::Bad`] line that is counted and
//! skipped. The event body is decoded into an [`Op`]: one of the project's own
//! operations (`docs/TRACE-FORMAT.md`), a line of the seed story's free-form
//! vocabulary, a perf-probe style kprobe event, a native tracepoint, or
//! [`Op::Unknown`] (kept as timeline context, never judged).
//!
//! The operation types, the socket key, the ownership state and the value
//! lexer come from `xskdbg-format`, the code form of the trace format; they
//! are re-exported here, so `parse::SockKey`, `parse::RingState`, ... keep
//! naming them.
//!
//! Modules: `lex` (timestamps; the value lexing is the format crate's),
//! `header` (header, meta and preamble lines), `entry` (the entry's columns),
//! `body` (the body by vocabulary: `project`, `canonical`, `seed`, `kprobe`,
//! `tracepoint`).
//!
//! Speed: parsing runs on its own thread beside the checkers and must keep
//! up with them (hundreds of MB/s). Most lines take fast paths that expect
//! the exact shape ftrace, the probes and the recorder print — the entry's
//! columns (`entry::fixed`, `entry::fast`), the timestamp
//! (`lex::timestamp_fast`), the operation word, the per-packet kernel lines
//! and the batch lines (`body::canonical`), plain list items (inside
//! [`AddrList::iter`]), perf-probe events' fields (`body::kprobe`), the
//! seed story's transitions (`body::seed`) — and scan eight bytes at a
//! time (SWAR, safe code).
//! A fast path answers only when sure and otherwise hands the line to the
//! general code beside it, which defines the semantics. The general path
//! alone is [`parse_line_general`]; `tests/parse_agree.rs` checks that
//! [`parse_line`] answers exactly as it does on every kind of line.

mod body;
pub(crate) use body::seq_of;
mod entry;
mod header;
mod lex;

pub use lex::{parse_timestamp, parse_timestamp_general};
pub use xskdbg_format::lex::{parse_hex, parse_hex0x, trim};
/// The ownership states a line names (`FILL -> RX`, `from=fill`).
pub use xskdbg_format::State as RingState;
pub use xskdbg_format::{
    AddrList, AppOp, Desc, FlushMode, KernelOp, Op, RxMode, SeedOp, SockKey, DEFAULT_POISON,
    FORMAT_VERSION,
};

/// Lines longer than this are skipped without being buffered whole.
pub const MAX_LINE: usize = 64 * 1024;

/// One line of the input, decoded.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "a line lives on the stack one at a time; boxing the event would allocate per line"
)]
pub enum Line<'a> {
    /// An ftrace entry.
    Event(Event<'a>),
    /// A line that is not an entry but carries information the analysis uses.
    Meta {
        /// 1-based line number.
        line: u64,
        /// What it says.
        meta: Meta,
    },
    /// A comment/header line (`# tracer: nop`, trace-cmd preamble) or an empty line.
    Blank {
        /// 1-based line number.
        line: u64,
    },
    /// A line that could not be parsed; the analyzer counts and skips it.
    Bad {
        /// 1-based line number.
        line: u64,
        /// The line's bytes (possibly cut for very long lines).
        raw: &'a [u8],
        /// Why it was rejected.
        reason: BadReason,
    },
}

impl Line<'_> {
    /// The 1-based line number.
    pub fn number(&self) -> u64 {
        match self {
            Line::Event(e) => e.line,
            Line::Meta { line, .. } | Line::Blank { line } | Line::Bad { line, .. } => *line,
        }
    }
}

/// Why a line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BadReason {
    /// Not an ftrace entry and not a known header line.
    NotAnEntry,
    /// Longer than [`MAX_LINE`] bytes.
    TooLong,
    /// A project line (`xskdbg:1 ...`) with a missing or malformed field.
    BadField,
}

impl BadReason {
    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            BadReason::NotAnEntry => "not an ftrace entry",
            BadReason::TooLong => "line longer than 64 KiB",
            BadReason::BadField => "xskdbg line with a missing or malformed field",
        }
    }
}

/// Information lines that are not entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    /// `##### CPU N buffer started ####`: CPU N's ring buffer wrapped; its
    /// history before the next entry on that CPU is lost.
    CpuBufferStarted(u32),
    /// `# entries-in-buffer/entries-written: A/B   #P:N`.
    Entries {
        /// Entries still in the buffers.
        in_buffer: u64,
        /// Entries ever written (more means the buffers wrapped).
        written: u64,
        /// Number of CPUs (`#P:`), when printed.
        cpus: Option<u32>,
    },
    /// `CPU:N [LOST M EVENTS]` (trace_pipe) or trace-cmd's equivalent.
    Lost {
        /// The CPU that lost events.
        cpu: u32,
        /// How many.
        count: u64,
    },
}

/// An entry's timestamp as written, with its numeric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp<'a> {
    /// The text as the trace wrote it (`542812.657026`).
    pub text: &'a [u8],
    /// Nanoseconds when the clock is a time (`secs.frac`); `None` for
    /// counter clocks (`counter`, `x86-tsc`) that print a bare integer.
    pub ns: Option<u64>,
    /// A value that orders entries: the nanoseconds, or the raw counter.
    pub order: u64,
}

/// One ftrace entry: `TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: BODY`.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// 1-based line number in the input.
    pub line: u64,
    /// The whole line without its line ending.
    pub raw: &'a [u8],
    /// Task name (may contain `-` and spaces).
    pub task: &'a [u8],
    /// The PID (digits after the last `-` of `TASK-PID`).
    pub pid: Option<u32>,
    /// The CPU column.
    pub cpu: u32,
    /// The flags column (irqs-off, need-resched, ...), as written.
    pub flags: &'a [u8],
    /// The timestamp.
    pub ts: Timestamp<'a>,
    /// The event name (`tracing_mark_write`, `__xsk_rcv_zc_L7`, ...).
    pub name: &'a [u8],
    /// The body after `EVENT: `.
    pub body: &'a [u8],
    /// The decoded operation.
    pub op: Op<'a>,
}

/// Decode one line (without its `\n`; a trailing `\r` is ignored).
pub fn parse_line(line: u64, raw: &[u8]) -> Line<'_> {
    let mut out = Line::Blank { line };
    parse_line_into(line, raw, &mut out);
    out
}

/// [`parse_line`] into `out`: a line of about 260 bytes decoded in place
/// instead of built on the stack and copied into a batch's vector.
pub fn parse_line_into<'a>(line: u64, raw: &'a [u8], out: &mut Line<'a>) {
    decode::<true>(line, raw, out);
}

/// [`parse_line`] by the general rules alone, every fast path off: the
/// definition the fast paths are held to (`tests/parse_agree.rs`). Slower;
/// otherwise the same answer for every input.
pub fn parse_line_general(line: u64, raw: &[u8]) -> Line<'_> {
    let mut out = Line::Blank { line };
    decode::<false>(line, raw, &mut out);
    out
}

/// One line, with the fast paths (`FAST`) or without.
#[inline(always)]
fn decode<'a, const FAST: bool>(line: u64, raw: &'a [u8], out: &mut Line<'a>) {
    let raw = match raw.last() {
        Some(b'\r') => &raw[..raw.len() - 1],
        _ => raw,
    };
    if FAST && raw.len() <= MAX_LINE {
        if let Some(h) = entry::fixed(raw).or_else(|| entry::fast(raw)) {
            *out = match body::decode::<FAST>(h.name, h.body) {
                Ok(op) => Line::Event(Event {
                    line,
                    raw,
                    task: h.task,
                    pid: h.pid,
                    cpu: h.cpu,
                    flags: h.flags,
                    ts: h.ts,
                    name: h.name,
                    body: h.body,
                    op,
                }),
                Err(reason) => Line::Bad { line, raw, reason },
            };
            return;
        }
    }
    *out = general::<FAST>(line, raw);
}

/// The lines the fast entry paths leave (too long, headers, blanks, other
/// layouts), and every line when `FAST` is off.
#[inline(never)]
fn general<const FAST: bool>(line: u64, raw: &[u8]) -> Line<'_> {
    if raw.len() > MAX_LINE {
        return Line::Bad {
            line,
            raw: &raw[..256],
            reason: BadReason::TooLong,
        };
    }
    let t = trim(raw);
    if t.is_empty() {
        return Line::Blank { line };
    }
    if t[0] == b'#' {
        return header::hash_line(line, t);
    }
    if let Some(meta) = header::lost(t) {
        return Line::Meta { line, meta };
    }
    if let Some(l) = entry::drained::<FAST>(line, raw) {
        return l;
    }
    match entry::general::<FAST>(line, raw) {
        Some(Ok(ev)) => Line::Event(ev),
        Some(Err(reason)) => Line::Bad { line, raw, reason },
        None => {
            if header::is_trace_cmd_preamble(t) {
                Line::Blank { line }
            } else {
                Line::Bad {
                    line,
                    raw,
                    reason: BadReason::NotAnEntry,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
