//! Receive attempts (a failed reservation, RX ring full, is no receive) and
//! SKB mode (the kernel's line after the application's read), on small
//! traces written here: what they must not hide as much as what they must
//! not blame. The real traces these rules come from are
//! `fixtures/traces/real/` (asserted in `tests/suite/analyze.rs`).

use xskdbg_analyzer::{analyze_reader, Options, Report};

const HEAD: &str = "\
# entries-in-buffer/entries-written: 100/100   #P:2
app-1 [000] ..... 1.000000: tracing_mark_write: xskdbg:1 umem umem=1 size=100000 chunk=800 mode=aligned headroom=0
app-1 [000] ..... 1.000001: tracing_mark_write: xskdbg:1 pool pool=1 umem=1 sk=1:2:0
app-1 [000] ..... 1.000002: tracing_mark_write: xskdbg:1 sock sk=1:2:0 pool=1 umem=1 fd=3 label=q0
";

fn analyze(body: &str) -> Report {
    let text = format!("{HEAD}{body}");
    analyze_reader(text.as_bytes(), &Options::default()).expect("analyze")
}

fn rules(r: &Report) -> Vec<String> {
    r.findings
        .iter()
        .map(|f| format!("{}:{:?}", f.rule, f.verdict))
        .collect()
}

fn rx_full_note(r: &Report) -> Option<&String> {
    r.summary.notes.iter().find(|n| n.starts_with("rx_full: "))
}

#[test]
fn fentry_failed_attempts_are_a_note_and_real_double_receives_stay_kernel() {
    let failed = "\
app-1 [000] ..... 1.000010: tracing_mark_write: xskdbg:1 fill pool=1 n=2 a=0,800
k-2 [001] ..s2. 1.000100: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a=100 len=40 slot=0 prod=0
k-2 [001] ..s2. 1.000101: bpf_trace_printk: xskdbg:1 kxdperr why=rcv xs=ff00 slot=0 errno=69
k-2 [001] ..s2. 1.000200: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a=100 len=80 slot=0 prod=0
k-2 [001] ..s2. 1.000201: bpf_trace_printk: xskdbg:1 kxdperr why=rcv xs=ff00 slot=0 errno=69
k-2 [001] ..s2. 1.000300: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a=100 len=40 slot=0 prod=0
k-2 [001] ..s2. 1.000301: bpf_trace_printk: xskdbg:1 krxdone xs=ff00 slot=0
k-2 [001] ..s2. 1.000302: bpf_trace_printk: xskdbg:1 kflush xs=ff00 sk=1:2:0 prod=1 cprod=1 at=flush
app-1 [000] ..... 1.000400: tracing_mark_write: xskdbg:1 rx sk=1:2:0 pool=1 idx=0 n=1 d=100:40
";
    let r = analyze(failed);
    assert!(r.findings.is_empty(), "{:?}", rules(&r));
    let note = rx_full_note(&r).expect("rx_full note");
    assert!(note.contains("2 receive attempt(s) failed"), "{note}");
    assert!(note.contains("1 RX-full episode(s)"), "{note}");
    assert!(note.contains("outcome line"), "{note}");

    // Two confirmed receives of one frame into two slots: the kernel's.
    let twice = "\
app-1 [000] ..... 1.000010: tracing_mark_write: xskdbg:1 fill pool=1 n=2 a=0,800
k-2 [001] ..s2. 1.000100: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a=100 len=40 slot=0 prod=0
k-2 [001] ..s2. 1.000101: bpf_trace_printk: xskdbg:1 krxdone xs=ff00 slot=0
k-2 [001] ..s2. 1.000200: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a=100 len=80 slot=1 prod=0
k-2 [001] ..s2. 1.000201: bpf_trace_printk: xskdbg:1 krxdone xs=ff00 slot=1
";
    let r = analyze(twice);
    assert_eq!(
        rules(&r),
        ["duplicate_in_flight/rx-twice:Kernel"],
        "{:?}",
        r.summary.notes
    );
    assert!(rx_full_note(&r).is_none());
}

