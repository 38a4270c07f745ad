//! Root tests of a recording session (the engine of `xskdbg record`): stop on
//! freeze and on command exit, the trace saved, nothing left behind.

mod common;

use std::time::Duration;

use common::{require, Cap};
use xskdbg_probes::session::{record, SessionOpts, Stop};
use xskdbg_probes::{Backend, Filters};

fn opts(tag: &str, cmd: &str) -> SessionOpts {
    SessionOpts {
        backend: Backend::Auto,
        filters: Filters::default(),
        instance: format!("xskdbg-stest-{tag}-{}", std::process::id()),
        buffer_kb: 1024,
        out: std::env::temp_dir().join(format!("xskdbg-stest-{tag}-{}.txt", std::process::id())),
        command: vec!["sh".into(), "-c".into(), cmd.into()],
        duration: Some(Duration::from_secs(60)),
        stacks: false,
        output: Default::default(),
        env: Vec::new(),
    }
}

/// Sessions of this file run one at a time: each restores the top-level
/// bpf_trace_printk enable it found, which a parallel one would change.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn top_printk_enable() -> String {
    std::fs::read_to_string("/sys/kernel/tracing/events/bpf_trace/bpf_trace_printk/enable")
        .unwrap_or_default()
}

/// The command writes a line and freezes tracing: the session stops on the
/// freeze, ends the command, saves a trace holding the probe header and the
/// line, and removes its instance.
#[test]
fn session_stops_on_freeze_and_cleans_up() {
    if !require(
        "session_stops_on_freeze_and_cleans_up",
        &[Cap::Root, Cap::Bpf, Cap::Tracefs],
    ) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = top_printk_enable();
    let o = opts(
        "frz",
        "m=$XSKDBG_TRACEFS/instances/$XSKDBG_INSTANCE; \
         echo 'xskdbg:1 hold n=1 a=1000' > $m/trace_marker; echo 0 > $m/tracing_on; sleep 30",
    );
    let mut msgs = Vec::new();
    let out = record(&o, &mut |m| msgs.push(m.to_string()), &|| false).unwrap();
    assert_eq!(out.stop, Stop::Freeze, "{msgs:?}");
    assert!(
        out.command_status.is_some_and(|s| !s.success()),
        "the command was ended: {:?}",
        out.command_status
    );
    let t = std::fs::read_to_string(&o.out).unwrap();
    assert!(t.contains("xskdbg:1 probe backend="), "{t}");
    assert!(t.contains("xskdbg:1 hold n=1 a=1000"), "{t}");
    assert!(
        !std::path::Path::new(&format!("/sys/kernel/tracing/instances/{}", o.instance)).exists(),
        "instance left behind"
    );
    assert_eq!(
        top_printk_enable(),
        before,
        "top-level bpf_trace_printk enable not restored"
    );
    std::fs::remove_file(&o.out).unwrap();
}

/// The command exits on its own: the session stops with its status. The
/// command had the environment the session was asked to give it.
#[test]
fn session_stops_when_the_command_exits() {
    if !require(
        "session_stops_when_the_command_exits",
        &[Cap::Root, Cap::Bpf, Cap::Tracefs],
    ) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The command also gets the environment asked for (record --post-trigger).
    let mut o = opts(
        "exit",
        "test \"$XSKDBG_POST_TRIGGER\" = 16:5000 && exit 3; exit 4",
    );
    o.env = vec![("XSKDBG_POST_TRIGGER".into(), "16:5000".into())];
    let out = record(&o, &mut |_| {}, &|| false).unwrap();
    assert_eq!(out.stop, Stop::Exit);
    assert_eq!(out.command_status.and_then(|s| s.code()), Some(3));
    assert!(std::fs::read_to_string(&o.out)
        .unwrap()
        .contains("xskdbg:1 probe"));
    assert!(
        !std::path::Path::new(&format!("/sys/kernel/tracing/instances/{}", o.instance)).exists()
    );
    std::fs::remove_file(&o.out).unwrap();
}

