//! TX descriptors the kernel refuses (xskdbg_format::reject): 6.12's
//! xskxceiver `ALIGNED_INV_DESC*` tests put descriptors of frame 0 that the
//! kernel skips (too long, crossing a chunk) next to a valid one in one
//! batch. Taken for sends they made a false `duplicate_in_flight/tx-twice`,
//! verdict APPLICATION; the kernel never sent them (recent kernels hand
//! them back on COMPLETION in copy mode, older ones never do).

mod common;

use common::{app, declare_q0};
use xskdbg_analyzer::{analyze_reader, Options, Report};

fn analyze(t: &str) -> Report {
    analyze_reader(t.as_bytes(), &Options::default()).unwrap()
}

/// The declarations (UMEM 0x400000 bytes, 4 KiB chunks), then one TX batch
/// `batch` and the completion of `comp`.
fn trace(batch: &str, comp: &str) -> String {
    let mut t = declare_q0(["1.000001", "1.000002", "1.000003"]);
    t += &app(
        "1.000010",
        &format!("tx sk=1:2:0 sid=11 pool=1 idx=0 {batch}"),
    );
    t += &app("1.000020", &format!("comp pool=1 {comp}"));
    t
}

#[test]
fn refused_descriptors_are_not_sends() {
    // As xskxceiver builds it, each valid packet in a frame of its own:
    // sent 0:40, 1000:40, 3fdfc0:40 (up to two frames before the UMEM's
    // end), 27e0:40 (a 2K straddle inside a 4K chunk), 3000:40 (the packet
    // for sync). Refused, at their raw offsets: a wrapped address, 0 too
    // long, past the end, straddling the end, straddling a 4K boundary.
    let t = trace(
        "n=a d=0:40,1000:40,fffffffffffffffe:40,0:2329,3fdfc0:40,400000:40,3fffe0:40,fe0:40,27e0:40,3000:40",
        "n=5 a=0,1000,3fdfc0,27e0,3000",
    );
    let r = analyze(&t);
    assert!(r.findings.is_empty(), "{}", r.to_json());
    let note = r
        .summary
        .notes
        .iter()
        .find(|n| n.contains("refuses"))
        .unwrap_or_else(|| panic!("no note: {:?}", r.summary.notes));
    assert!(
        note.starts_with("5 TX descriptor(s) the kernel refuses")
            && note.contains("0xfffffffffffffffe len 0x40")
            && note.contains("address past the UMEM"),
        "{note}"
    );
}

#[test]
fn a_frame_sent_twice_for_real_is_still_a_finding() {
    let t = trace("n=3 d=0:40,0:2329,10:40", "n=2 a=0,0");
    let r = analyze(&t);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "duplicate_in_flight/tx-twice"),
        "{}",
        r.to_json()
    );
}

#[test]
fn without_a_umem_line_nothing_is_refused() {
    // The recorder's declarations overwritten: the layout is not known, so
    // every descriptor counts as sent, as before.
    let t = app("1.000010", "tx sk=1:2:0 idx=0 n=2 d=0:40,0:2329");
    let r = analyze(&t);
    assert!(!r.summary.notes.iter().any(|n| n.contains("refuses")));
    assert!(!r.findings.is_empty(), "{}", r.to_json());
}

/// Debian's 6.12.118 and the 6.18 host complete a refused descriptor in
/// copy mode (`xsk_cq_submit_addr_single_locked` in `__xsk_generic_xmit`):
/// xskxceiver then reads frame 0 from COMPLETION twice, once for its send
/// and once for the refused `0:2329`, and the wrapped address too.
fn handed_back(recorder_lines: bool) -> String {
    let mut t = trace(
        "n=4 d=0:40,1000:40,fffffffffffffffe:40,0:2329",
        "n=3 a=0,1000,fffffffffffffffe",
    );
    t += &app("1.000021", "free umem=1 n=2 a=0,1000");
    if recorder_lines {
        // What a recorder that did not know refused descriptors wrote.
        t += &app(
            "1.000011",
            "violation kind=duplicate_in_flight sk=1:2:0 sid=11 pool=1 a=0 frame=0 from=tx to=tx label=q0",
        );
    }
    t += &app("1.000030", "comp pool=1 n=1 a=0");
    if recorder_lines {
        t += &app(
            "1.000031",
            "violation kind=invalid_transition pool=1 a=0 frame=0 from=free to=comp",
        );
    }
    t += &app("1.000032", "free umem=1 n=1 a=0");
    t
}

#[test]
fn a_refused_descriptor_handed_back_on_completion_is_no_finding() {
    let r = analyze(&handed_back(false));
    assert!(r.findings.is_empty(), "{}", r.to_json());
    let note = r
        .summary
        .notes
        .iter()
        .find(|n| n.contains("refuses"))
        .unwrap();
    assert!(note.contains(" 2 came back on COMPLETION"), "{note}");
    // Each refused descriptor comes back once at most.
    let t = handed_back(false) + &app("1.000040", "comp pool=1 n=1 a=0");
    let r = analyze(&t);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "invalid_transition/comp-not-sent"),
        "{}",
        r.to_json()
    );
}

#[test]
fn an_older_recorders_violations_about_refused_descriptors_are_no_evidence() {
    // Its in-process FREE -> COMP would otherwise be a false KERNEL, its
    // TX -> TX a false APPLICATION.
    let r = analyze(&handed_back(true));
    assert!(r.findings.is_empty(), "{}", r.to_json());
    assert!(
        r.summary
            .notes
            .iter()
            .any(|n| n.starts_with("2 recorder violation line(s) about refused TX descriptors")),
        "{:?}",
        r.summary.notes
    );
}
