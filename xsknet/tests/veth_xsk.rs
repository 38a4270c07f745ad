//! Root tests on the real kernel: veth pairs in fresh namespaces, the XDP
//! redirect program, AF_XDP sockets, frames sent and every one checked.
//! Outside CI they skip with a reason when root, BPF or `ip` is missing; in
//! CI they fail instead (`xskdbg-testenv`).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use xsknet::packet::{check_frame, FrameSpec, L4};
use xsknet::traffic::{allowed_cpus, queue_for_cpu, receive_loop, Generator, TrafficPlan};
use xsknet::{Error, NetNs, SharedUmem, UmemConfig, VethBuilder, XdpMode, XdpProgram};

use xskdbg_testenv::Cap;

/// Root, BPF (the XDP program) and namespaces with veth pairs.
fn require(test: &str) -> bool {
    xskdbg_testenv::require(test, &[Cap::Root, Cap::Bpf, Cap::Netns])
}

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
    if !require("native_xdp_delivers_every_frame_to_its_queue_socket") {
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
            // FILL is stocked before any frame is sent, or it would be dropped.
            sock.fill_from(&mut free);
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
                gap: None,
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
    if !require("native_xdp_refuses_fewer_rx_queues_than_peer_tx_queues") {
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

/// One UMEM shared by sockets on two devices that have the same ifindex and
/// queue in two namespaces (the seed story's topology): only the netns
/// cookie tells the socket keys apart, and each socket receives exactly the
/// frames sent to its own device, in generic and native mode alike.
#[test]
fn shared_umem_across_namespaces_with_colliding_ifindex() {
    if !require("shared_umem_across_namespaces_with_colliding_ifindex") {
        return;
    }
    const N: u64 = 1000;
    let cpu = allowed_cpus().unwrap()[0];
    let app_a = NetNs::new("app-a").unwrap();
    let peer_a = NetNs::new("peer-a").unwrap();
    let app_b = NetNs::new("app-b").unwrap();
    let peer_b = NetNs::new("peer-b").unwrap();
    let veth_a = VethBuilder::new("x0", "g0")
        .ifindexes(Some(77), None)
        .build(&app_a, &peer_a)
        .unwrap();
    let veth_b = VethBuilder::new("x0", "g0")
        .ifindexes(Some(77), None)
        .build(&app_b, &peer_b)
        .unwrap();
    let xdp_a = XdpProgram::attach(Some(&app_a), "x0", XdpMode::Native).unwrap();
    let xdp_b = XdpProgram::attach(Some(&app_b), "x0", XdpMode::Generic).unwrap();
    let mut umem = SharedUmem::new(UmemConfig::default()).unwrap();
    let mut sa = umem.socket(Some(&app_a), "x0", 0).unwrap();
    let mut sb = umem.socket(Some(&app_b), "x0", 0).unwrap();
    assert_eq!(
        (sa.key().ifindex, sa.key().queue),
        (sb.key().ifindex, sb.key().queue)
    );
    assert_ne!(sa.key(), sb.key(), "netns cookie must separate the keys");
    assert_eq!(
        (sa.key().netns_cookie, sb.key().netns_cookie),
        (app_a.cookie(), app_b.cookie())
    );
    assert!(sb.shares_umem());
    xdp_a.register(0, sa.fd()).unwrap();
    xdp_b.register(0, sb.fd()).unwrap();

    let frames: Vec<u64> = umem.frame_addrs().collect();
    let half = frames.len() / 2;
    let recv = [AtomicU64::new(0), AtomicU64::new(0)];
    let bad: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // FILL is stocked before any frame is sent, or it would be dropped.
    let mut free_a = frames[..half].to_vec();
    let mut free_b = frames[half..].to_vec();
    sa.fill_from(&mut free_a);
    sb.fill_from(&mut free_b);
    let counts = std::thread::scope(|sc| {
        let mut rx = Vec::new();
        for (i, (sock, free)) in [(&mut sa, free_a), (&mut sb, free_b)]
            .into_iter()
            .enumerate()
        {
            let (recv, bad) = (&recv[i], &bad);
            rx.push(sc.spawn(move || {
                let mut free = free;
                let mut seqs = Vec::new();
                receive_loop(
                    sock,
                    &mut free,
                    N,
                    Duration::from_secs(5),
                    recv,
                    |_, bytes| match check_frame(bytes) {
                        Ok(info) if usize::from(info.flow) == i => seqs.push(info.seq),
                        Ok(info) => bad
                            .lock()
                            .unwrap()
                            .push(format!("socket {i} got flow {}", info.flow)),
                        Err(e) => bad.lock().unwrap().push(format!("socket {i}: {e}")),
                    },
                )
                .unwrap();
                seqs
            }));
        }
        for (i, (ns, veth)) in [(&peer_a, &veth_a), (&peer_b, &veth_b)]
            .into_iter()
            .enumerate()
        {
            let mut spec = flows(veth.b.mac, veth.a.mac, 1)[0];
            spec.flow = i as u16;
            let plan = TrafficPlan {
                flows: vec![spec],
                lengths: LENGTHS.to_vec(),
                count: N,
                duration: None,
                window: Some(128),
                stall: Duration::from_secs(5),
                first_seq: 0,
                cpu: Some(cpu),
                gap: None,
            };
            let mut gen = Generator::new(Some(ns), "g0").unwrap();
            let rep = gen.run(&plan, &recv[i]).unwrap();
            assert_eq!(rep.sent, N, "{rep:?}");
        }
        rx.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let bad = bad.into_inner().unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    for seqs in counts {
        assert_eq!(
            seqs,
            (0..N).collect::<Vec<_>>(),
            "every frame once, in order"
        );
    }
}

/// AF_XDP transmit in copy mode: frames written into the shared UMEM and
/// put on x0's TX come back on COMPLETION exactly once each, and arrive
/// intact on the AF_XDP socket of the peer device (another namespace, same
/// UMEM): the forwarder's path.
#[test]
fn tx_frames_complete_once_and_reach_the_peer_socket() {
    if !require("tx_frames_complete_once_and_reach_the_peer_socket") {
        return;
    }
    const N: u64 = 1000;
    let app = NetNs::new("tx-app").unwrap();
    let peer = NetNs::new("tx-peer").unwrap();
    let veth = VethBuilder::new("x0", "g0").build(&app, &peer).unwrap();
    let _xdp_tx_side = XdpProgram::attach(Some(&app), "x0", XdpMode::Native).unwrap();
    let xdp_peer = XdpProgram::attach(Some(&peer), "g0", XdpMode::Native).unwrap();
    let mut umem = SharedUmem::new(UmemConfig::default()).unwrap();
    let mut tx = umem.socket(Some(&app), "x0", 0).unwrap();
    let mut rx = umem.socket(Some(&peer), "g0", 0).unwrap();
    xdp_peer.register(0, rx.fd()).unwrap();

    let frames: Vec<u64> = umem.frame_addrs().collect();
    let (tx_frames, rx_frames) = frames.split_at(frames.len() / 2);
    let mut tx_free = tx_frames.to_vec();
    let mut rx_free = rx_frames.to_vec();
    let spec = flows(veth.a.mac, veth.b.mac, 1)[0];
    let area = umem.area().clone();
    let received = AtomicU64::new(0);
    // FILL is stocked before the first frame leaves, or it would be dropped.
    rx.fill_from(&mut rx_free);
    let (seqs, completed) = std::thread::scope(|sc| {
        let received = &received;
        let h = sc.spawn(move || {
            let mut seqs = Vec::new();
            receive_loop(
                &mut rx,
                &mut rx_free,
                N,
                Duration::from_secs(5),
                received,
                |_, bytes| seqs.push(check_frame(bytes).map(|i| i.seq)),
            )
            .unwrap();
            seqs
        });
        let mut buf = Vec::new();
        let mut completed: HashMap<u64, u32> = HashMap::new();
        let mut done = Vec::new();
        let mut seq = 0u64;
        let mut idle = 0u32;
        while (completed.values().sum::<u32>() as u64) < N && idle < 5000 {
            // Keep at most 128 frames in flight (veth's ring holds 256).
            while seq < N && seq - received.load(std::sync::atomic::Ordering::Acquire) < 128 {
                let Some(addr) = tx_free.pop() else { break };
                let len = LENGTHS[seq as usize % LENGTHS.len()];
                xsknet::packet::build_frame(&spec, seq, len, &mut buf).unwrap();
                assert!(area.write(addr, &buf));
                let desc = xsknet::XdpDesc {
                    addr,
                    len: len as u32,
                    options: 0,
                };
                if tx.transmit(&[desc]) == 0 {
                    tx_free.push(addr);
                    break;
                }
                seq += 1;
            }
            tx.transmit(&[]);
            done.clear();
            if tx.complete(256, &mut done) == 0 {
                idle += 1;
                std::thread::sleep(Duration::from_millis(1));
            } else {
                idle = 0;
            }
            for &a in &done {
                *completed.entry(a).or_default() += 1;
                tx_free.push(a);
            }
        }
        (h.join().unwrap(), completed)
    });
    let total: u32 = completed.values().sum();
    assert_eq!(u64::from(total), N, "completions");
    let seqs: Vec<u64> = seqs.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(
        seqs,
        (0..N).collect::<Vec<_>>(),
        "peer received every frame once, in order"
    );
    let st = tx.stats().unwrap();
    assert_eq!(st.tx_invalid_descs, 0, "{st:?}");
}
