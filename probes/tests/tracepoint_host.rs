//! Root test of the `tracepoint` backend on the running kernel: a veth pair
//! in namespaces, native XDP redirecting into a copy-mode AF_XDP socket,
//! frames sent across. The saved trace must hold one `krx` per frame whose
//! addr, len and RX slot are exactly what the socket read, in order.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{hex, project_line, require_root};
use xskdbg_probes::{attach, Backend, Filters, Request};
use xskdbg_tracefs::TraceFs;
use xsknet::packet::{build_frame, FrameSpec, L4};
use xsknet::traffic::Generator;
use xsknet::{NetNs, SharedUmem, UmemConfig, VethBuilder, XdpDesc, XdpMode, XdpProgram};

const N: u64 = 300;
const LENGTHS: [usize; 5] = [60, 61, 128, 1000, 1514];

/// What one run produced.
struct Run {
    trace: String,
    got: Vec<XdpDesc>,
    first_fill: Vec<u64>,
    sk: String,
}

/// App-side lines in the project format (what the recorder writes).
struct AppLog<'a> {
    marker: &'a xskdbg_tracefs::Marker,
    sk: String,
    rx_idx: u64,
}

impl AppLog<'_> {
    fn fill(&self, addrs: &[u64]) {
        for c in addrs.chunks(64) {
            let a: Vec<String> = c.iter().map(|a| format!("{a:x}")).collect();
            let l = format!(
                "xskdbg:1 fill pool=1 sk={} n={:x} a={}",
                self.sk,
                c.len(),
                a.join(",")
            );
            self.marker.write(l.as_bytes()).unwrap();
        }
    }
    fn rx(&mut self, descs: &[XdpDesc]) {
        for c in descs.chunks(64) {
            let d: Vec<String> = c
                .iter()
                .map(|d| format!("{:x}:{:x}", d.addr, d.len))
                .collect();
            let l = format!(
                "xskdbg:1 rx sk={} pool=1 idx={:x} n={:x} d={}",
                self.sk,
                self.rx_idx,
                c.len(),
                d.join(",")
            );
            self.marker.write(l.as_bytes()).unwrap();
            self.rx_idx += c.len() as u64;
        }
    }
}

/// Sends N frames into a fresh socket with the tracepoint backend attached
/// and the app's own lines written alongside. With `double_fill`, the app
/// puts frame 0 on FILL a second time while the kernel still owns it (the
/// user-space fault of the seed story).
fn run(tag: &str, double_fill: bool) -> Option<Run> {
    let tfs = TraceFs::find().expect("tracefs");
    let inst = tfs
        .create_instance(&format!("xskdbg-ptest-{tag}-{}", std::process::id()))
        .expect("instance");
    let buf = inst.buffer();
    buf.set_buffer_size_kb(4096).unwrap();

    let ns_x = NetNs::new(&format!("{tag}x")).unwrap();
    let ns_p = NetNs::new(&format!("{tag}p")).unwrap();
    let veth = VethBuilder::new("pxsk0", "pgen0")
        .queues(1)
        .addrs(Ipv4Addr::new(10, 78, 0, 1), Ipv4Addr::new(10, 78, 0, 2), 24)
        .build(&ns_x, &ns_p)
        .unwrap();
    let xdp = XdpProgram::attach(Some(&ns_x), "pxsk0", XdpMode::Native).unwrap();
    let cfg = UmemConfig::default();
    let mut umem = SharedUmem::new(cfg).unwrap();
    let mut sock = umem.socket(Some(&ns_x), "pxsk0", 0).unwrap();
    xdp.register(0, sock.fd()).unwrap();

    let req = Request {
        backend: Backend::Tracepoint,
        filters: Filters {
            netns_cookie: Some(ns_x.cookie()),
            ifindex: Some(veth.a.ifindex),
            queue: Some(0),
            pid: Some(std::process::id()),
        },
        buffer: buf.clone(),
        group: xskdbg_probes::kprobe_events::GROUP.into(),
    };
    let probes = attach(&req).unwrap_or_else(|e| panic!("attach: {e}"));
    assert_eq!(probes.backend(), Backend::Tracepoint);
    let marker = buf.open_marker().unwrap();
    marker.write(probes.header_line().as_bytes()).unwrap();
    let sk = format!("{:x}:{:x}:0", ns_x.cookie(), veth.a.ifindex);
    let mut app = AppLog {
        marker: &marker,
        sk: sk.clone(),
        rx_idx: 0,
    };
    let decl = [
        format!(
            "xskdbg:1 umem umem=1 size={:x} chunk={:x} mode=aligned",
            u64::from(cfg.frames) * u64::from(cfg.frame_size),
            cfg.frame_size
        ),
        format!("xskdbg:1 pool pool=1 umem=1 sk={sk}"),
        format!("xskdbg:1 sock sk={sk} pool=1 umem=1 label=probes test"),
    ];
    for l in &decl {
        marker.write(l.as_bytes()).unwrap();
    }

    // Frames go on FILL in this order; the kernel must take them in order.
    let mut free: Vec<u64> = umem.frame_addrs().take(1024).collect();
    if double_fill {
        // Frame 0 again, right after its first copy: two FILL entries for
        // one frame.
        free.insert(1, free[0]);
    }
    free.reverse(); // fill_from pops from the end
    let first_fill: Vec<u64> = free.iter().rev().copied().collect();
    sock.fill_from(&mut free);
    app.fill(&first_fill);

    let spec = FrameSpec {
        src_mac: veth.b.mac,
        dst_mac: veth.a.mac,
        src_ip: Ipv4Addr::new(10, 78, 0, 2),
        dst_ip: Ipv4Addr::new(10, 78, 0, 1),
        src_port: 4000,
        dst_port: 9000,
        l4: L4::Udp,
        flow: 0,
    };
    let gen = Generator::new(Some(&ns_p), "pgen0").unwrap();
    let mut got: Vec<XdpDesc> = Vec::new();
    let mut frame = Vec::new();
    let mut sent = 0u64;
    let mut batch = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (got.len() as u64) < N && Instant::now() < deadline {
        // Pace: veth's per-queue ring holds 256 frames.
        while sent < N && sent - (got.len() as u64) < 64 {
            build_frame(
                &spec,
                sent,
                LENGTHS[sent as usize % LENGTHS.len()],
                &mut frame,
            )
            .unwrap();
            if gen.send_frame(&frame).unwrap() {
                sent += 1;
            }
        }
        batch.clear();
        if sock.receive(256, &mut batch) == 0 {
            sock.wait_rx(10).unwrap();
            continue;
        }
        app.rx(&batch);
        got.extend_from_slice(&batch);
    }
    drop(probes);
    let trace = String::from_utf8_lossy(&buf.read_trace().unwrap()).into_owned();
    if let Ok(dir) = std::env::var("XSKDBG_SAVE_TRACE") {
        std::fs::write(format!("{dir}/{tag}.trace"), &trace).unwrap();
    }
    assert_eq!(got.len() as u64, N, "frames received by the socket");
    drop(marker);
    inst.remove().unwrap();
    Some(Run {
        trace,
        got,
        first_fill,
        sk,
    })
}

