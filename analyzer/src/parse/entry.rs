//! The entry line's columns: `TASK-PID [CPU] FLAGS TIMESTAMP: NAME: BODY`.
//!
//! [`general`] reads any layout ftrace, trace-cmd or a copy from a web page
//! produces (blanks of any kind, names with dashes and brackets, flags or
//! no flags). [`fixed`] and [`fast`] read the layouts that make up nearly
//! every line of a real trace, eight bytes at a time, and answer only when
//! [`general`] would give the same columns.

use xskdbg_format::lex::{is_ws, next_token, parse_dec, trim, trim_start};
use xskdbg_format::swar::{eq_bytes, not_graphic, not_graphic_bytes, scan, word, HI};

use super::lex::timestamp;
use super::{body, BadReason, Event, Timestamp};

/// The columns of an entry before its body is decoded.
pub(super) struct Header<'a> {
    pub(super) task: &'a [u8],
    pub(super) pid: Option<u32>,
    pub(super) cpu: u32,
    pub(super) flags: &'a [u8],
    pub(super) ts: Timestamp<'a>,
    pub(super) name: &'a [u8],
    pub(super) body: &'a [u8],
}

/// The common entry layout in one forward pass over plain bytes:
/// `  TASK-PID  [CPU] FLAGS SECS.FRAC: NAME: BODY` with ASCII spaces between
/// the columns and printable ASCII in them. `None` means "not sure": anything
/// unusual (tabs, no-break spaces, other non-ASCII bytes in the columns, a
/// line that could be a header or a lost-events line, a `[` that is not the
/// CPU column) leaves the line to the general path, [`general`], which this must agree
/// with whenever it answers (`tests/parse_agree.rs` checks that).
#[inline(always)]
pub(super) fn fast(raw: &[u8]) -> Option<Header<'_>> {
    let n = raw.len();
    let s0 = scan(raw, 0, |w| !eq_bytes(w, b' ') & HI, |b| b != b' ');
    let first = *raw.get(s0)?;
    // `#` headers, `CPU:N [LOST ..]` and trace-cmd preambles, a leading `[`
    // (never the CPU column) and non-ASCII task names go the general way.
    if not_graphic(first) || first == b'#' || first == b'[' || raw[s0..].starts_with(b"CPU") {
        return None;
    }
    // The first `[`, which must open `[digits]`.
    let open = scan(raw, s0 + 1, |w| eq_bytes(w, b'['), |b| b == b'[');
    let mut close = open + 1;
    let mut cpu: u32 = 0;
    while close < n && raw[close].is_ascii_digit() && close - open <= 8 {
        cpu = cpu * 10 + u32::from(raw[close] - b'0');
        close += 1;
    }
    if close == open + 1 || raw.get(close) != Some(&b']') {
        return None;
    }
    // TASK-PID ends before the spaces in front of `[` (`raw[s0]` is not a
    // space, so the walk stops there at the latest); a tab, `\r` or the end
    // of a no-break space there would be trimmed too: general path.
    let mut e = open;
    while e >= s0 + 8 {
        let w = word(raw, e - 8)?;
        let m = !eq_bytes(w, b' ') & HI;
        if m != 0 {
            e = e - 8 + (63 - m.leading_zeros() as usize) / 8 + 1;
            break;
        }
        e -= 8;
    }
    while raw[e - 1] == b' ' {
        e -= 1;
    }
    if matches!(raw[e - 1], b'\t' | b'\r' | 0xa0) {
        return None;
    }
    let (task, pid) = split_task_pid(&raw[s0..e]);
    after_cpu(raw, close, task, pid, cpu)
}

