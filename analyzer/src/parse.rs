//! Decoding one text line of an ftrace trace into a [`Line`].
//!
//! Everything here works on `&[u8]` borrowed from the reader's buffer: no
//! allocation per line. A line is either an [`Event`] (an ftrace entry
//! `TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: BODY`), a [`Meta`] line the
//! analyzer needs (`##### CPU N buffer started ####`, the entries header, lost
//! events), a header/blank line, or a [`Line::Bad`] line that is counted and
//! skipped. The event body is decoded into an [`Op`]: one of the project's own
//! operations (`docs/TRACE-FORMAT.md`), a line of the seed story's free-form
//! vocabulary, a perf-probe style kprobe event, or [`Op::Unknown`] (kept as
//! timeline context, never judged).
//!
//! Speed: parsing runs on its own thread beside the checkers and must keep
//! up with them (hundreds of MB/s). Most lines take fast paths that expect
//! the exact shape ftrace, the probes and the recorder print — the entry's
//! columns (`entry_fast`), the per-packet kernel lines
//! (`canonical_kernel_op`), the batch lines (`canonical_batch_op`), plain
//! list items (`plain_item`) — and scan eight bytes at a time (SWAR, safe
//! code). A fast path answers only when sure and otherwise hands the line to
//! the general code below it, which defines the semantics.
//! `tests/parse_agree.rs` checks every answer against the original, plainly
//! written parser kept in `tests/parse_reference/`.

use memchr::memmem;

/// The version of `docs/TRACE-FORMAT.md` this parser reads (`xskdbg:1 `).
pub const FORMAT_VERSION: u32 = 1;

/// Lines longer than this are skipped without being buffered whole.
pub const MAX_LINE: usize = 64 * 1024;

/// One line of the input, decoded.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "a line lives on the stack one at a time; boxing the event would allocate per line"
)]
pub enum Line<'a> {
    /// An ftrace entry.
    Event(Event<'a>),
    /// A line that is not an entry but carries information the analysis uses.
    Meta {
        /// 1-based line number.
        line: u64,
        /// What it says.
        meta: Meta,
    },
    /// A comment/header line (`# tracer: nop`, trace-cmd preamble) or an empty line.
    Blank {
        /// 1-based line number.
        line: u64,
    },
    /// A line that could not be parsed; the analyzer counts and skips it.
    Bad {
        /// 1-based line number.
        line: u64,
        /// The line's bytes (possibly cut for very long lines).
        raw: &'a [u8],
        /// Why it was rejected.
        reason: BadReason,
    },
}

impl Line<'_> {
    /// The 1-based line number.
    pub fn number(&self) -> u64 {
        match self {
            Line::Event(e) => e.line,
            Line::Meta { line, .. } | Line::Blank { line } | Line::Bad { line, .. } => *line,
        }
    }
}

/// Why a line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BadReason {
    /// Not an ftrace entry and not a known header line.
    NotAnEntry,
    /// Longer than [`MAX_LINE`] bytes.
    TooLong,
    /// A project line (`xskdbg:1 ...`) with a missing or malformed field.
    BadField,
}

impl BadReason {
    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            BadReason::NotAnEntry => "not an ftrace entry",
            BadReason::TooLong => "line longer than 64 KiB",
            BadReason::BadField => "xskdbg line with a missing or malformed field",
        }
    }
}

/// Information lines that are not entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    /// `##### CPU N buffer started ####`: CPU N's ring buffer wrapped; its
    /// history before the next entry on that CPU is lost.
    CpuBufferStarted(u32),
    /// `# entries-in-buffer/entries-written: A/B   #P:N`.
    Entries {
        /// Entries still in the buffers.
        in_buffer: u64,
        /// Entries ever written (more means the buffers wrapped).
        written: u64,
        /// Number of CPUs (`#P:`), when printed.
        cpus: Option<u32>,
    },
    /// `CPU:N [LOST M EVENTS]` (trace_pipe) or trace-cmd's equivalent.
    Lost {
        /// The CPU that lost events.
        cpu: u32,
        /// How many.
        count: u64,
    },
}

/// An entry's timestamp as written, with its numeric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp<'a> {
    /// The text as the trace wrote it (`542812.657026`).
    pub text: &'a [u8],
    /// Nanoseconds when the clock is a time (`secs.frac`); `None` for
    /// counter clocks (`counter`, `x86-tsc`) that print a bare integer.
    pub ns: Option<u64>,
    /// A value that orders entries: the nanoseconds, or the raw counter.
    pub order: u64,
}

/// One ftrace entry: `TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: BODY`.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// 1-based line number in the input.
    pub line: u64,
    /// The whole line without its line ending.
    pub raw: &'a [u8],
    /// Task name (may contain `-` and spaces).
    pub task: &'a [u8],
    /// The PID (digits after the last `-` of `TASK-PID`).
    pub pid: Option<u32>,
    /// The CPU column.
    pub cpu: u32,
    /// The flags column (irqs-off, need-resched, ...), as written.
    pub flags: &'a [u8],
    /// The timestamp.
    pub ts: Timestamp<'a>,
    /// The event name (`tracing_mark_write`, `__xsk_rcv_zc_L7`, ...).
    pub name: &'a [u8],
    /// The body after `EVENT: `.
    pub body: &'a [u8],
    /// The decoded operation.
    pub op: Op<'a>,
}

/// What an entry's body means to the analyzer.
#[derive(Debug, Clone)]
pub enum Op<'a> {
    /// An application operation of the project format (written by the recorder).
    App(AppOp<'a>),
    /// A kernel operation: project `k*` ops or perf-probe kprobe events.
    Kernel(KernelOp<'a>),
    /// The free-form vocabulary of the seed story's traces.
    Seed(SeedOp<'a>),
    /// Anything else: kept as timeline context, never judged.
    Unknown,
}

impl<'a> Op<'a> {
    /// The descriptor list the operation moves, if it moves a list.
    pub fn list(&self) -> Option<AddrList<'a>> {
        match self {
            Op::App(
                AppOp::Fill { addrs, .. }
                | AppOp::Comp { addrs, .. }
                | AppOp::Hold { addrs }
                | AppOp::Free { addrs },
            ) => Some(*addrs),
            Op::App(AppOp::Rx { descs, .. } | AppOp::Tx { descs, .. }) => Some(*descs),
            Op::Kernel(KernelOp::Comp { addrs, .. }) => Some(*addrs),
            _ => None,
        }
    }
}

/// A socket key `sk=<netns_cookie>:<ifindex>:<queue_id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockKey {
    /// Network namespace cookie.
    pub netns: u64,
    /// Interface index inside that namespace.
    pub ifindex: u64,
    /// Queue id.
    pub queue: u64,
}

impl std::fmt::Display for SockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}:{:x}:{:x}", self.netns, self.ifindex, self.queue)
    }
}

/// One descriptor of a project list: `addr[:len[:options]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    /// The raw descriptor address as it sat in the ring.
    pub addr: u64,
    /// Packet length, when written.
    pub len: Option<u64>,
    /// Options field (0 when omitted).
    pub options: u64,
}

/// A comma-separated list of descriptors or addresses, decoded lazily.
///
/// Project lists are `a,b,c` (hex without `0x`, optional `:len[:options]`);
/// seed lists (`remaining: [1dba100, 1627100, …, ]`) have spaces, an ellipsis
/// and may be cut; [`AddrList::iter`] skips anything that is not hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddrList<'a> {
    /// The list text.
    pub text: &'a [u8],
}

impl<'a> AddrList<'a> {
    /// Iterate over the descriptors that parse.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = Desc> + 'a {
        AddrIter { rest: self.text }
    }

    /// Number of entries that parse.
    pub fn count(&self) -> usize {
        self.iter().count()
    }

    /// True when the list shows signs of being cut (`…`, `...`, no closing
    /// bracket in a seed list).
    pub fn truncated(&self) -> bool {
        memmem::find(self.text, "…".as_bytes()).is_some()
            || memmem::find(self.text, b"...").is_some()
    }
}

/// The iterator of [`AddrList::iter`]. Project lists (`1000,1800:4e`) are
/// decoded in one pass over the bytes; an item with anything else in it
/// (spaces, `0x`, `…`, an empty part) goes through [`list_item`], the
/// general rule, so both give the same descriptors.
struct AddrIter<'a> {
    rest: &'a [u8],
}

impl Iterator for AddrIter<'_> {
    type Item = Desc;

    #[inline]
    fn next(&mut self) -> Option<Desc> {
        while !self.rest.is_empty() {
            let s = self.rest;
            if let Some((desc, used)) = plain_item(s) {
                self.rest = &s[used..];
                return Some(desc);
            }
            let end = memchr::memchr(b',', s).unwrap_or(s.len());
            self.rest = s.get(end + 1..).unwrap_or(&[]);
            if let Some(d) = list_item(&s[..end]) {
                return Some(d);
            }
        }
        None
    }
}

/// A list item written plainly, `addr[:len[:options]]` in hex (1 to 16
/// digits each) followed by `,` or the end, decoded eight digits at a time;
/// with the bytes it used (its comma included). `None` for anything else,
/// which [`list_item`] then decides.
#[inline(always)]
fn plain_item(s: &[u8]) -> Option<(Desc, usize)> {
    let mut c = Canon { s, i: 0 };
    let addr = c.hex()?;
    let mut len = None;
    let mut options = 0;
    if c.lit(b":").is_some() {
        len = Some(c.hex()?);
        if c.lit(b":").is_some() {
            options = c.hex()?;
        }
    }
    let used = match s.get(c.i) {
        None => c.i,
        Some(b',') => c.i + 1,
        Some(_) => return None,
    };
    Some((Desc { addr, len, options }, used))
}

/// One list item by the general rule: trimmed, `addr[:len[:options]]`, the
/// address may carry `0x`, parts after the third are ignored; `None` when a
/// part is not hex.
fn list_item(item: &[u8]) -> Option<Desc> {
    let item = trim(item);
    let mut parts = item.split(|&b| b == b':');
    let addr = parse_hex(strip_0x(parts.next()?))?;
    let len = match parts.next() {
        Some(p) => Some(parse_hex(p)?),
        None => None,
    };
    let options = match parts.next() {
        Some(p) => parse_hex(p)?,
        None => 0,
    };
    Some(Desc { addr, len, options })
}

/// Ring/ownership states named by the app (`FILL -> RX`, `from=fill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RingState {
    /// On the FILL ring (kernel owns).
    Fill,
    /// Consumed from RX (app holds it).
    Rx,
    /// On the TX ring (kernel owns).
    Tx,
    /// Consumed from COMPLETION (app holds it).
    Comp,
    /// Held by an application thread.
    Held,
    /// On the application's free list.
    Free,
    /// The writer did not know.
    Unknown,
}

