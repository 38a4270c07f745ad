//! The analyzer reads everything the recorder writes: the flight recorder's
//! memory ring (rendered as ftrace text) goes through `xskdbg_analyzer`,
//! which must report the same violation the recorder caught in-process,
//! and nothing on a clean run.

use xskdbg_analyzer::{analyze_reader, Options, Report};
use xskdbg_recorder::XdpDesc;

use super::common::{one_sock, seed_umem, Rig};

fn analyze(rig: &Rig) -> Report {
    let trace = rig.rec.dump();
    analyze_reader(&trace[..], &Options::default()).unwrap_or_else(|e| {
        panic!(
            "analyzer rejected the recorder's trace: {e}\n{}",
            String::from_utf8_lossy(&trace)
        )
    })
}

fn hex(s: &Option<String>) -> Option<u64> {
    let s = s.as_deref()?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// The analyzer parsed every line and reported the recorder's violation.
fn assert_same_violation(rig: &Rig) {
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    let v = &v[0];
    let report = analyze(rig);
    let trace = String::from_utf8_lossy(&rig.rec.dump()).into_owned();
    assert_eq!(
        report.summary.lines_skipped, 0,
        "analyzer skipped lines {:?} of:\n{trace}",
        report.summary.skipped_lines
    );
    let found = report
        .findings
        .iter()
        .find(|f| f.kind.name() == v.kind.as_str() && hex(&f.frame) == Some(v.frame));
    assert!(
        found.is_some(),
        "recorder caught {} but the analyzer reported {:#?}\ntrace:\n{trace}",
        v.line,
        report.findings
    );
}

#[test]
fn seed_fifo_violation_round_trips() {
    let rig = Rig::new(true);
    super::seed::replay_seed_fifo(&rig);
    assert_same_violation(&rig);
}

#[test]
fn seed_fill_to_tx_round_trips() {
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(&rig, seed_umem());
    p.fill(&[0x1940000]);
    s.tx(&[XdpDesc::new(26_476_800, 60)]);
    assert_same_violation(&rig);
}

#[test]
fn seed_comp_to_rx_round_trips() {
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(&rig, seed_umem());
    s.tx(&[XdpDesc::new(18_422_016, 60)]);
    p.comp(&[18_422_016]);
    s.rx(&[XdpDesc::new(18_422_016, 60)]);
    assert_same_violation(&rig);
}

#[test]
fn seed_tx_to_rx_round_trips() {
    let rig = Rig::new(true);
    let (_u, _p, s) = one_sock(&rig, seed_umem());
    s.tx(&[XdpDesc::new(3_154_176, 60)]);
    s.rx(&[XdpDesc::new(3_154_176, 60)]);
    assert_same_violation(&rig);
}

#[test]
fn poisoned_descriptor_round_trips() {
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(
        &rig,
        seed_umem().with_poison(xskdbg_recorder::DEFAULT_POISON),
    );
    p.fill(&[0xff0800, 0x1000800]);
    s.rx(&[XdpDesc::new(0xff0900, 0x42)]);
    s.rx(&[XdpDesc::new(xskdbg_recorder::DEFAULT_POISON, 0x42)]);
    let v = rig.violations();
    assert_eq!(v.len(), 1);
    let report = analyze(&rig);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind.name() == "poisoned_descriptor"),
        "{:#?}",
        report.findings
    );
}

#[test]
fn a_clean_run_has_no_findings() {
    let rig = Rig::new(true);
    let (u, p, s) = one_sock(&rig, seed_umem());
    let frames: Vec<u64> = (0..64u64).map(|i| 0x10_0000 + i * 2048).collect();
    let descs: Vec<XdpDesc> = frames.iter().map(|&a| XdpDesc::new(a + 256, 60)).collect();
    u.free(&frames);
    for _ in 0..5 {
        u.hold(&frames);
        p.fill(&frames);
        s.rx(&descs);
        s.tx(&descs);
        p.comp(&frames);
        u.free(&frames);
    }
    assert_eq!(rig.rec.violations(), 0);
    let report = analyze(&rig);
    assert_eq!(report.summary.lines_skipped, 0);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert!(report.summary.events > 30);
}

#[test]
fn recycling_the_recorder_explained_is_not_a_finding() {
    use std::sync::Arc;
    let rig = Rig::new(true);
    let st = Arc::new(super::common::HandStats::default());
    let u = rig.rec.umem(seed_umem()).unwrap();
    let p = u
        .pool(xskdbg_recorder::PoolConfig::new(super::common::SK))
        .unwrap();
    let s = p
        .socket(xskdbg_recorder::SockConfig::new(super::common::SK).stats(st.clone()))
        .unwrap();
    let f = [0x1000u64, 0x1800, 0x2000, 0x2800];
    p.fill(&f);
    st.0.lock().unwrap().rx_ring_full += 1;
    s.rx(&[XdpDesc::new(0x1900, 60), XdpDesc::new(0x2100, 60)]);
    s.rx(&[XdpDesc::new(0x1100, 60), XdpDesc::new(0x2900, 60)]);
    assert_eq!(rig.rec.violations(), 0);
    assert_eq!(rig.rec.recycled(), 1);
    let report = analyze(&rig);
    assert_eq!(report.summary.lines_skipped, 0);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

/// `wrong_pool`, `address_out_of_range` and `multibuffer_split` exist only in
/// the recorder (docs/TRACE-FORMAT.md); the analyzer must still read every
/// line around them.
#[test]
fn recorder_only_kinds_parse_cleanly() {
    for (case, kind) in ["wrong_pool", "address_out_of_range", "multibuffer_split"]
        .into_iter()
        .enumerate()
    {
        let rig = Rig::new(true);
        let u = rig.rec.umem(seed_umem()).unwrap();
        let k2 = xskdbg_recorder::SockKey::new(0x2001, 5, 1);
        let p1 = u
            .pool(xskdbg_recorder::PoolConfig::new(super::common::SK))
            .unwrap();
        let p2 = u.pool(xskdbg_recorder::PoolConfig::new(k2)).unwrap();
        let s1 = p1
            .socket(xskdbg_recorder::SockConfig::new(super::common::SK))
            .unwrap();
        let s2 = p2.socket(xskdbg_recorder::SockConfig::new(k2)).unwrap();
        match case {
            0 => {
                p1.fill(&[0x1000]);
                s2.rx(&[XdpDesc::new(0x1100, 60)]);
            }
            1 => p1.fill(&[u64::MAX]),
            _ => {
                s1.tx(&[XdpDesc {
                    addr: 0x1000,
                    len: 60,
                    options: xskdbg_recorder::XDP_PKT_CONTD,
                }]);
                std::thread::scope(|sc| {
                    sc.spawn(|| s1.tx(&[XdpDesc::new(0x2000, 60)]));
                });
            }
        }
        let v = rig.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].kind.as_str(), kind);
        let report = analyze(&rig);
        assert_eq!(report.summary.lines_skipped, 0, "{kind}");
        assert!(report.summary.events >= 5, "{kind}");
    }
}
