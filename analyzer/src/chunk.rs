//! How descriptor addresses map to frames.
//!
//! Aligned mode: the kernel masks a FILL address to its chunk, and an RX
//! address is chunk base + headroom + offset, so frames compare by
//! `addr & !(chunk - 1)`. Unaligned mode: the upper 16 bits carry an offset,
//! the low 48 bits are the base. When neither `--chunk-size` nor a `umem`
//! line says which, the chunk is inferred from the addresses: the largest
//! power of two P (2 KiB..64 KiB) for which every address's offset inside P
//! stays in the lower half of P (bases spread over whole chunks; offsets do
//! not).

/// Smallest chunk the kernel accepts (XDP_UMEM_MIN_CHUNK_SIZE).
pub(crate) const MIN_CHUNK: u64 = 2048;
const MAX_CHUNK: u64 = 64 * 1024;
/// Fewer distinct addresses than this: do not trust a chunk above the minimum.
const FEW: usize = 16;
const LOW48: u64 = (1 << 48) - 1;

/// Address → frame mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mapping {
    Aligned { chunk: u64 },
    Unaligned,
}

impl Mapping {
    #[inline]
    pub(crate) fn frame(self, addr: u64) -> u64 {
        match self {
            Mapping::Aligned { chunk } => addr & !(chunk - 1) & LOW48,
            Mapping::Unaligned => addr & LOW48,
        }
    }
}

/// A frame key as the frame base it stands for, without the UMEM ordinal
/// the analyzer keeps above it when a trace has several UMEMs: what
/// reports print and what compares with an address's frame.
#[inline]
pub(crate) fn shown(f: u64) -> u64 {
    f & LOW48
}

/// Infer a mapping from distinct sample addresses (poison excluded).
/// Returns the mapping, whether it was inferred (vs defaulted) and a note.
pub(crate) fn infer(samples: &[u64]) -> (Mapping, bool, String) {
    if let Some(a) = samples.iter().find(|&&a| a >> 48 != 0) {
        return (
            Mapping::Unaligned,
            true,
            format!("unaligned mode inferred: address {a:#x} has offset bits 48..63 set; frames compare by the low 48 bits"),
        );
    }
    if samples.len() < 2 {
        return (
            Mapping::Aligned { chunk: MIN_CHUNK },
            false,
            format!("too few addresses to infer the chunk size; assuming {MIN_CHUNK:#x} (pass --chunk-size)"),
        );
    }
    let fits = |p: u64| {
        let (mut lo, mut hi) = (u64::MAX, 0);
        for &a in samples {
            let r = a & (p - 1);
            lo = lo.min(r);
            hi = hi.max(r);
        }
        hi - lo < p / 2
    };
    let mut p = MAX_CHUNK;
    while p >= MIN_CHUNK {
        if fits(p) {
            if samples.len() < FEW && p > MIN_CHUNK {
                return (
                    Mapping::Aligned { chunk: MIN_CHUNK },
                    true,
                    format!(
                        "chunk size {MIN_CHUNK:#x} assumed from only {} addresses (they would fit up to {p:#x}; pass --chunk-size)",
                        samples.len()
                    ),
                );
            }
            return (
                Mapping::Aligned { chunk: p },
                true,
                format!(
                    "chunk size {p:#x} inferred from {} addresses (override with --chunk-size)",
                    samples.len()
                ),
            );
        }
        p /= 2;
    }
    (
        Mapping::Aligned { chunk: MIN_CHUNK },
        false,
        format!(
            "addresses do not look chunk-aligned (offsets spread over {MIN_CHUNK:#x}); assuming chunk {MIN_CHUNK:#x} \
             (pass --chunk-size, or the recorder's umem line)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_addresses_give_2k() {
        let a: Vec<u64> = [
            0x16ce900u64,
            0x160a100,
            0x13d3900,
            0x1dba100,
            0x1627100,
            0x1229100,
            0x1272900,
            0x1612100,
            0x1100100,
            0x161e100,
            0x110a100,
            0x12e4900,
            0x165b900,
            0x1d20100,
            0x1672100,
            0x1257900,
            0x1237900,
        ]
        .to_vec();
        assert_eq!(infer(&a).0, Mapping::Aligned { chunk: 0x800 });
    }

    #[test]
    fn four_k_frames() {
        let a: Vec<u64> = (0..64u64).map(|i| (i * 7 % 64) * 0x1000 + 0x100).collect();
        assert_eq!(infer(&a).0, Mapping::Aligned { chunk: 0x1000 });
        assert_eq!(Mapping::Aligned { chunk: 0x1000 }.frame(0x3100), 0x3000);
    }

    #[test]
    fn unaligned_offsets() {
        let a = vec![0x0100_0000_0000_1234u64, 0x2000];
        assert_eq!(infer(&a).0, Mapping::Unaligned);
        assert_eq!(Mapping::Unaligned.frame(0x0100_0000_0000_1234), 0x1234);
    }
}
