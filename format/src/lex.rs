//! The lexical rules of `docs/TRACE-FORMAT.md` for reading: blanks, numbers,
//! the `key=value` fields of a line, and a cursor that reads a line written
//! in its canonical shape in one pass.
//!
//! Everything works on `&[u8]` borrowed from the caller's buffer. Readers
//! are lenient where the document allows it (blanks and no-break spaces
//! copied from a web page, upper-case hex, a `0x` on an address) and exact
//! where a wrong answer would mislead (a number wider than 64 bits is not a
//! number).

use crate::swar::{combine_hex, eq_bytes, hex_bytes, scan, word};
use crate::SockKey;

/// A UTF-8 no-break space, which blog copies of traces hold for blanks.
pub const NBSP: &[u8] = b"\xc2\xa0";

/// Whether `b` is an ASCII blank (space or tab).
#[inline(always)]
pub fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trim ASCII blanks, `\r` and UTF-8 no-break spaces at both ends.
pub fn trim(mut s: &[u8]) -> &[u8] {
    loop {
        if let Some((&f, rest)) = s.split_first() {
            if is_ws(f) || f == b'\r' {
                s = rest;
                continue;
            }
        }
        if s.starts_with(NBSP) {
            s = &s[2..];
            continue;
        }
        break;
    }
    loop {
        if let Some((&l, rest)) = s.split_last() {
            if is_ws(l) || l == b'\r' {
                s = rest;
                continue;
            }
        }
        if s.ends_with(NBSP) {
            s = &s[..s.len() - 2];
            continue;
        }
        break;
    }
    s
}

/// Trim ASCII blanks and no-break spaces at the start.
#[inline]
pub fn trim_start(mut s: &[u8]) -> &[u8] {
    loop {
        if let Some((&f, rest)) = s.split_first() {
            if is_ws(f) {
                s = rest;
                continue;
            }
        }
        if s.starts_with(NBSP) {
            s = &s[2..];
            continue;
        }
        return s;
    }
}

/// Split off the next blank-separated token (a no-break space counts as a
/// blank): the token and what follows it.
#[inline]
pub fn next_token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = trim_start(s);
    if s.is_empty() {
        return None;
    }
    // Tokens are short: a plain loop beats a memchr3 call here. 0xc2 only
    // ends a token when it starts NBSP.
    let mut end = 0;
    while let Some(&b) = s.get(end) {
        if b == b' ' || b == b'\t' || (b == 0xc2 && s.get(end + 1) == Some(&0xa0)) {
            break;
        }
        end += 1;
    }
    Some((&s[..end], &s[end..]))
}

/// `s` without a leading `0x`/`0X` (when something follows it).
#[inline]
pub fn strip_0x(s: &[u8]) -> &[u8] {
    if s.len() > 2 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') {
        &s[2..]
    } else {
        s
    }
}

/// Hex digit values by byte; 0xff for bytes that are not hex digits.
pub const HEX: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Lower- or upper-case hex without `0x`; `None` when empty, not hex or
/// wider than 64 bits.
#[inline]
pub fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    // One table lookup per digit; a non-digit (0xff) shows in `bad`, checked
    // once at the end instead of branching per byte.
    let mut v: u64 = 0;
    let mut bad = 0u8;
    for &b in s {
        let d = HEX[usize::from(b)];
        bad |= d;
        v = (v << 4) | u64::from(d & 0xf);
    }
    (bad < 16).then_some(v)
}

/// Hex with an optional `0x` prefix.
#[inline]
pub fn parse_hex0x(s: &[u8]) -> Option<u64> {
    parse_hex(strip_0x(s))
}

/// Decimal digits (at most 19, so the value fits `u64`).
#[inline]
pub fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

/// At most this many `key=value` fields of a line are read; later ones are
/// ignored.
pub const MAX_FIELDS: usize = 16;

/// The `key=value` fields of a project line (what follows its operation
/// word), walked in order.
///
/// A value ends at the next space; blanks and no-break spaces before a key
/// are skipped; a token without `=` is skipped and not counted;
/// `label=` runs to the end of the line (trimmed) and ends the fields; only
/// the first [`MAX_FIELDS`] fields count. A reader keeps the first value of
/// each key it needs.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
    n: usize,
}

impl<'a> Fields<'a> {
    /// The fields of `s`.
    #[inline]
    pub fn new(s: &'a [u8]) -> Self {
        Fields { rest: s, n: 0 }
    }

