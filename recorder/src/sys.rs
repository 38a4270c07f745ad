//! The recorder's few system calls, kept in one place: `XDP_STATISTICS`,
//! `SO_NETNS_COOKIE`, the thread id, the clock, and mapping an RX ring to
//! write poison back into consumed slots. (tracefs goes through
//! `xskdbg-tracefs`.)

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use crate::types::{StatsSource, XdpDesc, XdpStats};

/// `SOL_XDP`.
pub const SOL_XDP: libc::c_int = 283;
/// `XDP_MMAP_OFFSETS` getsockopt.
pub const XDP_MMAP_OFFSETS: libc::c_int = 1;
/// `XDP_STATISTICS` getsockopt.
pub const XDP_STATISTICS: libc::c_int = 7;
/// `SO_NETNS_COOKIE` (Linux 5.14+).
pub const SO_NETNS_COOKIE: libc::c_int = 71;

/// Read `XDP_STATISTICS` of an AF_XDP socket. Older kernels fill only the
/// first three fields; the rest stay 0.
pub fn xdp_statistics(fd: i32) -> io::Result<XdpStats> {
    let mut st = XdpStats::default();
    let mut len = std::mem::size_of::<XdpStats>() as libc::socklen_t;
    // SAFETY: `st` is a writable buffer of `len` bytes that outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_STATISTICS,
            (&mut st as *mut XdpStats).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// `SO_NETNS_COOKIE` of a socket: tells network namespaces apart where
/// ifindex values collide.
pub fn netns_cookie(fd: i32) -> io::Result<u64> {
    let mut v: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `v` is a writable u64 and `len` its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut v as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// `SO_COOKIE` of a socket: a number the kernel gives it once, unique for
/// as long as the system runs, so two sockets that share a device queue
/// (and so a `sk=` key) are told apart in the trace.
pub fn socket_cookie(fd: i32) -> io::Result<u64> {
    let mut v: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `v` is a writable u64 and `len` its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&mut v as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// `XDP_STATISTICS` read through a duplicate of a socket fd: the caller's
/// fd number may be closed and reused for another file while the recorder
/// still reads; the duplicate stays this socket. (It also keeps the socket
/// open until the recorder's `Sock` is dropped.)
#[derive(Debug)]
pub struct FdStats(OwnedFd);

impl FdStats {
    /// Duplicates `fd` (close-on-exec) for later statistics reads.
    pub fn dup(fd: i32) -> io::Result<FdStats> {
        // SAFETY: F_DUPFD_CLOEXEC takes any integer and fails with EBADF
        // when it is not an open fd; nothing is borrowed.
        let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `r` is a new fd that nothing else owns.
        Ok(FdStats(unsafe { OwnedFd::from_raw_fd(r) }))
    }
}

impl StatsSource for FdStats {
    fn read(&self) -> io::Result<XdpStats> {
        xdp_statistics(self.0.as_raw_fd())
    }
}

/// The calling thread's kernel id.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// CLOCK_MONOTONIC in nanoseconds (the vDSO makes this cheap).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Write `poison` into the address of `n` RX slots starting at ring index
/// `first` (unmasked consumer counter). Call it after reading the
/// descriptors and before releasing them to the kernel: a slot the kernel
/// later exposes without writing it then reads back as `poison`.
///
/// # Safety
/// `ring` must point to the descriptor array of a mapped RX ring with
/// `mask + 1` entries, and slots `first..first + n` must be owned by the
/// caller (read, not yet released).
pub unsafe fn poison_rx_slots(ring: *mut XdpDesc, mask: u32, first: u32, n: u32, poison: u64) {
    for i in 0..n {
        let slot = first.wrapping_add(i) & mask;
        // SAFETY: the caller guarantees `slot <= mask` indexes the mapped array.
        unsafe {
            let d = ring.add(slot as usize);
            std::ptr::write_volatile(std::ptr::addr_of_mut!((*d).addr), poison);
        }
    }
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct RingOffsets {
    producer: u64,
    consumer: u64,
    desc: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct MmapOffsets {
    rx: RingOffsets,
    tx: RingOffsets,
    fr: RingOffsets,
    cr: RingOffsets,
}

/// A second mapping of a socket's RX ring, to read its consumer counter and
/// write poison into consumed slots, whatever library owns the ring.
#[derive(Debug)]
pub struct RxRingMap {
    base: NonNull<u8>,
    len: usize,
    producer: *const u32,
    consumer: *const u32,
    descs: *mut XdpDesc,
    mask: u32,
    /// Whether `map` made this mapping (and `drop` unmaps it); false when it
    /// uses the socket library's own mapping in place.
    owned: bool,
}

/// One mapping of `/proc/self/maps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: usize,
    /// Length in bytes.
    pub len: usize,
    /// Mapped shared and writable (`rw-s`): writes reach the ring.
    pub shared_writable: bool,
}

/// The mappings at page offset 0 (the RX ring, `XDP_PGOFF_RX_RING`) of the
/// file with inode `ino` on device `dev` (`(major, minor)`) in a
/// `/proc/self/maps` text.
pub fn ring_mappings(maps: &str, dev: (u32, u32), ino: u64) -> Vec<Mapping> {
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let range = f.next()?;
            let perms = f.next()?;
            let offset = f.next()?;
            let (major, minor) = f.next()?.split_once(':')?;
            let inode: u64 = f.next()?.parse().ok()?;
            let this_dev = (
                u32::from_str_radix(major, 16).ok()?,
                u32::from_str_radix(minor, 16).ok()?,
            );
            if inode != ino || this_dev != dev || u64::from_str_radix(offset, 16).ok()? != 0 {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let start = usize::from_str_radix(a, 16).ok()?;
            let end = usize::from_str_radix(b, 16).ok()?;
            Some(Mapping {
                start,
                len: end.checked_sub(start)?,
                shared_writable: perms.starts_with("rw") && perms.ends_with('s'),
            })
        })
        .collect()
}

/// The one mapping of the RX ring of socket `fd` this process has, checked
/// to hold `need` bytes and to be shared and writable.
fn existing_mapping(fd: i32, need: usize) -> io::Result<*mut u8> {
    // SAFETY: an all-zero stat is a valid out buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let dev = (libc::major(st.st_dev), libc::minor(st.st_dev));
    let found = ring_mappings(&maps, dev, st.st_ino);
    let what = format!("socket inode {}", st.st_ino);
    match found[..] {
        [] => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no mapping of {what} at offset 0"),
        )),
        [m] if m.len < need => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the RX ring mapping of {what} is {} bytes, the ring size given needs {need}: wrong ring size?",
                m.len
            ),
        )),
        [m] if !m.shared_writable => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the RX ring mapping of {what} is not shared and writable"),
        )),
        [m] => Ok(m.start as *mut u8),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} mappings of the RX ring of {what}: cannot tell which one its owner keeps",
                found.len()
            ),
        )),
    }
}

