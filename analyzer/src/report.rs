//! The analysis result: [`Report`], [`Finding`], [`Summary`].
//!
//! These types serialize (serde) to exactly the `--json` document described
//! in `docs/JSON.md` (`schema_version` 2). Unknown values are `null`. Other
//! crates (HTML/Perfetto views, stats) read them; field names are stable.

use serde::Serialize;

/// Version of the JSON document (`docs/JSON.md`). Bumped on breaking changes:
/// 2 added the verdict and finding kind `instrumentation`, which an old
/// reader would not know.
pub const SCHEMA_VERSION: u32 = 2;

/// Everything `xskdbg analyze` found in one trace.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// One finding per root cause, in trace order.
    pub findings: Vec<Finding>,
    /// Counts and context for the whole trace.
    pub summary: Summary,
    /// One descriptor's life, when `--history` asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
}

impl Report {
    /// The exit code the `xskdbg` command uses: 0 clean, 1 findings.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.findings.is_empty())
    }

    /// The JSON document (pretty-printed).
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail (no maps with non-string keys).
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// [`Report::to_json`]'s bytes written to `out` as they are made: a
    /// report with thousands of findings is tens of megabytes, which the
    /// string grew to (copying it each time it doubled) before any of it
    /// was written. Fails only when `out` does.
    pub fn write_json(&self, out: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(out, self).map_err(std::io::Error::from)
    }
}

/// The kinds of anomaly the analyzer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A frame moved between owners in a way the state machine forbids, or the
    /// app claimed a "from" state that the history contradicts.
    InvalidTransition,
    /// Per pool, RX order differs from FILL order (or COMP from TX), a frame
    /// arrived that was not outstanding, or a recorder reported it in-process.
    FifoOrder,
    /// The poison value was read from RX.
    PoisonedDescriptor,
    /// The kernel wrote frame X into an RX position where the app read Y.
    RxMismatch,
    /// One frame owned by the kernel twice at once.
    DuplicateInFlight,
    /// Receive work on one CPU overlapped another CPU's producer section for
    /// the same socket.
    ConcurrentProducer,
    /// A frame left the app's hands and never came back.
    FrameLeak,
    /// The recording itself is incomplete or wrong (a FILL not recorded, a
    /// ring index that does not continue, a read from outside the ring):
    /// the other findings rest on it.
    Instrumentation,
}

impl Kind {
    /// The snake_case name used in JSON and in `violation kind=`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::InvalidTransition => "invalid_transition",
            Kind::FifoOrder => "fifo_order",
            Kind::PoisonedDescriptor => "poisoned_descriptor",
            Kind::RxMismatch => "rx_mismatch",
            Kind::DuplicateInFlight => "duplicate_in_flight",
            Kind::ConcurrentProducer => "concurrent_producer",
            Kind::FrameLeak => "frame_leak",
            Kind::Instrumentation => "instrumentation",
        }
    }

    /// Parse a kind name (as a recorder's `violation kind=` writes it).
    pub fn parse(s: &[u8]) -> Option<Kind> {
        Some(match s {
            b"invalid_transition" => Kind::InvalidTransition,
            b"fifo_order" => Kind::FifoOrder,
            b"poisoned_descriptor" => Kind::PoisonedDescriptor,
            b"rx_mismatch" => Kind::RxMismatch,
            b"duplicate_in_flight" => Kind::DuplicateInFlight,
            b"concurrent_producer" => Kind::ConcurrentProducer,
            b"frame_leak" => Kind::FrameLeak,
            b"instrumentation" => Kind::Instrumentation,
            _ => return None,
        })
    }

    /// When several rules fire on the same line, the lowest rank gives the
    /// finding and the others go to `also` (strongest evidence first). A
    /// recording known to be wrong explains whatever else was read through
    /// it, so `instrumentation` comes first.
    pub fn rank(self) -> u8 {
        match self {
            Kind::Instrumentation => 0,
            Kind::ConcurrentProducer => 1,
            Kind::PoisonedDescriptor => 2,
            Kind::RxMismatch => 3,
            Kind::InvalidTransition => 4,
            Kind::DuplicateInFlight => 5,
            Kind::FifoOrder => 6,
            Kind::FrameLeak => 7,
        }
    }
}

