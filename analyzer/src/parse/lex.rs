//! Timestamps: the ftrace-specific token of an entry. (The format's value
//! lexing — hex, socket keys, fields, lists — is `xskdbg_format::lex`.)

use xskdbg_format::swar::{combine_dec, in_range_bytes, word, HI};

use super::Timestamp;

/// Parse a timestamp token (without the trailing `:`): `SECS.FRAC` of a
/// time clock (nanoseconds from the first nine fraction digits) or the bare
/// integer of a counter clock.
#[inline]
pub fn parse_timestamp(text: &[u8]) -> Option<Timestamp<'_>> {
    timestamp::<true>(text)
}

/// [`parse_timestamp`] by the general rule alone (no fast path): what the
/// fast path is held to.
pub fn parse_timestamp_general(text: &[u8]) -> Option<Timestamp<'_>> {
    timestamp::<false>(text)
}

/// A timestamp, with the fast path (`FAST`) or without.
#[inline(always)]
pub(super) fn timestamp<const FAST: bool>(text: &[u8]) -> Option<Timestamp<'_>> {
    if FAST {
        if let Some(ts) = timestamp_fast(text) {
            return Some(ts);
        }
    }
    timestamp_slow(text)
}

/// The general rule, in one pass: seconds digits, then (for time clocks)
/// `.` and the fraction, of which the first nine digits count. Anything
/// else is not a timestamp.
fn timestamp_slow(text: &[u8]) -> Option<Timestamp<'_>> {
    let mut i = 0;
    let mut secs: u64 = 0;
    while let Some(&b) = text.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        secs = secs.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        i += 1;
    }
    if i == 0 || i > 19 {
        return None;
    }
    if i == text.len() {
        return Some(Timestamp {
            text,
            ns: None,
            order: secs,
        });
    }
    if text[i] != b'.' || i + 1 == text.len() {
        return None;
    }
    let mut f: u64 = 0;
    let mut used = 0;
    for &b in &text[i + 1..] {
        if !b.is_ascii_digit() {
            return None;
        }
        if used < 9 {
            f = f * 10 + u64::from(b - b'0');
            used += 1;
        }
    }
    for _ in used..9 {
        f *= 10;
    }
    let ns = secs.checked_mul(1_000_000_000)?.checked_add(f)?;
    Some(Timestamp {
        text,
        ns: Some(ns),
        order: ns,
    })
}

/// `SECS.FRAC` with 1 to 8 digits on each side (`542812.658321`), eight
/// digits at a time; `None` for any other shape (the general rule decides
/// those).
#[inline(always)]
pub(super) fn timestamp_fast(text: &[u8]) -> Option<Timestamp<'_>> {
    let w = word(text, 0)?;
    let nondigit = !in_range_bytes(w, b'0', b'9') & HI;
    let dot = (nondigit.trailing_zeros() / 8) as usize;
    if dot == 0 || dot == 8 || text[dot] != b'.' {
        return None;
    }
    let flen = text.len() - dot - 1;
    if flen == 0 || flen > 8 {
        return None;
    }
    // The last eight bytes hold the whole fraction (text is at least 8 long).
    let tail = word(text, text.len() - 8)?;
    let frac_digits = in_range_bytes(tail, b'0', b'9') >> (8 * (8 - flen));
    if frac_digits.count_ones() as usize != flen {
        return None;
    }
    let secs = combine_dec(w, dot);
    let frac = combine_dec(tail >> (8 * (8 - flen)), flen);
    let ns = secs * 1_000_000_000 + frac * POW10[9 - flen];
    Some(Timestamp {
        text,
        ns: Some(ns),
        order: ns,
    })
}

const POW10: [u64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];
