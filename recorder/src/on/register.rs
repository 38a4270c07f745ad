//! Registration: the state each handle ([`Umem`], [`Pool`], [`Sock`])
//! shares between threads, and how each is set up: its frame table, FIFO
//! deques and statistics baseline allocated here, off the hot path, and its
//! declaration written to the trace.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::order::{PoolFifo, RingIdx, SockTx};
use super::recorder::{RecInner, Recorder};
use super::rings::{Pool, Sock, Umem};
use crate::fifo::Deque;
use crate::sys;
use crate::types::{
    AddrMode, Error, PoolConfig, SockConfig, SockKey, StatsSource, UmemConfig, XdpStats,
};

/// A pool's state, shared by its handles and its sockets.
pub(super) struct PoolInner {
    /// Number in trace lines.
    pub(super) id: u32,
    /// 1-based index among the UMEM's pools: the owner in the frame word of
    /// a frame on FILL or COMPLETION.
    pub(super) local: u16,
    pub(super) key: SockKey,
    pub(super) fifo: Mutex<PoolFifo>,
    pub(super) socks: RwLock<Vec<Arc<SockInner>>>,
    /// FILL producer / COMPLETION consumer index the app's calls gave.
    pub(super) fill_idx: RingIdx,
    pub(super) comp_idx: RingIdx,
    /// TX descriptors of the pool's sockets the kernel refused, oldest
    /// first (raw addresses, at most [`REFUSED_MAX`]): kernels whose copy
    /// mode completes a refused descriptor (Debian's 6.12.118, 6.18) hand
    /// the address back on COMPLETION, older ones and zero-copy never do.
    pub(super) refused: Mutex<std::collections::VecDeque<u64>>,
}

/// Refused TX descriptors remembered per pool for a completion that may
/// come: past this, the oldest are forgotten (a kernel that never completes
/// them would otherwise grow the list for ever).
pub(super) const REFUSED_MAX: usize = 1024;

/// A socket's state, shared by its handles.
pub(super) struct SockInner {
    /// The socket's number.
    pub(super) id: u32,
    /// 1-based index among the UMEM's sockets: the owner in the frame word
    /// of a frame on RX or TX.
    pub(super) local: u16,
    pub(super) key: SockKey,
    /// Its identity on every line (`sid=`): `SO_COOKIE`.
    pub(super) sid: Option<u64>,
    pub(super) label: Option<String>,
    pub(super) pool: Arc<PoolInner>,
    /// Where `XDP_STATISTICS` come from; dropped (with the duplicate fd it
    /// may hold) when the app lets go of its last handle, so that the
    /// recorder never keeps a closed socket alive: a socket kept open keeps
    /// its queue bound, and the app's next bind there fails with EBUSY
    /// (6.12's xskxceiver TEARDOWN binds ten sockets in a row).
    pub(super) stats: Mutex<Option<Arc<dyn StatsSource>>>,
    /// Live `Sock` handles; at 0 the socket is closed (`closed`).
    pub(super) handles: AtomicUsize,
    /// The app dropped its last handle: the socket is gone.
    pub(super) closed: AtomicBool,
    pub(super) last_stats: Mutex<Option<XdpStats>>,
    pub(super) max_frags: u32,
    pub(super) tx: Mutex<SockTx>,
    /// Thread (small id) with a multi-buffer packet open on RX, or 0.
    pub(super) rx_open: AtomicU32,
    /// Ring index of the next RX / TX descriptor: counted when the app
    /// does not give it, checked for continuity when it does.
    pub(super) rx_idx: RingIdx,
    pub(super) tx_idx: RingIdx,
    /// RX ring entries (0: unknown), to tell a masked index from a real one.
    pub(super) rx_size: u32,
    /// The app poisoned every RX slot before the first FILL
    /// ([`Sock::declare_rx_poisoned`]): an all-zero descriptor was read
    /// from outside the ring.
    pub(super) prepoisoned: AtomicBool,
}

