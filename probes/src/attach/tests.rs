//! Backend choice, all-or-nothing attaching and restore-on-drop, on the fake
//! tracefs (no root). The BPF backends are stood in for by refusals (what a
//! locked-down kernel answers); the `tracefs` backend runs for real against
//! the fake, with field offsets from this machine's kernel BTF (the one the
//! skeletons were built from).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use xskdbg_tracefs::fake::FakeSys;
use xskdbg_tracefs::{Instance, Sys, TraceFs};

use super::*;

const INST: &str = "/t/instances/xskdbg-t";

fn btf() -> PathBuf {
    std::env::var_os("XSKDBG_VMLINUX_BTF")
        .map_or_else(|| PathBuf::from(sys::VMLINUX_BTF), PathBuf::from)
}

fn fake() -> (Arc<FakeSys>, TraceFs, Instance) {
    let sys = Arc::new(FakeSys::new("/t").with_kprobe_events());
    let tfs = TraceFs::at_with(sys.clone(), "/t").unwrap();
    let inst = tfs.create_instance("xskdbg-t").unwrap();
    (sys, tfs, inst)
}

/// A kernel with BTF and kprobe events but without the xdp/napi
/// tracepoints, one optional function inlined.
fn caps() -> Caps {
    Caps {
        release: "6.1.0-test".into(),
        btf: true,
        kprobe_events: true,
        kprobe_pmu: false,
        tracepoints: false,
        funcs_present: [
            "__xsk_rcv_zc",
            "sock_def_readable",
            "xp_raw_get_data",
            "xsk_tx_peek_desc",
            "xsk_tx_completed",
        ]
        .map(String::from)
        .to_vec(),
        funcs_missing: vec!["xsk_destruct_skb".into()],
    }
}

fn request(inst: &Instance, backend: Backend) -> Request {
    Request {
        backend,
        filters: Filters::default(),
        buffer: inst.buffer(),
        group: GROUP.into(),
        stacks: false,
        output: Default::default(),
    }
}

/// Tracefs attaches for real; every BPF backend is refused the way a
/// locked-down kernel refuses it.
fn attach_or_refuse(
    req: &Request,
    tfs: &TraceFs,
    caps: &Caps,
) -> impl FnMut(Backend) -> Result<Attached> {
    let (req, tfs, caps, btf) = (req.clone(), tfs.clone(), caps.clone(), btf());
    move |b| match b {
        Backend::Tracefs => attach_one(b, &req, &tfs, &caps, &btf),
        other => Err(refused(other, "load programs", "EPERM (locked down)", "")),
    }
}

fn text(sys: &FakeSys, path: &str) -> String {
    String::from_utf8_lossy(&sys.read(Path::new(path)).unwrap())
        .trim()
        .to_string()
}

const EVENTS: [&str; 5] = [
    "__xsk_rcv_zc_L7",
    "__xsk_rcv_zc_ret",
    "xsk_flush",
    "xp_raw_get_data",
    "xsk_tx_completed",
];

#[test]
fn auto_skips_and_survives_refusals_then_attaches_tracefs_and_restores_everything_on_drop() {
    let (sys, tfs, inst) = fake();
    let caps = caps();
    let req = request(&inst, Backend::Auto);
    let a = choose(Backend::Auto, &caps, attach_or_refuse(&req, &tfs, &caps)).unwrap();
    assert_eq!(a.backend(), Backend::Tracefs);
    let notes = a.notes().join("\n");
    assert!(notes.starts_with("auto chose tracefs\n"), "{notes}");
    for want in [
        "skipped  fentry: backend fentry: load programs failed: EPERM (locked down)",
        "skipped  kprobe: backend kprobe: load programs failed: EPERM (locked down)",
        "skipped  tracepoint: the xdp:xdp_redirect / napi:napi_poll tracepoints are missing",
        "xsk_destruct_skb not in /proc/kallsyms (inlined?): not probed",
    ] {
        assert!(notes.contains(want), "no {want:?} in\n{notes}");
    }
    assert!(a
        .header_line()
        .contains("backend=tracefs kernel=6.1.0-test"));
    assert_eq!(a.probe_count(), EVENTS.len());
    let defined: Vec<String> = EVENTS.iter().map(|e| format!("xskdbg/{e}")).collect();
    let mut got = sys.kprobes();
    got.sort();
    let mut want = defined.clone();
    want.sort();
    assert_eq!(got, want);
    for e in EVENTS {
        assert_eq!(
            text(&sys, &format!("{INST}/events/xskdbg/{e}/enable")),
            "1",
            "{e}"
        );
        // Only the target buffer records them.
        assert_eq!(
            text(&sys, &format!("/t/events/xskdbg/{e}/enable")),
            "0",
            "{e}"
        );
    }
    assert_eq!(
        text(&sys, &format!("{INST}/events/xskdbg/xsk_flush/filter")),
        "family == 44"
    );
    for ev in ["xdp_exception", "xdp_redirect_err"] {
        assert_eq!(text(&sys, &format!("{INST}/events/xdp/{ev}/enable")), "1");
    }

    drop(a);
    assert!(sys.kprobes().is_empty(), "{:?}", sys.kprobes());
    for e in EVENTS {
        assert!(
            !sys.exists(Path::new(&format!("{INST}/events/xskdbg/{e}"))),
            "{e}"
        );
    }
    for ev in ["xdp_exception", "xdp_redirect_err"] {
        assert_eq!(text(&sys, &format!("{INST}/events/xdp/{ev}/enable")), "0");
    }
}

