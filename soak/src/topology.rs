//! The seed story's topology in fresh namespaces: an "outer" and an "inner"
//! veth pair, the application ends of both carrying the same ifindex in two
//! namespaces (so only the netns cookie tells their sockets apart), the XSKMAP
//! redirect program on each application end, and the same program on each
//! peer end, where it only counts arrivals (no socket registered: XDP_PASS).

use xsknet::{NetNs, Veth, VethBuilder, XdpMode, XdpProgram};

/// The ifindex both application ends get.
pub const APP_IFINDEX: u32 = 4711;

/// One side: application end (XDP + sockets) and peer end (traffic).
#[derive(Debug)]
pub struct Side {
    /// `outer` or `inner`.
    pub name: &'static str,
    /// Redirect program on the application end.
    pub xdp: XdpProgram,
    /// Counting program on the peer end.
    pub peer_xdp: XdpProgram,
    /// The pair (dropped before the namespaces).
    pub veth: Veth,
    /// Namespace of the application end.
    pub app: NetNs,
    /// Namespace of the peer end.
    pub peer: NetNs,
}

/// Interface name of the application end of `side`.
pub fn app_ifname(side: &str) -> String {
    side.to_string()
}

/// Interface name of the peer end of `side`.
pub fn peer_ifname(side: &str) -> String {
    format!("{side}-peer")
}

impl Side {
    /// Builds one side with `queues` queues on both ends (so driver-mode XDP
    /// attaches on both); the application end's program runs in `mode`
    /// (the peer end's counter always in driver mode).
    pub fn build(name: &'static str, queues: u32, mode: XdpMode) -> xsknet::Result<Side> {
        let app = NetNs::new(&format!("soak-{name}"))?;
        let peer = NetNs::new(&format!("soak-{name}-peer"))?;
        let veth = VethBuilder::new(&app_ifname(name), &peer_ifname(name))
            .queues(queues)
            .ifindexes(Some(APP_IFINDEX), None)
            .build(&app, &peer)?;
        let xdp = XdpProgram::attach(Some(&app), &app_ifname(name), mode)?;
        let peer_xdp = XdpProgram::attach(Some(&peer), &peer_ifname(name), XdpMode::Native)?;
        Ok(Side {
            name,
            xdp,
            peer_xdp,
            veth,
            app,
            peer,
        })
    }
}
