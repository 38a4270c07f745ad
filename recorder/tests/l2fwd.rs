//! `examples/c/l2fwd`, the libxdp forwarder recorded through the C API's
//! ring-aware calls: built with `-Werror` against `include/xskdbg.h` and the
//! static library, run on a veth pair in fresh network namespaces in SKB and
//! native mode, its ftrace instance read back and judged by the analyzer.
//! Clean: no finding. FILL+TX, double recycle, leak: `application` on the
//! planted frame. The two instrumentation mistakes of issue 14 (setup not
//! recorded, RX recorded through a pointer into the ring): `instrumentation`,
//! never `kernel`. The same for `examples/l2fwd.rs`, the Rust twin on
//! xdpilone through the checked wrappers (clean and the three bugs). Needs root, BPF, namespaces, tracefs and libxdp-dev
//! (`scripts/setup.sh test`); skips outside CI otherwise, fails in CI.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use xskdbg_analyzer::report::OverallVerdict;
use xskdbg_analyzer::{analyze_reader, Options, Report, Verdict};
use xskdbg_recorder::tracefs::TraceFs;
use xskdbg_testenv::Cap;
use xsknet::packet::{build_frame, FrameSpec, L4};
use xsknet::traffic::Generator;
use xsknet::{NetNs, VethBuilder};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The crate's staticlib built with this test binary (see tests/capi.rs).
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    std::fs::read_dir(deps)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|f| f.to_str()).is_some_and(|f| {
                // With a cdylib among the crate types cargo drops the
                // hash from the staticlib's name; older builds left
                // hashed ones.
                f == "libxskdbg_recorder.a"
                    || (f.starts_with("libxskdbg_recorder-") && f.ends_with(".a"))
            })
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no libxskdbg_recorder[-*].a in {}", deps.display()))
}

/// `make` in examples/c/l2fwd, as its README says, into the test's tmp dir.
fn build_l2fwd() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("l2fwd");
    let dir = manifest_dir().join("../examples/c/l2fwd");
    let make = Command::new("make")
        .arg("-B")
        .arg("-C")
        .arg(&dir)
        .arg(format!("OUT={}", out.display()))
        .arg(format!(
            "XSKDBG_CFLAGS=-I{}",
            manifest_dir().join("include").display()
        ))
        .arg(format!(
            "XSKDBG_LIBS={} -lpthread -ldl -lm",
            static_lib().display()
        ))
        .output()
        .expect("make must be installed (scripts/setup.sh)");
    assert!(
        make.status.success(),
        "building examples/c/l2fwd failed (libxdp-dev and libbpf-dev: scripts/setup.sh test):\n{}{}",
        String::from_utf8_lossy(&make.stdout),
        String::from_utf8_lossy(&make.stderr)
    );
    out
}

/// What one run gave: the report and the program's stderr.
struct Run {
    report: Report,
    stderr: String,
    trace: String,
}

