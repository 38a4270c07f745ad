//! `xskdbg analyze` filters (`--socket`, `--task`, `--cpus`, `--since`,
//! `--until`, `--frame`) on the shipped fixtures: what each keeps, that the
//! whole trace is still judged (a finding whose evidence lies outside the
//! filter keeps its verdict and says so), and how bad values fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/traces")
        .join(name)
}

/// `$ xskdbg analyze ARGS... TRACE`
fn run(trace: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xskdbg"))
        .arg("analyze")
        .args(args)
        .arg(fixture(trace))
        .env_remove("NO_COLOR")
        .output()
        .expect("run xskdbg")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `--json` report of `trace` with `args`, and the exit code.
fn report(trace: &str, args: &[&str]) -> (Value, i32) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = run(trace, &a);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            text(&o.stdout),
            text(&o.stderr)
        )
    });
    (v, o.status.code().expect("exit code"))
}

fn lines(r: &Value) -> Vec<u64> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect()
}

/// The finding as it is without filters, minus nothing: a filter must not
/// change a finding it reports.
fn same_finding(a: &Value, b: &Value) {
    for k in [
        "kind",
        "verdict",
        "rule",
        "line",
        "explanation",
        "consequences",
        "timeline",
    ] {
        assert_eq!(a[k], b[k], "{k} changed under the filter");
    }
}

/// Three findings, two sockets: `inner q:0` (line 268, 147.99 s, frame
/// 0x30000) and `outer q:0` (lines 298 and 2860, the latter at 148.36 s).
const TWO_SOCKETS: &str = "real/guest-rx-full-double-fill-fentry.txt.gz";

#[test]
fn unfiltered_reports_carry_no_filters_section() {
    let (r, code) = report(TWO_SOCKETS, &[]);
    assert_eq!(code, 1);
    assert!(r["summary"].get("filters").is_none());
    assert_eq!(lines(&r), [268, 298, 2860]);
}

#[test]
fn socket_by_label_key_or_xs() {
    let (all, _) = report(TWO_SOCKETS, &[]);
    let (r, code) = report(TWO_SOCKETS, &["--socket", "inner"]);
    assert_eq!(code, 1);
    assert_eq!(lines(&r), [268]);
    same_finding(&r["findings"][0], &all["findings"][0]);
    let fs = &r["summary"]["filters"];
    assert_eq!(fs["applied"], serde_json::json!({"socket": "inner"}));
    assert_eq!(fs["findings_total"], 3);
    assert_eq!(fs["findings_reported"], 1);
    assert_eq!(fs["verdict_reported"], "kernel");
    // The whole trace's verdict and count stay what was judged.
    assert_eq!(r["summary"]["findings"], all["summary"]["findings"]);
    assert_eq!(r["summary"]["verdict"], all["summary"]["verdict"]);

    // The key its `sock` line declared (12:1267:0 is `outer q:0`).
    let (r, _) = report(TWO_SOCKETS, &["--socket", "^12:1267:0$"]);
    assert_eq!(lines(&r), [298, 2860]);
    // Anchored on the label: `q:0$` is both.
    let (r, _) = report(TWO_SOCKETS, &["--socket", "q:0$"]);
    assert_eq!(lines(&r), [268, 298, 2860]);
    // The kernel's pointer.
    let xs = all["findings"][0]["xs"].as_str().unwrap().to_string();
    let (r, _) = report(TWO_SOCKETS, &["--socket", &xs]);
    assert_eq!(lines(&r), [268]);
    // Nothing matches: nothing reported, exit 0.
    let (r, code) = report(TWO_SOCKETS, &["--socket", "egress"]);
    assert_eq!(code, 0);
    assert!(lines(&r).is_empty());
    assert_eq!(r["summary"]["filters"]["verdict_reported"], "clean");
}

