//! A minimal netlink client: rtnetlink link dumps and the `netdev` generic
//! netlink family (Linux 6.3+). Only what the preflight needs, so the crate
//! stays free of a netlink stack; message decoding is pure and unit-tested.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const RTM_GETLINK: u16 = 18;
const RTM_NEWLINK: u16 = 16;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_A_DEV_XDP_ZC_MAX_SEGS: u16 = 4;
const NETDEV_A_DEV_XSK_FEATURES: u16 = 6;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_ATTACHED: u16 = 2;

/// One network device as rtnetlink describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    /// Interface index (unique only within its network namespace).
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
    /// `IFLA_LINK`: for veth, the peer's ifindex (in the peer's namespace).
    pub link: Option<u32>,
    /// `IFLA_INFO_KIND`, e.g. `veth`.
    pub kind: Option<String>,
    /// Number of RX queues.
    pub rx_queues: u32,
    /// Number of TX queues.
    pub tx_queues: u32,
    /// `IFLA_XDP_ATTACHED` (0 none, 1 driver, 2 generic, 3 offload, 4 multi).
    pub xdp_attached: u8,
}

/// XDP capabilities reported by the `netdev` generic netlink family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpFeatures {
    /// `NETDEV_A_DEV_XDP_FEATURES` bits (`NETDEV_XDP_ACT_*`).
    pub xdp: u64,
    /// `NETDEV_A_DEV_XDP_ZC_MAX_SEGS`.
    pub zc_max_segs: u32,
    /// `NETDEV_A_DEV_XSK_FEATURES` bits (`NETDEV_XSK_FLAGS_*`).
    pub xsk: u64,
}

impl XdpFeatures {
    /// Names of the set `NETDEV_XDP_ACT_*` bits.
    pub fn xdp_names(&self) -> Vec<&'static str> {
        const NAMES: [&str; 7] = [
            "basic",
            "redirect",
            "ndo-xmit",
            "xsk-zerocopy",
            "hw-offload",
            "rx-sg",
            "ndo-xmit-sg",
        ];
        NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.xdp & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    /// Whether the device can run AF_XDP in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.xdp & 8 != 0
    }
}

/// Iterates over netlink attributes (`struct nlattr` + payload, 4-aligned).
pub fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            return None;
        }
        let data = &buf[4..len];
        let adv = (len + 3) & !3;
        buf = &buf[adv.min(buf.len())..];
        Some((ty, data))
    })
}

