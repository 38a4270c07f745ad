//! The TX descriptors the kernel refuses, so that the recorder and the
//! analyzer leave them out of the frame's history the same way.
//!
//! The kernel validates each TX descriptor as it consumes it
//! (`xskq_cons_is_valid_desc` → `xp_validate_desc`, net/xdp/xsk_queue.h):
//! an invalid one is counted in `tx_invalid_descs` and never sent, so its
//! frame stays the application's. Whether its address comes back on
//! COMPLETION depends on the kernel: the copy mode of recent ones (Debian's
//! 6.12.118 and 6.18: `xsk_cq_submit_addr_single_locked` in
//! `__xsk_generic_xmit`) completes it in ring order, older kernels (6.1)
//! and zero-copy never do; checkers accept both. A checker that took it for
//! a send saw the frame on TX until a completion that may never come, and
//! called the application's next use of the frame a second send
//! (xskxceiver's `*_INV_DESC` tests put refused descriptors of a frame next
//! to valid ones in one batch).
//!
//! Only the rules every kernel since 5.10 applies are modelled: an address
//! past the UMEM, a packet that crosses its chunk (aligned) or is longer
//! than a chunk or ends past the UMEM (unaligned), an option bit the kernel
//! does not know. Not modelled, since kernels differ or the recorder cannot
//! know: a zero length (refused by recent kernels, accepted by older ones),
//! the TX metadata area (`tx_metadata_len`, 6.8+), and an unaligned packet
//! that crosses a page boundary into memory that is not contiguous
//! (`xp_desc_crosses_non_contig_pg`). A descriptor refused for one of those
//! still counts as sent.

/// `XDP_PKT_CONTD`: the packet continues in the next descriptor.
const PKT_CONTD: u64 = 1;
/// `XDP_TX_METADATA` (6.8+): the descriptor carries TX metadata.
const TX_METADATA: u64 = 1 << 1;
/// Unaligned mode keeps a descriptor's offset in bits 48..63.
const OFFSET_SHIFT: u32 = 48;

/// A UMEM's layout as its `umem` line gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Size in bytes.
    pub size: u64,
    /// Chunk (frame) size in bytes.
    pub chunk: u64,
    /// `mode=unaligned`.
    pub unaligned: bool,
}

/// Why the kernel refuses a TX descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxReject {
    /// Its address (unaligned: with the offset added) is past the UMEM.
    OutsideUmem,
    /// Aligned: the packet crosses the end of its chunk.
    CrossesChunk,
    /// Unaligned: longer than a chunk, or ending past the UMEM.
    TooLong,
    /// An option bit other than `XDP_PKT_CONTD` and `XDP_TX_METADATA`.
    UnknownOptions,
}

impl TxReject {
    /// The reason in a report's words.
    pub fn as_str(self) -> &'static str {
        match self {
            TxReject::OutsideUmem => "address past the UMEM",
            TxReject::CrossesChunk => "crosses its chunk",
            TxReject::TooLong => "longer than a chunk or past the UMEM",
            TxReject::UnknownOptions => "unknown option bits",
        }
    }
}

