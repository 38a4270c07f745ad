//! Two UMEMs in one program (the kernel selftest's one UMEM per socket):
//! an address names a frame in each, so frame 0x0 of one UMEM going to TX
//! while frame 0x0 of the other sits on FILL is no double use; a double
//! use inside one UMEM still is, and is printed as the plain frame.

use xskdbg_analyzer::{analyze_reader, Options, Report, Verdict};

/// An ftrace file of these project lines, one microsecond apart on CPU 0
/// (`k:` lines are a drainer's, the rest the application's).
fn trace(lines: &[&str]) -> Vec<u8> {
    let mut t = String::from("# tracer: nop\n");
    for (i, l) in lines.iter().enumerate() {
        let (task, body) = match l.strip_prefix("k:") {
            Some(b) => ("xskdbg-drain0-9", b),
            None => ("app-7", *l),
        };
        t.push_str(&format!(
            "{task:>16} [000] ...1. 100.{:06}: tracing_mark_write: xskdbg:1 {body}\n",
            i + 1
        ));
    }
    t.into_bytes()
}

fn analyze(lines: &[&str]) -> Report {
    analyze_reader(&trace(lines)[..], &Options::default()).expect("analyze")
}

/// The declarations: UMEM 2 receives on 1:2:0 (pool 1), UMEM 3 sends on
/// 1:3:0 (pool 2), like xskxceiver's receiver and sender.
const DECLARE: [&str; 6] = [
    "umem umem=2 size=400000 chunk=1000 mode=aligned headroom=0",
    "pool pool=1 umem=2 sk=1:2:0",
    "sock sk=1:2:0 pool=1 umem=2 fd=3 label=rxer",
    "umem umem=3 size=400000 chunk=1000 mode=aligned headroom=0",
    "pool pool=2 umem=3 sk=1:3:0",
    "sock sk=1:3:0 pool=2 umem=3 fd=4 label=txer",
];

fn with_declarations(rest: &[&'static str]) -> Vec<&'static str> {
    DECLARE
        .iter()
        .copied()
        .chain(rest.iter().copied())
        .collect()
}

fn summary(r: &Report) -> Vec<(String, Verdict, Option<String>)> {
    r.findings
        .iter()
        .map(|f| (f.rule.clone(), f.verdict, f.frame.clone()))
        .collect()
}

#[test]
fn both_umems_using_frame_0_is_clean() {
    let r = analyze(&with_declarations(&[
        "fill pool=1 n=3 a=0,1000,2000",
        // The sender's frame 0x0 goes out and comes back, through a
        // completion that names only the kernel pool, then its free list.
        "tx sk=1:3:0 idx=0 n=1 d=0:40",
        "k:ktx kpool=ff02 a=0 len=40 at=peek",
        "k:krx xs=ff11 sk=1:2:0 a=0 len=40 slot=0 kpool=ff01 prod=0 fcons=1 mode=drv",
        "k:kflush xs=ff11 sk=1:2:0 prod=1",
        "k:kcomp xs=ff12 sk=1:3:0 kpool=ff02 n=1 a=0",
        "comp pool=2 n=1 a=0",
        "free umem=3 n=1 a=0",
        "rx sk=1:2:0 pool=1 idx=0 n=1 d=0:40 prod=1",
        "fill pool=1 n=1 a=0",
        // Again, the completion by pool only: its UMEM was learned above.
        "hold umem=3 n=1 a=0",
        "tx sk=1:3:0 idx=1 n=1 d=0:40",
        "k:kcomp kpool=ff02 n=1 a=0",
        "comp pool=2 n=1 a=0",
        // An old recorder's free line, without umem=: the frame the app
        // holds is the sender's.
        "free n=1 a=0",
    ]));
    assert_eq!(summary(&r), [], "{:#?}", r.findings);
    assert_eq!(format!("{:?}", r.summary.verdict), "Clean");
}

#[test]
fn a_double_use_inside_one_of_two_umems_is_still_the_applications() {
    let r = analyze(&with_declarations(&[
        "fill pool=1 n=3 a=0,1000,2000",
        "tx sk=1:3:0 idx=0 n=1 d=2000:40",
        "k:kcomp xs=ff12 sk=1:3:0 kpool=ff02 n=1 a=2000",
        "comp pool=2 n=1 a=2000",
        // The receiver sends its own UMEM's frame 0x2000, still on FILL.
        "tx sk=1:2:0 idx=0 n=1 d=2000:40",
    ]));
    let got = summary(&r);
    assert!(!got.is_empty(), "no finding");
    let f = &r.findings[0];
    assert_eq!(f.verdict, Verdict::Application, "{:#?}", r.findings);
    assert_eq!(f.frame.as_deref(), Some("0x2000"));
    assert_eq!(f.addr.as_deref(), Some("0x2000"));
    assert!(f.explanation.contains("frame 0x2000 "), "{}", f.explanation);
    // The UMEM's ordinal never shows: not in any frame, explanation or
    // timeline entry.
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("0x1000000002000"), "{json}");
    assert!(!json.contains("0x2000000002000"), "{json}");
    assert_eq!(format!("{:?}", r.summary.verdict), "Application");
}

#[test]
fn the_selftest_trace_with_two_umems_is_clean() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/traces/corpus/host-tracepoint-xskdbg-skb-SEND_RECEIVE_SINGLE_PKT.txt"
    );
    let text = std::fs::read(path).unwrap();
    let r = analyze_reader(&text[..], &Options::default()).unwrap();
    assert_eq!(summary(&r), [], "{:#?}", r.findings);
}