fn u32_of(d: &[u8]) -> Option<u32> {
    d.get(..4)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_of(d: &[u8]) -> Option<u64> {
    let b = d.get(..8)?;
    Some(u64::from_ne_bytes(b.try_into().ok()?))
}

fn str_of(d: &[u8]) -> String {
    let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
    String::from_utf8_lossy(&d[..end]).into_owned()
}

/// Decodes the payload of one `RTM_NEWLINK` message (ifinfomsg + attributes).
pub fn decode_link(payload: &[u8]) -> Option<Link> {
    let ifindex = u32_of(payload.get(4..8)?)?;
    let mut link = Link {
        ifindex,
        ..Link::default()
    };
    for (ty, data) in attrs(payload.get(16..)?) {
        match ty {
            IFLA_IFNAME => link.name = str_of(data),
            IFLA_LINK => link.link = u32_of(data),
            IFLA_NUM_TX_QUEUES => link.tx_queues = u32_of(data).unwrap_or(0),
            IFLA_NUM_RX_QUEUES => link.rx_queues = u32_of(data).unwrap_or(0),
            IFLA_LINKINFO => {
                for (t, d) in attrs(data) {
                    if t == IFLA_INFO_KIND {
                        link.kind = Some(str_of(d));
                    }
                }
            }
            IFLA_XDP => {
                for (t, d) in attrs(data) {
                    if t == IFLA_XDP_ATTACHED {
                        link.xdp_attached = d.first().copied().unwrap_or(0);
                    }
                }
            }
            _ => {}
        }
    }
    Some(link)
}

/// Decodes the attributes of a `netdev` `DEV_GET` reply (after the genl header).
pub fn decode_xdp_features(attrs_buf: &[u8]) -> XdpFeatures {
    let mut f = XdpFeatures::default();
    for (ty, data) in attrs(attrs_buf) {
        match ty {
            NETDEV_A_DEV_XDP_FEATURES => f.xdp = u64_of(data).unwrap_or(0),
            NETDEV_A_DEV_XDP_ZC_MAX_SEGS => f.zc_max_segs = u32_of(data).unwrap_or(0),
            NETDEV_A_DEV_XSK_FEATURES => f.xsk = u64_of(data).unwrap_or(0),
            _ => {}
        }
    }
    f
}

fn push_attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// A netlink socket of one protocol, bound to the caller's network namespace
/// at creation time.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// Opens `NETLINK_ROUTE` (0) or `NETLINK_GENERIC` (16).
    pub fn open(protocol: i32) -> io::Result<Socket> {
        // SAFETY: plain socket(2) call; the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor we own.
        Ok(Socket {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            seq: 1,
        })
    }

    /// Sends one request and collects the payloads of every reply message
    /// until `NLMSG_DONE` (dumps) or the single answer.
    fn request(&mut self, ty: u16, flags: u16, payload: &[u8]) -> io::Result<Vec<(u16, Vec<u8>)>> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + payload.len());
        msg.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(payload);
        // SAFETY: msg is a valid buffer for its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let dump = flags & NLM_F_DUMP != 0;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: buf is valid for writes of its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32_of(rest).unwrap_or(0) as usize;
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let mty = u16::from_ne_bytes([rest[4], rest[5]]);
                let body = &rest[NLMSG_HDRLEN..len];
                match mty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let err = body
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(0);
                        if err != 0 {
                            return Err(io::Error::from_raw_os_error(-err));
                        }
                        return Ok(out);
                    }
                    _ => out.push((mty, body.to_vec())),
                }
                rest = &rest[((len + 3) & !3).min(rest.len())..];
            }
            if !dump && !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Dumps every link of this socket's network namespace.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let ifinfo = [0u8; 16];
        let msgs = self.request(RTM_GETLINK, NLM_F_DUMP, &ifinfo)?;
        Ok(msgs
            .iter()
            .filter(|(t, _)| *t == RTM_NEWLINK)
            .filter_map(|(_, p)| decode_link(p))
            .collect())
    }

    /// Resolves a generic netlink family id by name.
    pub fn genl_family(&mut self, name: &str) -> io::Result<u16> {
        let mut p = vec![CTRL_CMD_GETFAMILY, 1, 0, 0];
        let mut cname = name.as_bytes().to_vec();
        cname.push(0);
        push_attr(&mut p, CTRL_ATTR_FAMILY_NAME, &cname);
        let msgs = self.request(GENL_ID_CTRL, 0, &p)?;
        for (_, body) in &msgs {
            for (ty, data) in attrs(body.get(4..).unwrap_or(&[])) {
                if ty == CTRL_ATTR_FAMILY_ID {
                    if let Some(b) = data.get(..2) {
                        return Ok(u16::from_ne_bytes([b[0], b[1]]));
                    }
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("generic netlink family {name} not found"),
        ))
    }

    /// Asks the `netdev` family for the XDP features of one device.
    pub fn xdp_features(&mut self, family: u16, ifindex: u32) -> io::Result<XdpFeatures> {
        let mut p = vec![NETDEV_CMD_DEV_GET, 1, 0, 0];
        push_attr(&mut p, NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes());
        let msgs = self.request(family, 0, &p)?;
        let body = msgs
            .first()
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "empty netdev reply"))?;
        Ok(decode_xdp_features(body.get(4..).unwrap_or(&[])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_veth_link() {
        let mut p = vec![0u8; 16];
        p[4..8].copy_from_slice(&7u32.to_ne_bytes());
        push_attr(&mut p, IFLA_IFNAME, b"outer\0");
        push_attr(&mut p, IFLA_LINK, &5u32.to_ne_bytes());
        push_attr(&mut p, IFLA_NUM_TX_QUEUES, &4u32.to_ne_bytes());
        push_attr(&mut p, IFLA_NUM_RX_QUEUES, &2u32.to_ne_bytes());
        let mut info = Vec::new();
        push_attr(&mut info, IFLA_INFO_KIND, b"veth\0");
        push_attr(&mut p, IFLA_LINKINFO, &info);
        let l = decode_link(&p).unwrap();
        assert_eq!(l.ifindex, 7);
        assert_eq!(l.name, "outer");
        assert_eq!(l.link, Some(5));
        assert_eq!((l.rx_queues, l.tx_queues), (2, 4));
        assert_eq!(l.kind.as_deref(), Some("veth"));
    }

    #[test]
    fn truncated_attributes_stop_cleanly() {
        let buf = [8u8, 0, 3, 0, b'a'];
        assert_eq!(attrs(&buf).count(), 0);
        assert!(decode_link(&[0u8; 3]).is_none());
    }

    #[test]
    fn names_xdp_feature_bits() {
        let f = XdpFeatures {
            xdp: 0b1011,
            ..Default::default()
        };
        assert_eq!(f.xdp_names(), ["basic", "redirect", "xsk-zerocopy"]);
        assert!(f.zero_copy());
    }
}
