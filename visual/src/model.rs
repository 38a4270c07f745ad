//! What the HTML and Perfetto views share: how one trace entry is drawn.
//!
//! [`classify`] turns a decoded [`Op`] into a [`Class`]: the kind of mark
//! ([`Mark`]: a kernel receive, flush, transmit, an application ring
//! operation, ...), a short label, the socket it belongs to ([`SockId`]) and
//! the descriptor addresses it moves into a new state. Descriptor lifelines
//! are derived from those state changes: the analyzer's report carries the
//! events around each finding, not per-descriptor state slices, so the views
//! replay the events themselves.
//!
//! [`Mapping`] maps descriptor addresses to frames (chunk bases) exactly as
//! the report's `summary.chunk` says the analyzer did, and [`Sockets`] joins
//! kernel socket pointers (`xs`) to the socket names of the report.

use std::collections::HashMap;
use std::fmt::Write as _;

use xskdbg_analyzer::parse::{AppOp, KernelOp, RingState, SeedOp};
use xskdbg_analyzer::{Op, Report};

/// The kind of mark an entry gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The kernel put a frame on a socket's RX ring (`krx`, `__xsk_rcv_zc`).
    Receive,
    /// The kernel published the RX producer index (`kflush`, `xsk_flush`).
    Flush,
    /// The kernel took a frame from TX to transmit it (`ktx`, `xp_raw_get_data`).
    Transmit,
    /// The kernel produced completions (`kcomp`).
    Complete,
    /// The kernel finished writing an RX slot (`krxdone`).
    RxDone,
    /// A NAPI poll ended (`kpoll`, `napi_poll`).
    Poll,
    /// An application ring operation (FILL, RX, TX, COMP, hold, free; seed transitions).
    App,
    /// A violation caught in-process by the application (`violation`, seed `expected ...`).
    Violation,
    /// Anything else (declarations, unknown lines): context only.
    Other,
}

impl Mark {
    /// CSS class / short name.
    pub fn name(self) -> &'static str {
        match self {
            Mark::Receive => "recv",
            Mark::Flush => "flush",
            Mark::Transmit => "xmit",
            Mark::Complete => "kcomp",
            Mark::RxDone => "rxdone",
            Mark::Poll => "poll",
            Mark::App => "app",
            Mark::Violation => "viol",
            Mark::Other => "other",
        }
    }

    /// True for the kernel's per-socket producer events the socket lane shows.
    pub fn is_socket_kernel_event(self) -> bool {
        matches!(
            self,
            Mark::Receive | Mark::Flush | Mark::Transmit | Mark::Complete | Mark::RxDone
        )
    }
}

/// Which socket an entry belongs to, as the entry names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SockId {
    /// The kernel's `struct xdp_sock` pointer.
    Xs(u64),
    /// A socket key `netns:ifindex:queue` (hex, as the trace writes it).
    Key(String),
    /// A free-form label (`ingress q:1`).
    Label(String),
}

impl std::fmt::Display for SockId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SockId::Xs(x) => write!(f, "xs {x:#x}"),
            SockId::Key(k) => f.write_str(k),
            SockId::Label(l) => f.write_str(l),
        }
    }
}

/// Descriptor states a lifeline goes through (the analyzer's [`RingState`]).
pub type State = RingState;

/// How one entry is drawn.
#[derive(Debug, Clone)]
pub struct Class {
    /// Mark kind.
    pub mark: Mark,
    /// Short label (`recv 0x1000900`, `FILL→RX 0xff0900`, `flush`).
    pub label: String,
    /// The socket, when the entry names one.
    pub sock: Option<SockId>,
    /// Descriptor addresses the entry touches: `Some(state)` when it moves the
    /// descriptor into that state, `None` when it only mentions it (for
    /// example the `expected` address of a FIFO check).
    pub moves: Vec<(u64, Option<State>)>,
}

/// At most this many addresses of one batch are listed in a label.
const LABEL_ADDRS: usize = 2;