    /// The fields of `s`, which follows `n` fields already taken (the walk
    /// stops at the same field as one over the whole line).
    #[inline]
    pub fn after(s: &'a [u8], n: usize) -> Self {
        Fields { rest: s, n }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        while self.n < MAX_FIELDS {
            let s = trim_start(self.rest);
            if s.is_empty() {
                self.rest = s;
                return None;
            }
            if let Some(label) = s.strip_prefix(b"label=") {
                self.n = MAX_FIELDS;
                self.rest = &[];
                return Some((b"label", trim(label)));
            }
            // The key is short: walk it to the first `=` (or the token's
            // end); the value can be a long list: memchr for its end.
            let mut eq = 0;
            while eq < s.len() && s[eq] != b'=' && s[eq] != b' ' {
                eq += 1;
            }
            if eq == s.len() || s[eq] == b' ' {
                self.rest = &s[eq..];
                continue;
            }
            let end = eq + 1 + memchr::memchr(b' ', &s[eq + 1..]).unwrap_or(s.len() - eq - 1);
            self.rest = &s[end..];
            self.n += 1;
            return Some((&s[..eq], &s[eq + 1..end]));
        }
        None
    }
}

/// A cursor over a line written in its canonical shape (single spaces,
/// known field order, lower-case hex), for readers' fast paths: each step
/// checks the exact bytes it expects and answers `None` for anything else,
/// so a caller can fall back to the general rules ([`Fields`]).
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `s`.
    #[inline(always)]
    pub fn new(s: &'a [u8]) -> Self {
        Cursor { s, i: 0 }
    }

    /// Expect `lit` next (a field's ` key=`, a separator).
    #[inline(always)]
    pub fn lit(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.i + lit.len();
        if self.s.get(self.i..end)? == lit {
            self.i = end;
            Some(())
        } else {
            None
        }
    }

    /// 1 to 16 hex digits, decoded as they are walked (eight at a time); the
    /// byte after them is left for the next step to check. `None` for no
    /// digit or a seventeenth one.
    #[inline(always)]
    pub fn hex(&mut self) -> Option<u64> {
        // Eight digits at a time while a whole word is left; the last bytes
        // of a line go byte by byte.
        if let Some(w) = word(self.s, self.i) {
            let (vals, bad) = hex_bytes(w);
            let k = (bad.trailing_zeros() / 8) as usize;
            if k < 8 {
                if k == 0 {
                    return None;
                }
                self.i += k;
                return Some(combine_hex(vals, k));
            }
            if let Some(w2) = word(self.s, self.i + 8) {
                let hi = combine_hex(vals, 8);
                let (vals2, bad2) = hex_bytes(w2);
                let k2 = (bad2.trailing_zeros() / 8) as usize;
                if k2 < 8 {
                    self.i += 8 + k2;
                    return Some(if k2 == 0 {
                        hi
                    } else {
                        (hi << (4 * k2)) | combine_hex(vals2, k2)
                    });
                }
                // Sixteen digits; a seventeenth makes the value too wide.
                if self
                    .s
                    .get(self.i + 16)
                    .is_some_and(|&b| HEX[usize::from(b)] < 16)
                {
                    return None;
                }
                self.i += 16;
                return Some((hi << 32) | combine_hex(vals2, 8));
            }
        }
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&b) = self.s.get(self.i) {
            let d = HEX[usize::from(b)];
            if d >= 16 {
                break;
            }
            v = (v << 4) | u64::from(d);
            self.i += 1;
        }
        let digits = self.i - start;
        (1..=16).contains(&digits).then_some(v)
    }

    /// A socket key `netns_cookie:ifindex:queue_id`.
    #[inline(always)]
    pub fn sk(&mut self) -> Option<SockKey> {
        let netns_cookie = self.hex()?;
        self.lit(b":")?;
        let ifindex = self.hex()?;
        self.lit(b":")?;
        let queue_id = self.hex()?;
        Some(SockKey {
            netns_cookie,
            ifindex,
            queue_id,
        })
    }

    /// Skip a value: to the next space (where the general walk ends a
    /// token) or the end.
    #[inline(always)]
    pub fn skip(&mut self) {
        self.i = scan(self.s, self.i, |w| eq_bytes(w, b' '), |b| b == b' ');
    }

    /// A value: the bytes to the next space or the end, stepped over.
    #[inline(always)]
    pub fn value(&mut self) -> &'a [u8] {
        let rest = &self.s[self.i..];
        let len = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        self.i += len;
        &rest[..len]
    }

    /// Whether the whole input is read.
    #[inline(always)]
    pub fn end(&self) -> bool {
        self.i == self.s.len()
    }

    /// Whether the cursor stands at a field boundary (a space or the end),
    /// where the general walk would have ended the last value too.
    #[inline(always)]
    pub fn at_boundary(&self) -> bool {
        self.end() || self.s[self.i] == b' '
    }

    /// What is left to read.
    #[inline(always)]
    pub fn rest(&self) -> &'a [u8] {
        &self.s[self.i..]
    }

    /// Bytes read so far.
    #[inline(always)]
    pub fn pos(&self) -> usize {
        self.i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `u64::from_str_radix`, with the format's limits (no sign, at most
    /// 16 digits): what `parse_hex` must give.
    fn std_hex(s: &[u8]) -> Option<u64> {
        let t = std::str::from_utf8(s).ok()?;
        if t.is_empty() || t.len() > 16 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(t, 16).ok()
    }

    fn std_dec(s: &[u8]) -> Option<u64> {
        let t = std::str::from_utf8(s).ok()?;
        if t.is_empty() || t.len() > 19 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    }

    /// The longest run of hex digits at the start, by `parse_hex`: what the
    /// cursor's word-at-a-time `hex` must give.
    fn run_hex(s: &[u8]) -> (Option<u64>, usize) {
        let n = s.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        (parse_hex(&s[..n]), n)
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                8 => prop::sample::select(&b"0123456789abcdefABCDEFx.:, \t\r"[..]),
                1 => any::<u8>(),
            ],
            0..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn numbers_match_std(b in bytes()) {
            prop_assert_eq!(parse_hex(&b), std_hex(&b));
            prop_assert_eq!(parse_hex0x(&b), std_hex(strip_0x(&b)));
            prop_assert_eq!(parse_dec(&b), std_dec(&b));
        }

        #[test]
        fn cursor_hex_matches_parse_hex(b in bytes(), v in any::<u64>(), shift in 0u32..64, tail in bytes()) {
            for s in [b.clone(), [format!("{:x}", v >> shift).into_bytes(), tail.clone()].concat()] {
                let mut c = Cursor::new(&s);
                let (want, n) = run_hex(&s);
                let got = c.hex();
                prop_assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&s));
                if got.is_some() {
                    prop_assert_eq!(c.pos(), n);
                }
            }
        }

        #[test]
        fn cursor_sk_matches_sock_key_parse(b in bytes()) {
            // A key read by the cursor that ends at a boundary is what
            // `SockKey::parse` makes of the same token.
            let mut c = Cursor::new(&b);
            if let Some(sk) = c.sk() {
                if c.at_boundary() {
                    let tok = &b[..c.pos()];
                    prop_assert_eq!(SockKey::parse(tok), Some(sk));
                }
            }
        }
    }

    #[test]
    fn fields_follow_the_documented_rules() {
        let f: Vec<_> = Fields::new(b" a=1  junk b=2 \xc2\xa0c= label= ingress q:1 \r").collect();
        let want: Vec<(&[u8], &[u8])> = vec![
            (b"a", b"1"),
            (b"b", b"2"),
            (b"c", b""),
            (b"label", b"ingress q:1"),
        ];
        assert_eq!(f, want);
        // A value ends at a space only.
        let f: Vec<_> = Fields::new(b"a=1\tb=2").collect();
        assert_eq!(f, vec![(&b"a"[..], &b"1\tb=2"[..])]);
        let many = (0..20).map(|i| format!(" k{i}={i}")).collect::<String>();
        assert_eq!(Fields::new(many.as_bytes()).count(), MAX_FIELDS);
        assert_eq!(Fields::after(b" a=1 b=2", MAX_FIELDS - 1).count(), 1);
    }

    #[test]
    fn trimming_and_tokens() {
        assert_eq!(trim(b"\xc2\xa0 \tx y\r\xc2\xa0"), b"x y");
        assert_eq!(trim_start(b" \xc2\xa0x "), b"x ");
        assert_eq!(
            next_token(b"  ab\xc2\xa0cd"),
            Some((&b"ab"[..], &b"\xc2\xa0cd"[..]))
        );
        assert_eq!(next_token(b" \t"), None);
    }
}