/// ftrace's own layout, `%16s-%-7d [%03d] ` (kernel/trace/trace_output.c,
/// `trace_print_context`: the command right-aligned in 16 columns, the PID
/// left-aligned in 7, the CPU in 3), is most lines of most traces: its
/// columns are at fixed offsets, so they are checked in place instead of
/// searched for. Gives what [`fast`] gives or `None` (a command with
/// a `[`, a wider PID or CPU, ... are left to it).
#[inline(always)]
pub(super) fn fixed(raw: &[u8]) -> Option<Header<'_>> {
    let head: &[u8; 31] = raw.get(..31)?.try_into().ok()?;
    if head[16] != b'-' || head[24] != b' ' || head[25] != b'[' || head[29] != b']' {
        return None;
    }
    // The command's 16 columns as one 128-bit mask per question, a bit
    // per byte: a byte loop and a memchr call there were about a tenth of
    // a short line's parse.
    let lo = word(head, 0)?;
    let hi = word(head, 8)?;
    let both = |m: fn(u64) -> u64| u128::from(m(lo)) | (u128::from(m(hi)) << 64);
    // The first byte that is not a space, as `fast` finds it.
    let not_space = both(|w| !eq_bytes(w, b' ') & HI);
    if not_space == 0 {
        return None;
    }
    let s0 = (not_space.trailing_zeros() / 8) as usize;
    let first = head[s0];
    if not_graphic(first) || first == b'#' || first == b'[' || head[s0..].starts_with(b"CPU") {
        return None;
    }
    // `fast` takes the first `[` for the CPU column's.
    let after_first = both(|w| eq_bytes(w, b'[')).checked_shr(8 * (s0 as u32 + 1));
    if after_first.is_some_and(|m| m != 0) {
        return None;
    }
    let mut k = 17;
    let mut pid: u32 = 0;
    while k < 24 && head[k].is_ascii_digit() {
        pid = pid * 10 + u32::from(head[k] - b'0');
        k += 1;
    }
    if k == 17 || head[k..24].iter().any(|&b| b != b' ') {
        return None;
    }
    let mut cpu: u32 = 0;
    for &b in &head[26..29] {
        if !b.is_ascii_digit() {
            return None;
        }
        cpu = cpu * 10 + u32::from(b - b'0');
    }
    after_cpu(raw, 29, &raw[s0..16], Some(pid), cpu)
}

/// The columns after `[CPU]` (`close` is the `]`'s index), for
/// [`fast`] and [`fixed`].
#[inline(always)]
fn after_cpu<'a>(
    raw: &'a [u8],
    close: usize,
    task: &'a [u8],
    pid: Option<u32>,
    cpu: u32,
) -> Option<Header<'a>> {
    let n = raw.len();
    // Flag tokens, then the first `TIMESTAMP:` among the first four tokens.
    let mut p = close + 1;
    let mut flags_start = p;
    let mut flags_end = p;
    let mut ts = None;
    for _ in 0..4 {
        let start = scan(raw, p, |w| !eq_bytes(w, b' ') & HI, |b| b != b' ');
        p = scan(raw, start, not_graphic_bytes, not_graphic);
        if p < n && raw[p] != b' ' || p == start {
            return None;
        }
        let tok = &raw[start..p];
        if let Some(text) = tok.strip_suffix(b":") {
            let t = timestamp::<true>(text);
            if t.is_some() {
                ts = t;
                break;
            }
        }
        if flags_end == close + 1 {
            flags_start = start;
        }
        flags_end = p;
    }
    let ts = ts?;
    // `NAME:` after the timestamp, then the body after one optional space.
    let name_start = scan(raw, p, |w| !eq_bytes(w, b' ') & HI, |b| b != b' ');
    p = scan(
        raw,
        name_start,
        |w| eq_bytes(w, b':') | not_graphic_bytes(w),
        |b| b == b':' || not_graphic(b),
    );
    if p == n || raw[p] != b':' || p == name_start {
        return None;
    }
    let name = &raw[name_start..p];
    let mut body = &raw[p + 1..];
    if let Some(b) = body.strip_prefix(b" ") {
        body = b;
    }
    Some(Header {
        task,
        pid,
        cpu,
        flags: &raw[flags_start..flags_end],
        ts,
        name,
        body,
    })
}