/// Whether the kernel refuses this TX descriptor, and why (see the module's
/// doc for what is modelled). `len` `None` (a line that does not give it):
/// only the address and options are judged. A chunk of 0 (a layout not
/// known) refuses nothing.
pub fn tx_rejected(addr: u64, len: Option<u64>, options: u64, g: &Geometry) -> Option<TxReject> {
    if g.chunk == 0 || g.size == 0 {
        return None;
    }
    if g.unaligned {
        let base = addr & ((1 << OFFSET_SHIFT) - 1);
        let at = base.wrapping_add(addr >> OFFSET_SHIFT);
        if base >= g.size || at >= g.size {
            return Some(TxReject::OutsideUmem);
        }
        if let Some(l) = len {
            if l > g.chunk || at.checked_add(l).is_none_or(|end| end > g.size) {
                return Some(TxReject::TooLong);
            }
        }
    } else {
        if addr >= g.size {
            return Some(TxReject::OutsideUmem);
        }
        // The kernel takes the chunk size as a power of two (it refuses a
        // UMEM whose chunk is not one, in aligned mode).
        let off = addr & (g.chunk.wrapping_sub(1));
        if len.is_some_and(|l| l > 0 && off.saturating_add(l) > g.chunk) {
            return Some(TxReject::CrossesChunk);
        }
    }
    if options & !(PKT_CONTD | TX_METADATA) != 0 {
        return Some(TxReject::UnknownOptions);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN_PKT: u64 = 64;

    /// xskxceiver's `testapp_invalid_desc` (tools/testing/selftests/bpf,
    /// 6.12), aligned with 4K frames: each packet and whether the test
    /// expects the kernel to send it.
    #[test]
    fn xskxceiver_aligned_cases() {
        let g = Geometry {
            size: 0x1000 * 1024,
            chunk: 0x1000,
            unaligned: false,
        };
        let cases = [
            (0, MIN_PKT, true),
            (u64::MAX - 1, MIN_PKT, false),
            (0, 9001, false),
            (g.size - MIN_PKT - 2 * g.chunk, MIN_PKT, true),
            (g.size, MIN_PKT, false),
            (g.size - MIN_PKT / 2, MIN_PKT, false),
            (0x1000 - MIN_PKT / 2, MIN_PKT, false),
            (0x800 - MIN_PKT / 2, MIN_PKT, true),
            (g.chunk - MIN_PKT, MIN_PKT, true),
        ];
        for (addr, len, sent) in cases {
            let got = tx_rejected(addr, Some(len), 0, &g);
            assert_eq!(got.is_none(), sent, "{addr:#x}:{len:#x} -> {got:?}");
        }
        // 2K frames: the 2K straddle crosses a chunk now.
        let g2 = Geometry { chunk: 0x800, ..g };
        assert_eq!(
            tx_rejected(0x800 - MIN_PKT / 2, Some(MIN_PKT), 0, &g2),
            Some(TxReject::CrossesChunk)
        );
    }

    #[test]
    fn unaligned_cases() {
        let g = Geometry {
            size: 0x1000 * 1024,
            chunk: 0x1000,
            unaligned: true,
        };
        // Crossing a chunk is fine unaligned; past the end is not.
        assert_eq!(tx_rejected(0x1000 - 32, Some(MIN_PKT), 0, &g), None);
        assert_eq!(
            tx_rejected(g.size - 32, Some(MIN_PKT), 0, &g),
            Some(TxReject::TooLong)
        );
        assert_eq!(tx_rejected(0, Some(9001), 0, &g), Some(TxReject::TooLong));
        assert_eq!(
            tx_rejected(u64::MAX - 1, Some(MIN_PKT), 0, &g),
            Some(TxReject::OutsideUmem)
        );
        // The offset in the high bits counts.
        let with_off = (0x100u64 << 48) | (g.size - 0x80);
        assert_eq!(
            tx_rejected(with_off, Some(MIN_PKT), 0, &g),
            Some(TxReject::OutsideUmem)
        );
        assert_eq!(
            tx_rejected((0x100 << 48) | 0x1000, Some(MIN_PKT), 0, &g),
            None
        );
    }

    #[test]
    fn options_length_and_unknown_layouts() {
        let g = Geometry {
            size: 0x10000,
            chunk: 0x800,
            unaligned: false,
        };
        assert_eq!(
            tx_rejected(0, Some(MIN_PKT), PKT_CONTD | TX_METADATA, &g),
            None
        );
        assert_eq!(
            tx_rejected(0, Some(MIN_PKT), 4, &g),
            Some(TxReject::UnknownOptions)
        );
        // Not modelled: a zero length; no length: the address alone.
        assert_eq!(tx_rejected(0, Some(0), 0, &g), None);
        assert_eq!(tx_rejected(0x7ff, None, 0, &g), None);
        assert_eq!(
            tx_rejected(0x10000, None, 0, &g),
            Some(TxReject::OutsideUmem)
        );
        let unknown = Geometry { chunk: 0, ..g };
        assert_eq!(tx_rejected(u64::MAX, Some(1 << 20), 4, &unknown), None);
    }
}
