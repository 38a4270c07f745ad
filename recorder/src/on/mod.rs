//! The recorder when it is compiled in: frame table, FIFO checkers, sinks.
//!
//! Concurrency: one frame table per UMEM, a `u64` word per frame changed only
//! by compare-exchange, so two threads racing on one frame are caught (the
//! loser sees a state it may not leave). FIFO checkers need a lock: one per
//! pool (FILL→RX) and one per socket (TX→COMP), taken once per batch. Their
//! deques are allocated at setup; the hot path does not allocate (lines are
//! formatted in a per-thread buffer), only the violation path does.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::fifo::Deque;
use crate::line::{addr_width, desc_width, fitting, LineBuf, ADDRS_PER_LINE, LINE_MAX};
use crate::sink::Sink;
use crate::sys;
use crate::types::{
    AddrMode, DumpTarget, Error, Policy, PoolConfig, RecorderConfig, SockConfig, SockKey, State,
    StatsSource, UmemConfig, Violation, ViolationKind, XdpDesc, XdpStats, UNALIGNED_ADDR_MASK,
    XDP_PKT_CONTD,
};

/// How many FIFO entries a violation keeps for its `remaining=` list.
const REMAINING_MAX: usize = 512;

// Frame word: state (8 bits) | owner (16) | thread (16) | sequence (24).
const OWNER_SHIFT: u32 = 8;
const TID_SHIFT: u32 = 24;
const SEQ_SHIFT: u32 = 40;

#[inline]
fn pack(state: State, owner: u16, tid: u16, seq: u64) -> u64 {
    state as u64
        | (u64::from(owner) << OWNER_SHIFT)
        | (u64::from(tid) << TID_SHIFT)
        | ((seq & 0xff_ffff) << SEQ_SHIFT)
}

#[inline]
fn w_state(w: u64) -> State {
    State::from_u8((w & 0xff) as u8)
}

#[inline]
fn w_owner(w: u64) -> u16 {
    (w >> OWNER_SHIFT) as u16
}

#[inline]
fn w_seq(w: u64) -> u64 {
    w >> SEQ_SHIFT
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic policy may unwind while a lock is held elsewhere; the data
    // stays consistent (every update is complete before a violation is raised).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

static NEXT_TID: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static SMALL_TID: Cell<u16> = const { Cell::new(0) };
    static OS_TID: Cell<u32> = const { Cell::new(0) };
    static LINE: RefCell<LineBuf> = const { RefCell::new(LineBuf::new()) };
}

/// A small number for the calling thread (never 0), stored in frame words.
#[inline]
pub(crate) fn small_tid() -> u16 {
    SMALL_TID.with(|c| {
        let v = c.get();
        if v != 0 {
            return v;
        }
        let mut n = NEXT_TID.fetch_add(1, Ordering::Relaxed) as u16;
        if n == 0 {
            n = NEXT_TID.fetch_add(1, Ordering::Relaxed) as u16;
        }
        c.set(n);
        n
    })
}

/// The calling thread's kernel id, cached.
#[inline]
pub(crate) fn os_tid() -> u32 {
    OS_TID.with(|c| {
        let v = c.get();
        if v != 0 {
            return v;
        }
        let t = sys::gettid();
        c.set(t);
        t
    })
}

/// Run `f` with this thread's line buffer (a stack one if it is in use).
#[inline]
fn with_line<R>(f: impl FnOnce(&mut LineBuf) -> R) -> R {
    let mut f = Some(f);
    let r = LINE.with(|l| {
        l.try_borrow_mut()
            .ok()
            .map(|mut b| (f.take().expect("called once"))(&mut b))
    });
    match r {
        Some(r) => r,
        None => {
            let mut b = LineBuf::new();
            (f.take().expect("called once"))(&mut b)
        }
    }
}

struct RecInner {
    sink: Sink,
    policy: Policy,
    dump: DumpTarget,
    freeze: bool,
    stacks: bool,
    frozen: AtomicBool,
    violations: AtomicU64,
    recycled: AtomicU64,
    sink_errors: AtomicU64,
    last_sink_error: Mutex<Option<String>>,
    last_violation: Mutex<Option<Violation>>,
    next_umem: AtomicU32,
    next_pool: AtomicU32,
    next_sock: AtomicU32,
}

impl RecInner {
    /// Whether lines should be formatted and written at all.
    #[inline]
    fn writing(&self) -> bool {
        !self.sink.is_null() && !self.frozen.load(Ordering::Relaxed)
    }

    #[inline]
    fn write(&self, line: &[u8]) {
        if let Err(e) = self.sink.write(line) {
            if e.is_buffer_off() {
                // Someone (another recorder, a user) froze the buffer: stop writing.
                self.frozen.store(true, Ordering::Relaxed);
                return;
            }
            self.sink_error(e.to_string());
        }
    }

    #[cold]
    fn sink_error(&self, msg: String) {
        if self.sink_errors.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("xskdbg-recorder: {msg} (further sink errors are only counted)");
        }
        *lock(&self.last_sink_error) = Some(msg);
    }
}

/// The in-process checker; cheap to clone, shared by every thread.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<RecInner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("sink", &self.inner.sink)
            .field("violations", &self.violations())
            .finish()
    }
}