impl RingState {
    /// Parse `FILL`, `Rx`, `comp`, `Completion`, `held`, `free`, ...
    pub fn parse(word: &[u8]) -> Option<RingState> {
        let w = word;
        let eq = |s: &str| w.eq_ignore_ascii_case(s.as_bytes());
        Some(if eq("fill") {
            RingState::Fill
        } else if eq("rx") {
            RingState::Rx
        } else if eq("tx") {
            RingState::Tx
        } else if eq("comp") || eq("completion") || eq("cq") {
            RingState::Comp
        } else if eq("held") || eq("hold") {
            RingState::Held
        } else if eq("free") {
            RingState::Free
        } else if eq("unknown") {
            RingState::Unknown
        } else {
            return None;
        })
    }

    /// Upper-case name as the seed traces print it.
    pub fn name(self) -> &'static str {
        match self {
            RingState::Fill => "FILL",
            RingState::Rx => "RX",
            RingState::Tx => "TX",
            RingState::Comp => "COMP",
            RingState::Held => "HELD",
            RingState::Free => "FREE",
            RingState::Unknown => "UNKNOWN",
        }
    }
}

/// Application operations of the project format (`docs/TRACE-FORMAT.md`).
#[derive(Debug, Clone)]
pub enum AppOp<'a> {
    /// `umem`: declares a UMEM and its chunk size.
    Umem {
        /// UMEM id.
        umem: u64,
        /// Size in bytes.
        size: Option<u64>,
        /// Chunk (frame) size.
        chunk: Option<u64>,
        /// `mode=unaligned`.
        unaligned: bool,
        /// Headroom, when given.
        headroom: Option<u64>,
        /// Poison value the app writes into consumed RX slots.
        poison: Option<u64>,
    },
    /// `pool`: declares a buffer pool (FILL+COMP pair).
    Pool {
        /// Pool id.
        pool: u64,
        /// UMEM id.
        umem: Option<u64>,
        /// Socket whose device/queue the pool is bound to.
        sk: Option<SockKey>,
    },
    /// `sock`: declares a socket and its pool.
    Sock {
        /// Socket key.
        sk: SockKey,
        /// Pool id.
        pool: Option<u64>,
        /// UMEM id.
        umem: Option<u64>,
        /// Optional user label (rest of line).
        label: Option<&'a [u8]>,
    },
    /// `fill`: the app produced these frames on FILL, in order.
    Fill {
        /// Pool id.
        pool: Option<u64>,
        /// Socket, when given.
        sk: Option<SockKey>,
        /// Addresses.
        addrs: AddrList<'a>,
    },
    /// `rx`: the app consumed these descriptors from RX.
    Rx {
        /// Socket key.
        sk: SockKey,
        /// Pool id, when given.
        pool: Option<u64>,
        /// Consumer counter of the first descriptor (unmasked).
        idx: Option<u64>,
        /// Descriptors.
        descs: AddrList<'a>,
    },
    /// `tx`: the app produced these descriptors on TX.
    Tx {
        /// Socket key.
        sk: SockKey,
        /// Producer counter of the first descriptor.
        idx: Option<u64>,
        /// Descriptors.
        descs: AddrList<'a>,
    },
    /// `comp`: the app consumed these frames from COMPLETION.
    Comp {
        /// Pool id.
        pool: Option<u64>,
        /// Socket, when given.
        sk: Option<SockKey>,
        /// Addresses.
        addrs: AddrList<'a>,
    },
    /// `hold`: frames taken from the app's free list.
    Hold {
        /// Addresses.
        addrs: AddrList<'a>,
    },
    /// `free`: frames returned to the app's free list.
    Free {
        /// Addresses.
        addrs: AddrList<'a>,
    },
    /// `stats`: an `XDP_STATISTICS` snapshot.
    Stats {
        /// Socket key.
        sk: Option<SockKey>,
        /// `rx_dropped`.
        rx_dropped: Option<u64>,
        /// `rx_full` (rx_ring_full).
        rx_full: Option<u64>,
    },
    /// `violation`: the recorder caught a violation in-process.
    Violation {
        /// Finding kind name as written.
        kind: &'a [u8],
        /// Socket, when given.
        sk: Option<SockKey>,
        /// Pool, when given.
        pool: Option<u64>,
        /// The descriptor value.
        addr: u64,
        /// `from=` state.
        from: Option<RingState>,
        /// `to=` state.
        to: Option<RingState>,
        /// `expected=` address.
        expected: Option<u64>,
        /// `remaining=` list.
        remaining: AddrList<'a>,
    },
    /// A project op this parser does not know (newer writer): context only.
    Other {
        /// The operation word.
        op: &'a [u8],
    },
}

/// How a frame reached the socket (`krx ... mode=`): the tracepoint backend
/// prints it, because it decides what the producer value at that moment
/// proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RxMode {
    /// `skb`: generic XDP; the receive flushes before the tracepoint fires.
    Skb,
    /// `drv`: native XDP, copy mode; the flush comes later, at the poll's end.
    Drv,
    /// `zc`: native XDP, zero copy; flushed like `drv`.
    Zc,
}

impl RxMode {
    /// `skb`, `drv` or `zc`; `None` for any other word.
    pub fn parse(word: &[u8]) -> Option<RxMode> {
        match word {
            b"skb" => Some(RxMode::Skb),
            b"drv" => Some(RxMode::Drv),
            b"zc" => Some(RxMode::Zc),
            _ => None,
        }
    }
}

/// How the probes saw RX publication (`probe ... flush=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushMode {
    /// `kflush` lines come from the flush itself.
    Exact,
    /// The backend only sees where publication must have happened.
    Inferred,
    /// No flush information.
    None,
}

/// Kernel operations: the project's `k*` ops and perf-probe kprobe events.
#[derive(Debug, Clone)]
pub enum KernelOp<'a> {
    /// `probe`: which backend produced the kernel events.
    Probe {
        /// `backend=`.
        backend: &'a [u8],
        /// `kernel=`.
        kernel: &'a [u8],
        /// `flush=`.
        flush: FlushMode,
    },
    /// The kernel reserved an RX slot for a frame (`krx`, `__xsk_rcv_zc_L7`).
    Rx {
        /// Kernel socket pointer.
        xs: u64,
        /// Socket key, when printed.
        sk: Option<SockKey>,
        /// The descriptor address.
        addr: u64,
        /// Packet length.
        len: Option<u64>,
        /// RX slot (`cached_prod` before the increment, unmasked).
        slot: Option<u64>,
        /// Pool pointer (`kpool=`, or the seed's `fq=` fill queue pointer).
        kpool: Option<u64>,
        /// The ring's producer as the probe read it (`prod=`).
        prod: Option<u64>,
        /// How the frame was received (`mode=`, tracepoint backend).
        mode: Option<RxMode>,
    },
    /// `krxdone`: the slot's addr/len are written.
    RxDone {
        /// Kernel socket pointer.
        xs: u64,
        /// Slot.
        slot: u64,
    },
    /// The kernel published the RX producer (`kflush`, `xsk_flush`).
    Flush {
        /// Kernel socket pointer.
        xs: u64,
        /// Socket key, when printed.
        sk: Option<SockKey>,
        /// Published producer value.
        prod: Option<u64>,
        /// True for a perf-probe on `xsk_flush` itself.
        exact: bool,
    },
    /// The kernel took a frame from TX (`ktx`, `xp_raw_get_data`).
    Tx {
        /// Kernel socket pointer, when printed.
        xs: Option<u64>,
        /// Socket key, when printed.
        sk: Option<SockKey>,
        /// The descriptor address.
        addr: u64,
    },
    /// `kcomp`: the kernel produced completions.
    Comp {
        /// Kernel socket pointer.
        xs: Option<u64>,
        /// Socket key, when printed.
        sk: Option<SockKey>,
        /// Pool pointer.
        kpool: Option<u64>,
        /// Number of completions.
        n: Option<u64>,
        /// Addresses, when printed.
        addrs: AddrList<'a>,
    },
    /// `kpoll` / `napi_poll`: a NAPI poll ended on this CPU.
    Poll {
        /// Work done.
        work: Option<u64>,
        /// Budget.
        budget: Option<u64>,
    },
}

/// The seed story's free-form trace_marker vocabulary.
#[derive(Debug, Clone)]
pub enum SeedOp<'a> {
    /// `ingress q:1 0x16ce900 FILL -> RX[: expected 0x.. remaining: [..]]`.
    Transition {
        /// The socket label before the address (`ingress q:1`), if any.
        label: Option<&'a [u8]>,
        /// The descriptor value.
        addr: u64,
        /// Claimed previous state.
        from: RingState,
        /// New state.
        to: RingState,
        /// `expected 0x..`: the recorder's expected FIFO head.
        expected: Option<u64>,
        /// `remaining: [...]`: the recorder's view of the FIFO.
        remaining: Option<AddrList<'a>>,
    },
    /// `0x16ce900 egress_tx_queue forward`: a note about a descriptor.
    Note {
        /// The descriptor value.
        addr: u64,
    },
}

// ---------------------------------------------------------------------------
// byte helpers

const NBSP: &[u8] = b"\xc2\xa0";

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trim ASCII blanks and UTF-8 no-break spaces (blog copies have them).
pub fn trim(mut s: &[u8]) -> &[u8] {
    loop {
        if let Some((&f, rest)) = s.split_first() {
            if is_ws(f) || f == b'\r' {
                s = rest;
                continue;
            }
        }
        if s.starts_with(NBSP) {
            s = &s[2..];
            continue;
        }
        break;
    }
    loop {
        if let Some((&l, rest)) = s.split_last() {
            if is_ws(l) || l == b'\r' {
                s = rest;
                continue;
            }
        }
        if s.ends_with(NBSP) {
            s = &s[..s.len() - 2];
            continue;
        }
        break;
    }
    s
}

fn strip_0x(s: &[u8]) -> &[u8] {
    if s.len() > 2 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') {
        &s[2..]
    } else {
        s
    }
}

/// Hex digit values by byte; 0xff for bytes that are not hex digits.
const HEX: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Parse lower/upper-case hex without `0x`; `None` when empty, not hex or
/// wider than 64 bits.
pub fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    // One table lookup per digit; a non-digit (0xff) shows in `bad`, checked
    // once at the end instead of branching per byte.
    let mut v: u64 = 0;
    let mut bad = 0u8;
    for &b in s {
        let d = HEX[usize::from(b)];
        bad |= d;
        v = (v << 4) | u64::from(d & 0xf);
    }
    (bad < 16).then_some(v)
}

/// Parse hex with an optional `0x` prefix.
pub fn parse_hex0x(s: &[u8]) -> Option<u64> {
    parse_hex(strip_0x(s))
}

fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

/// Parse a timestamp token (without the trailing `:`).
pub fn parse_timestamp(text: &[u8]) -> Option<Timestamp<'_>> {
    if let Some(ts) = timestamp_fast(text) {
        return Some(ts);
    }
    // One pass: seconds digits, then (for time clocks) `.` and the fraction,
    // of which the first nine digits count. Anything else is not a timestamp.
    let mut i = 0;
    let mut secs: u64 = 0;
    while let Some(&b) = text.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        secs = secs.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        i += 1;
    }
    if i == 0 || i > 19 {
        return None;
    }
    if i == text.len() {
        return Some(Timestamp {
            text,
            ns: None,
            order: secs,
        });
    }
    if text[i] != b'.' || i + 1 == text.len() {
        return None;
    }
    let mut f: u64 = 0;
    let mut used = 0;
    for &b in &text[i + 1..] {
        if !b.is_ascii_digit() {
            return None;
        }
        if used < 9 {
            f = f * 10 + u64::from(b - b'0');
            used += 1;
        }
    }
    for _ in used..9 {
        f *= 10;
    }
    let ns = secs.checked_mul(1_000_000_000)?.checked_add(f)?;
    Some(Timestamp {
        text,
        ns: Some(ns),
        order: ns,
    })
}

/// `SECS.FRAC` with 1 to 8 digits on each side (`542812.658321`), eight
/// digits at a time; `None` for any other shape (the loop in
/// [`parse_timestamp`] decides those).
#[inline(always)]
fn timestamp_fast(text: &[u8]) -> Option<Timestamp<'_>> {
    let w = word(text, 0)?;
    let nondigit = !in_range_bytes(w, b'0', b'9') & HI;
    let dot = (nondigit.trailing_zeros() / 8) as usize;
    if dot == 0 || dot == 8 || text[dot] != b'.' {
        return None;
    }
    let flen = text.len() - dot - 1;
    if flen == 0 || flen > 8 {
        return None;
    }
    // The last eight bytes hold the whole fraction (text is at least 8 long).
    let tail = word(text, text.len() - 8)?;
    let frac_digits = in_range_bytes(tail, b'0', b'9') >> (8 * (8 - flen));
    if frac_digits.count_ones() as usize != flen {
        return None;
    }
    let secs = combine_dec(w, dot);
    let frac = combine_dec(tail >> (8 * (8 - flen)), flen);
    let ns = secs * 1_000_000_000 + frac * POW10[9 - flen];
    Some(Timestamp {
        text,
        ns: Some(ns),
        order: ns,
    })
}

const POW10: [u64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// The number written by the first `k` (1..=8) ASCII digits of `x`, byte 0
/// the most significant (the caller checked they are digits).
#[inline(always)]
fn combine_dec(x: u64, k: usize) -> u64 {
    // Digit values to the top bytes, then merge neighbours: pairs, fours,
    // eights.
    let mut x = (x & (LO * 0x0f)) << (8 * (8 - k));
    x = (x.wrapping_mul(10) + (x >> 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x.wrapping_mul(100) + (x >> 16)) & 0x0000_ffff_0000_ffff;
    (x.wrapping_mul(10_000) + (x >> 32)) & 0xffff_ffff
}

/// Split off the next whitespace-separated token (NBSP counts as space).
fn next_token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = trim_start(s);
    if s.is_empty() {
        return None;
    }
    // Tokens are short: a plain loop beats a memchr3 call here. 0xc2 only
    // ends a token when it starts NBSP.
    let mut end = 0;
    while let Some(&b) = s.get(end) {
        if b == b' ' || b == b'\t' || (b == 0xc2 && s.get(end + 1) == Some(&0xa0)) {
            break;
        }
        end += 1;
    }
    Some((&s[..end], &s[end..]))
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    loop {
        if let Some((&f, rest)) = s.split_first() {
            if is_ws(f) {
                s = rest;
                continue;
            }
        }
        if s.starts_with(NBSP) {
            s = &s[2..];
            continue;
        }
        return s;
    }
}

// ---------------------------------------------------------------------------
// line parsing

/// Decode one line (without its `\n`; a trailing `\r` is ignored).
pub fn parse_line(line: u64, raw: &[u8]) -> Line<'_> {
    let mut out = Line::Blank { line };
    parse_line_into(line, raw, &mut out);
    out
}

/// [`parse_line`] into `out`: a line of about 260 bytes decoded in place
/// instead of built on the stack and copied into a batch's vector.
pub fn parse_line_into<'a>(line: u64, raw: &'a [u8], out: &mut Line<'a>) {
    let raw = match raw.last() {
        Some(b'\r') => &raw[..raw.len() - 1],
        _ => raw,
    };
    if raw.len() <= MAX_LINE {
        if let Some(h) = entry_fixed(raw).or_else(|| entry_fast(raw)) {
            *out = match decode_body(h.name, h.body) {
                Ok(op) => Line::Event(Event {
                    line,
                    raw,
                    task: h.task,
                    pid: h.pid,
                    cpu: h.cpu,
                    flags: h.flags,
                    ts: h.ts,
                    name: h.name,
                    body: h.body,
                    op,
                }),
                Err(reason) => Line::Bad { line, raw, reason },
            };
            return;
        }
    }
    *out = parse_slow(line, raw);
}

/// The lines [`entry_fixed`] and [`entry_fast`] leave: too long, headers,
/// blanks, other layouts.
#[inline(never)]
fn parse_slow(line: u64, raw: &[u8]) -> Line<'_> {
    if raw.len() > MAX_LINE {
        return Line::Bad {
            line,
            raw: &raw[..256],
            reason: BadReason::TooLong,
        };
    }
    let t = trim(raw);
    if t.is_empty() {
        return Line::Blank { line };
    }
    if t[0] == b'#' {
        return parse_hash_line(line, t);
    }
    if let Some(meta) = parse_lost(t) {
        return Line::Meta { line, meta };
    }
    match parse_entry(line, raw) {
        Some(Ok(ev)) => Line::Event(ev),
        Some(Err(reason)) => Line::Bad { line, raw, reason },
        None => {
            if is_trace_cmd_preamble(t) {
                Line::Blank { line }
            } else {
                Line::Bad {
                    line,
                    raw,
                    reason: BadReason::NotAnEntry,
                }
            }
        }
    }
}

/// The columns of an entry before its body is decoded.
struct Header<'a> {
    task: &'a [u8],
    pid: Option<u32>,
    cpu: u32,
    flags: &'a [u8],
    ts: Timestamp<'a>,
    name: &'a [u8],
    body: &'a [u8],
}

// Scanning eight bytes at a time (SWAR) in plain safe code: the columns of
// an entry are 5 to 20 bytes long, too short for a memchr call to pay off and
// long enough that a byte loop's per-byte branch dominates the parse.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `i` as a little-endian word (byte `i` lowest).
#[inline(always)]
fn word(s: &[u8], i: usize) -> Option<u64> {
    let w: [u8; 8] = s.get(i..i.wrapping_add(8))?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

/// The high bit of each byte of `x` that is zero, and no other bit (exact:
/// no carry crosses a byte).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    !((x & !HI).wrapping_add(!HI) | x | !HI)
}

/// The high bit of each byte of `x` equal to `c`.
#[inline(always)]
fn eq_bytes(x: u64, c: u8) -> u64 {
    zero_bytes(x ^ (LO * u64::from(c)))
}

/// The high bit of each byte of `x` that is not printable ASCII (`!`..DEL):
/// blanks, control bytes and every byte of a multi-byte UTF-8 character.
#[inline(always)]
fn not_graphic_bytes(x: u64) -> u64 {
    // (b & 0x7f) + 0x5f has its high bit set exactly when b & 0x7f >= 0x21.
    let ge21 = (x & !HI).wrapping_add(LO * 0x5f);
    (!ge21 | x) & HI
}

/// Whether [`not_graphic_bytes`] marks `b`.
#[inline(always)]
fn not_graphic(b: u8) -> bool {
    !(0x21..0x80).contains(&b)
}

/// The first index at or after `i` whose byte `stop` accepts, or `s.len()`.
/// `mask` must mark (high bit) exactly the bytes of a word that `stop`
/// accepts; the tail shorter than a word goes byte by byte.
#[inline(always)]
fn scan(s: &[u8], mut i: usize, mask: impl Fn(u64) -> u64, stop: impl Fn(u8) -> bool) -> usize {
    while let Some(w) = word(s, i) {
        let m = mask(w);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() && !stop(s[i]) {
        i += 1;
    }
    i.min(s.len())
}

/// The high bit of each byte of `x` within `lo..=hi` (both below 0x80).
#[inline(always)]
fn in_range_bytes(x: u64, lo: u8, hi: u8) -> u64 {
    let low7 = x & !HI;
    let ge = low7.wrapping_add(LO * u64::from(0x80 - lo));
    let gt = low7.wrapping_add(LO * u64::from(0x7f - hi));
    ge & !gt & !x & HI
}

/// A word of text as hex digits: each byte's digit value (meaningful only
/// for digits) and the high bit of each byte that is not a hex digit.
#[inline(always)]
fn hex_bytes(x: u64) -> (u64, u64) {
    let digit = in_range_bytes(x, b'0', b'9');
    // `| 0x20` lower-cases letters and leaves digits alone.
    let letter = in_range_bytes(x | (LO * 0x20), b'a', b'f');
    // '0'..'9' are 0x3N, letters 0x4N/0x6N: the low nibble, plus 9 for letters.
    let vals = (x & (LO * 0x0f)) + 9 * ((x >> 6) & LO);
    (vals, !(digit | letter) & HI)
}

/// The number written by the first `k` (1..=8) digit values of `vals`, byte
/// 0 the most significant.
#[inline(always)]
fn combine_hex(vals: u64, k: usize) -> u64 {
    // Move the k digits to the top bytes (zeros before them), then merge
    // neighbours: nibble pairs into bytes, bytes into 16 bits, into 32 bits.
    let mut x = vals << (8 * (8 - k));
    x = ((x << 4) | (x >> 8)) & 0x00ff_00ff_00ff_00ff;
    x = ((x << 8) | (x >> 16)) & 0x0000_ffff_0000_ffff;
    ((x << 16) | (x >> 32)) & 0xffff_ffff
}

/// The common entry layout in one forward pass over plain bytes:
/// `  TASK-PID  [CPU] FLAGS SECS.FRAC: NAME: BODY` with ASCII spaces between
/// the columns and printable ASCII in them. `None` means "not sure": anything
/// unusual (tabs, no-break spaces, other non-ASCII bytes in the columns, a
/// line that could be a header or a lost-events line, a `[` that is not the
/// CPU column) leaves the line to the general path in [`parse_entry`], which
/// this must agree with whenever it answers (`tests/parse_agree.rs` checks
/// that against the original parser).
#[inline(always)]
fn entry_fast(raw: &[u8]) -> Option<Header<'_>> {
    let n = raw.len();
    let s0 = scan(raw, 0, |w| !eq_bytes(w, b' ') & HI, |b| b != b' ');
    let first = *raw.get(s0)?;
    // `#` headers, `CPU:N [LOST ..]` and trace-cmd preambles, a leading `[`
    // (never the CPU column) and non-ASCII task names go the general way.
    if not_graphic(first) || first == b'#' || first == b'[' || raw[s0..].starts_with(b"CPU") {
        return None;
    }
    // The first `[`, which must open `[digits]`.
    let open = scan(raw, s0 + 1, |w| eq_bytes(w, b'['), |b| b == b'[');
    let mut close = open + 1;
    let mut cpu: u32 = 0;
    while close < n && raw[close].is_ascii_digit() && close - open <= 8 {
        cpu = cpu * 10 + u32::from(raw[close] - b'0');
        close += 1;
    }
    if close == open + 1 || raw.get(close) != Some(&b']') {
        return None;
    }
    // TASK-PID ends before the spaces in front of `[` (`raw[s0]` is not a
    // space, so the walk stops there at the latest); a tab, `\r` or the end
    // of a no-break space there would be trimmed too: general path.
    let mut e = open;
    while e >= s0 + 8 {
        let w = word(raw, e - 8)?;
        let m = !eq_bytes(w, b' ') & HI;
        if m != 0 {
            e = e - 8 + (63 - m.leading_zeros() as usize) / 8 + 1;
            break;
        }
        e -= 8;
    }
    while raw[e - 1] == b' ' {
        e -= 1;
    }
    if matches!(raw[e - 1], b'\t' | b'\r' | 0xa0) {
        return None;
    }
    let (task, pid) = split_task_pid(&raw[s0..e]);
    entry_after_cpu(raw, close, task, pid, cpu)
}

