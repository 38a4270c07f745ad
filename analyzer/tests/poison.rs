//! A poisoned read the application was entitled to is proof on its own; an
//! overlap whose end is only inferred is a finding only when something ties
//! to it; a leak is judged from the recorder's `audit` line alone.

use xskdbg_analyzer::report::OverallVerdict;
use xskdbg_analyzer::{analyze_reader, Options, Report};

/// A trace from bodies: `(cpu, body)`, one line each, 1 µs apart; bodies
/// starting with `k` or `probe` are the probes', the rest the recorder's.
fn trace(lines: &[(u32, &str)]) -> String {
    let mut t = String::new();
    for (i, (cpu, body)) in lines.iter().enumerate() {
        let (task, event) = if body.starts_with('k') || body.starts_with("probe") {
            ("ksoftirqd/0-14", "bpf_trace_printk")
        } else {
            ("app-100", "tracing_mark_write")
        };
        t.push_str(&format!(
            "{task:>16} [{cpu:03}] ..... {}.{:06}: {event}: xskdbg:1 {body}\n",
            10 + i / 1_000_000,
            i % 1_000_000
        ));
    }
    t
}

fn analyze(lines: &[(u32, &str)]) -> Report {
    analyze_reader(trace(lines).as_bytes(), &Options::default()).unwrap()
}

fn rules(r: &Report) -> Vec<(String, String)> {
    r.findings
        .iter()
        .map(|f| (f.rule.clone(), f.verdict.name().to_string()))
        .collect()
}

const HEAD: &[(u32, &str)] = &[
    (
        2,
        "umem umem=1 size=100000 chunk=800 mode=aligned headroom=0 poison=deadbeefdeadbeef",
    ),
    (2, "pool pool=1 umem=1 sk=1:2:0"),
    (2, "sock sk=1:2:0 pool=1 umem=1 label=q0"),
    (2, "fill pool=1 n=4 a=0,800,1000,1800"),
    (2, "rx sk=1:2:0 pool=1 idx=0 n=2 d=0:40,800:40 prod=2"),
    (2, "fill pool=1 n=2 a=0,800"),
];