impl Recorder {
    /// Whether this build checks anything (`false` without feature `enabled`).
    pub const ENABLED: bool = true;

    /// Open the sink and set up. Fails with an error naming the tracefs path
    /// and the fix when a trace_marker sink cannot be opened.
    pub fn new(cfg: RecorderConfig) -> Result<Recorder, Error> {
        let sink = Sink::open(&cfg.sink)?;
        Ok(Recorder {
            inner: Arc::new(RecInner {
                sink,
                policy: cfg.policy,
                dump: cfg.dump,
                freeze: cfg.freeze,
                stacks: cfg.stacks,
                frozen: AtomicBool::new(false),
                violations: AtomicU64::new(0),
                recycled: AtomicU64::new(0),
                sink_errors: AtomicU64::new(0),
                last_sink_error: Mutex::new(None),
                last_violation: Mutex::new(None),
                next_umem: AtomicU32::new(1),
                next_pool: AtomicU32::new(1),
                next_sock: AtomicU32::new(1),
            }),
        })
    }

    /// Register a UMEM; its frame table is allocated here.
    pub fn umem(&self, cfg: UmemConfig) -> Result<Umem, Error> {
        if cfg.chunk_size == 0 || cfg.size == 0 {
            return Err(Error::Config(format!(
                "UMEM size {} and chunk size {} must be non-zero",
                cfg.size, cfg.chunk_size
            )));
        }
        if cfg.mode == AddrMode::Aligned && !cfg.chunk_size.is_power_of_two() {
            return Err(Error::Config(format!(
                "chunk size {} is not a power of two; aligned mode needs one (use AddrMode::Unaligned)",
                cfg.chunk_size
            )));
        }
        let frames = cfg.size.div_ceil(u64::from(cfg.chunk_size));
        if frames > u64::from(u32::MAX) {
            return Err(Error::Config(format!(
                "UMEM of {frames} frames is over the 2^32 the recorder tracks"
            )));
        }
        let table: Box<[AtomicU64]> = (0..frames).map(|_| AtomicU64::new(0)).collect();
        let id = self.inner.next_umem.fetch_add(1, Ordering::Relaxed);
        let shift = cfg
            .chunk_size
            .is_power_of_two()
            .then(|| cfg.chunk_size.trailing_zeros());
        let u = Arc::new(UmemInner {
            rec: self.inner.clone(),
            id,
            nframes: frames as u32,
            shift,
            table,
            cfg,
            pools: RwLock::new(Vec::new()),
            socks: RwLock::new(Vec::new()),
        });
        u.declare_umem();
        Ok(Umem { u })
    }

    /// Violations seen so far.
    pub fn violations(&self) -> u64 {
        self.inner.violations.load(Ordering::Relaxed)
    }

    /// FILL→RX mismatches explained by the kernel's free-list recycling.
    pub fn recycled(&self) -> u64 {
        self.inner.recycled.load(Ordering::Relaxed)
    }

    /// Sink writes that failed (other than after a freeze).
    pub fn sink_errors(&self) -> u64 {
        self.inner.sink_errors.load(Ordering::Relaxed)
    }

    /// The last sink error message.
    pub fn last_sink_error(&self) -> Option<String> {
        lock(&self.inner.last_sink_error).clone()
    }

    /// The most recent violation.
    pub fn last_violation(&self) -> Option<Violation> {
        lock(&self.inner.last_violation).clone()
    }

    /// Whether the buffer was frozen by a violation.
    pub fn is_frozen(&self) -> bool {
        self.inner.frozen.load(Ordering::Relaxed)
    }

    /// The memory ring as an ftrace `trace` text (empty for other sinks).
    pub fn dump(&self) -> Vec<u8> {
        self.inner.sink.dump()
    }
}

struct PoolFifo {
    /// Frames put on FILL, in order, not yet seen on RX.
    fill: Deque,
    /// Frames skipped over by RX and explained as sitting in the kernel's
    /// free list (`xp_free` pushes to its head, `xp_alloc` takes from there
    /// before FILL); they may come back on RX out of FILL order.
    kfree: Deque,
    /// Recycling events (`rx_dropped` + `rx_ring_full` increase, × frames
    /// per packet) not yet used to explain a mismatch.
    budget: u64,
}

struct PoolInner {
    id: u32,
    local: u16,
    key: SockKey,
    fifo: Mutex<PoolFifo>,
    socks: RwLock<Vec<Arc<SockInner>>>,
}

struct SockTx {
    /// Frames put on TX, in order, not yet completed.
    fifo: Deque,
    /// Thread (small id) with a multi-buffer packet open on TX, or 0.
    open: u16,
}

struct SockInner {
    id: u32,
    local: u16,
    key: SockKey,
    label: Option<String>,
    pool: Arc<PoolInner>,
    stats: Option<Arc<dyn StatsSource>>,
    last_stats: Mutex<Option<XdpStats>>,
    max_frags: u32,
    tx: Mutex<SockTx>,
    /// Thread (small id) with a multi-buffer packet open on RX, or 0.
    rx_open: AtomicU32,
    rx_next: AtomicU32,
    tx_next: AtomicU32,
}

struct UmemInner {
    rec: Arc<RecInner>,
    id: u32,
    cfg: UmemConfig,
    nframes: u32,
    shift: Option<u32>,
    table: Box<[AtomicU64]>,
    pools: RwLock<Vec<Arc<PoolInner>>>,
    socks: RwLock<Vec<Arc<SockInner>>>,
}

