//! Configuration and report types, the same whether the recorder is on or off.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// `XDP_PKT_CONTD`: this descriptor's packet continues in the next descriptor.
pub const XDP_PKT_CONTD: u32 = 1;

/// Bit where unaligned mode keeps a descriptor's offset (`XSK_UNALIGNED_BUF_OFFSET_SHIFT`).
pub const UNALIGNED_OFFSET_SHIFT: u32 = 48;

/// Mask of the base address in unaligned mode (`XSK_UNALIGNED_BUF_ADDR_MASK`).
pub const UNALIGNED_ADDR_MASK: u64 = (1 << UNALIGNED_OFFSET_SHIFT) - 1;

/// The poison value of the seed story, written back into consumed RX slots.
pub use xskdbg_format::DEFAULT_POISON;

/// One RX/TX ring descriptor, laid out like the kernel's `struct xdp_desc`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XdpDesc {
    /// Raw address as it sits in the ring (unaligned mode: offset in bits 48..63).
    pub addr: u64,
    /// Packet (fragment) length.
    pub len: u32,
    /// Option bits; [`XDP_PKT_CONTD`] marks a fragment that is not the last.
    pub options: u32,
}

impl XdpDesc {
    /// A descriptor without options.
    pub const fn new(addr: u64, len: u32) -> XdpDesc {
        XdpDesc {
            addr,
            len,
            options: 0,
        }
    }
}

/// How the UMEM is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrMode {
    /// Frames are `chunk_size`-aligned; addresses inside a chunk name the chunk.
    Aligned,
    /// `XDP_UMEM_UNALIGNED_CHUNK_FLAG`: the low 48 bits are the buffer's base,
    /// bits 48..63 an offset the kernel adds.
    Unaligned,
}

/// A UMEM as the application registered it.
#[derive(Debug, Clone)]
pub struct UmemConfig {
    /// Size of the UMEM area in bytes.
    pub size: u64,
    /// Frame (chunk) size in bytes.
    pub chunk_size: u32,
    /// Aligned or unaligned chunks.
    pub mode: AddrMode,
    /// Headroom the app asked for (informational, written to the `umem` line).
    pub headroom: u32,
    /// The value the app writes into consumed RX slots; an RX descriptor
    /// carrying it is a slot the kernel exposed before writing it.
    pub poison: Option<u64>,
}

impl UmemConfig {
    /// An aligned UMEM of `frames` frames of `chunk_size` bytes, no poison.
    pub fn aligned(frames: u32, chunk_size: u32) -> UmemConfig {
        UmemConfig {
            size: u64::from(frames) * u64::from(chunk_size),
            chunk_size,
            mode: AddrMode::Aligned,
            headroom: 0,
            poison: None,
        }
    }

    /// An unaligned UMEM of `frames` frames of `chunk_size` bytes, no poison.
    pub fn unaligned(frames: u32, chunk_size: u32) -> UmemConfig {
        UmemConfig {
            mode: AddrMode::Unaligned,
            ..UmemConfig::aligned(frames, chunk_size)
        }
    }

    /// The same configuration with a poison value.
    pub fn with_poison(mut self, poison: u64) -> UmemConfig {
        self.poison = Some(poison);
        self
    }
}

/// Identity of a socket or a buffer pool's device queue, the `sk=` of
/// every line: `(network namespace cookie, ifindex, queue id)`.
pub use xskdbg_format::SockKey;

/// A buffer pool: the FILL + COMPLETION pair bound to one device queue.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Device queue the pool is bound to.
    pub key: SockKey,
    /// FILL ring size (entries).
    pub fill_size: u32,
    /// COMPLETION ring size (entries).
    pub comp_size: u32,
}

impl PoolConfig {
    /// A pool on `key` with the default ring sizes (2048).
    pub fn new(key: SockKey) -> PoolConfig {
        PoolConfig {
            key,
            fill_size: 2048,
            comp_size: 2048,
        }
    }
}

/// An `XDP_STATISTICS` snapshot (`struct xdp_statistics`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XdpStats {
    /// Packets dropped for reasons other than invalid descriptors.
    pub rx_dropped: u64,
    /// Invalid descriptors dropped on RX.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors dropped on TX.
    pub tx_invalid_descs: u64,
    /// Packets dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the FILL ring was found empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the TX ring was found empty.
    pub tx_ring_empty_descs: u64,
}

