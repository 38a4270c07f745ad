//! The drained records and their one spelling as trace lines: [`Rec`], the
//! binary record a probe fills (`struct xskdbg_rec` in `src/bpf/xskdbg.h`),
//! and [`render`], which writes it as a project line with its own `cpu=`
//! and `t=` (docs/TRACE-FORMAT.md "Drained kernel records").

/// Record kinds (`R_*` in `src/bpf/xskdbg.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// `krx`.
    Rx = 1,
    /// `krxdone`.
    RxDone = 2,
    /// `kflush`.
    Flush = 3,
    /// `kpoll`.
    Poll = 4,
    /// `kxdperr`.
    XdpErr = 5,
    /// `ktx`.
    Tx = 6,
    /// `kcomp`.
    Comp = 7,
    /// `kstack`.
    Stack = 8,
    /// A `kpoll` and the `kflush at=poll` of the poll's first socket, one
    /// stamp: two lines ([`Rec::lines`]).
    PollFlush = 9,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Rx,
            2 => Op::RxDone,
            3 => Op::Flush,
            4 => Op::Poll,
            5 => Op::XdpErr,
            6 => Op::Tx,
            7 => Op::Comp,
            8 => Op::Stack,
            9 => Op::PollFlush,
            _ => return None,
        })
    }
}

/// `has` bits: which optional fields a record carries (`H_*`).
pub mod has {
    /// `sk=` (cookie, ifindex, queue).
    pub const SK: u16 = 1 << 0;
    /// `kpool=`.
    pub const POOL: u16 = 1 << 1;
    /// `prod=`.
    pub const PROD: u16 = 1 << 2;
    /// `cprod=`.
    pub const CPROD: u16 = 1 << 3;
    /// `fcons=`.
    pub const FCONS: u16 = 1 << 4;
    /// `len=`.
    pub const LEN: u16 = 1 << 5;
    /// `opt=`.
    pub const OPT: u16 = 1 << 6;
    /// `a=`.
    pub const A: u16 = 1 << 7;
    /// `slot=`.
    pub const SLOT: u16 = 1 << 8;
    /// `xs=`.
    pub const XS: u16 = 1 << 9;
    /// `errno=`.
    pub const ERRNO: u16 = 1 << 10;
}

/// One kernel event as a probe wrote it (`struct xskdbg_rec`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rec {
    /// `bpf_ktime_get_ns()` at the event.
    pub ts: u64,
    /// The socket (`kpoll`: the NAPI struct).
    pub xs: u64,
    /// netns cookie of the socket's (or `kxdperr why=exception`'s) device.
    pub cookie: u64,
    /// The buffer pool.
    pub pool: u64,
    /// `a=`.
    pub addr: u64,
    /// ifindex (`kpoll`, `kxdperr why=exception`: `dev=`).
    pub ifindex: u32,
    /// Queue id.
    pub queue: u32,
    /// `len=`.
    pub len: u32,
    /// `opt=`.
    pub opt: u32,
    /// `slot=`.
    pub slot: u32,
    /// `prod=`.
    pub prod: u32,
    /// `cprod=`.
    pub cprod: u32,
    /// `fcons=`.
    pub fcons: u32,
    /// `kpoll work=`, `kcomp n=`, `kxdperr errno=`, `kstack id=`.
    pub n: u32,
    /// `kpoll budget=`, `kxdperr act=`.
    pub aux: u32,
    /// The CPU the event ran on.
    pub cpu: u32,
    /// Which optional fields are set ([`has`]).
    pub has: u16,
    /// The kind ([`Op`]).
    pub op: u8,
    /// krx mode (1 drv, 2 skb, 3 zc), kflush/ktx/kstack `at=`, kxdperr `why=`.
    pub kind: u8,
}

impl Rec {
    /// Size of the C struct.
    pub const SIZE: usize = 88;