/// A violation found under a lock, reported after it is released.
struct Pending {
    kind: ViolationKind,
    addr: u64,
    frame: u64,
    from: State,
    to: State,
    sock: Option<Arc<SockInner>>,
    pool: Option<u32>,
    expected: Option<u64>,
    remaining: Vec<u64>,
    more: usize,
}

/// A registered UMEM.
#[derive(Clone)]
pub struct Umem {
    u: Arc<UmemInner>,
}

/// A registered buffer pool (FILL + COMPLETION rings).
#[derive(Clone)]
pub struct Pool {
    u: Arc<UmemInner>,
    p: Arc<PoolInner>,
}

/// A registered socket (RX + TX rings).
#[derive(Clone)]
pub struct Sock {
    u: Arc<UmemInner>,
    s: Arc<SockInner>,
}

impl std::fmt::Debug for Umem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Umem({})", self.u.id)
    }
}
impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({})", self.p.id)
    }
}
impl std::fmt::Debug for Sock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sock({}, sk={})", self.s.id, self.s.key)
    }
}

impl UmemInner {
    /// Table index and frame key of a raw address; `None` outside the UMEM.
    #[inline]
    fn frame_of(&self, addr: u64) -> Option<(usize, u64)> {
        let base = match self.cfg.mode {
            AddrMode::Aligned => addr,
            AddrMode::Unaligned => addr & UNALIGNED_ADDR_MASK,
        };
        if base >= self.cfg.size {
            return None;
        }
        let idx = match self.shift {
            Some(s) => base >> s,
            None => base / u64::from(self.cfg.chunk_size),
        };
        let key = match self.cfg.mode {
            AddrMode::Aligned => idx * u64::from(self.cfg.chunk_size),
            AddrMode::Unaligned => base,
        };
        Some((idx as usize, key))
    }

