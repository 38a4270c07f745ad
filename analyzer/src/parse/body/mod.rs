//! An entry's body, by vocabulary: the event name says whether it is a
//! perf-probe style kprobe event ([`kprobe`]) or a native tracepoint
//! ([`tracepoint`]); a marker or printk body starting with `xskdbg:` is a
//! line of the project format ([`project`], with its fast paths in
//! [`canonical`]); other marker bodies may be the seed story's free-form
//! vocabulary ([`seed`]). Everything else is context.

mod canonical;
mod kprobe;
mod project;
pub(crate) use project::seq_of;
mod seed;
mod tracepoint;

use xskdbg_format::lex::{next_token, trim_start};
use xskdbg_format::{Op, MAGIC};

use super::BadReason;

/// Decode the body of an event named `name`; `Err` only for a project line
/// with a missing or malformed field. `FAST` turns the fast paths on.
#[inline(always)]
pub(super) fn decode<'a, const FAST: bool>(
    name: &[u8],
    body: &'a [u8],
) -> Result<Op<'a>, BadReason> {
    if name == b"__xsk_rcv_zc_ret" || name == b"__xsk_rcv_zc__return" {
        return Ok(kprobe::rx_return::<FAST>(body));
    }
    if name.starts_with(b"__xsk_rcv_zc") {
        return Ok(kprobe::rx::<FAST>(body));
    }
    if name.starts_with(b"xp_raw_get_data") {
        return Ok(kprobe::tx::<FAST>(body));
    }
    if name.starts_with(b"xsk_flush") || name.starts_with(b"__xsk_map_flush") {
        return Ok(kprobe::flush::<FAST>(body));
    }
    if name == b"napi_poll" {
        return Ok(tracepoint::napi_poll(body));
    }
    let mut msg = trim_start(body);
    // trace-cmd prints `print: tracing_mark_write: msg` or `print: ip: msg`.
    if name == b"print" {
        if let Some(m) = msg.strip_prefix(b"tracing_mark_write: ") {
            msg = m;
        } else if let Some((tok, r)) = next_token(msg) {
            if tok.ends_with(b":") && (tok.starts_with(b"0x") || tok.starts_with(b"(")) {
                msg = trim_start(r);
            }
        }
    }
    if let Some(rest) = msg.strip_prefix(MAGIC) {
        return project::line::<FAST>(rest);
    }
    let marker = matches!(
        name,
        b"tracing_mark_write" | b"print" | b"bpf_trace_printk" | b"bputs" | b"bprint"
    );
    if marker {
        if let Some(op) = seed::line::<FAST>(msg) {
            return Ok(Op::Seed(op));
        }
    }
    Ok(Op::Unknown)
}
