//! With root: a real ftrace instance. The recorder writes through its
//! trace_marker, freezes it on the seed story's FIFO violation, and the trace
//! read back parses with the analyzer to the same violation. Outside CI the
//! test skips with a reason when it cannot run; in CI it fails
//! (`xskdbg-testenv`).

use std::sync::{Arc, Mutex};

use xskdbg_analyzer::{analyze_reader, Options};
use xskdbg_recorder::tracefs::TraceFs;
use xskdbg_recorder::{Policy, Recorder, RecorderConfig, SinkConfig, Violation};

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
