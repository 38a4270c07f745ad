//! AF_XDP sockets sharing one UMEM across queues, devices and namespaces
//! (XDP_SHARED_UMEM), in copy mode (veth has no zero-copy), built on
//! `xdpilone`. The ring handles are public so callers (the recorder's
//! adapter, the soak forwarder) can wrap every ring operation.

use std::num::NonZeroU32;
use std::os::fd::{BorrowedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Arc;

use xdpilone::xdp::XdpDesc;
use xdpilone::{
    CompletionQueue, FillQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, User,
};

use crate::error::{Error, Result};
use crate::netns::NetNs;
use crate::sys;

/// Sizes of the UMEM and of every socket's rings (ring sizes are powers of
/// two; the kernel refuses others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UmemConfig {
    /// Number of frames in the UMEM.
    pub frames: u32,
    /// Bytes per frame (chunk): 2048 or 4096.
    pub frame_size: u32,
    /// Headroom the kernel leaves before packet data (on top of
    /// XDP_PACKET_HEADROOM in copy mode).
    pub headroom: u32,
    /// FILL ring entries per device queue.
    pub fill_size: u32,
    /// COMPLETION ring entries per device queue.
    pub comp_size: u32,
    /// RX ring entries per socket.
    pub rx_size: u32,
    /// TX ring entries per socket.
    pub tx_size: u32,
    /// Bind with XDP_USE_NEED_WAKEUP (inherited by every shared socket).
    pub need_wakeup: bool,
}

impl Default for UmemConfig {
    fn default() -> Self {
        UmemConfig {
            frames: 4096,
            frame_size: 2048,
            headroom: 0,
            fill_size: 2048,
            comp_size: 2048,
            rx_size: 2048,
            tx_size: 2048,
            need_wakeup: false,
        }
    }
}

impl UmemConfig {
    fn validate(&self) -> Result<()> {
        let pow2 = |n: u32| n.is_power_of_two();
        if !(self.frame_size == 2048 || self.frame_size == 4096) {
            return Err(Error::Invalid(format!(
                "frame_size {}: use 2048 or 4096",
                self.frame_size
            )));
        }
        if self.frames == 0 || u64::from(self.frames) * u64::from(self.frame_size) > 1 << 32 {
            return Err(Error::Invalid(format!(
                "frames {}: 1..=4 GiB of UMEM",
                self.frames
            )));
        }
        for (name, n) in [
            ("fill_size", self.fill_size),
            ("comp_size", self.comp_size),
            ("rx_size", self.rx_size),
            ("tx_size", self.tx_size),
        ] {
            if !pow2(n) {
                return Err(Error::Invalid(format!("{name} {n} is not a power of two")));
            }
        }
        if self.headroom >= self.frame_size / 2 {
            return Err(Error::Invalid(format!(
                "headroom {} too large",
                self.headroom
            )));
        }
        Ok(())
    }
}

/// The UMEM memory: an anonymous mapping, unmapped when the last holder
/// (the UMEM or any socket) drops.
#[derive(Debug)]
pub struct UmemArea {
    ptr: NonNull<u8>,
    len: usize,
    frame_size: u32,
}

// SAFETY: the area is plain shared memory; ownership of each frame is the
// application's discipline (the very thing this project checks), and every
// access below is a bounds-checked raw copy, never a long-lived reference.
unsafe impl Send for UmemArea {}
// SAFETY: as above.
unsafe impl Sync for UmemArea {}

impl UmemArea {
    fn new(len: usize, frame_size: u32) -> Result<Self> {
        // SAFETY: anonymous private mapping, no fd; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::last_os(format!("mmap({len} bytes of UMEM)")));
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| Error::Invalid("mmap returned NULL".into()))?;
        Ok(UmemArea {
            ptr,
            len,
            frame_size,
        })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the area is empty (never, for a created UMEM).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// The chunk (frame base) an address belongs to, in aligned mode.
    pub fn chunk_of(&self, addr: u64) -> u64 {
        addr & !(u64::from(self.frame_size) - 1)
    }