/// Well-formed lines of three UMEMs in any order: never a panic, and never
/// a UMEM's ordinal in a printed frame.
mod shuffled {
    use proptest::prelude::*;

    use super::*;

    const VOCABULARY: &[&str] = &[
        "umem umem=2 size=400000 chunk=1000 mode=aligned headroom=0",
        "umem umem=3 size=400000 chunk=1000 mode=aligned headroom=0",
        "umem umem=4 size=400000 chunk=1000 mode=aligned headroom=0",
        "pool pool=1 umem=2 sk=1:2:0",
        "pool pool=2 umem=3 sk=1:3:0",
        "sock sk=1:2:0 pool=1 umem=2 fd=3 label=rxer",
        "sock sk=1:3:0 pool=2 umem=3 fd=4 label=txer",
        "sock sk=1:4:0 pool=3 umem=4 fd=5",
        "fill pool=1 n=2 a=0,1000",
        "fill pool=3 n=1 a=0",
        "fill pool=9 n=1 a=1000",
        "tx sk=1:3:0 idx=0 n=1 d=0:40",
        "tx sk=1:2:0 idx=0 n=1 d=1000:40",
        "tx sk=1:9:0 idx=0 n=1 d=0:40",
        "comp pool=2 n=1 a=0",
        "comp pool=1 n=1 a=1000",
        "rx sk=1:2:0 pool=1 idx=0 n=1 d=0:40",
        "rx sk=1:4:0 idx=0 n=1 d=100:40",
        "free umem=3 n=1 a=0",
        "free n=1 a=1000",
        "hold umem=2 n=1 a=0",
        "hold umem=77 n=1 a=0",
        "audit umem=3 held=1 taken=1 hold_max=0 freelist=1 n=1 a=0 since=0 age_ms=5",
        "violation kind=duplicate_in_flight sk=1:3:0 pool=2 a=0 frame=0 from=tx to=tx",
        "k:krx xs=ff11 sk=1:2:0 a=0 len=40 slot=0 kpool=ff01 prod=0 fcons=1 mode=drv",
        "k:krx xs=ff13 a=0 len=40 slot=0",
        "k:kflush xs=ff11 sk=1:2:0 prod=1",
        "k:ktx kpool=ff02 a=0 len=40 at=peek",
        "k:kcomp xs=ff12 sk=1:3:0 kpool=ff02 n=1 a=0",
        "k:kcomp kpool=ff02 n=1 a=0",
        "k:kcomp kpool=ff77 n=1 a=1000",
    ];

    /// A hex number of 13 digits or more: a frame key with its ordinal
    /// (every address here is far below 2^48).
    fn has_ordinal(text: &str) -> bool {
        text.split("0x")
            .skip(1)
            .any(|t| t.chars().take_while(char::is_ascii_hexdigit).count() >= 13)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn any_order_is_judged_without_panic_or_ordinals(
            picks in prop::collection::vec(0..VOCABULARY.len(), 0..40)
        ) {
            let lines: Vec<&str> = picks.iter().map(|&i| VOCABULARY[i]).collect();
            // A trace of no entry at all is an input error, not a report.
            let Ok(r) = analyze_reader(&trace(&lines)[..], &Options::default()) else {
                prop_assert!(lines.is_empty());
                return Ok(());
            };
            let json = serde_json::to_string(&r).unwrap();
            prop_assert!(!has_ordinal(&json), "{}", json);
        }
    }
}
