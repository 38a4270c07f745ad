//! With root: a real ftrace instance. The recorder writes through its
//! trace_marker, freezes it on the seed story's FIFO violation, and the trace
//! read back parses with the analyzer to the same violation; the
//! post-trigger window keeps the buffer running for its lines or its time
//! after the violation, then freezes it. Outside CI the
//! test skips with a reason when it cannot run; in CI it fails
//! (`xskdbg-testenv`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xskdbg_analyzer::{analyze_reader, Options};
use xskdbg_recorder::tracefs::TraceFs;
use xskdbg_recorder::{
    Policy, PostTrigger, Recorder, RecorderConfig, SinkConfig, UmemConfig, Violation,
};

#[test]
fn real_instance_freezes_on_the_seed_violation_and_the_analyzer_agrees() {
    if !xskdbg_testenv::require(
        "real_instance_freezes_on_the_seed_violation_and_the_analyzer_agrees",
        &[xskdbg_testenv::Cap::Root, xskdbg_testenv::Cap::Tracefs],
    ) {
        return;
    }
    let fs = TraceFs::find().unwrap();
    let name = format!("xskdbg-recorder-test-{}", std::process::id());
    let inst = fs.create_instance(&name).unwrap();
    let seen: Arc<Mutex<Vec<Violation>>> = Arc::default();
    {
        let s2 = seen.clone();
        let rec = Recorder::new(
            RecorderConfig::new(SinkConfig::Buffer(inst.buffer()))
                .post_trigger(xskdbg_recorder::PostTrigger::NONE)
                .policy(Policy::Callback(Arc::new(move |v| {
                    s2.lock().unwrap().push(v.clone())
                }))),
        )
        .unwrap();
        super::seed::replay_seed_fifo_on(&rec);
        assert_eq!(rec.violations(), 1);
        assert_eq!(rec.sink_errors(), 0, "{:?}", rec.last_sink_error());
        assert!(
            !inst.tracing_on().unwrap(),
            "the recorder did not freeze the buffer"
        );
        // Frozen: later activity is not recorded.
        rec.umem(xskdbg_recorder::UmemConfig::aligned(8, 2048))
            .unwrap()
            .hold(&[0x800]);
    }
    let trace = inst.read_trace().unwrap();
    let text: String = String::from_utf8_lossy(&trace)
        .lines()
        .map(|l| super::common::without_seq(l) + "\n")
        .collect();
    let v = seen.lock().unwrap()[0].clone();
    assert!(
        text.contains(&format!("tracing_mark_write: {}", v.line)),
        "{text}"
    );
    assert!(
        !text.contains("umem=2"),
        "written after the freeze:\n{text}"
    );
    let report = analyze_reader(&trace[..], &Options::default()).unwrap();
    assert_eq!(report.summary.lines_skipped, 0, "{text}");
    assert!(
        report.findings.iter().any(|f| f.kind.name() == "fifo_order"
            && f.frame.as_deref().map(|s| s.trim_start_matches("0x")) == Some("1229000")),
        "{:#?}\n{text}",
        report.findings
    );
    inst.remove().unwrap();
    assert!(!fs.root().join("instances").join(&name).exists());
}

/// A recorder on a fresh real instance with this window; its violations
/// are only logged. The instance is removed by the caller.
fn windowed(
    fs: &TraceFs,
    tag: &str,
    window: PostTrigger,
) -> (xskdbg_recorder::tracefs::Instance, Recorder) {
    let name = format!("xskdbg-recorder-test-{tag}-{}", std::process::id());
    let inst = fs.create_instance(&name).unwrap();
    let rec = Recorder::new(
        RecorderConfig::new(SinkConfig::Buffer(inst.buffer()))
            .post_trigger(window)
            .policy(Policy::Log),
    )
    .unwrap();
    (inst, rec)
}

/// The project lines of the instance's trace, `seq=` off.
fn marker_lines(inst: &xskdbg_recorder::tracefs::Instance) -> Vec<String> {
    String::from_utf8_lossy(&inst.read_trace().unwrap())
        .lines()
        .filter_map(|l| l.split_once("tracing_mark_write: "))
        .map(|(_, b)| super::common::without_seq(b))
        .collect()
}

