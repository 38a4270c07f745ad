//! Cost per probed event of the `tracepoint` backend (root; run with
//! `cargo run --release -p xskdbg-probes --example probe_cost`).
//!
//! A veth pair in two fresh namespaces, native XDP redirecting into one
//! copy-mode AF_XDP socket, and a paced sender in the same thread: the time
//! per frame is measured with no probes and with the probes attached, in
//! alternating rounds, and the median difference is the cost the probes add
//! per received frame (one `krx`, and per NAPI poll one `kpoll` + `kflush`).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use xskdbg_probes::{attach, Backend, Filters, Request};
use xskdbg_tracefs::TraceFs;
use xsknet::packet::{build_frame, FrameSpec, L4};
use xsknet::traffic::Generator;
use xsknet::{NetNs, SharedUmem, UmemConfig, VethBuilder, XdpDesc, XdpMode, XdpProgram};

const FRAMES: u64 = 20_000;
const ROUNDS: usize = 5;

fn main() {
    if let Some(why) = xsknet::testenv::missing_requirements() {
        eprintln!("probe_cost: {why}");
        std::process::exit(2);
    }
    let tfs = TraceFs::find().expect("tracefs");
    let inst = tfs
        .create_instance(&format!("xskdbg-bench-{}", std::process::id()))
        .expect("instance");
    let buf = inst.buffer();
    buf.set_buffer_size_kb(8192).expect("buffer size");
    let ns_x = NetNs::new("bx").unwrap();
    let ns_p = NetNs::new("bp").unwrap();
    let veth = VethBuilder::new("bxsk0", "bgen0")
        .queues(1)
        .addrs(Ipv4Addr::new(10, 79, 0, 1), Ipv4Addr::new(10, 79, 0, 2), 24)
        .build(&ns_x, &ns_p)
        .unwrap();
    let xdp = XdpProgram::attach(Some(&ns_x), "bxsk0", XdpMode::Native).unwrap();
    let mut umem = SharedUmem::new(UmemConfig::default()).unwrap();
    let mut sock = umem.socket(Some(&ns_x), "bxsk0", 0).unwrap();
    xdp.register(0, sock.fd()).unwrap();
    let mut free: Vec<u64> = umem.frame_addrs().collect();
    sock.fill_from(&mut free);
    let spec = FrameSpec {
        src_mac: veth.b.mac,
        dst_mac: veth.a.mac,
        src_ip: Ipv4Addr::new(10, 79, 0, 2),
        dst_ip: Ipv4Addr::new(10, 79, 0, 1),
        src_port: 4000,
        dst_port: 9000,
        l4: L4::Udp,
        flow: 0,
    };
    let gen = Generator::new(Some(&ns_p), "bgen0").unwrap();
    let area = std::sync::Arc::clone(sock.area());

    let mut one_round = |probed: bool| -> f64 {
        let probes = probed.then(|| {
            attach(&Request {
                backend: Backend::Tracepoint,
                filters: Filters {
                    netns_cookie: Some(ns_x.cookie()),
                    ..Filters::default()
                },
                buffer: buf.clone(),
                group: xskdbg_probes::kprobe_events::GROUP.into(),
            })
            .expect("attach")
        });
        let mut frame = Vec::new();
        let mut got: Vec<XdpDesc> = Vec::new();
        let (mut sent, mut recv) = (0u64, 0u64);
        let start = Instant::now();
        while recv < FRAMES && start.elapsed() < Duration::from_secs(60) {
            while sent < FRAMES && sent - recv < 64 {
                build_frame(&spec, sent, 64, &mut frame).unwrap();
                if gen.send_frame(&frame).unwrap() {
                    sent += 1;
                }
            }
            got.clear();
            if sock.receive(256, &mut got) == 0 {
                continue;
            }
            recv += got.len() as u64;
            for d in &got {
                free.push(area.chunk_of(d.addr));
            }
            sock.fill_from(&mut free);
        }
        let ns = start.elapsed().as_nanos() as f64 / FRAMES as f64;
        drop(probes);
        buf.clear().unwrap();
        assert_eq!(recv, FRAMES, "every frame received");
        ns
    };
    let (mut base, mut probed) = (Vec::new(), Vec::new());
    one_round(false); // warm-up
    for _ in 0..ROUNDS {
        base.push(one_round(false));
        probed.push(one_round(true));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (b, p) = (med(&mut base), med(&mut probed));
    println!(
        "tracepoint backend, {FRAMES} frames x {ROUNDS} rounds, kernel {}:",
        xskdbg_probes::sys::kernel_release()
    );
    println!("  unprobed: {b:.0} ns/frame (median)");
    println!("  probed:   {p:.0} ns/frame (median)");
    println!(
        "  cost:     {:.0} ns per received frame ({:.2}x)",
        p - b,
        p / b
    );
}
