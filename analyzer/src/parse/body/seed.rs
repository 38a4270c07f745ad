//! The seed story's free-form `trace_marker` vocabulary: flowtrackd's
//! `ingress q:1 0x16ce900 FILL -> RX` transitions (with the FIFO it expected
//! when it panicked), its panic text, and notes about a descriptor.

use memchr::memmem;
use xskdbg_format::lex::{
    is_ws, next_token, parse_dec, parse_hex, parse_hex0x, strip_0x, trim, trim_start,
};
use xskdbg_format::{AddrList, SeedOp, State};

/// `LABEL 0xADDR FROM -> TO[: expected 0x.. remaining: [..]]`, `0xADDR note`,
/// `descriptor DEC transitioned from X to Y`.
pub(super) fn line(msg: &[u8]) -> Option<SeedOp<'_>> {
    if let Some(p) = memmem::find(msg, b" -> ") {
        let left = trim(&msg[..p]);
        let right = trim_start(&msg[p + 4..]);
        let from_start = left.iter().rposition(|&b| is_ws(b)).map_or(0, |i| i + 1);
        let from = State::parse(&left[from_start..])?;
        let left2 = trim(&left[..from_start]);
        let addr_start = left2.iter().rposition(|&b| is_ws(b)).map_or(0, |i| i + 1);
        let addr = parse_hex0x(&left2[addr_start..])?;
        let label = trim(&left2[..addr_start]);
        let to_end = right
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(right.len());
        let to = State::parse(&right[..to_end])?;
        let tail = &right[to_end..];
        let expected = memmem::find(tail, b"expected").and_then(|q| {
            let r = trim_start(&tail[q + 8..]);
            let end = r
                .iter()
                .position(|b| !b.is_ascii_hexdigit() && *b != b'x')
                .unwrap_or(r.len());
            // `expected 0x1000900remaining:` has no space: stop at the first non-hex.
            let tok = &r[..end];
            let tok = strip_0x(tok);
            let hex_end = tok
                .iter()
                .position(|b| !b.is_ascii_hexdigit())
                .unwrap_or(tok.len());
            parse_hex(&tok[..hex_end])
        });
        let remaining = memmem::find(tail, b"remaining").map(|q| {
            let r = &tail[q..];
            let r = match memchr::memchr(b'[', r) {
                Some(o) => &r[o + 1..],
                None => &r[r.len()..],
            };
            let end = memchr::memchr(b']', r).unwrap_or(r.len());
            AddrList { text: &r[..end] }
        });
        return Some(SeedOp::Transition {
            label: if label.is_empty() { None } else { Some(label) },
            addr,
            from,
            to,
            expected,
            remaining,
        });
    }
    if let Some(rest) = msg.strip_prefix(b"descriptor ") {
        // flowtrackd's panic text: `descriptor 26476800 transitioned from Fill to Tx`
        let (num, r) = next_token(rest)?;
        let addr = parse_dec(num)?;
        let r = trim_start(r).strip_prefix(b"transitioned from ")?;
        let (from, r) = next_token(r)?;
        let r = trim_start(r).strip_prefix(b"to ")?;
        let (to, _) = next_token(r)?;
        let to = to.strip_suffix(b"'").unwrap_or(to);
        return Some(SeedOp::Transition {
            label: None,
            addr,
            from: State::parse(from)?,
            to: State::parse(to)?,
            expected: None,
            remaining: None,
        });
    }
    let (tok, _) = next_token(msg)?;
    if tok.starts_with(b"0x") {
        return Some(SeedOp::Note {
            addr: parse_hex0x(tok)?,
        });
    }
    None
}
