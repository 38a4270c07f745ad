//! `xskdbg-tracegen`: generates realistic ftrace `trace` files of AF_XDP
//! programs, for the analyzer's tests and for benchmarks.
//!
//! A small simulator runs the rings of a shared-UMEM forwarder (two devices
//! in two network namespaces, one socket per queue on each, one application
//! thread per queue pair, NAPI on other CPUs) and writes what the recorder
//! (`tracing_mark_write: xskdbg:1 fill|rx|tx|comp ...`) and the probes
//! (`bpf_trace_printk: xskdbg:1 krx|krxdone|kflush|ktx|kcomp|kpoll ...`)
//! would have put in the ring buffer, in the format of `docs/TRACE-FORMAT.md`,
//! or in the free-form vocabulary of the seed story ([`Vocab::Freeform`]).
//! Per-CPU buffers can wrap (history starting later on busy CPUs, with the
//! `##### CPU N buffer started ####` annotations ftrace prints), and the
//! kernel's free-list recycling reorders frames the way it does in real
//! life, with the `stats` lines that explain it.
//!
//! Each [`Scenario`] injects one bug (or none) and returns an [`Expect`]:
//! the findings `xskdbg analyze` must report (kind, verdict, address, line),
//! which the CLI writes as a JSON sidecar with `--expect FILE`.
//!
//! Modules: `rng` (deterministic PRNG), `emit` (ftrace entry rendering),
//! `sim` (the world and run loop; `sim::kernel`, `sim::app` and
//! `sim::bugs` move frames, `sim::lines` writes each move's entry, project
//! lines through `xskdbg_format`'s writer), `output` (atomic files,
//! compression).

mod emit;
mod output;
mod rng;
mod sim;

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

pub use output::{write_file, write_json_atomic, Compression, OutputError};

/// Seconds part of the first timestamp (an uptime, as in the seed traces).
pub(crate) const BASE_SECS: u64 = 542_812;

/// What goes wrong in the generated run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Nothing: several sockets on a shared UMEM, full FILL→RX→TX→COMP→FILL
    /// cycles, wrapped per-CPU buffers (one CPU starts late), NAPI moving
    /// between CPUs, and free-list recycling explained by `stats`.
    Clean,
    /// The application puts a frame that is still on FILL onto TX.
    AppFillTx,
    /// The application puts a frame on FILL while it is already there.
    AppDoubleFill,
    /// The application consumes one completion batch twice (stale consumer
    /// index), claiming frames it had already refilled.
    AppDoubleComplete,
    /// The application refills a frame it transmitted before its completion.
    AppReuseBeforeComplete,
    /// The application drops a received frame on the floor.
    AppLeak,
    /// veth-style race: a second CPU's NAPI reserves an RX slot while the
    /// first CPU's flush publishes it; the app reads the poison value.
    KernelRace,
    /// Same race without poisoning: the app reads the slot's stale
    /// descriptor (a frame that is elsewhere), as in the seed's first trace.
    KernelRaceStale,
    /// The kernel hands one frame to RX twice (free-list double use).
    KernelDup,
    /// The kernel overruns a COMPLETION ring: while the application is slow
    /// to read it, the kernel writes completions over entries the
    /// application has not read yet. The application then reads some frames
    /// twice (a ring lap apart) and the overwritten ones never, and puts
    /// the frames it was handed twice back on FILL twice.
    KernelCompOverrun,
}

impl Scenario {
    /// Every scenario, in documentation order.
    pub const ALL: [Scenario; 10] = [
        Scenario::Clean,
        Scenario::AppFillTx,
        Scenario::AppDoubleFill,
        Scenario::AppDoubleComplete,
        Scenario::AppReuseBeforeComplete,
        Scenario::AppLeak,
        Scenario::KernelRace,
        Scenario::KernelRaceStale,
        Scenario::KernelDup,
        Scenario::KernelCompOverrun,
    ];

