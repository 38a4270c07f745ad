//! Lists of addresses and descriptors (`a=1000,1800`, `d=16ce900:4e,...`),
//! decoded lazily from the line's bytes.

use memchr::memmem;

use crate::lex::{parse_hex, strip_0x, trim, Cursor};

/// One descriptor of a list: `addr[:len[:options]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    /// The raw descriptor address as it sat in the ring (unaligned mode
    /// keeps its offset in bits 48..63).
    pub addr: u64,
    /// Packet length, when written.
    pub len: Option<u64>,
    /// Options field (0 when omitted).
    pub options: u64,
}

/// A comma-separated list of descriptors or addresses, decoded lazily.
///
/// Project lists are `a,b,c` (hex without `0x`, optional `:len[:options]`);
/// seed lists (`remaining: [1dba100, 1627100, …, ]`) have spaces, an ellipsis
/// and may be cut; [`AddrList::iter`] skips anything that is not hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddrList<'a> {
    /// The list text.
    pub text: &'a [u8],
}

impl<'a> AddrList<'a> {
    /// Iterate over the items that parse, by the rule of [`list_item`]
    /// (items are split at commas; one that does not parse is skipped).
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = Desc> + 'a {
        AddrIter { rest: self.text }
    }

    /// Number of entries that parse.
    pub fn count(&self) -> usize {
        self.iter().count()
    }

    /// True when the list shows signs of being cut (`…`, `...`).
    pub fn truncated(&self) -> bool {
        memmem::find(self.text, "…".as_bytes()).is_some()
            || memmem::find(self.text, b"...").is_some()
    }
}

/// One list item by the general rule: trimmed, `addr[:len[:options]]` in
/// hex, the address may carry `0x`, parts after the third are ignored;
/// `None` when a part is not hex. [`AddrList::iter`] gives exactly
/// `text.split(',').filter_map(list_item)`.
pub fn list_item(item: &[u8]) -> Option<Desc> {
    let item = trim(item);
    let mut parts = item.split(|&b| b == b':');
    let addr = parse_hex(strip_0x(parts.next()?))?;
    let len = match parts.next() {
        Some(p) => Some(parse_hex(p)?),
        None => None,
    };
    let options = match parts.next() {
        Some(p) => parse_hex(p)?,
        None => 0,
    };
    Some(Desc { addr, len, options })
}

/// The iterator of [`AddrList::iter`]. Items written plainly
/// (`1000,1800:4e`) are decoded in one pass over the bytes; an item with
/// anything else in it (spaces, `0x`, `…`, an empty part) goes through
/// [`list_item`], the general rule, so both give the same descriptors.
struct AddrIter<'a> {
    rest: &'a [u8],
}

impl Iterator for AddrIter<'_> {
    type Item = Desc;

    #[inline]
    fn next(&mut self) -> Option<Desc> {
        while !self.rest.is_empty() {
            let s = self.rest;
            if let Some((desc, used)) = plain_item(s) {
                self.rest = &s[used..];
                return Some(desc);
            }
            let end = memchr::memchr(b',', s).unwrap_or(s.len());
            self.rest = s.get(end + 1..).unwrap_or(&[]);
            if let Some(d) = list_item(&s[..end]) {
                return Some(d);
            }
        }
        None
    }
}

/// A list item written plainly, `addr[:len[:options]]` in hex (1 to 16
/// digits each) followed by `,` or the end, decoded eight digits at a time;
/// with the bytes it used (its comma included). `None` for anything else,
/// which [`list_item`] then decides.
#[inline(always)]
fn plain_item(s: &[u8]) -> Option<(Desc, usize)> {
    let mut c = Cursor::new(s);
    let addr = c.hex()?;
    let mut len = None;
    let mut options = 0;
    if c.lit(b":").is_some() {
        len = Some(c.hex()?);
        if c.lit(b":").is_some() {
            options = c.hex()?;
        }
    }
    let used = match s.get(c.pos()) {
        None => c.pos(),
        Some(b',') => c.pos() + 1,
        Some(_) => return None,
    };
    Some((Desc { addr, len, options }, used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The general rule over a whole list.
    fn general(text: &[u8]) -> Vec<Desc> {
        text.split(|&b| b == b',').filter_map(list_item).collect()
    }

    fn list_value() -> impl Strategy<Value = String> {
        let item = prop_oneof![
            4 => any::<u64>().prop_map(|v| format!("{v:x}")),
            3 => (any::<u64>(), 0u64..0x10000).prop_map(|(a, l)| format!("{a:x}:{l:x}")),
            1 => (any::<u64>(), 0u64..0x10000, 0u64..4).prop_map(|(a, l, o)| format!("{a:x}:{l:x}:{o:x}")),
            1 => Just("1:2:3:4".to_string()),
            1 => Just("1::2".to_string()),
            1 => Just("1:".to_string()),
            1 => Just(":1".to_string()),
            1 => Just(String::new()),
            1 => Just(" 1dba100".to_string()),
            1 => Just("0x16ce900".to_string()),
            1 => Just("\u{2026}".to_string()),
            1 => Just("...".to_string()),
            1 => Just("11111111111111111".to_string()),
            1 => Just("AbC:De".to_string()),
            1 => Just("zz".to_string()),
            1 => Just("1\u{a0}".to_string()),
        ];
        prop::collection::vec(item, 0..8).prop_map(|v| v.join(","))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// The one-pass item decoder against the general rule.
        #[test]
        fn lists_decode_by_the_general_rule(text in list_value()) {
            let list = AddrList { text: text.as_bytes() };
            prop_assert_eq!(list.iter().collect::<Vec<_>>(), general(text.as_bytes()));
            prop_assert_eq!(list.count(), general(text.as_bytes()).len());
        }

        #[test]
        fn arbitrary_bytes_decode_by_the_general_rule(b in prop::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(AddrList { text: &b }.iter().collect::<Vec<_>>(), general(&b));
        }
    }

    #[test]
    fn seed_lists_skip_what_is_not_hex() {
        let l = AddrList {
            text: "fe4100, f9c100, \u{2026},".as_bytes(),
        };
        let a: Vec<u64> = l.iter().map(|d| d.addr).collect();
        assert_eq!(a, vec![0xfe4100, 0xf9c100]);
        assert!(l.truncated());
    }
}
