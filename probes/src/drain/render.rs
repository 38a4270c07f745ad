//! The drained records and their one spelling as trace lines: [`Rec`], the
//! binary record a probe fills (`struct xskdbg_rec` in `src/bpf/xskdbg.h`),
//! and [`render`], which writes it as a project line with its own `cpu=`
//! and `t=` (docs/TRACE-FORMAT.md "Drained kernel records"), spelled by
//! the format crate's [`LineWriter`] with its names.

use xskdbg_format::{hex_digits, key, op, LineWriter, RxMode, SockKey};

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

    /// Decodes a record as the ring holds it (native endian).
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
/// its widest) is 256 bytes, and a number is written as sixteen bytes
/// before the line moves on past its digits; `every_kind_fits_its_room`
/// holds them to it.
pub(super) const ROOM: usize = 320;

/// A line being rendered into room reserved at the end of the pending
/// bytes, its length in a local: a [`LineWriter`] destination whose every
/// method inlines into `render` (pushing byte by byte into the `Vec` cost
/// about 200 ns a line, as much as writing it).
pub(super) struct W<'a> {
    pub(super) b: &'a mut [u8],
    pub(super) n: usize,
}

impl LineWriter for W<'_> {
    #[inline(always)]
    fn put(&mut self, s: &[u8]) {
        self.b[self.n..self.n + s.len()].copy_from_slice(s);
        self.n += s.len();
    }

    #[inline(always)]
    fn byte(&mut self, c: u8) {
        self.b[self.n] = c;
        self.n += 1;
    }

    #[inline(always)]
    fn grow(&mut self, k: usize) -> Option<&mut [u8]> {
        let out = &mut self.b[self.n..self.n + k];
        self.n += k;
        Some(out)
    }

    /// All sixteen bytes of [`hex_digits`], kept as far as its digits go:
    /// a fixed-size copy instead of a loop over the digits (the room has
    /// the sixteen bytes to spare).
    #[inline(always)]
    fn hex(&mut self, v: u64) {
        let (d, k) = hex_digits(v);
        self.b[self.n..self.n + 16].copy_from_slice(&d);
        self.n += k;
    }
}

/// Appends a `bpf_ktime_get_ns()` value as the `mono` trace clock writes a
/// time, with all nine digits: `secs.nnnnnnnnn`.
pub fn stamp(out: &mut Vec<u8>, ns: u64) {
    out.stamp(ns);
}

/// ` key=<hex>`, `key` spelled with its separators (`key::field`).
#[inline(always)]
fn field(out: &mut W<'_>, key: &[u8], v: u64) {
    out.put(key);
    out.hex(v);
}

/// The bytes a drainer rendered last for one key, written again as they
/// are while the key stays the same.
struct Seg<K> {
    key: Option<K>,
    /// Room for [`SEG`] bytes and the sixteen a number is written as.
    b: [u8; SEG + 16],
    n: usize,
}

/// The longest memorised part: ` xs=<16> sk=<16>:<8>:<8>`, 58 bytes.
const SEG: usize = 64;

impl<K> Default for Seg<K> {
    fn default() -> Self {
        Seg {
            key: None,
            b: [0; SEG + 16],
            n: 0,
        }
    }
}

impl<K: PartialEq + Copy> Seg<K> {
    /// Writes the part for `key`, rendered by `make` when the key changed;
    /// a fixed-size copy (the room has the bytes to spare).
    #[inline(always)]
    fn put(&mut self, out: &mut W<'_>, key: K, make: impl FnOnce(&mut W<'_>)) {
        if self.key != Some(key) {
            let mut w = W {
                b: &mut self.b,
                n: 0,
            };
            make(&mut w);
            self.n = w.n.min(SEG);
            self.key = Some(key);
        }
        out.b[out.n..out.n + SEG].copy_from_slice(&self.b[..SEG]);
        out.n += self.n;
    }
}

