//! The one line writer: how every component spells a line of
//! `docs/TRACE-FORMAT.md`.
//!
//! [`LineWriter`] holds the rules (the `xskdbg:1 ` prefix, ` key=value`
//! fields, lower-case hex without `0x`, socket keys, `addr:len[:options]`
//! descriptors, comma lists, a `label=` that runs to the end of the line);
//! a destination only says how bytes are appended ([`LineWriter::put`],
//! [`LineWriter::grow`]). `Vec<u8>` is one destination; the recorder's
//! fixed, allocation-free line buffer is another. Nothing here allocates
//! beyond what the destination does, so a writer on the application's hot
//! path formats a batch line straight into its buffer.
//!
//! ```
//! use xskdbg_format::{key, op, LineWriter, SockKey};
//!
//! let mut b = Vec::new();
//! b.start(op::RX);
//! b.field_sk(&SockKey::new(1, 5, 1));
//! b.field_hex(key::IDX, 0x3c);
//! b.key(key::D);
//! b.desc(0x16ce900, 0x4e, 0);
//! b.byte(b',');
//! b.desc(0x160a100, 0x4e, 1);
//! b.label("ingress q:1");
//! assert_eq!(b, b"xskdbg:1 rx sk=1:5:1 idx=3c d=16ce900:4e,160a100:4e:1 label=ingress q:1");
//! ```

use crate::{key, SockKey, PREFIX};