fn addrs_label(out: &mut String, it: impl Iterator<Item = u64>) -> usize {
    let mut n = 0;
    for a in it {
        if n < LABEL_ADDRS {
            let _ = write!(out, " {a:#x}");
        }
        n += 1;
    }
    if n > LABEL_ADDRS {
        let _ = write!(out, " +{}", n - LABEL_ADDRS);
    }
    n
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Classify one decoded operation (`name` is the ftrace event name, used for
/// entries the analyzer does not decode).
pub fn classify(op: &Op<'_>, name: &[u8]) -> Class {
    let mut c = Class {
        mark: Mark::Other,
        label: String::new(),
        sock: None,
        moves: Vec::new(),
    };
    let sk_of =
        |sk: &Option<xskdbg_analyzer::parse::SockKey>| sk.map(|k| SockId::Key(k.to_string()));
    match op {
        Op::Kernel(k) => match k {
            KernelOp::Rx { xs, addr, slot, .. } => {
                c.mark = Mark::Receive;
                c.label = format!("recv {addr:#x}");
                if let Some(s) = slot {
                    let _ = write!(c.label, " slot {s:#x}");
                }
                c.sock = Some(SockId::Xs(*xs));
                c.moves.push((*addr, Some(RingState::Rx)));
            }
            KernelOp::Flush { xs, prod, .. } => {
                c.mark = Mark::Flush;
                c.label = match prod {
                    Some(p) => format!("flush prod {p:#x}"),
                    None => "flush".into(),
                };
                c.sock = Some(SockId::Xs(*xs));
            }
            KernelOp::Tx { xs, sk, addr } => {
                c.mark = Mark::Transmit;
                c.label = format!("xmit {addr:#x}");
                c.sock = xs.map(SockId::Xs).or_else(|| sk_of(sk));
                c.moves.push((*addr, Some(RingState::Tx)));
            }
            KernelOp::Comp {
                xs, sk, n, addrs, ..
            } => {
                c.mark = Mark::Complete;
                c.label = "kcomp".into();
                let listed = addrs_label(&mut c.label, addrs.iter().map(|d| d.addr));
                if listed == 0 {
                    if let Some(n) = n {
                        let _ = write!(c.label, " n={n}");
                    }
                }
                c.sock = xs.map(SockId::Xs).or_else(|| sk_of(sk));
                c.moves
                    .extend(addrs.iter().map(|d| (d.addr, Some(RingState::Comp))));
            }
            KernelOp::RxDone { xs, slot } => {
                c.mark = Mark::RxDone;
                c.label = format!("rx slot {slot:#x} written");
                c.sock = Some(SockId::Xs(*xs));
            }
            KernelOp::Poll { work, .. } => {
                c.mark = Mark::Poll;
                c.label = match work {
                    Some(w) => format!("napi poll work {w}"),
                    None => "napi poll".into(),
                };
            }
            KernelOp::Probe { backend, .. } => {
                c.label = format!("probe {}", lossy(backend));
            }
            KernelOp::RxOutcome { xs, ret, .. } => {
                c.label = match ret {
                    0 => "rx attempt reserved".into(),
                    r => format!("rx attempt failed ({r})"),
                };
                c.sock = xs.map(SockId::Xs);
            }
        },
        Op::App(a) => {
            c.mark = Mark::App;
            let (word, list, state) = match a {
                AppOp::Fill { sk, addrs, .. } => {
                    c.sock = sk_of(sk);
                    (
                        "fill",
                        Some(addrs.iter().map(|d| d.addr).collect::<Vec<_>>()),
                        Some(RingState::Fill),
                    )
                }
                AppOp::Rx { sk, descs, .. } => {
                    c.sock = Some(SockId::Key(sk.to_string()));
                    (
                        "rx",
                        Some(descs.iter().map(|d| d.addr).collect()),
                        Some(RingState::Rx),
                    )
                }
                AppOp::Tx { sk, descs, .. } => {
                    c.sock = Some(SockId::Key(sk.to_string()));
                    (
                        "tx",
                        Some(descs.iter().map(|d| d.addr).collect()),
                        Some(RingState::Tx),
                    )
                }
                AppOp::Comp { sk, addrs, .. } => {
                    c.sock = sk_of(sk);
                    (
                        "comp",
                        Some(addrs.iter().map(|d| d.addr).collect()),
                        Some(RingState::Comp),
                    )
                }
                AppOp::Hold { addrs, .. } => (
                    "hold",
                    Some(addrs.iter().map(|d| d.addr).collect()),
                    Some(RingState::Held),
                ),
                AppOp::Free { addrs, .. } => (
                    "free",
                    Some(addrs.iter().map(|d| d.addr).collect()),
                    Some(RingState::Free),
                ),
                AppOp::Violation {
                    kind,
                    sk,
                    addr,
                    to,
                    expected,
                    ..
                } => {
                    c.mark = Mark::Violation;
                    c.sock = sk_of(sk);
                    c.label = format!("violation {} {addr:#x}", lossy(kind));
                    c.moves.push((*addr, *to));
                    if let Some(e) = expected {
                        let _ = write!(c.label, " expected {e:#x}");
                        c.moves.push((*e, None));
                    }
                    ("", None, None)
                }
                AppOp::Umem { .. } => ("umem", None, None),
                AppOp::Audit { .. } => ("audit", None, None),
                AppOp::Pool { .. } => ("pool", None, None),
                AppOp::Sock { sk, label, .. } => {
                    c.sock = Some(SockId::Key(sk.to_string()));
                    c.label = format!("sock {sk}");
                    if let Some(l) = label {
                        let _ = write!(c.label, " {}", lossy(l));
                    }
                    ("", None, None)
                }
                AppOp::Stats { sk, .. } => {
                    c.sock = sk_of(sk);
                    ("stats", None, None)
                }
                AppOp::Other { op } => {
                    c.label = lossy(op);
                    ("", None, None)
                }
            };
            if !word.is_empty() {
                c.label = word.to_string();
            }
            if let Some(list) = list {
                addrs_label(&mut c.label, list.iter().copied());
                c.moves.extend(list.into_iter().map(|a| (a, state)));
            } else if matches!(
                a,
                AppOp::Umem { .. } | AppOp::Pool { .. } | AppOp::Stats { .. } | AppOp::Other { .. }
            ) {
                c.mark = Mark::Other;
            }
        }
        Op::Seed(s) => match s {
            SeedOp::Transition {
                label,
                addr,
                from,
                to,
                expected,
                ..
            } => {
                c.mark = if expected.is_some() {
                    Mark::Violation
                } else {
                    Mark::App
                };
                c.label = format!("{}→{} {addr:#x}", from.name(), to.name());
                c.sock = label.map(|l| SockId::Label(lossy(l)));
                c.moves.push((*addr, Some(*to)));
                if let Some(e) = expected {
                    let _ = write!(c.label, " expected {e:#x}");
                    c.moves.push((*e, None));
                }
            }
            SeedOp::Note { addr } => {
                c.mark = Mark::App;
                c.label = format!("note {addr:#x}");
                c.moves.push((*addr, None));
            }
        },
        Op::Unknown => {
            c.label = lossy(name);
        }
    }
    c
}

/// The name of the state a descriptor enters through an entry: the kernel's
/// receive and completion put it on a ring the application has not read yet
/// (`RX ring`, `COMP ring`); the application's reads make it `RX`, `COMP`.
pub fn state_name(mark: Mark, st: State) -> &'static str {
    match (mark, st) {
        (Mark::Receive, State::Rx) => "RX ring",
        (Mark::Complete, State::Comp) => "COMP ring",
        _ => st.name(),
    }
}

/// Descriptor address → frame (chunk base), as the analyzer compared them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// Aligned mode: mask by the chunk size (a power of two).
    Aligned(u64),
    /// Unaligned mode: the low 48 bits.
    Unaligned,
}

