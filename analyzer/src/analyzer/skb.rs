//! Generic (SKB) mode: the kernel's receive line comes after the read.
//!
//! `xsk_generic_rcv()` reserves the slot, writes it and publishes it
//! (`xsk_flush`) under the pool's rx lock, and only then `xdp:xdp_redirect`
//! fires and the tracepoint backend prints `krx ... mode=skb`. An
//! application busy-polling RX on another CPU reads, forwards and recycles
//! the frame in between: its `rx` of slot s comes before the `krx` of s.
//! Judged in trace order, the late `krx` is the kernel receiving a frame the
//! application holds (`invalid_transition/not-from-fill`, KERNEL, on a clean
//! program).
//!
//! So on a socket seen in SKB mode, a read of a slot whose `krx` has not
//! come yet places that receive before the read (the frame leaves FILL, the
//! slot holds it), and the late `krx` of that slot and frame, within
//! [`AHEAD_LINES`] lines and [`AHEAD_NS`], is then only context. Past the
//! bound it is judged where it is. The placed receive opens no producer
//! section: its CPU is not known before its line. Native mode prints `krx`
//! before the flush and is left as it is.

use super::state::{AppHold, At, KSockId, SkbAhead};
use super::Analyzer;

/// A late `krx mode=skb` must come within this many lines of the read...
pub(super) const AHEAD_LINES: u64 = 4096;
/// ...and this many nanoseconds (time clocks).
pub(super) const AHEAD_NS: u64 = 10_000_000;

/// A receive and the read of its slot this close are a tie: the
/// application's stamps are microseconds.
const TIE_NS: u64 = 2_000;

/// Recent `krx mode=skb` slots kept per socket.
const SEEN_CAP: usize = 256;

impl Analyzer {
    /// The application reads `addr` (frame `f`) at slot `pos` of `ks`:
    /// in SKB mode, when the slot's `krx` has not come yet, its receive is
    /// placed here, before the read.
    pub(super) fn skb_read_ahead(&mut self, ks: KSockId, addr: u64, f: u64, pos: u64, at: At) {
        let k = &mut self.ksocks[ks];
        if k.skb_seen.is_empty() || k.skb_seen.contains(&pos) {
            return;
        }
        // Received long ago (more receives since than `skb_seen` keeps): a
        // read of 64 slots behind a kernel 600 receives ahead is not ahead
        // of its receives (6.12's xskxceiver in skb mode on the host).
        if k.skb_max.is_some_and(|m| reached(m, pos)) {
            return;
        }
        if k.skb_ahead.iter().any(|e| e.slot == pos) {
            return;
        }
        Self::skb_expire(&mut k.skb_ahead, at);
        k.skb_ahead.push_back(SkbAhead {
            slot: pos,
            frame: f,
            at,
        });
        self.kernel_rx_seen = true;
        self.rx_reserved(ks, f, addr, Some(pos), at);
        self.kernel_received(ks, f, addr, Some(pos), at);
    }

    /// A `krx mode=skb` of frame `f` into `slot`: true when its receive was
    /// placed before the application's read already (the line is then
    /// context only).
    pub(super) fn skb_received(&mut self, ks: KSockId, f: u64, slot: Option<u64>, at: At) -> bool {
        let Some(slot) = slot else { return false };
        let k = &mut self.ksocks[ks];
        if !k.skb_max.is_some_and(|m| reached(m, slot)) {
            k.skb_max = Some(slot as u32);
        }
        k.skb_seen.push_back(slot);
        if k.skb_seen.len() > SEEN_CAP {
            k.skb_seen.pop_front();
        }
        Self::skb_expire(&mut k.skb_ahead, at);
        match k.skb_ahead.iter().position(|e| e.slot == slot) {
            Some(i) => {
                let e = k.skb_ahead.remove(i);
                // Another frame than the application read: the kernel's
                // line is judged as it stands.
                e.is_some_and(|e| e.frame == f)
            }
            None => false,
        }
    }

    /// A `krx` of a slot the application has read already, of the frame it
    /// read there, within [`TIE_NS`]: the receive came first, its line sorts
    /// after the read because the application's line carries a microsecond
    /// stamp and the drained record a nanosecond one (a new socket's first
    /// packet in SKB mode, before any `krx` showed the mode and the
    /// read-ahead could place it). The line is then context only; judged
    /// as it stands, it put the frame on RX a second time and made the
    /// app's refill an `application` finding (xskxceiver's TEARDOWN).
    pub(super) fn read_before_its_receive(
        &self,
        ks: KSockId,
        f: u64,
        addr: u64,
        slot: Option<u64>,
        at: At,
    ) -> bool {
        let Some(slot) = slot else { return false };
        // Read already: the app's RX consumer is past the slot. (A socket
        // that shares its key, XDP_SHARED_UMEM, is not joined to its
        // kernel socket: the frame and the tie decide alone.)
        if let Some(a) = self.ksocks[ks].asock {
            let Some(next) = self.asocks[a].rx_read else {
                return false;
            };
            if next as u32 == slot as u32 || !reached(next as u32, slot) {
                return false;
            }
        }
        self.frames.get(f).is_some_and(|fs| {
            fs.app == AppHold::Rx
                && fs.kernel_copies() == 0
                && fs.held_addr == addr
                && at.order.abs_diff(fs.last.order) <= TIE_NS
        })
    }

    /// Placed receives whose line did not come within the bound: judged
    /// no more (the line, if it comes, is judged where it is).
    fn skb_expire(ahead: &mut std::collections::VecDeque<SkbAhead>, now: At) {
        while ahead.front().is_some_and(|e| {
            now.line.saturating_sub(e.at.line) > AHEAD_LINES
                || (now.ns().is_some() && now.order.saturating_sub(e.at.order) > AHEAD_NS)
        }) {
            ahead.pop_front();
        }
    }
}

/// Ring position `pos` is at or before `max` (32-bit counters that wrap).
fn reached(max: u32, pos: u64) -> bool {
    max.wrapping_sub(pos as u32) < 1 << 31
}

#[cfg(test)]
mod tests {
    use super::reached;

    #[test]
    fn a_position_is_reached_across_the_wrap() {
        assert!(reached(0x4e0, 0xe0));
        assert!(reached(0x4e0, 0x4e0));
        assert!(!reached(0x4e0, 0x4e1));
        assert!(reached(5, 0xffff_fff0));
        assert!(!reached(0xffff_fff0, 5));
    }
}
