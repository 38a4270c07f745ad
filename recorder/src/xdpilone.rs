//! Checked wrappers around xdpilone's ring handles (feature `xdpilone`).
//!
//! Each wrapper owns the xdpilone handle and the recorder handle and calls
//! the check on every batch, at the right moment: produced entries (FILL,
//! TX) are recorded after they are written and *before* the commit makes
//! them visible to the kernel, so another thread can never see the kernel's
//! answer before the recorder knows the question; consumed entries (RX,
//! COMPLETION) are recorded before they are released.
//!
//! With the recorder compiled out the wrappers still work, minus the checks.

use std::borrow::BorrowMut;
use std::io;

use xdpilone::xdp::XdpDesc as XDesc;
use xdpilone::{CompletionQueue, DeviceQueue, FillQueue, RingRx, RingTx};

use crate::sys::RxRingMap;
use crate::types::XdpDesc;
use crate::{Pool, Sock};

// xdpilone's descriptor is the kernel's `struct xdp_desc`, like ours.
const _: () = {
    assert!(std::mem::size_of::<XDesc>() == std::mem::size_of::<XdpDesc>());
    assert!(std::mem::align_of::<XDesc>() == std::mem::align_of::<XdpDesc>());
};

/// View xdpilone descriptors as the recorder's (same `repr(C)` layout).
#[inline]
pub fn as_descs(d: &[XDesc]) -> &[XdpDesc] {
    // SAFETY: both are `#[repr(C)] { u64, u32, u32 }` (checked above), so the
    // slice has the same size, alignment and valid bit patterns.
    unsafe { std::slice::from_raw_parts(d.as_ptr().cast::<XdpDesc>(), d.len()) }
}

impl From<XDesc> for XdpDesc {
    fn from(d: XDesc) -> XdpDesc {
        XdpDesc {
            addr: d.addr,
            len: d.len,
            options: d.options,
        }
    }
}

/// Anything with a FILL ring: [`DeviceQueue`] or its [`FillQueue`] half.
pub trait HasFill {
    /// Reserve up to `max` FILL slots.
    fn fill_ring(&mut self, max: u32) -> xdpilone::WriteFill<'_>;
}

/// Anything with a COMPLETION ring: [`DeviceQueue`] or its [`CompletionQueue`] half.
pub trait HasComp {
    /// Peek up to `max` completions.
    fn comp_ring(&mut self, max: u32) -> xdpilone::ReadComplete<'_>;
}

impl HasFill for DeviceQueue {
    fn fill_ring(&mut self, max: u32) -> xdpilone::WriteFill<'_> {
        self.fill(max)
    }
}

impl HasFill for FillQueue {
    fn fill_ring(&mut self, max: u32) -> xdpilone::WriteFill<'_> {
        self.fill(max)
    }
}

impl HasComp for DeviceQueue {
    fn comp_ring(&mut self, max: u32) -> xdpilone::ReadComplete<'_> {
        self.complete(max)
    }
}

impl HasComp for CompletionQueue {
    fn comp_ring(&mut self, max: u32) -> xdpilone::ReadComplete<'_> {
        self.complete(max)
    }
}

impl<T: HasFill + ?Sized> HasFill for &mut T {
    fn fill_ring(&mut self, max: u32) -> xdpilone::WriteFill<'_> {
        (**self).fill_ring(max)
    }
}

impl<T: HasComp + ?Sized> HasComp for &mut T {
    fn comp_ring(&mut self, max: u32) -> xdpilone::ReadComplete<'_> {
        (**self).comp_ring(max)
    }
}

/// A FILL and/or COMPLETION ring checked against a recorder [`Pool`]; the
/// ring may be owned or borrowed (`&mut FillQueue`).
pub struct CheckedPool<Q> {
    q: Q,
    pool: Pool,
}

impl<Q> CheckedPool<Q> {
    /// Wrap `q` (a [`DeviceQueue`], [`FillQueue`] or [`CompletionQueue`]).
    pub fn new(q: Q, pool: Pool) -> Self {
        CheckedPool { q, pool }
    }

    /// The wrapped handle (operations on it are not checked).
    pub fn inner(&mut self) -> &mut Q {
        &mut self.q
    }

    /// Unwrap.
    pub fn into_inner(self) -> Q {
        self.q
    }
}

impl<Q: HasFill> CheckedPool<Q> {
    /// Put as many of `addrs` on FILL as fit, in order; returns how many.
    pub fn fill(&mut self, addrs: &[u64]) -> usize {
        let max = addrs.len().min(u32::MAX as usize) as u32;
        let mut w = self.q.fill_ring(max);
        let n = w.insert(addrs.iter().copied()) as usize;
        // Recorded before the commit makes them the kernel's.
        self.pool.fill(&addrs[..n]);
        w.commit();
        n
    }
}

impl<Q: HasComp> CheckedPool<Q> {
    /// Read up to `out.len()` completed frames; returns how many.
    pub fn complete(&mut self, out: &mut [u64]) -> usize {
        let max = out.len().min(u32::MAX as usize) as u32;
        let mut r = self.q.comp_ring(max);
        let mut n = 0;
        while n < out.len() {
            match r.read() {
                Some(a) => {
                    out[n] = a;
                    n += 1;
                }
                None => break,
            }
        }
        self.pool.comp(&out[..n]);
        r.release();
        n
    }
}

/// An RX ring (owned, or borrowed as `&mut RingRx`) checked against a
/// recorder [`Sock`], optionally writing the poison value back into every
/// consumed slot.
pub struct CheckedRx<R = RingRx> {
    rx: R,
    sock: Sock,
    map: Option<RxRingMap>,
    poison: Option<u64>,
    next: u32,
}