/// The digits of `v` in lower-case hex without `0x` or leading zeros (at
/// least one), left-aligned in sixteen bytes, and how many there are: a
/// destination with sixteen bytes to spare copies all of them and keeps
/// the count (a fixed-size copy, no loop over the digits), see
/// [`LineWriter::hex`].
#[inline]
pub fn hex_digits(v: u64) -> ([u8; 16], usize) {
    /// Nibble `i` of `x` into byte `i` (little-endian) of the result.
    #[inline(always)]
    fn spread(x: u32) -> u64 {
        let mut v = u64::from(x);
        v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
        v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
        (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f
    }
    /// Each byte (a nibble) as its digit: `0`-`9` are 0x30 up, `a`-`f`
    /// 0x61 up (0x27 more than 0x3a).
    #[inline(always)]
    fn ascii(v: u64) -> u64 {
        let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        v + 0x3030_3030_3030_3030 + letters * 0x27
    }
    let n = ((67 - (v | 1).leading_zeros()) / 4) as usize;
    let mut b = [0u8; 16];
    if n <= 8 {
        // Most values (lengths, slots, counters): one half.
        let w = u64::from_le_bytes(ascii(spread(v as u32)).to_be_bytes()) >> (8 * (8 - n));
        b[..8].copy_from_slice(&w.to_le_bytes());
        return (b, n);
    }
    // Most significant digit first: each half's word big-endian (its
    // nibble 7 first), the high half first.
    b[..8].copy_from_slice(&ascii(spread((v >> 32) as u32)).to_be_bytes());
    b[8..].copy_from_slice(&ascii(spread(v as u32)).to_be_bytes());
    // Drop the leading zeros: the first 16 - n bytes.
    ((u128::from_le_bytes(b) >> (8 * (16 - n))).to_le_bytes(), n)
}

/// Appends the parts of a line to a destination. Implement [`put`],
/// [`byte`] and [`grow`]; every other method is the format's rule and is
/// provided.
///
/// A bounded destination cuts what does not fit (never panics); the line
/// then ends early, which a reader sees as a missing or shorter field.
///
/// [`put`]: LineWriter::put
/// [`byte`]: LineWriter::byte
/// [`grow`]: LineWriter::grow
pub trait LineWriter {
    /// Append bytes.
    fn put(&mut self, s: &[u8]);

    /// Append one byte.
    fn byte(&mut self, b: u8);

    /// Append `n` bytes for the caller to fill and return them, or `None`
    /// (appending nothing) when they do not fit.
    fn grow(&mut self, n: usize) -> Option<&mut [u8]>;

    /// Start a line: `xskdbg:1 <op>`.
    #[inline]
    fn start(&mut self, op: impl AsRef<[u8]>) {
        self.put(PREFIX);
        self.put(op.as_ref());
    }

    /// A number: lower-case hex without `0x`, at least one digit.
    #[inline]
    fn hex(&mut self, v: u64) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        // Digits needed: one per started nibble, at least one.
        let n = ((67 - (v | 1).leading_zeros()) / 4) as usize;
        let Some(out) = self.grow(n) else {
            return;
        };
        let mut v = v;
        for b in out.iter_mut().rev() {
            *b = DIGITS[(v & 0xf) as usize];
            v >>= 4;
        }
    }

    /// A time of the `mono` trace clock as ftrace prints one, to the
    /// nanosecond: `secs.nnnnnnnnn`, nine digits after the point (the
    /// drained records' `t=`: the one value that is not hex). Its two parts
    /// are [`LineWriter::stamp_secs`] and [`LineWriter::stamp_nanos`], for a
    /// writer that keeps the seconds it wrote last.
    #[inline]
    fn stamp(&mut self, ns: u64) {
        self.stamp_secs(ns / 1_000_000_000);
        self.stamp_nanos((ns % 1_000_000_000) as u32);
    }

    /// The seconds of a [`LineWriter::stamp`] and its point: `secs.`.
    #[inline]
    fn stamp_secs(&mut self, secs: u64) {
        let mut digits = 1;
        let mut t = secs;
        while t >= 10 {
            t /= 10;
            digits += 1;
        }
        let Some(out) = self.grow(digits + 1) else {
            return;
        };
        let mut s = secs;
        for d in out[..digits].iter_mut().rev() {
            *d = b'0' + (s % 10) as u8;
            s /= 10;
        }
        out[digits] = b'.';
    }

    /// The nine digits after the point of a [`LineWriter::stamp`]
    /// (`nanos` below 10^9).
    #[inline]
    fn stamp_nanos(&mut self, nanos: u32) {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let Some(f) = self.grow(9) else {
            return;
        };
        let mut frac = nanos % 1_000_000_000;
        // Four pairs from the right, then the first digit.
        for i in (0..4).rev() {
            let p = (frac % 100) as usize * 2;
            frac /= 100;
            f[1 + 2 * i] = PAIRS[p];
            f[2 + 2 * i] = PAIRS[p + 1];
        }
        f[0] = b'0' + frac as u8;
    }

    /// A field's key with its separators: ` key=`. The value follows.
    #[inline]
    fn key(&mut self, key: impl AsRef<[u8]>) {
        self.byte(b' ');
        self.put(key.as_ref());
        self.byte(b'=');
    }

    /// ` key=<hex>`.
    #[inline]
    fn field_hex(&mut self, key: impl AsRef<[u8]>, v: u64) {
        self.key(key);
        self.hex(v);
    }

    /// ` key=value` for a word (`mode=aligned`). A value is one token: a
    /// blank or line break in it is written as `_`.
    #[inline]
    fn field(&mut self, key: impl AsRef<[u8]>, v: impl AsRef<[u8]>) {
        self.key(key);
        for &b in v.as_ref() {
            self.byte(if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                b'_'
            } else {
                b
            });
        }
    }

    /// ` sk=<netns_cookie>:<ifindex>:<queue_id>`.
    #[inline]
    fn field_sk(&mut self, sk: &SockKey) {
        self.key(key::SK);
        self.sk(sk);
    }

    /// A socket key as a value: `netns_cookie:ifindex:queue_id`.
    #[inline]
    fn sk(&mut self, sk: &SockKey) {
        self.hex(sk.netns_cookie);
        self.byte(b':');
        self.hex(sk.ifindex);
        self.byte(b':');
        self.hex(sk.queue_id);
    }

    /// A descriptor of a `d=` list: `addr:len`, and `:options` when not 0.
    #[inline]
    fn desc(&mut self, addr: u64, len: u64, options: u64) {
        self.hex(addr);
        self.byte(b':');
        self.hex(len);
        if options != 0 {
            self.byte(b':');
            self.hex(options);
        }
    }

    /// ` key=a,b,c`: a list of addresses.
    #[inline]
    fn field_addrs(&mut self, key: impl AsRef<[u8]>, addrs: impl IntoIterator<Item = u64>) {
        self.key(key);
        for (i, a) in addrs.into_iter().enumerate() {
            if i > 0 {
                self.byte(b',');
            }
            self.hex(a);
        }
    }

    /// ` key=addr:len[:options],...`: a list of descriptors.
    #[inline]
    fn field_descs(
        &mut self,
        key: impl AsRef<[u8]>,
        descs: impl IntoIterator<Item = (u64, u64, u64)>,
    ) {
        self.key(key);
        for (i, (addr, len, options)) in descs.into_iter().enumerate() {
            if i > 0 {
                self.byte(b',');
            }
            self.desc(addr, len, options);
        }
    }

    /// ` key=text` where the text runs to the end of the line (`label=`,
    /// `sym=`), so it goes last; line breaks become spaces so the line stays
    /// one line.
    #[inline]
    fn tail(&mut self, key: impl AsRef<[u8]>, text: impl AsRef<[u8]>) {
        self.key(key);
        for &b in text.as_ref() {
            self.byte(if b == b'\n' || b == b'\r' { b' ' } else { b });
        }
    }

    /// ` label=text`, last (see [`LineWriter::tail`]).
    #[inline]
    fn label(&mut self, text: impl AsRef<[u8]>) {
        self.tail(key::LABEL, text);
    }
}

