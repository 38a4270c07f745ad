//! Issue 17 part 4: a COMPLETION ring the kernel overran is one finding,
//! its duplicates, losses, reorders and what the application did with the
//! frames it was handed twice filed under it; never an application verdict.
//! And what must not change: an application reading its ring twice
//! (nothing lost) stays the application's, a clean recorder-only run stays
//! clean.

use xskdbg_analyzer::{analyze_reader, Options, Report, Verdict};
use xskdbg_tracegen::{generate, Config, Scenario};

fn generated(scenario: Scenario, probes: bool, steps: u64) -> Report {
    let mut cfg = Config::new(scenario, 1);
    cfg.probes = probes;
    cfg.steps = steps;
    let mut trace = Vec::new();
    generate(&cfg, &mut trace).expect("generate");
    analyze_reader(&trace[..], &Options::default()).expect("analyze")
}

fn rules(r: &Report) -> Vec<(String, Verdict)> {
    r.findings
        .iter()
        .map(|f| (f.rule.clone(), f.verdict))
        .collect()
}

/// The consequences' rules, how many of each.
fn count(r: &Report, rule: &str) -> usize {
    r.findings[0]
        .consequences
        .iter()
        .filter(|c| c.rule == rule)
        .count()
}

#[test]
fn an_overrun_completion_ring_with_kernel_completions_is_one_kernel_finding() {
    for steps in [4000, 12000] {
        let r = generated(Scenario::KernelCompOverrun, true, steps);
        assert_eq!(
            rules(&r),
            [("duplicate_in_flight/comp-twice".into(), Verdict::Kernel)],
            "steps {steps}"
        );
        assert_eq!(format!("{:?}", r.summary.verdict), "Kernel");
        let f = &r.findings[0];
        // The three other frames read twice, and the application refilling
        // them: filed under it, not a root cause of their own.
        assert_eq!(count(&r, "duplicate_in_flight/comp-twice"), 3, "{steps}");
        assert!(count(&r, "duplicate_in_flight/fill-twice") >= 1, "{steps}");
        assert!(
            f.consequences
                .iter()
                .any(|c| c.verdict == Verdict::Application),
            "{steps}"
        );
        // It names the kernel completion that wrote the twice-read entry,
        // and those of the lost ones.
        assert!(
            f.explanation
                .contains("The kernel completed it once since it was sent, at line"),
            "{}",
            f.explanation
        );
        assert!(
            f.explanation.contains("completed by the kernel at line"),
            "{}",
            f.explanation
        );
    }
    let r = generated(Scenario::KernelCompOverrun, true, 4000);
    assert_eq!(r.findings[0].consequences.len(), 4);
    let r = generated(Scenario::KernelCompOverrun, true, 12000);
    assert_eq!(r.findings[0].consequences.len(), 6);
}

#[test]
fn an_overrun_completion_ring_from_the_recorder_alone_is_one_inconclusive_finding() {
    for steps in [4000, 12000] {
        let r = generated(Scenario::KernelCompOverrun, false, steps);
        assert_eq!(
            rules(&r),
            [(
                "duplicate_in_flight/comp-twice-untraced".into(),
                Verdict::Inconclusive
            )],
            "steps {steps}"
        );
        assert_eq!(format!("{:?}", r.summary.verdict), "Inconclusive");
        let f = &r.findings[0];
        // Hundreds of completions out of TX order are behind it; the
        // telling consequences are the ones listed.
        assert_eq!(f.consequences.len(), 50, "{steps}");
        assert!(f.consequences_omitted > 0, "{steps}");
        assert_eq!(count(&r, "duplicate_in_flight/comp-twice-untraced"), 3);
        assert!(count(&r, "duplicate_in_flight/fill-twice") >= 1);
        assert!(count(&r, "fifo_order/tx-completion-order") > 0);
    }
    // Run long enough, the overwritten frames are passed by their ring:
    // the four the kernel wrote over are consequences too.
    let r = generated(Scenario::KernelCompOverrun, false, 12000);
    assert_eq!(count(&r, "frame_leak/passed-by-ring"), 4);
    assert!(
        r.findings[0].explanation.contains("is not a verdict"),
        "{}",
        r.findings[0].explanation
    );
}

#[test]
fn a_clean_run_from_the_recorder_alone_stays_clean() {
    let r = generated(Scenario::Clean, false, 4000);
    assert!(r.findings.is_empty(), "{:?}", rules(&r));
}

