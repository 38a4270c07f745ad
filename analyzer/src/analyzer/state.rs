//! The analyzer's state: where each frame is, the sockets on both sides of
//! the rings, the pools' FILL order and each CPU's buffer, and [`At`], the
//! reference to one event that all of them keep.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::ops::{Index, IndexMut};

use crate::parse::Event;
use crate::report::TsRef;
use crate::timeline::Ring;

/// An index into one [`IdVec`], typed by what it indexes.
pub(super) trait Id: Copy {
    /// The id of the `i`th entry.
    fn from_index(i: usize) -> Self;
    /// The entry's position.
    fn index(self) -> usize;
}

/// Declares an [`Id`], stored as index + 1 in a `NonZeroU32` so that
/// `Option<Id>` ("no socket", "no pool") takes four bytes like the bare
/// index it replaces: [`Frame`] must stay one cache line.
macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub(super) struct $name(NonZeroU32);

        impl Id for $name {
            #[inline]
            fn from_index(i: usize) -> Self {
                // Tables stay far below 2^32 entries (raw findings are
                // capped, sockets and pools are what the trace names).
                $name(NonZeroU32::MIN.saturating_add(i as u32))
            }
            #[inline]
            fn index(self) -> usize {
                self.0.get() as usize - 1
            }
        }
    };
}

id!(
    /// An application-side socket ([`ASock`]).
    ASockId
);
id!(
    /// A kernel socket, one `xs` ([`KSock`]).
    KSockId
);
id!(
    /// A UMEM pool and its FILL order ([`Pool`]).
    PoolId
);
id!(
    /// A raw finding, numbered in order of creation.
    RawId
);

/// A table indexed by its own kind of [`Id`] only.
pub(super) struct IdVec<I, T> {
    items: Vec<T>,
    id: PhantomData<I>,
}

impl<I, T> Default for IdVec<I, T> {
    fn default() -> Self {
        IdVec {
            items: Vec::new(),
            id: PhantomData,
        }
    }
}

impl<I: Id, T> IdVec<I, T> {
    /// Append `t`; its id.
    pub(super) fn push(&mut self, t: T) -> I {
        let i = I::from_index(self.items.len());
        self.items.push(t);
        i
    }
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }
    pub(super) fn get(&self, i: I) -> Option<&T> {
        self.items.get(i.index())
    }
    pub(super) fn get_mut(&mut self, i: I) -> Option<&mut T> {
        self.items.get_mut(i.index())
    }
    pub(super) fn last_mut(&mut self) -> Option<&mut T> {
        self.items.last_mut()
    }
    pub(super) fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }
    pub(super) fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.items.iter_mut()
    }
    /// Every entry with its id.
    pub(super) fn ids(&self) -> impl Iterator<Item = (I, &T)> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, t)| (I::from_index(i), t))
    }
}

impl<I: Id, T> Index<I> for IdVec<I, T> {
    type Output = T;
    #[inline]
    fn index(&self, i: I) -> &T {
        &self.items[i.index()]
    }
}

impl<I: Id, T> IndexMut<I> for IdVec<I, T> {
    #[inline]
    fn index_mut(&mut self, i: I) -> &mut T {
        &mut self.items[i.index()]
    }
}

impl<'a, I, T> IntoIterator for &'a IdVec<I, T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<I, T> IntoIterator for IdVec<I, T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// How to write a timestamp back as the trace did, from its ordering value:
/// 0 for a counter clock (a bare integer), 1..=9 for a time clock with that
/// many fractional digits (the value is then nanoseconds). One byte instead
/// of the text keeps [`At`], copied into every frame and queue entry, at 24
/// bytes. (Traces write seconds without leading zeros and at most 9
/// fractional digits; anything else comes back normalized.)
#[derive(Clone, Copy, Default)]
pub(super) struct TsText(u8);

impl TsText {
    pub(super) fn new(ts: &crate::parse::Timestamp<'_>) -> Self {
        let Some(ns) = ts.ns else {
            return TsText(0);
        };
        // `secs.frac`, secs without leading zeros: the digits after the dot
        // follow from the text's length and the seconds' value, without
        // reading the text (the checkers never touch a line's bytes
        // otherwise, and that first touch was a cache miss per line).
        let secs_digits = (ns / 1_000_000_000).checked_ilog10().unwrap_or(0) as usize + 1;
        let frac = ts.text.len().saturating_sub(secs_digits + 1);
        TsText(frac.clamp(1, 9) as u8)
    }
    pub(super) fn render(self, order: u64) -> String {
        if self.0 == 0 {
            return order.to_string();
        }
        let digits = u32::from(self.0);
        let frac = (order % 1_000_000_000) / 10u64.pow(9 - digits);
        format!(
            "{}.{:0w$}",
            order / 1_000_000_000,
            frac,
            w = digits as usize
        )
    }
}