#[test]
fn since_and_until_are_trace_timestamps() {
    let (r, _) = report(TWO_SOCKETS, &["--since", "147.99", "--until", "147.995"]);
    assert_eq!(lines(&r), [268]);
    // After the first two findings' moments, but their consequences go on
    // past 148 s: reported for that evidence, with a note; the third has
    // none.
    let (r, _) = report(TWO_SOCKETS, &["--since", "148"]);
    assert_eq!(lines(&r), [268, 298, 2860]);
    let notes = r["summary"]["filters"]["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2);
    for (n, line) in notes.iter().zip([268, 298]) {
        assert_eq!(n["line"], line);
        let t = n["note"].as_str().unwrap();
        assert!(
            t.starts_with("reported for its evidence inside the filter"),
            "{t}"
        );
        assert!(
            t.contains(&format!("its moment, line {line} (CPU 0, 147.99")),
            "{t}"
        );
    }
    let (r, _) = report(TWO_SOCKETS, &["--until", "147.5"]);
    assert!(lines(&r).is_empty());
    // Combined with --socket: all must hold.
    let (r, _) = report(TWO_SOCKETS, &["--socket", "outer", "--until", "148"]);
    assert_eq!(lines(&r), [298]);
}

#[test]
fn frame_keeps_its_findings_and_shows_its_life() {
    let (r, code) = report(TWO_SOCKETS, &["--frame", "0x30000"]);
    assert_eq!(code, 1);
    assert_eq!(lines(&r), [268]);
    // Any address inside the chunk names the frame.
    let (r2, _) = report(TWO_SOCKETS, &["--frame", "0x30100"]);
    assert_eq!(lines(&r2), [268]);
    let h = &r["history"];
    assert_eq!(h["frame"], "0x30000");
    assert!(!h["events"].as_array().unwrap().is_empty());
    assert_eq!(
        r["summary"]["filters"]["applied"],
        serde_json::json!({"frame": "0x30000"})
    );
    // The frame's life inside the time filter only.
    let (r3, _) = report(TWO_SOCKETS, &["--frame", "0x30000", "--until", "147.99"]);
    for e in r3["history"]["events"].as_array().unwrap() {
        assert!(e["ts_ns"].as_u64().unwrap() <= 147_990_000_000, "{e}");
    }
    assert!(
        r3["history"]["events"].as_array().unwrap().len() < h["events"].as_array().unwrap().len()
    );
}

/// The seed story's race: the moment is CPU 2's receive (line 2, task
/// iperf2-1217); the evidence is CPU 0's section (lines 1, 3, flowtrackd)
/// and the poisoned read on CPU 0 (line 6).
const RACE: &str = "seed-race.txt";

#[test]
fn a_filter_that_excludes_the_evidence_keeps_the_verdict_and_says_so() {
    let (all, _) = report(RACE, &[]);
    // Only CPU 2: the moment is inside, CPU 0's section is not.
    let (r, code) = report(RACE, &["--cpus", "2"]);
    assert_eq!(code, 1);
    assert_eq!(lines(&r), [2]);
    same_finding(&r["findings"][0], &all["findings"][0]);
    assert_eq!(r["findings"][0]["verdict"], "kernel");
    let note = &r["summary"]["filters"]["notes"][0];
    assert_eq!(note["finding"], 1);
    let n = note["note"].as_str().unwrap();
    assert!(n.starts_with("evidence outside the filter"), "{n}");
    assert!(n.contains("line 3 (CPU 0, 609766.698528)"), "{n}");
    // The human report says it under the finding.
    let o = run(RACE, &["--cpus", "2", "--color", "never"]);
    let t = text(&o.stdout);
    assert!(t.contains("  filter: evidence outside the filter"), "{t}");
    assert!(
        t.contains("filters: --cpus 2 — 1 of 1 findings reported (kernel)"),
        "{t}"
    );
    assert!(t.contains("whole trace: 1 finding; verdict: KERNEL"), "{t}");
}

#[test]
fn a_finding_whose_moment_is_outside_is_reported_for_its_evidence() {
    let (all, _) = report(RACE, &[]);
    // After the race, but the poisoned read (line 6) is inside.
    let (r, code) = report(RACE, &["--since", "609766.6986"]);
    assert_eq!(code, 1);
    same_finding(&r["findings"][0], &all["findings"][0]);
    let n = r["summary"]["filters"]["notes"][0]["note"]
        .as_str()
        .unwrap();
    assert!(
        n.starts_with("reported for its evidence inside the filter (line 6"),
        "{n}"
    );
    assert!(
        n.contains("its moment, line 2 (CPU 2, 609766.698523), lies outside"),
        "{n}"
    );
    // Only CPU 0: the same, by CPU.
    let (r, _) = report(RACE, &["--cpus", "0"]);
    assert_eq!(lines(&r), [2]);
    // Nothing of it on CPU 1.
    let (r, code) = report(RACE, &["--cpus", "1"]);
    assert_eq!(code, 0);
    assert!(lines(&r).is_empty());
    assert_eq!(r["summary"]["filters"]["findings_total"], 1);
    assert_eq!(r["summary"]["verdict"], "kernel");
}

#[test]
fn task_is_matched_as_printed_with_its_pid() {
    let (r, _) = report(RACE, &["--task", "^iperf2-1217$"]);
    assert_eq!(lines(&r), [2]);
    assert!(r["summary"]["filters"]["notes"][0]["note"]
        .as_str()
        .unwrap()
        .contains("flowtrackd-9chS-142014"));
    let (r, _) = report(RACE, &["--task", "flowtrackd"]);
    let n = r["summary"]["filters"]["notes"][0]["note"]
        .as_str()
        .unwrap();
    assert!(n.starts_with("reported for its evidence"), "{n}");
    // Judged on the line's own task, even when no timeline shows it.
    let (r, _) = report(RACE, &["--task", "^iperf2-1217$", "--context", "0"]);
    assert_eq!(lines(&r), [2]);
    // (with --context 0 the timeline does not show the moment's line)
    assert!(!r["findings"][0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["line"] == 2));
    let (r, _) = report(RACE, &["--task", "flowtrackd", "--context", "0"]);
    let n = r["summary"]["filters"]["notes"][0]["note"]
        .as_str()
        .unwrap();
    assert!(n.starts_with("reported for its evidence"), "{n}");
    let (r, code) = report(RACE, &["--task", "^ksoftirqd"]);
    assert_eq!(code, 0);
    assert!(lines(&r).is_empty());
}

#[test]
fn bad_filter_values_exit_2_naming_the_option() {
    for (args, want) in [
        (&["--socket", "ingress("][..], "unclosed group"),
        (&["--task", "[a"][..], "unclosed character class"),
        (&["--cpus", "0-x"][..], "not a CPU number"),
        (&["--cpus", "3-1"][..], "is empty"),
        (&["--since", "noon"][..], "not a trace timestamp"),
        (&["--until", "1.2.3"][..], "not a trace timestamp"),
        (&["--frame", "zz"][..], "not a number"),
        (&["--since", "5", "--until", "4"][..], "the window is empty"),
    ] {
        let o = run(RACE, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(args[0]),
            "{args:?} must name the option: {err}"
        );
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_shows_the_filters_with_examples() {
    let o = Command::new(env!("CARGO_BIN_EXE_xskdbg"))
        .args(["analyze", "--help"])
        .output()
        .unwrap();
    let t = text(&o.stdout);
    for w in [
        "--socket <REGEX>",
        "--task <REGEX>",
        "--cpus <LIST>",
        "--since <TS>",
        "--until <TS>",
        "--frame <ADDR>",
        "xskdbg analyze --socket 'ingress q:1' trace.txt",
    ] {
        assert!(t.contains(w), "{w} missing from:\n{t}");
    }
}

#[test]
fn pictures_say_which_filters_applied_and_draw_only_what_is_inside() {
    let dir = tempfile::tempdir().unwrap();
    let (html, pf) = (dir.path().join("r.html"), dir.path().join("t.json"));
    let o = run(
        TWO_SOCKETS,
        &[
            "--socket",
            "inner",
            "--html",
            html.to_str().unwrap(),
            "--perfetto",
            pf.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<dt>filters</dt><dd>--socket inner · 1 of 3 findings shown"),
        "no filters in the HTML header"
    );
    let t: Value = serde_json::from_slice(&std::fs::read(&pf).unwrap()).unwrap();
    assert_eq!(t["otherData"]["filters"]["applied"]["socket"], "inner");
    let evs = t["traceEvents"].as_array().unwrap();
    let socket_tracks: Vec<&str> = evs
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["pid"] == 2)
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert!(!socket_tracks.is_empty());
    assert!(
        socket_tracks.iter().all(|n| n.contains("inner")),
        "{socket_tracks:?}"
    );
    let findings = evs.iter().filter(|e| e["cat"] == "finding").count();
    assert_eq!(findings, 1);
    // Every CPU slice is an entry of the inner socket.
    for e in evs.iter().filter(|e| e["ph"] == "X" && e["pid"] == 1) {
        let raw = e["args"]["raw"].as_str().unwrap();
        assert!(!raw.contains("sk=12:1267:0"), "outer entry exported: {raw}");
    }
    // Unfiltered, no filters key.
    let o = run(TWO_SOCKETS, &["--perfetto", pf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let t: Value = serde_json::from_slice(&std::fs::read(&pf).unwrap()).unwrap();
    assert!(t["otherData"].get("filters").is_none());
}

#[cfg(feature = "stats")]
#[test]
fn tables_count_only_what_is_inside() {
    let all = run(TWO_SOCKETS, &["--stats"]);
    let one = run(TWO_SOCKETS, &["--stats", "--cpus", "1"]);
    let t = text(&one.stdout);
    // No entry of this trace is on CPU 1: the tables are empty of events.
    assert_ne!(text(&all.stdout), t);
    assert!(!t.contains("xskdbg-332"), "{t}");
}
