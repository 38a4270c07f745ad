//! Helpers shared by the probes' root tests: the AF_XDP scenario every
//! backend is tested with, and trace line parsing.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use xskdbg_format::lex::{next_token, Fields};
use xskdbg_format::{key, op, word, LineWriter, SockKey, PREFIX};
use xskdbg_probes::{attach, Backend, Filters, Request};
use xskdbg_tracefs::TraceFs;
use xsknet::packet::{build_frame, FrameSpec, L4};
use xsknet::traffic::Generator;
use xsknet::{NetNs, SharedUmem, UmemConfig, VethBuilder, XdpDesc, XdpMode, XdpProgram};

/// Frames received per run.
pub const N: u64 = 300;
/// Frames sent back out (copy-mode TX) after receiving.
pub const T: usize = 16;
const LENGTHS: [usize; 5] = [60, 61, 128, 1000, 1514];

/// What one run produced.
pub struct Run {
    pub trace: String,
    pub got: Vec<XdpDesc>,
    pub first_fill: Vec<u64>,
    pub sk: String,
    pub sent_tx: Vec<XdpDesc>,
    pub completed: Vec<u64>,
    pub notes: Vec<String>,
}

/// App-side lines in the project format (what the recorder writes),
/// spelled by the format's one writer.
struct AppLog<'a> {
    marker: &'a xskdbg_tracefs::Marker,
    sk: SockKey,
    rx_idx: u64,
}

impl AppLog<'_> {
    fn write(&self, line: &[u8]) {
        self.marker.write(line).unwrap();
    }
    fn fill(&self, addrs: &[u64]) {
        for c in addrs.chunks(64) {
            let mut l = Vec::new();
            l.start(op::FILL);
            l.field_hex(key::POOL, 1);
            l.field_sk(&self.sk);
            l.field_hex(key::N, c.len() as u64);
            l.field_addrs(key::A, c.iter().copied());
            self.write(&l);
        }
    }
    fn tx(&self, idx: u64, descs: &[XdpDesc]) {
        let mut l = Vec::new();
        l.start(op::TX);
        l.field_sk(&self.sk);
        l.field_hex(key::IDX, idx);
        l.field_hex(key::N, descs.len() as u64);
        l.field_descs(key::D, descs.iter().map(|d| (d.addr, u64::from(d.len), 0)));
        self.write(&l);
    }
    fn comp(&self, addrs: &[u64]) {
        let mut l = Vec::new();
        l.start(op::COMP);
        l.field_hex(key::POOL, 1);
        l.field_sk(&self.sk);
        l.field_hex(key::N, addrs.len() as u64);
        l.field_addrs(key::A, addrs.iter().copied());
        self.write(&l);
    }
    fn rx(&mut self, descs: &[XdpDesc]) {
        for c in descs.chunks(64) {
            let mut l = Vec::new();
            l.start(op::RX);
            l.field_sk(&self.sk);
            l.field_hex(key::POOL, 1);
            l.field_hex(key::IDX, self.rx_idx);
            l.field_hex(key::N, c.len() as u64);
            l.field_descs(key::D, c.iter().map(|d| (d.addr, u64::from(d.len), 0)));
            self.write(&l);
            self.rx_idx += c.len() as u64;
        }
    }
    /// The declarations the recorder writes first.
    fn declare(&self, cfg: &UmemConfig) {
        let mut l = Vec::new();
        l.start(op::UMEM);
        l.field_hex(key::UMEM, 1);
        l.field_hex(key::SIZE, u64::from(cfg.frames) * u64::from(cfg.frame_size));
        l.field_hex(key::CHUNK, u64::from(cfg.frame_size));
        l.field(key::MODE, word::ALIGNED);
        self.write(&l);
        l.clear();
        l.start(op::POOL);
        l.field_hex(key::POOL, 1);
        l.field_hex(key::UMEM, 1);
        l.field_sk(&self.sk);
        self.write(&l);
        l.clear();
        l.start(op::SOCK);
        l.field_sk(&self.sk);
        l.field_hex(key::POOL, 1);
        l.field_hex(key::UMEM, 1);
        l.label("probes test");
        self.write(&l);
    }
}

/// Sends N frames into a fresh socket with the tracepoint backend attached
/// and the app's own lines written alongside. With `double_fill`, the app
/// puts frame 0 on FILL a second time while the kernel still owns it (the
/// user-space fault of the seed story).
/// bpf_trace_printk output is system-wide: every instance that enables the
/// event receives the lines of every program. Runs of one test binary take
/// turns so each trace holds only its own run's kernel lines.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the scenario (see the test files) with `backend` attached.
pub fn run(tag: &str, backend: Backend, double_fill: bool) -> Option<Run> {
    run_with(tag, backend, double_fill, false)
}