    /// Decodes a record as the ring buffer hands it out (native endian).
    pub fn decode(b: &[u8]) -> Option<Rec> {
        if b.len() < Self::SIZE {
            return None;
        }
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
        Some(Rec {
            ts: u64_at(0),
            xs: u64_at(8),
            cookie: u64_at(16),
            pool: u64_at(24),
            addr: u64_at(32),
            ifindex: u32_at(40),
            queue: u32_at(44),
            len: u32_at(48),
            opt: u32_at(52),
            slot: u32_at(56),
            prod: u32_at(60),
            cprod: u32_at(64),
            fcons: u32_at(68),
            n: u32_at(72),
            aux: u32_at(76),
            cpu: u32_at(80),
            has: u16::from_ne_bytes([b[84], b[85]]),
            op: b[86],
            kind: b[87],
        })
    }

    /// The records of the lines `self` stands for: itself, or for a
    /// [`Op::PollFlush`] its `kpoll` and its `kflush` (in that order, as
    /// the probe made them before the two shared a record).
    pub fn lines(&self) -> [Option<Rec>; 2] {
        if self.op != Op::PollFlush as u8 {
            return [Some(*self), None];
        }
        let poll = Rec {
            xs: self.addr,
            ifindex: self.len,
            n: self.n,
            aux: self.aux,
            op: Op::Poll as u8,
            kind: 0,
            has: 0,
            ..Rec::at(self)
        };
        let flush = Rec {
            xs: self.xs,
            cookie: self.cookie,
            ifindex: self.ifindex,
            queue: self.queue,
            prod: self.prod,
            cprod: self.cprod,
            has: self.has,
            op: Op::Flush as u8,
            kind: self.kind,
            ..Rec::at(self)
        };
        [Some(poll), Some(flush)]
    }

    /// An empty record with `r`'s stamp and CPU.
    fn at(r: &Rec) -> Rec {
        Rec {
            ts: r.ts,
            cpu: r.cpu,
            ..Rec::default()
        }
    }

    /// The bytes [`Rec::decode`] reads (tests, benchmarks).
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        let mut put = |o: usize, v: &[u8]| b[o..o + v.len()].copy_from_slice(v);
        put(0, &self.ts.to_ne_bytes());
        put(8, &self.xs.to_ne_bytes());
        put(16, &self.cookie.to_ne_bytes());
        put(24, &self.pool.to_ne_bytes());
        put(32, &self.addr.to_ne_bytes());
        for (i, v) in [
            self.ifindex,
            self.queue,
            self.len,
            self.opt,
            self.slot,
            self.prod,
            self.cprod,
            self.fcons,
            self.n,
            self.aux,
            self.cpu,
        ]
        .iter()
        .enumerate()
        {
            put(40 + 4 * i, &v.to_ne_bytes());
        }
        put(84, &self.has.to_ne_bytes());
        b[86] = self.op;
        b[87] = self.kind;
        b
    }
}

/// Room for one rendered line: the longest (a `krx` with every field at
/// its widest) is 256 bytes; `every_kind_fits_its_room` holds them to it.
pub(super) const ROOM: usize = 320;

/// A line being rendered into room reserved at the end of the pending
/// bytes, its length in a local: everything here inlines into `render`
/// (pushing byte by byte into the `Vec` cost about 200 ns a line, as much
/// as writing it).
pub(super) struct W<'a> {
    pub(super) b: &'a mut [u8],
    pub(super) n: usize,
}

impl W<'_> {
    #[inline(always)]
    fn push(&mut self, c: u8) {
        self.b[self.n] = c;
        self.n += 1;
    }
    #[inline(always)]
    fn extend_from_slice(&mut self, v: &[u8]) {
        self.b[self.n..self.n + v.len()].copy_from_slice(v);
        self.n += v.len();
    }
}

/// Appends a `bpf_ktime_get_ns()` value as the `mono` trace clock writes a
/// time, with all nine digits: `secs.nnnnnnnnn`.
pub fn stamp(out: &mut Vec<u8>, ns: u64) {
    let start = out.len();
    out.resize(start + 32, 0);
    let mut w = W {
        b: &mut out[start..],
        n: 0,
    };
    stamp_w(&mut w, ns);
    let n = w.n;
    out.truncate(start + n);
}