    /// The name used on the command line and in the sidecar.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Clean => "clean",
            Scenario::AppFillTx => "app-fill-tx",
            Scenario::AppDoubleFill => "app-double-fill",
            Scenario::AppDoubleComplete => "app-double-complete",
            Scenario::AppReuseBeforeComplete => "app-reuse-before-complete",
            Scenario::AppLeak => "app-leak",
            Scenario::KernelRace => "kernel-race",
            Scenario::KernelRaceStale => "kernel-race-stale",
            Scenario::KernelDup => "kernel-dup",
            Scenario::KernelCompOverrun => "kernel-comp-overrun",
        }
    }

    /// Parses a name from [`Scenario::name`].
    pub fn from_name(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|sc| sc.name() == s)
    }

    /// Whether per-CPU buffers wrap by default (a flight-recorder capture).
    /// Leak detection needs a complete trace, so bug scenarios default to
    /// complete ones except the races, which are caught by a recorder.
    pub fn wraps_by_default(self) -> bool {
        matches!(
            self,
            Scenario::Clean | Scenario::KernelRace | Scenario::KernelRaceStale
        )
    }
}

/// Which vocabulary the lines use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocab {
    /// `xskdbg:1 ...` lines of docs/TRACE-FORMAT.md.
    Project,
    /// The seed story's free-form lines (`ingress q:1 0x16ce900 FILL -> RX`)
    /// and perf-probe kprobe events (`__xsk_rcv_zc_L7: (...) addr=0x..`).
    Freeform,
}

/// The trace clock the timestamps imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// `local` (the default): `seconds.microseconds`.
    Local,
    /// `counter`: an entry counter, not a time.
    Counter,
    /// `x86-tsc`: raw TSC ticks, not nanoseconds.
    X86Tsc,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bug to inject (or none).
    pub scenario: Scenario,
    /// Same seed, same bytes.
    pub seed: u64,
    /// Stop once the body (entries, not header) reaches this many bytes.
    pub size: Option<u64>,
    /// Otherwise, stop after this many simulation steps.
    pub steps: u64,
    /// Number of CPUs (at least 3: one quiet, two busy).
    pub cpus: u16,
    /// Queues per device; there are two devices, so `2 * queues` sockets.
    pub queues: u16,
    /// Line vocabulary.
    pub vocab: Vocab,
    /// Timestamp clock.
    pub clock: Clock,
    /// Override [`Scenario::wraps_by_default`].
    pub wrap: Option<bool>,
    /// Write the probes' kernel lines (`probe`, `krx`, `ktx`, `kcomp`, ...);
    /// without them the trace is the recorder's alone.
    pub probes: bool,
}

impl Config {
    /// A small trace of `scenario` (a few hundred kilobytes).
    pub fn new(scenario: Scenario, seed: u64) -> Self {
        Config {
            scenario,
            seed,
            size: None,
            steps: 4000,
            cpus: 4,
            queues: 2,
            vocab: Vocab::Project,
            clock: Clock::Local,
            wrap: None,
            probes: true,
        }
    }
}

/// Invalid [`Config`] or a write that failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The configuration cannot produce a trace.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Writing the trace failed.
    #[error("writing the trace failed: {0}")]
    Io(#[from] io::Error),
}

/// The operation an entry records (a project op, or the free-form line that
/// stands for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `umem` declaration.
    Umem,
    /// `pool` declaration.
    Pool,
    /// `sock` declaration.
    Sock,
    /// `probe` header from the probes.
    Probe,
    /// The app produced on FILL.
    Fill,
    /// The app consumed from RX.
    Rx,
    /// The app produced on TX.
    Tx,
    /// The app consumed from COMPLETION.
    Comp,
    /// The app returned frames to its own free list.
    Free,
    /// An `XDP_STATISTICS` snapshot.
    Stats,
    /// A violation caught in-process by the recorder.
    Violation,
    /// Kernel reserved an RX slot.
    Krx,
    /// Kernel wrote the RX slot.
    Krxdone,
    /// Kernel published the RX producer.
    Kflush,
    /// Kernel took a frame from TX.
    Ktx,
    /// Kernel produced completions.
    Kcomp,
    /// A NAPI poll ended.
    Kpoll,
    /// A free-form context line (`0x.. egress_tx_queue forward`).
    Context,
}

