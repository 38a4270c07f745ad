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