const LOW48: u64 = (1 << 48) - 1;

impl Mapping {
    /// The mapping the report's `summary.chunk` describes (aligned 2 KiB when
    /// it cannot be read).
    pub fn from_report(r: &Report) -> Mapping {
        if r.summary.chunk.mode == "unaligned" {
            return Mapping::Unaligned;
        }
        let size = r
            .summary
            .chunk
            .size
            .as_deref()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            .filter(|s| s.is_power_of_two())
            .unwrap_or(2048);
        Mapping::Aligned(size)
    }

    /// The frame of a descriptor address.
    pub fn frame(self, addr: u64) -> u64 {
        match self {
            Mapping::Aligned(chunk) => addr & !(chunk - 1) & LOW48,
            Mapping::Unaligned => addr & LOW48,
        }
    }
}

/// Parse `0x1a2b` / `1a2b` hex as the report writes addresses.
pub fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

/// Socket names of a report, to join kernel `xs` pointers to the socket the
/// application names.
#[derive(Debug, Clone, Default)]
pub struct Sockets {
    by_xs: HashMap<u64, String>,
    /// Socket keys (`1:5:1`) to the label their `sock` line declared.
    by_key: HashMap<String, String>,
}

impl Sockets {
    /// From `summary.sockets`.
    pub fn from_report(r: &Report) -> Sockets {
        let mut by_xs = HashMap::new();
        for s in &r.summary.sockets {
            for x in &s.xs {
                if let Some(v) = parse_hex(x) {
                    by_xs.insert(v, s.socket.clone());
                }
            }
        }
        Sockets {
            by_xs,
            by_key: HashMap::new(),
        }
    }

