//! Root tests on the real kernel: veth pairs in fresh namespaces, the XDP
//! redirect program, AF_XDP sockets, frames sent and every one checked.
//! Outside CI they skip with a reason when root/BPF is missing; with
//! `CI=true` they fail instead.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use xsknet::packet::{check_frame, FrameSpec, L4};
use xsknet::traffic::{allowed_cpus, queue_for_cpu, receive_loop, Generator, TrafficPlan};
use xsknet::{testenv, Error, NetNs, SharedUmem, UmemConfig, VethBuilder, XdpMode, XdpProgram};

const LENGTHS: [usize; 6] = [70, 71, 128, 1000, 1514, 333];

fn flows(src_mac: [u8; 6], dst_mac: [u8; 6], queues: u16) -> Vec<FrameSpec> {
    let mut v = Vec::new();
    for l4 in [L4::Udp, L4::Tcp] {
        for q in 0..queues {
            v.push(FrameSpec {
                src_mac,
                dst_mac,
                src_ip: Ipv4Addr::new(10, 77, 0, 2),
                dst_ip: Ipv4Addr::new(10, 77, 0, 1),
                src_port: 40000 + q,
                dst_port: 9000 + q,
                l4,
                flow: q,
            });
        }
    }
    v
}

/// N frames over every queue (one per CPU, at most 4) in native mode:
/// exactly N arrive, each once, on the socket of the queue the sending CPU
/// selects, with the right length and bytes; afterwards no namespace or link
/// is left.
#[test]
fn native_xdp_delivers_every_frame_to_its_queue_socket() {
    if !testenv::require_root("native_xdp_delivers_every_frame_to_its_queue_socket") {
        return;
    }
    let cpus = allowed_cpus().unwrap();
    let queues = cpus.len().clamp(1, 4) as u16;
    const PER_QUEUE: u64 = 1500;
    let ns_x = NetNs::new("xdp").unwrap();
    let ns_p = NetNs::new("peer").unwrap();
    let (ns_x_name, ns_p_name) = (ns_x.name().to_string(), ns_p.name().to_string());
    // Same ifindex on both ends: the namespace boundary is all that tells
    // them apart.
    let veth = VethBuilder::new("xsk0", "gen0")
        .queues(u32::from(queues))
        .same_ifindex(4242)
        .addrs(Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 2), 24)
        .build(&ns_x, &ns_p)
        .unwrap();
    assert_eq!((veth.a.ifindex, veth.b.ifindex), (4242, 4242));
    assert_eq!(
        (veth.a.rx_queues, veth.b.tx_queues),
        (u32::from(queues), u32::from(queues))
    );

    let xdp = XdpProgram::attach(Some(&ns_x), "xsk0", XdpMode::Native).unwrap();
    let mut umem = SharedUmem::new(UmemConfig::default()).unwrap();
    let mut socks = Vec::new();
    for q in 0..u32::from(queues) {
        let s = umem.socket(Some(&ns_x), "xsk0", q).unwrap();
        assert_eq!(s.key().netns_cookie, ns_x.cookie());
        assert_eq!((s.key().ifindex, s.key().queue), (4242, q));
        assert_eq!(s.shares_umem(), q != 0);
        xdp.register(q, s.fd()).unwrap();
        socks.push(s);
    }

    let all_flows = flows(veth.b.mac, veth.a.mac, queues);
    let received: Vec<AtomicU64> = (0..queues).map(|_| AtomicU64::new(0)).collect();
    let seen: Mutex<HashMap<u64, u32>> = Mutex::new(HashMap::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let frames: Vec<u64> = umem.frame_addrs().collect();
    let per_sock = frames.len() / socks.len();
    let (sends, counts) = std::thread::scope(|sc| {
        let mut rx = Vec::new();
        for (i, sock) in socks.iter_mut().enumerate() {
            let mut free = frames[i * per_sock..(i + 1) * per_sock].to_vec();
            let (received, seen, errors) = (&received[i], &seen, &errors);
            rx.push(sc.spawn(move || {
                let queue = sock.key().queue;
                receive_loop(
                    sock,
                    &mut free,
                    PER_QUEUE,
                    Duration::from_secs(5),
                    received,
                    |d, bytes| {
                        let err =
                            |m: String| errors.lock().unwrap().push(format!("queue {queue}: {m}"));
                        match check_frame(bytes) {
                            Ok(info) => {
                                let want_len =
                                    LENGTHS[(info.seq % PER_QUEUE) as usize % LENGTHS.len()];
                                if info.len != want_len || d.len as usize != want_len {
                                    err(format!(
                                        "seq {} len {} desc len {} want {want_len}",
                                        info.seq, info.len, d.len
                                    ));
                                }
                                if u32::from(info.flow) != queue {
                                    err(format!(
                                        "seq {} of flow {} arrived on queue {queue}",
                                        info.seq, info.flow
                                    ));
                                }
                                *seen.lock().unwrap().entry(info.seq).or_default() += 1;
                            }
                            Err(e) => err(format!("addr {:#x} len {}: {e}", d.addr, d.len)),
                        }
                    },
                )
            }));
        }
        let mut tx = Vec::new();
        for (q, &cpu) in cpus.iter().take(usize::from(queues)).enumerate() {
            let queue = queue_for_cpu(cpu, u32::from(queues));
            let plan = TrafficPlan {
                flows: all_flows
                    .iter()
                    .filter(|f| u32::from(f.flow) == queue)
                    .copied()
                    .collect(),
                lengths: LENGTHS.to_vec(),
                count: PER_QUEUE,
                duration: None,
                window: Some(128),
                stall: Duration::from_secs(5),
                first_seq: q as u64 * PER_QUEUE,
                cpu: Some(cpu),
            };
            let (ns_p, received) = (&ns_p, &received[queue as usize]);
            tx.push(sc.spawn(move || {
                let mut gen = Generator::new(Some(ns_p), "gen0").unwrap();
                gen.run(&plan, received).unwrap()
            }));
        }
        let sends: Vec<_> = tx.into_iter().map(|h| h.join().unwrap()).collect();
        let counts: Vec<u64> = rx.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        (sends, counts)
    });
    let n = PER_QUEUE * u64::from(queues);
    let errors = errors.into_inner().unwrap();
    assert!(
        errors.is_empty(),
        "{} bad frames, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(
        sends.iter().all(|s| s.sent == PER_QUEUE && !s.stalled),
        "generators: {sends:?}"
    );
    assert_eq!(
        counts,
        vec![PER_QUEUE; usize::from(queues)],
        "per-queue receive counts"
    );
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len() as u64, n);
    assert!(
        seen.iter().all(|(&s, &c)| s < n && c == 1),
        "a sequence number arrived twice"
    );
    let v = xdp.verdicts().unwrap();
    assert_eq!(v.redirected, n, "XDP verdicts {v:?}");
    for s in &socks {
        let st = s.stats().unwrap();
        assert_eq!(
            (st.rx_dropped, st.rx_invalid_descs),
            (0, 0),
            "{:?}: {st:?}",
            s.key()
        );
    }

    // Cleanup: every guard removes what it made.
    drop(socks);
    drop(umem);
    drop(xdp);
    drop(veth);
    assert!(
        ns_x.ip(&["link", "show", "dev", "xsk0"]).is_err(),
        "xsk0 left behind"
    );
    assert!(
        ns_p.ip(&["link", "show", "dev", "gen0"]).is_err(),
        "gen0 left behind"
    );
    drop(ns_x);
    drop(ns_p);
    assert!(
        !NetNs::exists(&ns_x_name) && !NetNs::exists(&ns_p_name),
        "netns left behind"
    );
}

/// veth's rule: driver-mode XDP needs rx queues >= the peer's tx queues.
/// The attach fails with ENOSPC and a hint; generic mode has no such limit.
#[test]
fn native_xdp_refuses_fewer_rx_queues_than_peer_tx_queues() {
    if !testenv::require_root("native_xdp_refuses_fewer_rx_queues_than_peer_tx_queues") {
        return;
    }
    let ns_x = NetNs::new("enospc").unwrap();
    let ns_p = NetNs::new("enospc-peer").unwrap();
    let _veth = VethBuilder::new("xsk0", "gen0")
        .queues_exact(1, 1, 1, 4)
        .build(&ns_x, &ns_p)
        .unwrap();
    let err = XdpProgram::attach(Some(&ns_x), "xsk0", XdpMode::Native).unwrap_err();
    match &err {
        Error::XdpAttach { source, hint, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc_enospc()), "{err}");
            assert!(hint.contains("rx queues"), "{err}");
        }
        other => panic!("expected XdpAttach, got {other}"),
    }
    let generic = XdpProgram::attach(Some(&ns_x), "xsk0", XdpMode::Generic).unwrap();
    assert_eq!(generic.mode(), XdpMode::Generic);
}

fn libc_enospc() -> i32 {
    28
}
