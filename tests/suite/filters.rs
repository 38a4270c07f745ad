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

/// Three findings on three sockets (fixtures/traces/README.md): `egress
/// q:0` (line 1207, 542812.659475, CPU 1, frame 0x45d800, application, its
/// consequences at lines 2340 and 2353, 542812.6614), `ingress q:1` (line
/// 2182, 542812.661126, CPU 2, application) and `ingress q:0` (line 2714,
/// 542812.662005, CPUs 1 and 2, frame 0xb6f000, kernel).
const THREE_SOCKETS: &str = "three-sockets.txt";

#[test]
fn unfiltered_reports_carry_no_filters_section() {
    let (r, code) = report(THREE_SOCKETS, &[]);
    assert_eq!(code, 1);
    assert!(r["summary"].get("filters").is_none());
    assert_eq!(lines(&r), [1207, 2182, 2714]);
}

#[test]
fn socket_by_label_key_or_xs() {
    let (all, _) = report(THREE_SOCKETS, &[]);
    let (r, code) = report(THREE_SOCKETS, &["--socket", "egress"]);
    assert_eq!(code, 1);
    assert_eq!(lines(&r), [1207]);
    same_finding(&r["findings"][0], &all["findings"][0]);
    let fs = &r["summary"]["filters"];
    assert_eq!(fs["applied"], serde_json::json!({"socket": "egress"}));
    assert_eq!(fs["findings_total"], 3);
    assert_eq!(fs["findings_reported"], 1);
    assert_eq!(fs["verdict_reported"], "application");
    // The whole trace's verdict and count stay what was judged.
    assert_eq!(r["summary"]["findings"], all["summary"]["findings"]);
    assert_eq!(r["summary"]["verdict"], all["summary"]["verdict"]);
    assert_eq!(r["summary"]["verdict"], "mixed");

    // The key its `sock` line declared (1:5:1 is `ingress q:1`).
    let (r, _) = report(THREE_SOCKETS, &["--socket", "^1:5:1$"]);
    assert_eq!(lines(&r), [2182]);
    // Anchored on the label: `q:0$` is two of them.
    let (r, _) = report(THREE_SOCKETS, &["--socket", "q:0$"]);
    assert_eq!(lines(&r), [1207, 2714]);
    let (r, _) = report(THREE_SOCKETS, &["--socket", "ingress"]);
    assert_eq!(lines(&r), [2182, 2714]);
    assert_eq!(r["summary"]["filters"]["verdict_reported"], "mixed");
    // The kernel's pointer.
    let xs = all["findings"][2]["xs"].as_str().unwrap().to_string();
    let (r, _) = report(THREE_SOCKETS, &["--socket", &xs]);
    assert_eq!(lines(&r), [2714]);
    assert_eq!(r["summary"]["filters"]["verdict_reported"], "kernel");
    // Nothing matches: nothing reported, exit 0.
    let (r, code) = report(THREE_SOCKETS, &["--socket", "outer"]);
    assert_eq!(code, 0);
    assert!(lines(&r).is_empty());
    assert_eq!(r["summary"]["filters"]["verdict_reported"], "clean");
}

#[test]
fn since_and_until_are_trace_timestamps() {
    let (r, _) = report(
        THREE_SOCKETS,
        &["--since", "542812.6594", "--until", "542812.6595"],
    );
    assert_eq!(lines(&r), [1207]);
    // After the first two findings' moments, but the first one's
    // consequences come later: reported for that evidence, with a note;
    // the second has none.
    let (r, _) = report(THREE_SOCKETS, &["--since", "542812.6613"]);
    assert_eq!(lines(&r), [1207, 2714]);
    let notes = r["summary"]["filters"]["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["line"], 1207);
    let t = notes[0]["note"].as_str().unwrap();
    assert!(
        t.starts_with("reported for its evidence inside the filter (line 2340"),
        "{t}"
    );
    assert!(
        t.contains("its moment, line 1207 (CPU 1, 542812.659475)"),
        "{t}"
    );
    let (r, _) = report(THREE_SOCKETS, &["--until", "542812.6"]);
    assert!(lines(&r).is_empty());
    // Combined with --socket: all must hold.
    let (r, _) = report(
        THREE_SOCKETS,
        &["--socket", "ingress", "--until", "542812.6615"],
    );
    assert_eq!(lines(&r), [2182]);
}

#[test]
fn frame_keeps_its_findings_and_shows_its_life() {
    let (r, code) = report(THREE_SOCKETS, &["--frame", "0xb6f000"]);
    assert_eq!(code, 1);
    assert_eq!(lines(&r), [2714]);
    // Any address inside the chunk names the frame.
    let (r2, _) = report(THREE_SOCKETS, &["--frame", "0xb6f100"]);
    assert_eq!(lines(&r2), [2714]);
    let h = &r["history"];
    assert_eq!(h["frame"], "0xb6f000");
    assert!(!h["events"].as_array().unwrap().is_empty());
    assert_eq!(
        r["summary"]["filters"]["applied"],
        serde_json::json!({"frame": "0xb6f000"})
    );
    // The frame's life inside the time filter only.
    let (r3, _) = report(
        THREE_SOCKETS,
        &["--frame", "0xb6f000", "--until", "542812.662"],
    );
    for e in r3["history"]["events"].as_array().unwrap() {
        assert!(e["ts_ns"].as_u64().unwrap() <= 542_812_662_000_000, "{e}");
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
        THREE_SOCKETS,
        &[
            "--socket",
            "egress",
            "--html",
            html.to_str().unwrap(),
            "--perfetto",
            pf.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<dt>filters</dt><dd>--socket egress · 1 of 3 findings shown"),
        "no filters in the HTML header"
    );
    let t: Value = serde_json::from_slice(&std::fs::read(&pf).unwrap()).unwrap();
    assert_eq!(t["otherData"]["filters"]["applied"]["socket"], "egress");
    let evs = t["traceEvents"].as_array().unwrap();
    let socket_tracks: Vec<&str> = evs
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["pid"] == 2)
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert!(!socket_tracks.is_empty());
    assert!(
        socket_tracks.iter().all(|n| n.contains("egress")),
        "{socket_tracks:?}"
    );
    let findings = evs.iter().filter(|e| e["cat"] == "finding").count();
    assert_eq!(findings, 1);
    // No CPU slice is an entry of an ingress socket.
    for e in evs.iter().filter(|e| e["ph"] == "X" && e["pid"] == 1) {
        let raw = e["args"]["raw"].as_str().unwrap();
        assert!(!raw.contains("sk=1:5:"), "ingress entry exported: {raw}");
    }
    // Unfiltered, no filters key.
    let o = run(THREE_SOCKETS, &["--perfetto", pf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let t: Value = serde_json::from_slice(&std::fs::read(&pf).unwrap()).unwrap();
    assert!(t["otherData"].get("filters").is_none());
}

#[cfg(feature = "stats")]
#[test]
fn tables_count_only_what_is_inside() {
    let all = run(THREE_SOCKETS, &["--stats"]);
    let one = run(THREE_SOCKETS, &["--stats", "--cpus", "0"]);
    let t = text(&one.stdout);
    // CPU 0 holds only the declarations and a few lines: the tables of
    // CPU 1's and 2's forwarders are not in them.
    assert_ne!(text(&all.stdout), t);
    assert!(
        text(&all.stdout).contains("xskfwd-tugn"),
        "{}",
        text(&all.stdout)
    );
    assert!(!t.contains("xskfwd-tugn"), "{t}");
}