/// ftrace's own layout, `%16s-%-7d [%03d] ` (kernel/trace/trace_output.c,
/// `trace_print_context`: the command right-aligned in 16 columns, the PID
/// left-aligned in 7, the CPU in 3), is most lines of most traces: its
/// columns are at fixed offsets, so they are checked in place instead of
/// searched for. Gives what [`entry_fast`] gives or `None` (a command with
/// a `[`, a wider PID or CPU, ... are left to it).
#[inline(always)]
fn entry_fixed(raw: &[u8]) -> Option<Header<'_>> {
    let head: &[u8; 31] = raw.get(..31)?.try_into().ok()?;
    if head[16] != b'-' || head[24] != b' ' || head[25] != b'[' || head[29] != b']' {
        return None;
    }
    // The first byte that is not a space, as `entry_fast` finds it.
    let s0 = head[..16].iter().position(|&b| b != b' ')?;
    let first = head[s0];
    if not_graphic(first) || first == b'#' || first == b'[' || head[s0..].starts_with(b"CPU") {
        return None;
    }
    // `entry_fast` takes the first `[` for the CPU column's.
    if head[s0 + 1..16].contains(&b'[') {
        return None;
    }
    let mut k = 17;
    let mut pid: u32 = 0;
    while k < 24 && head[k].is_ascii_digit() {
        pid = pid * 10 + u32::from(head[k] - b'0');
        k += 1;
    }
    if k == 17 || head[k..24].iter().any(|&b| b != b' ') {
        return None;
    }
    let mut cpu: u32 = 0;
    for &b in &head[26..29] {
        if !b.is_ascii_digit() {
            return None;
        }
        cpu = cpu * 10 + u32::from(b - b'0');
    }
    entry_after_cpu(raw, 29, &raw[s0..16], Some(pid), cpu)
}

/// The columns after `[CPU]` (`close` is the `]`'s index), for
/// [`entry_fast`] and [`entry_fixed`].
#[inline(always)]
fn entry_after_cpu<'a>(
    raw: &'a [u8],
    close: usize,
    task: &'a [u8],
    pid: Option<u32>,
    cpu: u32,
) -> Option<Header<'a>> {
    let n = raw.len();
    // Flag tokens, then the first `TIMESTAMP:` among the first four tokens.
    let mut p = close + 1;
    let mut flags_start = p;
    let mut flags_end = p;
    let mut ts = None;
    for _ in 0..4 {
        let start = scan(raw, p, |w| !eq_bytes(w, b' ') & HI, |b| b != b' ');
        p = scan(raw, start, not_graphic_bytes, not_graphic);
        if p < n && raw[p] != b' ' || p == start {
            return None;
        }
        let tok = &raw[start..p];
        if let Some(text) = tok.strip_suffix(b":") {
            let t = match timestamp_fast(text) {
                Some(t) => Some(t),
                None => parse_timestamp(text),
            };
            if t.is_some() {
                ts = t;
                break;
            }
        }
        if flags_end == close + 1 {
            flags_start = start;
        }
        flags_end = p;
    }
    let ts = ts?;
    // `NAME:` after the timestamp, then the body after one optional space.
    let name_start = scan(raw, p, |w| !eq_bytes(w, b' ') & HI, |b| b != b' ');
    p = scan(
        raw,
        name_start,
        |w| eq_bytes(w, b':') | not_graphic_bytes(w),
        |b| b == b':' || not_graphic(b),
    );
    if p == n || raw[p] != b':' || p == name_start {
        return None;
    }
    let name = &raw[name_start..p];
    let mut body = &raw[p + 1..];
    if let Some(b) = body.strip_prefix(b" ") {
        body = b;
    }
    Some(Header {
        task,
        pid,
        cpu,
        flags: &raw[flags_start..flags_end],
        ts,
        name,
        body,
    })
}

/// `TASK-PID` → the task and the PID after the last `-`, when all that
/// follows it is a decimal number that fits `u32`.
#[inline(always)]
fn split_task_pid(task_pid: &[u8]) -> (&[u8], Option<u32>) {
    // The last `-` is followed only by digits exactly when it ends the
    // trailing run of digits.
    // The run is read back to front once, its value summed as it goes
    // (`parse_dec` takes at most 19 digits, and so does this).
    let mut d = task_pid.len();
    let mut value: u64 = 0;
    let mut scale: u64 = 1;
    let mut digits = 0;
    while d > 0 && task_pid[d - 1].is_ascii_digit() {
        d -= 1;
        if digits < 19 {
            value += u64::from(task_pid[d] - b'0') * scale;
            scale = scale.wrapping_mul(10);
        }
        digits += 1;
    }
    if d > 0 && task_pid[d - 1] == b'-' && (1..=19).contains(&digits) {
        if let Ok(pid) = u32::try_from(value) {
            return (&task_pid[..d - 1], Some(pid));
        }
    }
    (task_pid, None)
}

fn is_trace_cmd_preamble(t: &[u8]) -> bool {
    t.starts_with(b"cpus=")
        || t.starts_with(b"version = ")
        || (t.starts_with(b"CPU ") && t.ends_with(b" is empty"))
        || t.starts_with(b"CPU:") && memmem::find(t, b"LOST").is_none()
}

fn parse_hash_line(line: u64, t: &[u8]) -> Line<'_> {
    if memmem::find(t, b"buffer started").is_some() {
        if let Some(p) = memmem::find(t, b"CPU") {
            let rest = trim_start(&t[p + 3..]);
            let end = rest
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(rest.len());
            if let Some(cpu) = parse_dec(&rest[..end]) {
                if let Ok(cpu) = u32::try_from(cpu) {
                    return Line::Meta {
                        line,
                        meta: Meta::CpuBufferStarted(cpu),
                    };
                }
            }
        }
    }
    const ENTRIES: &[u8] = b"entries-in-buffer/entries-written:";
    if let Some(p) = memmem::find(t, ENTRIES) {
        let rest = &t[p + ENTRIES.len()..];
        if let Some((tok, rest)) = next_token(rest) {
            if let Some(slash) = memchr::memchr(b'/', tok) {
                if let (Some(a), Some(b)) = (parse_dec(&tok[..slash]), parse_dec(&tok[slash + 1..]))
                {
                    let cpus = memmem::find(rest, b"#P:").and_then(|q| {
                        let r = &rest[q + 3..];
                        let end = r
                            .iter()
                            .position(|b| !b.is_ascii_digit())
                            .unwrap_or(r.len());
                        parse_dec(&r[..end]).and_then(|v| u32::try_from(v).ok())
                    });
                    return Line::Meta {
                        line,
                        meta: Meta::Entries {
                            in_buffer: a,
                            written: b,
                            cpus,
                        },
                    };
                }
            }
        }
    }
    Line::Blank { line }
}

/// `CPU:2 [LOST 123 EVENTS]` (trace_pipe / trace-cmd).
fn parse_lost(t: &[u8]) -> Option<Meta> {
    let rest = t
        .strip_prefix(b"CPU:")
        .or_else(|| t.strip_prefix(b"CPU "))?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    let cpu = u32::try_from(parse_dec(&rest[..end])?).ok()?;
    let p = memmem::find(rest, b"[LOST ")?;
    let r = &rest[p + 6..];
    let e = r.iter().position(|b| !b.is_ascii_digit())?;
    let count = parse_dec(&r[..e])?;
    Some(Meta::Lost { cpu, count })
}

/// `None` if the line is not shaped like an entry; `Some(Err)` if it is an
/// entry whose project body is malformed.
fn parse_entry(line: u64, raw: &[u8]) -> Option<Result<Event<'_>, BadReason>> {
    let s = trim_start(raw);
    // The CPU column is the first `[digits]` (task names rarely hold one; if
    // they do, the timestamp check below rejects the wrong split).
    let mut from = 0;
    let (open, close, cpu) = loop {
        let open = from + memchr::memchr(b'[', &s[from..])?;
        let close_rel = memchr::memchr(b']', &s[open..])?;
        let close = open + close_rel;
        if let Some(cpu) = parse_dec(&s[open + 1..close]).and_then(|c| u32::try_from(c).ok()) {
            if open > 0 {
                break (open, close, cpu);
            }
        }
        from = open + 1;
    };
    let task_pid = trim(&s[..open]);
    if task_pid.is_empty() {
        return None;
    }
    let (task, pid) = split_task_pid(task_pid);
    // Flags (zero or more tokens), then `TIMESTAMP:`.
    let after = &s[close + 1..];
    let mut rest = after;
    let mut ts = None;
    for _ in 0..4 {
        let (tok, r) = next_token(rest)?;
        if let Some(text) = tok.strip_suffix(b":") {
            if let Some(t) = parse_timestamp(text) {
                ts = Some((t, tok));
                rest = r;
                break;
            }
        }
        rest = r;
    }
    let (ts, ts_tok) = ts?;
    let flags_end = ts_tok.as_ptr() as usize - after.as_ptr() as usize;
    let flags = trim(&after[..flags_end]);
    let r = trim_start(rest);
    let colon = memchr::memchr(b':', r)?;
    let name = &r[..colon];
    if name.is_empty() || name.iter().any(|&b| is_ws(b)) {
        return None;
    }
    let mut body = &r[colon + 1..];
    if let Some(b) = body.strip_prefix(b" ") {
        body = b;
    }
    let op = match decode_body(name, body) {
        Ok(op) => op,
        Err(reason) => return Some(Err(reason)),
    };
    Some(Ok(Event {
        line,
        raw,
        task,
        pid,
        cpu,
        flags,
        ts,
        name,
        body,
        op,
    }))
}

