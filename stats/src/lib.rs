//! `xskdbg-stats`: the statistics tables of `xskdbg analyze --stats` and
//! `--export DIR`, built with polars.
//!
//! - [`Collector`] watches every parsed entry in the analyzer's single pass
//!   (it is the `observer` of `xskdbg_analyzer::analyze_reader_with`) and
//!   keeps bounded state: counters per CPU, socket and kind, the last ring
//!   transition of each frame (one entry per UMEM chunk, capped at
//!   [`MAX_FRAMES`]) and one [`LatencyHist`] per socket and stage.
//! - [`Tables`]: the polars `DataFrame`s built column-wise from it
//!   ([`Collector::tables`]), printed with [`Tables::print`] and written as
//!   CSV files with [`Tables::export`].
//!
//! Latencies are measured on the application's own events, in both the
//! project vocabulary (`fill`, `rx`, `tx`, `comp` lines) and the seed
//! story's free-form one (`FILL -> RX` ...): FILL→RX is the time from the
//! `fill` that gave a frame to the kernel to the `rx` that got it back;
//! RX→TX and TX→COMP likewise. A latency belongs to the socket of the
//! later event (the RX, TX or COMP side). Frames are compared by chunk:
//! the `umem` line's chunk size and mode, else `--chunk-size`, else 2 KiB
//! granularity (the smallest AF_XDP chunk, which also keeps frames of
//! larger chunks apart since packet offsets stay below 2 KiB).
//! Timestamps are nanoseconds when the trace clock is a time, raw clock
//! units otherwise (the `unit` column says which).

mod hist;
mod tables;

use std::collections::HashMap;

use xskdbg_analyzer::parse::{AppOp, KernelOp, RingState, SeedOp, SockKey};
use xskdbg_analyzer::{Event, Op};

pub use hist::{LatencyHist, EXACT_CAP};
pub use tables::{Tables, TablesError};

/// Most frames whose last transition is remembered; beyond this, new
/// frames get no latency (a trace full of garbage addresses cannot grow
/// memory without bound).
pub const MAX_FRAMES: usize = 1 << 22;

/// Smallest AF_XDP chunk size: the default frame granularity.
const DEFAULT_CHUNK: u64 = 2048;
const LOW48: u64 = (1 << 48) - 1;

/// Ring stages whose latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// From the app's FILL to the app's RX of the same frame.
    FillToRx,
    /// From RX to TX.
    RxToTx,
    /// From TX to COMPLETION.
    TxToComp,
}

impl Stage {
    /// All stages, in ring order.
    pub const ALL: [Stage; 3] = [Stage::FillToRx, Stage::RxToTx, Stage::TxToComp];

    /// `FILL->RX`, `RX->TX`, `TX->COMP`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::FillToRx => "FILL->RX",
            Stage::RxToTx => "RX->TX",
            Stage::TxToComp => "TX->COMP",
        }
    }
}

/// Entry kinds counted in the per-kind table: the project's operation
/// words; free-form lines count as the operation they describe.
const KINDS: [&str; 22] = [
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
    "other",
    "probe",
    "krx",
    "krxdone",
    "kflush",
    "ktx",
    "kcomp",
    "kpoll",
    "transition",
    "context",
    "unknown",
];

fn kind_index(name: &str) -> usize {
    KINDS
        .iter()
        .position(|k| *k == name)
        .unwrap_or(KINDS.len() - 1)
}

/// How an entry names its socket before names are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Ident {
    Sk(SockKey),
    Xs(u64),
    Pool(u64),
}

/// Per-CPU counters.
#[derive(Debug, Clone, Copy, Default)]
struct CpuStat {
    events: u64,
    first: Option<u64>,
    last: u64,
}

/// What one frame did last, for the latencies.
#[derive(Debug, Clone, Copy)]
struct Mark {
    state: RingState,
    ts: u64,
}

/// Per-socket counters under one of its names.
#[derive(Debug, Clone, Default)]
struct SockStat {
    events: u64,
    lat: [LatencyHist; 3],
}

/// Watches the analyzer's pass and accumulates the statistics.
#[derive(Debug, Default)]
pub struct Collector {
    events: u64,
    cpus: Vec<CpuStat>,
    kinds: [u64; KINDS.len()],
    kind_descs: [u64; KINDS.len()],
    socks: HashMap<Ident, SockStat>,
    labels: HashMap<Vec<u8>, SockStat>,
    xs_sk: HashMap<u64, SockKey>,
    pool_sk: HashMap<u64, SockKey>,
    label_sk: HashMap<Vec<u8>, SockKey>,
    sk_label: HashMap<SockKey, String>,
    frames: HashMap<u64, Mark>,
    /// Chunk size and mode given by the user; a `umem` line wins otherwise.
    user_chunk: Option<u64>,
    chunk: u64,
    unaligned: bool,
    /// Every timestamp so far was a time (ns).
    ns_clock: bool,
    seen_ts: bool,
}

