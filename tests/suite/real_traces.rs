//! The real-trace fixtures of issues 13 and 17 (`fixtures/traces/real/`): their
//! expected outcomes are not asserted yet (PENDING.md), but the set must stay
//! usable: every trace listed in the manifest and the README, with its expected
//! file, small, and read by the analyzer without skipped lines.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/traces/real")
}

/// `(file name, NAME)` of every trace in the directory.
fn traces() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir())
        .expect("fixtures/traces/real")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|f| {
            let name = f
                .strip_suffix(".txt.gz")
                .or_else(|| f.strip_suffix(".txt"))?
                .to_string();
            Some((f, name))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_real_trace_is_listed_small_and_readable() {
    let traces = traces();
    assert!(traces.len() >= 13, "{traces:?}");
    let pending = std::fs::read_to_string(dir().join("PENDING.md")).unwrap();
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    for (file, name) in &traces {
        let path = dir().join(file);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 200_000, "{file}: {size} bytes; trim or gzip it");
        assert!(
            pending.contains(&format!("`{file}`")),
            "{file} not in PENDING.md"
        );
        assert!(
            readme.contains(&format!("`{file}`")),
            "{file} not in README.md"
        );
        let expected: Value = serde_json::from_slice(
            &std::fs::read(dir().join(format!("{name}.expected.json")))
                .unwrap_or_else(|e| panic!("{name}.expected.json: {e}")),
        )
        .unwrap_or_else(|e| panic!("{name}.expected.json: {e}"));
        let verdict = expected["verdict"].as_str().unwrap();
        assert!(
            verdict == "clean" || verdict == "application",
            "{name}: a clean program's or an application bug's trace: {verdict}"
        );
        assert_eq!(
            expected["exit_code"].as_i64(),
            Some(i64::from(verdict != "clean")),
            "{name}"
        );
        let o = Command::new(env!("CARGO_BIN_EXE_xskdbg"))
            .args(["analyze", "--json"])
            .arg(&path)
            .output()
            .unwrap();
        // Findings or not (that is PENDING.md's business), but read whole.
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{file}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            report["summary"]["lines_skipped"], expected["lines_skipped"],
            "{file}"
        );
        // A trace kept whole may be as short as the program's run (one
        // xskxceiver test); a cut one must still hold a run's worth.
        let whole = readme
            .lines()
            .any(|l| l.starts_with(&format!("| `{file}` (whole,")));
        let events = report["summary"]["events"].as_u64().unwrap();
        assert!(
            events > if whole { 30 } else { 300 },
            "{file}: {events} events"
        );
    }
}

#[test]
fn the_seed_probes_file_defines_the_seed_storys_events() {
    let text =
        std::fs::read_to_string(dir().join("seed-probes-debian-6.1.0-57.kprobe_events")).unwrap();
    let defs = xskdbg_soak::config::KprobeDef::parse_file(&text).unwrap();
    let events: Vec<&str> = defs.iter().map(|d| d.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "__xsk_rcv_zc_L7",
            "xp_raw_get_data",
            "xsk_flush",
            "xsk_flush_1"
        ]
    );
    // The analyzer reads what these events print as the seed's trace did.
    let seed = dir().join("guest-rx-full-seed-probes.txt");
    let trace = std::fs::read_to_string(seed).unwrap();
    assert!(trace.contains("__xsk_rcv_zc_L7: (__xsk_rcv_zc+0x3a/0xd0) addr=0x"));
    assert!(trace.contains("xsk_flush: (__xsk_map_flush+0x32/0xb0) xs=0x"));
}