#[inline(always)]
fn decode_body<'a>(name: &[u8], body: &'a [u8]) -> Result<Op<'a>, BadReason> {
    if name.starts_with(b"__xsk_rcv_zc") {
        return Ok(perf_rx(body).map(Op::Kernel).unwrap_or(Op::Unknown));
    }
    if name.starts_with(b"xp_raw_get_data") {
        return Ok(match kv_hex(body, b"addr") {
            Some(addr) => Op::Kernel(KernelOp::Tx {
                xs: kv_hex(body, b"xs"),
                sk: None,
                addr,
            }),
            None => Op::Unknown,
        });
    }
    if name.starts_with(b"xsk_flush") || name.starts_with(b"__xsk_map_flush") {
        return Ok(match kv_hex(body, b"xs") {
            Some(xs) => Op::Kernel(KernelOp::Flush {
                xs,
                sk: None,
                prod: None,
                exact: true,
            }),
            None => Op::Unknown,
        });
    }
    if name == b"napi_poll" {
        return Ok(Op::Kernel(napi_poll(body)));
    }
    let mut msg = trim_start(body);
    // trace-cmd prints `print: tracing_mark_write: msg` or `print: ip: msg`.
    if name == b"print" {
        if let Some(m) = msg.strip_prefix(b"tracing_mark_write: ") {
            msg = m;
        } else if let Some((tok, r)) = next_token(msg) {
            if tok.ends_with(b":") && (tok.starts_with(b"0x") || tok.starts_with(b"(")) {
                msg = trim_start(r);
            }
        }
    }
    if let Some(rest) = msg.strip_prefix(b"xskdbg:") {
        return project_line(rest);
    }
    let marker = matches!(
        name,
        b"tracing_mark_write" | b"print" | b"bpf_trace_printk" | b"bputs" | b"bprint"
    );
    if marker {
        if let Some(op) = seed_line(msg) {
            return Ok(Op::Seed(op));
        }
    }
    Ok(Op::Unknown)
}

/// `(__xsk_rcv_zc+0x9b/0x250) addr=0x16ce900 len=0x4e xs=0x.. fq=0x..`
fn perf_rx(body: &[u8]) -> Option<KernelOp<'_>> {
    Some(KernelOp::Rx {
        xs: kv_hex(body, b"xs")?,
        sk: None,
        addr: kv_hex(body, b"addr").or_else(|| handle_from_parts(body))?,
        len: kv_hex(body, b"len"),
        slot: None,
        kpool: kv_hex(body, b"fq").or_else(|| kv_hex(body, b"pool")),
        prod: None,
        mode: None,
    })
}

/// The descriptor `xp_get_handle()` (6.9+) makes from the parts the `tracefs`
/// backend's event carries where `xdp_buff_xsk` has no `orig_addr`:
/// `data=` (`xskb->xdp.data`), `umem=` (`pool->addrs`), and for unaligned pools
/// (`unal=` not 0) `hard=` (`data_hard_start`) and `hr=` (`pool->headroom`).
fn handle_from_parts(body: &[u8]) -> Option<u64> {
    let data = kv_hex(body, b"data")?;
    let umem = kv_hex(body, b"umem")?;
    let orig = data.checked_sub(umem)?;
    if kv_hex(body, b"unal").unwrap_or(0) == 0 {
        return Some(orig);
    }
    let offset = data
        .checked_sub(kv_hex(body, b"hard")?)?
        .checked_add(kv_hex(body, b"hr")?)?;
    Some(orig.checked_sub(offset)? + (offset << 48))
}

/// `napi poll on napi struct 0000.. for device eth0 work 1 budget 64`
fn napi_poll(body: &[u8]) -> KernelOp<'_> {
    let word_after = |w: &[u8]| -> Option<u64> {
        let p = memmem::find(body, w)?;
        let (tok, _) = next_token(&body[p + w.len()..])?;
        parse_dec(tok)
    };
    KernelOp::Poll {
        work: word_after(b" work "),
        budget: word_after(b" budget "),
    }
}

/// Find `key=VALUE` (space separated) in a perf-probe body; value hex with
/// optional `0x`.
fn kv_hex(body: &[u8], key: &[u8]) -> Option<u64> {
    kv(body, key).and_then(parse_hex0x)
}

fn kv<'a>(body: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0;
    while let Some(p) = memmem::find(&body[from..], key) {
        let at = from + p;
        let start_ok = at == 0 || is_ws(body[at - 1]);
        let eq = at + key.len();
        if start_ok && body.get(eq) == Some(&b'=') {
            let v = &body[eq + 1..];
            let end = v.iter().position(|&b| is_ws(b)).unwrap_or(v.len());
            return Some(&v[..end]);
        }
        from = at + 1;
    }
    None
}

// ---------------------------------------------------------------------------
// project lines

/// At most this many `key=value` fields of a project line are read; later
/// ones are ignored.
const MAX_FIELDS: usize = 16;

/// The `key=value` fields of a project line, walked in order. Fields are
/// separated by spaces (blanks and no-break spaces before a field are
/// skipped); a token without `=` is skipped and not counted; `label=` runs to
/// the end of the line (trimmed) and ends the fields.
///
/// Each operation walks them once and keeps the first value of each key it
/// needs (see `take_fields!`): no table to fill and search per line.
struct Fields<'a> {
    rest: &'a [u8],
    n: usize,
}

impl<'a> Fields<'a> {
    fn new(s: &'a [u8]) -> Self {
        Fields { rest: s, n: 0 }
    }

    /// The fields of `s`, which follows `n` fields already taken (the walk
    /// stops at the same field as one over the whole line).
    fn after(s: &'a [u8], n: usize) -> Self {
        Fields { rest: s, n }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while self.n < MAX_FIELDS {
            let s = trim_start(self.rest);
            if s.is_empty() {
                self.rest = s;
                return None;
            }
            if let Some(label) = s.strip_prefix(b"label=") {
                self.n = MAX_FIELDS;
                self.rest = &[];
                return Some((b"label", trim(label)));
            }
            // The key is short: walk it to the first `=` (or the token's
            // end); the value can be a long list: memchr for its end.
            let mut eq = 0;
            while eq < s.len() && s[eq] != b'=' && s[eq] != b' ' {
                eq += 1;
            }
            if eq == s.len() || s[eq] == b' ' {
                self.rest = &s[eq..];
                continue;
            }
            let end = eq + 1 + memchr::memchr(b' ', &s[eq + 1..]).unwrap_or(s.len() - eq - 1);
            self.rest = &s[end..];
            self.n += 1;
            return Some((&s[..eq], &s[eq + 1..end]));
        }
        None
    }
}

/// `take_fields!(fields, var = b"key", ...)` declares `var: Option<&[u8]>`
/// for each key and fills it with the key's first value in one walk over the
/// fields.
macro_rules! take_fields {
    ($fields:expr, $($var:ident = $key:literal),+ $(,)?) => {
        $(let mut $var: Option<&[u8]> = None;)+
        for (k, v) in Fields::new($fields) {
            match k {
                $($key if $var.is_none() => $var = Some(v),)+
                _ => {}
            }
        }
    };
}

/// Optional hex field; `Err` when present but malformed.
fn opt_hex(v: Option<&[u8]>) -> Result<Option<u64>, BadReason> {
    match v {
        None => Ok(None),
        Some(v) => parse_hex0x(v).map(Some).ok_or(BadReason::BadField),
    }
}

/// Required hex field.
fn req_hex(v: Option<&[u8]>) -> Result<u64, BadReason> {
    opt_hex(v)?.ok_or(BadReason::BadField)
}

/// Optional socket key; `Err` when present but malformed.
fn opt_sk(v: Option<&[u8]>) -> Result<Option<SockKey>, BadReason> {
    match v {
        None => Ok(None),
        Some(v) => parse_sk(v).map(Some).ok_or(BadReason::BadField),
    }
}

/// Required socket key.
fn req_sk(v: Option<&[u8]>) -> Result<SockKey, BadReason> {
    opt_sk(v)?.ok_or(BadReason::BadField)
}

/// An optional list (empty when absent).
fn opt_list(v: Option<&[u8]>) -> AddrList<'_> {
    AddrList {
        text: v.unwrap_or(&[]),
    }
}

/// Parse `netns:ifindex:queue` (hex).
pub fn parse_sk(v: &[u8]) -> Option<SockKey> {
    // Three non-empty hex parts of at most 16 digits, in one pass.
    let mut parts = [0u64; 3];
    let mut k = 0;
    let mut digits = 0;
    for &b in v {
        let d = HEX[usize::from(b)];
        if d < 16 {
            if digits == 16 {
                return None;
            }
            parts[k] = (parts[k] << 4) | u64::from(d);
            digits += 1;
        } else if b == b':' && digits > 0 && k < 2 {
            k += 1;
            digits = 0;
        } else {
            return None;
        }
    }
    if k != 2 || digits == 0 {
        return None;
    }
    Some(SockKey {
        netns: parts[0],
        ifindex: parts[1],
        queue: parts[2],
    })
}