fn with(tail: &[(u32, &'static str)]) -> Report {
    let mut l = HEAD.to_vec();
    l.extend_from_slice(tail);
    analyze(&l)
}

#[test]
fn a_poisoned_read_below_the_producer_the_app_saw_is_the_kernels() {
    let r = with(&[(
        2,
        "rx sk=1:2:0 pool=1 idx=2 n=2 d=1000:40,deadbeefdeadbeef:0 prod=4",
    )]);
    assert_eq!(
        rules(&r),
        [("poisoned_descriptor/entitled-read".into(), "kernel".into())]
    );
    assert!(
        r.findings[0].explanation.contains("entitled"),
        "{}",
        r.findings[0].explanation
    );
}

#[test]
fn a_poisoned_read_at_or_past_the_producer_the_app_saw_is_the_applications() {
    let r = with(&[(
        2,
        "rx sk=1:2:0 pool=1 idx=2 n=2 d=1000:40,deadbeefdeadbeef:0 prod=3",
    )]);
    assert_eq!(
        rules(&r),
        [(
            "poisoned_descriptor/read-past-producer".into(),
            "application".into()
        )]
    );
}

/// An index going back: the app read consumed slots again, or its
/// recording is wrong (a batch recorded twice, a masked index). The read is
/// the application's, but first the recording does not hold together: the
/// summary says `instrumentation`, the poisoned read folded under it.
#[test]
fn a_poisoned_read_at_an_index_that_goes_back_is_the_applications() {
    let r = with(&[(
        2,
        "rx sk=1:2:0 pool=1 idx=1 n=1 d=deadbeefdeadbeef:0 prod=4",
    )]);
    assert_eq!(
        rules(&r),
        [("instrumentation/rx-index".into(), "instrumentation".into())]
    );
    let also: Vec<(&str, &str)> = r.findings[0]
        .also
        .iter()
        .map(|a| (a.rule.as_str(), a.verdict.name()))
        .collect();
    assert_eq!(
        also,
        [("poisoned_descriptor/index-back", "application")],
        "{:?}",
        r.findings[0]
    );
    assert_eq!(r.summary.verdict, OverallVerdict::Instrumentation);
}

#[test]
fn without_the_producer_or_a_previous_batch_the_app_proves_nothing() {
    let r = with(&[(
        2,
        "rx sk=1:2:0 pool=1 idx=2 n=2 d=1000:40,deadbeefdeadbeef:0",
    )]);
    assert_eq!(
        rules(&r),
        [(
            "poisoned_descriptor/no-evidence".into(),
            "inconclusive".into()
        )]
    );
    // The socket's first batch in the trace: no index to continue.
    let r = analyze(&[
        HEAD[0],
        HEAD[1],
        HEAD[2],
        HEAD[3],
        (
            2,
            "rx sk=1:2:0 pool=1 idx=0 n=2 d=0:40,deadbeefdeadbeef:0 prod=2",
        ),
    ]);
    assert_eq!(
        rules(&r),
        [(
            "poisoned_descriptor/no-evidence".into(),
            "inconclusive".into()
        )]
    );
}

/// Tracepoint probes (no flush event): CPU 0 receives slots 0 and 1 and
/// its poll ends; then CPU 0 receives slot 2 while CPU 1 receives slot 3,
/// and the polls end: an overlap whose end is only inferred.
const RACE: &[(u32, &str)] = &[
    (
        2,
        "umem umem=1 size=100000 chunk=800 mode=aligned headroom=0 poison=deadbeefdeadbeef",
    ),
    (2, "pool pool=1 umem=1 sk=1:2:0"),
    (2, "sock sk=1:2:0 pool=1 umem=1 label=q0"),
    (
        0,
        "probe backend=tracepoint kernel=6.1.0 flush=inferred rxslot=1",
    ),
    (2, "fill pool=1 n=4 a=0,800,1000,1800"),
    (0, "krx xs=ff01 sk=1:2:0 a=0 len=40 slot=0 prod=0 mode=drv"),
    (
        0,
        "krx xs=ff01 sk=1:2:0 a=800 len=40 slot=1 prod=0 mode=drv",
    ),
    (0, "kpoll napi=1 dev=2 work=2 budget=40"),
    (2, "rx sk=1:2:0 pool=1 idx=0 n=2 d=0:40,800:40 prod=2"),
    (
        0,
        "krx xs=ff01 sk=1:2:0 a=1000 len=40 slot=2 prod=2 mode=drv",
    ),
    (
        1,
        "krx xs=ff01 sk=1:2:0 a=1800 len=40 slot=3 prod=2 mode=drv",
    ),
    (0, "kpoll napi=1 dev=2 work=1 budget=40"),
    (1, "kpoll napi=1 dev=2 work=1 budget=40"),
];

fn race(tail: &[(u32, &'static str)]) -> Report {
    let mut l = RACE.to_vec();
    l.extend_from_slice(tail);
    analyze(&l)
}

#[test]
fn an_inferred_overlap_nothing_follows_is_a_note_and_the_trace_is_clean() {
    let r = race(&[(2, "rx sk=1:2:0 pool=1 idx=2 n=2 d=1000:40,1800:40 prod=4")]);
    assert!(r.findings.is_empty(), "{:?}", rules(&r));
    assert_eq!(r.summary.verdict, OverallVerdict::Clean);
    assert!(
        r.summary
            .notes
            .iter()
            .any(|n| n.starts_with("1 producer overlap(s) whose end is only inferred")),
        "{:?}",
        r.summary.notes
    );
}

#[test]
fn a_proven_poisoned_read_after_an_inferred_overlap_makes_it_kernel() {
    let r = race(&[(
        2,
        "rx sk=1:2:0 pool=1 idx=2 n=2 d=1000:40,deadbeefdeadbeef:0 prod=4",
    )]);
    assert_eq!(
        rules(&r),
        [("concurrent_producer/poisoned-read".into(), "kernel".into())]
    );
    assert_eq!(r.summary.verdict, OverallVerdict::Kernel);
    let f = &r.findings[0];
    assert_eq!(f.cpus, [0, 1]);
    assert!(
        f.consequences
            .iter()
            .any(|c| c.rule == "poisoned_descriptor/entitled-read"),
        "{:?}",
        f.consequences.iter().map(|c| &c.rule).collect::<Vec<_>>()
    );
    assert!(
        f.explanation.contains("Verdict: kernel"),
        "{}",
        f.explanation
    );
    assert!(
        !f.explanation.contains("so this is inconclusive"),
        "{}",
        f.explanation
    );
}

#[test]
fn an_unproven_poisoned_read_keeps_the_inferred_overlap_inconclusive() {
    let r = race(&[(
        2,
        "rx sk=1:2:0 pool=1 idx=2 n=2 d=1000:40,deadbeefdeadbeef:0",
    )]);
    assert_eq!(
        rules(&r),
        [(
            "concurrent_producer/inferred-end".into(),
            "inconclusive".into()
        )]
    );
}

const AUDIT_HEAD: &[(u32, &str)] = &[
    (
        2,
        "umem umem=1 size=100000 chunk=800 mode=aligned headroom=0",
    ),
    (2, "pool pool=1 umem=1 sk=1:2:0"),
    (2, "sock sk=1:2:0 pool=1 umem=1 label=q0"),
];

fn audit(line: &'static str) -> Report {
    let mut l = AUDIT_HEAD.to_vec();
    l.push((2, line));
    analyze(&l)
}

#[test]
fn a_leak_is_judged_from_the_audit_line_alone() {
    let r = audit("audit umem=1 held=2 taken=400 hold_max=10 freelist=1 n=2 a=800,1000 since=5,3f0 age_ms=3e8,10");
    assert_eq!(
        rules(&r),
        [("frame_leak/audit".into(), "application".into())]
    );
    assert_eq!(r.findings[0].frame.as_deref(), Some("0x800"));
    // Under max(256, 2 x hold_max): held, not leaked.
    let r =
        audit("audit umem=1 held=1 taken=400 hold_max=200 freelist=1 n=1 a=800 since=5 age_ms=3e8");
    assert!(r.findings.is_empty(), "{:?}", rules(&r));
    // The app's free list unrecorded: a resting frame looks the same.
    let r =
        audit("audit umem=1 held=1 taken=400 hold_max=10 freelist=0 n=1 a=800 since=5 age_ms=3e8");
    assert!(r.findings.is_empty(), "{:?}", rules(&r));
}

#[test]
fn a_frame_returned_after_the_audit_is_no_leak() {
    let mut l = AUDIT_HEAD.to_vec();
    l.push((
        2,
        "audit umem=1 held=1 taken=400 hold_max=10 freelist=1 n=1 a=800 since=5 age_ms=3e8",
    ));
    l.push((2, "free n=1 a=800"));
    let r = analyze(&l);
    assert!(r.findings.is_empty(), "{:?}", rules(&r));
}
