//! Feeding lines in batches (`Analyzer::feed_lines`, what the two-thread
//! pipeline of `analyze_reader` does) must give exactly the report that
//! feeding them one at a time gives: the timelines copy a batch's lines only
//! at its end, and a finding made in the middle of a batch gets its text
//! then. And a finding that `finish` could not judge (its evidence is older
//! than the moment every CPU's buffer had started) is not built at all, but
//! still counted.

use std::path::PathBuf;

use xskdbg_analyzer::parse::{parse_line, Line};
use xskdbg_analyzer::{analyze_reader, Analyzer, Kind, Options, Report};

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/traces");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/traces")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    all.sort();
    assert!(all.len() >= 8, "fixtures missing in {}", dir.display());
    all
}

/// `text`'s lines fed one at a time.
fn fed_one_by_one(text: &[u8], opts: &Options) -> Analyzer {
    let mut a = Analyzer::new(opts.clone());
    let raws: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    for (i, raw) in raws.iter().enumerate() {
        if i + 1 == raws.len() && raw.is_empty() {
            break;
        }
        a.feed_line(&parse_line(i as u64 + 1, raw));
    }
    a
}

/// The report of `text` with its lines fed one at a time.
fn one_by_one(text: &[u8], opts: &Options) -> Report {
    fed_one_by_one(text, opts).finish()
}

fn finish_checked(text: &[u8], opts: &Options) -> Result<Report, xskdbg_analyzer::Error> {
    fed_one_by_one(text, opts).finish_checked()
}

/// The report of `text` with its lines fed `chunk` at a time.
fn in_batches(text: &[u8], opts: &Options, chunk: usize) -> Report {
    let raws: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let n = if raws.last().is_some_and(|r| r.is_empty()) {
        raws.len() - 1
    } else {
        raws.len()
    };
    let lines: Vec<Line<'_>> = raws[..n]
        .iter()
        .enumerate()
        .map(|(i, raw)| parse_line(i as u64 + 1, raw))
        .collect();
    let mut a = Analyzer::new(opts.clone());
    for batch in lines.chunks(chunk) {
        a.feed_lines(batch);
    }
    a.finish()
}

fn option_sets(text: &[u8]) -> Vec<Options> {
    // `--history` of the first frame a finding names, to cover that path too.
    let base = Options::default();
    let first = one_by_one(text, &base);
    let mut with_history = base.clone();
    with_history.history = first.findings.iter().find_map(|f| {
        f.frame
            .as_deref()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
    });
    let mut short_context = base.clone();
    short_context.context = 3;
    vec![base, with_history, short_context]
}

#[test]
fn batches_of_any_size_report_like_single_lines() {
    for path in fixtures() {
        let text = std::fs::read(&path).unwrap();
        for opts in option_sets(&text) {
            let report = one_by_one(&text, &opts);
            let want = report.to_json();
            let mut streamed = Vec::new();
            report.write_json(&mut streamed).unwrap();
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                want,
                "{} written as it is made",
                path.display()
            );
            for chunk in [1, 2, 7, 64, 100_000] {
                let got = in_batches(&text, &opts, chunk).to_json();
                assert_eq!(got, want, "{} in batches of {chunk}", path.display());
            }
            // An input without entries is an error either way.
            let piped = analyze_reader(&text[..], &opts).map(|r| r.to_json());
            let single = finish_checked(&text, &opts).map(|r| r.to_json());
            match (piped, single) {
                (Ok(p), Ok(s)) => {
                    assert_eq!(p, s, "{} through analyze_reader", path.display());
                }
                (Err(p), Err(s)) => assert_eq!(p.to_string(), s.to_string()),
                (p, s) => panic!("{}: {p:?} against {s:?}", path.display()),
            }
        }
    }
}

/// CPU 0 receives frame 0x1000 twice; CPU 2's buffer starts only later,
/// so those receives cannot be judged (two rules fire on the second), and
/// their finding's timeline is never shown. Two more receives after the
/// cut: the first starts the frame afresh (its past is unknown), the second
/// is judged, with a timeline of the events around it.
const LATE_CPU: &str = "\
# tracer: nop
#
##### CPU 0 buffer started ####
           app-1       [000] ..... 100.000001: tracing_mark_write: xskdbg:1 umem umem=1 size=100000 chunk=1000 mode=aligned headroom=0 poison=deadbeefdeadbeef
           app-1       [000] ..... 100.000002: tracing_mark_write: xskdbg:1 sock sk=1:5:0 pool=1 umem=1 fd=5 label=q0
           app-1       [000] ..... 100.000003: tracing_mark_write: xskdbg:1 fill pool=1 sk=1:5:0 n=1 a=1000
          <idle>-0       [000] ..s1. 100.000004: bpf_trace_printk: xskdbg:1 krx xs=ffff1 sk=1:5:0 a=1000 len=40 slot=0
          <idle>-0       [000] ..s1. 100.000005: bpf_trace_printk: xskdbg:1 krx xs=ffff1 sk=1:5:0 a=1000 len=40 slot=1
##### CPU 2 buffer started ####
          <idle>-0       [002] ..s1. 100.000010: bpf_trace_printk: xskdbg:1 kpoll dev=veth0 work=0 budget=40
          <idle>-0       [000] ..s1. 100.000020: bpf_trace_printk: xskdbg:1 krx xs=ffff1 sk=1:5:0 a=1000 len=40 slot=2
          <idle>-0       [000] ..s1. 100.000021: bpf_trace_printk: xskdbg:1 krx xs=ffff1 sk=1:5:0 a=1000 len=40 slot=3
";

#[test]
fn findings_before_the_cut_are_counted_and_the_rest_keep_their_timelines() {
    let text = LATE_CPU.as_bytes();
    let opts = Options::default();
    let r = one_by_one(text, &opts);
    assert_eq!(r.summary.unjudged_before_complete, 2, "{}", r.to_json());
    assert_eq!(r.findings.len(), 1, "{}", r.to_json());
    let f = &r.findings[0];
    assert_eq!(f.kind, Kind::DuplicateInFlight);
    assert_eq!(f.line, 12);
    // Written out only now that it is reported.
    assert!(
        f.explanation.starts_with(
            "The kernel received frame 0x1000 (addr 0x1000) into RX of xs 0xffff1 on CPU 0 at \
             100.000021 a second time while its first copy was still on RX"
        ),
        "{}",
        f.explanation
    );
    assert_eq!(f.also.len(), 1, "{}", r.to_json());
    assert!(f.also[0]
        .explanation
        .starts_with("frame 0x1000 came out of RX but was not outstanding on FILL"));
    assert!(
        f.timeline
            .iter()
            .any(|t| t.line == 12 && t.highlighted && t.raw.contains("slot=3")),
        "timeline without its own line: {}",
        r.to_json()
    );
    assert!(f
        .timeline
        .iter()
        .all(|t| !t.raw.is_empty() && !t.ts.is_empty()));
    for chunk in [1, 3, 100] {
        assert_eq!(in_batches(text, &opts, chunk).to_json(), r.to_json());
    }
}