impl Op {
    const COUNT: usize = 18;
    const ALL: [Op; Op::COUNT] = [
        Op::Umem,
        Op::Pool,
        Op::Sock,
        Op::Probe,
        Op::Fill,
        Op::Rx,
        Op::Tx,
        Op::Comp,
        Op::Free,
        Op::Stats,
        Op::Violation,
        Op::Krx,
        Op::Krxdone,
        Op::Kflush,
        Op::Ktx,
        Op::Kcomp,
        Op::Kpoll,
        Op::Context,
    ];

    /// The operation word of docs/TRACE-FORMAT.md (`context` for a
    /// free-form context line, which has none).
    pub fn name(self) -> &'static str {
        use xskdbg_format::op;
        match self {
            Op::Umem => op::UMEM,
            Op::Pool => op::POOL,
            Op::Sock => op::SOCK,
            Op::Probe => op::PROBE,
            Op::Fill => op::FILL,
            Op::Rx => op::RX,
            Op::Tx => op::TX,
            Op::Comp => op::COMP,
            Op::Free => op::FREE,
            Op::Stats => op::STATS,
            Op::Violation => op::VIOLATION,
            Op::Krx => op::KRX,
            Op::Krxdone => op::KRXDONE,
            Op::Kflush => op::KFLUSH,
            Op::Ktx => op::KTX,
            Op::Kcomp => op::KCOMP,
            Op::Kpoll => op::KPOLL,
            Op::Context => "context",
        }
    }
}

/// Counts of the entries that made it into the trace (after wrapping).
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    /// Entries recorded, including those lost to wrapping.
    pub written: u64,
    /// Entries in the trace.
    pub entries: u64,
    /// Entries per CPU, indexed by CPU number.
    pub per_cpu: Vec<u64>,
    /// Entries per operation name (`fill`, `krx`, ...).
    pub per_op: BTreeMap<String, u64>,
    /// Descriptors per operation name (a `rx n=3` entry counts 3).
    pub descs_per_op: BTreeMap<String, u64>,
    /// Entries that name a socket, per socket key (`1:5:0`).
    pub per_socket: BTreeMap<String, u64>,
    #[serde(skip)]
    op: [u64; Op::COUNT],
    #[serde(skip)]
    op_descs: [u64; Op::COUNT],
    #[serde(skip)]
    sock: Vec<u64>,
}

impl Counts {
    fn new(cpus: usize) -> Self {
        Counts {
            written: 0,
            entries: 0,
            per_cpu: vec![0; cpus],
            per_op: BTreeMap::new(),
            descs_per_op: BTreeMap::new(),
            per_socket: BTreeMap::new(),
            op: [0; Op::COUNT],
            op_descs: [0; Op::COUNT],
            sock: Vec::new(),
        }
    }

    fn add(&mut self, cpu: usize, op: Op, sock: Option<usize>, descs: u64) {
        self.entries += 1;
        if let Some(c) = self.per_cpu.get_mut(cpu) {
            *c += 1;
        }
        self.op[op as usize] += 1;
        self.op_descs[op as usize] += descs;
        if let Some(s) = sock {
            if self.sock.len() <= s {
                self.sock.resize(s + 1, 0);
            }
            self.sock[s] += 1;
        }
    }

    /// Fills the name-keyed maps from the hot-path arrays.
    fn finalize(&mut self, sock_keys: &[String]) {
        for op in Op::ALL {
            let i = op as usize;
            if self.op[i] > 0 {
                self.per_op.insert(op.name().to_string(), self.op[i]);
                self.descs_per_op
                    .insert(op.name().to_string(), self.op_descs[i]);
            }
        }
        for (i, &n) in self.sock.iter().enumerate() {
            if n > 0 {
                if let Some(k) = sock_keys.get(i) {
                    self.per_socket.insert(k.clone(), n);
                }
            }
        }
    }
}