/// Who is to blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The kernel broke the ring contract.
    Kernel,
    /// The application broke the ring contract.
    Application,
    /// The trace does not say.
    Inconclusive,
    /// The application's recording is incomplete or wrong: fix the
    /// instrumentation and record again before trusting any other verdict.
    Instrumentation,
}

impl Verdict {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Kernel => "kernel",
            Verdict::Application => "application",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Instrumentation => "instrumentation",
        }
    }
}

/// The verdict over the whole trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverallVerdict {
    /// No finding.
    Clean,
    /// Every finding blames the kernel.
    Kernel,
    /// Every finding blames the application.
    Application,
    /// Every finding is inconclusive.
    Inconclusive,
    /// Findings with different verdicts.
    Mixed,
    /// At least one finding says the recording is incomplete or wrong: it
    /// outranks every other verdict, which may be an artefact of it.
    Instrumentation,
}

/// One root cause.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What rule family fired.
    pub kind: Kind,
    /// Who is to blame.
    pub verdict: Verdict,
    /// The precise rule that fired and gave the verdict (e.g.
    /// `rx_mismatch/position`; every rule is in `docs/JSON.md`).
    pub rule: String,
    /// The descriptor value as the trace wrote it (`0xdeadbeefdeadbeef`).
    pub addr: Option<String>,
    /// The frame's chunk base (hex), when known.
    pub frame: Option<String>,
    /// Timestamp text of the moment it happened.
    pub ts: String,
    /// That moment in nanoseconds, when the trace clock is a time.
    pub ts_ns: Option<u64>,
    /// Every CPU involved.
    pub cpus: Vec<u32>,
    /// Kernel socket pointer (hex), when known.
    pub xs: Option<String>,
    /// Socket key (`netns:ifindex:queue`) or label (`ingress q:1`).
    pub socket: Option<String>,
    /// RX/TX ring index, when known.
    pub slot: Option<u64>,
    /// Trace line number of the moment.
    pub line: u64,
    /// One paragraph: what happened and why the verdict.
    pub explanation: String,
    /// Other rules that fired at the same moment.
    pub also: Vec<Related>,
    /// Later anomalies of the same frame(s)/socket caused by this root.
    pub consequences: Vec<Related>,
    /// How many consequences were left out of `consequences` (cap 50).
    pub consequences_omitted: u64,
    /// The interleaved events around the moment, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// Another rule firing at the same moment, or a later consequence.
#[derive(Debug, Clone, Serialize)]
pub struct Related {
    /// Kind.
    pub kind: Kind,
    /// Rule.
    pub rule: String,
    /// The verdict this rule alone would give.
    pub verdict: Verdict,
    /// Descriptor value.
    pub addr: Option<String>,
    /// Chunk base.
    pub frame: Option<String>,
    /// Timestamp text.
    pub ts: String,
    /// Nanoseconds.
    pub ts_ns: Option<u64>,
    /// Line number.
    pub line: u64,
    /// CPUs.
    pub cpus: Vec<u32>,
    /// What this rule saw.
    pub explanation: String,
}

/// One event in a finding's (or history's) timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// Line number.
    pub line: u64,
    /// CPU.
    pub cpu: u32,
    /// Timestamp text.
    pub ts: String,
    /// Nanoseconds.
    pub ts_ns: Option<u64>,
    /// Task name and pid as printed (`flowtrackd-p9zw-209120`).
    pub task: String,
    /// The event name (`tracing_mark_write`, `xsk_flush`, ...).
    pub event: String,
    /// The body after `EVENT: `.
    pub body: String,
    /// The line as written (invalid UTF-8 replaced).
    pub raw: String,
    /// The main frame (chunk base, hex) the event touches, if any.
    pub frame: Option<String>,
    /// True for the events the finding is about.
    pub highlighted: bool,
}

