//! A completion of an address the trace never shows on TX while a recorded
//! send is due. The 6.18 host completed xskxceiver's `fa1:40` (unaligned
//! mode, 4001-byte chunks) as `fa0` (`UNALIGNED_INV_DESC_4001_FRAME_SIZE`):
//! the recorder's `not_recorded` alone made that INSTRUMENTATION ("record
//! every batch put on TX"), which sends the user after the wrong program.
//! With the whole recording in the trace, it is inconclusive: the kernel or
//! an unrecorded send.

// This test declares its own (unaligned) UMEM, not `declare_q0`'s.
#[allow(dead_code)]
mod common;

use common::app;
use xskdbg_analyzer::{analyze_reader, Options, Report};

fn analyze(t: &str) -> Report {
    analyze_reader(t.as_bytes(), &Options::default()).unwrap()
}

/// An unaligned UMEM of 4001-byte chunks, one socket, `fa1:40` sent, and
/// `fa0` read back from COMPLETION with the recorder's report of it.
fn trace(sent: &str) -> String {
    app(
        "1.000001",
        "umem umem=1 size=3e8400 chunk=fa1 mode=unaligned headroom=0",
    ) + &app("1.000002", "pool pool=1 umem=1 sk=1:3:0")
        + &app(
            "1.000003",
            "sock sk=1:3:0 sid=11 pool=1 umem=1 fd=3 label=tx",
        )
        + &app(
            "1.000010",
            &format!("tx sk=1:3:0 sid=11 pool=1 idx=0 {sent}"),
        )
        + &app("1.000020", "comp pool=1 n=2 a=0,fa0")
        + &app(
            "1.000021",
            "violation kind=not_recorded pool=1 a=fa0 frame=fa0 from=unknown to=comp",
        )
}

#[test]
fn an_address_never_sent_while_a_send_is_due_is_inconclusive() {
    let r = analyze(&trace("n=2 d=0:40,fa1:40"));
    assert_eq!(r.findings.len(), 1, "{}", r.to_json());
    let f = &r.findings[0];
    assert_eq!(
        f.rule,
        "invalid_transition/comp-not-sent",
        "{}",
        r.to_json()
    );
    assert_eq!(format!("{:?}", f.verdict), "Inconclusive");
    let j = r.to_json();
    assert!(
        j.contains("frame 0xfa1, put on TX at line 4")
            && j.contains("or the program put 0xfa0 on TX without recording it"),
        "{j}"
    );
}

#[test]
fn with_nothing_due_the_recorders_report_stays_instrumentation() {
    // Everything sent came back: the address can only be a send the
    // program did not record.
    let r = analyze(&trace("n=1 d=0:40"));
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "instrumentation/recorder-not-recorded"),
        "{}",
        r.to_json()
    );
    assert!(!r
        .findings
        .iter()
        .any(|f| f.rule == "invalid_transition/comp-not-sent"));
}

#[test]
fn a_wrapped_trace_may_have_lost_the_send() {
    // Overwritten entries may have held the `tx` line of 0xfa0.
    let t = String::from("# entries-in-buffer/entries-written: 6/40   #P:2\n")
        + &trace("n=2 d=0:40,fa1:40");
    let r = analyze(&t);
    assert!(
        !r.findings
            .iter()
            .any(|f| f.rule == "invalid_transition/comp-not-sent"),
        "{}",
        r.to_json()
    );
}
