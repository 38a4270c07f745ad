//! Formatting project lines (`docs/TRACE-FORMAT.md`) into a fixed buffer on
//! the stack: no allocation, no `fmt` machinery on the hot path.

/// Longest line the recorder writes. Kernels before 6.10 cut a trace_marker
/// write at 1024 bytes (`TRACE_BUF_SIZE`; 4096 only since then), silently: a
/// cut batch line loses frames and the analyzer then sees leaks that are not
/// there. So every line stays below 1024 bytes on every kernel.
pub const LINE_MAX: usize = 1000;

/// Room for a line's operation and key fields (`xskdbg:1 rx sk=… pool=… idx=…
/// n=… d=`, all at their widest), before its list.
const HEAD_MAX: usize = 120;

/// Worst-case descriptors per `rx`/`tx` line (every one 36 bytes wide).
#[cfg(test)]
const DESCS_PER_LINE: usize = (LINE_MAX - 1 - HEAD_MAX) / 36;

/// Worst-case addresses per `fill`/`comp`/`hold`/`free`/`recycle` line (17 bytes each).
pub const ADDRS_PER_LINE: usize = (LINE_MAX - 1 - HEAD_MAX) / 17;

/// Hex digits of `v` as the line writes it.
#[inline]
fn hex_width(v: u64) -> usize {
    ((64 - v.leading_zeros()) as usize).max(1).div_ceil(4)
}

/// How many of `items` fit in one line's list (each with its comma), given
/// each item's written width: real addresses are far shorter than the worst
/// case, so a batch of 32 still goes out in one write.
#[inline]
pub fn fitting<T>(items: &[T], width: impl Fn(&T) -> usize) -> usize {
    let mut used = 0usize;
    for (i, it) in items.iter().enumerate() {
        used += width(it) + 1;
        if used > LINE_MAX - 1 - HEAD_MAX {
            return i.max(1);
        }
    }
    items.len()
}

/// Written width of an address.
#[inline]
pub fn addr_width(a: &u64) -> usize {
    hex_width(*a)
}

/// Written width of a descriptor (`addr:len[:options]`).
#[inline]
pub fn desc_width(d: &crate::XdpDesc) -> usize {
    let opts = if d.options != 0 {
        1 + hex_width(u64::from(d.options))
    } else {
        0
    };
    hex_width(d.addr) + 1 + hex_width(u64::from(d.len)) + opts
}

