//! Eight bytes at a time (SWAR) in plain safe code: the classification and
//! number building that the value lexer ([`crate::lex::Cursor`]) and the
//! analyzer's ftrace entry parser share.
//!
//! The columns and values of a trace line are 5 to 20 bytes long: too short
//! for a `memchr` call to pay off, long enough that a byte loop's per-byte
//! branch dominates a parse. Every mask marks a byte by its high bit; masks
//! are exact (no carry crosses a byte), checked for every byte value in every
//! lane by the tests below.

/// `0x01` in every byte.
pub const LO: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte.
pub const HI: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `i` as a little-endian word (byte `i` lowest), or
/// `None` when fewer than eight are left.
#[inline(always)]
pub fn word(s: &[u8], i: usize) -> Option<u64> {
    let w: [u8; 8] = s.get(i..i.wrapping_add(8))?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

/// The high bit of each byte of `x` that is zero, and no other bit.
#[inline(always)]
pub fn zero_bytes(x: u64) -> u64 {
    !((x & !HI).wrapping_add(!HI) | x | !HI)
}

/// The high bit of each byte of `x` equal to `c`.
#[inline(always)]
pub fn eq_bytes(x: u64, c: u8) -> u64 {
    zero_bytes(x ^ (LO * u64::from(c)))
}

/// The high bit of each byte of `x` that is not printable ASCII (`!`..DEL):
/// blanks, control bytes and every byte of a multi-byte UTF-8 character.
#[inline(always)]
pub fn not_graphic_bytes(x: u64) -> u64 {
    // (b & 0x7f) + 0x5f has its high bit set exactly when b & 0x7f >= 0x21.
    let ge21 = (x & !HI).wrapping_add(LO * 0x5f);
    (!ge21 | x) & HI
}

/// Whether [`not_graphic_bytes`] marks `b`.
#[inline(always)]
pub fn not_graphic(b: u8) -> bool {
    !(0x21..0x80).contains(&b)
}

/// The first index at or after `i` whose byte `stop` accepts, or `s.len()`.
/// `mask` must mark (high bit) exactly the bytes of a word that `stop`
/// accepts; the tail shorter than a word goes byte by byte.
#[inline(always)]
pub fn scan(s: &[u8], mut i: usize, mask: impl Fn(u64) -> u64, stop: impl Fn(u8) -> bool) -> usize {
    while let Some(w) = word(s, i) {
        let m = mask(w);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() && !stop(s[i]) {
        i += 1;
    }
    i.min(s.len())
}

/// The high bit of each byte of `x` within `lo..=hi` (both below 0x80).
#[inline(always)]
pub fn in_range_bytes(x: u64, lo: u8, hi: u8) -> u64 {
    let low7 = x & !HI;
    let ge = low7.wrapping_add(LO * u64::from(0x80 - lo));
    let gt = low7.wrapping_add(LO * u64::from(0x7f - hi));
    ge & !gt & !x & HI
}

/// A word of text as hex digits: each byte's digit value (meaningful only
/// for digits) and the high bit of each byte that is not a hex digit.
#[inline(always)]
pub fn hex_bytes(x: u64) -> (u64, u64) {
    let digit = in_range_bytes(x, b'0', b'9');
    // `| 0x20` lower-cases letters and leaves digits alone.
    let letter = in_range_bytes(x | (LO * 0x20), b'a', b'f');
    // '0'..'9' are 0x3N, letters 0x4N/0x6N: the low nibble, plus 9 for letters.
    let vals = (x & (LO * 0x0f)) + 9 * ((x >> 6) & LO);
    (vals, !(digit | letter) & HI)
}

/// The number written by the first `k` (1..=8) digit values of `vals`, byte
/// 0 the most significant.
#[inline(always)]
pub fn combine_hex(vals: u64, k: usize) -> u64 {
    // Move the k digits to the top bytes (zeros before them), then merge
    // neighbours: nibble pairs into bytes, bytes into 16 bits, into 32 bits.
    let mut x = vals << (8 * (8 - k));
    x = ((x << 4) | (x >> 8)) & 0x00ff_00ff_00ff_00ff;
    x = ((x << 8) | (x >> 16)) & 0x0000_ffff_0000_ffff;
    ((x << 16) | (x >> 32)) & 0xffff_ffff
}

/// The number written by the first `k` (1..=8) ASCII digits of `x`, byte 0
/// the most significant (the caller checked they are digits).
#[inline(always)]
pub fn combine_dec(x: u64, k: usize) -> u64 {
    // Digit values to the top bytes, then merge neighbours: pairs, fours,
    // eights.
    let mut x = (x & (LO * 0x0f)) << (8 * (8 - k));
    x = (x.wrapping_mul(10) + (x >> 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x.wrapping_mul(100) + (x >> 16)) & 0x0000_ffff_0000_ffff;
    (x.wrapping_mul(10_000) + (x >> 32)) & 0xffff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::{parse_dec, parse_hex, HEX};

    /// Every byte value in every lane of a word, next to other bytes: the
    /// word-at-a-time masks mark exactly the bytes their byte rules accept.
    #[test]
    fn word_masks_are_exact_for_every_byte_in_every_lane() {
        let fill = [0x00u8, 0x20, 0x30, 0x7f, 0x80, 0xff];
        for lane in 0..8 {
            for f in fill {
                for b in 0..=255u8 {
                    let mut bytes = [f; 8];
                    bytes[lane] = b;
                    let w = u64::from_le_bytes(bytes);
                    let bit = |m: u64, i: usize| m >> (8 * i + 7) & 1 == 1;
                    let (_, nonhex) = hex_bytes(w);
                    for (i, &x) in bytes.iter().enumerate() {
                        assert_eq!(bit(eq_bytes(w, b'['), i), x == b'[', "eq {x:#x}");
                        assert_eq!(
                            bit(not_graphic_bytes(w), i),
                            not_graphic(x),
                            "graphic {x:#x}"
                        );
                        assert_eq!(
                            bit(in_range_bytes(w, b'0', b'9'), i),
                            x.is_ascii_digit(),
                            "digit {x:#x}"
                        );
                        assert_eq!(bit(nonhex, i), HEX[usize::from(x)] >= 16, "hex {x:#x}");
                        assert_eq!(eq_bytes(w, b'[') & !HI, 0);
                    }
                }
            }
        }
    }

    /// The word-at-a-time number builders against plain arithmetic, for
    /// every width.
    #[test]
    fn word_numbers_match_plain_parsing() {
        let texts: [&[u8]; 4] = [
            b"0123456789abcdef",
            b"fedcba9876543210",
            b"FFFFFFFFffffffff",
            b"1000000000000001",
        ];
        for t in texts {
            for k in 1..=8 {
                let w = u64::from_le_bytes(t[..8].try_into().unwrap());
                let (vals, _) = hex_bytes(w);
                assert_eq!(Some(combine_hex(vals, k)), parse_hex(&t[..k]), "{t:?} {k}");
            }
        }
        let digits: [&[u8]; 3] = [b"12345678", b"98765432", b"00000009"];
        for t in digits {
            for k in 1..=8 {
                let w = u64::from_le_bytes(t[..8].try_into().unwrap());
                assert_eq!(Some(combine_dec(w, k)), parse_dec(&t[..k]), "{t:?} {k}");
            }
        }
    }

    #[test]
    fn scan_finds_the_first_stop_in_words_and_tail() {
        let s = b"abcdefghij klmnop qr";
        let sp = |i| scan(s, i, |w| eq_bytes(w, b' '), |b| b == b' ');
        assert_eq!(sp(0), 10);
        assert_eq!(sp(11), 17);
        assert_eq!(sp(18), s.len());
    }
}