    /// Move frame `idx` to `to` if its state allows; `Err(word)` otherwise.
    #[inline]
    fn transition(&self, idx: usize, to: State, owner: u16, tid: u16) -> Result<u64, u64> {
        let allowed = to.allowed_from();
        let slot = &self.table[idx];
        let mut cur = slot.load(Ordering::Acquire);
        loop {
            if allowed & (1 << (cur & 0xff)) == 0 {
                return Err(cur);
            }
            let new = pack(to, owner, tid, w_seq(cur) + 1);
            match slot.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(cur),
                Err(actual) => cur = actual,
            }
        }
    }

    /// After a violation the frame is where the app or kernel just put it.
    #[cold]
    fn force(&self, idx: usize, to: State, owner: u16, tid: u16) {
        let slot = &self.table[idx];
        let cur = slot.load(Ordering::Acquire);
        slot.store(pack(to, owner, tid, w_seq(cur) + 1), Ordering::Release);
    }

    #[cold]
    fn transition_violation(
        &self,
        cur: u64,
        addr: u64,
        key: u64,
        to: State,
        sock: Option<&Arc<SockInner>>,
        pool: Option<u32>,
    ) -> Pending {
        let from = w_state(cur);
        Pending {
            kind: if from == to {
                ViolationKind::DuplicateInFlight
            } else {
                ViolationKind::InvalidTransition
            },
            addr,
            frame: key,
            from,
            to,
            sock: sock.cloned(),
            pool,
            expected: None,
            remaining: Vec::new(),
            more: 0,
        }
    }

    #[cold]
    fn simple(
        kind: ViolationKind,
        addr: u64,
        frame: u64,
        from: State,
        to: State,
        sock: Option<&Arc<SockInner>>,
        pool: Option<u32>,
    ) -> Pending {
        Pending {
            kind,
            addr,
            frame,
            from,
            to,
            sock: sock.cloned(),
            pool,
            expected: None,
            remaining: Vec::new(),
            more: 0,
        }
    }

    // ----- lines -----

    fn declare_umem(&self) {
        if !self.rec.writing() {
            return;
        }
        with_line(|l| {
            l.start(b"umem");
            l.field_hex(b"umem", u64::from(self.id));
            l.field_hex(b"size", self.cfg.size);
            l.field_hex(b"chunk", u64::from(self.cfg.chunk_size));
            l.field(
                b"mode",
                match self.cfg.mode {
                    AddrMode::Aligned => b"aligned",
                    AddrMode::Unaligned => b"unaligned",
                },
            );
            l.field_hex(b"headroom", u64::from(self.cfg.headroom));
            if let Some(p) = self.cfg.poison {
                l.field_hex(b"poison", p);
            }
            l.finish();
            self.rec.write(l.as_bytes());
        });
    }

    fn declare_pool(&self, p: &PoolInner) {
        if !self.rec.writing() {
            return;
        }
        with_line(|l| {
            l.start(b"pool");
            l.field_hex(b"pool", u64::from(p.id));
            l.field_hex(b"umem", u64::from(self.id));
            l.field_sk(&p.key);
            l.finish();
            self.rec.write(l.as_bytes());
        });
    }

    fn declare_sock(&self, s: &SockInner, fd: Option<i32>) {
        if !self.rec.writing() {
            return;
        }
        with_line(|l| {
            l.start(b"sock");
            l.field_sk(&s.key);
            l.field_hex(b"pool", u64::from(s.pool.id));
            l.field_hex(b"umem", u64::from(self.id));
            if let Some(fd) = fd {
                l.field_hex(b"fd", fd as u64);
            }
            if let Some(lb) = &s.label {
                l.label(lb);
            }
            l.finish();
            self.rec.write(l.as_bytes());
        });
    }

    fn write_stats(&self, s: &SockInner, st: &XdpStats) {
        if !self.rec.writing() {
            return;
        }
        with_line(|l| {
            l.start(b"stats");
            l.field_sk(&s.key);
            l.field_hex(b"rx_dropped", st.rx_dropped);
            l.field_hex(b"rx_invalid", st.rx_invalid_descs);
            l.field_hex(b"tx_invalid", st.tx_invalid_descs);
            l.field_hex(b"rx_full", st.rx_ring_full);
            l.field_hex(b"fill_empty", st.rx_fill_ring_empty_descs);
            l.field_hex(b"tx_empty", st.tx_ring_empty_descs);
            l.finish();
            self.rec.write(l.as_bytes());
        });
    }

    /// `fill`, `comp`, `hold`, `free` lines, split so each stays within [`LINE_MAX`].
    #[inline]
    fn write_addrs(&self, op: &[u8], pool: Option<u32>, sk: Option<&SockKey>, addrs: &[u64]) {
        if addrs.is_empty() || !self.rec.writing() {
            return;
        }
        with_line(|l| {
            let mut rest = addrs;
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(fitting(rest, addr_width));
                rest = tail;
                l.start(op);
                if let Some(p) = pool {
                    l.field_hex(b"pool", u64::from(p));
                }
                if let Some(sk) = sk {
                    l.field_sk(sk);
                }
                l.field_hex(b"n", chunk.len() as u64);
                l.push(b" a=");
                for (i, a) in chunk.iter().enumerate() {
                    if i > 0 {
                        l.byte(b',');
                    }
                    l.hex(*a);
                }
                l.finish();
                self.rec.write(l.as_bytes());
            }
        });
    }

    /// `rx`/`tx` lines, split so each stays within [`LINE_MAX`], each with its own `idx`.
    #[inline]
    fn write_descs(&self, op: &[u8], s: &SockInner, idx: u32, descs: &[XdpDesc]) {
        if descs.is_empty() || !self.rec.writing() {
            return;
        }
        with_line(|l| {
            let mut idx = idx;
            let mut rest = descs;
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(fitting(rest, desc_width));
                rest = tail;
                l.start(op);
                l.field_sk(&s.key);
                l.field_hex(b"pool", u64::from(s.pool.id));
                l.field_hex(b"idx", u64::from(idx));
                l.field_hex(b"n", chunk.len() as u64);
                l.push(b" d=");
                for (i, d) in chunk.iter().enumerate() {
                    if i > 0 {
                        l.byte(b',');
                    }
                    l.desc(d);
                }
                l.finish();
                self.rec.write(l.as_bytes());
                idx = idx.wrapping_add(chunk.len() as u32);
            }
        });
    }

    // ----- FILL -> RX order -----

    /// Read the statistics of the pool's sockets and add recycling events to
    /// the budget. Called under the pool lock, only when a mismatch needs it.
    #[cold]
    fn refresh_budget(&self, p: &PoolInner, pf: &mut PoolFifo) {
        let socks = p.socks.read().unwrap_or_else(|e| e.into_inner());
        for s in socks.iter() {
            let Some(src) = &s.stats else { continue };
            let Ok(now) = src.read() else { continue };
            let mut last = lock(&s.last_stats);
            if let Some(prev) = *last {
                let events = now.rx_dropped.saturating_sub(prev.rx_dropped)
                    + now.rx_ring_full.saturating_sub(prev.rx_ring_full);
                pf.budget += events * u64::from(s.max_frags.max(1));
            }
            *last = Some(now);
            drop(last);
            self.write_stats(s, &now);
        }
    }

    /// Check one RX frame against the pool FIFO. `Some` is a violation.
    #[inline]
    fn fifo_rx(
        &self,
        p: &PoolInner,
        pf: &mut PoolFifo,
        s: &Arc<SockInner>,
        addr: u64,
        key: u64,
    ) -> Option<Pending> {
        if pf.fill.front() == Some(key) {
            pf.fill.pop_front();
            return None;
        }
        self.fifo_rx_slow(p, pf, s, addr, key)
    }

    #[cold]
    fn fifo_rx_slow(
        &self,
        p: &PoolInner,
        pf: &mut PoolFifo,
        s: &Arc<SockInner>,
        addr: u64,
        key: u64,
    ) -> Option<Pending> {
        // A frame the kernel freed earlier and took back from its free list.
        if let Some(i) = pf.kfree.position(key) {
            pf.kfree.remove(i);
            return None;
        }
        let expected = pf.fill.front();
        let Some(k) = pf.fill.position(key) else {
            // Filled nowhere in this pool's order (the state machine or the
            // pool check has more to say); FIFO order is still broken.
            return Some(self.fifo_violation(pf, s, addr, key, expected));
        };
        if pf.budget < k as u64 {
            self.refresh_budget(p, pf);
        }
        if pf.budget >= k as u64 {
            pf.budget -= k as u64;
            self.rec.recycled.fetch_add(k as u64, Ordering::Relaxed);
            self.skip_to_kfree(p, s, pf, k, true);
            pf.fill.pop_front();
            return None;
        }
        let v = self.fifo_violation(pf, s, addr, key, expected);
        // Resynchronise so one reordering is reported once: the skipped
        // frames may still come back (as if recycled).
        self.skip_to_kfree(p, s, pf, k, false);
        pf.fill.pop_front();
        Some(v)
    }

    #[cold]
    fn fifo_violation(
        &self,
        pf: &PoolFifo,
        s: &Arc<SockInner>,
        addr: u64,
        key: u64,
        expected: Option<u64>,
    ) -> Pending {
        let remaining: Vec<u64> = pf.fill.iter().skip(1).take(REMAINING_MAX).collect();
        let more = pf.fill.len().saturating_sub(1 + remaining.len());
        Pending {
            kind: ViolationKind::FifoOrder,
            addr,
            frame: key,
            from: State::Fill,
            to: State::Rx,
            sock: Some(s.clone()),
            pool: Some(s.pool.id),
            expected,
            remaining,
            more,
        }
    }

    /// Move the first `k` FIFO entries to the kernel free-list model,
    /// writing a `recycle` line when they were explained.
    #[cold]
    fn skip_to_kfree(&self, p: &PoolInner, s: &SockInner, pf: &mut PoolFifo, k: usize, line: bool) {
        let writing = line && self.rec.writing();
        with_line(|l| {
            let mut in_line = 0usize;
            for moved in 0..k {
                let Some(f) = pf.fill.pop_front() else { break };
                if !pf.kfree.push_back(f) {
                    // The model holds at most every frame once; drop the oldest.
                    pf.kfree.pop_front();
                    pf.kfree.push_back(f);
                }
                if !writing {
                    continue;
                }
                if in_line == 0 {
                    l.start(b"recycle");
                    l.field_hex(b"pool", u64::from(p.id));
                    l.field_sk(&s.key);
                    l.field_hex(b"n", (k - moved).min(ADDRS_PER_LINE) as u64);
                    l.push(b" a=");
                } else {
                    l.byte(b',');
                }
                l.hex(f);
                in_line += 1;
                if in_line == ADDRS_PER_LINE {
                    l.finish();
                    self.rec.write(l.as_bytes());
                    in_line = 0;
                }
            }
            if in_line > 0 {
                l.finish();
                self.rec.write(l.as_bytes());
            }
        });
    }

    // ----- reporting -----

    #[cold]
    #[inline(never)]
    fn report(&self, pending: Vec<Pending>) {
        for p in pending {
            self.report_one(p);
        }
    }

    #[cold]
    fn violation_line(&self, p: &Pending) -> String {
        let mut l = LineBuf::new();
        l.start(b"violation");
        l.field(b"kind", p.kind.as_str().as_bytes());
        if let Some(s) = &p.sock {
            l.field_sk(&s.key);
        }
        if let Some(pool) = p.pool {
            l.field_hex(b"pool", u64::from(pool));
        }
        l.field_hex(b"a", p.addr);
        l.field_hex(b"frame", p.frame);
        l.field(b"from", p.from.as_str().as_bytes());
        l.field(b"to", p.to.as_str().as_bytes());
        if let Some(e) = p.expected {
            l.field_hex(b"expected", e);
        }
        let label = p.sock.as_ref().and_then(|s| s.label.as_deref());
        // Keep room for `more=`, the label and the newline.
        let reserve = 32 + label.map_or(0, |s| s.len() + 8);
        let mut shown = 0usize;
        if !p.remaining.is_empty() {
            l.push(b" remaining=");
            for (i, r) in p.remaining.iter().enumerate() {
                if l.room() < reserve + 18 {
                    break;
                }
                if i > 0 {
                    l.byte(b',');
                }
                l.hex(*r);
                shown += 1;
            }
        }
        let more = p.more + (p.remaining.len() - shown);
        if more > 0 {
            l.field_hex(b"more", more as u64);
        }
        if let Some(lb) = label {
            l.label(lb);
        }
        l.finish();
        debug_assert!(l.len() <= LINE_MAX);
        String::from_utf8_lossy(l.as_bytes()).into_owned()
    }

    /// Repeat the declarations so a wrapped, frozen buffer still holds them.
    #[cold]
    fn redeclare(&self) {
        self.declare_umem();
        for p in self.pools.read().unwrap_or_else(|e| e.into_inner()).iter() {
            self.declare_pool(p);
        }
        for s in self.socks.read().unwrap_or_else(|e| e.into_inner()).iter() {
            self.declare_sock(s, None);
        }
    }

    #[cold]
    fn report_one(&self, p: Pending) {
        let rec = &self.rec;
        rec.violations.fetch_add(1, Ordering::Relaxed);
        let line = self.violation_line(&p);
        let first = !rec.frozen.load(Ordering::Relaxed);
        let stack = if rec.stacks {
            crate::stacks::capture()
        } else {
            Vec::new()
        };
        if first {
            self.redeclare();
            rec.write(line.as_bytes());
            for (i, fr) in stack.iter().enumerate() {
                let mut l = LineBuf::new();
                l.start(b"stack");
                l.field_hex(b"i", i as u64);
                l.push(b" sym=");
                l.push(fr.as_bytes());
                l.finish();
                rec.write(l.as_bytes());
            }
            if rec.freeze {
                rec.frozen.store(true, Ordering::Relaxed);
                if let Err(e) = rec.sink.freeze() {
                    rec.sink_error(format!("could not freeze the trace buffer: {e}"));
                }
                self.dump_ring();
            }
        }
        let v = Violation {
            kind: p.kind,
            addr: p.addr,
            frame: p.frame,
            from: p.from,
            to: p.to,
            sk: p.sock.as_ref().map(|s| s.key),
            pool: p.pool,
            expected: p.expected,
            remaining: p.remaining,
            more: p.more,
            label: p.sock.as_ref().and_then(|s| s.label.clone()),
            line: line.trim_end().to_string(),
            stack,
        };
        *lock(&rec.last_violation) = Some(v.clone());
        match &rec.policy {
            Policy::Panic => panic!("xskdbg: {v}"),
            Policy::Log => eprintln!("xskdbg: {v}"),
            Policy::Callback(f) => f(&v),
        }
    }

    #[cold]
    fn dump_ring(&self) {
        let rec = &self.rec;
        if !matches!(rec.sink, Sink::Memory { .. }) {
            return;
        }
        match &rec.dump {
            DumpTarget::None => {}
            DumpTarget::Stderr => {
                use std::io::Write;
                let _ = std::io::stderr().write_all(&rec.sink.dump());
            }
            DumpTarget::File(path) => {
                let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
                let r = std::fs::write(&tmp, rec.sink.dump())
                    .and_then(|()| std::fs::rename(&tmp, path));
                if let Err(e) = r {
                    let _ = std::fs::remove_file(&tmp);
                    rec.sink_error(format!(
                        "could not dump the flight recorder to {}: {e}",
                        path.display()
                    ));
                }
            }
        }
    }
}