    /// Copies `len` bytes at UMEM offset `addr` into `out` (cleared first);
    /// false when the range is outside the UMEM.
    pub fn read_into(&self, addr: u64, len: u32, out: &mut Vec<u8>) -> bool {
        let Some(start) = self.range(addr, len) else {
            return false;
        };
        out.clear();
        out.reserve(len as usize);
        // SAFETY: `range` checked start..start+len lies in the mapping; `out`
        // has capacity for len bytes, which are initialised by the copy.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(start),
                out.as_mut_ptr(),
                len as usize,
            );
            out.set_len(len as usize);
        }
        true
    }

    /// Writes `data` at UMEM offset `addr`; false when out of range.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        let Ok(len) = u32::try_from(data.len()) else {
            return false;
        };
        let Some(start) = self.range(addr, len) else {
            return false;
        };
        // SAFETY: bounds checked; the source is a separate Rust slice.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(start), data.len())
        };
        true
    }

    /// Fills `len` bytes at `addr` with `byte` (e.g. poisoning a freed
    /// frame); false when out of range.
    pub fn fill(&self, addr: u64, len: u32, byte: u8) -> bool {
        let Some(start) = self.range(addr, len) else {
            return false;
        };
        // SAFETY: bounds checked.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(start), byte, len as usize) };
        true
    }

    fn range(&self, addr: u64, len: u32) -> Option<usize> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len as usize)?;
        (end <= self.len).then_some(start)
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped; no references remain
        // (accessors only make short copies).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One UMEM shared by every socket made from it.
///
/// The first socket becomes the UMEM's own socket (the fd the UMEM is
/// registered on); every later one binds with XDP_SHARED_UMEM and gets its
/// own FILL/COMPLETION rings, because it is on another device or queue.
pub struct SharedUmem {
    // Field order is drop order: the xdpilone handle (kernel fd) before the
    // memory it points into.
    umem: Option<Umem>,
    area: Arc<UmemArea>,
    cfg: UmemConfig,
}

// SAFETY: xdpilone's `Umem` is !Send only because it stores a raw pointer to
// our mapping; it has no thread affinity (an fd and Arc'd bookkeeping).
unsafe impl Send for SharedUmem {}

impl std::fmt::Debug for SharedUmem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedUmem")
            .field("cfg", &self.cfg)
            .field("bound", &self.umem.is_some())
            .finish()
    }
}

/// XDP_STATISTICS of one socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames dropped for reasons other than invalid descriptors.
    pub rx_dropped: u64,
    /// Invalid descriptors found on FILL.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors found on TX.
    pub tx_invalid_descs: u64,
    /// Frames dropped because RX was full.
    pub rx_ring_full: u64,
    /// Times FILL was empty when a frame arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// Times TX was empty when the kernel looked.
    pub tx_ring_empty_descs: u64,
}