/// Where `XDP_STATISTICS` come from: the socket fd, or anything else in tests.
pub trait StatsSource: Send + Sync {
    /// Read a snapshot now.
    fn read(&self) -> std::io::Result<XdpStats>;
}

/// An AF_XDP socket: its RX + TX rings.
#[derive(Clone)]
pub struct SockConfig {
    /// `(netns cookie, ifindex, queue)` of the socket.
    pub key: SockKey,
    /// A human label such as `ingress q:1`, written on the `sock` line.
    pub label: Option<String>,
    /// The socket's fd: its `XDP_STATISTICS` explain free-list recycling,
    /// and its `SO_COOKIE` is the socket's identity (`sid=`) unless
    /// `cookie` gives one.
    pub fd: Option<i32>,
    /// The socket's identity written as `sid=` on its lines: its
    /// `SO_COOKIE`, read from `fd` when this is `None`. Without either,
    /// lines carry no `sid=` and the analyzer tells sockets that share a
    /// key apart by their ring indexes only.
    pub cookie: Option<u64>,
    /// Overrides `fd` as the statistics source.
    pub stats: Option<Arc<dyn StatsSource>>,
    /// RX ring size (entries).
    pub rx_size: u32,
    /// TX ring size (entries).
    pub tx_size: u32,
    /// Most frames one received packet can span (multi-buffer); one dropped
    /// packet can recycle this many frames.
    pub max_frags: u32,
}

impl fmt::Debug for SockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SockConfig")
            .field("key", &self.key)
            .field("label", &self.label)
            .field("fd", &self.fd)
            .field("cookie", &self.cookie)
            .field("stats", &self.stats.as_ref().map(|_| "custom"))
            .field("rx_size", &self.rx_size)
            .field("tx_size", &self.tx_size)
            .field("max_frags", &self.max_frags)
            .finish()
    }
}

impl SockConfig {
    /// A socket on `key` with default ring sizes (2048), no fd, no label.
    pub fn new(key: SockKey) -> SockConfig {
        SockConfig {
            key,
            label: None,
            fd: None,
            cookie: None,
            stats: None,
            rx_size: 2048,
            tx_size: 2048,
            max_frags: 1,
        }
    }

    /// The same configuration with a label.
    pub fn label(mut self, label: impl Into<String>) -> SockConfig {
        self.label = Some(label.into());
        self
    }

    /// The same configuration with the socket's identity (`sid=`), for a
    /// socket whose fd the recorder is not given (its `SO_COOKIE`).
    pub fn cookie(mut self, cookie: u64) -> SockConfig {
        self.cookie = Some(cookie);
        self
    }

    /// The same configuration with the socket fd (for `XDP_STATISTICS`).
    pub fn fd(mut self, fd: i32) -> SockConfig {
        self.fd = Some(fd);
        self
    }

    /// The same configuration with a custom statistics source.
    pub fn stats(mut self, stats: Arc<dyn StatsSource>) -> SockConfig {
        self.stats = Some(stats);
        self
    }
}

/// Who owns a frame, as the recorder tracks it ([`State::valid_from`] is
/// the state machine every ring call is checked against).
pub use xskdbg_format::State;

/// What went wrong; the words are the analyzer's finding kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// A frame moved between states in a way that puts it in two places.
    InvalidTransition,
    /// A frame entered a state it was already in (twice on FILL, twice held...).
    DuplicateInFlight,
    /// RX did not return FILL order (per pool) or COMPLETION did not return
    /// TX order (per socket), and free-list recycling does not explain it.
    FifoOrder,
    /// An RX descriptor carried the poison value: the kernel exposed a slot
    /// before writing it.
    PoisonedDescriptor,
    /// A frame came back through a pool other than the one it was given to.
    WrongPool,
    /// An address outside the UMEM.
    AddressOutOfRange,
    /// The fragments of one multi-buffer packet were split between threads
    /// or interleaved with another packet.
    MultibufferSplit,
    /// A frame came out of RX (or COMPLETION) that the recorder never saw
    /// go in: the FILL (TX) that gave it to the kernel was not recorded,
    /// often the initial FILL. The recording is incomplete, not the kernel
    /// wrong.
    NotRecorded,
    /// A ring index that does not continue the previous batch, ends past
    /// the producer the app saw, or lies more than a ring behind it: a
    /// masked index passed where the free-running counter belongs, or a
    /// batch recorded twice or not at all.
    RingIndex,
    /// An all-zero descriptor read from an RX ring whose every slot was
    /// poisoned before the first FILL: it cannot come from the ring (a
    /// contiguous read past the ring's end at the wrap).
    ReadOutsideRing,
}