// SAFETY: the mapping is plain shared memory; the consumer counter is read
// atomically and slots are written only by the thread that owns them.
unsafe impl Send for RxRingMap {}

impl RxRingMap {
    /// Map the RX ring of AF_XDP socket `fd`, whose ring has `size`
    /// entries, a second time. The mapping is this value's own: it stays
    /// valid whatever happens to the socket library's ring or the fd.
    ///
    /// Some kernels refuse a second mapping once the socket is bound (Linux
    /// 6.1: `xsk_mmap` answers EBUSY): map before binding there, or use
    /// [`RxRingMap::map_or_reuse`].
    pub fn map(fd: i32, size: u32) -> io::Result<RxRingMap> {
        Self::map_with(fd, size, false)
    }

    /// [`RxRingMap::map`], except that where the kernel refuses a second
    /// mapping after bind, the socket library's own mapping of the ring is
    /// used in place. It is found in `/proc/self/maps` by the socket's
    /// device and inode at page offset 0; it must be the only one there,
    /// shared and writable, and long enough for `size` entries.
    ///
    /// # Safety
    /// When the library's mapping is used, nothing unmaps it while the
    /// returned value is used (`consumer`, `slot`, `poison`): the ring
    /// object that owns it (xdpilone's `RingRx`, libxdp's `xsk_ring_cons`)
    /// must outlive the returned value, or at least its last use.
    pub unsafe fn map_or_reuse(fd: i32, size: u32) -> io::Result<RxRingMap> {
        Self::map_with(fd, size, true)
    }