impl LineWriter for Vec<u8> {
    #[inline]
    fn put(&mut self, s: &[u8]) {
        self.extend_from_slice(s);
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        self.push(b);
    }

    #[inline]
    fn grow(&mut self, n: usize) -> Option<&mut [u8]> {
        let len = self.len();
        self.resize(len + n, 0);
        Some(&mut self[len..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op;

    /// A bounded destination, as the recorder's line buffer is.
    struct Fixed {
        buf: [u8; 24],
        len: usize,
    }

    impl LineWriter for Fixed {
        fn put(&mut self, s: &[u8]) {
            let n = s.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
            self.len += n;
        }
        fn byte(&mut self, b: u8) {
            self.put(&[b]);
        }
        fn grow(&mut self, n: usize) -> Option<&mut [u8]> {
            let out = self.buf.get_mut(self.len..self.len + n)?;
            self.len += n;
            Some(out)
        }
    }

    #[test]
    fn hex_edge_cases() {
        for (v, want) in [
            (0u64, "0"),
            (1, "1"),
            (0xf, "f"),
            (0x10, "10"),
            (0xdead_beef_dead_beef, "deadbeefdeadbeef"),
            (u64::MAX, "ffffffffffffffff"),
            (1 << 48, "1000000000000"),
        ] {
            let mut b = Vec::new();
            b.hex(v);
            assert_eq!(b, want.as_bytes());
        }
    }

    #[test]
    fn hex_digits_agree_with_hex() {
        let mut vals = vec![0u64, 1, 9, 0xa, 0xf, 0x10, 0x9f, 0xa0, u64::MAX, 1 << 63];
        for shift in 0..64 {
            vals.push(1 << shift);
            vals.push((1 << shift) - 1);
            vals.push(0x0123_4567_89ab_cdef_u64.rotate_left(shift));
        }
        for v in vals {
            let mut b = Vec::new();
            b.hex(v);
            let (d, n) = hex_digits(v);
            assert_eq!(&d[..n], &b[..], "{v:#x}");
            assert!(d[n..].iter().all(|&c| c == 0), "{v:#x}");
        }
    }

    #[test]
    fn stamps_read_like_the_trace_clock() {
        for (ns, want) in [
            (0u64, "0.000000000"),
            (7, "0.000000007"),
            (14_705_034_123, "14.705034123"),
            (1_000_000_000, "1.000000000"),
            (999_999_999, "0.999999999"),
            (123_456_789_012_345_678, "123456789.012345678"),
            (u64::MAX, "18446744073.709551615"),
        ] {
            let mut b = Vec::new();
            b.stamp(ns);
            assert_eq!(String::from_utf8(b).unwrap(), want);
        }
    }

    #[test]
    fn fields_lists_and_tails() {
        let mut b = Vec::new();
        b.start(op::FILL);
        b.field_hex(key::POOL, 1);
        b.field_addrs(key::A, [0x1000, 0x1800]);
        b.field(key::MODE, "a b\nc");
        b.field_descs(key::D, [(0x100, 0x40, 0), (0x900, 0x10, 1)]);
        b.tail(key::SYM, "app::f+0x4c\n(src/main.rs:88)");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "xskdbg:1 fill pool=1 a=1000,1800 mode=a_b_c d=100:40,900:10:1 sym=app::f+0x4c (src/main.rs:88)"
        );
    }

    #[test]
    fn a_bounded_destination_cuts_without_panicking() {
        let mut f = Fixed {
            buf: [0; 24],
            len: 0,
        };
        f.start(op::VIOLATION);
        f.field_hex(key::A, u64::MAX);
        f.label("x".repeat(100));
        // The address did not fit whole, so none of it was written.
        assert_eq!(f.len, 24);
        assert_eq!(&f.buf[..], b"xskdbg:1 violation a= la");
    }
}