/// What a drainer writes again and again, kept as rendered: a record's
/// `cpu= t=<seconds>.`, a socket's ` xs= sk=`, a pool's ` kpool=`, a NAPI's
/// ` napi= dev=`. One CPU's records come from few sockets and one second
/// lasts a million of them: rendering these parts once instead of per line
/// takes a third off a line's cost. Same bytes either way
/// (`memorised_parts_read_as_rendered`).
#[derive(Default)]
pub struct Memo {
    clock: Seg<(u32, u64)>,
    sock: Seg<(u64, u64, u32, u32, u16)>,
    pool: Seg<u64>,
    napi: Seg<(u64, u32)>,
}

/// `xskdbg:1 <op> cpu=<hex> t=<secs.nanos>`: the head every drained line
/// starts with, so a reader finds the record's own CPU and stamp at a fixed
/// place.
#[inline(always)]
fn head(out: &mut W<'_>, m: &mut Memo, op: &str, cpu: u32, ts: u64) {
    out.start(op);
    let secs = ts / 1_000_000_000;
    m.clock.put(out, (cpu, secs), |w| {
        field(w, key::field::CPU, u64::from(cpu));
        w.put(key::field::T);
        w.stamp_secs(secs);
    });
    out.stamp_nanos((ts % 1_000_000_000) as u32);
}

#[inline(always)]
fn sock(out: &mut W<'_>, m: &mut Memo, r: &Rec) {
    let bits = r.has & (has::XS | has::SK);
    m.sock
        .put(out, (r.xs, r.cookie, r.ifindex, r.queue, bits), |w| {
            if bits & has::XS != 0 {
                field(w, key::field::XS, r.xs);
            }
            if bits & has::SK != 0 {
                w.put(key::field::SK);
                w.sk(&SockKey::new(r.cookie, r.ifindex, r.queue));
            }
        });
}

/// ` kpool=` when the record has one.
#[inline(always)]
fn pool(out: &mut W<'_>, m: &mut Memo, r: &Rec) {
    if r.has & has::POOL != 0 {
        m.pool
            .put(out, r.pool, |w| field(w, key::field::KPOOL, r.pool));
    }
}

#[inline(always)]
fn opt(out: &mut W<'_>, r: &Rec, bit: u16, key: &[u8], v: u64) {
    if r.has & bit != 0 {
        field(out, key, v);
    }
}

/// ` key=word`.
#[inline(always)]
fn word(out: &mut W<'_>, key: &[u8], w: &str) {
    out.put(key);
    out.put(w.as_bytes());
}

/// Appends record `r` as one project line (no newline), the fields in the
/// order the `bpf_trace_printk` lines print them (docs/TRACE-FORMAT.md)
/// after the drained head, spelled by the format crate's [`LineWriter`].
/// Returns false (and appends nothing) for a kind it does not know, and
/// for an [`Op::PollFlush`], which is two lines ([`Rec::lines`]).
///
/// A drainer keeps one [`Memo`] for all its lines; [`render`] is the same
/// with a fresh one.
pub fn render_with(out: &mut Vec<u8>, m: &mut Memo, r: &Rec) -> bool {
    let start = out.len();
    out.resize(start + ROOM, 0);
    let mut w = W {
        b: &mut out[start..],
        n: 0,
    };
    let known = render_w(&mut w, m, r);
    let n = if known { w.n } else { 0 };
    out.truncate(start + n);
    known
}

/// [`render_with`] without a memo to keep (tests, one-off lines).
pub fn render(out: &mut Vec<u8>, r: &Rec) -> bool {
    render_with(out, &mut Memo::default(), r)
}