/// A line under construction.
pub struct LineBuf {
    buf: [u8; LINE_MAX + 96],
    len: usize,
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuf {
    /// An empty line.
    #[inline]
    pub const fn new() -> LineBuf {
        LineBuf {
            buf: [0; LINE_MAX + 96],
            len: 0,
        }
    }

    /// Bytes written so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Room left before [`LINE_MAX`] (one byte is kept for the newline).
    #[inline]
    pub fn room(&self) -> usize {
        (LINE_MAX - 1).saturating_sub(self.len)
    }

    /// The line so far.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Append bytes, cutting at the buffer end (never panics).
    #[inline]
    pub fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    /// Append one byte.
    #[inline]
    pub fn byte(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    /// Append lower-case hex without `0x` (cut, never panicking, at the end).
    #[inline]
    pub fn hex(&mut self, v: u64) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        // Digits needed: one per started nibble, at least one.
        let n = ((67 - (v | 1).leading_zeros()) / 4) as usize;
        let Some(out) = self.buf.get_mut(self.len..self.len + n) else {
            return;
        };
        let mut v = v;
        for b in out.iter_mut().rev() {
            *b = DIGITS[(v & 0xf) as usize];
            v >>= 4;
        }
        self.len += n;
    }

    /// Append ` key=<hex>`.
    #[inline]
    pub fn field_hex(&mut self, key: &[u8], v: u64) {
        self.byte(b' ');
        self.push(key);
        self.byte(b'=');
        self.hex(v);
    }

    /// Append ` key=value`.
    #[inline]
    pub fn field(&mut self, key: &[u8], v: &[u8]) {
        self.byte(b' ');
        self.push(key);
        self.byte(b'=');
        self.push(v);
    }

    /// Append ` sk=<cookie>:<ifindex>:<queue>`.
    #[inline]
    pub fn field_sk(&mut self, sk: &crate::SockKey) {
        self.push(b" sk=");
        self.hex(sk.netns_cookie);
        self.byte(b':');
        self.hex(u64::from(sk.ifindex));
        self.byte(b':');
        self.hex(u64::from(sk.queue_id));
    }

    /// Append a descriptor `addr:len[:options]`.
    #[inline]
    pub fn desc(&mut self, d: &crate::XdpDesc) {
        self.hex(d.addr);
        self.byte(b':');
        self.hex(u64::from(d.len));
        if d.options != 0 {
            self.byte(b':');
            self.hex(u64::from(d.options));
        }
    }

    /// Append the label field; it runs to the end of the line, so it goes
    /// last. Newlines are replaced so the line stays one line.
    pub fn label(&mut self, label: &str) {
        self.push(b" label=");
        for &b in label.as_bytes() {
            self.byte(if b == b'\n' || b == b'\r' { b' ' } else { b });
        }
    }

    /// Start a project line: `xskdbg:1 <op>`.
    #[inline]
    pub fn start(&mut self, op: &[u8]) {
        self.len = 0;
        self.push(b"xskdbg:1 ");
        self.push(op);
    }

    /// Finish with a newline, keeping the whole line within [`LINE_MAX`].
    #[inline]
    pub fn finish(&mut self) {
        if self.len > LINE_MAX - 1 {
            self.len = LINE_MAX - 1;
        }
        self.byte(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_fields() {
        let mut l = LineBuf::new();
        l.start(b"rx");
        l.field_sk(&crate::SockKey::new(1, 5, 1));
        l.field_hex(b"idx", 0x3c);
        l.push(b" d=");
        l.desc(&crate::XdpDesc::new(0x16ce900, 0x4e));
        l.byte(b',');
        l.desc(&crate::XdpDesc {
            addr: 0,
            len: 0x10,
            options: 1,
        });
        l.label("ingress q:1");
        l.finish();
        assert_eq!(
            std::str::from_utf8(l.as_bytes()).unwrap(),
            "xskdbg:1 rx sk=1:5:1 idx=3c d=16ce900:4e,0:10:1 label=ingress q:1\n"
        );
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
            let mut l = LineBuf::new();
            l.hex(v);
            assert_eq!(std::str::from_utf8(l.as_bytes()).unwrap(), want);
        }
    }

    #[test]
    fn worst_case_lines_fit() {
        let mut l = LineBuf::new();
        l.start(b"rx");
        l.field_sk(&crate::SockKey::new(u64::MAX, u32::MAX, u32::MAX));
        l.field_hex(b"pool", u64::from(u32::MAX));
        l.field_hex(b"idx", u64::from(u32::MAX));
        l.field_hex(b"n", DESCS_PER_LINE as u64);
        l.push(b" d=");
        let d = crate::XdpDesc {
            addr: u64::MAX,
            len: u32::MAX,
            options: u32::MAX,
        };
        for i in 0..DESCS_PER_LINE {
            if i > 0 {
                l.byte(b',');
            }
            l.desc(&d);
        }
        assert!(l.len() < LINE_MAX, "{}", l.len());
        l.start(b"fill");
        l.field_hex(b"pool", u64::from(u32::MAX));
        l.field_hex(b"n", ADDRS_PER_LINE as u64);
        l.push(b" a=");
        for _ in 0..ADDRS_PER_LINE {
            l.hex(u64::MAX);
            l.byte(b',');
        }
        assert!(l.len() < LINE_MAX, "{}", l.len());
    }

    #[test]
    fn overlong_input_is_cut_not_panicking() {
        let mut l = LineBuf::new();
        l.start(b"sock");
        l.label(&"x".repeat(10_000));
        l.finish();
        assert_eq!(l.len(), LINE_MAX);
        assert_eq!(l.as_bytes().last(), Some(&b'\n'));
    }
}