/// After `xskdbg:`: `1 op k=v ...`.
#[inline(always)]
fn project_line(rest: &[u8]) -> Result<Op<'_>, BadReason> {
    let sp = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    if parse_dec(&rest[..sp]) != Some(u64::from(FORMAT_VERSION)) {
        // A newer (or garbled) version: context only, never judged.
        return Ok(Op::Unknown);
    }
    // `1 op ...` with a plain op word: the token [`next_token`] would give,
    // found eight bytes at a time.
    let plain_op = if sp == 1 && rest.get(2).is_some_and(|&b| !not_graphic(b)) {
        let end = scan(rest, 2, not_graphic_bytes, not_graphic);
        (end == rest.len() || rest[end] == b' ').then(|| (&rest[2..end], &rest[end..]))
    } else {
        None
    };
    let (op, f) = match plain_op {
        Some(x) => x,
        None => match next_token(&rest[sp..]) {
            Some(x) => x,
            None => return Err(BadReason::BadField),
        },
    };
    // Two tries rather than `or_else`, which moved the large `Op` through a
    // call (a memmove per line in the profile).
    if let Some(op) = canonical_kernel_op(op, f) {
        return Ok(op);
    }
    if let Some(op) = canonical_batch_op(op, f) {
        return Ok(op);
    }
    // Hottest first: the probes' per-packet lines.
    Ok(match op {
        b"krx" => {
            take_fields!(
                f,
                xs = b"xs",
                sk = b"sk",
                a = b"a",
                len = b"len",
                slot = b"slot",
                kpool = b"kpool",
                prod = b"prod",
                mode = b"mode"
            );
            Op::Kernel(KernelOp::Rx {
                xs: req_hex(xs)?,
                sk: opt_sk(sk)?,
                addr: req_hex(a)?,
                len: opt_hex(len)?,
                slot: opt_hex(slot)?,
                kpool: opt_hex(kpool)?,
                prod: opt_hex(prod)?,
                mode: mode.and_then(RxMode::parse),
            })
        }
        b"krxdone" => {
            take_fields!(f, xs = b"xs", slot = b"slot");
            Op::Kernel(KernelOp::RxDone {
                xs: req_hex(xs)?,
                slot: req_hex(slot)?,
            })
        }
        b"ktx" => {
            take_fields!(f, xs = b"xs", sk = b"sk", a = b"a");
            Op::Kernel(KernelOp::Tx {
                xs: opt_hex(xs)?,
                sk: opt_sk(sk)?,
                addr: req_hex(a)?,
            })
        }
        b"kflush" => {
            take_fields!(f, xs = b"xs", sk = b"sk", prod = b"prod");
            Op::Kernel(KernelOp::Flush {
                xs: req_hex(xs)?,
                sk: opt_sk(sk)?,
                prod: opt_hex(prod)?,
                exact: false,
            })
        }
        b"kcomp" => {
            take_fields!(
                f,
                xs = b"xs",
                sk = b"sk",
                kpool = b"kpool",
                n = b"n",
                a = b"a"
            );
            Op::Kernel(KernelOp::Comp {
                xs: opt_hex(xs)?,
                sk: opt_sk(sk)?,
                kpool: opt_hex(kpool)?,
                n: opt_hex(n)?,
                addrs: opt_list(a),
            })
        }
        b"kpoll" => {
            take_fields!(f, work = b"work", budget = b"budget");
            Op::Kernel(KernelOp::Poll {
                work: opt_hex(work)?,
                budget: opt_hex(budget)?,
            })
        }
        b"umem" => {
            take_fields!(
                f,
                umem = b"umem",
                size = b"size",
                chunk = b"chunk",
                mode = b"mode",
                headroom = b"headroom",
                poison = b"poison",
            );
            Op::App(AppOp::Umem {
                umem: opt_hex(umem)?.unwrap_or(0),
                size: opt_hex(size)?,
                chunk: opt_hex(chunk)?,
                unaligned: mode == Some(b"unaligned"),
                headroom: opt_hex(headroom)?,
                poison: opt_hex(poison)?,
            })
        }
        b"pool" => {
            take_fields!(f, pool = b"pool", umem = b"umem", sk = b"sk");
            Op::App(AppOp::Pool {
                pool: req_hex(pool)?,
                umem: opt_hex(umem)?,
                sk: opt_sk(sk)?,
            })
        }
        b"sock" => {
            take_fields!(
                f,
                sk = b"sk",
                pool = b"pool",
                umem = b"umem",
                label = b"label"
            );
            Op::App(AppOp::Sock {
                sk: req_sk(sk)?,
                pool: opt_hex(pool)?,
                umem: opt_hex(umem)?,
                label: label.filter(|l| !l.is_empty()),
            })
        }
        b"fill" => {
            take_fields!(f, pool = b"pool", sk = b"sk", a = b"a");
            Op::App(AppOp::Fill {
                pool: opt_hex(pool)?,
                sk: opt_sk(sk)?,
                addrs: req_list(a)?,
            })
        }
        b"rx" => {
            take_fields!(f, sk = b"sk", pool = b"pool", idx = b"idx", d = b"d");
            Op::App(AppOp::Rx {
                sk: req_sk(sk)?,
                pool: opt_hex(pool)?,
                idx: opt_hex(idx)?,
                descs: req_list(d)?,
            })
        }
        b"tx" => {
            take_fields!(f, sk = b"sk", idx = b"idx", d = b"d");
            Op::App(AppOp::Tx {
                sk: req_sk(sk)?,
                idx: opt_hex(idx)?,
                descs: req_list(d)?,
            })
        }
        b"comp" => {
            take_fields!(f, pool = b"pool", sk = b"sk", a = b"a");
            Op::App(AppOp::Comp {
                pool: opt_hex(pool)?,
                sk: opt_sk(sk)?,
                addrs: req_list(a)?,
            })
        }
        b"hold" => {
            take_fields!(f, a = b"a");
            Op::App(AppOp::Hold {
                addrs: req_list(a)?,
            })
        }
        b"free" => {
            take_fields!(f, a = b"a");
            Op::App(AppOp::Free {
                addrs: req_list(a)?,
            })
        }
        b"stats" => {
            take_fields!(
                f,
                sk = b"sk",
                rx_dropped = b"rx_dropped",
                rx_full = b"rx_full"
            );
            Op::App(AppOp::Stats {
                sk: opt_sk(sk)?,
                rx_dropped: opt_hex(rx_dropped)?,
                rx_full: opt_hex(rx_full)?,
            })
        }
        b"violation" => {
            take_fields!(
                f,
                kind = b"kind",
                sk = b"sk",
                pool = b"pool",
                a = b"a",
                from = b"from",
                to = b"to",
                expected = b"expected",
                remaining = b"remaining",
            );
            Op::App(AppOp::Violation {
                kind: kind.ok_or(BadReason::BadField)?,
                sk: opt_sk(sk)?,
                pool: opt_hex(pool)?,
                addr: req_hex(a)?,
                from: from.and_then(RingState::parse),
                to: to.and_then(RingState::parse),
                expected: opt_hex(expected)?,
                remaining: opt_list(remaining),
            })
        }
        b"probe" => {
            take_fields!(
                f,
                backend = b"backend",
                kernel = b"kernel",
                flush = b"flush"
            );
            Op::Kernel(KernelOp::Probe {
                backend: backend.unwrap_or(b""),
                kernel: kernel.unwrap_or(b""),
                flush: match flush {
                    Some(b"exact") => FlushMode::Exact,
                    Some(b"inferred") => FlushMode::Inferred,
                    _ => FlushMode::None,
                },
            })
        }
        other => Op::App(AppOp::Other { op: other }),
    })
}

/// A cursor over the fields of a project line written exactly as the probes
/// write them (`docs/TRACE-FORMAT.md`: single spaces, known order, lower-case
/// hex), for [`canonical_kernel_op`].
struct Canon<'a> {
    s: &'a [u8],
    i: usize,
}

impl Canon<'_> {
    /// Expect `lit` next.
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.i + lit.len();
        if self.s.get(self.i..end)? == lit {
            self.i = end;
            Some(())
        } else {
            None
        }
    }

    /// 1 to 16 hex digits, parsed as they are walked; the byte after them is
    /// left for the next [`Canon::lit`] (or [`Canon::end`]) to check.
    #[inline(always)]
    fn hex(&mut self) -> Option<u64> {
        // Eight digits at a time while a whole word is left; the last bytes
        // of a line go byte by byte.
        if let Some(w) = word(self.s, self.i) {
            let (vals, bad) = hex_bytes(w);
            let k = (bad.trailing_zeros() / 8) as usize;
            if k < 8 {
                if k == 0 {
                    return None;
                }
                self.i += k;
                return Some(combine_hex(vals, k));
            }
            if let Some(w2) = word(self.s, self.i + 8) {
                let hi = combine_hex(vals, 8);
                let (vals2, bad2) = hex_bytes(w2);
                let k2 = (bad2.trailing_zeros() / 8) as usize;
                if k2 < 8 {
                    self.i += 8 + k2;
                    return Some(if k2 == 0 {
                        hi
                    } else {
                        (hi << (4 * k2)) | combine_hex(vals2, k2)
                    });
                }
                // Sixteen digits; a seventeenth makes the value too wide.
                if self
                    .s
                    .get(self.i + 16)
                    .is_some_and(|&b| HEX[usize::from(b)] < 16)
                {
                    return None;
                }
                self.i += 16;
                return Some((hi << 32) | combine_hex(vals2, 8));
            }
        }
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&b) = self.s.get(self.i) {
            let d = HEX[usize::from(b)];
            if d >= 16 {
                break;
            }
            v = (v << 4) | u64::from(d);
            self.i += 1;
        }
        let digits = self.i - start;
        (1..=16).contains(&digits).then_some(v)
    }

    /// `netns:ifindex:queue`.
    #[inline(always)]
    fn sk(&mut self) -> Option<SockKey> {
        let netns = self.hex()?;
        self.lit(b":")?;
        let ifindex = self.hex()?;
        self.lit(b":")?;
        let queue = self.hex()?;
        Some(SockKey {
            netns,
            ifindex,
            queue,
        })
    }

    fn end(&self) -> bool {
        self.i == self.s.len()
    }
}

impl<'a> Canon<'a> {
    /// Skip a value the operation does not read: to the next space (where
    /// the general walk ends a token) or the end.
    fn skip(&mut self) {
        self.i = scan(self.s, self.i, |w| eq_bytes(w, b' '), |b| b == b' ');
    }

    /// A required list value: to the next space or the end, starting and
    /// ending with a hex digit (the check of [`req_list`]).
    fn list(&mut self) -> Option<AddrList<'a>> {
        let rest = &self.s[self.i..];
        let len = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        self.i += len;
        req_list(Some(&rest[..len])).ok()
    }

    /// The rest of the line once every key the operation reads has been
    /// taken: it cannot change the result (the first value of a key wins)
    /// as long as the last value ended at a field boundary (a space or the
    /// end; the general walk cuts tokens only at spaces).
    fn rest_ignored(&self) -> Option<()> {
        (self.end() || self.s[self.i] == b' ').then_some(())
    }

    /// The rest of the line when some key the operation reads is still
    /// missing: accepted only if none of `keys` appears among its fields.
    fn rest_lacks(&self, keys: &[&[u8]]) -> Option<()> {
        self.rest_ignored()?;
        Fields::new(&self.s[self.i..])
            .all(|(k, _)| !keys.contains(&k))
            .then_some(())
    }
}

