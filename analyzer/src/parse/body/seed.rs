//! The seed story's free-form `trace_marker` vocabulary: flowtrackd's
//! `ingress q:1 0x16ce900 FILL -> RX` transitions (with the FIFO it expected
//! when it panicked), its panic text, and notes about a descriptor.
//!
//! Most marker lines of a seed trace are transitions; the fast path finds
//! their ` -> ` from its `>` ([`arrow`]) instead of a substring search,
//! whose searcher cost more to build than the rest of the line. The
//! searchers the general path needs are built once.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use xskdbg_format::lex::{
    is_ws, next_token, parse_dec, parse_hex, parse_hex0x, strip_0x, trim, trim_start,
};
use xskdbg_format::{AddrList, SeedOp, State};

static ARROW: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b" -> "));
static EXPECTED: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"expected"));
static REMAINING: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"remaining"));

/// Where the first ` -> ` of `msg` starts: the first `>` with ` -` before
/// it and a space after (each ` -> ` has one `>`, so the first such `>` is
/// the first ` -> `).
#[inline(always)]
fn arrow(msg: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'>', msg)
        .find(|&q| {
            q >= 2 && msg[q - 2] == b' ' && msg[q - 1] == b'-' && msg.get(q + 1) == Some(&b' ')
        })
        .map(|q| q - 2)
}

/// The transition most marker lines of a seed trace are, `LABEL 0xADDR
/// FROM -> TO` with nothing after `TO` (`p`: where the ` -> ` starts), read
/// back from the arrow: the letters of `FROM` after one space, the hex
/// digits of the address after `0x` and a blank, the label before it.
/// `None` for any other shape (the general code decides those); what it
/// reads is what the general code reads: no blank or `\r` sits where the
/// general code trims, and the words are the ones it cuts at blanks.
#[inline(always)]
fn transition(msg: &[u8], p: usize) -> Option<SeedOp<'_>> {
    let to = &msg[p + 4..];
    if to.is_empty() || !to.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let mut j = p;
    while j > 0 && msg[j - 1].is_ascii_alphabetic() {
        j -= 1;
    }
    if j == p || j < 5 || msg[j - 1] != b' ' {
        return None;
    }
    let mut k = j - 1;
    while k > 0 && msg[k - 1].is_ascii_hexdigit() {
        k -= 1;
    }
    let digits = j - 1 - k;
    if digits == 0 || digits > 16 || k < 3 || &msg[k - 2..k] != b"0x" || !is_ws(msg[k - 3]) {
        return None;
    }
    let label = trim(&msg[..k - 2]);
    Some(SeedOp::Transition {
        label: if label.is_empty() { None } else { Some(label) },
        addr: parse_hex(&msg[k..j - 1])?,
        from: State::parse(&msg[j..p])?,
        to: State::parse(to)?,
        expected: None,
        remaining: None,
    })
}

/// `LABEL 0xADDR FROM -> TO[: expected 0x.. remaining: [..]]`, `0xADDR note`,
/// `descriptor DEC transitioned from X to Y`. `FAST` turns the fast path on.
pub(super) fn line<const FAST: bool>(msg: &[u8]) -> Option<SeedOp<'_>> {
    let p = if FAST { arrow(msg) } else { ARROW.find(msg) };
    if let Some(p) = p {
        if FAST {
            if let Some(op) = transition(msg, p) {
                return Some(op);
            }
        }
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
        let expected = EXPECTED.find(tail).and_then(|q| {
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
        let remaining = REMAINING.find(tail).map(|q| {
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
