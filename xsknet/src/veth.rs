//! veth pairs across namespaces, with queue counts that let driver-mode XDP
//! attach and, optionally, the same ifindex on both ends.

use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::netns::NetNs;
use crate::sys::Tool;

/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

/// Checks veth's rule for driver-mode XDP: a device needs at least as many
/// rx queues as its peer has tx queues, else the attach fails with ENOSPC
/// ("XDP expects number of rx queues not less than peer tx queues").
pub fn native_xdp_queue_rule(
    rx_queues: u32,
    peer_tx_queues: u32,
) -> std::result::Result<(), String> {
    if rx_queues < peer_tx_queues {
        return Err(format!(
            "{rx_queues} rx queues < peer's {peer_tx_queues} tx queues: driver-mode XDP would fail \
             with ENOSPC; give this end numrxqueues >= {peer_tx_queues}"
        ));
    }
    Ok(())
}

/// One end of a created veth pair, as the kernel reports it.
#[derive(Debug, Clone)]
pub struct VethEnd {
    /// Namespace holding this end.
    pub netns: String,
    /// Interface name.
    pub name: String,
    /// Interface index inside `netns`.
    pub ifindex: u32,
    /// MAC address.
    pub mac: [u8; 6],
    /// Number of rx queues.
    pub rx_queues: u32,
    /// Number of tx queues.
    pub tx_queues: u32,
    /// IPv4 address, if one was assigned.
    pub addr: Option<Ipv4Addr>,
}

#[derive(Debug, Clone)]
struct EndSpec {
    name: String,
    rx: u32,
    tx: u32,
    index: Option<u32>,
    addr: Option<(Ipv4Addr, u8)>,
}

/// Describes a veth pair whose end `a` lives in one namespace and end `b` in
/// another (they may be the same namespace).
#[derive(Debug, Clone)]
pub struct VethBuilder {
    a: EndSpec,
    b: EndSpec,
    offloads_off: bool,
}

impl VethBuilder {
    /// A pair `a` <-> `b` with one rx and one tx queue per end.
    pub fn new(a_name: &str, b_name: &str) -> Self {
        let end = |name: &str| EndSpec {
            name: name.to_string(),
            rx: 1,
            tx: 1,
            index: None,
            addr: None,
        };
        VethBuilder {
            a: end(a_name),
            b: end(b_name),
            offloads_off: true,
        }
    }

    /// `n` rx and `n` tx queues on both ends: driver-mode XDP attaches on
    /// either end.
    pub fn queues(mut self, n: u32) -> Self {
        (self.a.rx, self.a.tx, self.b.rx, self.b.tx) = (n, n, n, n);
        self
    }

    /// Exact queue counts per end (to reproduce the ENOSPC case, say).
    pub fn queues_exact(mut self, a_rx: u32, a_tx: u32, b_rx: u32, b_tx: u32) -> Self {
        (self.a.rx, self.a.tx, self.b.rx, self.b.tx) = (a_rx, a_tx, b_rx, b_tx);
        self
    }

    /// Requests ifindex `index` on both ends (only possible when the ends
    /// are in different namespaces): what makes (ifindex, queue) keys collide
    /// and netns cookies necessary.
    pub fn same_ifindex(mut self, index: u32) -> Self {
        self.a.index = Some(index);
        self.b.index = Some(index);
        self
    }

    /// Requests specific ifindexes per end.
    pub fn ifindexes(mut self, a: Option<u32>, b: Option<u32>) -> Self {
        self.a.index = a;
        self.b.index = b;
        self
    }