/// [`run`] with kernel stacks recorded when `stacks` is set; the
/// `kstackdef` lines are written into the buffer before it is read.
pub fn run_with(tag: &str, backend: Backend, double_fill: bool, stacks: bool) -> Option<Run> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
        backend,
        filters: Filters {
            netns_cookie: Some(ns_x.cookie()),
            ifindex: Some(veth.a.ifindex),
            queue: Some(0),
            pid: Some(std::process::id()),
        },
        buffer: buf.clone(),
        group: xskdbg_probes::kprobe_events::GROUP.into(),
        stacks,
        output: Default::default(),
    };
    let mut probes = attach(&req).unwrap_or_else(|e| panic!("attach: {e}"));
    assert_eq!(probes.backend(), backend);
    let notes = probes.notes().to_vec();
    let marker = buf.open_marker().unwrap();
    marker.write(probes.header_line().as_bytes()).unwrap();
    let key = SockKey::new(ns_x.cookie(), veth.a.ifindex, 0);
    let sk = key.to_string();
    let mut app = AppLog {
        marker: &marker,
        sk: key,
        rx_idx: 0,
    };
    app.declare(&cfg);

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
    let deadline = Instant::now() + Duration::from_secs(120);
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
    // Copy-mode TX of the first T received frames (RX -> TX is legal), then
    // their completions.
    let sent_tx: Vec<XdpDesc> = got.iter().take(T).copied().collect();
    let mut tx_idx = 0u64;
    let mut completed = Vec::new();
    let mut pending = sent_tx.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    while completed.len() < T && Instant::now() < deadline {
        if !pending.is_empty() {
            // The app logs a TX batch before handing it over: in copy mode
            // the kernel transmits and completes inside the wake-up call.
            app.tx(tx_idx, &pending);
            let n = sock.transmit(&pending) as usize;
            assert_eq!(n, pending.len(), "TX ring took the whole batch");
            tx_idx += n as u64;
            pending.clear();
        }
        let before = completed.len();
        sock.complete(64, &mut completed);
        if completed.len() > before {
            app.comp(&completed[before..]);
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Freeze and read before detaching: removing kprobe events (tracefs
    // backend) resets every ring buffer.
    // Ring output: what the drainers still hold goes in before the freeze.
    probes.finish_drain();
    for l in probes.stack_lines() {
        marker.write(l.as_bytes()).unwrap();
    }
    buf.set_tracing_on(false).unwrap();
    let trace = String::from_utf8_lossy(&buf.read_trace().unwrap()).into_owned();
    drop(probes);
    if let Ok(dir) = std::env::var("XSKDBG_SAVE_TRACE") {
        std::fs::write(format!("{dir}/{tag}.trace"), &trace).unwrap();
    }
    assert_eq!(got.len() as u64, N, "frames received by the socket");
    drop(marker);
    inst.remove().unwrap();
    assert_eq!(completed.len(), T, "TX completions");
    Some(Run {
        trace,
        got,
        first_fill,
        sk,
        sent_tx,
        completed,
        notes,
    })
}

/// Runs the analyzer on a trace.
pub fn analyze(trace: &str) -> xskdbg_analyzer::Report {
    xskdbg_analyzer::analyze_reader(trace.as_bytes(), &xskdbg_analyzer::Options::default())
        .unwrap_or_else(|e| panic!("analyzer: {e}"))
}

/// The `key=value` fields of the xskdbg line inside a trace line, with its
/// op, when the line holds `xskdbg:1 <op>` (read by the format's field
/// rules; the analyzer decodes only the fields it judges by, these tests
/// check the others too).
pub fn project_line(line: &str) -> Option<(String, HashMap<String, String>)> {
    let at = line.find(std::str::from_utf8(PREFIX).ok()?)?;
    let (op, rest) = next_token(&line.as_bytes()[at + PREFIX.len()..])?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let kv = Fields::new(rest).map(|(k, v)| (text(k), text(v))).collect();
    Some((text(op), kv))
}

/// Parses a lower-case hex field without 0x.
pub fn hex(kv: &HashMap<String, String>, k: &str) -> u64 {
    let v = kv
        .get(k)
        .unwrap_or_else(|| panic!("field {k} missing in {kv:?}"));
    u64::from_str_radix(v, 16).unwrap_or_else(|e| panic!("field {k}={v}: {e}"))
}

/// CPU of a trace line (`[001]`).
pub fn cpu_of(line: &str) -> Option<u32> {
    let s = line.find('[')?;
    let e = line[s..].find(']')? + s;
    line[s + 1..e].trim().parse().ok()
}

pub use xskdbg_testenv::Cap;

/// What [`run`]'s scenario needs: root, BPF, tracefs, namespaces with veth.
pub const SCENARIO: &[Cap] = &[Cap::Root, Cap::Bpf, Cap::Tracefs, Cap::Netns];

/// Whether a test needing `caps` may run here (skips with a reason; fails in CI).
pub fn require(test: &str, caps: &[Cap]) -> bool {
    xskdbg_testenv::require(test, caps)
}

/// The `xskdbg:1 <op>` lines of a trace with `op`, in trace order.
pub fn ops<'a>(trace: &'a str, op: &'a str) -> impl Iterator<Item = HashMap<String, String>> + 'a {
    trace
        .lines()
        .filter_map(project_line)
        .filter(move |(o, _)| o == op)
        .map(|(_, kv)| kv)
}

/// The fields of the perf-probe style events named `event` (`name=0x..`).
pub fn kprobe_events(trace: &str, event: &str) -> Vec<HashMap<String, u64>> {
    let pat = format!(" {event}: (");
    trace
        .lines()
        .filter(|l| l.contains(&pat))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|t| t.split_once('='))
                .filter_map(|(k, v)| {
                    let v = v
                        .strip_prefix("0x")
                        .map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok())?;
                    Some((k.to_string(), v))
                })
                .collect()
        })
        .collect()
}

