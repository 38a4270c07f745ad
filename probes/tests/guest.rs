//! The function backends in Debian's 6.1 kernel under qemu (this host
//! refuses kprobes and fentry). `guest_runs_every_backend` boots one guest
//! through `xskdbg-vmtest` with this very test binary and runs the
//! `guest_*` tests in it, one after the other; those only do their work when
//! `XSKDBG_PROBES_GUEST=1` (set in the guest), elsewhere they return at once.

mod common;

use common::{analyze, check_rx, check_tx, kprobe_events, run, Run, N, T};
use xskdbg_probes::Backend;

const GUEST_ENV: &str = "XSKDBG_PROBES_GUEST";
const GUEST_TESTS: [&str; 8] = [
    "guest_try_load",
    "guest_stacks",
    "guest_tracepoint",
    "guest_fentry",
    "guest_kprobe",
    "guest_tracefs",
    "guest_auto_picks_fentry",
    "guest_detach_all_removes_leftovers",
];

fn in_guest(test: &str) -> bool {
    let yes = std::env::var(GUEST_ENV).is_ok_and(|v| v == "1");
    if !yes {
        eprintln!("{test}: runs inside the qemu guest (guest_runs_every_backend boots it)");
    }
    yes
}

fn clean_analysis(r: &Run) {
    let report = analyze(&r.trace);
    assert!(
        report.findings.is_empty(),
        "analyzer findings on a clean run: {}",
        report.to_json()
    );
}

fn save(r: &Run, name: &str) {
    if let Ok(dir) = std::env::var("XSKDBG_OUT") {
        let _ = std::fs::write(format!("{dir}/{name}.trace"), &r.trace);
    }
}

#[test]
fn guest_tracepoint() {
    if !in_guest("guest_tracepoint") {
        return;
    }
    let r = run("gtp", Backend::Tracepoint, false).expect("scenario");
    save(&r, "tracepoint");
    check_rx(&r, Backend::Tracepoint);
    clean_analysis(&r);
}

#[test]
fn guest_fentry() {
    if !in_guest("guest_fentry") {
        return;
    }
    let r = run("gfe", Backend::Fentry, false).expect("scenario");
    save(&r, "fentry");
    eprintln!("notes: {:?}", r.notes);
    check_rx(&r, Backend::Fentry);
    check_tx(&r);
    clean_analysis(&r);
}

#[test]
fn guest_kprobe() {
    if !in_guest("guest_kprobe") {
        return;
    }
    let r = run("gkp", Backend::Kprobe, false).expect("scenario");
    save(&r, "kprobe");
    eprintln!("notes: {:?}", r.notes);
    check_rx(&r, Backend::Kprobe);
    check_tx(&r);
    clean_analysis(&r);
}

/// `--stacks` with fentry: the flush stack shows which driver path
/// published (veth's NAPI poll -> xdp_do_flush -> __xsk_map_flush, where
/// xsk_flush is inlined), the receive stack the redirect.
#[test]
fn guest_stacks() {
    if !in_guest("guest_stacks") {
        return;
    }
    let r = common::run_with("gst", Backend::Fentry, false, true).expect("scenario");
    save(&r, "stacks");
    common::check_stacks(&r.trace, "kflush", &["__xsk_map_flush", "veth_poll"]);
    common::check_stacks(&r.trace, "krx", &["__xsk_rcv", "veth_poll"]);
    check_rx(&r, Backend::Fentry);
}

/// Plain kprobe events: `__xsk_rcv_zc_L7` per frame with the frame's chunk
/// and slot, `xsk_flush` publishing N, `xp_raw_get_data` per sent frame.
#[test]
fn guest_tracefs() {
    if !in_guest("guest_tracefs") {
        return;
    }
    let r = run("gtf", Backend::Tracefs, false).expect("scenario");
    save(&r, "tracefs");
    eprintln!("notes: {:?}", r.notes);
    assert!(r.trace.contains("xskdbg:1 probe backend=tracefs"));
    let rcv = kprobe_events(&r.trace, "__xsk_rcv_zc_L7");
    assert_eq!(rcv.len() as u64, N, "one __xsk_rcv_zc_L7 per frame");
    for (i, (ev, d)) in rcv.iter().zip(&r.got).enumerate() {
        assert_eq!(ev["slot"], i as u64, "slot of frame {i}: {ev:?}");
        assert_eq!(ev["len"], u64::from(d.len), "len of frame {i}: {ev:?}");
        if let Some(a) = ev.get("addr") {
            assert_eq!(a & !2047, d.addr & !2047, "chunk of frame {i}: {ev:?}");
        }
    }
    let flush = kprobe_events(&r.trace, "xsk_flush");
    assert!(!flush.is_empty(), "no xsk_flush events");
    assert_eq!(flush.last().unwrap()["prod"], N, "last published producer");
    let tx: Vec<u64> = kprobe_events(&r.trace, "xp_raw_get_data")
        .iter()
        .map(|e| e["addr"])
        .collect();
    let want: Vec<u64> = r.sent_tx.iter().map(|d| d.addr).collect();
    assert_eq!(tx, want, "xp_raw_get_data addresses");
    assert_eq!(r.completed.len(), T);
    clean_analysis(&r);
}