/// A UMEM's state: its frame table and everything registered on it.
pub(super) struct UmemInner {
    pub(super) rec: Arc<RecInner>,
    /// Number in trace lines.
    pub(super) id: u32,
    pub(super) cfg: UmemConfig,
    pub(super) nframes: u32,
    /// log2 of the chunk size when it is a power of two.
    pub(super) shift: Option<u32>,
    /// One frame word per frame (`frames`); unaligned: one per slot of
    /// `keys`.
    pub(super) table: Box<[AtomicU64]>,
    /// Unaligned mode only (empty otherwise): the buffer address each slot
    /// of `table` stands for, plus one (0: free). A buffer may start
    /// anywhere, and two may share a chunk (xskxceiver fills 0x0 and
    /// 0xfe0 with 4 KiB chunks), so a chunk index would merge them.
    pub(super) keys: Box<[AtomicU64]>,
    pub(super) pools: RwLock<Vec<Arc<PoolInner>>>,
    pub(super) socks: RwLock<Vec<Arc<SockInner>>>,
    /// Per frame: the `takes` count (high 32 bits) and the coarse clock's
    /// ms (low 32) when the application took it (`audit`).
    pub(super) taken_at: Box<[AtomicU64]>,
    /// Descriptors the application took from RX and COMPLETION.
    pub(super) takes: AtomicU64,
    /// The longest hold, in takes, of a frame the application returned.
    pub(super) hold_max: AtomicU64,
    /// The application records its own free list (`hold`/`free` calls).
    pub(super) freelist: AtomicBool,
}

impl Recorder {
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
        // Unaligned: an open-addressed table with room for twice as many
        // buffer addresses as the UMEM has chunks.
        let slots = match cfg.mode {
            AddrMode::Aligned => frames,
            AddrMode::Unaligned => (frames * 2).next_power_of_two().max(64),
        };
        let words = || {
            (0..slots)
                .map(|_| AtomicU64::new(0))
                .collect::<Box<[AtomicU64]>>()
        };
        let table = words();
        let taken_at = words();
        let keys = match cfg.mode {
            AddrMode::Aligned => Box::default(),
            AddrMode::Unaligned => words(),
        };
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
            keys,
            cfg,
            pools: RwLock::new(Vec::new()),
            socks: RwLock::new(Vec::new()),
            taken_at,
            takes: AtomicU64::new(0),
            hold_max: AtomicU64::new(0),
            freelist: AtomicBool::new(false),
        });
        {
            let mut umems = super::lock(&self.inner.umems);
            umems.retain(|w| w.strong_count() > 0);
            umems.push(Arc::downgrade(&u));
        }
        u.declare_umem();
        Ok(Umem { u })
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
            fill_idx: RingIdx::default(),
            comp_idx: RingIdx::default(),
            refused: Mutex::new(std::collections::VecDeque::new()),
        });
        pools.push(p.clone());
        drop(pools);
        self.u.declare_pool(&p);
        Ok(Pool {
            u: self.u.clone(),
            p,
        })
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
            (None, Some(fd)) => sys::FdStats::dup(fd)
                .ok()
                .map(|s| Arc::new(s) as Arc<dyn StatsSource>),
            (None, None) => None,
        };
        let baseline = stats.as_ref().and_then(|s| s.read().ok());
        let cap = self.u.nframes as usize + cfg.tx_size as usize;
        let s = Arc::new(SockInner {
            id: self.u.rec.next_sock.fetch_add(1, Ordering::Relaxed),
            local: socks.len() as u16 + 1,
            key: cfg.key,
            sid: cfg
                .cookie
                .or_else(|| cfg.fd.and_then(|fd| sys::socket_cookie(fd).ok())),
            label: cfg.label.clone(),
            pool: self.p.clone(),
            stats: Mutex::new(stats),
            handles: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
            last_stats: Mutex::new(baseline),
            max_frags: cfg.max_frags.max(1),
            tx: Mutex::new(SockTx {
                fifo: Deque::with_capacity(cap),
                open: 0,
            }),
            rx_open: AtomicU32::new(0),
            rx_idx: RingIdx::default(),
            tx_idx: RingIdx::default(),
            rx_size: cfg.rx_size,
            prepoisoned: AtomicBool::new(false),
        });
        socks.push(s.clone());
        drop(socks);
        self.p
            .socks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(s.clone());
        self.u.sock_line(&s, cfg.fd, false);
        if let Some(b) = baseline {
            self.u.write_stats(&s, &b);
        }
        Ok(Sock {
            u: self.u.clone(),
            s,
        })
    }

    /// The pool's number in trace lines.
    pub fn id(&self) -> u32 {
        self.p.id
    }
}

impl Sock {
    /// The socket's number.
    pub fn id(&self) -> u32 {
        self.s.id
    }
}