#[test]
fn a_failure_halfway_leaves_nothing_behind_and_auto_lists_every_attempt() {
    let (sys, tfs, inst) = fake();
    let caps = caps();
    // The last step of the tracefs backend fails: every kprobe event is
    // defined and enabled by then.
    sys.deny(format!("{INST}/events/xdp/xdp_redirect_err/enable"));
    let req = request(&inst, Backend::Auto);
    let e = choose(Backend::Auto, &caps, attach_or_refuse(&req, &tfs, &caps)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ProbeError::NoBackend { .. }), "{msg}");
    for b in ["fentry", "kprobe", "tracepoint", "tracefs"] {
        assert!(msg.contains(&format!("  {b}: ")), "{b} missing in\n{msg}");
    }
    assert!(msg.contains("xdp_redirect_err/enable"), "{msg}");
    assert!(sys.kprobes().is_empty(), "{:?}", sys.kprobes());
    assert_eq!(
        text(&sys, &format!("{INST}/events/xdp/xdp_exception/enable")),
        "0"
    );

    // A kprobe the kernel refuses: the ones already defined are removed.
    let (sys, tfs, inst) = fake();
    sys.refuse_probes_on("xp_raw_get_data");
    let req = request(&inst, Backend::Tracefs);
    let e = choose(Backend::Tracefs, &caps, attach_or_refuse(&req, &tfs, &caps)).unwrap_err();
    assert!(
        e.to_string()
            .contains("write kprobe_events \"p:xskdbg/xp_raw_get_data"),
        "{e}"
    );
    assert!(sys.kprobes().is_empty(), "{:?}", sys.kprobes());
}

#[test]
fn an_explicit_backend_its_precheck_refuses_is_never_tried() {
    let caps = caps();
    let e = choose(Backend::Tracepoint, &caps, |b| panic!("{b} tried")).unwrap_err();
    assert!(e.to_string().contains("precheck"), "{e}");
    assert!(e.to_string().contains("tracepoints are missing"), "{e}");
}

#[test]
fn detach_all_removes_only_project_leftovers() {
    let sys = Arc::new(FakeSys::new("/t").with_kprobe_events());
    let tfs = TraceFs::at_with(sys.clone(), "/t").unwrap();
    let left = tfs.create_instance("xskdbg-left-1").unwrap().keep();
    tfs.create_instance("someone-else").unwrap().keep();
    let w = sys.open_writer(Path::new("/t/kprobe_events")).unwrap();
    w.write_once(b"p:xskdbg/old __xsk_rcv_zc").unwrap();
    w.write_once(b"p:other/keep do_sys_open").unwrap();
    // Enabled in a leftover instance: must be disabled before removal.
    left.write_file("events/xskdbg/old/enable", b"1").unwrap();

    assert_eq!(
        leftovers_in(&tfs),
        ["instance xskdbg-left-1", "kprobe event xskdbg/old"]
    );
    let removed = detach_all_in(&tfs).unwrap();
    assert_eq!(
        removed,
        ["kprobe event xskdbg/old", "instance xskdbg-left-1"]
    );
    assert_eq!(sys.kprobes(), ["other/keep"]);
    assert_eq!(tfs.instance_names().unwrap(), ["someone-else"]);
    assert!(leftovers_in(&tfs).is_empty());
    assert!(detach_all_in(&tfs).unwrap().is_empty());
}
