//! The drainer: kernel records from the BPF ring buffers into the trace.
//!
//! With ring output (the default for the BPF backends) a probe formats
//! nothing at event time: it fills a binary [`Rec`] (stamped with
//! `bpf_ktime_get_ns()`, the instance's `mono` trace clock) in its CPU's ring
//! buffer and returns. One drainer thread per online CPU, pinned to it, wakes
//! every [`PERIOD`], renders that CPU's records as project lines (each with
//! its own `cpu=` and `t=`, read at event time, right after the op word) and
//! writes them with one `writev` into the instance's `trace_marker`, so
//! every line lands in the buffer of the CPU whose event it tells. Each drain
//! ends with a `kdrain` line: every record of that CPU stamped before its
//! `t=` is in the trace by then. The analyzer orders records by their own
//! stamps using those watermarks (`docs/TRACE-FORMAT.md` "Drained kernel
//! records").
//!
//! The freeze (`tracing_on` = 0, written by the application's recorder at
//! its first violation) is completed here: a drainer that finds the buffer
//! frozen drains what its ring holds, turns tracing on for the length of
//! one `writev`, writes the records and a `kdrain ... final=1` line, and
//! turns it off again; the recorder that froze writes nothing more, so
//! nothing else slips in. [`Drainer::finish`] does the same for the last
//! records when a session ends (`record`, `soak`), before the caller
//! freezes and reads the trace.
//!
//! [`render`] is the one place that spells a record as a line.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use libbpf_rs::libbpf_sys;
use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
use xskdbg_tracefs::Buffer;

/// Bytes of each CPU's ring buffer; must equal `XSKDBG_RING_BYTES` in
/// `src/bpf/xskdbg.h`.
pub const RING_BYTES: u32 = 4 << 20;

/// How often a drainer empties its ring.
pub const PERIOD: Duration = Duration::from_millis(5);

/// An idle drainer still writes a `kdrain` line this often, so that the
/// analyzer's watermark moves on.
pub const IDLE_BEAT: Duration = Duration::from_millis(100);

/// A record stamped this long before a drain began is in the ring by then
/// (a probe stamps, reserves and commits with preemption off, in well under
/// a microsecond; the margin covers a host stealing the vCPU in between).
pub const SLACK_NS: u64 = 2_000_000;

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
const ROOM: usize = 320;

/// A line being rendered into room reserved at the end of the pending
/// bytes, its length in a local: everything here inlines into `render`
/// (pushing byte by byte into the `Vec` cost about 200 ns a line, as much
/// as writing it).
struct W<'a> {
    b: &'a mut [u8],
    n: usize,
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
fn hex(out: &mut W<'_>, v: u64) {
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

/// `CLOCK_MONOTONIC` now, the clock of `bpf_ktime_get_ns()` and of the
/// `mono` trace clock.
pub fn mono_now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What the drainers did, for notes and tests.
#[derive(Debug, Default, Clone)]
pub struct DrainReport {
    /// Records written.
    pub records: u64,
    /// Records the rings refused (full) and the trace lacks.
    pub lost: u64,
    /// Drainers that ran pinned to their CPU.
    pub pinned: u32,
    /// Drainers in all.
    pub drainers: u32,
    /// A drainer found the buffer frozen and completed the freeze.
    pub completed_freeze: bool,
    /// Problems (a failed write, a refused pin), each once.
    pub problems: Vec<String>,
}

struct Shared {
    buffer: Buffer,
    /// One drainer at a time turns tracing back on to complete a freeze.
    toggle: Mutex<()>,
    stop: AtomicBool,
    report: Mutex<DrainReport>,
    /// Bytes of lines per ftrace entry ([`entry_bytes`]); drops to
    /// [`ENTRY_BYTES_OLD`] if the kernel cuts a write shorter.
    entry: AtomicUsize,
}

impl Shared {
    fn entry(&self) -> usize {
        self.entry.load(Ordering::Relaxed)
    }

    fn problem(&self, p: String) {
        if let Ok(mut r) = self.report.lock() {
            if !r.problems.contains(&p) {
                r.problems.push(p);
            }
        }
    }
}

/// The drainer threads of one attachment. [`Drainer::finish`] (or dropping)
/// writes what the rings still hold and stops them.
pub struct Drainer {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    // The rings stay alive as long as the threads read them.
    _rings: Vec<Arc<MapHandle>>,
}

impl std::fmt::Debug for Drainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drainer")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// The CPUs in `/sys/devices/system/cpu/online` (`0-3,6`).
fn online_cpus() -> Vec<u32> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    parse_cpu_list(s.trim())
}