fn analyze(trace: &str) -> xskdbg_analyzer::Report {
    xskdbg_analyzer::analyze_reader(trace.as_bytes(), &xskdbg_analyzer::Options::default())
        .unwrap_or_else(|e| panic!("analyzer: {e}"))
}

#[test]
fn tracepoint_backend_records_every_receive_with_its_slot() {
    if !require_root("tracepoint_backend_records_every_receive_with_its_slot") {
        return;
    }
    let Some(Run {
        trace,
        got,
        first_fill,
        sk,
    }) = run("tpok", false)
    else {
        return;
    };
    let krx: Vec<_> = trace
        .lines()
        .filter_map(project_line)
        .filter(|(op, _)| op == "krx")
        .map(|(_, kv)| kv)
        .collect();
    assert!(
        trace.contains("xskdbg:1 probe backend=tracepoint"),
        "header line missing from the trace"
    );
    assert_eq!(
        krx.len() as u64,
        N,
        "one krx per frame; trace:\n{}",
        tail(&trace)
    );
    // One queue's receive runs in its NAPI context, so per-CPU order and
    // slot order agree.
    for (i, (kv, d)) in krx.iter().zip(&got).enumerate() {
        assert_eq!(hex(kv, "slot"), i as u64, "slot of frame {i}: {kv:?}");
        assert_eq!(hex(kv, "a"), d.addr, "addr of frame {i}: {kv:?}");
        assert_eq!(hex(kv, "len"), u64::from(d.len), "len of frame {i}: {kv:?}");
        assert_eq!(kv["mode"], "drv");
        assert_eq!(kv["sk"], sk);
        // Frames come from FILL in FILL order (nothing was dropped).
        let chunk = d.addr & !(2048 - 1);
        assert_eq!(chunk, first_fill[i], "frame {i} not taken in FILL order");
        assert_eq!(
            hex(kv, "fcons"),
            i as u64 + 1,
            "FILL consumer after frame {i}"
        );
    }
    // Every poll that received ends with kpoll and an inferred kflush whose
    // producer covers the slots received on that CPU.
    let flushes: Vec<_> = trace
        .lines()
        .filter_map(project_line)
        .filter(|(op, kv)| op == "kflush" && kv.get("at").map(String::as_str) == Some("poll"))
        .map(|(_, kv)| hex(&kv, "prod"))
        .collect();
    assert!(!flushes.is_empty(), "no kflush at=poll lines");
    assert_eq!(*flushes.last().unwrap(), N, "last published producer");
    assert!(
        flushes.windows(2).all(|w| w[0] <= w[1]),
        "producer went backwards"
    );
    assert!(trace.contains("xskdbg:1 kpoll napi="));

    let report = analyze(&trace);
    assert!(
        report.findings.is_empty(),
        "analyzer findings on a clean run: {}",
        report.to_json()
    );
}

/// The application puts one frame on FILL twice: the kernel fills it twice
/// and the analyzer must blame the application.
#[test]
fn analyzer_blames_the_app_for_a_frame_filled_twice() {
    if !require_root("analyzer_blames_the_app_for_a_frame_filled_twice") {
        return;
    }
    let Some(Run {
        trace,
        got,
        first_fill,
        ..
    }) = run("tpdup", true)
    else {
        return;
    };
    assert_eq!(first_fill[0], first_fill[1]);
    assert_eq!(
        got[0].addr & !2047,
        got[1].addr & !2047,
        "the kernel used the frame twice"
    );
    let report = analyze(&trace);
    let f = report
        .findings
        .first()
        .unwrap_or_else(|| panic!("no finding: {}", report.to_json()));
    assert_eq!(
        f.verdict,
        xskdbg_analyzer::Verdict::Application,
        "{}",
        report.to_json()
    );
    assert!(
        matches!(
            f.kind,
            xskdbg_analyzer::Kind::DuplicateInFlight | xskdbg_analyzer::Kind::InvalidTransition
        ),
        "{}",
        report.to_json()
    );
}

fn tail(t: &str) -> String {
    let v: Vec<&str> = t.lines().collect();
    v[v.len().saturating_sub(30)..].join("\n")
}