impl SharedUmem {
    /// Maps the UMEM memory; the kernel registration happens with the first
    /// socket, inside that socket's namespace.
    pub fn new(cfg: UmemConfig) -> Result<Self> {
        cfg.validate()?;
        let len = cfg.frames as usize * cfg.frame_size as usize;
        Ok(SharedUmem {
            umem: None,
            area: Arc::new(UmemArea::new(len, cfg.frame_size)?),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UmemConfig {
        &self.cfg
    }

    /// The memory, shareable with worker threads.
    pub fn area(&self) -> &Arc<UmemArea> {
        &self.area
    }

    /// Base address of every frame, in order.
    pub fn frame_addrs(&self) -> impl Iterator<Item = u64> + '_ {
        (0..u64::from(self.cfg.frames)).map(|i| i * u64::from(self.cfg.frame_size))
    }

    /// Creates an AF_XDP socket for (`ifname`, `queue`) in `netns` (the
    /// calling thread's namespace when `None`), with its own FILL and
    /// COMPLETION rings, and binds it in copy mode. Register its fd in the
    /// device's XSKMAP ([`crate::XdpProgram::register`]) to receive.
    pub fn socket(&mut self, netns: Option<&NetNs>, ifname: &str, queue: u32) -> Result<XskSocket> {
        match netns {
            Some(ns) => ns.run(|| self.socket_here(ifname, queue))?,
            None => self.socket_here(ifname, queue),
        }
    }

    fn socket_here(&mut self, ifname: &str, queue: u32) -> Result<XskSocket> {
        let ifindex = sys::ifindex(ifname)?;
        let xerr = |what: &'static str| {
            move |e: xdpilone::Errno| Error::Xsk {
                what,
                ifindex,
                queue,
                source: std::io::Error::from_raw_os_error(e.get_raw().abs()),
            }
        };
        let mut info = IfInfo::invalid();
        info.from_ifindex(ifindex)
            .map_err(xerr("interface lookup"))?;
        info.set_queue(queue);

        let first = self.umem.is_none();
        if first {
            let xcfg = xdpilone::UmemConfig {
                fill_size: self.cfg.fill_size,
                complete_size: self.cfg.comp_size,
                frame_size: self.cfg.frame_size,
                headroom: self.cfg.headroom,
                flags: 0,
            };
            let len = self.area.len;
            let slice = std::ptr::slice_from_raw_parts_mut(self.area.ptr.as_ptr(), len);
            let area = NonNull::new(slice).ok_or_else(|| Error::Invalid("null UMEM".into()))?;
            // SAFETY: `area` is our page-aligned mapping of `len` bytes, kept
            // alive by `self.area` (and by every socket's Arc) for longer than
            // the Umem, which drops first.
            let umem = unsafe { Umem::new(xcfg, area) }.map_err(xerr("UMEM registration"))?;
            self.umem = Some(umem);
        }
        let Some(umem) = self.umem.as_ref() else {
            return Err(Error::Invalid("UMEM missing after registration".into()));
        };
        let sock = if first {
            Socket::with_shared(&info, umem).map_err(xerr("socket"))?
        } else {
            Socket::new(&info).map_err(xerr("socket"))?
        };
        let dq = umem
            .fq_cq(&sock)
            .map_err(xerr("FILL/COMPLETION ring setup"))?;
        // The kernel refuses bind flags on XDP_SHARED_UMEM sockets (EINVAL):
        // they inherit copy mode and need-wakeup from the UMEM's socket.
        let bind_flags = if first {
            SocketConfig::XDP_BIND_COPY
                | if self.cfg.need_wakeup {
                    SocketConfig::XDP_BIND_NEED_WAKEUP
                } else {
                    0
                }
        } else {
            0
        };
        let scfg = SocketConfig {
            rx_size: NonZeroU32::new(self.cfg.rx_size),
            tx_size: NonZeroU32::new(self.cfg.tx_size),
            bind_flags,
        };
        let user = umem.rx_tx(&sock, &scfg).map_err(xerr("RX/TX ring setup"))?;
        let rx = user.map_rx().map_err(xerr("RX ring mmap"))?;
        let tx = user.map_tx().map_err(xerr("TX ring mmap"))?;
        umem.bind(&user).map_err(xerr("bind"))?;
        let fd = user.as_raw_fd();
        // SAFETY: `user` keeps the fd open for the duration of this call.
        let netns_cookie = sys::netns_cookie(unsafe { BorrowedFd::borrow_raw(fd) })?;
        let (fill, comp) = dq.into_parts();
        Ok(XskSocket {
            rx,
            tx,
            fill,
            comp,
            user,
            fd,
            key: SocketKey {
                netns_cookie,
                ifindex,
                queue,
            },
            ifname: ifname.to_string(),
            shares_umem_fd: !first,
            area: Arc::clone(&self.area),
        })
    }
}

impl SharedUmem {
    /// A further AF_XDP socket on the device and queue of `primary`, bound
    /// with XDP_SHARED_UMEM to it: the kernel gives it `primary`'s buffer
    /// pool, so both sockets share one FILL and one COMPLETION ring (kept by
    /// `primary`'s handle). It has its own RX and TX rings. Must be called
    /// in `primary`'s namespace (`netns`).
    pub fn socket_sharing_pool(
        &mut self,
        netns: Option<&NetNs>,
        primary: &XskSocket,
    ) -> Result<PoolMate> {
        match netns {
            Some(ns) => ns.run(|| self.pool_mate_here(primary))?,
            None => self.pool_mate_here(primary),
        }
    }

