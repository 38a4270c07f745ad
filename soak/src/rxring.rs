//! Access to a bound socket's RX ring for real ring indexes and poisoning,
//! on every kernel.
//!
//! Newer kernels let a bound AF_XDP socket's RX ring be mapped a second time
//! (the recorder's [`RxRingMap`]); Linux 6.1 refuses any mmap after bind
//! (`xsk_mmap`: state != XSK_READY -> EBUSY), and the socket library maps and
//! binds in one step. There the mapping the socket library already made is
//! found in `/proc/self/maps` (socket inode, page offset 0 =
//! `XDP_PGOFF_RX_RING`) and used in place: it lives as long as the socket,
//! which the forwarder's port owns together with this view.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use xskdbg_recorder::sys::{poison_rx_slots, RxRingMap, SOL_XDP, XDP_MMAP_OFFSETS};
use xskdbg_recorder::XdpDesc;

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

/// The RX ring of one socket: a second mapping, or the socket library's.
#[derive(Debug)]
pub enum RxAccess {
    /// Our own second mapping (kernels that allow mmap after bind).
    Own(RxRingMap),
    /// The existing mapping of the socket library (Linux 6.1).
    Existing(ExistingRx),
}

impl RxAccess {
    /// A second mapping if the kernel allows one, else the existing one.
    pub fn open(fd: i32, size: u32) -> io::Result<RxAccess> {
        match RxRingMap::map(fd, size) {
            Ok(m) => Ok(RxAccess::Own(m)),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => ExistingRx::find(fd, size)
                .map(RxAccess::Existing)
                .map_err(|f| {
                    io::Error::new(
                        f.kind(),
                        format!("mmap after bind refused ({e}) and no existing mapping: {f}"),
                    )
                }),
            Err(e) => Err(e),
        }
    }

    /// The consumer counter as last released by the app (unmasked).
    pub fn consumer(&self) -> u32 {
        match self {
            RxAccess::Own(m) => m.consumer(),
            RxAccess::Existing(m) => m.consumer(),
        }
    }

    /// Write `poison` into slots `first..first + n` (read, not yet released).
    pub fn poison(&self, first: u32, n: u32, poison: u64) {
        match self {
            RxAccess::Own(m) => m.poison(first, n, poison),
            RxAccess::Existing(m) => m.poison(first, n, poison),
        }
    }
}

/// The socket library's own mapping of an RX ring, used in place.
#[derive(Debug)]
pub struct ExistingRx {
    consumer: *const AtomicU32,
    descs: *mut XdpDesc,
    mask: u32,
}

// SAFETY: plain shared memory kept mapped by the socket the owning port
// holds; the consumer counter is read atomically and slots are written only
// by the forwarder thread that owns them.
unsafe impl Send for ExistingRx {}

/// Start of the mapping of inode `ino` at page offset 0 in a
/// `/proc/self/maps` text.
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

impl ExistingRx {
    /// Finds the RX ring mapping of socket `fd` in this process.
    pub fn find(fd: i32, size: u32) -> io::Result<ExistingRx> {
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
        // SAFETY: an all-zero stat is a valid out buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is writable.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let maps = std::fs::read_to_string("/proc/self/maps")?;
        let base = find_mapping(&maps, st.st_ino).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no mapping of socket inode {} at offset 0", st.st_ino),
            )
        })?;
        // The offsets come from the kernel and lie inside the ring mapping
        // the socket library made for `size` entries.
        let base = base as *mut u8;
        Ok(ExistingRx {
            consumer: base.wrapping_add(off.rx.consumer as usize) as *const AtomicU32,
            descs: base.wrapping_add(off.rx.desc as usize) as *mut XdpDesc,
            mask: size - 1,
        })
    }

    fn consumer(&self) -> u32 {
        // SAFETY: points into the live ring mapping, u32-aligned.
        unsafe { (*self.consumer).load(Ordering::Acquire) }
    }

    fn poison(&self, first: u32, n: u32, poison: u64) {
        let n = n.min(self.mask + 1);
        // SAFETY: `descs` is the mapped array of `mask + 1` entries; the
        // forwarder owns the slots it just read.
        unsafe { poison_rx_slots(self.descs, self.mask, first, n, poison) }
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
}