#[test]
fn real_instance_records_the_post_trigger_window_then_freezes() {
    if !xskdbg_testenv::require(
        "real_instance_records_the_post_trigger_window_then_freezes",
        &[xskdbg_testenv::Cap::Root, xskdbg_testenv::Cap::Tracefs],
    ) {
        return;
    }
    let fs = TraceFs::find().unwrap();
    // 4 lines; the timer alone would take a minute, so the count ends it.
    let w = PostTrigger {
        batches: 4,
        micros: 60_000_000,
    };
    let (inst, rec) = windowed(&fs, "window", w);
    let u = rec.umem(UmemConfig::aligned(64, 2048)).unwrap();
    // The ambiguous first sign: a frame taken twice from the free list.
    u.hold(&[0]);
    u.hold(&[0]);
    assert_eq!(rec.violations(), 1);
    assert!(
        inst.tracing_on().unwrap(),
        "frozen at the violation despite the window"
    );
    // The window: the decisive second sign (2 lines: the hold and its
    // violation), then 2 more.
    u.hold(&[0]);
    u.hold(&[0x800]);
    assert_eq!(rec.violations(), 2);
    assert!(
        inst.tracing_on().unwrap(),
        "frozen before the window's last line"
    );
    u.hold(&[0x1000]);
    assert!(
        !inst.tracing_on().unwrap(),
        "the window's last line did not freeze the buffer"
    );
    assert!(rec.is_frozen());
    // After the freeze: not in the trace, and no sink error for it.
    u.hold(&[0x1800]);
    u.hold(&[0x2000]);
    assert_eq!(rec.sink_errors(), 0, "{:?}", rec.last_sink_error());
    let lines = marker_lines(&inst);
    let first = lines
        .iter()
        .position(|l| l.starts_with("xskdbg:1 violation "))
        .unwrap_or_else(|| panic!("no violation line:\n{lines:#?}"));
    assert_eq!(
        lines[first],
        "xskdbg:1 violation kind=duplicate_in_flight window=4:3938700 a=0 frame=0 from=held to=held"
    );
    assert_eq!(
        &lines[first + 1..],
        [
            "xskdbg:1 hold umem=1 n=1 a=0",
            "xskdbg:1 violation kind=duplicate_in_flight window=4:3938700 a=0 frame=0 from=held to=held",
            "xskdbg:1 hold umem=1 n=1 a=800",
            "xskdbg:1 hold umem=1 n=1 a=1000",
        ],
        "the window's lines, and nothing after them"
    );
    // The analyzer reads the window= field and judges the window too.
    let report = analyze_reader(&inst.read_trace().unwrap()[..], &Options::default()).unwrap();
    assert_eq!(report.summary.lines_skipped, 0, "{lines:#?}");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind.name() == "duplicate_in_flight"),
        "{:#?}",
        report.findings
    );
    drop((u, rec));
    inst.remove().unwrap();
}

#[test]
fn real_instance_with_a_zero_window_freezes_at_the_violation() {
    if !xskdbg_testenv::require(
        "real_instance_with_a_zero_window_freezes_at_the_violation",
        &[xskdbg_testenv::Cap::Root, xskdbg_testenv::Cap::Tracefs],
    ) {
        return;
    }
    let fs = TraceFs::find().unwrap();
    let (inst, rec) = windowed(&fs, "nowindow", PostTrigger::NONE);
    let u = rec.umem(UmemConfig::aligned(64, 2048)).unwrap();
    u.hold(&[0]);
    u.hold(&[0]);
    assert!(
        !inst.tracing_on().unwrap(),
        "a zero window did not freeze at the violation"
    );
    u.hold(&[0x800]);
    let lines = marker_lines(&inst);
    assert_eq!(
        lines.last().unwrap(),
        "xskdbg:1 violation kind=duplicate_in_flight a=0 frame=0 from=held to=held",
        "no window= without a window, nothing after the violation"
    );
    drop((u, rec));
    inst.remove().unwrap();
}

#[test]
fn real_instance_freezes_when_the_window_time_is_up() {
    if !xskdbg_testenv::require(
        "real_instance_freezes_when_the_window_time_is_up",
        &[xskdbg_testenv::Cap::Root, xskdbg_testenv::Cap::Tracefs],
    ) {
        return;
    }
    let fs = TraceFs::find().unwrap();
    // More lines than the test writes: the 20 ms end the window.
    let w = PostTrigger {
        batches: 1000,
        micros: 20_000,
    };
    let (inst, rec) = windowed(&fs, "window-time", w);
    let u = rec.umem(UmemConfig::aligned(64, 2048)).unwrap();
    u.hold(&[0]);
    u.hold(&[0]);
    u.hold(&[0x800]);
    let until = Instant::now() + Duration::from_secs(10);
    while inst.tracing_on().unwrap() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !inst.tracing_on().unwrap(),
        "the window's timer never froze the buffer"
    );
    u.hold(&[0x1000]);
    let lines = marker_lines(&inst);
    assert!(
        lines.iter().any(|l| l == "xskdbg:1 hold umem=1 n=1 a=800"),
        "a line inside the window is missing:\n{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("a=1000")),
        "written after the freeze:\n{lines:#?}"
    );
    drop((u, rec));
    inst.remove().unwrap();
}