impl Umem {
    /// Register the buffer pool bound to one device queue.
    pub fn pool(&self, cfg: PoolConfig) -> Result<Pool, Error> {
        let mut pools = self.u.pools.write().unwrap_or_else(|e| e.into_inner());
        if pools.len() >= usize::from(u16::MAX) {
            return Err(Error::Config("more than 65535 pools on one UMEM".into()));
        }
        let cap = self.u.nframes as usize + cfg.fill_size as usize;
        let p = Arc::new(PoolInner {
            id: self.u.rec.next_pool.fetch_add(1, Ordering::Relaxed),
            local: pools.len() as u16 + 1,
            key: cfg.key,
            fifo: Mutex::new(PoolFifo {
                fill: Deque::with_capacity(cap),
                kfree: Deque::with_capacity(self.u.nframes as usize),
                budget: 0,
            }),
            socks: RwLock::new(Vec::new()),
        });
        pools.push(p.clone());
        drop(pools);
        self.u.declare_pool(&p);
        Ok(Pool {
            u: self.u.clone(),
            p,
        })
    }

    /// The app took these frames from its own free list.
    pub fn hold(&self, addrs: &[u64]) {
        self.app_move(b"hold", State::Held, addrs);
    }

    /// The app returned these frames to its own free list.
    pub fn free(&self, addrs: &[u64]) {
        self.app_move(b"free", State::Free, addrs);
    }