impl ViolationKind {
    /// The `kind=` word.
    pub const fn as_str(self) -> &'static str {
        match self {
            ViolationKind::InvalidTransition => "invalid_transition",
            ViolationKind::DuplicateInFlight => "duplicate_in_flight",
            ViolationKind::FifoOrder => "fifo_order",
            ViolationKind::PoisonedDescriptor => "poisoned_descriptor",
            ViolationKind::WrongPool => "wrong_pool",
            ViolationKind::AddressOutOfRange => "address_out_of_range",
            ViolationKind::MultibufferSplit => "multibuffer_split",
            ViolationKind::NotRecorded => "not_recorded",
            ViolationKind::RingIndex => "ring_index",
            ViolationKind::ReadOutsideRing => "read_outside_ring",
        }
    }

    /// Whether this kind says the recording (the app's calls to the
    /// recorder) is wrong or incomplete, rather than the rings' use.
    pub const fn is_instrumentation(self) -> bool {
        matches!(
            self,
            ViolationKind::NotRecorded | ViolationKind::RingIndex | ViolationKind::ReadOutsideRing
        )
    }
}

/// One violation caught in-process.
#[derive(Debug, Clone)]
pub struct Violation {
    /// What went wrong.
    pub kind: ViolationKind,
    /// The raw descriptor address.
    pub addr: u64,
    /// The frame it names (chunk base, or the low 48 bits when unaligned).
    pub frame: u64,
    /// State before.
    pub from: State,
    /// State asked for.
    pub to: State,
    /// Socket involved.
    pub sk: Option<SockKey>,
    /// Pool involved.
    pub pool: Option<u32>,
    /// For FIFO violations: the frame that should have come.
    pub expected: Option<u64>,
    /// For FIFO violations: what followed `expected` in the FIFO (bounded).
    pub remaining: Vec<u64>,
    /// How many FIFO entries were left out of `remaining`.
    pub more: usize,
    /// The socket's label.
    pub label: Option<String>,
    /// The line written to the sink.
    pub line: String,
    /// The offending thread's stack, symbolized (feature `stacks`).
    pub stack: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.label {
            write!(f, "{l} ")?;
        }
        match self.kind {
            ViolationKind::InvalidTransition | ViolationKind::DuplicateInFlight => write!(
                f,
                "descriptor {:#x} (frame {:#x}) transitioned from {} to {}",
                self.addr,
                self.frame,
                self.from.title(),
                self.to.title()
            )?,
            ViolationKind::FifoOrder => {
                write!(
                    f,
                    "descriptor {:#x} {} -> {}: expected {:#x} remaining: [",
                    self.addr,
                    self.from.title(),
                    self.to.title(),
                    self.expected.unwrap_or(0)
                )?;
                for (i, r) in self.remaining.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{r:x}")?;
                }
                if self.more > 0 {
                    write!(f, ", … {} more", self.more)?;
                }
                f.write_str("]")?;
            }
            ViolationKind::NotRecorded => write!(
                f,
                "instrumentation: descriptor {:#x} (frame {:#x}) came out of {} but its {} was never recorded: \
                 record every batch you put on {}, the first FILL included, before you submit it",
                self.addr,
                self.frame,
                self.to.title(),
                if self.to == State::Comp { "TX" } else { "FILL" },
                if self.to == State::Comp { "TX" } else { "FILL" },
            )?,
            ViolationKind::RingIndex => write!(
                f,
                "instrumentation: the {} ring index does not fit ({}): pass the free-running counter \
                 libxdp hands out (the idx of xsk_ring_*__peek/__reserve), never `idx & mask`, and \
                 record each batch exactly once",
                self.to.title(),
                self.line
                    .split(' ')
                    .filter(|w| ["why=", "idx=", "next=", "prod=", "n="]
                        .iter()
                        .any(|k| w.starts_with(k)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )?,
            ViolationKind::ReadOutsideRing => write!(
                f,
                "instrumentation: an all-zero descriptor was read from an RX ring poisoned before the first \
                 FILL, so not from the ring: the batch was read as one contiguous array past the ring's end. \
                 Use the ring-aware calls (xskdbg_rx_ring, CheckedRx) or copy each descriptor with its \
                 masked index"
            )?,
            k => write!(
                f,
                "{}: descriptor {:#x} (frame {:#x}) {} -> {}",
                k.as_str(),
                self.addr,
                self.frame,
                self.from.title(),
                self.to.title()
            )?,
        }
        if let Some(sk) = self.sk {
            write!(f, " (sk={sk})")?;
        }
        Ok(())
    }
}