/// Runs l2fwd on one end of a fresh veth pair (its own namespace) for
/// `secs`, with frames sent into the other end, recording into a fresh
/// ftrace instance; then analyzes the instance's trace.
fn run(bin: &PathBuf, mode: &str, bug: Option<&str>, secs: u32) -> Run {
    // One run at a time (the two tests share the machine's two CPUs), each
    // with names of its own.
    static ONE: Mutex<u32> = Mutex::new(0);
    let mut n = ONE.lock().unwrap_or_else(|e| e.into_inner());
    *n += 1;
    let tag = format!("{}{}", std::process::id() % 10_000, *n);
    let ns_x = NetNs::new("l2x").unwrap();
    let ns_p = NetNs::new("l2p").unwrap();
    let (a, b) = (format!("l2a{tag}"), format!("l2b{tag}"));
    let _veth = VethBuilder::new(&a, &b)
        .queues(1)
        .addrs(Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 2), 24)
        .build(&ns_x, &ns_p)
        .unwrap();
    let fs = TraceFs::find().unwrap();
    let inst_name = format!("xskdbg-l2fwd-{tag}");
    let inst = fs.create_instance(&inst_name).unwrap();
    // Room for the whole run: the declarations (`rxpoison` among them)
    // are its first lines, and a wrapped buffer loses them.
    inst.buffer().set_buffer_size_kb(16384).unwrap();

    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns_x.name()]).arg(bin).args([
        "-i",
        &a,
        "-m",
        mode,
        "-d",
        &secs.to_string(),
    ]);
    if let Some(bug) = bug {
        cmd.args(["-b", bug]);
    }
    let mut child = cmd
        .env("XSKDBG_INSTANCE", &inst_name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip (iproute2) must be installed");
    // Send once the program says it forwards, until it exits.
    let (ready_tx, ready_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("l2fwd: forwarding") {
                let _ = ready_tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let done = Arc::clone(&done);
        let g = Generator::new(Some(&ns_p), &b).unwrap();
        let ready = ready_rx.recv_timeout(Duration::from_secs(20)).is_ok();
        std::thread::spawn(move || {
            if !ready {
                return 0u64;
            }
            let spec = FrameSpec {
                src_mac: [2, 0, 0, 0, 0, 2],
                dst_mac: [0xff; 6],
                src_ip: Ipv4Addr::new(10, 77, 0, 2),
                dst_ip: Ipv4Addr::new(10, 77, 0, 1),
                src_port: 9000,
                dst_port: 9001,
                l4: L4::Udp,
                flow: 1,
            };
            let mut buf = Vec::new();
            let mut sent = 0u64;
            while !done.load(Ordering::Relaxed) {
                build_frame(&spec, sent, 64, &mut buf).unwrap();
                if g.send_frame(&buf).unwrap_or(false) {
                    sent += 1;
                }
                // About 2,000 frames a second: veth's 256-entry queue is
                // never full, and batches still group several frames.
                std::thread::sleep(Duration::from_micros(500));
            }
            sent
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    let stderr = reader.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "l2fwd -m {mode} {bug:?} failed:\n{stdout}{stderr}"
    );
    assert!(sent > 500, "only {sent} frames sent\n{stdout}{stderr}");
    assert!(
        !stdout.contains(" 0 frames received"),
        "nothing received:\n{stdout}{stderr}"
    );
    let trace = inst.read_trace().unwrap();
    let report = analyze_reader(&trace[..], &Options::default()).unwrap();
    Run {
        report,
        stderr: stdout + &stderr,
        trace: String::from_utf8_lossy(&trace).into_owned(),
    }
}

fn describe(r: &Run) -> String {
    let findings: Vec<String> = r
        .report
        .findings
        .iter()
        .map(|f| format!("{} ({}) frame {:?}", f.rule, f.verdict.name(), f.frame))
        .collect();
    let lines = r.trace.lines().count();
    format!(
        "verdict {:?}, findings {findings:?}\n{}trace: {lines} lines",
        r.report.summary.verdict, r.stderr
    )
}

/// The frame l2fwd says it planted its bug on (`planted BUG on frame 0x..`),
/// as the analyzer names frames (chunk base).
fn planted(r: &Run, chunk: u64) -> String {
    let at = r
        .stderr
        .lines()
        .find_map(|l| l.split_once(" on frame 0x").map(|(_, f)| f.to_string()))
        .unwrap_or_else(|| panic!("no planted frame:\n{}", describe(r)));
    let v = u64::from_str_radix(at.trim(), 16).unwrap();
    format!("{:#x}", v & !(chunk - 1))
}

fn no_kernel(r: &Run) {
    for f in &r.report.findings {
        assert_ne!(f.verdict, Verdict::Kernel, "{}", describe(r));
    }
}

#[test]
fn l2fwd_on_veth_clean_bugs_and_instrumentation_mistakes() {
    if !xskdbg_testenv::require(
        "l2fwd_on_veth_clean_bugs_and_instrumentation_mistakes",
        &[Cap::Root, Cap::Bpf, Cap::Netns, Cap::Tracefs],
    ) {
        return;
    }
    let bin = build_l2fwd();
    for mode in ["skb", "native"] {
        let r = run(&bin, mode, None, 2);
        assert_eq!(
            r.report.summary.verdict,
            OverallVerdict::Clean,
            "{mode}: {}",
            describe(&r)
        );
        // With or without seq= after the operation word.
        assert!(r.trace.contains("xskdbg:1 rxpoison"), "{}", describe(&r));

        for (bug, kind) in [
            ("fill-tx", "invalid_transition"),
            ("double-recycle", "duplicate_in_flight"),
            // Today's leak rule: frame_leak/app-held (the app records its
            // free list, so a frame it never returns is told apart).
            ("leak", "frame_leak"),
        ] {
            let r = run(&bin, mode, Some(bug), 3);
            let frame = planted(&r, 4096);
            assert_eq!(
                r.report.summary.verdict,
                OverallVerdict::Application,
                "{mode} {bug}: {}",
                describe(&r)
            );
            assert!(
                r.report.findings.iter().any(|f| f.kind.name() == kind
                    && f.verdict == Verdict::Application
                    && f.frame.as_deref() == Some(frame.as_str())),
                "{mode} {bug}: no {kind} finding on {frame}: {}",
                describe(&r)
            );
        }

        // Issue 14's mistakes: the program is right, its recording is not.
        let r = run(&bin, mode, Some("no-initial-record"), 2);
        assert_eq!(
            r.report.summary.verdict,
            OverallVerdict::Instrumentation,
            "{mode}: {}",
            describe(&r)
        );
        assert_eq!(
            r.report.findings[0].rule,
            "instrumentation/first-seen-in-rx",
            "{}",
            describe(&r)
        );
        no_kernel(&r);

        let r = run(&bin, mode, Some("wrap-read"), 3);
        assert_eq!(
            r.report.summary.verdict,
            OverallVerdict::Instrumentation,
            "{mode}: {}",
            describe(&r)
        );
        assert!(
            r.report
                .findings
                .iter()
                .any(|f| f.rule == "instrumentation/outside-ring"),
            "{}",
            describe(&r)
        );
        no_kernel(&r);
    }
}

/// `examples/l2fwd.rs`, built by `cargo test` next to this test binary
/// (`target/<profile>/examples/l2fwd`).
fn rust_l2fwd() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/l2fwd");
    assert!(
        bin.exists(),
        "{} missing: cargo test -p xskdbg-recorder builds the example (feature xdpilone)",
        bin.display()
    );
    bin
}

#[test]
fn rust_l2fwd_on_xdpilone_on_veth_clean_and_bugs() {
    if !xskdbg_testenv::require(
        "rust_l2fwd_on_xdpilone_on_veth_clean_and_bugs",
        &[Cap::Root, Cap::Bpf, Cap::Netns, Cap::Tracefs],
    ) {
        return;
    }
    let bin = rust_l2fwd();
    for mode in ["skb", "native"] {
        let r = run(&bin, mode, None, 2);
        assert_eq!(
            r.report.summary.verdict,
            OverallVerdict::Clean,
            "{mode}: {}",
            describe(&r)
        );
        // With or without seq= after the operation word.
        assert!(r.trace.contains("xskdbg:1 rxpoison"), "{}", describe(&r));
        for (bug, kind) in [
            ("fill-tx", "invalid_transition"),
            ("double-recycle", "duplicate_in_flight"),
            ("leak", "frame_leak"),
        ] {
            let r = run(&bin, mode, Some(bug), 3);
            let frame = planted(&r, 2048);
            assert_eq!(
                r.report.summary.verdict,
                OverallVerdict::Application,
                "{mode} {bug}: {}",
                describe(&r)
            );
            assert!(
                r.report.findings.iter().any(|f| f.kind.name() == kind
                    && f.verdict == Verdict::Application
                    && f.frame.as_deref() == Some(frame.as_str())),
                "{mode} {bug}: no {kind} finding on {frame}: {}",
                describe(&r)
            );
        }
    }
}