/// The per-packet kernel lines (`krx`, `krxdone`, `ktx`, `kflush`: four in
/// five lines of a probed trace) in the shape the probes print them, keys in
/// their order and values plain hex, decoded in one pass that matches the
/// keys in place; fields the operation does not read may follow. `None` for
/// any other shape (another order, `0x`, extra blanks, ...): the general
/// field walk then decodes the line, and gives the same result for every
/// line this accepts (each key read has its first value here, and nothing
/// after can change it), which `tests/parse_agree.rs` checks.
#[inline(always)]
fn canonical_kernel_op<'a>(op: &[u8], f: &[u8]) -> Option<Op<'a>> {
    let mut c = Canon { s: f, i: 0 };
    match op {
        b"krx" => {
            // `xs sk a len slot [kpool]`, then anything (`prod= fcons=`).
            c.lit(b" xs=")?;
            let xs = c.hex()?;
            c.lit(b" sk=")?;
            let sk = c.sk()?;
            c.lit(b" a=")?;
            let addr = c.hex()?;
            c.lit(b" len=")?;
            let len = c.hex()?;
            // The tracepoint backend prints a multi-buffer packet's options.
            let opt = c.lit(b" opt=").is_some();
            if opt {
                c.skip();
            }
            c.lit(b" slot=")?;
            let slot = c.hex()?;
            let mut taken = 5 + usize::from(opt);
            let mut kpool = None;
            if c.lit(b" kpool=").is_some() {
                kpool = Some(c.hex()?);
                taken += 1;
            }
            c.rest_ignored()?;
            // What follows (`prod= fcons= mode=` from the probes) by the
            // general rule: a key's first value, malformed values of the
            // keys read sending the line to the general walk (which rejects
            // it).
            let mut rest_kpool = None;
            let mut prod = None;
            let mut mode = None;
            for (k, v) in Fields::after(&c.s[c.i..], taken) {
                match k {
                    b"kpool" if rest_kpool.is_none() => rest_kpool = Some(v),
                    b"prod" if prod.is_none() => prod = Some(v),
                    b"mode" if mode.is_none() => mode = Some(v),
                    _ => {}
                }
            }
            if kpool.is_none() {
                kpool = opt_hex(rest_kpool).ok()?;
            }
            Some(Op::Kernel(KernelOp::Rx {
                xs,
                sk: Some(sk),
                addr,
                len: Some(len),
                slot: Some(slot),
                kpool,
                prod: opt_hex(prod).ok()?,
                mode: mode.and_then(RxMode::parse),
            }))
        }
        b"krxdone" => {
            c.lit(b" xs=")?;
            let xs = c.hex()?;
            c.lit(b" slot=")?;
            let slot = c.hex()?;
            c.rest_ignored()?;
            Some(Op::Kernel(KernelOp::RxDone { xs, slot }))
        }
        b"ktx" if f.starts_with(b" kpool=") => {
            // The transmit probes see the pool, not the socket:
            // `kpool a`, then anything but `xs=`/`sk=` (`len= at=`).
            c.lit(b" kpool=")?;
            c.skip();
            c.lit(b" a=")?;
            let addr = c.hex()?;
            c.rest_lacks(&[b"xs", b"sk"])?;
            Some(Op::Kernel(KernelOp::Tx {
                xs: None,
                sk: None,
                addr,
            }))
        }
        b"ktx" => {
            // `xs sk a`, then anything (`len=`).
            c.lit(b" xs=")?;
            let xs = c.hex()?;
            c.lit(b" sk=")?;
            let sk = c.sk()?;
            c.lit(b" a=")?;
            let addr = c.hex()?;
            c.rest_ignored()?;
            Some(Op::Kernel(KernelOp::Tx {
                xs: Some(xs),
                sk: Some(sk),
                addr,
            }))
        }
        b"kflush" => {
            // `xs sk prod`, then anything (`cprod= at=`).
            c.lit(b" xs=")?;
            let xs = c.hex()?;
            c.lit(b" sk=")?;
            let sk = c.sk()?;
            c.lit(b" prod=")?;
            let prod = c.hex()?;
            c.rest_ignored()?;
            Some(Op::Kernel(KernelOp::Flush {
                xs,
                sk: Some(sk),
                prod: Some(prod),
                exact: false,
            }))
        }
        _ => None,
    }
}

/// The recorder's batch lines and the other frequent project lines in the
/// shape their writers print them (`rx sk= pool= idx= n= d=`, `fill pool=
/// sk= n= a=`, `kpoll napi= dev= work= budget=`, ...), under the same rules
/// as [`canonical_kernel_op`]: `None` sends the line to the general walk.
#[inline(always)]
fn canonical_batch_op<'a>(op: &[u8], f: &'a [u8]) -> Option<Op<'a>> {
    let mut c = Canon { s: f, i: 0 };
    let op = match op {
        b"rx" => {
            c.lit(b" sk=")?;
            let sk = c.sk()?;
            c.lit(b" pool=")?;
            let pool = c.hex()?;
            c.lit(b" idx=")?;
            let idx = c.hex()?;
            c.lit(b" n=")?;
            c.skip();
            c.lit(b" d=")?;
            let descs = c.list()?;
            Op::App(AppOp::Rx {
                sk,
                pool: Some(pool),
                idx: Some(idx),
                descs,
            })
        }
        b"tx" => {
            c.lit(b" sk=")?;
            let sk = c.sk()?;
            // The recorder names the pool too; `tx` does not read it.
            if c.lit(b" pool=").is_some() {
                c.skip();
            }
            c.lit(b" idx=")?;
            let idx = c.hex()?;
            c.lit(b" n=")?;
            c.skip();
            c.lit(b" d=")?;
            let descs = c.list()?;
            Op::App(AppOp::Tx {
                sk,
                idx: Some(idx),
                descs,
            })
        }
        b"fill" | b"comp" => {
            c.lit(b" pool=")?;
            let pool = Some(c.hex()?);
            let sk = match c.lit(b" sk=") {
                Some(()) => Some(c.sk()?),
                None => None,
            };
            c.lit(b" n=")?;
            c.skip();
            c.lit(b" a=")?;
            let addrs = c.list()?;
            if sk.is_none() {
                c.rest_lacks(&[b"sk"])?;
            }
            if op == b"fill" {
                Op::App(AppOp::Fill { pool, sk, addrs })
            } else {
                Op::App(AppOp::Comp { pool, sk, addrs })
            }
        }
        b"free" | b"hold" => {
            c.lit(b" n=")?;
            c.skip();
            c.lit(b" a=")?;
            let addrs = c.list()?;
            if op == b"free" {
                Op::App(AppOp::Free { addrs })
            } else {
                Op::App(AppOp::Hold { addrs })
            }
        }
        b"kcomp" => {
            c.lit(b" xs=")?;
            let xs = c.hex()?;
            c.lit(b" sk=")?;
            let sk = c.sk()?;
            c.lit(b" kpool=")?;
            let kpool = c.hex()?;
            c.lit(b" n=")?;
            let n = c.hex()?;
            c.lit(b" a=")?;
            let addrs = c.list()?;
            Op::Kernel(KernelOp::Comp {
                xs: Some(xs),
                sk: Some(sk),
                kpool: Some(kpool),
                n: Some(n),
                addrs,
            })
        }
        b"kpoll" => {
            c.lit(b" napi=")?;
            c.skip();
            c.lit(b" dev=")?;
            c.skip();
            c.lit(b" work=")?;
            let work = c.hex()?;
            c.lit(b" budget=")?;
            let budget = c.hex()?;
            Op::Kernel(KernelOp::Poll {
                work: Some(work),
                budget: Some(budget),
            })
        }
        b"stats" => {
            c.lit(b" sk=")?;
            let sk = c.sk()?;
            c.lit(b" rx_dropped=")?;
            let rx_dropped = c.hex()?;
            c.lit(b" rx_invalid=")?;
            c.skip();
            c.lit(b" tx_invalid=")?;
            c.skip();
            c.lit(b" rx_full=")?;
            let rx_full = c.hex()?;
            Op::App(AppOp::Stats {
                sk: Some(sk),
                rx_dropped: Some(rx_dropped),
                rx_full: Some(rx_full),
            })
        }
        _ => return None,
    };
    // Every key the operation reads is taken.
    c.rest_ignored()?;
    Some(op)
}

/// A required list: present, and starting and ending with a hex digit.
fn req_list(text: Option<&[u8]>) -> Result<AddrList<'_>, BadReason> {
    let text = text.ok_or(BadReason::BadField)?;
    // A cheap shape check only: the values are decoded once, later, by
    // whoever iterates the list, and items that do not parse are skipped.
    let shaped = text.first().is_some_and(u8::is_ascii_hexdigit)
        && text.last().is_some_and(u8::is_ascii_hexdigit);
    if !shaped {
        return Err(BadReason::BadField);
    }
    Ok(AddrList { text })
}

// ---------------------------------------------------------------------------
// seed vocabulary