/// What the recorder does after writing a violation and freezing the buffer.
#[derive(Clone, Default)]
pub enum Policy {
    /// Panic (the seed story's choice). Across the C API this aborts.
    #[default]
    Panic,
    /// Print the violation to stderr and continue.
    Log,
    /// Call this function and continue.
    Callback(Arc<dyn Fn(&Violation) + Send + Sync>),
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Panic => f.write_str("Panic"),
            Policy::Log => f.write_str("Log"),
            Policy::Callback(_) => f.write_str("Callback"),
        }
    }
}

/// Where the recorder writes its lines.
#[derive(Debug, Clone, Default)]
pub enum SinkConfig {
    /// Nowhere: checks only.
    #[default]
    Null,
    /// An in-memory ring of the last `events` lines.
    Memory {
        /// How many lines to keep.
        events: usize,
    },
    /// `trace_marker` of the top-level buffer (`instance: None`) or of a
    /// named, existing instance, on the tracefs found at the usual places.
    TraceMarker {
        /// Instance name.
        instance: Option<String>,
    },
    /// `trace_marker` of a buffer the caller already has (an instance it
    /// created, or a fake tracefs in tests).
    Buffer(xskdbg_tracefs::Buffer),
}

/// Where the memory ring goes when a violation happens.
#[derive(Debug, Clone, Default)]
pub enum DumpTarget {
    /// Keep it in memory only ([`crate::Recorder::dump`]).
    None,
    /// Print it to stderr (the default).
    #[default]
    Stderr,
    /// Write it to this file (atomically).
    File(PathBuf),
}

/// How to build a [`crate::Recorder`].
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Where lines go.
    pub sink: SinkConfig,
    /// What to do on a violation.
    pub policy: Policy,
    /// Where the memory ring is dumped on a violation (memory sink only).
    pub dump: DumpTarget,
    /// Freeze the buffer (`tracing_on` = 0) on the first violation.
    pub freeze: bool,
    /// Capture and symbolize the offending thread's stack (feature `stacks`).
    pub stacks: bool,
    /// Turn a trace_marker sink's buffer back on when it is found frozen
    /// (`tracing_on` = 0, left so by an earlier run's violation). Off: the
    /// recorder says so on stderr and writes nothing.
    pub rearm: bool,
    /// How long tracing goes on after the first violation before the freeze.
    pub post_trigger: PostTrigger,
}

/// The post-trigger window: after the first violation the recorder keeps
/// writing for `batches` more lines (ring calls) or `micros` microseconds,
/// whichever ends first, then freezes (like a logic analyzer's
/// post-trigger). The first sign of a fault is often ambiguous (a
/// completion out of FIFO order) and the decisive one comes a batch later
/// (the same frame completed again); an immediate freeze cuts it off.
/// `XSKDBG_POST_TRIGGER=BATCHES:MICROS` (decimal) in the environment
/// overrides the configured window (`xskdbg record --post-trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostTrigger {
    /// Lines written after the violation before the freeze.
    pub batches: u32,
    /// Microseconds after the violation before the freeze.
    pub micros: u64,
}

impl PostTrigger {
    /// Freeze right at the violation.
    pub const NONE: PostTrigger = PostTrigger {
        batches: 0,
        micros: 0,
    };
    /// The default: 8 batches or 2 ms.
    pub const DEFAULT: PostTrigger = PostTrigger {
        batches: 8,
        micros: 2000,
    };
    /// The environment variable that overrides the window.
    pub const ENV: &'static str = "XSKDBG_POST_TRIGGER";