/// A timestamp reference.
#[derive(Debug, Clone, Serialize)]
pub struct TsRef {
    /// Timestamp text.
    pub ts: String,
    /// Nanoseconds.
    pub ts_ns: Option<u64>,
    /// Line number.
    pub line: u64,
}

/// Per-CPU coverage.
#[derive(Debug, Clone, Serialize)]
pub struct CpuSummary {
    /// CPU number.
    pub cpu: u32,
    /// Events on this CPU.
    pub events: u64,
    /// First entry.
    pub first: TsRef,
    /// Last entry.
    pub last: TsRef,
    /// A `##### CPU N buffer started ####` line was seen (the buffer wrapped).
    pub buffer_started: bool,
}

/// How frames were compared.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkInfo {
    /// `aligned` (mask by chunk) or `unaligned` (low 48 bits).
    pub mode: &'static str,
    /// Chunk size (hex) in aligned mode.
    pub size: Option<String>,
    /// Where it came from: `option`, `umem`, `inferred`, `default`.
    pub source: &'static str,
    /// Distinct addresses the inference looked at.
    pub samples: u64,
    /// One sentence for humans.
    pub note: String,
}

/// The probe backend header, when the trace has one.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeInfo {
    /// `tracepoint`, `kprobe`, `tracefs`, ... or `perf-probe` for seed-style events.
    pub backend: String,
    /// Kernel release, when given.
    pub kernel: Option<String>,
    /// `exact`, `inferred`, `none`.
    pub flush: crate::parse::FlushMode,
}

/// One socket seen in the trace.
#[derive(Debug, Clone, Serialize)]
pub struct SocketSummary {
    /// Key or label.
    pub socket: String,
    /// Kernel `xs` pointers joined to it.
    pub xs: Vec<String>,
    /// App RX descriptors read.
    pub rx: u64,
    /// Kernel receives.
    pub krx: u64,
}

/// Counts and context for the whole trace.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Overall verdict.
    pub verdict: OverallVerdict,
    /// Number of findings (root causes).
    pub findings: u64,
    /// Lines read.
    pub lines: u64,
    /// Entries parsed.
    pub events: u64,
    /// Lines that could not be parsed.
    pub lines_skipped: u64,
    /// The first few skipped line numbers.
    pub skipped_lines: Vec<u64>,
    /// When every CPU's buffer had started: nothing before it is judged.
    pub complete_from: Option<TsRef>,
    /// Anomalies seen before `complete_from` (unknown past), not judged.
    pub unjudged_before_complete: u64,
    /// Per-CPU first/last timestamps.
    pub cpus: Vec<CpuSummary>,
    /// Out-of-order RX that the kernel's free-list recycling explains.
    pub recycled_reorders: u64,
    /// How addresses were compared.
    pub chunk: ChunkInfo,
    /// The probe header, when present.
    pub backend: Option<ProbeInfo>,
    /// Sockets.
    pub sockets: Vec<SocketSummary>,
    /// Distinct frames seen.
    pub frames: u64,
    /// `entries-in-buffer/entries-written` from the header.
    pub entries_in_buffer: Option<u64>,
    /// Entries ever written (more than in buffer: the buffers wrapped).
    pub entries_written: Option<u64>,
    /// Events reported lost by trace_pipe/trace-cmd.
    pub lost_events: u64,
    /// Notes about what this trace can and cannot prove.
    pub notes: Vec<String>,
    /// Filters (`--socket`, `--cpus`, ...): which applied and what they
    /// left out; absent without filters (`crate::filter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<crate::filter::FilterSummary>,
}

/// `--history ADDR`: one descriptor's life.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// The address asked for.
    pub addr: String,
    /// Its chunk base.
    pub frame: String,
    /// Every event touching the frame, in trace order (capped).
    pub events: Vec<TimelineEntry>,
    /// Events left out past the cap.
    pub omitted: u64,
}