/// A reference to one event.
#[derive(Clone, Copy, Default)]
pub(super) struct At {
    pub(super) line: u64,
    pub(super) order: u64,
    pub(super) cpu: u32,
    pub(super) ts: TsText,
}

impl At {
    pub(super) fn of(ev: &Event<'_>) -> At {
        At {
            line: ev.line,
            order: ev.ts.order,
            cpu: ev.cpu,
            ts: TsText::new(&ev.ts),
        }
    }
    /// Nanoseconds, when the clock is a time.
    pub(super) fn ns(&self) -> Option<u64> {
        (self.ts.0 != 0).then_some(self.order)
    }
    /// The smallest step of the stamp as written: events closer than this
    /// may have happened in either order (1 for a counter clock, which
    /// orders every event).
    pub(super) fn resolution_ns(&self) -> u64 {
        match self.ts.0 {
            0 => 1,
            d => 10u64.pow(9 - u32::from(d)),
        }
    }
    /// The timestamp as the trace wrote it.
    pub(super) fn ts_text(&self) -> String {
        self.ts.render(self.order)
    }
    pub(super) fn tsref(&self) -> TsRef {
        TsRef {
            ts: self.ts_text(),
            ts_ns: self.ns(),
            line: self.line,
        }
    }
    /// `line 12 (CPU 2, 542812.657026)`
    pub(super) fn cite(&self) -> String {
        format!("line {} (CPU {}, {})", self.line, self.cpu, self.ts_text())
    }
}

/// Who holds a frame on the application side.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum AppHold {
    /// The app does not hold it (every copy is in a kernel-owned ring).
    No,
    Rx,
    Comp,
    Held,
    Free,
}

/// One frame (chunk): how many copies each ring holds, who holds it on the
/// application side, and its last event.
#[repr(align(64))]
pub(super) struct Frame {
    /// Copies on FILL (app produced, kernel not yet received).
    pub(super) fill: u16,
    /// Copies the kernel wrote to RX that the app has not read.
    pub(super) krx: u16,
    /// Copies on TX not yet completed.
    pub(super) tx: u16,
    /// Completions produced by the kernel not yet consumed by the app.
    pub(super) kcomp: u16,
    pub(super) app: AppHold,
    pub(super) last: At,
    /// The kernel socket that last received it.
    pub(super) krx_ks: Option<KSockId>,
    /// The app socket that last sent it.
    pub(super) tx_as: Option<ASockId>,
    /// The app's consumption counter when the app last took the frame.
    pub(super) held_at: u64,
    /// The descriptor value the app took it as.
    pub(super) held_addr: u64,
    /// The pool whose FILL order holds it (when on FILL).
    pub(super) fill_pool: Option<PoolId>,
}

impl Frame {
    pub(super) fn new(at: At) -> Frame {
        Frame {
            fill: 0,
            krx: 0,
            tx: 0,
            kcomp: 0,
            app: AppHold::No,
            last: at,
            krx_ks: None,
            tx_as: None,
            held_at: 0,
            held_addr: 0,
            fill_pool: None,
        }
    }
    pub(super) fn kernel_copies(&self) -> u16 {
        self.fill + self.krx + self.tx + self.kcomp
    }
    /// Where the frame is, for an explanation; taken cheaply on every
    /// event, written out only when a finding needs it.
    pub(super) fn place(&self) -> Place {
        Place {
            fill: self.fill,
            krx: self.krx,
            tx: self.tx,
            kcomp: self.kcomp,
            app: self.app,
        }
    }
    pub(super) fn state_name(&self) -> &'static str {
        if self.fill > 0 {
            "FILL"
        } else if self.krx > 0 {
            "RX"
        } else if self.tx > 0 {
            "TX"
        } else if self.kcomp > 0 {
            "COMP"
        } else {
            match self.app {
                AppHold::Rx => "RX",
                AppHold::Comp => "COMP",
                AppHold::Held => "HELD",
                AppHold::Free => "FREE",
                AppHold::No => "UNKNOWN",
            }
        }
    }
}

/// A frame's whereabouts at one moment (see [`Frame::place`]).
#[derive(Clone, Copy)]
pub(super) struct Place {
    pub(super) fill: u16,
    pub(super) krx: u16,
    pub(super) tx: u16,
    pub(super) kcomp: u16,
    pub(super) app: AppHold,
}