    /// `BATCHES:MICROS` (decimal), as [`PostTrigger::ENV`] and the command
    /// line take it.
    pub fn parse(s: &str) -> Option<PostTrigger> {
        let (b, t) = s.trim().split_once(':')?;
        Some(PostTrigger {
            batches: b.trim().parse().ok()?,
            micros: t.trim().parse().ok()?,
        })
    }

    /// [`PostTrigger::parse`] with an error that says what is wanted, for
    /// `--post-trigger` and [`PostTrigger::ENV`]: the caller names the
    /// option in front of it.
    pub fn parse_spec(s: &str) -> Result<PostTrigger, String> {
        PostTrigger::parse(s).ok_or_else(|| {
            format!(
                "{s:?} is not LINES:MICROS: give two decimal numbers, e.g. 8:2000 \
                 (8 more lines or 2000 us after the first violation, whichever ends first; \
                 the default), or 0:0 to freeze at the violation"
            )
        })
    }

    /// Whether the freeze comes at the violation.
    pub fn is_none(&self) -> bool {
        self.batches == 0 || self.micros == 0
    }
}

/// `BATCHES:MICROS` in decimal, the form [`PostTrigger::parse`] reads back
/// (what `xskdbg record` puts in [`PostTrigger::ENV`]).
impl std::fmt::Display for PostTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.batches, self.micros)
    }
}

impl Default for PostTrigger {
    fn default() -> Self {
        PostTrigger::DEFAULT
    }
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            sink: SinkConfig::Null,
            policy: Policy::Panic,
            dump: DumpTarget::Stderr,
            freeze: true,
            stacks: false,
            rearm: false,
            post_trigger: PostTrigger::DEFAULT,
        }
    }
}

impl RecorderConfig {
    /// A configuration with this sink and the default policy (panic).
    pub fn new(sink: SinkConfig) -> RecorderConfig {
        RecorderConfig {
            sink,
            ..RecorderConfig::default()
        }
    }

    /// The same configuration with another policy.
    pub fn policy(mut self, policy: Policy) -> RecorderConfig {
        self.policy = policy;
        self
    }

    /// The same configuration with another post-trigger window
    /// ([`PostTrigger::NONE`] freezes at the violation).
    pub fn post_trigger(mut self, window: PostTrigger) -> RecorderConfig {
        self.post_trigger = window;
        self
    }

    /// The same configuration re-arming a frozen buffer ([`RecorderConfig::rearm`]).
    pub fn rearm(mut self, rearm: bool) -> RecorderConfig {
        self.rearm = rearm;
        self
    }
}

/// Errors of recorder setup. Checks never return errors: they report
/// violations through the policy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// tracefs could not be used; the inner error names the path and the fix.
    #[error("recorder sink: {0}")]
    TraceFs(#[from] xskdbg_tracefs::Error),
    /// A configuration value is unusable.
    #[error("invalid recorder configuration: {0}")]
    Config(String),
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod post_trigger_tests {
    use super::PostTrigger;

    #[test]
    fn specs_parse_print_and_refuse_with_the_fix() {
        assert_eq!(
            PostTrigger::parse("8:2000"),
            Some(PostTrigger::DEFAULT),
            "the default's own spelling"
        );
        assert_eq!(PostTrigger::parse(" 0:0 "), Some(PostTrigger::NONE));
        assert_eq!(PostTrigger::DEFAULT.to_string(), "8:2000");
        let w = PostTrigger {
            batches: u32::MAX,
            micros: u64::MAX,
        };
        assert_eq!(PostTrigger::parse(&w.to_string()), Some(w));
        for bad in [
            "",
            "8",
            "8:",
            ":2000",
            "-1:5",
            "8:2ms",
            "4294967296:1",
            "a:b",
            "1:2:3",
        ] {
            let e = PostTrigger::parse_spec(bad).unwrap_err();
            assert!(
                e.contains("LINES:MICROS") && e.contains("0:0"),
                "{bad}: {e}"
            );
        }
        // Either bound at 0 ends the window before it starts.
        assert!(PostTrigger::NONE.is_none());
        assert!(PostTrigger::parse("8:0").unwrap().is_none());
        assert!(PostTrigger::parse("0:2000").unwrap().is_none());
        assert!(!PostTrigger::DEFAULT.is_none());
    }
}