impl<R: BorrowMut<RingRx>> CheckedRx<R> {
    /// Wrap `rx`; ring indexes are counted from 0.
    pub fn new(rx: R, sock: Sock) -> Self {
        CheckedRx {
            rx,
            sock,
            map: None,
            poison: None,
            next: 0,
        }
    }

    /// Wrap `rx` and map its ring a second time (`ring_size` entries) to
    /// read the real consumer index and, with `poison`, write that value
    /// into each slot after reading it: a slot the kernel later exposes
    /// before writing reads back as the poison (the seed story's test).
    ///
    /// Kernels that refuse a second mapping of a bound socket (Linux 6.1)
    /// need this before `bind`, or [`CheckedRx::with_ring_reusing`].
    pub fn with_ring(rx: R, sock: Sock, ring_size: u32, poison: Option<u64>) -> io::Result<Self> {
        let map = RxRingMap::map(rx.borrow().as_raw_fd(), ring_size)?;
        Ok(Self::mapped(rx, sock, map, poison))
    }

    /// [`CheckedRx::with_ring`] on a bound socket whose kernel refuses a
    /// second mapping: `rx`'s own mapping of the ring is used in place
    /// ([`RxRingMap::map_or_reuse`]).
    ///
    /// # Safety
    /// The `RingRx` that `rx` borrows or owns now stays alive, unreplaced,
    /// as long as the returned value receives: do not swap it out through
    /// [`CheckedRx::inner`] or drop the ring it borrows first.
    pub unsafe fn with_ring_reusing(
        rx: R,
        sock: Sock,
        ring_size: u32,
        poison: Option<u64>,
    ) -> io::Result<Self> {
        // SAFETY: the caller keeps the ring (and so its mapping) alive.
        let map = unsafe { RxRingMap::map_or_reuse(rx.borrow().as_raw_fd(), ring_size)? };
        Ok(Self::mapped(rx, sock, map, poison))
    }

    fn mapped(rx: R, sock: Sock, map: RxRingMap, poison: Option<u64>) -> Self {
        CheckedRx {
            next: map.consumer(),
            rx,
            sock,
            map: Some(map),
            poison,
        }
    }

    /// Write the UMEM's poison value into every slot of the RX ring and say
    /// so in the trace (`rxpoison`), before the first FILL of the socket's
    /// pool: an all-zero descriptor read later then cannot come from the
    /// ring and is reported as `read_outside_ring`. Needs the ring mapped
    /// ([`CheckedRx::with_ring`]) and a UMEM with a poison value.
    pub fn prepoison(&mut self) -> io::Result<()> {
        if !crate::Recorder::ENABLED {
            return Ok(());
        }
        let Some(map) = &self.map else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "prepoison needs the ring mapped: build the CheckedRx with with_ring",
            ));
        };
        let Some(poison) = self.sock.poison() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "prepoison needs a UMEM with a poison value (UmemConfig::with_poison)",
            ));
        };
        self.sock
            .declare_rx_poisoned()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        map.poison_all(poison);
        Ok(())
    }

    /// Read up to `out.len()` descriptors; returns how many. The batch is
    /// recorded with the producer the app was entitled to read up to
    /// (`prod=`): the ring's producer read before the peek when the ring is
    /// mapped, at least the end of the batch (xdpilone hands out only
    /// published slots).
    pub fn receive(&mut self, out: &mut [XDesc]) -> usize {
        let max = out.len().min(u32::MAX as usize) as u32;
        let before = self.map.as_ref().map(RxRingMap::producer);
        let mut r = self.rx.borrow_mut().receive(max);
        let mut n = 0;
        while n < out.len() {
            match r.read() {
                Some(d) => {
                    out[n] = d;
                    n += 1;
                }
                None => break,
            }
        }
        let idx = self.map.as_ref().map_or(self.next, RxRingMap::consumer);
        let end = idx.wrapping_add(n as u32);
        let prod = match before {
            Some(p) if p.wrapping_sub(idx) >= n as u32 => p,
            _ => end,
        };
        self.sock.rx_at_prod(idx, prod, as_descs(&out[..n]));
        if let (Some(m), Some(p)) = (&self.map, self.poison) {
            m.poison(idx, n as u32, p);
        }
        r.release();
        self.next = idx.wrapping_add(n as u32);
        n
    }

    /// The wrapped ring (operations on it are not checked).
    pub fn inner(&mut self) -> &mut R {
        &mut self.rx
    }
}

/// A TX ring (owned, or borrowed as `&mut RingTx`) checked against a
/// recorder [`Sock`].
pub struct CheckedTx<T = RingTx> {
    tx: T,
    sock: Sock,
    next: u32,
}

impl<T: BorrowMut<RingTx>> CheckedTx<T> {
    /// Wrap `tx`; ring indexes are counted from 0.
    pub fn new(tx: T, sock: Sock) -> Self {
        CheckedTx { tx, sock, next: 0 }
    }

    /// Put as many of `descs` on TX as fit, in order; returns how many.
    pub fn transmit(&mut self, descs: &[XDesc]) -> usize {
        let max = descs.len().min(u32::MAX as usize) as u32;
        let mut w = self.tx.borrow_mut().transmit(max);
        let n = w.insert(descs.iter().copied()) as usize;
        self.sock.tx_at(self.next, as_descs(&descs[..n]));
        w.commit();
        self.next = self.next.wrapping_add(n as u32);
        n
    }

    /// Kick the kernel to send (`sendto` with `MSG_DONTWAIT`).
    pub fn wake(&self) {
        self.tx.borrow().wake();
    }

    /// The wrapped ring (operations on it are not checked).
    pub fn inner(&mut self) -> &mut T {
        &mut self.tx
    }
}