#[test]
fn tracefs_return_probe_and_supersede_without_an_outcome() {
    let entry = |ts: &str, len: &str, slot: &str| {
        format!("k-2 [001] ..s1. {ts}: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x0/0xd0) addr=0x100 len={len} xs=0xff00 fq=0xee00 slot={slot}\n")
    };
    let ret = |ts: &str, v: &str| {
        format!("k-2 [001] ..s1. {ts}: __xsk_rcv_zc_ret: (__xsk_rcv+0x9c/0x110 <- __xsk_rcv_zc) ret={v}\n")
    };
    let fill = "app-1 [000] ..... 1.000010: tracing_mark_write: xskdbg:1 fill pool=1 n=2 a=0,800\n";
    // The return probe says the first two failed.
    let with_ret = format!(
        "{fill}{}{}{}{}{}{}",
        entry("1.000100", "0x40", "0x0"),
        ret("1.000101", "-105"),
        entry("1.000200", "0x80", "0x0"),
        ret("1.000201", "-105"),
        entry("1.000300", "0x40", "0x0"),
        ret("1.000301", "0"),
    );
    let r = analyze(&with_ret);
    assert!(r.findings.is_empty(), "{:?}", rules(&r));
    assert!(rx_full_note(&r).unwrap().contains("outcome line"));
    // Without it, the later attempt on the same slot supersedes.
    let without = format!(
        "{fill}{}{}{}",
        entry("1.000100", "0x40", "0x0"),
        entry("1.000200", "0x80", "0x0"),
        entry("1.000300", "0x40", "0x0"),
    );
    let r = analyze(&without);
    assert!(r.findings.is_empty(), "{:?}", rules(&r));
    assert!(rx_full_note(&r).unwrap().contains("superseded"));
    // Both reserved (ret=0), two slots: one frame on RX twice.
    let both = format!(
        "{fill}{}{}{}{}",
        entry("1.000100", "0x40", "0x0"),
        ret("1.000101", "0"),
        entry("1.000200", "0x80", "0x1"),
        ret("1.000201", "0"),
    );
    assert_eq!(
        rules(&analyze(&both)),
        ["duplicate_in_flight/rx-twice:Kernel"]
    );
}

#[test]
fn skb_receive_is_placed_before_the_read_within_its_bound() {
    // A first receive in SKB mode, read in order.
    let start = "\
app-1 [000] ..... 1.000010: tracing_mark_write: xskdbg:1 fill pool=1 n=3 a=0,800,1000
k-2 [001] ..s3. 1.000100: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a=100 len=40 slot=0 kpool=ee00 prod=1 fcons=1 mode=skb
app-1 [000] ..... 1.000110: tracing_mark_write: xskdbg:1 rx sk=1:2:0 pool=1 idx=0 n=1 d=100:40
";
    // The next slot read, sent and completed before its line.
    let early_read = "\
app-1 [000] ..... 1.000200: tracing_mark_write: xskdbg:1 rx sk=1:2:0 pool=1 idx=1 n=1 d=900:40
app-1 [000] ..... 1.000201: tracing_mark_write: xskdbg:1 tx sk=1:2:0 pool=1 idx=0 n=1 d=900:40
";
    let late_krx = |ts: &str| {
        format!("k-2 [001] ..s3. {ts}: bpf_trace_printk: xskdbg:1 krx xs=ff00 sk=1:2:0 a=900 len=40 slot=1 kpool=ee00 prod=2 fcons=2 mode=skb\n")
    };
    let r = analyze(&format!("{start}{early_read}{}", late_krx("1.000202")));
    assert!(r.findings.is_empty(), "{:?}", rules(&r));
    // Past the bound (10 ms), the late line is judged where it is.
    let r = analyze(&format!("{start}{early_read}{}", late_krx("1.020202")));
    assert!(
        rules(&r)
            .iter()
            .any(|x| x.starts_with("invalid_transition/not-from-fill:Kernel")),
        "{:?}",
        rules(&r)
    );
}