/// The freeze with ring output: traffic is received while `record` runs;
/// the command writes a violation line and freezes the buffer. The
/// drainers must complete the freeze: the saved trace holds kernel
/// receives (drained records) stamped before the violation, some of them
/// written after it (they were still in the rings), every drainer's
/// `final=1` line, and nothing of the kernel stamped long after the freeze.
#[test]
fn session_freeze_holds_the_kernel_records_up_to_it() {
    use std::net::Ipv4Addr;
    use xsknet::packet::{build_frame, FrameSpec, L4};
    use xsknet::traffic::Generator;
    use xsknet::{NetNs, SharedUmem, UmemConfig, VethBuilder, XdpDesc, XdpMode, XdpProgram};

    if !require(
        "session_freeze_holds_the_kernel_records_up_to_it",
        &[Cap::Root, Cap::Bpf, Cap::Tracefs, Cap::Netns],
    ) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns_x = NetNs::new("fx").unwrap();
    let ns_p = NetNs::new("fp").unwrap();
    let veth = VethBuilder::new("fxsk0", "fgen0")
        .queues(1)
        .addrs(Ipv4Addr::new(10, 78, 0, 1), Ipv4Addr::new(10, 78, 0, 2), 24)
        .build(&ns_x, &ns_p)
        .unwrap();
    let xdp = XdpProgram::attach(Some(&ns_x), "fxsk0", XdpMode::Native).unwrap();
    let mut umem = SharedUmem::new(UmemConfig::default()).unwrap();
    let mut sock = umem.socket(Some(&ns_x), "fxsk0", 0).unwrap();
    xdp.register(0, sock.fd()).unwrap();
    let mut free: Vec<u64> = umem.frame_addrs().collect();
    sock.fill_from(&mut free);
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
    let gen = Generator::new(Some(&ns_p), "fgen0").unwrap();
    let area = std::sync::Arc::clone(sock.area());
    let mut o = opts(
        "ring",
        "m=$XSKDBG_TRACEFS/instances/$XSKDBG_INSTANCE; sleep 2; \
         echo 'xskdbg:1 violation kind=poisoned_descriptor a=deadbeefdeadbeef frame=deadbeefdeadbeef' > $m/trace_marker; \
         echo 0 > $m/tracing_on; sleep 30",
    );
    o.backend = Backend::Tracepoint;
    o.filters = Filters {
        netns_cookie: Some(ns_x.cookie()),
        ..Filters::default()
    };
    // Two seconds of an unpaced sender, drained in packed entries of up to
    // 3900 bytes: 16 MiB per CPU wrapped and lost the header.
    o.buffer_kb = 65536;
    let done = std::sync::atomic::AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let r = record(&o, &mut |_| {}, &|| false);
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            r
        });
        let mut frame = Vec::new();
        let mut got: Vec<XdpDesc> = Vec::new();
        let (mut sent, mut recv) = (0u64, 0u64);
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            while sent - recv < 32 {
                build_frame(&spec, sent, 64, &mut frame).unwrap();
                if gen.send_frame(&frame).unwrap() {
                    sent += 1;
                }
            }
            got.clear();
            if sock.receive(256, &mut got) == 0 {
                // Dropped somewhere: keep the window moving.
                recv = sent.saturating_sub(16).max(recv);
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            recv += got.len() as u64;
            for d in &got {
                free.push(area.chunk_of(d.addr));
            }
            sock.fill_from(&mut free);
            std::thread::sleep(Duration::from_micros(200));
        }
        h.join().unwrap()
    })
    .unwrap();
    assert_eq!(out.stop, Stop::Freeze);
    let t = std::fs::read_to_string(&o.out).unwrap();
    std::fs::remove_file(&o.out).unwrap();
    assert!(
        t.contains("out=ring"),
        "probe header without out=ring: {:#?}",
        t.lines().take(20).collect::<Vec<_>>()
    );
    let lines: Vec<&str> = t.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("xskdbg:1 violation"))
        .expect("the violation line");
    // The freeze moment: the violation's ftrace stamp (mono clock).
    let stamp_of = |l: &str| -> f64 {
        let head = l.split(": ").next().unwrap_or("");
        head.split_whitespace().last().unwrap().parse().unwrap()
    };
    let own_t = |l: &str| -> f64 {
        let t = l.split(" t=").nth(1).unwrap();
        t.split(' ').next().unwrap().parse().unwrap()
    };
    let freeze = stamp_of(lines[at]);
    let krx: Vec<(usize, f64)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("xskdbg:1 krx cpu="))
        .map(|(i, l)| (i, own_t(l)))
        .collect();
    assert!(krx.len() > 100, "{} drained receives", krx.len());
    assert!(
        krx.iter().all(|&(_, t)| t < freeze + 0.05),
        "a receive long after the freeze"
    );
    assert!(
        krx.iter().any(|&(i, t)| i > at && t < freeze),
        "no receive from before the freeze was written after it (the drainers completed nothing)"
    );
    let of: usize = lines
        .iter()
        .find_map(|l| l.split(" of=").nth(1))
        .and_then(|v| v.split(' ').next())
        .map(|v| usize::from_str_radix(v, 16).unwrap())
        .unwrap();
    let finals = lines
        .iter()
        .filter(|l| l.contains("kdrain") && l.contains("final=1"))
        .count();
    assert_eq!(finals, of, "one final kdrain per drainer");
    // The analyzer reads it: the violation is the application's finding,
    // nothing out of order.
    let r = xskdbg_analyzer::analyze_reader(t.as_bytes(), &Default::default()).unwrap();
    assert!(
        !r.summary.notes.iter().any(|n| n.contains("out of order")),
        "{:?}",
        r.summary.notes
    );
    drop(xdp);
}