#[test]
fn reading_ones_completion_ring_twice_loses_nothing_and_stays_the_applications() {
    let r = generated(Scenario::AppDoubleComplete, true, 4000);
    let got = rules(&r);
    assert!(!got.is_empty());
    assert!(
        got.iter()
            .all(|(rule, v)| !rule.contains("comp-twice") && *v != Verdict::Kernel),
        "{got:?}"
    );
    assert!(
        got.iter().any(|(_, v)| *v == Verdict::Application),
        "{got:?}"
    );
}

const HEAD: &str = "\
a-1 [000] .... 1.000001: tracing_mark_write: xskdbg:1 umem umem=1 size=100000 chunk=1000 mode=aligned
a-1 [000] .... 1.000002: tracing_mark_write: xskdbg:1 pool pool=1 umem=1 sk=1:5:0
a-1 [000] .... 1.000003: tracing_mark_write: xskdbg:1 sock sk=1:5:0 pool=1 umem=1 fd=10 label=fwd
a-1 [000] .... 1.000010: tracing_mark_write: xskdbg:1 tx sk=1:5:0 idx=0 n=3 d=1000:40,2000:40,3000:40
";

fn hand(body: &str) -> Report {
    let t = format!("{HEAD}{body}");
    analyze_reader(t.as_bytes(), &Options::default()).expect("analyze")
}

/// By hand, the smallest overrun: 0x1000 is lost, 0x3000 read twice.
#[test]
fn a_second_completion_next_to_a_lost_one_is_the_ring_and_one_without_is_not() {
    let overrun = "\
a-1 [000] .... 1.000020: tracing_mark_write: xskdbg:1 comp pool=1 n=3 a=3000,2000,3000
";
    let r = hand(overrun);
    assert_eq!(
        rules(&r),
        [(
            "duplicate_in_flight/comp-twice-untraced".into(),
            Verdict::Inconclusive
        )]
    );
    assert_eq!(r.findings[0].addr.as_deref(), Some("0x3000"));
    assert_eq!(r.findings[0].consequences.len(), 2, "{:?}", r.findings[0]);

    // The kernel's completions traced: it completed 0x1000, never read.
    let traced = "\
a-1 [000] .... 1.000011: bpf_trace_printk: xskdbg:1 ktx xs=ffff1 sk=1:5:0 a=1000 len=40
a-1 [000] .... 1.000012: bpf_trace_printk: xskdbg:1 ktx xs=ffff1 sk=1:5:0 a=2000 len=40
a-1 [000] .... 1.000013: bpf_trace_printk: xskdbg:1 ktx xs=ffff1 sk=1:5:0 a=3000 len=40
a-1 [000] .... 1.000014: bpf_trace_printk: xskdbg:1 kcomp xs=ffff1 sk=1:5:0 n=3 a=1000,2000,3000
a-1 [000] .... 1.000020: tracing_mark_write: xskdbg:1 comp pool=1 n=3 a=3000,2000,3000
";
    let r = hand(traced);
    assert_eq!(
        rules(&r),
        [("duplicate_in_flight/comp-twice".into(), Verdict::Kernel)]
    );
    assert!(
        r.findings[0]
            .explanation
            .contains("0x1000 (completed by the kernel at line 8"),
        "{}",
        r.findings[0].explanation
    );

    // Every completion read, one of them twice: nothing lost, so the
    // application read its ring again.
    let reread = "\
a-1 [000] .... 1.000011: bpf_trace_printk: xskdbg:1 kcomp xs=ffff1 sk=1:5:0 n=3 a=1000,2000,3000
a-1 [000] .... 1.000020: tracing_mark_write: xskdbg:1 comp pool=1 n=4 a=1000,2000,3000,3000
";
    let r = hand(reread);
    assert_eq!(
        rules(&r),
        [(
            "invalid_transition/comp-not-produced".into(),
            Verdict::Application
        )]
    );
    // Out of order but every one back, none twice: only the order.
    let late = "\
a-1 [000] .... 1.000020: tracing_mark_write: xskdbg:1 comp pool=1 n=3 a=3000,1000,2000
";
    let r = hand(late);
    assert!(
        rules(&r)
            .iter()
            .all(|(rule, _)| rule == "fifo_order/tx-completion-order"),
        "{:?}",
        rules(&r)
    );
}
