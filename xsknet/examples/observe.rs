//! Prints how the running kernel treats AF_XDP on veth: which XDP modes
//! attach, whether frames reach the program with TSO on or off, the offset
//! of RX descriptors inside their chunk in copy mode, and what a zero-copy
//! bind answers. Run as root: `cargo run -p xskdbg-xsknet --example observe`.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use xsknet::packet::{FrameSpec, L4};
use xsknet::traffic::{allowed_cpus, receive_loop, Generator, TrafficPlan};
use xsknet::{NetNs, SharedUmem, UmemConfig, VethBuilder, XdpMode, XdpProgram};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cpu = allowed_cpus()?[0];
    for (mode, offloads_off) in [
        (XdpMode::Native, true),
        (XdpMode::Native, false),
        (XdpMode::Generic, true),
        (XdpMode::Generic, false),
    ] {
        let ns_x = NetNs::new("obs-x")?;
        let ns_p = NetNs::new("obs-p")?;
        let veth = VethBuilder::new("x0", "g0")
            .queues(2)
            .offloads_off(offloads_off)
            .build(&ns_x, &ns_p)?;
        let features = ns_p
            .exec(xsknet::sys::Tool::Ethtool, &["-k", "g0"])
            .unwrap_or_default();
        let tso = features
            .lines()
            .find(|l| l.starts_with("tcp-segmentation-offload"))
            .unwrap_or("?")
            .to_string();
        let xdp = XdpProgram::attach(Some(&ns_x), "x0", mode)?;
        let mut umem = SharedUmem::new(UmemConfig::default())?;
        let mut sock = umem.socket(Some(&ns_x), "x0", 0)?;
        xdp.register(0, sock.fd())?;
        let spec = FrameSpec {
            src_mac: veth.b.mac,
            dst_mac: veth.a.mac,
            src_ip: Ipv4Addr::new(10, 1, 0, 2),
            dst_ip: Ipv4Addr::new(10, 1, 0, 1),
            src_port: 1,
            dst_port: 2,
            l4: L4::Udp,
            flow: 0,
        };
        let recv = AtomicU64::new(0);
        let plan = TrafficPlan {
            flows: vec![spec],
            lengths: vec![100],
            count: 10,
            duration: None,
            window: None,
            stall: Duration::from_secs(1),
            first_seq: 0,
            cpu: Some(cpu - cpu % 2),
            gap: None,
        };
        let mut free: Vec<u64> = umem.frame_addrs().collect();
        // Frames arriving while FILL is empty are dropped
        // (rx_fill_ring_empty_descs), so fill before sending.
        sock.fill_from(&mut free);
        Generator::new(Some(&ns_p), "g0")?.run(&plan, &recv)?;
        let mut offsets = Vec::new();
        let got = receive_loop(
            &mut sock,
            &mut free,
            10,
            Duration::from_millis(500),
            &recv,
            |d, _| offsets.push(d.addr % 2048),
        )?;
        let zc = zero_copy_attempt(&ns_x);
        println!(
            "mode={} offloads_off={offloads_off} ({tso}): received {got}/10, verdicts {:?}, rx addr offsets in chunk {:?}, stats {:?}",
            mode.as_str(),
            xdp.verdicts()?,
            offsets.first(),
            sock.stats()?
        );
        println!("  second UMEM bound XDP_ZEROCOPY on x0 queue 1: {zc}");
    }
    Ok(())
}

/// Binds a fresh UMEM's socket with XDP_ZEROCOPY on queue 1 and reports the
/// kernel's answer (veth has no zero-copy support).
fn zero_copy_attempt(ns: &NetNs) -> String {
    use xdpilone::{IfInfo, Socket, SocketConfig, Umem};
    let res = ns.run(|| -> Result<(), String> {
        let len = 64 * 4096;
        // SAFETY: anonymous mapping, leaked on purpose for this short probe.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let area = std::ptr::NonNull::new(std::ptr::slice_from_raw_parts_mut(p.cast::<u8>(), len))
            .ok_or("mmap")?;
        // SAFETY: the mapping is page aligned and never unmapped.
        let umem = unsafe {
            Umem::new(
                xdpilone::UmemConfig {
                    fill_size: 64,
                    complete_size: 64,
                    frame_size: 4096,
                    headroom: 0,
                    flags: 0,
                },
                area,
            )
        }
        .map_err(|e| format!("umem: {e}"))?;
        let mut info = IfInfo::invalid();
        info.from_ifindex(xsknet::sys::ifindex("x0").map_err(|e| e.to_string())?)
            .map_err(|e| format!("{e}"))?;
        info.set_queue(1);
        let sock = Socket::with_shared(&info, &umem).map_err(|e| format!("socket: {e}"))?;
        let _dq = umem.fq_cq(&sock).map_err(|e| format!("fq_cq: {e}"))?;
        let cfg = SocketConfig {
            rx_size: std::num::NonZeroU32::new(64),
            tx_size: None,
            bind_flags: SocketConfig::XDP_BIND_ZEROCOPY,
        };
        let user = umem.rx_tx(&sock, &cfg).map_err(|e| format!("rx_tx: {e}"))?;
        umem.bind(&user)
            .map_err(|e| format!("bind: {e} (errno {})", e.get_raw()))
    });
    match res {
        Ok(Ok(())) => "accepted".into(),
        Ok(Err(e)) => e,
        Err(e) => e.to_string(),
    }
}