/// One finding `xskdbg analyze` must report.
#[derive(Debug, Clone, Serialize)]
pub struct ExpectedFinding {
    /// The finding kind the scenario is built to produce.
    pub kind: String,
    /// Other kinds that describe the same moment; an analyzer may report
    /// one of these as the finding and `kind` in its `also` list.
    pub accept_kinds: Vec<String>,
    /// `kernel`, `application` or `inconclusive`.
    pub verdict: String,
    /// The descriptor value as the trace wrote it (`0x...`).
    pub addr: String,
    /// Its chunk base (`0x...`), when it is a real frame.
    pub frame: Option<String>,
    /// The socket key involved (`1:5:0`), when one is.
    pub socket: Option<String>,
    /// Line of the earliest entry that shows the bug.
    pub line: Option<u64>,
    /// The timestamp text of that entry.
    pub ts: Option<String>,
    /// CPUs involved.
    pub cpus: Vec<u16>,
    /// `finding`: must be a top-level finding; `finding_or_also`: may
    /// instead appear in the `also` or `consequences` of one.
    pub r#match: String,
    /// What happened, for a human reading a failed test.
    pub note: String,
}

/// The machine-readable expectation of one generated trace.
#[derive(Debug, Clone, Serialize)]
pub struct Expect {
    /// Version of this sidecar's layout.
    pub schema_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// `project` or `freeform`.
    pub vocab: String,
    /// `local`, `counter` or `x86-tsc`.
    pub clock: String,
    /// Exit code `xskdbg analyze` must return (0 clean, 1 findings).
    pub exit_code: i32,
    /// The summary verdict (`clean`, `kernel`, `application`, ...).
    pub verdict: String,
    /// Findings that must be reported; nothing else may be (a clean trace
    /// has none).
    pub findings: Vec<ExpectedFinding>,
    /// UMEM chunk size (hex string), what `--chunk-size` inference must find.
    pub chunk_size: String,
    /// Whether per-CPU buffers wrapped (annotations present).
    pub wrapped: bool,
    /// Timestamp (ns since the first possible entry) of the first entry once
    /// every CPU's buffer had started.
    pub complete_from_ns: Option<u64>,
    /// Frames the kernel took from its free list instead of FILL (recycling
    /// that reorders RX against FILL and that `stats` lines explain).
    pub free_list_reuses: u64,
    /// Of those, receptions that overtook an older outstanding frame (the
    /// free list held two or more): RX order differs from FILL order here,
    /// and the analyzer must count these as recycled reorders, not findings.
    pub recycled_reorders: u64,
    /// Lines in the file (header included).
    pub lines: u64,
    /// Bytes in the file (uncompressed).
    pub bytes: u64,
    /// Socket keys with their labels.
    pub sockets: BTreeMap<String, String>,
    /// What the trace holds.
    pub counts: Counts,
}

/// Writes the trace for `cfg` to `w` and returns its expectation.
///
/// Runs the simulation twice: once to count what the header must say
/// (`entries-in-buffer/entries-written`), once to write. Memory stays
/// bounded by the simulated rings whatever `cfg.size` is.
pub fn generate<W: Write>(cfg: &Config, w: W) -> Result<Expect, GenError> {
    validate(cfg)?;
    let first = sim::run(cfg, io::sink(), None)?;
    let header = (first.counts.entries, first.counts.written);
    sim::run(cfg, w, Some(header))
}

fn validate(cfg: &Config) -> Result<(), GenError> {
    if cfg.cpus < 3 || cfg.cpus > 256 {
        return Err(GenError::Config(format!(
            "cpus must be 3..=256, got {}",
            cfg.cpus
        )));
    }
    if cfg.queues == 0 || cfg.queues > 64 {
        return Err(GenError::Config(format!(
            "queues must be 1..=64, got {}",
            cfg.queues
        )));
    }
    if cfg.size.is_none() && cfg.steps == 0 {
        return Err(GenError::Config("steps must be at least 1".into()));
    }
    if cfg.vocab == Vocab::Freeform
        && !matches!(
            cfg.scenario,
            Scenario::Clean
                | Scenario::KernelRace
                | Scenario::KernelRaceStale
                | Scenario::AppFillTx
        )
    {
        return Err(GenError::Config(format!(
            "the free-form vocabulary has no kernel completion events, so scenario {} cannot be \
             told apart in it; use clean, app-fill-tx, kernel-race or kernel-race-stale",
            cfg.scenario.name()
        )));
    }
    Ok(())
}