    /// IPv4 addresses with a common prefix length.
    pub fn addrs(mut self, a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> Self {
        self.a.addr = Some((a, prefix));
        self.b.addr = Some((b, prefix));
        self
    }

    /// Whether to turn off TSO/GSO/GRO-style offloads (default: on, i.e.
    /// offloads off). veth sends a frame through its NAPI/XDP path only if
    /// the sender has no TSO or the frame is GRO-eligible; with TSO on, frames
    /// from the stack can bypass the XDP program (see veth_xmit).
    pub fn offloads_off(mut self, off: bool) -> Self {
        self.offloads_off = off;
        self
    }

    /// Creates the pair, sets addresses, brings both ends up.
    pub fn build(self, a_ns: &NetNs, b_ns: &NetNs) -> Result<Veth> {
        for end in [&self.a, &self.b] {
            if end.name.is_empty() || end.name.len() > IFNAME_MAX {
                return Err(Error::Invalid(format!(
                    "interface name {:?}: 1-15 bytes",
                    end.name
                )));
            }
            if end.rx == 0 || end.tx == 0 || end.rx > 4096 || end.tx > 4096 {
                return Err(Error::Invalid(format!(
                    "{}: queue counts must be 1..=4096",
                    end.name
                )));
            }
        }
        if a_ns.name() == b_ns.name() && self.a.index.is_some() && self.a.index == self.b.index {
            return Err(Error::Invalid(
                "the same ifindex needs two namespaces".into(),
            ));
        }
        let (a_rx, a_tx, b_rx, b_tx) = (
            self.a.rx.to_string(),
            self.a.tx.to_string(),
            self.b.rx.to_string(),
            self.b.tx.to_string(),
        );
        let a_idx = self.a.index.map(|i| i.to_string());
        let b_idx = self.b.index.map(|i| i.to_string());
        let mut args: Vec<&str> = vec!["link", "add", &self.a.name];
        if let Some(i) = &a_idx {
            args.extend(["index", i]);
        }
        args.extend([
            "numrxqueues",
            &a_rx,
            "numtxqueues",
            &a_tx,
            "type",
            "veth",
            "peer",
            "name",
        ]);
        args.extend([self.b.name.as_str(), "netns", b_ns.name()]);
        if let Some(i) = &b_idx {
            args.extend(["index", i]);
        }
        args.extend(["numrxqueues", &b_rx, "numtxqueues", &b_tx]);
        a_ns.ip(&args)?;
        // The guard exists before configuration so a failure below removes the link.
        let mut veth = Veth {
            a: placeholder(a_ns, &self.a.name),
            b: placeholder(b_ns, &self.b.name),
        };
        for (ns, spec, end) in [(a_ns, &self.a, &mut veth.a), (b_ns, &self.b, &mut veth.b)] {
            if let Some((ip, prefix)) = spec.addr {
                ns.ip(&["addr", "add", &format!("{ip}/{prefix}"), "dev", &spec.name])?;
                end.addr = Some(ip);
            }
            if self.offloads_off {
                // Offloads a given kernel lacks are reported but not fatal.
                let _ = ns.exec(
                    Tool::Ethtool,
                    &["-K", &spec.name, "tso", "off", "gso", "off"],
                );
            }
            ns.ip(&["link", "set", &spec.name, "up"])?;
            read_link(ns, end)?;
        }
        Ok(veth)
    }
}

fn placeholder(ns: &NetNs, name: &str) -> VethEnd {
    VethEnd {
        netns: ns.name().to_string(),
        name: name.to_string(),
        ifindex: 0,
        mac: [0; 6],
        rx_queues: 0,
        tx_queues: 0,
        addr: None,
    }
}

/// Fills ifindex, MAC and queue counts from `ip -d -j link show`.
fn read_link(ns: &NetNs, end: &mut VethEnd) -> Result<()> {
    let out = ns.ip(&["-d", "-j", "link", "show", "dev", &end.name])?;
    let info = parse_link_json(&out).map_err(|detail| Error::Parse {
        what: format!("`ip -d -j link show dev {}` in {}", end.name, ns.name()),
        detail,
    })?;
    (end.ifindex, end.mac, end.rx_queues, end.tx_queues) = info;
    Ok(())
}

/// Parses `ip -d -j link show dev X` into (ifindex, mac, rx queues, tx queues).
pub fn parse_link_json(out: &str) -> std::result::Result<(u32, [u8; 6], u32, u32), String> {
    let v: serde_json::Value = serde_json::from_str(out).map_err(|e| e.to_string())?;
    let link = v.get(0).ok_or("empty link list")?;
    let num = |k: &str| -> std::result::Result<u32, String> {
        link.get(k)
            .and_then(|x| x.as_u64())
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| format!("field {k} missing"))
    };
    let mac_str = link
        .get("address")
        .and_then(|a| a.as_str())
        .ok_or("field address missing")?;
    let mac = parse_mac(mac_str).ok_or_else(|| format!("bad MAC {mac_str:?}"))?;
    Ok((
        num("ifindex")?,
        mac,
        num("num_rx_queues")?,
        num("num_tx_queues")?,
    ))
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// A created veth pair; the link is deleted on drop (deleting one end
/// removes both).
#[derive(Debug)]
pub struct Veth {
    /// End `a`.
    pub a: VethEnd,
    /// End `b` (the peer of `a`).
    pub b: VethEnd,
}

impl Drop for Veth {
    fn drop(&mut self) {
        if !NetNs::exists(&self.a.netns) {
            return; // the namespace went first and took the link with it
        }
        let ip = match crate::sys::tool_path(Tool::Ip) {
            Ok(p) => p,
            Err(_) => return,
        };
        let _ = std::process::Command::new(ip)
            .args(["-n", &self.a.netns, "link", "del", &self.a.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_rule_matches_veth() {
        assert!(native_xdp_queue_rule(4, 4).is_ok());
        assert!(native_xdp_queue_rule(4, 2).is_ok());
        let e = native_xdp_queue_rule(1, 4).unwrap_err();
        assert!(e.contains("ENOSPC") && e.contains(">= 4"), "{e}");
    }

    #[test]
    fn parses_ip_link_json() {
        let out = r#"[{"ifindex":42,"ifname":"xa","address":"0a:1b:2c:3d:4e:5f","num_tx_queues":4,"num_rx_queues":2}]"#;
        let (idx, mac, rx, tx) = parse_link_json(out).unwrap();
        assert_eq!((idx, rx, tx), (42, 2, 4));
        assert_eq!(mac, [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]);
        assert!(parse_link_json("[]").is_err());
        assert!(parse_link_json("[{\"ifindex\":1}]").is_err());
        assert_eq!(parse_mac("00:11:22:33:44"), None);
        assert_eq!(parse_mac("00:11:22:33:44:55:66"), None);
    }
}
