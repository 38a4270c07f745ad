//! The recorder's line buffer: a fixed, allocation-free destination for
//! `xskdbg_format`'s line writer (which holds every rule of how a line is
//! spelled), and how many addresses or descriptors fit in one line.

use xskdbg_format::LineWriter;
pub use xskdbg_format::LINE_MAX;

/// Room for a line's operation and key fields (`xskdbg:1 rx sk=… pool=… idx=…
/// n=… d=`, all at their widest, a socket key's ifindex and queue id being
/// the kernel's 32-bit values, `sid=`, `seq=`), and the fields after it
/// (`prod=`), besides its list.
const HEAD_MAX: usize = 160;

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

/// A line under construction, on the stack or in a thread's slot.
pub struct LineBuf {
    buf: [u8; LINE_MAX + 96],
    len: usize,
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// Appending never panics: what does not fit in the buffer is cut, and
/// [`LineBuf::finish`] keeps the line within [`LINE_MAX`].
impl LineWriter for LineBuf {
    #[inline]
    fn put(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    #[inline]
    fn grow(&mut self, n: usize) -> Option<&mut [u8]> {
        let out = self.buf.get_mut(self.len..self.len + n)?;
        self.len += n;
        Some(out)
    }
}

// The writer's rules under the names the recorder's call sites use.
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

    /// Append bytes, cutting at the buffer end.
    #[inline]
    pub fn push(&mut self, s: &[u8]) {
        LineWriter::put(self, s);
    }

    /// Append one byte.
    #[inline]
    pub fn byte(&mut self, b: u8) {
        LineWriter::byte(self, b);
    }

    /// Append a number (lower-case hex without `0x`).
    #[inline]
    pub fn hex(&mut self, v: u64) {
        LineWriter::hex(self, v);
    }

    /// Append ` key=<hex>`.
    #[inline]
    pub fn field_hex(&mut self, key: &[u8], v: u64) {
        LineWriter::field_hex(self, key, v);
    }

    /// Append ` key=value` (a word).
    #[inline]
    pub fn field(&mut self, key: &[u8], v: &[u8]) {
        LineWriter::field(self, key, v);
    }

    /// Append ` sk=<cookie>:<ifindex>:<queue>`.
    #[inline]
    pub fn field_sk(&mut self, sk: &crate::SockKey) {
        LineWriter::field_sk(self, sk);
    }

    /// Append a descriptor `addr:len[:options]`.
    #[inline]
    pub fn desc(&mut self, d: &crate::XdpDesc) {
        LineWriter::desc(self, d.addr, u64::from(d.len), u64::from(d.options));
    }

    /// Append the label field; it runs to the end of the line, so it goes
    /// last.
    pub fn label(&mut self, label: &str) {
        LineWriter::label(self, label);
    }

    /// Start a project line: `xskdbg:1 <op>`, from an empty buffer.
    #[inline]
    pub fn start(&mut self, op: &[u8]) {
        self.len = 0;
        LineWriter::start(self, op);
    }

    /// Finish with a newline, keeping the whole line within [`LINE_MAX`].
    #[inline]
    pub fn finish(&mut self) {
        if self.len > LINE_MAX - 1 {
            self.len = LINE_MAX - 1;
        }
        LineWriter::byte(self, b'\n');
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

    /// Every line the recorder writes names its operation and its keys by
    /// the format's lists (the call sites spell them as byte literals).
    #[cfg(xskdbg_on)]
    #[test]
    fn every_line_uses_the_format_s_names() {
        use std::collections::BTreeSet;
        use xskdbg_format::lex::{next_token, Fields};
        use xskdbg_format::{key, op, PREFIX};

        use crate::{
            Policy, PoolConfig, Recorder, RecorderConfig, SinkConfig, SockConfig, UmemConfig,
            XdpDesc,
        };

        let cfg = RecorderConfig::new(SinkConfig::Memory { events: 256 })
            .policy(Policy::Callback(std::sync::Arc::new(|_| {})));
        let rec = Recorder::new(cfg).unwrap();
        let u = rec
            .umem(UmemConfig::aligned(64, 2048).with_poison(xskdbg_format::DEFAULT_POISON))
            .unwrap();
        let key = crate::SockKey::new(1, 5, 1);
        let p = u.pool(PoolConfig::new(key)).unwrap();
        struct Stats;
        impl crate::StatsSource for Stats {
            fn read(&self) -> std::io::Result<crate::XdpStats> {
                Ok(crate::XdpStats::default())
            }
        }
        // The fd is only written on the `sock` line: statistics come from
        // `Stats`.
        let sock = SockConfig::new(key)
            .label("ingress q:1")
            .fd(7)
            .stats(std::sync::Arc::new(Stats));
        let s = p.socket(sock).unwrap();
        let frames: Vec<u64> = (0..4u64).map(|i| i * 2048).collect();
        p.fill(&frames);
        let descs: Vec<XdpDesc> = frames.iter().map(|&a| XdpDesc::new(a + 256, 64)).collect();
        s.rx(&descs);
        u.free(&frames[..1]);
        u.hold(&frames[..1]);
        s.tx(&descs[..2]);
        p.comp(&frames[..2]);
        // FILL twice: a violation, with the declarations written again.
        p.fill(&frames[2..3]);
        p.fill(&frames[2..3]);

        let dump = String::from_utf8(rec.dump()).unwrap();
        let prefix = std::str::from_utf8(PREFIX).unwrap();
        let mut ops = BTreeSet::new();
        for line in dump.lines() {
            let Some(at) = line.find(prefix) else {
                continue;
            };
            let (o, fields) = next_token(&line.as_bytes()[at + PREFIX.len()..]).unwrap();
            let o = std::str::from_utf8(o).unwrap();
            assert!(op::ALL.contains(&o), "op {o}: {line}");
            for (k, _) in Fields::new(fields) {
                let k = std::str::from_utf8(k).unwrap();
                assert!(key::ALL.contains(&k), "key {k}: {line}");
            }
            ops.insert(o.to_string());
        }
        for o in [
            "umem",
            "pool",
            "sock",
            "fill",
            "rx",
            "tx",
            "comp",
            "hold",
            "free",
            "stats",
            "violation",
        ] {
            assert!(ops.contains(o), "no {o} line in {dump}");
        }
    }
}