fn render_w(out: &mut W<'_>, m: &mut Memo, r: &Rec) -> bool {
    use key::field as f;
    let Some(o) = Op::from_u8(r.op) else {
        return false;
    };
    match o {
        Op::Rx => {
            head(out, m, op::KRX, r.cpu, r.ts);
            sock(out, m, r);
            opt(out, r, has::A, f::A, r.addr);
            opt(out, r, has::LEN, f::LEN, r.len.into());
            opt(out, r, has::OPT, f::OPT, r.opt.into());
            opt(out, r, has::SLOT, f::SLOT, r.slot.into());
            pool(out, m, r);
            opt(out, r, has::PROD, f::PROD, r.prod.into());
            opt(out, r, has::FCONS, f::FCONS, r.fcons.into());
            match r.kind {
                1 => word(out, f::MODE, RxMode::Drv.name()),
                2 => word(out, f::MODE, RxMode::Skb.name()),
                3 => word(out, f::MODE, RxMode::Zc.name()),
                _ => {}
            }
        }
        Op::RxDone => {
            head(out, m, op::KRXDONE, r.cpu, r.ts);
            sock(out, m, r);
            opt(out, r, has::SLOT, f::SLOT, r.slot.into());
        }
        Op::Flush => {
            head(out, m, op::KFLUSH, r.cpu, r.ts);
            sock(out, m, r);
            opt(out, r, has::PROD, f::PROD, r.prod.into());
            opt(out, r, has::CPROD, f::CPROD, r.cprod.into());
            word(out, f::AT, if r.kind == 2 { "poll" } else { "flush" });
        }
        Op::Poll => {
            head(out, m, op::KPOLL, r.cpu, r.ts);
            m.napi.put(out, (r.xs, r.ifindex), |w| {
                field(w, f::NAPI, r.xs);
                field(w, f::DEV, r.ifindex.into());
            });
            field(out, f::WORK, r.n.into());
            field(out, f::BUDGET, r.aux.into());
        }
        Op::XdpErr => {
            head(out, m, op::KXDPERR, r.cpu, r.ts);
            match r.kind {
                2 => {
                    word(out, f::WHY, "exception");
                    field(out, f::DEV, r.cookie);
                    out.byte(b':');
                    out.hex(r.ifindex.into());
                    field(out, f::ACT, r.aux.into());
                }
                3 => {
                    word(out, f::WHY, "rcv");
                    sock(out, m, r);
                    opt(out, r, has::SLOT, f::SLOT, r.slot.into());
                    opt(out, r, has::ERRNO, f::ERRNO, r.n.into());
                }
                _ => {
                    word(out, f::WHY, "redirect");
                    sock(out, m, r);
                    opt(out, r, has::ERRNO, f::ERRNO, r.n.into());
                    pool(out, m, r);
                    opt(out, r, has::CPROD, f::CPROD, r.cprod.into());
                    opt(out, r, has::PROD, f::PROD, r.prod.into());
                    opt(out, r, has::FCONS, f::FCONS, r.fcons.into());
                }
            }
        }
        Op::Tx => {
            head(out, m, op::KTX, r.cpu, r.ts);
            pool(out, m, r);
            opt(out, r, has::A, f::A, r.addr);
            opt(out, r, has::LEN, f::LEN, r.len.into());
            word(out, f::AT, if r.kind == 2 { "peek" } else { "raw" });
        }
        Op::Comp => {
            head(out, m, op::KCOMP, r.cpu, r.ts);
            sock(out, m, r);
            pool(out, m, r);
            field(out, f::N, r.n.into());
            opt(out, r, has::A, f::A, r.addr);
        }
        // Split by `Rec::lines` before rendering.
        Op::PollFlush => return false,
        Op::Stack => {
            head(out, m, op::KSTACK, r.cpu, r.ts);
            word(out, f::AT, if r.kind == 2 { "kflush" } else { "krx" });
            opt(out, r, has::XS, f::XS, r.xs);
            field(out, f::ID, r.n.into());
        }
    }
    true
}

/// `xskdbg:1 kdrain cpu= t= n= lost= of= [final=1]`: CPU `cpu`'s drainer has
/// written every record stamped before `t` (`upto`); `n` records in this
/// drain, `lost` records its ring refused so far (full), `of` drainers in
/// the session.
pub fn drain_line(v: &mut Vec<u8>, cpu: u32, upto: u64, n: u64, lost: u64, of: u32, fin: bool) {
    use key::field as f;
    let start = v.len();
    v.resize(start + ROOM, 0);
    let mut w = W {
        b: &mut v[start..],
        n: 0,
    };
    let out = &mut w;
    head(out, &mut Memo::default(), op::KDRAIN, cpu, upto);
    field(out, f::N, n);
    field(out, f::LOST, lost);
    field(out, f::OF, of.into());
    if fin {
        field(out, f::FINAL, 1);
    }
    let len = w.n;
    v.truncate(start + len);
}
