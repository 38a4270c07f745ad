//! Socket filters, applied inside the BPF programs (map `filter`, and map
//! `socks` for `--pid`) so a busy host pays only for the sockets under test.

/// Which sockets' events are recorded. `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Only AF_XDP sockets held open by this process (matched by socket
    /// inode; the set is refreshed while recording).
    pub pid: Option<u32>,
    /// Only devices in the network namespace with this cookie
    /// (`SO_NETNS_COOKIE`).
    pub netns_cookie: Option<u64>,
    /// Only this device (ifindex inside its namespace).
    pub ifindex: Option<u32>,
    /// Only this queue id.
    pub queue: Option<u32>,
}

/// Flag bit: `queue` is set (mirrors `XSKDBG_F_QUEUE` in `xskdbg.h`).
pub const F_QUEUE: u32 = 1;
/// Flag bit: only sockets in map `socks` (mirrors `XSKDBG_F_SOCKS`).
pub const F_SOCKS: u32 = 2;

impl Filters {
    /// The value of the BPF `filter` map: `struct xskdbg_filter` in
    /// `src/bpf/xskdbg.h` (u64 cookie, u32 ifindex, u32 queue, u32 flags, u32 pad),
    /// native endian.
    pub fn to_map_value(&self) -> [u8; 24] {
        let mut v = [0u8; 24];
        v[0..8].copy_from_slice(&self.netns_cookie.unwrap_or(0).to_ne_bytes());
        v[8..12].copy_from_slice(&self.ifindex.unwrap_or(0).to_ne_bytes());
        v[12..16].copy_from_slice(&self.queue.unwrap_or(0).to_ne_bytes());
        let mut flags = 0u32;
        if self.queue.is_some() {
            flags |= F_QUEUE;
        }
        if self.pid.is_some() {
            flags |= F_SOCKS;
        }
        v[16..20].copy_from_slice(&flags.to_ne_bytes());
        v
    }

    /// A short description for status output, e.g. `ifindex=5 queue=0`.
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        if let Some(p) = self.pid {
            v.push(format!("pid={p}"));
        }
        if let Some(c) = self.netns_cookie {
            v.push(format!("netns_cookie={c}"));
        }
        if let Some(i) = self.ifindex {
            v.push(format!("ifindex={i}"));
        }
        if let Some(q) = self.queue {
            v.push(format!("queue={q}"));
        }
        if v.is_empty() {
            "none".into()
        } else {
            v.join(" ")
        }
    }
}

/// Socket inode numbers from the targets of `/proc/<pid>/fd/*` links
/// (`socket:[12345]`). Pure: takes the link targets.
pub fn socket_inodes<'a>(targets: impl IntoIterator<Item = &'a str>) -> Vec<u64> {
    let mut v: Vec<u64> = targets
        .into_iter()
        .filter_map(|t| t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_value_layout() {
        let f = Filters {
            pid: None,
            netns_cookie: Some(0x1122),
            ifindex: Some(7),
            queue: Some(0),
        };
        let v = f.to_map_value();
        assert_eq!(u64::from_ne_bytes(v[0..8].try_into().unwrap()), 0x1122);
        assert_eq!(u32::from_ne_bytes(v[8..12].try_into().unwrap()), 7);
        assert_eq!(u32::from_ne_bytes(v[12..16].try_into().unwrap()), 0);
        assert_eq!(u32::from_ne_bytes(v[16..20].try_into().unwrap()), F_QUEUE);
        let any = Filters::default().to_map_value();
        assert_eq!(any, [0u8; 24]);
        assert_eq!(Filters::default().describe(), "none");
    }

    #[test]
    fn inodes_from_fd_links() {
        let v = socket_inodes([
            "socket:[42]",
            "/dev/null",
            "anon_inode:[eventfd]",
            "socket:[7]",
            "socket:[42]",
            "socket:[x]",
        ]);
        assert_eq!(v, vec![7, 42]);
    }
}