/// An application-side socket: an `sk=` key or a seed trace's label.
pub(super) struct ASock {
    pub(super) name: String,
    pub(super) pool: Option<PoolId>,
    /// The kernel socket it is joined to.
    pub(super) ks: Option<KSockId>,
    pub(super) ring: Ring,
    pub(super) rx: u64,
    /// Frames on TX in order: (frame, when, sequence number).
    pub(super) tx_fifo: VecDeque<(u64, At, u64)>,
    /// Highest sequence number completed.
    pub(super) tx_consumed: u64,
    pub(super) tx_seq: u64,
    /// The recorder's `stats ... rx_full=`: first and latest value.
    pub(super) rx_full: Option<(u64, u64)>,
    /// Where the previous RX batch ended (its `idx` + `n`).
    pub(super) rx_end: Option<u64>,
    /// Its RX index once went back: perhaps masked, see `poison`.
    pub(super) rx_masked: bool,
    /// Its identity (`sid=`), when the recorder wrote one.
    pub(super) sid: Option<u64>,
    /// `fd=` and `label=` of its `sock` declaration.
    pub(super) fd: Option<u64>,
    pub(super) label: Option<Vec<u8>>,
    /// Other sockets share its `sk` (several `sock` declarations of one
    /// key): lines without `sid=` then go to one of them by ring index.
    pub(super) shared: bool,
    /// What findings call it when its first line could have been another
    /// socket's of the same key (`outer q:0 or outer q:0 s:1`).
    pub(super) alias: Option<String>,
    /// The TX producer / RX consumer index after its last `tx` / `rx`.
    pub(super) tx_next: Option<u64>,
    pub(super) rx_next: Option<u64>,
    /// The RX position after the last descriptor the app read (any
    /// socket, shared or not).
    pub(super) rx_read: Option<u64>,
    /// The PID of the thread of its last `tx` / `rx`.
    pub(super) last_pid: Option<u32>,
    /// The ordinal of the UMEM its `sock` line names.
    pub(super) umem: Option<u16>,
}

impl ASock {
    pub(super) fn new(name: String) -> ASock {
        ASock {
            name,
            pool: None,
            ks: None,
            ring: Ring::default(),
            rx: 0,
            tx_fifo: VecDeque::new(),
            tx_consumed: 0,
            tx_seq: 0,
            rx_full: None,
            rx_end: None,
            rx_masked: false,
            sid: None,
            fd: None,
            label: None,
            shared: false,
            alias: None,
            tx_next: None,
            rx_next: None,
            rx_read: None,
            last_pid: None,
            umem: None,
        }
    }
}

/// A kernel receive (`krx`): what the kernel wrote at one RX position.
#[derive(Clone, Copy)]
pub(super) struct KRx {
    pub(super) frame: u64,
    pub(super) addr: u64,
    pub(super) slot: Option<u64>,
    pub(super) at: At,
    pub(super) written: bool,
    pub(super) published_unwritten: bool,
    /// The `krx` itself proved its slot published by another CPU
    /// (`concurrent_producer/published-before-redirect`, raw `early`).
    pub(super) early: bool,
    pub(super) early_raw: Option<RawId>,
    /// The flush that published the slot while unwritten (line 0: none).
    pub(super) pub_by: At,
    /// Its `krxdone` (line 0: not seen).
    pub(super) done: At,
    /// The application's take count when it was received: a take of its
    /// frame counted past this one took this copy out of RX.
    pub(super) taken: u64,
}

/// One CPU's producer section on one RX ring: from its first receive to
/// its flush.
pub(super) struct Section {
    pub(super) cpu: u32,
    pub(super) start: At,
    pub(super) frames: Vec<u64>,
    /// The RX slots its receives reserved (a few), when the probes print them.
    pub(super) slots: Vec<u64>,
    /// Receives of other CPUs inside the section: when, frame, addr, slot.
    pub(super) intruders: Vec<(At, u64, u64, Option<u64>)>,
}