    fn map_with(fd: i32, size: u32, reuse: bool) -> io::Result<RxRingMap> {
        if !size.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("RX ring size {size} is not a power of two"),
            ));
        }
        let mut off = MmapOffsets::default();
        let mut len = std::mem::size_of::<MmapOffsets>() as libc::socklen_t;
        // SAFETY: `off` is writable and `len` its size.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                SOL_XDP,
                XDP_MMAP_OFFSETS,
                (&mut off as *mut MmapOffsets).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if (len as usize) < std::mem::size_of::<MmapOffsets>() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "kernel without ring flags offsets (XDP_MMAP_OFFSETS v1); need Linux 5.4+",
            ));
        }
        let map_len = off.rx.desc as usize + size as usize * std::mem::size_of::<XdpDesc>();
        // SAFETY: a fresh shared mapping of the socket's RX ring (page offset 0).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            )
        };
        let (p, owned) = if p == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBUSY) {
                return Err(e);
            }
            if !reuse {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "this kernel refuses a second mapping of a bound socket's RX ring ({e}): \
                         map it before bind, or reuse the ring's mapping (RxRingMap::map_or_reuse)"
                    ),
                ));
            }
            let existing = existing_mapping(fd, map_len).map_err(|f| {
                io::Error::new(
                    f.kind(),
                    format!("mmap after bind refused ({e}) and no existing mapping: {f}"),
                )
            })?;
            (existing.cast::<libc::c_void>(), false)
        } else {
            (p, true)
        };
        let base =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        // SAFETY: the offsets come from the kernel and lie inside the mapping.
        let (producer, consumer, descs) = unsafe {
            (
                base.as_ptr().add(off.rx.producer as usize) as *const u32,
                base.as_ptr().add(off.rx.consumer as usize) as *const u32,
                base.as_ptr().add(off.rx.desc as usize) as *mut XdpDesc,
            )
        };
        Ok(RxRingMap {
            base,
            len: map_len,
            producer,
            consumer,
            descs,
            mask: size - 1,
            owned,
        })
    }

    /// The consumer counter as last released by the app (unmasked).
    pub fn consumer(&self) -> u32 {
        // SAFETY: `consumer` points into the live mapping, u32-aligned.
        unsafe {
            (*(self.consumer as *const std::sync::atomic::AtomicU32))
                .load(std::sync::atomic::Ordering::Acquire)
        }
    }

    /// The producer counter as the kernel last published it (unmasked).
    pub fn producer(&self) -> u32 {
        // SAFETY: `producer` points into the live mapping, u32-aligned.
        unsafe {
            (*(self.producer as *const std::sync::atomic::AtomicU32))
                .load(std::sync::atomic::Ordering::Acquire)
        }
    }

    /// Entries of the ring.
    pub fn size(&self) -> u32 {
        self.mask.wrapping_add(1)
    }

    /// Read RX slot `idx` (unmasked) as it is in the ring now.
    pub fn slot(&self, idx: u32) -> XdpDesc {
        // SAFETY: the masked index is inside the mapped array.
        unsafe { std::ptr::read_volatile(self.descs.add((idx & self.mask) as usize)) }
    }

    /// Write `poison` into slots `first..first + n` (read, not yet released).
    pub fn poison(&self, first: u32, n: u32, poison: u64) {
        let n = n.min(self.mask + 1);
        // SAFETY: `descs` is the mapped array of `mask + 1` entries; the caller
        // of the ring owns the slots it just read.
        unsafe { poison_rx_slots(self.descs, self.mask, first, n, poison) }
    }

    /// Write `poison` into every slot: only while the kernel cannot write
    /// any (before the first FILL of the socket's pool).
    pub fn poison_all(&self, poison: u64) {
        self.poison(0, self.size(), poison);
    }
}

