//! A real AF_XDP socket on a veth pair in fresh network namespaces (the
//! `xsknet` testbed), checked through the xdpilone wrappers: frames go
//! FILL → RX → TX → COMPLETION → FILL with no violation, poison is written
//! back into every consumed RX slot; then one injected misuse (a frame still
//! on FILL sent on TX) is caught. Needs root, BPF and namespaces; skips
//! outside CI otherwise, fails in CI (`xskdbg-testenv`).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xskdbg_recorder::xdpilone::{CheckedPool, CheckedRx, CheckedTx};
use xskdbg_recorder::{
    PoolConfig, SockConfig, SockKey, State, UmemConfig, ViolationKind, DEFAULT_POISON,
};
use xskdbg_testenv::Cap;
use xsknet::packet::{build_frame, check_frame, FrameSpec, L4};
use xsknet::traffic::Generator;
use xsknet::{NetNs, SharedUmem, VethBuilder, XdpDesc, XdpMode, XdpProgram};

use super::common::Rig;

const PACKETS: usize = 16;

fn poll_readable(fd: i32, ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) };
}

#[test]
fn real_socket_checked_through_the_adapter_then_misuse_caught() {
    if !xskdbg_testenv::require(
        "real_socket_checked_through_the_adapter_then_misuse_caught",
        &[Cap::Root, Cap::Bpf, Cap::Netns],
    ) {
        return;
    }
    let ns_x = NetNs::new("recx").unwrap();
    let ns_p = NetNs::new("recp").unwrap();
    let tag = std::process::id() % 100_000;
    let (a, b) = (format!("rxa{tag}"), format!("rxb{tag}"));
    let veth = VethBuilder::new(&a, &b)
        .queues(1)
        .addrs(Ipv4Addr::new(10, 78, 0, 1), Ipv4Addr::new(10, 78, 0, 2), 24)
        .build(&ns_x, &ns_p)
        .unwrap();
    let xdp = XdpProgram::attach(Some(&ns_x), &a, XdpMode::Native).unwrap();
    let ucfg = xsknet::UmemConfig::default();
    let mut umem = SharedUmem::new(ucfg).unwrap();
    let mut sock = umem.socket(Some(&ns_x), &a, 0).unwrap();
    xdp.register(0, sock.fd()).unwrap();
    let area = Arc::clone(sock.area());
    let fd = sock.fd_raw();
    let k = sock.key();
    assert_eq!(k.netns_cookie, ns_x.cookie());

    let rig = Rig::new(true);
    let ru = rig
        .rec
        .umem(UmemConfig::aligned(ucfg.frames, ucfg.frame_size).with_poison(DEFAULT_POISON))
        .unwrap();
    let key = SockKey::new(k.netns_cookie, k.ifindex, k.queue);
    let pool = ru.pool(PoolConfig::new(key)).unwrap();
    let rs = pool
        .socket(SockConfig::new(key).fd(fd).label("xsk q:0"))
        .unwrap();
    let frames: Vec<u64> = umem.frame_addrs().take(64).collect();
    ru.free(&frames);

    let mut fill = CheckedPool::new(&mut sock.fill, pool.clone());
    let mut comp = CheckedPool::new(&mut sock.comp, pool.clone());
    let mut rx =
        CheckedRx::with_ring(&mut sock.rx, rs.clone(), ucfg.rx_size, Some(DEFAULT_POISON)).unwrap();
    let mut tx = CheckedTx::new(&mut sock.tx, rs.clone());

    ru.hold(&frames);
    assert_eq!(fill.fill(&frames), frames.len());

    // A few UDP frames from the peer namespace.
    let gen = Generator::new(Some(&ns_p), &b).unwrap();
    let spec = FrameSpec {
        src_mac: veth.b.mac,
        dst_mac: veth.a.mac,
        src_ip: Ipv4Addr::new(10, 78, 0, 2),
        dst_ip: Ipv4Addr::new(10, 78, 0, 1),
        src_port: 40000,
        dst_port: 9000,
        l4: L4::Udp,
        flow: 0,
    };
    let mut buf = Vec::new();
    for seq in 0..PACKETS as u64 {
        build_frame(&spec, seq, 128, &mut buf).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !gen.send_frame(&buf).unwrap() {
            assert!(Instant::now() < deadline, "generator stalled");
        }
    }

    // Receive them through the checked RX ring.
    let mut got: Vec<XdpDesc> = Vec::new();
    let mut out = [XdpDesc::default(); 64];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < PACKETS && Instant::now() < deadline {
        let n = rx.receive(&mut out);
        if n == 0 {
            poll_readable(fd, 10);
        }
        got.extend_from_slice(&out[..n]);
    }
    assert_eq!(got.len(), PACKETS, "frames received");
    let mut bytes = Vec::new();
    for d in &got {
        assert!(area.read_into(d.addr, d.len, &mut bytes));
        check_frame(&bytes).unwrap();
        assert_eq!(ru.state(d.addr), Some(State::Rx));
    }
    // Every consumed slot of the real RX ring now holds the poison value.
    let ring = xskdbg_recorder::sys::RxRingMap::map(fd, ucfg.rx_size).unwrap();
    assert_eq!(ring.consumer(), PACKETS as u32);
    for i in 0..PACKETS as u32 {
        assert_eq!(ring.slot(i).addr, DEFAULT_POISON, "slot {i}");
    }
    drop(ring);
    // FILL order came back on RX.
    let rx_frames: Vec<u64> = got.iter().map(|d| area.chunk_of(d.addr)).collect();
    assert_eq!(rx_frames, frames[..PACKETS]);

    // Forward them: TX, then reap the completions and refill.
    assert_eq!(tx.transmit(&got), PACKETS);
    let mut done: Vec<u64> = Vec::new();
    let mut cbuf = [0u64; 64];
    let deadline = Instant::now() + Duration::from_secs(5);
    while done.len() < PACKETS && Instant::now() < deadline {
        tx.wake();
        let n = comp.complete(&mut cbuf);
        done.extend_from_slice(&cbuf[..n]);
        if n == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert_eq!(done.len(), PACKETS, "completions");
    let done_frames: Vec<u64> = done.iter().map(|&a| area.chunk_of(a)).collect();
    assert_eq!(fill.fill(&done_frames), PACKETS);

    assert_eq!(rig.rec.violations(), 0, "{:?}", rig.violations());
    let lines = rig.lines();
    let sk = format!("sk={:x}:{:x}:0", k.netns_cookie, k.ifindex);
    // The socket's identity: its SO_COOKIE.
    let sid = xskdbg_recorder::sys::socket_cookie(fd).expect("SO_COOKIE");
    assert_ne!(sid, 0);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("xskdbg:1 rx {sk} sid={sid:x} pool=1 idx=0 "))),
        "{lines:#?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with(&format!("xskdbg:1 stats {sk} sid={sid:x} "))));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("xskdbg:1 comp pool=1 n=")));

    // Injected misuse: a frame that is still on FILL is also put on TX.
    let on_fill = frames[40];
    assert_eq!(ru.state(on_fill), Some(State::Fill));
    tx.transmit(&[XdpDesc {
        addr: on_fill,
        len: 60,
        options: 0,
    }]);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::InvalidTransition);
    assert_eq!((v[0].from, v[0].to), (State::Fill, State::Tx));
    assert!(v[0].line.ends_with(" label=xsk q:0"), "{}", v[0].line);
    assert!(rig.rec.is_frozen());

    drop((fill, comp, rx, tx));
    drop(sock);
    drop(umem);
    drop(xdp);
    drop(veth);
    assert!(
        ns_x.ip(&["link", "show", "dev", &a]).is_err(),
        "{a} left behind"
    );
}