impl Collector {
    /// `chunk_size`/`unaligned` as given on the command line (`None`: from
    /// the trace's `umem` line, else 2 KiB granularity).
    pub fn new(chunk_size: Option<u64>, unaligned: bool) -> Self {
        let chunk = chunk_size
            .filter(|c| c.is_power_of_two())
            .unwrap_or(DEFAULT_CHUNK);
        Collector {
            user_chunk: chunk_size.filter(|c| c.is_power_of_two()),
            chunk,
            unaligned,
            ns_clock: true,
            ..Collector::default()
        }
    }

    /// Entries observed.
    pub fn events(&self) -> u64 {
        self.events
    }

    fn frame_of(&self, addr: u64) -> u64 {
        if self.unaligned {
            addr & LOW48
        } else {
            addr & !(self.chunk - 1)
        }
    }

    /// Takes one parsed entry; call it for every entry, in trace order.
    pub fn observe(&mut self, ev: &Event<'_>) {
        self.events += 1;
        let ts = match ev.ts.ns {
            Some(ns) => ns,
            None => {
                self.ns_clock = false;
                ev.ts.order
            }
        };
        self.seen_ts = true;
        let cpu = ev.cpu as usize;
        if cpu < 4096 {
            if self.cpus.len() <= cpu {
                self.cpus.resize(cpu + 1, CpuStat::default());
            }
            let c = &mut self.cpus[cpu];
            c.events += 1;
            c.first.get_or_insert(ts);
            c.last = ts;
        }
        match &ev.op {
            Op::App(op) => self.app(op, ts),
            Op::Kernel(op) => self.kernel(op),
            Op::Seed(op) => self.seed(op, ts),
            Op::Unknown => self.kind("unknown", 0),
        }
    }

    fn kind(&mut self, name: &str, descs: u64) {
        let i = kind_index(name);
        self.kinds[i] += 1;
        self.kind_descs[i] += descs;
    }

    fn sock(&mut self, id: Ident) -> &mut SockStat {
        self.socks.entry(id).or_default()
    }

    fn count_sock(&mut self, id: Ident) {
        self.sock(id).events += 1;
    }

    fn label_stat(&mut self, label: &[u8]) -> &mut SockStat {
        if !self.labels.contains_key(label) {
            self.labels.insert(label.to_vec(), SockStat::default());
        }
        self.labels.get_mut(label).expect("inserted above")
    }

    /// Moves a frame to `state`; returns the latency of the stage this
    /// completes, if any.
    fn transition(&mut self, addr: u64, state: RingState, ts: u64) -> Option<(Stage, u64)> {
        let key = self.frame_of(addr);
        let stage_from = match state {
            RingState::Rx => Some((RingState::Fill, Stage::FillToRx)),
            RingState::Tx => Some((RingState::Rx, Stage::RxToTx)),
            RingState::Comp => Some((RingState::Tx, Stage::TxToComp)),
            _ => None,
        };
        let prev = match self.frames.get_mut(&key) {
            Some(m) => Some(std::mem::replace(m, Mark { state, ts })),
            None => {
                if self.frames.len() < MAX_FRAMES {
                    self.frames.insert(key, Mark { state, ts });
                }
                None
            }
        };
        match (prev, stage_from) {
            (Some(p), Some((from, stage))) if p.state == from => {
                Some((stage, ts.saturating_sub(p.ts)))
            }
            _ => None,
        }
    }