impl Drop for RxRingMap {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: unmapping exactly what `map` mapped.
            unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_mapping_is_found_by_device_inode_and_offset_zero() {
        let maps = "\
7f0000000000-7f0000001000 rw-s 180000000 00:08 4242                       socket:[4242]
7f0000002000-7f0000004000 rw-s 00000000 00:08 4242                       socket:[4242]
7f0000004000-7f0000005000 r--s 00000000 00:08 99                         socket:[99]
7f0000006000-7f0000007000 r--p 00000000 fd:01 4242                       /usr/lib/x.so
";
        let m = |start, len, shared_writable| Mapping {
            start,
            len,
            shared_writable,
        };
        assert_eq!(
            ring_mappings(maps, (0, 8), 4242),
            [m(0x7f0000002000, 0x2000, true)]
        );
        assert_eq!(
            ring_mappings(maps, (0, 8), 99),
            [m(0x7f0000004000, 0x1000, false)]
        );
        // Same inode number on another device: another file.
        assert_eq!(
            ring_mappings(maps, (0xfd, 1), 4242),
            [m(0x7f0000006000, 0x1000, false)]
        );
        assert!(ring_mappings(maps, (0, 8), 7).is_empty());
        assert!(ring_mappings("garbage\n\n7-1 rw-s 0 00:08 7\n", (0, 8), 7).is_empty());
    }

    #[test]
    fn a_mapping_that_is_not_a_bound_socket_ring_is_refused() {
        // A pipe is no AF_XDP socket: XDP_MMAP_OFFSETS fails before any mmap.
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert!(RxRingMap::map(fds[0], 64).is_err());
        // SAFETY: an fd that is not a socket: nothing is mapped or reused.
        assert!(unsafe { RxRingMap::map_or_reuse(fds[0], 64) }.is_err());
        assert!(RxRingMap::map(fds[0], 63).is_err());
        // No socket inode is mapped in this process: nothing to reuse.
        assert_eq!(
            existing_mapping(fds[0], 64).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        for fd in fds {
            // SAFETY: closing the fds this test opened.
            unsafe { libc::close(fd) };
        }
    }

    #[test]
    fn statistics_read_through_a_duplicate_that_outlives_the_callers_fd() {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let st = FdStats::dup(fds[0]).unwrap();
        assert_ne!(st.0.as_raw_fd(), fds[0]);
        for fd in fds {
            // SAFETY: closing the fds this test opened; `st` holds its own.
            unsafe { libc::close(fd) };
        }
        // Still the pipe: not a socket (ENOTSOCK), not a closed fd (EBADF).
        assert_eq!(st.read().unwrap_err().raw_os_error(), Some(libc::ENOTSOCK));
        assert_eq!(
            FdStats::dup(-1).unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
    }

    #[test]
    fn poison_writes_only_the_given_slots_and_wraps() {
        let mut ring = [XdpDesc::new(1, 1); 4];
        // SAFETY: a 4-entry array with mask 3.
        unsafe { poison_rx_slots(ring.as_mut_ptr(), 3, 6, 3, 0xdead) };
        let addrs: Vec<u64> = ring.iter().map(|d| d.addr).collect();
        assert_eq!(addrs, [0xdead, 1, 0xdead, 0xdead]);
        assert!(ring.iter().all(|d| d.len == 1));
    }

    #[test]
    fn statistics_of_a_non_xdp_fd_is_an_error() {
        let e = xdp_statistics(0).unwrap_err();
        assert!(e.raw_os_error().is_some());
    }
}