/// Where fentry loads, `auto` takes it, and nothing stays behind after drop.
#[test]
fn guest_auto_picks_fentry() {
    if !in_guest("guest_auto_picks_fentry") {
        return;
    }
    let tfs = xskdbg_tracefs::TraceFs::find().unwrap();
    let inst = tfs.create_instance("xskdbg-gauto").unwrap();
    let a = xskdbg_probes::attach(&xskdbg_probes::Request {
        backend: Backend::Auto,
        filters: xskdbg_probes::Filters::default(),
        buffer: inst.buffer(),
        group: xskdbg_probes::kprobe_events::GROUP.into(),
        stacks: false,
        output: Default::default(),
    })
    .unwrap();
    assert_eq!(a.backend(), Backend::Fentry, "notes: {:?}", a.notes());
    assert!(a.header_line().contains("backend=fentry") && a.header_line().contains("flush=exact"));
    assert!(a.probe_count() >= 7, "{} probes", a.probe_count());
    drop(a);
    assert_eq!(
        xskdbg_probes::leftovers().unwrap(),
        vec!["instance xskdbg-gauto".to_string()]
    );
    inst.remove().unwrap();
    assert!(xskdbg_probes::leftovers().unwrap().is_empty());
}

/// What a SIGKILLed run leaves (an instance, an enabled kprobe event of the
/// project group) is found and removed by `detach --all`.
#[test]
fn guest_detach_all_removes_leftovers() {
    if !in_guest("guest_detach_all_removes_leftovers") {
        return;
    }
    let root = std::path::Path::new("/sys/kernel/tracing");
    std::fs::create_dir(root.join("instances/xskdbg-left")).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("kprobe_events"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"p:xskdbg/left_over __xsk_rcv_zc xs=%di:x64").unwrap();
    drop(f);
    std::fs::write(
        root.join("instances/xskdbg-left/events/xskdbg/left_over/enable"),
        "1",
    )
    .unwrap();
    let left = xskdbg_probes::leftovers().unwrap();
    assert_eq!(
        left,
        vec![
            "instance xskdbg-left".to_string(),
            "kprobe event xskdbg/left_over".to_string()
        ]
    );
    let removed = xskdbg_probes::detach_all().unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(xskdbg_probes::leftovers().unwrap().is_empty());
    assert!(!std::fs::read_to_string(root.join("kprobe_events"))
        .unwrap()
        .contains("xskdbg"));
}

/// What `xskdbg doctor` asks: on a kernel with function probes every
/// backend loads (attaching nothing), with its real programs.
#[test]
fn guest_try_load() {
    if !in_guest("guest_try_load") {
        return;
    }
    for b in Backend::AUTO_ORDER {
        let l = xskdbg_probes::try_load(b).unwrap_or_else(|e| panic!("{b}: {e}"));
        eprintln!("{b}: {} {:?}", l.what, l.notes);
        let want = if b == Backend::Tracefs {
            "kprobe events defined from BTF offsets (not written)"
        } else {
            "BPF programs loaded (not attached)"
        };
        assert!(l.what.ends_with(want), "{b}: {l:?}");
    }
    assert!(xskdbg_probes::leftovers().unwrap().is_empty());
}

/// Boots Debian's 6.1 kernel once and runs every `guest_*` test inside.
#[test]
fn guest_runs_every_backend() {
    if std::env::var(GUEST_ENV).is_ok() {
        return; // already in the guest
    }
    if !common::require("guest_runs_every_backend", &[common::Cap::Guest]) {
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let name = exe
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();
    let out = std::env::temp_dir().join(format!("xskdbg-probes-vm-{}", std::process::id()));
    let mut spec = xskdbg_vmtest::VmSpec::new(&out);
    // Under TCG on a busy 2-core host one guest test took up to ~40 s; the
    // limit only guards against a hang.
    spec.timeout = std::time::Duration::from_secs(1500);
    // One vCPU: enabling a tracepoint patches kernel text with an IPI to
    // every other CPU, and under TCG on a loaded 2-core host a 2-vCPU guest
    // was seen stuck there for 20 minutes (soft lockup in
    // text_poke_bp_batch). Nothing here needs a second CPU; the soak's VM
    // tests are where two CPUs race.
    spec.vcpus = 1;
    spec.binaries.push(exe.clone().into());
    spec.env.push((GUEST_ENV.into(), "1".into()));
    spec.env.push(("RUST_BACKTRACE".into(), "1".into()));
    for t in GUEST_TESTS {
        spec.commands
            .push(format!("{name} --exact {t} --test-threads=1 --nocapture").into());
    }
    let outcome = match xskdbg_vmtest::run(&spec) {
        Ok(o) => o,
        Err(e) => panic!("the qemu guest did not run: {e}"),
    };
    let mut failed = Vec::new();
    for c in &outcome.commands {
        eprintln!(
            "guest: {} -> {:?}\n--- stderr ---\n{}",
            c.command,
            c.exit_code,
            String::from_utf8_lossy(&c.stderr)
        );
        if !c.success() {
            failed.push(format!(
                "{}: exit {:?}\n{}\n{}",
                c.command,
                c.exit_code,
                String::from_utf8_lossy(&c.stdout),
                String::from_utf8_lossy(&c.stderr)
            ));
        }
    }
    assert_eq!(
        outcome.commands.len(),
        GUEST_TESTS.len(),
        "every guest test ran"
    );
    assert!(
        failed.is_empty(),
        "guest tests failed:\n{}",
        failed.join("\n")
    );
    let _ = std::fs::remove_dir_all(&out);
}
