//! Lines that are not entries: the `trace` file's header (with the
//! entries count and the per-CPU "buffer started" annotations), lost-events
//! lines, and trace-cmd's preamble.

use memchr::memmem;
use xskdbg_format::lex::{next_token, parse_dec, trim_start};

use super::{Line, Meta};

/// trace-cmd's preamble lines (`cpus=4`, `version = 6`, `CPU 3 is empty`):
/// not entries, nothing to report.
pub(super) fn is_trace_cmd_preamble(t: &[u8]) -> bool {
    t.starts_with(b"cpus=")
        || t.starts_with(b"version = ")
        || (t.starts_with(b"CPU ") && t.ends_with(b" is empty"))
        || t.starts_with(b"CPU:") && memmem::find(t, b"LOST").is_none()
}

/// A line starting with `#`: the `##### CPU N buffer started ####`
/// annotation and the `entries-in-buffer/entries-written` header are
/// [`Meta`]; any other is a header comment.
pub(super) fn hash_line(line: u64, t: &[u8]) -> Line<'_> {
    if memmem::find(t, b"buffer started").is_some() {
        if let Some(p) = memmem::find(t, b"CPU") {
            let rest = trim_start(&t[p + 3..]);
            let end = rest
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(rest.len());
            if let Some(cpu) = parse_dec(&rest[..end]) {
                if let Ok(cpu) = u32::try_from(cpu) {
                    return Line::Meta {
                        line,
                        meta: Meta::CpuBufferStarted(cpu),
                    };
                }
            }
        }
    }
    const ENTRIES: &[u8] = b"entries-in-buffer/entries-written:";
    if let Some(p) = memmem::find(t, ENTRIES) {
        let rest = &t[p + ENTRIES.len()..];
        if let Some((tok, rest)) = next_token(rest) {
            if let Some(slash) = memchr::memchr(b'/', tok) {
                if let (Some(a), Some(b)) = (parse_dec(&tok[..slash]), parse_dec(&tok[slash + 1..]))
                {
                    let cpus = memmem::find(rest, b"#P:").and_then(|q| {
                        let r = &rest[q + 3..];
                        let end = r
                            .iter()
                            .position(|b| !b.is_ascii_digit())
                            .unwrap_or(r.len());
                        parse_dec(&r[..end]).and_then(|v| u32::try_from(v).ok())
                    });
                    return Line::Meta {
                        line,
                        meta: Meta::Entries {
                            in_buffer: a,
                            written: b,
                            cpus,
                        },
                    };
                }
            }
        }
    }
    Line::Blank { line }
}

/// `CPU:2 [LOST 123 EVENTS]` (trace_pipe / trace-cmd).
pub(super) fn lost(t: &[u8]) -> Option<Meta> {
    let rest = t
        .strip_prefix(b"CPU:")
        .or_else(|| t.strip_prefix(b"CPU "))?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    let cpu = u32::try_from(parse_dec(&rest[..end])?).ok()?;
    let p = memmem::find(rest, b"[LOST ")?;
    let r = &rest[p + 6..];
    let e = r.iter().position(|b| !b.is_ascii_digit())?;
    let count = parse_dec(&r[..e])?;
    Some(Meta::Lost { cpu, count })
}
