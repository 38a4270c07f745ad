//! The conformance corpus's fixtures (`fixtures/traces/corpus/`, docs/CORPUS.md):
//! real traces of the kernel's own AF_XDP selftest (xskxceiver) recorded in
//! Debian's 6.1 and 6.12 guests with every probe backend. Every one of them is
//! a passing test, so each must analyze clean, read whole, with the kernel
//! receives its expected file names (a backend's receive line that stops
//! parsing would drop them to 0 and still be "clean").
//!
//! A trace whose expected file has `"pending": "why"` is a false finding the
//! corpus found and the analyzer does not fix yet: it must still be read
//! whole and never blamed on the kernel, and this test fails once it
//! analyzes clean, so that the `pending` entry is dropped with the fix.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/traces/corpus")
}

/// `(file name, NAME)` of every trace in the directory.
fn traces() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir())
        .expect("fixtures/traces/corpus")
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
fn every_corpus_trace_analyzes_clean_with_its_kernel_receives() {
    let traces = traces();
    // 6.1 and 6.12, four backends each.
    assert!(traces.len() >= 8, "{traces:?}");
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    for (file, name) in &traces {
        let path = dir().join(file);
        // The README names them by a brace pattern: KERNEL-{a,b,...}-REST.
        let (kernel, rest) = name.split_once('-').unwrap();
        let (backend, rest) = rest.split_once('-').unwrap();
        let listed = readme.contains(&format!("`{file}`"))
            || readme.lines().any(|l| {
                l.contains(&format!("`{kernel}-{{"))
                    && l.contains(&format!("}}-{rest}.txt`"))
                    && l.contains(backend)
            });
        assert!(listed, "{file} not in fixtures/traces/corpus/README.md");
        let expected: Value = serde_json::from_slice(
            &std::fs::read(dir().join(format!("{name}.expected.json")))
                .unwrap_or_else(|e| panic!("{name}.expected.json: {e}")),
        )
        .unwrap_or_else(|e| panic!("{name}.expected.json: {e}"));
        assert_eq!(expected["verdict"], "clean", "{name}: a passing test");
        let pending = expected["pending"].as_str();
        let o = Command::new(env!("CARGO_BIN_EXE_xskdbg"))
            .args(["analyze", "--json"])
            .arg(&path)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{file}: {e}: {}", String::from_utf8_lossy(&o.stderr)));
        if let Some(why) = pending {
            assert_eq!(
                o.status.code(),
                Some(1),
                "{file} analyzes clean now: drop \"pending\" from {name}.expected.json \
                 and the note in the README ({why})"
            );
            for f in report["findings"].as_array().unwrap() {
                assert_ne!(
                    f["verdict"], "kernel",
                    "{file}: a passing test's trace blamed on the kernel: {f:#}"
                );
            }
            assert_eq!(
                report["summary"]["lines_skipped"], expected["lines_skipped"],
                "{file}"
            );
            continue;
        }
        assert_eq!(
            o.status.code(),
            Some(0),
            "{file}: a passing xskxceiver test was given findings: {:#}",
            report["findings"]
        );
        assert_eq!(report["findings"], serde_json::json!([]), "{file}");
        let summary = &report["summary"];
        assert_eq!(
            summary["lines_skipped"], expected["lines_skipped"],
            "{file}: {summary:#}"
        );
        let krx: u64 = summary["sockets"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no sockets: {summary:#}"))
            .iter()
            .map(|s| s["krx"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(
            Some(krx),
            expected["krx"].as_u64(),
            "{file}: kernel receives: {summary:#}"
        );
    }
}
