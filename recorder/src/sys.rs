//! The recorder's few system calls, kept in one place: `XDP_STATISTICS`,
//! `SO_NETNS_COOKIE`, the thread id, the clock, and mapping an RX ring to
//! write poison back into consumed slots. (tracefs goes through
//! `xskdbg-tracefs`.)

use std::io;
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

/// `XDP_STATISTICS` read from a socket fd.
#[derive(Debug, Clone, Copy)]
pub struct FdStats(pub i32);

impl StatsSource for FdStats {
    fn read(&self) -> io::Result<XdpStats> {
        xdp_statistics(self.0)
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
    consumer: *const u32,
    descs: *mut XdpDesc,
    mask: u32,
    /// Whether `map` made this mapping (and `drop` unmaps it); false when it
    /// uses the socket library's own mapping in place.
    owned: bool,
}

/// Start of the mapping of inode `ino` at page offset 0 (the RX ring,
/// `XDP_PGOFF_RX_RING`) in a `/proc/self/maps` text.
pub fn find_mapping(maps: &str, ino: u64) -> Option<usize> {
    maps.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let range = f.next()?;
        let _perms = f.next()?;
        let offset = f.next()?;
        let _dev = f.next()?;
        let inode: u64 = f.next()?.parse().ok()?;
        if inode != ino || u64::from_str_radix(offset, 16).ok()? != 0 {
            return None;
        }
        usize::from_str_radix(range.split('-').next()?, 16).ok()
    })
}

/// The socket library's existing RX ring mapping of `fd`, found by the
/// socket's inode in `/proc/self/maps`.
fn existing_mapping(fd: i32) -> io::Result<*mut u8> {
    // SAFETY: an all-zero stat is a valid out buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    find_mapping(&maps, st.st_ino)
        .map(|b| b as *mut u8)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no mapping of socket inode {} at offset 0", st.st_ino),
            )
        })
}

// SAFETY: the mapping is plain shared memory; the consumer counter is read
// atomically and slots are written only by the thread that owns them.
unsafe impl Send for RxRingMap {}

impl RxRingMap {
    /// Map the RX ring of AF_XDP socket `fd` whose ring has `size` entries.
    ///
    /// Kernels that refuse a second mmap after bind (Linux 6.1: `xsk_mmap`
    /// answers EBUSY once the socket is bound) get the mapping the socket
    /// library already made, used in place; it lives as long as the socket.
    pub fn map(fd: i32, size: u32) -> io::Result<RxRingMap> {
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
            let existing = existing_mapping(fd).map_err(|f| {
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
        let (consumer, descs) = unsafe {
            (
                base.as_ptr().add(off.rx.consumer as usize) as *const u32,
                base.as_ptr().add(off.rx.desc as usize) as *mut XdpDesc,
            )
        };
        Ok(RxRingMap {
            base,
            len: map_len,
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
    fn the_ring_mapping_is_found_by_inode_and_offset_zero() {
        let maps = "\
7f0000000000-7f0000001000 rw-s 180000000 00:08 4242                       socket:[4242]
7f0000002000-7f0000003000 rw-s 00000000 00:08 4242                       socket:[4242]
7f0000004000-7f0000005000 rw-s 00000000 00:08 99                         socket:[99]
";
        assert_eq!(find_mapping(maps, 4242), Some(0x7f0000002000));
        assert_eq!(find_mapping(maps, 99), Some(0x7f0000004000));
        assert_eq!(find_mapping(maps, 7), None);
        assert_eq!(find_mapping("garbage\n\n", 7), None);
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