/// Receive side of a BPF backend: one `krx` per frame with the slot, addr
/// and len the socket read, in order, frames taken in FILL order; the last
/// published producer is N.
pub fn check_rx(r: &Run, backend: Backend) {
    let krx: Vec<_> = ops(&r.trace, "krx").collect();
    assert!(
        r.trace
            .contains(&format!("xskdbg:1 probe backend={}", backend.name())),
        "header line missing"
    );
    assert_eq!(krx.len() as u64, N, "one krx per frame");
    for (i, (kv, d)) in krx.iter().zip(&r.got).enumerate() {
        assert_eq!(hex(kv, "slot"), i as u64, "slot of frame {i}: {kv:?}");
        assert_eq!(hex(kv, "a"), d.addr, "addr of frame {i}: {kv:?}");
        assert_eq!(hex(kv, "len"), u64::from(d.len), "len of frame {i}: {kv:?}");
        assert_eq!(kv["sk"], r.sk);
        let chunk = d.addr & !(2048 - 1);
        assert_eq!(chunk, r.first_fill[i], "frame {i} not taken in FILL order");
        assert_eq!(
            hex(kv, "fcons"),
            i as u64 + 1,
            "FILL consumer after frame {i}"
        );
        if backend == Backend::Tracepoint {
            assert_eq!(kv["mode"], "drv");
        }
    }
    let at = if backend == Backend::Tracepoint {
        "poll"
    } else {
        "flush"
    };
    let flushes: Vec<u64> = ops(&r.trace, "kflush")
        .filter(|kv| kv.get("at").map(String::as_str) == Some(at))
        .map(|kv| hex(&kv, "prod"))
        .collect();
    assert!(!flushes.is_empty(), "no kflush at={at} lines");
    assert_eq!(*flushes.last().unwrap(), N, "last published producer");
    assert!(
        flushes.windows(2).all(|w| w[0] <= w[1]),
        "producer went backwards"
    );
    if backend != Backend::Tracepoint {
        let done: Vec<u64> = ops(&r.trace, "krxdone")
            .map(|kv| hex(&kv, "slot"))
            .collect();
        assert_eq!(done, (0..N).collect::<Vec<_>>(), "krxdone slots");
    }
}

/// Transmit side of the fentry/kprobe backends (copy mode): `ktx at=raw`
/// for every frame sent, in order; one `kcomp` per completed frame.
pub fn check_tx(r: &Run) {
    let tx: Vec<u64> = ops(&r.trace, "ktx")
        .filter(|kv| kv.get("at").map(String::as_str) == Some("raw"))
        .map(|kv| hex(&kv, "a"))
        .collect();
    let want: Vec<u64> = r.sent_tx.iter().map(|d| d.addr).collect();
    assert_eq!(tx, want, "ktx addresses");
    let comps: u64 = ops(&r.trace, "kcomp").map(|kv| hex(&kv, "n")).sum();
    assert_eq!(comps, T as u64, "kcomp count");
}

/// Every `kstack at=<at>` line has a `kstackdef` with its id, and one of
/// them holds all of `want` among its frames.
pub fn check_stacks(trace: &str, at: &str, want: &[&str]) {
    let defs: HashMap<String, String> = ops(trace, "kstackdef")
        .map(|kv| (kv["id"].clone(), kv.get("f").cloned().unwrap_or_default()))
        .collect();
    let refs: Vec<String> = ops(trace, "kstack")
        .filter(|kv| kv.get("at").map(String::as_str) == Some(at))
        .map(|kv| kv["id"].clone())
        .collect();
    assert!(!refs.is_empty(), "no kstack at={at} lines");
    for id in &refs {
        assert!(defs.contains_key(id), "kstack id {id} has no kstackdef");
    }
    assert!(
        refs.iter()
            .any(|id| want.iter().all(|w| defs[id].contains(w))),
        "no {at} stack with {want:?}: {:?}",
        refs.iter().map(|id| &defs[id]).take(3).collect::<Vec<_>>()
    );
}