    #[inline]
    fn app_move(&self, op: &[u8], to: State, addrs: &[u64]) {
        let u = &*self.u;
        let tid = small_tid();
        let mut pending = Vec::new();
        for &a in addrs {
            let Some((idx, key)) = u.frame_of(a) else {
                pending.push(UmemInner::simple(
                    ViolationKind::AddressOutOfRange,
                    a,
                    a,
                    State::Unknown,
                    to,
                    None,
                    None,
                ));
                continue;
            };
            if let Err(cur) = u.transition(idx, to, 0, tid) {
                pending.push(u.transition_violation(cur, a, key, to, None, None));
                u.force(idx, to, 0, tid);
            }
        }
        u.write_addrs(op, None, None, addrs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }

    /// The state the recorder holds for the frame of `addr`.
    pub fn state(&self, addr: u64) -> Option<State> {
        let (idx, _) = self.u.frame_of(addr)?;
        Some(w_state(self.u.table[idx].load(Ordering::Acquire)))
    }

    /// The frame key of `addr` (chunk base, or the low 48 bits when unaligned).
    pub fn frame_of(&self, addr: u64) -> Option<u64> {
        self.u.frame_of(addr).map(|(_, k)| k)
    }

    /// The UMEM's number in trace lines.
    pub fn id(&self) -> u32 {
        self.u.id
    }
}

impl Pool {
    /// Register a socket taking frames from this pool.
    pub fn socket(&self, cfg: SockConfig) -> Result<Sock, Error> {
        let mut socks = self.u.socks.write().unwrap_or_else(|e| e.into_inner());
        if socks.len() >= usize::from(u16::MAX) {
            return Err(Error::Config("more than 65535 sockets on one UMEM".into()));
        }
        let stats: Option<Arc<dyn StatsSource>> = match (&cfg.stats, cfg.fd) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(fd)) => Some(Arc::new(sys::FdStats(fd))),
            (None, None) => None,
        };
        let baseline = stats.as_ref().and_then(|s| s.read().ok());
        let cap = self.u.nframes as usize + cfg.tx_size as usize;
        let s = Arc::new(SockInner {
            id: self.u.rec.next_sock.fetch_add(1, Ordering::Relaxed),
            local: socks.len() as u16 + 1,
            key: cfg.key,
            label: cfg.label.clone(),
            pool: self.p.clone(),
            stats,
            last_stats: Mutex::new(baseline),
            max_frags: cfg.max_frags.max(1),
            tx: Mutex::new(SockTx {
                fifo: Deque::with_capacity(cap),
                open: 0,
            }),
            rx_open: AtomicU32::new(0),
            rx_next: AtomicU32::new(0),
            tx_next: AtomicU32::new(0),
        });
        socks.push(s.clone());
        drop(socks);
        self.p
            .socks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(s.clone());
        self.u.declare_sock(&s, cfg.fd);
        if let Some(b) = baseline {
            self.u.write_stats(&s, &b);
        }
        Ok(Sock {
            u: self.u.clone(),
            s,
        })
    }

    /// The app put these frames on the FILL ring, in this order.
    pub fn fill(&self, addrs: &[u64]) {
        let u = &*self.u;
        let p = &*self.p;
        let tid = small_tid();
        let mut pending = Vec::new();
        {
            let mut pf = lock(&p.fifo);
            for &a in addrs {
                let Some((idx, key)) = u.frame_of(a) else {
                    pending.push(UmemInner::simple(
                        ViolationKind::AddressOutOfRange,
                        a,
                        a,
                        State::Unknown,
                        State::Fill,
                        None,
                        Some(p.id),
                    ));
                    continue;
                };
                if let Err(cur) = u.transition(idx, State::Fill, p.local, tid) {
                    pending.push(u.transition_violation(
                        cur,
                        a,
                        key,
                        State::Fill,
                        None,
                        Some(p.id),
                    ));
                    u.force(idx, State::Fill, p.local, tid);
                }
                // Full only if the app fills more than it has frames.
                let _ = pf.fill.push_back(key);
            }
        }
        u.write_addrs(b"fill", Some(p.id), None, addrs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }

    /// The app read these frames from the COMPLETION ring, in this order.
    pub fn comp(&self, addrs: &[u64]) {
        let u = &*self.u;
        let p = &*self.p;
        let tid = small_tid();
        let mut pending = Vec::new();
        {
            let socks = u.socks.read().unwrap_or_else(|e| e.into_inner());
            let mut held: Option<(u16, MutexGuard<'_, SockTx>)> = None;
            for &a in addrs {
                let Some((idx, key)) = u.frame_of(a) else {
                    pending.push(UmemInner::simple(
                        ViolationKind::AddressOutOfRange,
                        a,
                        a,
                        State::Unknown,
                        State::Comp,
                        None,
                        Some(p.id),
                    ));
                    continue;
                };
                let prev = match u.transition(idx, State::Comp, p.local, tid) {
                    Ok(prev) => prev,
                    Err(cur) => {
                        pending.push(u.transition_violation(
                            cur,
                            a,
                            key,
                            State::Comp,
                            None,
                            Some(p.id),
                        ));
                        u.force(idx, State::Comp, p.local, tid);
                        continue;
                    }
                };
                let sl = w_owner(prev);
                let Some(s) = socks.get(usize::from(sl).wrapping_sub(1)) else {
                    continue;
                };
                if s.pool.local != p.local {
                    pending.push(UmemInner::simple(
                        ViolationKind::WrongPool,
                        a,
                        key,
                        State::Tx,
                        State::Comp,
                        Some(s),
                        Some(p.id),
                    ));
                }
                if held.as_ref().is_none_or(|(l, _)| *l != sl) {
                    // Release one socket's lock before taking another's.
                    drop(held.take());
                    held = Some((sl, lock(&s.tx)));
                }
                let Some((_, tx)) = held.as_mut() else {
                    continue;
                };
                if tx.fifo.front() == Some(key) {
                    tx.fifo.pop_front();
                    continue;
                }
                let expected = tx.fifo.front();
                let remaining: Vec<u64> = tx.fifo.iter().skip(1).take(REMAINING_MAX).collect();
                let more = tx.fifo.len().saturating_sub(1 + remaining.len());
                if let Some(i) = tx.fifo.position(key) {
                    tx.fifo.remove(i);
                }
                pending.push(Pending {
                    kind: ViolationKind::FifoOrder,
                    addr: a,
                    frame: key,
                    from: State::Tx,
                    to: State::Comp,
                    sock: Some(s.clone()),
                    pool: Some(p.id),
                    expected,
                    remaining,
                    more,
                });
            }
        }
        u.write_addrs(b"comp", Some(p.id), None, addrs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }

    /// The pool's number in trace lines.
    pub fn id(&self) -> u32 {
        self.p.id
    }
}

impl Sock {
    /// The app read these descriptors from RX; the ring index is counted by
    /// the recorder from 0 (use [`Sock::rx_at`] when the app knows it).
    pub fn rx(&self, descs: &[XdpDesc]) {
        let idx = self
            .s
            .rx_next
            .fetch_add(descs.len() as u32, Ordering::Relaxed);
        self.rx_inner(idx, descs);
    }

    /// The app read these descriptors from RX starting at consumer index `idx`.
    pub fn rx_at(&self, idx: u32, descs: &[XdpDesc]) {
        self.s
            .rx_next
            .store(idx.wrapping_add(descs.len() as u32), Ordering::Relaxed);
        self.rx_inner(idx, descs);
    }

    #[inline]
    fn rx_inner(&self, idx: u32, descs: &[XdpDesc]) {
        let u = &*self.u;
        let s = &self.s;
        let p = &*s.pool;
        let tid = small_tid();
        let poison = u.cfg.poison;
        let mut pending = Vec::new();
        {
            let mut pf = lock(&p.fifo);
            for d in descs {
                let a = d.addr;
                if Some(a) == poison {
                    let mut v = UmemInner::simple(
                        ViolationKind::PoisonedDescriptor,
                        a,
                        a,
                        State::Fill,
                        State::Rx,
                        Some(s),
                        Some(p.id),
                    );
                    v.expected = pf.fill.front();
                    pending.push(v);
                    continue;
                }
                let Some((fidx, key)) = u.frame_of(a) else {
                    pending.push(UmemInner::simple(
                        ViolationKind::AddressOutOfRange,
                        a,
                        a,
                        State::Unknown,
                        State::Rx,
                        Some(s),
                        Some(p.id),
                    ));
                    continue;
                };
                let open = s.rx_open.load(Ordering::Relaxed);
                if open != 0 && open != u32::from(tid) {
                    pending.push(UmemInner::simple(
                        ViolationKind::MultibufferSplit,
                        a,
                        key,
                        State::Fill,
                        State::Rx,
                        Some(s),
                        Some(p.id),
                    ));
                }
                let now_open = if d.options & XDP_PKT_CONTD != 0 {
                    u32::from(tid)
                } else {
                    0
                };
                if now_open != open {
                    s.rx_open.store(now_open, Ordering::Relaxed);
                }
                match u.transition(fidx, State::Rx, s.local, tid) {
                    Ok(prev) => {
                        if w_owner(prev) != p.local {
                            pending.push(UmemInner::simple(
                                ViolationKind::WrongPool,
                                a,
                                key,
                                State::Fill,
                                State::Rx,
                                Some(s),
                                Some(p.id),
                            ));
                            continue;
                        }
                        if let Some(v) = u.fifo_rx(p, &mut pf, s, a, key) {
                            pending.push(v);
                        }
                    }
                    Err(cur) => {
                        pending.push(u.transition_violation(
                            cur,
                            a,
                            key,
                            State::Rx,
                            Some(s),
                            Some(p.id),
                        ));
                        u.force(fidx, State::Rx, s.local, tid);
                    }
                }
            }
        }
        u.write_descs(b"rx", s, idx, descs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }

    /// The app put these descriptors on TX; the ring index is counted by the
    /// recorder from 0 (use [`Sock::tx_at`] when the app knows it).
    pub fn tx(&self, descs: &[XdpDesc]) {
        let idx = self
            .s
            .tx_next
            .fetch_add(descs.len() as u32, Ordering::Relaxed);
        self.tx_inner(idx, descs);
    }

    /// The app put these descriptors on TX starting at producer index `idx`.
    pub fn tx_at(&self, idx: u32, descs: &[XdpDesc]) {
        self.s
            .tx_next
            .store(idx.wrapping_add(descs.len() as u32), Ordering::Relaxed);
        self.tx_inner(idx, descs);
    }

    #[inline]
    fn tx_inner(&self, idx: u32, descs: &[XdpDesc]) {
        let u = &*self.u;
        let s = &self.s;
        let tid = small_tid();
        let mut pending = Vec::new();
        {
            let mut tx = lock(&s.tx);
            for d in descs {
                let a = d.addr;
                let Some((fidx, key)) = u.frame_of(a) else {
                    pending.push(UmemInner::simple(
                        ViolationKind::AddressOutOfRange,
                        a,
                        a,
                        State::Unknown,
                        State::Tx,
                        Some(s),
                        Some(s.pool.id),
                    ));
                    continue;
                };
                if tx.open != 0 && tx.open != tid {
                    pending.push(UmemInner::simple(
                        ViolationKind::MultibufferSplit,
                        a,
                        key,
                        State::Unknown,
                        State::Tx,
                        Some(s),
                        Some(s.pool.id),
                    ));
                }
                tx.open = if d.options & XDP_PKT_CONTD != 0 {
                    tid
                } else {
                    0
                };
                if let Err(cur) = u.transition(fidx, State::Tx, s.local, tid) {
                    pending.push(u.transition_violation(
                        cur,
                        a,
                        key,
                        State::Tx,
                        Some(s),
                        Some(s.pool.id),
                    ));
                    u.force(fidx, State::Tx, s.local, tid);
                }
                let _ = tx.fifo.push_back(key);
            }
        }
        u.write_descs(b"tx", s, idx, descs);
        if !pending.is_empty() {
            u.report(pending);
        }
    }

    /// Read `XDP_STATISTICS` now and write a `stats` line.
    pub fn stats_snapshot(&self) -> Option<XdpStats> {
        let now = self.s.stats.as_ref()?.read().ok()?;
        self.u.write_stats(&self.s, &now);
        Some(now)
    }

    /// The socket's number.
    pub fn id(&self) -> u32 {
        self.s.id
    }
}