    fn app(&mut self, op: &AppOp<'_>, ts: u64) {
        match op {
            AppOp::Umem {
                chunk, unaligned, ..
            } => {
                self.kind("umem", 0);
                if self.user_chunk.is_none() {
                    if let Some(c) = chunk.filter(|c| c.is_power_of_two()) {
                        self.chunk = c;
                    }
                }
                self.unaligned |= *unaligned;
            }
            AppOp::Pool { pool, sk, .. } => {
                self.kind("pool", 0);
                if let Some(sk) = sk {
                    self.pool_sk.entry(*pool).or_insert(*sk);
                    self.count_sock(Ident::Sk(*sk));
                }
            }
            AppOp::Sock {
                sk, pool, label, ..
            } => {
                self.kind("sock", 0);
                if let Some(p) = pool {
                    self.pool_sk.entry(*p).or_insert(*sk);
                }
                if let Some(l) = label {
                    let l = String::from_utf8_lossy(l).trim().to_string();
                    self.label_sk.entry(l.as_bytes().to_vec()).or_insert(*sk);
                    self.sk_label.insert(*sk, l);
                }
                self.count_sock(Ident::Sk(*sk));
            }
            AppOp::Fill { pool, sk, addrs } => {
                let id = sk.map(Ident::Sk).or(pool.map(Ident::Pool));
                if let (Some(p), Some(s)) = (pool, sk) {
                    self.pool_sk.entry(*p).or_insert(*s);
                }
                let mut n = 0;
                for d in addrs.iter() {
                    n += 1;
                    self.transition(d.addr, RingState::Fill, ts);
                }
                self.kind("fill", n);
                if let Some(id) = id {
                    self.count_sock(id);
                }
            }
            AppOp::Rx {
                sk, pool, descs, ..
            } => {
                if let Some(p) = pool {
                    self.pool_sk.entry(*p).or_insert(*sk);
                }
                self.ring_batch(
                    "rx",
                    Ident::Sk(*sk),
                    RingState::Rx,
                    descs.iter().map(|d| d.addr),
                    ts,
                );
            }
            AppOp::Tx { sk, descs, .. } => {
                self.ring_batch(
                    "tx",
                    Ident::Sk(*sk),
                    RingState::Tx,
                    descs.iter().map(|d| d.addr),
                    ts,
                );
            }
            AppOp::Comp { pool, sk, addrs } => {
                if let (Some(p), Some(s)) = (pool, sk) {
                    self.pool_sk.entry(*p).or_insert(*s);
                }
                match sk.map(Ident::Sk).or(pool.map(Ident::Pool)) {
                    Some(id) => self.ring_batch(
                        "comp",
                        id,
                        RingState::Comp,
                        addrs.iter().map(|d| d.addr),
                        ts,
                    ),
                    None => {
                        let mut n = 0;
                        for d in addrs.iter() {
                            n += 1;
                            self.transition(d.addr, RingState::Comp, ts);
                        }
                        self.kind("comp", n);
                    }
                }
            }
            AppOp::Hold { addrs, .. } => {
                let mut n = 0;
                for d in addrs.iter() {
                    n += 1;
                    self.transition(d.addr, RingState::Held, ts);
                }
                self.kind("hold", n);
            }
            AppOp::Free { addrs, .. } => {
                let mut n = 0;
                for d in addrs.iter() {
                    n += 1;
                    self.transition(d.addr, RingState::Free, ts);
                }
                self.kind("free", n);
            }
            AppOp::Stats { sk, .. } => {
                self.kind("stats", 0);
                if let Some(sk) = sk {
                    self.count_sock(Ident::Sk(*sk));
                }
            }
            AppOp::Violation { sk, pool, .. } => {
                self.kind("violation", 1);
                if let Some(id) = sk.map(Ident::Sk).or(pool.map(Ident::Pool)) {
                    self.count_sock(id);
                }
            }
            AppOp::Audit { .. } => self.kind("audit", 0),
            AppOp::Other { .. } => self.kind("other", 0),
        }
    }

    /// A batch of descriptors moving to `state` on socket `id`.
    fn ring_batch(
        &mut self,
        kind: &str,
        id: Ident,
        state: RingState,
        addrs: impl Iterator<Item = u64>,
        ts: u64,
    ) {
        let mut n = 0;
        for a in addrs {
            n += 1;
            if let Some((stage, dt)) = self.transition(a, state, ts) {
                self.sock(id).lat[stage as usize].record(dt);
            }
        }
        self.kind(kind, n);
        self.count_sock(id);
    }

    fn kernel(&mut self, op: &KernelOp<'_>) {
        let learn = |c: &mut Collector, xs: Option<u64>, sk: Option<SockKey>| {
            if let (Some(x), Some(s)) = (xs, sk) {
                c.xs_sk.entry(x).or_insert(s);
            }
            match (sk, xs) {
                (Some(s), _) => c.count_sock(Ident::Sk(s)),
                (None, Some(x)) => c.count_sock(Ident::Xs(x)),
                (None, None) => {}
            }
        };
        match op {
            KernelOp::Probe { .. } => self.kind("probe", 0),
            KernelOp::Rx { xs, sk, .. } => {
                self.kind("krx", 1);
                learn(self, Some(*xs), *sk);
            }
            KernelOp::RxDone { xs, .. } => {
                self.kind("krxdone", 0);
                learn(self, Some(*xs), None);
            }
            KernelOp::Flush { xs, sk, .. } => {
                self.kind("kflush", 0);
                learn(self, Some(*xs), *sk);
            }
            KernelOp::Tx { xs, sk, .. } => {
                self.kind("ktx", 1);
                learn(self, *xs, *sk);
            }
            KernelOp::Comp {
                xs, sk, n, addrs, ..
            } => {
                let count = match n {
                    Some(n) => *n,
                    None => addrs.count() as u64,
                };
                self.kind("kcomp", count);
                learn(self, *xs, *sk);
            }
            KernelOp::Poll { .. } => self.kind("kpoll", 0),
            // `kxdperr why=rcv`, a return probe: counted as before they
            // were decoded.
            KernelOp::RxOutcome { .. } => self.kind("other", 0),
        }
    }