/// `LABEL 0xADDR FROM -> TO[: expected 0x.. remaining: [..]]`, `0xADDR note`,
/// `descriptor DEC transitioned from X to Y`.
fn seed_line(msg: &[u8]) -> Option<SeedOp<'_>> {
    if let Some(p) = memmem::find(msg, b" -> ") {
        let left = trim(&msg[..p]);
        let right = trim_start(&msg[p + 4..]);
        let from_start = left.iter().rposition(|&b| is_ws(b)).map_or(0, |i| i + 1);
        let from = RingState::parse(&left[from_start..])?;
        let left2 = trim(&left[..from_start]);
        let addr_start = left2.iter().rposition(|&b| is_ws(b)).map_or(0, |i| i + 1);
        let addr = parse_hex0x(&left2[addr_start..])?;
        let label = trim(&left2[..addr_start]);
        let to_end = right
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(right.len());
        let to = RingState::parse(&right[..to_end])?;
        let tail = &right[to_end..];
        let expected = memmem::find(tail, b"expected").and_then(|q| {
            let r = trim_start(&tail[q + 8..]);
            let end = r
                .iter()
                .position(|b| !b.is_ascii_hexdigit() && *b != b'x')
                .unwrap_or(r.len());
            // `expected 0x1000900remaining:` has no space: stop at the first non-hex.
            let tok = &r[..end];
            let tok = strip_0x(tok);
            let hex_end = tok
                .iter()
                .position(|b| !b.is_ascii_hexdigit())
                .unwrap_or(tok.len());
            parse_hex(&tok[..hex_end])
        });
        let remaining = memmem::find(tail, b"remaining").map(|q| {
            let r = &tail[q..];
            let r = match memchr::memchr(b'[', r) {
                Some(o) => &r[o + 1..],
                None => &r[r.len()..],
            };
            let end = memchr::memchr(b']', r).unwrap_or(r.len());
            AddrList { text: &r[..end] }
        });
        return Some(SeedOp::Transition {
            label: if label.is_empty() { None } else { Some(label) },
            addr,
            from,
            to,
            expected,
            remaining,
        });
    }
    if let Some(rest) = msg.strip_prefix(b"descriptor ") {
        // flowtrackd's panic text: `descriptor 26476800 transitioned from Fill to Tx`
        let (num, r) = next_token(rest)?;
        let addr = parse_dec(num)?;
        let r = trim_start(r).strip_prefix(b"transitioned from ")?;
        let (from, r) = next_token(r)?;
        let r = trim_start(r).strip_prefix(b"to ")?;
        let (to, _) = next_token(r)?;
        let to = to.strip_suffix(b"'").unwrap_or(to);
        return Some(SeedOp::Transition {
            label: None,
            addr,
            from: RingState::parse(from)?,
            to: RingState::parse(to)?,
            expected: None,
            remaining: None,
        });
    }
    let (tok, _) = next_token(msg)?;
    if tok.starts_with(b"0x") {
        return Some(SeedOp::Note {
            addr: parse_hex0x(tok)?,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> Event<'_> {
        match parse_line(1, s.as_bytes()) {
            Line::Event(e) => e,
            other => panic!("not an event: {other:?}"),
        }
    }

    /// Every byte value in every lane of a word, next to other bytes: the
    /// word-at-a-time masks mark exactly the bytes their byte rules accept.
    #[test]
    fn word_masks_are_exact_for_every_byte_in_every_lane() {
        let fill = [0x00u8, 0x20, 0x30, 0x7f, 0x80, 0xff];
        for lane in 0..8 {
            for f in fill {
                for b in 0..=255u8 {
                    let mut bytes = [f; 8];
                    bytes[lane] = b;
                    let w = u64::from_le_bytes(bytes);
                    let bit = |m: u64, i: usize| m >> (8 * i + 7) & 1 == 1;
                    let (_, nonhex) = hex_bytes(w);
                    for (i, &x) in bytes.iter().enumerate() {
                        assert_eq!(bit(eq_bytes(w, b'['), i), x == b'[', "eq {x:#x}");
                        assert_eq!(
                            bit(not_graphic_bytes(w), i),
                            not_graphic(x),
                            "graphic {x:#x}"
                        );
                        assert_eq!(
                            bit(in_range_bytes(w, b'0', b'9'), i),
                            x.is_ascii_digit(),
                            "digit {x:#x}"
                        );
                        assert_eq!(bit(nonhex, i), HEX[usize::from(x)] >= 16, "hex {x:#x}");
                        assert_eq!(eq_bytes(w, b'[') & !HI, 0);
                    }
                }
            }
        }
    }

    /// The word-at-a-time number builders against plain arithmetic, for
    /// every width.
    #[test]
    fn word_numbers_match_plain_parsing() {
        let texts: [&[u8]; 4] = [
            b"0123456789abcdef",
            b"fedcba9876543210",
            b"FFFFFFFFffffffff",
            b"1000000000000001",
        ];
        for t in texts {
            for k in 1..=8 {
                let w = u64::from_le_bytes(t[..8].try_into().unwrap());
                let (vals, _) = hex_bytes(w);
                assert_eq!(Some(combine_hex(vals, k)), parse_hex(&t[..k]), "{t:?} {k}");
            }
        }
        let digits: [&[u8]; 3] = [b"12345678", b"98765432", b"00000009"];
        for t in digits {
            for k in 1..=8 {
                let w = u64::from_le_bytes(t[..8].try_into().unwrap());
                assert_eq!(Some(combine_dec(w, k)), parse_dec(&t[..k]), "{t:?} {k}");
            }
        }
    }

    #[test]
    fn seed_kernel_rx_line_with_nbsp() {
        let s = "\u{a0}\u{a0} iperf2-127018\u{a0}  [002] d.Z1. 542812.657090: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x9b/0x250) addr=0x13d3900 len=0x4e xs=0xffffa0c6e26ab400 fq=0xffffa0c72db94c40";
        let e = ev(s);
        assert_eq!(e.task, b"iperf2");
        assert_eq!(e.pid, Some(127018));
        assert_eq!(e.cpu, 2);
        assert_eq!(e.flags, b"d.Z1.");
        assert_eq!(e.ts.ns, Some(542_812_657_090_000));
        match e.op {
            Op::Kernel(KernelOp::Rx {
                xs,
                addr,
                len,
                kpool,
                ..
            }) => {
                assert_eq!(xs, 0xffffa0c6e26ab400);
                assert_eq!(addr, 0x13d3900);
                assert_eq!(len, Some(0x4e));
                assert_eq!(kpool, Some(0xffffa0c72db94c40));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tracefs_rx_line_of_a_6_12_kernel_gets_its_addr_from_the_parts() {
        // Aligned: addr = data - umem (xp_get_handle of 6.9+).
        let s = "          <idle>-0       [000] ..s1.    41.251932: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x4/0x1a0) data=0xffffc90000e45100 hard=0xffffc90000e45000 umem=0xffffc90000400000 hr=0x0 unal=0x0 len=0x40 xs=0xffff888004b8a000 fq=0xffff888004b8c000 slot=0x3";
        match ev(s).op {
            Op::Kernel(KernelOp::Rx { addr, len, .. }) => {
                assert_eq!(addr, 0xa45100);
                assert_eq!(len, Some(0x40));
            }
            other => panic!("{other:?}"),
        }
        // Unaligned: the data's offset (+ headroom) moves into the upper 16 bits.
        let s = "          <idle>-0       [000] ..s1.    41.251932: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x4/0x1a0) data=0xffffc90000e45180 hard=0xffffc90000e45080 umem=0xffffc90000400000 hr=0x80 unal=0x1 len=0x40 xs=0xffff888004b8a000";
        match ev(s).op {
            Op::Kernel(KernelOp::Rx { addr, .. }) => {
                assert_eq!(addr, (0x180 << 48) | 0xa45000);
            }
            other => panic!("{other:?}"),
        }
        // Without addr= and without the parts there is no frame: not a receive.
        let s = "          <idle>-0       [000] ..s1.    41.251932: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x4/0x1a0) len=0x40 xs=0xffff888004b8a000";
        assert!(matches!(ev(s).op, Op::Unknown));
    }

    #[test]
    fn seed_transition_with_glued_remaining_and_ellipsis() {
        let s = "flowtrackd-9chS-142014  [000] \u{2026}.. 609766.698617: tracing_mark_write: ingress q:1 0xdeadbeefdeadbeef FILL -> RX: expected 0x1000900remaining: [fe4100, f9c100, \u{2026},]";
        let e = ev(s);
        assert_eq!(e.task, b"flowtrackd-9chS");
        assert_eq!(e.pid, Some(142014));
        match e.op {
            Op::Seed(SeedOp::Transition {
                label,
                addr,
                from,
                to,
                expected,
                remaining,
            }) => {
                assert_eq!(label, Some(&b"ingress q:1"[..]));
                assert_eq!(addr, 0xdeadbeefdeadbeef);
                assert_eq!((from, to), (RingState::Fill, RingState::Rx));
                assert_eq!(expected, Some(0x1000900));
                let r = remaining.unwrap();
                assert_eq!(
                    r.iter().map(|d| d.addr).collect::<Vec<_>>(),
                    vec![0xfe4100, 0xf9c100]
                );
                assert!(r.truncated());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn project_lines() {
        let e = ev(" fwd-1234  [001] ..... 1234.567890: tracing_mark_write: xskdbg:1 rx sk=1:5:1 pool=1 idx=3c n=2 d=16ce900:4e,160a100:4e");
        match e.op {
            Op::App(AppOp::Rx { sk, idx, descs, .. }) => {
                assert_eq!(
                    sk,
                    SockKey {
                        netns: 1,
                        ifindex: 5,
                        queue: 1
                    }
                );
                assert_eq!(idx, Some(0x3c));
                let d: Vec<_> = descs.iter().collect();
                assert_eq!(d.len(), 2);
                assert_eq!(d[1].addr, 0x160a100);
                assert_eq!(d[1].len, Some(0x4e));
            }
            other => panic!("{other:?}"),
        }
        let e = ev(" <idle>-0  [002] d.s.. 1234.567901: bpf_trace_printk: xskdbg:1 krx xs=ffff9b2c4a1e8000 sk=1:5:1 a=13d3900 len=4e slot=3e");
        assert!(matches!(
            e.op,
            Op::Kernel(KernelOp::Rx {
                slot: Some(0x3e),
                ..
            })
        ));
        let e = ev("a-1 [000] .... 5.000000001: tracing_mark_write: xskdbg:1 sock sk=1:5:1 pool=1 umem=1 label=ingress q:1");
        assert!(matches!(
            e.op,
            Op::App(AppOp::Sock {
                label: Some(b"ingress q:1"),
                ..
            })
        ));
        let bad = parse_line(
            7,
            b"a-1 [000] .... 5.0: tracing_mark_write: xskdbg:1 fill pool=1 n=2 a=12,zz;",
        );
        assert!(matches!(
            bad,
            Line::Bad {
                reason: BadReason::BadField,
                line: 7,
                ..
            }
        ));
    }

    #[test]
    fn headers_and_meta() {
        assert!(matches!(
            parse_line(1, b"##### CPU 2 buffer started ####"),
            Line::Meta {
                meta: Meta::CpuBufferStarted(2),
                ..
            }
        ));
        assert!(matches!(
            parse_line(
                1,
                b"# entries-in-buffer/entries-written: 918959/953688441   #P:4"
            ),
            Line::Meta {
                meta: Meta::Entries {
                    in_buffer: 918959,
                    written: 953688441,
                    cpus: Some(4)
                },
                ..
            }
        ));
        assert!(matches!(
            parse_line(1, b"CPU:1 [LOST 12 EVENTS]"),
            Line::Meta {
                meta: Meta::Lost { cpu: 1, count: 12 },
                ..
            }
        ));
        assert!(matches!(parse_line(1, b"garbage here"), Line::Bad { .. }));
        assert!(matches!(parse_line(1, b"\r"), Line::Blank { .. }));
    }

    #[test]
    fn counter_clock_and_trace_cmd() {
        let e = ev("  task-with-dash-77 [003] 123456789: print: tracing_mark_write: 0x1000 egress_tx_queue forward");
        assert_eq!(e.ts.ns, None);
        assert_eq!(e.ts.order, 123456789);
        assert_eq!(e.task, b"task-with-dash");
        assert!(matches!(e.op, Op::Seed(SeedOp::Note { addr: 0x1000 })));
    }
}