/// Appends `v` in lower-case hex without `0x`.
#[inline(always)]
pub(super) fn hex(out: &mut W<'_>, v: u64) {
    const D: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - (v | 1).leading_zeros()).div_ceil(4) as usize;
    let d = &mut out.b[out.n..out.n + digits];
    for (i, slot) in d.iter_mut().rev().enumerate() {
        *slot = D[((v >> (4 * i)) & 0xf) as usize];
    }
    out.n += digits;
}

#[inline(always)]
fn field(out: &mut W<'_>, key: &[u8], v: u64) {
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    hex(out, v);
}

/// [`stamp`] into a line.
#[inline(always)]
fn stamp_w(out: &mut W<'_>, ns: u64) {
    let mut secs = [0u8; 20];
    let mut i = secs.len();
    let mut s = ns / 1_000_000_000;
    loop {
        i -= 1;
        secs[i] = b'0' + (s % 10) as u8;
        s /= 10;
        if s == 0 {
            break;
        }
    }
    out.extend_from_slice(&secs[i..]);
    out.push(b'.');
    let mut frac = ns % 1_000_000_000;
    let d = &mut out.b[out.n..out.n + 9];
    for slot in d.iter_mut().rev() {
        *slot = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.n += 9;
}

/// `xskdbg:1 <op> cpu=<hex> t=<secs.nanos>`: the head every drained line
/// starts with, so a reader finds the record's own CPU and stamp at a fixed
/// place.
#[inline(always)]
fn head(out: &mut W<'_>, op: &[u8], cpu: u32, ts: u64) {
    out.extend_from_slice(b"xskdbg:1 ");
    out.extend_from_slice(op);
    out.extend_from_slice(b" cpu=");
    hex(out, u64::from(cpu));
    out.extend_from_slice(b" t=");
    stamp_w(out, ts);
}

#[inline(always)]
fn sock(out: &mut W<'_>, r: &Rec) {
    if r.has & has::XS != 0 {
        field(out, b"xs", r.xs);
    }
    if r.has & has::SK != 0 {
        out.extend_from_slice(b" sk=");
        hex(out, r.cookie);
        out.push(b':');
        hex(out, u64::from(r.ifindex));
        out.push(b':');
        hex(out, u64::from(r.queue));
    }
}

#[inline(always)]
fn opt(out: &mut W<'_>, r: &Rec, bit: u16, key: &[u8], v: u64) {
    if r.has & bit != 0 {
        field(out, key, v);
    }
}

/// Appends record `r` as one project line (no newline), the fields in the
/// order the `bpf_trace_printk` lines print them (docs/TRACE-FORMAT.md)
/// after the drained head. Returns false (and appends nothing) for a kind
/// it does not know.
///
/// The one function that spells drained records: when the format crate's
/// line writer lands, this is what moves onto it.
pub fn render(out: &mut Vec<u8>, r: &Rec) -> bool {
    let start = out.len();
    out.resize(start + ROOM, 0);
    let mut w = W {
        b: &mut out[start..],
        n: 0,
    };
    let known = render_w(&mut w, r);
    let n = if known { w.n } else { 0 };
    out.truncate(start + n);
    known
}

fn render_w(out: &mut W<'_>, r: &Rec) -> bool {
    let Some(op) = Op::from_u8(r.op) else {
        return false;
    };
    match op {
        Op::Rx => {
            head(out, b"krx", r.cpu, r.ts);
            sock(out, r);
            opt(out, r, has::A, b"a", r.addr);
            opt(out, r, has::LEN, b"len", r.len.into());
            opt(out, r, has::OPT, b"opt", r.opt.into());
            opt(out, r, has::SLOT, b"slot", r.slot.into());
            opt(out, r, has::POOL, b"kpool", r.pool);
            opt(out, r, has::PROD, b"prod", r.prod.into());
            opt(out, r, has::FCONS, b"fcons", r.fcons.into());
            match r.kind {
                1 => out.extend_from_slice(b" mode=drv"),
                2 => out.extend_from_slice(b" mode=skb"),
                3 => out.extend_from_slice(b" mode=zc"),
                _ => {}
            }
        }
        Op::RxDone => {
            head(out, b"krxdone", r.cpu, r.ts);
            sock(out, r);
            opt(out, r, has::SLOT, b"slot", r.slot.into());
        }
        Op::Flush => {
            head(out, b"kflush", r.cpu, r.ts);
            sock(out, r);
            opt(out, r, has::PROD, b"prod", r.prod.into());
            opt(out, r, has::CPROD, b"cprod", r.cprod.into());
            out.extend_from_slice(if r.kind == 2 {
                b" at=poll"
            } else {
                b" at=flush"
            });
        }
        Op::Poll => {
            head(out, b"kpoll", r.cpu, r.ts);
            field(out, b"napi", r.xs);
            field(out, b"dev", r.ifindex.into());
            field(out, b"work", r.n.into());
            field(out, b"budget", r.aux.into());
        }
        Op::XdpErr => {
            head(out, b"kxdperr", r.cpu, r.ts);
            match r.kind {
                2 => {
                    out.extend_from_slice(b" why=exception dev=");
                    hex(out, r.cookie);
                    out.push(b':');
                    hex(out, r.ifindex.into());
                    field(out, b"act", r.aux.into());
                }
                3 => {
                    out.extend_from_slice(b" why=rcv");
                    sock(out, r);
                    opt(out, r, has::SLOT, b"slot", r.slot.into());
                    opt(out, r, has::ERRNO, b"errno", r.n.into());
                }
                _ => {
                    out.extend_from_slice(b" why=redirect");
                    sock(out, r);
                    opt(out, r, has::ERRNO, b"errno", r.n.into());
                    opt(out, r, has::POOL, b"kpool", r.pool);
                    opt(out, r, has::CPROD, b"cprod", r.cprod.into());
                    opt(out, r, has::PROD, b"prod", r.prod.into());
                    opt(out, r, has::FCONS, b"fcons", r.fcons.into());
                }
            }
        }
        Op::Tx => {
            head(out, b"ktx", r.cpu, r.ts);
            opt(out, r, has::POOL, b"kpool", r.pool);
            opt(out, r, has::A, b"a", r.addr);
            opt(out, r, has::LEN, b"len", r.len.into());
            out.extend_from_slice(if r.kind == 2 { b" at=peek" } else { b" at=raw" });
        }
        Op::Comp => {
            head(out, b"kcomp", r.cpu, r.ts);
            sock(out, r);
            opt(out, r, has::POOL, b"kpool", r.pool);
            field(out, b"n", r.n.into());
            opt(out, r, has::A, b"a", r.addr);
        }
        // Split by `Rec::lines` before rendering.
        Op::PollFlush => return false,
        Op::Stack => {
            head(out, b"kstack", r.cpu, r.ts);
            out.extend_from_slice(if r.kind == 2 {
                b" at=kflush"
            } else {
                b" at=krx"
            });
            opt(out, r, has::XS, b"xs", r.xs);
            field(out, b"id", r.n.into());
        }
    }
    true
}

/// `xskdbg:1 kdrain cpu= t= n= lost= of= [final=1]`: CPU `cpu`'s drainer has
/// written every record stamped before `t` (`upto`); `n` records in this
/// drain, `lost` records its ring refused so far (full), `of` drainers in
/// the session.
pub fn drain_line(v: &mut Vec<u8>, cpu: u32, upto: u64, n: u64, lost: u64, of: u32, fin: bool) {
    let start = v.len();
    v.resize(start + ROOM, 0);
    let mut w = W {
        b: &mut v[start..],
        n: 0,
    };
    let out = &mut w;
    head(out, b"kdrain", cpu, upto);
    field(out, b"n", n);
    field(out, b"lost", lost);
    field(out, b"of", of.into());
    if fin {
        out.extend_from_slice(b" final=1");
    }
    let len = w.n;
    v.truncate(start + len);
}
