//! The socket key `sk=<netns_cookie>:<ifindex>:<queue_id>`.

use std::fmt;
use std::str::FromStr;

use crate::lex::HEX;

/// Identity of a socket or of a buffer pool's device queue: `(network
/// namespace cookie, ifindex, queue id)`, written `sk=1001:5:0` (hex).
/// ifindex alone collides across network namespaces.
///
/// User space builds it from `SO_NETNS_COOKIE`, `if_nametoindex` and the
/// bind queue, BPF from `xs->dev`'s `net_cookie`, `ifindex` and
/// `xs->queue_id`. The kernel's ifindex and queue id are 32-bit; a reader
/// takes each part up to 64 bits, as the format writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SockKey {
    /// `SO_NETNS_COOKIE` of the socket's network namespace.
    pub netns_cookie: u64,
    /// Interface index inside that namespace.
    pub ifindex: u64,
    /// Queue id the socket is bound to.
    pub queue_id: u64,
}

impl SockKey {
    /// A key from its three parts.
    pub const fn new(netns_cookie: u64, ifindex: u32, queue_id: u32) -> SockKey {
        SockKey {
            netns_cookie,
            ifindex: ifindex as u64,
            queue_id: queue_id as u64,
        }
    }

    /// Parse `netns_cookie:ifindex:queue_id`: three non-empty hex parts of at
    /// most 16 digits, nothing else.
    #[inline]
    pub fn parse(v: &[u8]) -> Option<SockKey> {
        // One pass over the bytes.
        let mut parts = [0u64; 3];
        let mut k = 0;
        let mut digits = 0;
        for &b in v {
            let d = HEX[usize::from(b)];
            if d < 16 {
                if digits == 16 {
                    return None;
                }
                parts[k] = (parts[k] << 4) | u64::from(d);
                digits += 1;
            } else if b == b':' && digits > 0 && k < 2 {
                k += 1;
                digits = 0;
            } else {
                return None;
            }
        }
        if k != 2 || digits == 0 {
            return None;
        }
        Some(SockKey {
            netns_cookie: parts[0],
            ifindex: parts[1],
            queue_id: parts[2],
        })
    }
}

impl fmt::Display for SockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:x}:{:x}:{:x}",
            self.netns_cookie, self.ifindex, self.queue_id
        )
    }
}

/// A string that is not a socket key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSockKey(pub String);

impl fmt::Display for BadSockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a socket key: write netns_cookie:ifindex:queue_id in hex (1001:5:0)",
            self.0
        )
    }
}

impl std::error::Error for BadSockKey {}

impl FromStr for SockKey {
    type Err = BadSockKey;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SockKey::parse(s.as_bytes()).ok_or_else(|| BadSockKey(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rule written plainly: three parts split at `:`, each 1 to 16 hex
    /// digits.
    fn spec(v: &str) -> Option<SockKey> {
        let p: Vec<&str> = v.split(':').collect();
        let part = |s: &str| {
            (!s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
        };
        match p[..] {
            [a, b, c] => Some(SockKey {
                netns_cookie: part(a)?,
                ifindex: part(b)?,
                queue_id: part(c)?,
            }),
            _ => None,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn parse_matches_the_plain_rule(v in "[0-9a-fA-F:xg ]{0,40}") {
            prop_assert_eq!(SockKey::parse(v.as_bytes()), spec(&v));
        }

        #[test]
        fn display_parses_back(a in any::<u64>(), b in any::<u32>(), c in any::<u32>()) {
            let k = SockKey::new(a, b, c);
            prop_assert_eq!(k.to_string().parse::<SockKey>(), Ok(k));
        }
    }

    #[test]
    fn errors_say_what_to_write() {
        let e = "1:2".parse::<SockKey>().unwrap_err().to_string();
        assert!(e.contains("netns_cookie:ifindex:queue_id"), "{e}");
    }
}
