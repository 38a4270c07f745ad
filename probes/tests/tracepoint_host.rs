//! Root test of the `tracepoint` backend on the running kernel: a veth pair
//! in namespaces, native XDP redirecting into a copy-mode AF_XDP socket,
//! frames sent across. The saved trace must hold one `krx` per frame whose
//! addr, len and RX slot are exactly what the socket read, in order; the
//! analyzer finds nothing, and blames the application for an injected fault.

mod common;

use common::{analyze, check_rx, require, run, Run, SCENARIO};
use xskdbg_probes::Backend;

#[test]
fn tracepoint_backend_records_every_receive_with_its_slot() {
    if !require(
        "tracepoint_backend_records_every_receive_with_its_slot",
        SCENARIO,
    ) {
        return;
    }
    let Some(r) = run("tpok", Backend::Tracepoint, false) else {
        return;
    };
    check_rx(&r, Backend::Tracepoint);
    // Drained records put their own cpu= and t= before the fields.
    assert!(r
        .trace
        .lines()
        .any(|l| l.contains("xskdbg:1 kpoll ") && l.contains(" napi=")));
    let report = analyze(&r.trace);
    assert!(
        report.findings.is_empty(),
        "analyzer findings on a clean run: {}",
        report.to_json()
    );
}

/// The application puts one frame on FILL twice: the kernel fills it twice
/// and the analyzer must blame the application.
#[test]
fn analyzer_blames_the_app_for_a_frame_filled_twice() {
    if !require("analyzer_blames_the_app_for_a_frame_filled_twice", SCENARIO) {
        return;
    }
    let Some(Run {
        trace,
        got,
        first_fill,
        ..
    }) = run("tpdup", Backend::Tracepoint, true)
    else {
        return;
    };
    assert_eq!(first_fill[0], first_fill[1]);
    assert_eq!(
        got[0].addr & !2047,
        got[1].addr & !2047,
        "the kernel used the frame twice"
    );
    let report = analyze(&trace);
    let f = report
        .findings
        .first()
        .unwrap_or_else(|| panic!("no finding: {}", report.to_json()));
    assert_eq!(
        f.verdict,
        xskdbg_analyzer::Verdict::Application,
        "{}",
        report.to_json()
    );
    assert!(
        matches!(
            f.kind,
            xskdbg_analyzer::Kind::DuplicateInFlight | xskdbg_analyzer::Kind::InvalidTransition
        ),
        "{}",
        report.to_json()
    );
}

/// `--stacks`: every `krx` gets a `kstack` line whose id has a symbolized
/// `kstackdef`, and the receive stack shows the driver path (veth's NAPI
/// poll calling xdp_do_redirect).
#[test]
fn tracepoint_stacks_name_the_receive_path() {
    if !require("tracepoint_stacks_name_the_receive_path", SCENARIO) {
        return;
    }
    let Some(r) = common::run_with("tpst", Backend::Tracepoint, false, true) else {
        return;
    };
    common::check_stacks(&r.trace, "krx", &["xdp_do_redirect", "veth_poll"]);
}