/// `TASK-PID` → the task and the PID after the last `-`, when all that
/// follows it is a decimal number that fits `u32`.
#[inline(always)]
pub(super) fn split_task_pid(task_pid: &[u8]) -> (&[u8], Option<u32>) {
    // The last `-` is followed only by digits exactly when it ends the
    // trailing run of digits.
    // The run is read back to front once, its value summed as it goes
    // (`parse_dec` takes at most 19 digits, and so does this).
    let mut d = task_pid.len();
    let mut value: u64 = 0;
    let mut scale: u64 = 1;
    let mut digits = 0;
    while d > 0 && task_pid[d - 1].is_ascii_digit() {
        d -= 1;
        if digits < 19 {
            value += u64::from(task_pid[d] - b'0') * scale;
            scale = scale.wrapping_mul(10);
        }
        digits += 1;
    }
    if d > 0 && task_pid[d - 1] == b'-' && (1..=19).contains(&digits) {
        if let Ok(pid) = u32::try_from(value) {
            return (&task_pid[..d - 1], Some(pid));
        }
    }
    (task_pid, None)
}

/// The general rule for an entry, in any layout: `None` if the line is not
/// shaped like an entry; `Some(Err)` if it is an entry whose project body is
/// malformed. (`FAST` only says whether the body may take its fast paths.)
pub(super) fn general<const FAST: bool>(
    line: u64,
    raw: &[u8],
) -> Option<Result<Event<'_>, BadReason>> {
    let s = trim_start(raw);
    // The CPU column is the first `[digits]` (task names rarely hold one; if
    // they do, the timestamp check below rejects the wrong split).
    let mut from = 0;
    let (open, close, cpu) = loop {
        let open = from + memchr::memchr(b'[', &s[from..])?;
        let close_rel = memchr::memchr(b']', &s[open..])?;
        let close = open + close_rel;
        if let Some(cpu) = parse_dec(&s[open + 1..close]).and_then(|c| u32::try_from(c).ok()) {
            if open > 0 {
                break (open, close, cpu);
            }
        }
        from = open + 1;
    };
    let task_pid = trim(&s[..open]);
    if task_pid.is_empty() {
        return None;
    }
    let (task, pid) = split_task_pid(task_pid);
    // Flags (zero or more tokens), then `TIMESTAMP:`.
    let after = &s[close + 1..];
    let mut rest = after;
    let mut ts = None;
    for _ in 0..4 {
        let (tok, r) = next_token(rest)?;
        if let Some(text) = tok.strip_suffix(b":") {
            if let Some(t) = timestamp::<FAST>(text) {
                ts = Some((t, tok));
                rest = r;
                break;
            }
        }
        rest = r;
    }
    let (ts, ts_tok) = ts?;
    let flags_end = ts_tok.as_ptr() as usize - after.as_ptr() as usize;
    let flags = trim(&after[..flags_end]);
    let r = trim_start(rest);
    let colon = memchr::memchr(b':', r)?;
    let name = &r[..colon];
    if name.is_empty() || name.iter().any(|&b| is_ws(b)) {
        return None;
    }
    let mut body = &r[colon + 1..];
    if let Some(b) = body.strip_prefix(b" ") {
        body = b;
    }
    let op = match body::decode::<FAST>(name, body) {
        Ok(op) => op,
        Err(reason) => return Some(Err(reason)),
    };
    Some(Ok(Event {
        line,
        raw,
        task,
        pid,
        cpu,
        flags,
        ts,
        name,
        body,
        op,
    }))
}

/// A drained kernel record printed without an ftrace header: the drainers
/// pack several records into one `trace_marker` write
/// (`probes/src/drain.rs`), and ftrace prints the lines after the entry's
/// first as they were written. Such a line says all a reader needs itself
/// (`xskdbg:1 k<op> cpu=C t=S.NNNNNNNNN ...`): it becomes a
/// `tracing_mark_write` event of CPU C at its own stamp, with no task.
/// `None` for any other line.
pub(super) fn drained<const FAST: bool>(line: u64, raw: &[u8]) -> Option<super::Line<'_>> {
    if !raw.starts_with(b"xskdbg:1 k") {
        return None;
    }
    let (cpu, ns, text) = crate::drained::stamp_of(raw)?;
    const NAME: &[u8] = b"tracing_mark_write";
    Some(match body::decode::<FAST>(NAME, raw) {
        Ok(op) => super::Line::Event(Event {
            line,
            raw,
            task: b"",
            pid: None,
            cpu,
            flags: b"",
            ts: Timestamp {
                text,
                ns: Some(ns),
                order: ns,
            },
            name: NAME,
            body: raw,
            op,
        }),
        Err(reason) => super::Line::Bad { line, raw, reason },
    })
}