    fn pool_mate_here(&mut self, primary: &XskSocket) -> Result<PoolMate> {
        let key = primary.key;
        let xerr = |what: &'static str| {
            move |e: xdpilone::Errno| Error::Xsk {
                what,
                ifindex: key.ifindex,
                queue: key.queue,
                source: std::io::Error::from_raw_os_error(e.get_raw().abs()),
            }
        };
        let Some(umem) = self.umem.as_ref() else {
            return Err(Error::Invalid(
                "a socket sharing a pool needs the UMEM registered (create the primary socket first)"
                    .into(),
            ));
        };
        let mut info = IfInfo::invalid();
        info.from_ifindex(key.ifindex)
            .map_err(xerr("interface lookup"))?;
        info.set_queue(key.queue);
        let sock = Socket::new(&info).map_err(xerr("socket"))?;
        let scfg = SocketConfig {
            rx_size: NonZeroU32::new(self.cfg.rx_size),
            tx_size: NonZeroU32::new(self.cfg.tx_size),
            // Shared sockets take no bind flags of their own (EINVAL).
            bind_flags: 0,
        };
        let user = umem.rx_tx(&sock, &scfg).map_err(xerr("RX/TX ring setup"))?;
        let rx = user.map_rx().map_err(xerr("RX ring mmap"))?;
        let tx = user.map_tx().map_err(xerr("TX ring mmap"))?;
        let fd = user.as_raw_fd();
        // xdpilone binds shared sockets to the UMEM's own socket, which is
        // on another device or queue for all but the first queue: the
        // kernel would then make a new pool and refuse it (EBUSY, the queue
        // has one). Bound to the primary, the pool is the primary's.
        sys::bind_shared_umem(fd, key.ifindex, key.queue, primary.fd).map_err(|source| {
            Error::Xsk {
                what: "bind (XDP_SHARED_UMEM, same device and queue)",
                ifindex: key.ifindex,
                queue: key.queue,
                source,
            }
        })?;
        Ok(PoolMate {
            rx,
            tx,
            user,
            fd,
            key,
            area: Arc::clone(&self.area),
        })
    }
}

/// An AF_XDP socket sharing another socket's buffer pool on the same device
/// and queue ([`SharedUmem::socket_sharing_pool`]): its own RX and TX rings,
/// the pool's FILL and COMPLETION rings are the other socket's.
pub struct PoolMate {
    /// RX ring (kernel produces).
    pub rx: RingRx,
    /// TX ring (user produces).
    pub tx: RingTx,
    user: User,
    fd: RawFd,
    key: SocketKey,
    area: Arc<UmemArea>,
}

impl std::fmt::Debug for PoolMate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolMate").field("key", &self.key).finish()
    }
}

impl PoolMate {
    /// The socket's fd as a number.
    pub fn fd_raw(&self) -> RawFd {
        self.fd
    }

    /// (netns cookie, ifindex, queue): the same as the pool owner's.
    pub fn key(&self) -> SocketKey {
        self.key
    }

    /// The UMEM memory.
    pub fn area(&self) -> &Arc<UmemArea> {
        &self.area
    }

    /// Puts descriptors on TX (as many as fit, in order) and kicks the
    /// kernel; returns how many went.
    pub fn transmit(&mut self, descs: &[XdpDesc]) -> u32 {
        let mut w = self.tx.transmit(descs.len().min(u32::MAX as usize) as u32);
        let n = w.insert(descs.iter().copied());
        w.commit();
        drop(w);
        if n > 0 || self.tx.pending() > 0 {
            self.tx.wake();
        }
        n
    }

    /// XDP_STATISTICS.
    pub fn stats(&self) -> Result<XskStats> {
        let s = self.user.statistics_v2().map_err(|e| Error::Xsk {
            what: "XDP_STATISTICS",
            ifindex: self.key.ifindex,
            queue: self.key.queue,
            source: std::io::Error::from_raw_os_error(e.get_raw().abs()),
        })?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }
}

/// The identity of a socket's queue: (netns cookie, ifindex, queue id).
/// Keying by (ifindex, queue) alone collides across namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketKey {
    /// SO_NETNS_COOKIE of the socket.
    pub netns_cookie: u64,
    /// Interface index in that namespace.
    pub ifindex: u32,
    /// Queue id.
    pub queue: u32,
}

