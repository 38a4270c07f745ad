//! The Perfetto export against the trace-event format rules, and the
//! round trip of every finding.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;
use xskdbg_analyzer::Report;
use xskdbg_visual::perfetto::{self, Options, Window};
use xskdbg_visual::Spool;

use super::{analyze_file, analyze_text, fixture_reports, out_dir, stem, synthetic_trace};

/// Per track: B/E events as (ts, index, name, is_begin).
type BeTracks = BTreeMap<(u64, u64), Vec<(f64, usize, String, bool)>>;
/// Per track: X slices as (start, end, name, index in the file).
type XTracks = BTreeMap<(u64, u64), Vec<(f64, f64, String, usize)>>;

/// Per (cat, id): flow events as (ph, ts, track, index in the file).
type Flows = BTreeMap<(String, u64), Vec<(String, f64, (u64, u64), usize)>>;

/// Check a Chrome trace-event JSON document against the format's rules
/// (docs: "Trace Event Format", the JSON Object Format); returns the events.
pub fn validate(doc: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(doc).expect("the file is JSON");
    let evs = v
        .get("traceEvents")
        .and_then(Value::as_array)
        .expect("a traceEvents array")
        .clone();
    assert!(!evs.is_empty(), "no trace events");
    let mut thread_names: HashMap<(u64, u64), String> = HashMap::new();
    let mut process_names: HashMap<u64, String> = HashMap::new();
    // Per track: B/E in ts order; X slices as (start, end).
    let mut be: BeTracks = BTreeMap::new();
    let mut xs: XTracks = BTreeMap::new();
    let mut flows: Flows = BTreeMap::new();
    for (i, e) in evs.iter().enumerate() {
        let ph = e["ph"]
            .as_str()
            .unwrap_or_else(|| panic!("event {i} has no ph: {e}"));
        let name = e["name"]
            .as_str()
            .unwrap_or_else(|| panic!("event {i} has no name: {e}"));
        let pid = e["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("event {i} has no numeric pid: {e}"));
        let tid = e["tid"]
            .as_u64()
            .unwrap_or_else(|| panic!("event {i} has no numeric tid: {e}"));
        if ph == "M" {
            let arg = e["args"]["name"].as_str();
            match name {
                "thread_name" => {
                    thread_names.insert(
                        (pid, tid),
                        arg.expect("thread_name has args.name").to_string(),
                    );
                }
                "process_name" => {
                    process_names.insert(pid, arg.expect("process_name has args.name").to_string());
                }
                "thread_sort_index" | "process_sort_index" => {
                    assert!(
                        e["args"]["sort_index"].is_number(),
                        "sort index is a number: {e}"
                    );
                }
                other => panic!("unknown metadata event {other}"),
            }
            continue;
        }
        let ts = e["ts"]
            .as_f64()
            .unwrap_or_else(|| panic!("event {i} has no numeric ts: {e}"));
        assert!(ts >= 0.0, "negative ts: {e}");
        let track = (pid, tid);
        match ph {
            "X" => {
                let dur = e["dur"]
                    .as_f64()
                    .unwrap_or_else(|| panic!("X without dur: {e}"));
                assert!(dur >= 0.0, "negative dur: {e}");
                xs.entry(track)
                    .or_default()
                    .push((ts, ts + dur, name.to_string(), i));
            }
            "B" | "E" => be
                .entry(track)
                .or_default()
                .push((ts, i, name.to_string(), ph == "B")),
            "i" | "I" => {
                let s = e["s"].as_str().unwrap_or("t");
                assert!(["g", "p", "t"].contains(&s), "instant scope {s}: {e}");
            }
            "s" | "t" | "f" => {
                let id = e["id"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("flow event without id: {e}"));
                let cat = e["cat"]
                    .as_str()
                    .unwrap_or_else(|| panic!("flow event without cat: {e}"))
                    .to_string();
                if ph == "f" {
                    assert_eq!(
                        e["bp"].as_str(),
                        Some("e"),
                        "flow end binds to the enclosing slice: {e}"
                    );
                }
                flows
                    .entry((cat, id))
                    .or_default()
                    .push((ph.to_string(), ts, track, i));
            }
            other => panic!("unexpected ph {other}: {e}"),
        }
        assert!(
            thread_names.contains_key(&track),
            "track {track:?} has no thread_name before its first event {e}"
        );
        assert!(
            process_names.contains_key(&pid),
            "pid {pid} has no process_name before its first event"
        );
    }
    // B/E: matching, per track, in time order.
    for (track, mut list) in be {
        list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut stack: Vec<String> = Vec::new();
        for (ts, _, name, begin) in list {
            if begin {
                stack.push(name);
            } else {
                let open = stack
                    .pop()
                    .unwrap_or_else(|| panic!("E without B on {track:?} at {ts}"));
                assert_eq!(
                    open, name,
                    "E closes a different slice on {track:?} at {ts}"
                );
            }
        }
        assert!(stack.is_empty(), "unclosed B on {track:?}: {stack:?}");
    }
    // X slices on one track nest (never overlap partially).
    for (track, mut list) in xs.clone() {
        list.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut stack: Vec<f64> = Vec::new();
        for (s, e, name, _) in list {
            // Timestamps are decimal µs: compare with a tolerance below 1 ns.
            while stack.last().is_some_and(|&end| end <= s + 1e-4) {
                stack.pop();
            }
            if let Some(&end) = stack.last() {
                assert!(
                    e <= end + 1e-4,
                    "slice {name} [{s}, {e}] overlaps its neighbour ending at {end} on {track:?}"
                );
            }
            stack.push(e);
        }
    }
    // Flows: ids paired (one start, one finish, finish not before start), and
    // both ends inside a slice of their track so the viewer can bind them.
    for ((cat, id), list) in &flows {
        let starts: Vec<_> = list.iter().filter(|f| f.0 == "s").collect();
        let ends: Vec<_> = list.iter().filter(|f| f.0 == "f").collect();
        assert_eq!(
            (starts.len(), ends.len()),
            (1, 1),
            "flow {cat}/{id} is not one s + one f: {list:?}"
        );
        assert!(
            ends[0].1 >= starts[0].1,
            "flow {cat}/{id} ends before it starts"
        );
        for (ph, ts, track, at) in list {
            // Inside a slice of its track written earlier in the file: for
            // equal timestamps viewers bind in file order.
            let inside = xs.get(track).is_some_and(|v| {
                v.iter()
                    .any(|(s, e, _, si)| *s <= ts + 1e-4 && *ts <= e + 1e-4 && si < at)
            });
            assert!(
                inside,
                "flow {cat}/{id} {ph} at {ts} on {track:?} is not inside a slice"
            );
        }
    }
    evs
}

fn export(
    report: &Report,
    spool: &mut Spool,
    window: Window,
    out: &Path,
) -> (perfetto::Stats, Vec<Value>) {
    let opts = Options {
        window,
        input_name: "test".into(),
        ..Default::default()
    };
    let st = perfetto::write(report, spool, &opts, out).expect("export");
    let doc = std::fs::read_to_string(out).expect("read export");
    (st, validate(&doc))
}

/// Every finding of the report is an instant with its kind, verdict and line.
fn assert_findings_round_trip(report: &Report, evs: &[Value]) {
    let instants: Vec<&Value> = evs
        .iter()
        .filter(|e| e["ph"] == "i" && e["cat"] == "finding")
        .collect();
    assert_eq!(
        instants.len(),
        report.findings.len(),
        "one instant per finding"
    );
    for f in &report.findings {
        let hit = instants.iter().find(|e| {
            e["args"]["line"].as_u64() == Some(f.line)
                && e["args"]["kind"] == f.kind.name()
                && e["args"]["verdict"] == f.verdict.name()
                && e["args"]["explanation"] == f.explanation.as_str()
        });
        let e = hit.unwrap_or_else(|| {
            panic!(
                "finding {} at line {} is not in the export",
                f.kind.name(),
                f.line
            )
        });
        if let Some(ns) = f.ts_ns {
            let ts = e["ts"].as_f64().expect("ts");
            assert!(
                (ts - ns as f64 / 1000.0).abs() < 0.002,
                "finding instant at {ts} µs, finding at {ns} ns"
            );
        }
        assert!(e["name"].as_str().unwrap_or("").contains(f.kind.name()));
    }
}

#[test]
fn fixtures_export_valid_json_with_every_finding() {
    let dir = out_dir("perfetto");
    for (p, report, mut spool) in fixture_reports() {
        let out = dir.join(format!("{}.json", stem(&p)));
        let (st, evs) = export(&report, &mut spool, Window::All, &out);
        assert_eq!(
            st.entries,
            report.summary.events,
            "{}: every entry exported",
            p.display()
        );
        assert_findings_round_trip(&report, &evs);
        // A track per CPU the summary lists.
        for c in &report.summary.cpus {
            let name = format!("CPU {}", c.cpu);
            assert!(
                evs.iter()
                    .any(|e| e["name"] == "thread_name" && e["args"]["name"] == name.as_str()),
                "{}: no track for {name}",
                p.display()
            );
        }
    }
}

#[test]
fn seed_race_has_socket_track_states_and_a_flow_across_cpus() {
    let p = super::fixtures_dir().join("seed-race.txt");
    let (report, mut spool) = analyze_file(&p);
    assert!(!report.findings.is_empty(), "the seed race is a finding");
    let out = out_dir("perfetto").join("seed-race-details.json");
    let (_, evs) = export(&report, &mut spool, Window::All, &out);
    // The socket track joins the kernel's xs to the app's label.
    assert!(evs.iter().any(|e| e["name"] == "thread_name"
        && e["pid"] == 2
        && e["args"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("ingress q:1") && n.contains("0xffff90fd32693c00"))));
    // Frame 0x1000800 was received by CPU 2 and expected by the app on CPU 0.
    let frame_tid = evs
        .iter()
        .find(|e| {
            e["name"] == "thread_name" && e["pid"] == 3 && e["args"]["name"] == "frame 0x1000800"
        })
        .map(|e| e["tid"].clone())
        .expect("a track for frame 0x1000800");
    assert!(evs.iter().any(|e| e["ph"] == "X"
        && e["pid"] == 3
        && e["tid"] == frame_tid
        && e["name"] == "RX ring"));
    assert!(evs
        .iter()
        .any(|e| e["ph"] == "s" && e["name"] == "frame 0x1000800" && e["tid"] == 3));
    assert!(evs
        .iter()
        .any(|e| e["ph"] == "f" && e["name"] == "frame 0x1000800" && e["tid"] == 1));
    // The poison value is not a frame.
    assert!(!evs.iter().any(|e| e["args"]["name"]
        .as_str()
        .is_some_and(|n| n.contains("beef"))));
}

#[test]
fn synthetic_trace_states_flows_and_windows() {
    let text = synthetic_trace(300, true);
    let (report, mut spool) = analyze_text(&text);
    assert!(!report.findings.is_empty(), "the double fill is found");
    let dir = out_dir("perfetto");
    let (all, evs) = export(
        &report,
        &mut spool,
        Window::All,
        &dir.join("synthetic-all.json"),
    );
    assert_findings_round_trip(&report, &evs);
    for state in ["FILL", "RX ring", "RX", "TX", "COMP ring", "COMP"] {
        assert!(
            evs.iter()
                .any(|e| e["ph"] == "X" && e["cat"] == "state" && e["name"] == state),
            "no {state} slice"
        );
    }
    let flows = evs.iter().filter(|e| e["ph"] == "s").count();
    assert!(
        flows > 100,
        "frames cross CPUs on every packet: {flows} flows"
    );

    // N entries around each finding: fewer entries, still every finding.
    let (around, evs) = export(
        &report,
        &mut spool,
        Window::Around(20),
        &dir.join("synthetic-around.json"),
    );
    assert!(around.entries < all.entries / 4, "{around:?} vs {all:?}");
    assert!(around.entries >= 21);
    assert_findings_round_trip(&report, &evs);

    // A line range that ends before the first finding: no finding in it.
    let first = report.findings.iter().map(|f| f.line).min().unwrap();
    let (lines, evs) = export(
        &report,
        &mut spool,
        Window::Lines(1, first - 1),
        &dir.join("synthetic-lines.json"),
    );
    assert_eq!(lines.findings, 0);
    assert!(lines.entries > 0 && lines.entries < all.entries);
    assert!(!evs.iter().any(|e| e["cat"] == "finding"));

    // A time range in trace seconds.
    let w: Window = "time:5.000100-5.000400".parse().unwrap();
    let (t, _) = export(&report, &mut spool, w, &dir.join("synthetic-time.json"));
    assert!(t.entries > 0 && t.entries < all.entries, "{t:?}");
}

#[test]
fn untrusted_text_stays_inside_json_strings() {
    let text =
        "a-1 [000] ..... 5.000001: tracing_mark_write: \"},{\"ph\":\"B\" 0x1000 FILL -> RX\n\
                b-2 [001] ..... 5.000002: tracing_mark_write: x\\y\u{1}z 0x1000 RX -> FILL\n";
    let (report, mut spool) = analyze_text(text);
    let out = out_dir("perfetto").join("hostile.json");
    let (st, evs) = export(&report, &mut spool, Window::All, &out);
    assert_eq!(st.entries, 2);
    assert!(!evs.iter().any(|e| e["ph"] == "B"));
    assert!(evs.iter().any(|e| e["args"]["raw"]
        .as_str()
        .is_some_and(|r| r.contains("\"},{\"ph\":\"B\""))));
}

#[test]
fn output_is_replaced_atomically_and_errors_name_the_file() {
    let (report, mut spool) = analyze_text(&synthetic_trace(5, false));
    // Its own directory: other tests write there concurrently.
    let dir = out_dir("perfetto-atomic");
    let out = dir.join("atomic.json");
    std::fs::write(&out, "old").unwrap();
    export(&report, &mut spool, Window::All, &out);
    // No temporary files left next to it.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let bad = dir.join("no-such-dir").join("x.json");
    let err = perfetto::write(&report, &mut spool, &Options::default(), &bad)
        .unwrap_err()
        .to_string();
    // The message names the output and the cause, not the temporary file.
    assert!(
        err.starts_with(&format!("cannot write {}: ", bad.display())),
        "{err}"
    );
    assert!(
        err.contains("No such file or directory") && !err.contains(".tmp"),
        "{err}"
    );
}

#[test]
fn odd_numbers_do_not_break_the_export_or_the_page() {
    // Huge CPU numbers, time going backwards on a CPU, equal timestamps, a
    // counter clock mixed in, a giant address.
    let text = "a-1 [4294967295] ..... 5.000010: __xsk_rcv_zc_L7: (x) addr=0xffffffffffffffff len=0x4e xs=0x1 fq=0x2\n\
                a-1 [4294967295] ..... 5.000005: xsk_flush: (x) xs=0x1\n\
                b-2 [000] ..... 5.000005: tracing_mark_write: q 0xffffffffffffffff FILL -> RX\n\
                b-2 [000] ..... 5.000005: tracing_mark_write: q 0xffffffffffffffff RX -> TX\n\
                c-3 [001] ..... 123456789: tracing_mark_write: q 0x1000 TX -> RX\n\
                b-2 [000] ..... 5.000006: tracing_mark_write: q 0x1000 FILL -> RX\n";
    let (report, mut spool) = analyze_text(text);
    let dir = out_dir("perfetto");
    let (st, evs) = export(&report, &mut spool, Window::All, &dir.join("odd.json"));
    assert_eq!(st.entries, 6);
    assert_findings_round_trip(&report, &evs);
    assert!(evs.iter().any(|e| e["tid"].as_u64() == Some(4_294_967_296)));
    let out = dir.join("odd.html");
    xskdbg_visual::html::write_with(&report, Some(&mut spool), &Default::default(), &out)
        .expect("html");
}

/// Two exports of one trace are the same bytes: whatever the order hash
/// maps keep CPUs and frames in, slices closed together at the end of a
/// window are written sorted.
#[test]
fn two_exports_are_identical_bytes() {
    let text = synthetic_trace(200, true);
    let (report, mut spool) = analyze_text(&text);
    let dir = out_dir("perfetto-deterministic");
    for (name, w) in [
        ("all", Window::All),
        ("around", Window::Around(7)),
        ("lines", Window::Lines(40, 400)),
    ] {
        let (a, b) = (
            dir.join(format!("{name}-1.json")),
            dir.join(format!("{name}-2.json")),
        );
        export(&report, &mut spool, w, &a);
        // Each export builds its hash maps anew (new random keys).
        export(&report, &mut spool, w, &b);
        let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(a == b, "{name}: two exports of one trace differ");
    }
}

/// `Options::filter`: only the entries inside the filter, the filters in
/// `otherData`.
#[test]
fn filtered_export_keeps_the_entries_inside() {
    use xskdbg_analyzer::filter::{CpuList, Seen};
    use xskdbg_analyzer::Filter;
    let text = synthetic_trace(50, true);
    let (mut report, mut spool) = analyze_text(&text);
    let filter = Filter {
        cpus: Some(CpuList::new("1").unwrap()),
        ..Filter::default()
    };
    filter.apply(&mut report, &Seen::default());
    let dir = out_dir("perfetto-filtered");
    let out = dir.join("cpu1.json");
    let opts = Options {
        input_name: "test".into(),
        filter: Some(filter),
        ..Default::default()
    };
    let st = perfetto::write(&report, &mut spool, &opts, &out).expect("export");
    let doc = std::fs::read_to_string(&out).unwrap();
    let evs = validate(&doc);
    assert!(st.entries > 0);
    for e in evs.iter().filter(|e| e["ph"] == "X" && e["pid"] == 1) {
        assert_eq!(e["tid"], 2, "only CPU 1's track: {e}");
    }
    let v: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["otherData"]["filters"]["applied"]["cpus"], "1");
}
