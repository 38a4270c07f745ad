//! Cost per probed event of a backend (root; run with
//! `cargo run --release -p xskdbg-probes --example probe_cost [BACKEND] [FRAMES]`,
//! default `tracepoint 20000`).
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

const ROUNDS: usize = 5;

fn main() {
    // probe_cost [BACKEND] [FRAMES]
    let mut argv = std::env::args().skip(1);
    let backend: Backend = argv
        .next()
        .unwrap_or_else(|| "tracepoint".into())
        .parse()
        .unwrap_or_else(|e| {
            eprintln!("probe_cost: {e}");
            std::process::exit(2)
        });
    let frames: u64 = argv.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("probe_cost: needs root (netns, veth, XDP, BPF)");
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

    // Thread CPU time: the receive path runs in softirq on this thread (the
    // AF_PACKET send wakes veth's NAPI locally), and CPU time is far less
    // disturbed than wall time on a busy machine.
    let cpu_ns = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid timespec out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
    };
    let mut one_round = |probed: bool| -> (f64, f64) {
        let probes = probed.then(|| {
            attach(&Request {
                backend,
                filters: Filters {
                    netns_cookie: Some(ns_x.cookie()),
                    ..Filters::default()
                },
                buffer: buf.clone(),
                group: xskdbg_probes::kprobe_events::GROUP.into(),
                stacks: false,
            })
            .expect("attach")
        });
        let mut frame = Vec::new();
        let mut got: Vec<XdpDesc> = Vec::new();
        let (mut sent, mut recv) = (0u64, 0u64);
        let start = Instant::now();
        let cpu0 = cpu_ns();
        while recv < frames && start.elapsed() < Duration::from_secs(60) {
            while sent < frames && sent - recv < 64 {
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
        let ns = start.elapsed().as_nanos() as f64 / frames as f64;
        let cpu = (cpu_ns() - cpu0) / frames as f64;
        drop(probes);
        buf.clear().unwrap();
        assert_eq!(recv, frames, "every frame received");
        (ns, cpu)
    };
    let (mut base, mut probed) = (Vec::new(), Vec::new());
    let (mut base_cpu, mut probed_cpu) = (Vec::new(), Vec::new());
    one_round(false); // warm-up
    for _ in 0..ROUNDS {
        let (w, c) = one_round(false);
        base.push(w);
        base_cpu.push(c);
        let (w, c) = one_round(true);
        probed.push(w);
        probed_cpu.push(c);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (b, p) = (med(&mut base), med(&mut probed));
    let (bc, pc) = (med(&mut base_cpu), med(&mut probed_cpu));
    println!(
        "{backend} backend, {frames} frames x {ROUNDS} rounds, kernel {}:",
        xskdbg_probes::sys::kernel_release()
    );
    println!("  thread CPU: unprobed {bc:.0} ns/frame, probed {pc:.0} ns/frame (medians)");
    println!(
        "  cost:       {:.0} ns CPU per received frame ({:.2}x)",
        pc - bc,
        pc / bc
    );
    println!(
        "  wall:       unprobed {b:.0} ns/frame, probed {p:.0} ns/frame ({:.2}x)",
        p / b
    );
}