/// One bound AF_XDP socket with its four rings.
pub struct XskSocket {
    /// RX ring (kernel produces).
    pub rx: RingRx,
    /// TX ring (user produces).
    pub tx: RingTx,
    /// FILL ring of this socket's device queue (user produces).
    pub fill: FillQueue,
    /// COMPLETION ring of this socket's device queue (kernel produces).
    pub comp: CompletionQueue,
    user: User,
    fd: RawFd,
    key: SocketKey,
    ifname: String,
    shares_umem_fd: bool,
    area: Arc<UmemArea>,
}

impl std::fmt::Debug for XskSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskSocket")
            .field("key", &self.key)
            .field("ifname", &self.ifname)
            .finish()
    }
}

impl XskSocket {
    /// The socket's fd (for the XSKMAP, poll, a trace's `xs` identity).
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `user` keeps the fd open as long as `self` lives.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    /// The socket's fd as a number (for APIs that take an `i32`).
    pub fn fd_raw(&self) -> RawFd {
        self.fd
    }

    /// (netns cookie, ifindex, queue).
    pub fn key(&self) -> SocketKey {
        self.key
    }

    /// Interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// False for the UMEM's own socket, true for XDP_SHARED_UMEM ones.
    pub fn shares_umem(&self) -> bool {
        self.shares_umem_fd
    }

    /// The UMEM memory.
    pub fn area(&self) -> &Arc<UmemArea> {
        &self.area
    }

    /// Puts frames from `frames` on FILL (taking them from the end) until
    /// FILL is full or `frames` empty; returns how many went.
    pub fn fill_from(&mut self, frames: &mut Vec<u64>) -> u32 {
        let mut w = self.fill.fill(frames.len().min(u32::MAX as usize) as u32);
        let mut n = 0;
        while let Some(&addr) = frames.last() {
            if !w.insert_once(addr) {
                break;
            }
            frames.pop();
            n += 1;
        }
        w.commit();
        n
    }

    /// Takes up to `max` descriptors from RX into `out` (appended).
    pub fn receive(&mut self, max: u32, out: &mut Vec<XdpDesc>) -> u32 {
        let mut r = self.rx.receive(max);
        let mut n = 0;
        while let Some(d) = r.read() {
            out.push(d);
            n += 1;
        }
        r.release();
        n
    }

    /// Like [`XskSocket::receive`], calling `before_release(n)` after the `n`
    /// descriptors were read and before their slots are handed back to the
    /// kernel (e.g. to poison the consumed slots).
    pub fn receive_then(
        &mut self,
        max: u32,
        out: &mut Vec<XdpDesc>,
        before_release: impl FnOnce(u32),
    ) -> u32 {
        let mut r = self.rx.receive(max);
        let mut n = 0;
        while let Some(d) = r.read() {
            out.push(d);
            n += 1;
        }
        before_release(n);
        r.release();
        n
    }

    /// Puts descriptors on TX (as many as fit, in order) and kicks the
    /// kernel (copy mode transmits from sendto); returns how many went.
    pub fn transmit(&mut self, descs: &[XdpDesc]) -> u32 {
        let mut w = self.tx.transmit(descs.len().min(u32::MAX as usize) as u32);
        let n = w.insert(descs.iter().copied());
        w.commit();
        drop(w);
        if n > 0 || self.tx.pending() > 0 {
            self.tx.wake();
        }
        n
    }

    /// Takes completed TX frame addresses into `out` (appended).
    pub fn complete(&mut self, max: u32, out: &mut Vec<u64>) -> u32 {
        let mut r = self.comp.complete(max);
        let mut n = 0;
        while let Some(a) = r.read() {
            out.push(a);
            n += 1;
        }
        r.release();
        n
    }

    /// Waits up to `timeout_ms` for RX to become readable.
    pub fn wait_rx(&self, timeout_ms: i32) -> Result<bool> {
        sys::poll_readable(self.fd, timeout_ms)
    }

    /// XDP_STATISTICS.
    pub fn stats(&self) -> Result<XskStats> {
        let s = self.user.statistics_v2().map_err(|e| Error::Xsk {
            what: "XDP_STATISTICS",
            ifindex: self.key.ifindex,
            queue: self.key.queue,
            source: std::io::Error::from_raw_os_error(e.get_raw().abs()),
        })?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }
}
