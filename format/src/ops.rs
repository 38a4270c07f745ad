//! What a line means: the operations of `docs/TRACE-FORMAT.md` (and of the
//! other vocabularies the analyzer reads) as typed values borrowing the
//! line's bytes.

use crate::{AddrList, SockKey, State};

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
                | AppOp::Hold { addrs, .. }
                | AppOp::Free { addrs, .. },
            ) => Some(*addrs),
            Op::App(AppOp::Rx { descs, .. } | AppOp::Tx { descs, .. }) => Some(*descs),
            Op::Kernel(KernelOp::Comp { addrs, .. }) => Some(*addrs),
            _ => None,
        }
    }

    /// An application operation on one of the four rings (FILL, RX, TX,
    /// COMPLETION).
    pub fn is_app_ring(&self) -> bool {
        matches!(
            self,
            Op::App(AppOp::Fill { .. } | AppOp::Rx { .. } | AppOp::Tx { .. } | AppOp::Comp { .. })
        )
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
        /// Socket identity (`sid=`, the socket's `SO_COOKIE`), when given.
        sid: Option<u64>,
        /// The socket's file descriptor (`fd=`), when given.
        fd: Option<u64>,
        /// Pool id.
        pool: Option<u64>,
        /// UMEM id.
        umem: Option<u64>,
        /// `gone=1`: the socket's end (the application dropped it).
        gone: bool,
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
        /// Socket identity, when given.
        sid: Option<u64>,
        /// Pool id, when given.
        pool: Option<u64>,
        /// Consumer counter of the first descriptor (unmasked).
        idx: Option<u64>,
        /// Descriptors.
        descs: AddrList<'a>,
        /// The RX producer the application saw when it peeked (`prod=`):
        /// it was entitled to read every slot below it.
        prod: Option<u64>,
    },
    /// `tx`: the app produced these descriptors on TX.
    Tx {
        /// Socket key.
        sk: SockKey,
        /// Socket identity, when given.
        sid: Option<u64>,
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
        /// The UMEM whose free list it is (absent before the recorder
        /// wrote it: then the only UMEM declared, if only one is).
        umem: Option<u64>,
        /// Addresses.
        addrs: AddrList<'a>,
    },
    /// `free`: frames returned to the app's free list.
    Free {
        /// The UMEM whose free list it is, as for `hold`.
        umem: Option<u64>,
        /// Addresses.
        addrs: AddrList<'a>,
    },
    /// `stats`: an `XDP_STATISTICS` snapshot.
    Stats {
        /// Socket key.
        sk: Option<SockKey>,
        /// Socket identity, when given.
        sid: Option<u64>,
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
        /// Socket identity, when given.
        sid: Option<u64>,
        /// Pool, when given.
        pool: Option<u64>,
        /// The descriptor value.
        addr: u64,
        /// `from=` state.
        from: Option<State>,
        /// `to=` state.
        to: Option<State>,
        /// `expected=` address.
        expected: Option<u64>,
        /// `remaining=` list.
        remaining: AddrList<'a>,
    },
    /// `audit`: the frames a UMEM's application holds (taken from RX or
    /// COMPLETION, or from its own free list, and not returned), oldest
    /// first, and since when.
    Audit {
        /// UMEM id.
        umem: Option<u64>,
        /// How many frames the application holds.
        held: Option<u64>,
        /// Descriptors taken from RX and COMPLETION so far (a counter).
        taken: Option<u64>,
        /// The longest hold, in takes, of a frame the application returned.
        hold_max: Option<u64>,
        /// The application records its own free list (`free`/`hold`).
        freelist: bool,
        /// The held frames listed (frame keys).
        frames: AddrList<'a>,
        /// For each listed frame, the `taken` count when it was taken.
        since: AddrList<'a>,
        /// For each listed frame, how long it has been held (ms).
        age_ms: AddrList<'a>,
    },
    /// A project op the analyzer does not decode (`kstack`, `kxdperr`,
    /// `recycle`, a newer writer's): context only.
    Other {
        /// The operation word.
        op: &'a [u8],
    },
}

/// How a frame reached the socket (`krx ... mode=`): the tracepoint backend
/// prints it, because it decides what the producer value at that moment
/// proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
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
    #[inline]
    pub fn parse(word: &[u8]) -> Option<RxMode> {
        match word {
            b"skb" => Some(RxMode::Skb),
            b"drv" => Some(RxMode::Drv),
            b"zc" => Some(RxMode::Zc),
            _ => None,
        }
    }

    /// The `mode=` word.
    pub fn name(self) -> &'static str {
        match self {
            RxMode::Skb => "skb",
            RxMode::Drv => "drv",
            RxMode::Zc => "zc",
        }
    }
}

/// How the probes saw RX publication (`probe ... flush=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum FlushMode {
    /// `kflush` lines come from the flush itself.
    Exact,
    /// The backend only sees where publication must have happened.
    Inferred,
    /// No flush information.
    None,
}

impl FlushMode {
    /// The `flush=` word.
    pub fn name(self) -> &'static str {
        match self {
            FlushMode::Exact => "exact",
            FlushMode::Inferred => "inferred",
            FlushMode::None => "none",
        }
    }

    /// `exact` or `inferred`; anything else (or nothing) is no flush
    /// information.
    #[inline]
    pub fn parse(word: Option<&[u8]>) -> FlushMode {
        match word {
            Some(b"exact") => FlushMode::Exact,
            Some(b"inferred") => FlushMode::Inferred,
            _ => FlushMode::None,
        }
    }
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
    /// How a receive attempt (`__xsk_rcv_zc`, whose entry printed a `krx`
    /// or `__xsk_rcv_zc_L7`) ended: `kxdperr why=rcv` (it failed: the RX
    /// ring was full) or a return probe's `$retval` (`__xsk_rcv_zc_ret`).
    RxOutcome {
        /// Kernel socket pointer (`kxdperr`; a return probe has none: it
        /// ends its CPU's latest attempt).
        xs: Option<u64>,
        /// The slot the attempt tried to reserve, when printed.
        slot: Option<u64>,
        /// 0 when the slot was reserved, else the negative errno.
        ret: i64,
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
        from: State,
        /// New state.
        to: State,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_words_read_back() {
        for m in [RxMode::Skb, RxMode::Drv, RxMode::Zc] {
            assert_eq!(RxMode::parse(m.name().as_bytes()), Some(m));
        }
        for f in [FlushMode::Exact, FlushMode::Inferred, FlushMode::None] {
            assert_eq!(FlushMode::parse(Some(f.name().as_bytes())), f);
        }
        assert_eq!(FlushMode::parse(None), FlushMode::None);
        assert_eq!(RxMode::parse(b"DRV"), None);
    }
}