/// A kernel socket (`xs`): its RX ring as the kernel produced it.
pub(super) struct KSock {
    pub(super) xs: u64,
    /// The app socket it is joined to.
    pub(super) asock: Option<ASockId>,
    pub(super) q: VecDeque<KRx>,
    pub(super) aligned: bool,
    /// Order of the last kernel entry a read matched.
    pub(super) anchor: Option<u64>,
    pub(super) sections: Vec<Section>,
    /// Closed sections, emptied, for the next ones to reuse.
    pub(super) spare_sections: Vec<Section>,
    pub(super) racy: Vec<u64>,
    pub(super) flush_seen: bool,
    pub(super) rxdone_seen: bool,
    /// Slots reserved (`krx`) and not yet written (`krxdone`), oldest first:
    /// what a flush can publish too early. Short in any sane trace, so a
    /// flush checks these instead of the whole receive queue.
    pub(super) unwritten: VecDeque<u64>,
    pub(super) published: Option<u64>,
    /// The latest flush with a producer value, and that value.
    pub(super) last_flush: Option<(At, u64)>,
    /// Poisoned reads at a slot no `krx` had been seen for yet (the
    /// tracepoint's `krx` comes after the write, so a slot published early
    /// can be read before it): slot, raw index. A few, oldest dropped.
    pub(super) pending_poison: VecDeque<(u64, RawId)>,
    pub(super) krx: u64,
    pub(super) ring: Ring,
    /// Receives not yet known to have reserved their slot (see `attempts`).
    pub(super) attempts: Vec<Attempt>,
    /// The socket's failed receive attempts (RX ring full).
    pub(super) full: RxFull,
    /// SKB mode: the slots of the latest `krx mode=skb` lines (empty: not
    /// seen in SKB mode), and the receives placed before their read
    /// because their line had not come yet (see `skb`).
    pub(super) skb_seen: VecDeque<u64>,
    pub(super) skb_ahead: VecDeque<SkbAhead>,
    /// The furthest RX position a `krx mode=skb` wrote (a 32-bit ring
    /// counter): a read of a position at or before it has had its receive.
    pub(super) skb_max: Option<u32>,
    /// The application's RX batches on the joined socket so far.
    pub(super) rx_batches: u64,
}

/// A receive placed before the application's read of its slot, waiting
/// for its late `krx mode=skb` line.
#[derive(Clone, Copy)]
pub(super) struct SkbAhead {
    pub(super) slot: u64,
    pub(super) frame: u64,
    pub(super) at: At,
}

/// A receive whose entry probe fired (`krx`, `__xsk_rcv_zc_L7`) and whose
/// reservation is not confirmed yet: the probes fire before
/// `xskq_prod_reserve_desc()` decides.
#[derive(Clone, Copy)]
pub(super) struct Attempt {
    pub(super) frame: u64,
    pub(super) slot: Option<u64>,
    pub(super) at: At,
}

/// Failed receive attempts of one socket: runs of them (RX-full episodes),
/// each ended by the socket's next confirmed receive.
#[derive(Clone, Copy, Default)]
pub(super) struct RxFull {
    /// Failed attempts in the current run.
    pub(super) run: u64,
    pub(super) attempts: u64,
    pub(super) episodes: u64,
    pub(super) longest: u64,
    /// The first failed attempt, and the frame it tried.
    pub(super) first: Option<(At, u64)>,
    pub(super) last: At,
    /// Failures said by an outcome line (`kxdperr`, a return probe), not
    /// inferred from a later attempt.
    pub(super) proven: u64,
}

impl KSock {
    pub(super) fn new(xs: u64) -> KSock {
        KSock {
            xs,
            asock: None,
            q: VecDeque::new(),
            aligned: false,
            anchor: None,
            sections: Vec::new(),
            spare_sections: Vec::new(),
            racy: Vec::new(),
            flush_seen: false,
            rxdone_seen: false,
            unwritten: VecDeque::new(),
            published: None,
            last_flush: None,
            pending_poison: VecDeque::new(),
            krx: 0,
            ring: Ring::default(),
            attempts: Vec::new(),
            full: RxFull::default(),
            skb_seen: VecDeque::new(),
            skb_max: None,
            skb_ahead: VecDeque::new(),
            rx_batches: 0,
        }
    }
}

/// A UMEM pool: its FILL order (frame, sequence number, when).
#[derive(Default)]
pub(super) struct Pool {
    pub(super) fifo: VecDeque<(u64, u64, At)>,
    pub(super) kernel_consumes: bool,
    pub(super) seq: u64,
    pub(super) consumed_max: u64,
    pub(super) peak: usize,
    /// The ordinal of the UMEM its `pool` line names.
    pub(super) umem: Option<u16>,
}

/// One CPU's buffer: its first and last events, its recent events, and
/// the kernel sockets whose producer section it has open.
pub(super) struct CpuState {
    pub(super) first: At,
    pub(super) last: At,
    pub(super) events: u64,
    pub(super) marker: bool,
    pub(super) ring: Ring,
    pub(super) open: Vec<KSockId>,
    /// This CPU's latest receive attempt (socket, line): what a return
    /// probe, which names no socket, is the outcome of.
    pub(super) attempt: Option<(KSockId, u64)>,
}

impl CpuState {
    pub(super) fn new(at: At) -> CpuState {
        CpuState {
            first: at,
            last: at,
            events: 0,
            marker: false,
            ring: Ring::default(),
            open: Vec::new(),
            attempt: None,
        }
    }
}

/// Whose ring of recent events an event goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RingId {
    K(KSockId),
    A(ASockId),
    Cpu(u32),
}

// Copied into every frame and queue entry; a frame is one cache line.
const _: () = assert!(std::mem::size_of::<At>() == 24);
const _: () = assert!(std::mem::size_of::<Frame>() == 64);