/// A kernel CPU list (`0-3,6`).
pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    v.extend(a..=b);
                }
            }
            None => v.extend(part.parse::<u32>().ok()),
        }
    }
    v
}

/// The per-CPU rings of one session: created once, put into the `rings`
/// map of every loaded object (the function backends load two objects that
/// share them).
pub struct Rings {
    rings: Vec<Arc<MapHandle>>,
}

impl Rings {
    /// One ring buffer per possible CPU.
    pub fn create() -> io::Result<Rings> {
        let n = libbpf_rs::num_possible_cpus().map_err(io::Error::other)?;
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let mut rings = Vec::with_capacity(n);
        for cpu in 0..n {
            let m = MapHandle::create(
                MapType::RingBuf,
                Some(format!("xskdbg_rb{cpu}")),
                0,
                0,
                RING_BYTES,
                &opts,
            )
            .map_err(|e| io::Error::other(format!("create the ring buffer of CPU {cpu}: {e}")))?;
            rings.push(Arc::new(m));
        }
        Ok(Rings { rings })
    }

    /// Number of rings (possible CPUs).
    pub fn len(&self) -> usize {
        self.rings.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    /// Puts every ring into `outer` (an `ARRAY_OF_MAPS` keyed by CPU).
    pub fn install(&self, outer: &dyn MapCore) -> libbpf_rs::Result<()> {
        for (cpu, r) in self.rings.iter().enumerate() {
            let fd = r.as_fd().as_raw_fd();
            outer.update(
                &(cpu as u32).to_ne_bytes(),
                &fd.to_ne_bytes(),
                MapFlags::ANY,
            )?;
        }
        Ok(())
    }
}

impl Drainer {
    /// Starts one drainer per online CPU writing into `buffer`'s
    /// trace_marker; `lost` are the `ring_lost` maps of the loaded objects.
    /// Each writes its first `kdrain` line before this returns, so every
    /// record the probes make later comes after one.
    pub fn start(rings: &Rings, lost: Vec<MapHandle>, buffer: Buffer) -> io::Result<Drainer> {
        let shared = Arc::new(Shared {
            buffer,
            toggle: Mutex::new(()),
            stop: AtomicBool::new(false),
            report: Mutex::new(DrainReport::default()),
            entry: AtomicUsize::new(entry_bytes(&crate::sys::kernel_release())),
        });
        let mut cpus = online_cpus();
        cpus.retain(|&c| (c as usize) < rings.len());
        if cpus.is_empty() {
            cpus = (0..rings.len() as u32).collect();
        }
        let of = cpus.len() as u32;
        let lost = Arc::new(lost);
        let mut threads = Vec::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        for &cpu in &cpus {
            let ring = Arc::clone(&rings.rings[cpu as usize]);
            let shared_t = Arc::clone(&shared);
            let lost_t = Arc::clone(&lost);
            let ready = ready_tx.clone();
            let h = std::thread::Builder::new()
                .name(format!("xskdbg-drain{cpu}"))
                .spawn(move || drain_cpu(cpu, of, &ring, &lost_t, &shared_t, ready))?;
            threads.push(h);
        }
        drop(ready_tx);
        let mut first_err = None;
        for r in ready_rx.iter().take(cpus.len()) {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        let d = Drainer {
            shared,
            threads,
            _rings: rings.rings.clone(),
        };
        if let Some(e) = first_err {
            drop(d);
            return Err(e);
        }
        if let Ok(mut r) = d.shared.report.lock() {
            r.drainers = of;
        }
        Ok(d)
    }

    /// Writes what the rings hold (completing a freeze if the buffer is
    /// frozen), stops the drainers and says what they did.
    pub fn finish(&mut self) -> DrainReport {
        self.shared.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        self.shared
            .report
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for Drainer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: u32) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET and sched_setaffinity on
    // the calling thread (pid 0) with a properly sized set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Bytes of one `trace_marker` write on kernels that cut a write at 1024
/// bytes (before 6.10; `/work/shared/KERNEL-NOTES.md`).
pub const ENTRY_BYTES_OLD: usize = 1000;

/// Bytes of one `trace_marker` write on 6.10+ kernels (cut at
/// `TRACE_MARKER_MAX_SIZE`, 4096, less the entry's header: 4054 bytes
/// written on 6.18).
pub const ENTRY_BYTES_NEW: usize = 3900;

/// How many bytes of lines one ftrace entry may carry on kernel `release`.
pub fn entry_bytes(release: &str) -> usize {
    match crate::sys::version_of(release) {
        Some(v) if v >= (6, 10) => ENTRY_BYTES_NEW,
        _ => ENTRY_BYTES_OLD,
    }
}

/// Lines waiting to be written, each ended by its newline.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Where each line ends (after its newline).
    ends: Vec<usize>,
}

impl Pending {
    fn end_line(&mut self) {
        self.bytes.push(b'\n');
        self.ends.push(self.bytes.len());
    }
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// The line after the last one of the entry that starts with line `first`:
/// whole lines up to `limit` bytes, at least one.
fn entry_end(p: &Pending, first: usize, limit: usize) -> usize {
    let s = if first == 0 { 0 } else { p.ends[first - 1] };
    let mut e = first + 1;
    while e < p.ends.len() && p.ends[e] - s <= limit {
        e += 1;
    }
    e
}

/// Writes every pending line, as many whole lines per ftrace entry as fit
/// in `limit` bytes: `writev` makes one `trace_marker` write per iovec, and
/// a write costs about as much as the lines it carries (0.5 us per entry,
/// 50 ns per line packed, on the 6.18 host), so one system call carries a
/// whole drain in a few entries. The lines after an entry's first are
/// printed without an ftrace header; each carries its own `cpu=` and `t=`,
/// which is all a reader needs (docs/TRACE-FORMAT.md). Returns how many
/// lines were written before an error (a cut entry counts its whole lines).
fn write_lines(marker: &File, p: &Pending, limit: usize) -> (usize, Option<io::Error>) {
    // (iovec, lines in it)
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(64);
    let mut per: Vec<usize> = Vec::with_capacity(64);
    let mut line = 0;
    while line < p.ends.len() {
        iov.clear();
        per.clear();
        let first_line = line;
        while line < p.ends.len() && iov.len() < 1024 {
            let s = if line == 0 { 0 } else { p.ends[line - 1] };
            let e = entry_end(p, line, limit);
            iov.push(libc::iovec {
                iov_base: p.bytes[s..].as_ptr() as *mut libc::c_void,
                iov_len: p.ends[e - 1] - s,
            });
            per.push(e - line);
            line = e;
        }
        // SAFETY: every iovec points into `p.bytes`, alive for the call.
        let n = unsafe { libc::writev(marker.as_raw_fd(), iov.as_ptr(), iov.len() as i32) };
        if n < 0 {
            return (first_line, Some(io::Error::last_os_error()));
        }
        let mut written = n as usize;
        let mut done = first_line;
        for (v, &k) in iov.iter().zip(&per) {
            if written >= v.iov_len {
                written -= v.iov_len;
                done += k;
                continue;
            }
            // Cut inside this entry: its whole lines are in the trace.
            let base = if done == 0 { 0 } else { p.ends[done - 1] };
            while done < line && p.ends[done] - base <= written {
                done += 1;
            }
            return (
                done,
                Some(io::Error::other(format!(
                    "short write to trace_marker ({} of {} bytes of an entry)",
                    written, v.iov_len
                ))),
            );
        }
    }
    (p.ends.len(), None)
}

/// [`write_lines`], dropping what was written. A kernel that cuts entries
/// shorter than [`entry_bytes`] expected gets entries of
/// [`ENTRY_BYTES_OLD`] from then on (said once), and the rest again.
fn write_pending(marker: &File, p: &mut Pending, shared: &Shared, cpu: u32) -> Option<io::Error> {
    let (done, err) = write_lines(marker, p, shared.entry());
    drop_lines(p, done);
    let e = err?;
    if e.kind() != io::ErrorKind::Other || shared.entry() <= ENTRY_BYTES_OLD {
        return Some(e);
    }
    shared.entry.store(ENTRY_BYTES_OLD, Ordering::Relaxed);
    shared.problem(format!(
        "drainer of CPU {cpu}: {e}: this kernel cuts trace_marker writes shorter than its version suggests; entries of {ENTRY_BYTES_OLD} bytes from now on (the cut line is in the trace)"
    ));
    let (done, err) = write_lines(marker, p, ENTRY_BYTES_OLD);
    drop_lines(p, done);
    err
}

/// Drops the first `n` lines of `p`.
fn drop_lines(p: &mut Pending, n: usize) {
    if n == 0 {
        return;
    }
    if n >= p.ends.len() {
        p.clear();
        return;
    }
    let cut = p.ends[n - 1];
    p.bytes.drain(..cut);
    p.ends.drain(..n);
    for e in &mut p.ends {
        *e -= cut;
    }
}

fn lost_of(lost: &[MapHandle], cpu: u32) -> u64 {
    let mut total = 0;
    for m in lost {
        if let Ok(Some(v)) = m.lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY) {
            if let Some(b) = v.get(cpu as usize).and_then(|b| b.get(..8)) {
                total += u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
            }
        }
    }
    total
}

/// One CPU's drainer.
fn drain_cpu(
    cpu: u32,
    of: u32,
    ring: &MapHandle,
    lost: &[MapHandle],
    shared: &Shared,
    ready: std::sync::mpsc::Sender<io::Result<()>>,
) {
    let pinned = pin(cpu);
    if let Err(e) = &pinned {
        shared.problem(format!(
            "drainer of CPU {cpu} not pinned ({e}): its lines land in another CPU's buffer; the analyzer places them by their cpu= field"
        ));
    }
    let marker = match std::fs::OpenOptions::new()
        .write(true)
        .open(shared.buffer.path("trace_marker"))
    {
        Ok(f) => f,
        Err(e) => {
            let _ = ready.send(Err(io::Error::other(format!(
                "open {}: {e}",
                shared.buffer.path("trace_marker").display()
            ))));
            return;
        }
    };
    // Read every drain: kept open (an open per read was a tenth of an idle
    // drainer's time).
    let on_file = std::fs::File::open(shared.buffer.path("tracing_on")).ok();
    let tracing_on = || match &on_file {
        Some(f) => {
            let mut b = [0u8; 4];
            // SAFETY: reading up to 4 bytes into a local buffer.
            let n = unsafe { libc::pread(f.as_raw_fd(), b.as_mut_ptr().cast(), b.len(), 0) };
            if n > 0 {
                b[0] != b'0'
            } else {
                shared.buffer.tracing_on().unwrap_or(true)
            }
        }
        None => shared.buffer.tracing_on().unwrap_or(true),
    };
    let pending = std::cell::RefCell::new(Pending::default());
    let count = std::cell::Cell::new(0u64);
    let mut builder = libbpf_rs::RingBufferBuilder::new();
    let added = builder.add(ring, |data: &[u8]| {
        if let Some(r) = Rec::decode(data) {
            let mut p = pending.borrow_mut();
            if render(&mut p.bytes, &r) {
                p.end_line();
                count.set(count.get() + 1);
            }
        }
        0
    });
    let built = match added {
        Ok(_) => builder.build(),
        Err(e) => Err(e),
    };
    let rb = match built {
        Ok(rb) => rb,
        Err(e) => {
            let _ = ready.send(Err(io::Error::other(format!(
                "read the ring buffer of CPU {cpu}: {e}"
            ))));
            return;
        }
    };
    // The first watermark, before any record can exist.
    {
        let mut p = pending.borrow_mut();
        drain_line(&mut p.bytes, cpu, mono_now(), 0, 0, of, false);
        p.end_line();
        let (_, err) = write_lines(&marker, &p, shared.entry());
        p.clear();
        if let Some(e) = err {
            let _ = ready.send(Err(io::Error::other(format!(
                "write {}: {e}",
                shared.buffer.path("trace_marker").display()
            ))));
            return;
        }
    }
    if let Ok(mut r) = shared.report.lock() {
        r.pinned += u32::from(pinned.is_ok());
    }
    let _ = ready.send(Ok(()));
    drop(ready);
    let mut last_beat = std::time::Instant::now();
    let mut records = 0u64;
    loop {
        let stopping = shared.stop.load(Ordering::Relaxed);
        if !stopping {
            std::thread::sleep(PERIOD);
        }
        let stopping = stopping || shared.stop.load(Ordering::Relaxed);
        // Every record stamped before `upto` was committed before this drain.
        let start = mono_now();
        let _ = rb.consume();
        let n = count.replace(0);
        records += n;
        let frozen = !tracing_on();
        let fin = stopping || frozen;
        // An idle drainer writes a watermark now and then, not every period.
        if n == 0 && !fin && last_beat.elapsed() < IDLE_BEAT {
            continue;
        }
        last_beat = std::time::Instant::now();
        let upto = if fin {
            start
        } else {
            start.saturating_sub(SLACK_NS)
        };
        let mut p = pending.borrow_mut();
        drain_line(&mut p.bytes, cpu, upto, n, lost_of(lost, cpu), of, fin);
        p.end_line();
        if frozen {
            complete_freeze(&marker, &mut p, shared, cpu);
        } else {
            let err = write_pending(&marker, &mut p, shared, cpu);
            if err.is_some() && !tracing_on() {
                // Frozen while this drain was being written.
                complete_freeze(&marker, &mut p, shared, cpu);
            } else if let Some(e) = err {
                shared.problem(format!("drainer of CPU {cpu}: writing the trace: {e}"));
            }
        }
        p.clear();
        if fin {
            break;
        }
    }
    if let Ok(mut r) = shared.report.lock() {
        r.records += records;
        r.lost += lost_of(lost, cpu);
    }
}

/// The buffer is frozen: write the drained lines while tracing is on for
/// the length of one `writev`, and freeze it again.
fn complete_freeze(marker: &File, p: &mut Pending, shared: &Shared, cpu: u32) {
    let Ok(_one) = shared.toggle.lock() else {
        return;
    };
    if let Err(e) = shared.buffer.set_tracing_on(true) {
        shared.problem(format!(
            "drainer of CPU {cpu}: could not reopen the frozen buffer: {e}"
        ));
        return;
    }
    let err = write_pending(marker, p, shared, cpu);
    let refreeze = shared.buffer.set_tracing_on(false);
    if let Some(e) = err {
        shared.problem(format!(
            "drainer of CPU {cpu}: writing after the freeze: {e}"
        ));
    }
    if let Err(e) = refreeze {
        shared.problem(format!(
            "drainer of CPU {cpu}: could not freeze the buffer again: {e}"
        ));
    }
    if let Ok(mut r) = shared.report.lock() {
        r.completed_freeze = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(r: &Rec) -> String {
        let mut v = Vec::new();
        assert!(render(&mut v, r));
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn stamps_read_like_the_trace_clock() {
        let mut v = Vec::new();
        stamp(&mut v, 14_705_034_123);
        assert_eq!(v, b"14.705034123");
        v.clear();
        stamp(&mut v, 7);
        assert_eq!(v, b"0.000000007");
        let mut b = [0u8; 64];
        let mut w = W { b: &mut b, n: 0 };
        hex(&mut w, 0);
        hex(&mut w, 0x1f);
        hex(&mut w, u64::MAX);
        let n = w.n;
        assert_eq!(&b[..n], b"01fffffffffffffffff");
    }

    #[test]
    fn records_round_trip_through_bytes() {
        let r = Rec {
            ts: 1,
            xs: 2,
            cookie: 3,
            pool: 4,
            addr: 5,
            ifindex: 6,
            queue: 7,
            len: 8,
            opt: 9,
            slot: 10,
            prod: 11,
            cprod: 12,
            fcons: 13,
            n: 14,
            aux: 15,
            cpu: 16,
            has: 0x7ff,
            op: 1,
            kind: 3,
        };
        assert_eq!(Rec::decode(&r.encode()), Some(r));
        assert_eq!(Rec::decode(&[0; 87]), None);
    }

    #[test]
    fn every_kind_renders_the_printk_fields_after_its_own_cpu_and_stamp() {
        let sk = has::XS | has::SK;
        let base = Rec {
            ts: 13_352_313_000,
            xs: 0xff1afedac138f800,
            cookie: 0x1001,
            ifindex: 0x1267,
            queue: 0,
            cpu: 1,
            ..Rec::default()
        };
        let krx = Rec {
            op: 1,
            kind: 1,
            addr: 0xf6100,
            len: 0x80,
            slot: 0xec,
            pool: 0xff1afedac23c5300,
            prod: 0xed,
            fcons: 0xed,
            has: sk | has::A | has::LEN | has::SLOT | has::POOL | has::PROD | has::FCONS,
            ..base
        };
        assert_eq!(
            line(&krx),
            "xskdbg:1 krx cpu=1 t=13.352313000 xs=ff1afedac138f800 sk=1001:1267:0 a=f6100 len=80 slot=ec kpool=ff1afedac23c5300 prod=ed fcons=ed mode=drv"
        );
        let fentry_rx = Rec {
            kind: 0,
            opt: 0x1,
            has: krx.has | has::OPT,
            ..krx
        };
        assert!(line(&fentry_rx)
            .ends_with("len=80 opt=1 slot=ec kpool=ff1afedac23c5300 prod=ed fcons=ed"));
        let flush = Rec {
            op: 3,
            kind: 2,
            prod: 5,
            cprod: 6,
            has: sk | has::PROD | has::CPROD,
            ..base
        };
        assert_eq!(
            line(&flush),
            "xskdbg:1 kflush cpu=1 t=13.352313000 xs=ff1afedac138f800 sk=1001:1267:0 prod=5 cprod=6 at=poll"
        );
        let poll = Rec {
            op: 4,
            xs: 0xabc,
            ifindex: 3,
            n: 1,
            aux: 0x40,
            ..base
        };
        assert_eq!(
            line(&poll),
            "xskdbg:1 kpoll cpu=1 t=13.352313000 napi=abc dev=3 work=1 budget=40"
        );
        let done = Rec {
            op: 2,
            slot: 4,
            has: has::XS | has::SLOT,
            ..base
        };
        assert!(line(&done).ends_with("krxdone cpu=1 t=13.352313000 xs=ff1afedac138f800 slot=4"));
        let redirect = Rec {
            op: 5,
            kind: 1,
            n: 0x1c,
            pool: 9,
            cprod: 1,
            prod: 2,
            fcons: 3,
            has: sk | has::ERRNO | has::POOL | has::CPROD | has::PROD | has::FCONS,
            ..base
        };
        assert!(line(&redirect).ends_with(
            "kxdperr cpu=1 t=13.352313000 why=redirect xs=ff1afedac138f800 sk=1001:1267:0 errno=1c kpool=9 cprod=1 prod=2 fcons=3"
        ));
        let exc = Rec {
            op: 5,
            kind: 2,
            aux: 1,
            ..base
        };
        assert!(line(&exc).ends_with("why=exception dev=1001:1267 act=1"));
        let rcv = Rec {
            op: 5,
            kind: 3,
            slot: 7,
            n: 0x69,
            has: has::XS | has::SLOT | has::ERRNO,
            ..base
        };
        assert!(line(&rcv).ends_with("why=rcv xs=ff1afedac138f800 slot=7 errno=69"));
        let tx = Rec {
            op: 6,
            kind: 2,
            pool: 9,
            addr: 0x800,
            len: 0x40,
            has: has::POOL | has::A | has::LEN,
            ..base
        };
        assert!(line(&tx).ends_with("ktx cpu=1 t=13.352313000 kpool=9 a=800 len=40 at=peek"));
        let comp = Rec {
            op: 7,
            pool: 9,
            n: 1,
            addr: 0x800,
            has: sk | has::POOL | has::A,
            ..base
        };
        assert!(line(&comp).ends_with(
            "kcomp cpu=1 t=13.352313000 xs=ff1afedac138f800 sk=1001:1267:0 kpool=9 n=1 a=800"
        ));
        let stack = Rec {
            op: 8,
            kind: 1,
            n: 0x2a,
            has: has::XS,
            ..base
        };
        assert!(
            line(&stack).ends_with("kstack cpu=1 t=13.352313000 at=krx xs=ff1afedac138f800 id=2a")
        );
        let mut v = Vec::new();
        assert!(!render(&mut v, &Rec { op: 99, ..base }));
        assert!(v.is_empty());
    }

    /// Every kind with every field at its widest fits the room a line is
    /// rendered in (a wider one would panic).
    #[test]
    fn every_kind_fits_its_room() {
        for op in 1..=8u8 {
            for kind in 0..=3u8 {
                let r = Rec {
                    ts: u64::MAX,
                    xs: u64::MAX,
                    cookie: u64::MAX,
                    pool: u64::MAX,
                    addr: u64::MAX,
                    ifindex: u32::MAX,
                    queue: u32::MAX,
                    len: u32::MAX,
                    opt: u32::MAX,
                    slot: u32::MAX,
                    prod: u32::MAX,
                    cprod: u32::MAX,
                    fcons: u32::MAX,
                    n: u32::MAX,
                    aux: u32::MAX,
                    cpu: u32::MAX,
                    has: u16::MAX,
                    op,
                    kind,
                };
                let mut v = vec![b'x'];
                assert!(render(&mut v, &r));
                assert!(
                    v.len() - 1 <= 256,
                    "op {op} kind {kind}: {} bytes",
                    v.len() - 1
                );
            }
        }
        let mut v = Vec::new();
        drain_line(
            &mut v,
            u32::MAX,
            u64::MAX,
            u64::MAX,
            u64::MAX,
            u32::MAX,
            true,
        );
        assert!(v.len() <= ROOM);
    }

    #[test]
    fn drained_lines_parse_with_their_fields() {
        let mut v = Vec::new();
        drain_line(&mut v, 3, 1_500_000_000, 12, 0, 2, true);
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "xskdbg:1 kdrain cpu=3 t=1.500000000 n=c lost=0 of=2 final=1"
        );
    }

    #[test]
    fn lines_are_dropped_by_count() {
        let mut p = Pending::default();
        for l in ["a", "bb", "ccc"] {
            p.bytes.extend_from_slice(l.as_bytes());
            p.end_line();
        }
        drop_lines(&mut p, 2);
        assert_eq!(p.bytes, b"ccc\n");
        assert_eq!(p.ends, [4]);
        drop_lines(&mut p, 5);
        assert!(p.ends.is_empty() && p.bytes.is_empty());
    }

    #[test]
    fn entries_carry_whole_lines_up_to_the_limit() {
        let mut p = Pending::default();
        for l in ["aaaa", "bbbb", "cc", "dddddddddddd", "e"] {
            p.bytes.extend_from_slice(l.as_bytes());
            p.end_line();
        }
        // Lines of 5, 5, 3, 13 and 2 bytes with their newlines.
        assert_eq!(entry_end(&p, 0, 10), 2);
        assert_eq!(entry_end(&p, 0, 13), 3);
        // A line longer than the limit is an entry of its own.
        assert_eq!(entry_end(&p, 3, 10), 4);
        assert_eq!(entry_end(&p, 4, 10), 5);
        assert_eq!(entry_end(&p, 0, 1000), 5);
        assert_eq!(entry_bytes("6.1.0-27-cloud-amd64"), ENTRY_BYTES_OLD);
        assert_eq!(entry_bytes("6.18.44-fc"), ENTRY_BYTES_NEW);
        assert_eq!(entry_bytes("6.10.0"), ENTRY_BYTES_NEW);
        assert_eq!(entry_bytes("unknown"), ENTRY_BYTES_OLD);
    }

    /// Packed entries read back as every line, each whole, in order, the
    /// lines after an entry's first without an ftrace header.
    #[test]
    fn packed_entries_read_back_line_for_line() {
        use std::io::Read;
        let mut p = Pending::default();
        let mut want = Vec::new();
        for i in 0..40u64 {
            let r = Rec {
                ts: 1_000_000_000 + i,
                cpu: 1,
                op: Op::Poll as u8,
                xs: i,
                ..Rec::default()
            };
            render(&mut p.bytes, &r);
            want.push(
                String::from_utf8(p.bytes[p.ends.last().copied().unwrap_or(0)..].to_vec()).unwrap(),
            );
            p.end_line();
        }
        let path = std::env::temp_dir().join(format!("xskdbg-drain-{}", std::process::id()));
        let f = File::create(&path).unwrap();
        let (done, err) = write_lines(&f, &p, 200);
        assert_eq!(done, 40);
        assert!(err.is_none());
        let mut got = String::new();
        File::open(&path).unwrap().read_to_string(&mut got).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got.lines().collect::<Vec<_>>(), want);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6"), [0, 1, 2, 3, 6]);
        assert_eq!(parse_cpu_list("0"), [0]);
        assert_eq!(parse_cpu_list(""), Vec::<u32>::new());
    }
}