    fn seed(&mut self, op: &SeedOp<'_>, ts: u64) {
        match op {
            SeedOp::Transition {
                label,
                addr,
                to,
                expected,
                remaining,
                ..
            } => {
                let kind = if expected.is_some() || remaining.is_some() {
                    "violation"
                } else {
                    match to {
                        RingState::Fill => "fill",
                        RingState::Rx => "rx",
                        RingState::Tx => "tx",
                        RingState::Comp => "comp",
                        _ => "transition",
                    }
                };
                self.kind(kind, 1);
                let lat = self.transition(*addr, *to, ts);
                if let Some(l) = label {
                    let st = self.label_stat(l);
                    st.events += 1;
                    if let Some((stage, dt)) = lat {
                        st.lat[stage as usize].record(dt);
                    }
                }
            }
            SeedOp::Note { .. } => self.kind("context", 0),
        }
    }

    /// Builds the tables (column-wise) from what was observed.
    pub fn tables(&self) -> Result<Tables, TablesError> {
        tables::build(self)
    }
}

/// One socket row after joining its names.
#[derive(Debug, Clone)]
pub(crate) struct SockRow {
    pub(crate) socket: String,
    pub(crate) label: String,
    pub(crate) events: u64,
    pub(crate) lat: [LatencyHist; 3],
}

impl Collector {
    /// Joins the names a socket was seen under (sk, xs, pool, label) and
    /// returns one row per socket, sorted by name.
    pub(crate) fn sock_rows(&self) -> Vec<SockRow> {
        let mut rows: std::collections::BTreeMap<String, SockRow> =
            std::collections::BTreeMap::new();
        let mut add = |name: String, label: String, st: &SockStat| {
            let row = rows.entry(name.clone()).or_insert_with(|| SockRow {
                socket: name,
                label: label.clone(),
                events: 0,
                lat: Default::default(),
            });
            if row.label.is_empty() {
                row.label = label;
            }
            row.events += st.events;
            for (a, b) in row.lat.iter_mut().zip(st.lat.iter()) {
                a.merge(b);
            }
        };
        let mut ids: Vec<_> = self.socks.iter().collect();
        ids.sort_by_key(|(id, _)| **id);
        for (id, st) in ids {
            let sk = match id {
                Ident::Sk(s) => Some(*s),
                Ident::Xs(x) => self.xs_sk.get(x).copied(),
                Ident::Pool(p) => self.pool_sk.get(p).copied(),
            };
            match sk {
                Some(sk) => add(
                    sk.to_string(),
                    self.sk_label.get(&sk).cloned().unwrap_or_default(),
                    st,
                ),
                None => {
                    let name = match id {
                        Ident::Xs(x) => format!("xs={x:x}"),
                        Ident::Pool(p) => format!("pool={p:x}"),
                        Ident::Sk(s) => s.to_string(),
                    };
                    add(name, String::new(), st)
                }
            }
        }
        let mut labels: Vec<_> = self.labels.iter().collect();
        labels.sort_by(|a, b| a.0.cmp(b.0));
        for (l, st) in labels {
            let text = String::from_utf8_lossy(l).into_owned();
            match self.label_sk.get(l.as_slice()) {
                Some(sk) => add(sk.to_string(), text, st),
                None => add(format!("label={text}"), text, st),
            }
        }
        rows.into_values().collect()
    }

    pub(crate) fn cpu_rows(&self) -> impl Iterator<Item = (u32, u64, u64, u64)> + '_ {
        self.cpus
            .iter()
            .enumerate()
            .filter(|(_, c)| c.events > 0)
            .map(|(i, c)| (i as u32, c.events, c.first.unwrap_or(0), c.last))
    }

    pub(crate) fn kind_rows(&self) -> impl Iterator<Item = (&'static str, u64, u64)> + '_ {
        KINDS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.kinds[*i] > 0)
            .map(|(i, k)| (*k, self.kinds[i], self.kind_descs[i]))
    }

    pub(crate) fn unit(&self) -> &'static str {
        if self.ns_clock || !self.seen_ts {
            "ns"
        } else {
            "clock"
        }
    }
}