    /// Learn a key's label from a `sock` declaration, so that entries naming
    /// the socket by key and by label land on one lane (the report's socket
    /// names are labels when the trace declared them).
    pub fn learn(&mut self, op: &Op<'_>) {
        if let Op::App(AppOp::Sock {
            sk, label: Some(l), ..
        }) = op
        {
            let key = sk.to_string();
            let label = lossy(l);
            // Kernel pointers joined to the key follow it to the label.
            for v in self.by_xs.values_mut() {
                if *v == key {
                    v.clone_from(&label);
                }
            }
            self.by_key.insert(key, label);
        }
    }

    /// The name to show for a socket id: the report's socket name when the
    /// analyzer joined it, else the id itself.
    pub fn name(&self, id: &SockId) -> String {
        match id {
            SockId::Xs(x) => self.by_xs.get(x).cloned().unwrap_or_else(|| id.to_string()),
            SockId::Key(k) => self.by_key.get(k).cloned().unwrap_or_else(|| k.clone()),
            SockId::Label(k) => k.clone(),
        }
    }

    /// The kernel pointers joined to a socket name.
    pub fn xs_of(&self, name: &str) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .by_xs
            .iter()
            .filter(|(_, n)| *n == name)
            .map(|(x, _)| *x)
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xskdbg_analyzer::parse::{parse_line, Line};

    fn class(s: &str) -> Class {
        match parse_line(1, s.as_bytes()) {
            Line::Event(e) => classify(&e.op, e.name),
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn seed_vocabulary() {
        let c = class("iperf2-1217 [002] d.Z1. 609766.698523: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x9b/0x250) addr=0x1000900 len=0x42 xs=0xffff90fd32693c00 fq=0xffff90fd03d66380");
        assert_eq!(c.mark, Mark::Receive);
        assert_eq!(c.sock, Some(SockId::Xs(0xffff90fd32693c00)));
        assert_eq!(c.moves, vec![(0x1000900, Some(RingState::Rx))]);
        let c = class("f-1 [000] d.Z1. 609766.698528: xsk_flush: (__xsk_map_flush+0x4e/0x180) xs=0xffff90fd32693c00");
        assert_eq!(c.mark, Mark::Flush);
        let c = class("f-1 [000] ..... 609766.698617: tracing_mark_write: ingress q:1 0xdeadbeefdeadbeef FILL -> RX: expected 0x1000900remaining: [fe4100, …,]");
        assert_eq!(c.mark, Mark::Violation);
        assert_eq!(c.sock, Some(SockId::Label("ingress q:1".into())));
        assert_eq!(
            c.moves,
            vec![(0xdeadbeefdeadbeef, Some(RingState::Rx)), (0x1000900, None)]
        );
        assert_eq!(c.label, "FILL→RX 0xdeadbeefdeadbeef expected 0x1000900");
    }

    #[test]
    fn project_batches() {
        let c = class("a-1 [001] ..... 5.000001: tracing_mark_write: xskdbg:1 fill pool=1 n=3 a=1000,1800,2000");
        assert_eq!(c.mark, Mark::App);
        assert_eq!(c.label, "fill 0x1000 0x1800 +1");
        assert_eq!(c.moves.len(), 3);
        assert!(c.moves.iter().all(|m| m.1 == Some(RingState::Fill)));
        let c = class("a-1 [001] ..... 5.000001: tracing_mark_write: xskdbg:1 umem umem=1 size=100000 chunk=800 mode=aligned");
        assert_eq!(c.mark, Mark::Other);
    }

    #[test]
    fn mapping() {
        assert_eq!(Mapping::Aligned(0x800).frame(0x1000900), 0x1000800);
        assert_eq!(Mapping::Unaligned.frame(0x0100_0000_0000_1234), 0x1234);
    }
}
