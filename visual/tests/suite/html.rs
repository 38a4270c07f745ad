//! The HTML report without a browser: content, escaping, self-containment.

use xskdbg_visual::html::{self, Options};

use super::{analyze_file, analyze_text, fixture_reports, out_dir, stem, synthetic_trace};

fn render(
    report: &xskdbg_analyzer::Report,
    spool: &mut xskdbg_visual::Spool,
    name: &str,
) -> String {
    let out = out_dir("html").join(format!("{name}.html"));
    let opts = Options {
        input_name: format!("{name}.txt"),
        ..Default::default()
    };
    html::write_with(report, Some(spool), &opts, &out).expect("write html");
    std::fs::read_to_string(&out).expect("read html")
}

/// Nothing in the page may be fetched: no external URL in any attribute.
fn assert_self_contained(page: &str) {
    for bad in [
        "<link",
        "<img",
        "<iframe",
        "<object",
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
    ] {
        assert!(!page.contains(bad), "the page references {bad}");
    }
    // The only absolute URL is the SVG namespace name (an identifier, not fetched).
    let urls = page.matches("http://").count() + page.matches("https://").count();
    let ns = page.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(urls, ns, "only the SVG namespace may be a URL");
    assert_eq!(page.matches("<script").count(), 1, "one inline script");
}

#[test]
fn every_finding_has_verdict_explanation_and_a_timeline() {
    for (p, report, mut spool) in fixture_reports() {
        let page = render(&report, &mut spool, &stem(&p));
        assert_self_contained(&page);
        assert_eq!(
            page.matches("<svg class=\"timeline\"").count(),
            report.findings.len(),
            "{}",
            p.display()
        );
        for (i, f) in report.findings.iter().enumerate() {
            let sec = page
                .split(&format!("id=\"finding-{i}\""))
                .nth(1)
                .expect("finding section");
            let sec = sec.split("<section").next().unwrap_or(sec);
            assert!(
                sec.contains(&format!(">{}</span>", f.verdict.name())),
                "verdict of finding {i}"
            );
            let expl = f
                .explanation
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#39;");
            assert!(sec.contains(&expl), "explanation of finding {i}");
            // One lane per CPU of the finding.
            for c in &f.cpus {
                assert!(
                    sec.contains(&format!("data-cpu=\"{c}\"")),
                    "lane for CPU {c} in finding {i}"
                );
            }
            assert!(
                sec.contains("class=\"pt moment\""),
                "the moment is marked in finding {i}"
            );
            assert!(sec.contains(" hl\""), "highlighted events in finding {i}");
            // Hover text is the raw trace line.
            let raw = &f.timeline.first().expect("timeline").raw;
            let raw = raw
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#39;");
            assert!(
                sec.contains(&raw),
                "raw line in a hover text of finding {i}"
            );
        }
    }
}

#[test]
fn seed_race_draws_the_overlap_and_the_lifelines() {
    let p = super::fixtures_dir().join("seed-race.txt");
    let (report, mut spool) = analyze_file(&p);
    let page = render(&report, &mut spool, "seed-race-details");
    // CPU 0 and CPU 2 producing for the same socket at once.
    assert!(page.contains("class=\"overlap\""), "overlap band");
    assert!(page.contains("CPU 0 and CPU 2 are both producing for the RX ring of ingress q:1"));
    // The frame CPU 2 received and the app expected has a lifeline, which
    // ends with the app's expectation (it read the poison instead).
    assert!(page.contains("frame 0x1000800</text>"));
    assert!(page.contains("expected here"));
    // The spool adds what the analyzer's timeline stops before: the poisoned read.
    assert!(page.contains("0xdeadbeefdeadbeef"));
}

#[test]
fn clean_trace_says_clean_and_draws_nothing() {
    let (report, mut spool) = analyze_text(&synthetic_trace(20, false));
    assert!(
        report.findings.is_empty(),
        "{:?}",
        report.findings.first().map(|f| &f.explanation)
    );
    let page = render(&report, &mut spool, "clean");
    assert!(page.contains("verdict: <b>clean</b>"));
    assert!(!page.contains("<svg class=\"timeline\""));
    assert_self_contained(&page);
}

#[test]
fn hostile_trace_text_is_escaped() {
    // A label with markup, on a line that is part of a finding (FILL -> TX
    // without RX is an invalid transition).
    let text = "a-1 [000] ..... 5.000001: tracing_mark_write: <img src=x onerror=alert(1)> 0x1000 COMP -> FILL\n\
                a-1 [000] ..... 5.000002: tracing_mark_write: <script>alert(2)</script> 0x1000 FILL -> TX\n\
                a-1 [000] ..... 5.000003: tracing_mark_write: </svg>\"' 0x1000 TX -> COMP\n";
    let (report, mut spool) = analyze_text(text);
    let page = render(&report, &mut spool, "hostile");
    assert_self_contained(&page);
    assert!(!page.contains("<img src=x"));
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
    assert!(page.contains("&lt;/svg&gt;&quot;&#39;"));
}

#[test]
fn without_spool_the_report_timeline_is_drawn() {
    let p = super::fixtures_dir().join("seed-race.txt");
    let (report, _) = analyze_file(&p);
    let out = out_dir("html").join("seed-race-nospool.html");
    html::write(&report, &out).expect("write");
    let page = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        page.matches("<svg class=\"timeline\"").count(),
        report.findings.len()
    );
    assert!(page.contains("data-cpu=\"2\""));
}

#[test]
fn a_window_of_hundreds_of_events_is_drawn() {
    let (report, mut spool) = analyze_text(&synthetic_trace(300, true));
    assert!(!report.findings.is_empty());
    let page = render(&report, &mut spool, "synthetic");
    let fig = page
        .split("<svg class=\"timeline\"")
        .nth(1)
        .expect("a timeline");
    let fig = fig.split("</svg>").next().unwrap();
    let marks = fig.matches("class=\"pt ev").count();
    // 120 before + the moment + 60 after on the CPU lanes, plus the socket lane.
    assert!(marks >= 181, "{marks} marks");
    assert!(
        fig.contains("data-cpu=\"0\"")
            && fig.contains("data-cpu=\"1\"")
            && fig.contains("data-cpu=\"2\"")
    );
    assert!(
        fig.contains("class=\"seg s-fill\""),
        "FILL state on a lifeline"
    );
    // The app names the socket by key, the kernel by xs: both are this socket.
    assert!(
        !fig.contains("faded"),
        "every event belongs to the finding's socket"
    );
}

#[test]
fn many_cpus_keep_only_the_findings_lanes() {
    // Unrelated scheduler noise on 12 more CPUs, interleaved with the trace.
    let mut text = String::new();
    for (n, l) in synthetic_trace(300, true).lines().enumerate() {
        text.push_str(l);
        text.push('\n');
        if let Some(ts) = l.split("] ..... ").nth(1).and_then(|r| r.split(':').next()) {
            text.push_str(&format!(
                "          noise-9 [{:03}] ..... {ts}: sched_switch: prev_comm=a <b>\n",
                3 + n % 12
            ));
        }
    }
    let (report, mut spool) = analyze_text(&text);
    assert!(!report.findings.is_empty());
    let page = render(&report, &mut spool, "many-cpus");
    let fig = page
        .split("<svg class=\"timeline\"")
        .nth(1)
        .expect("a timeline");
    let fig = fig.split("</svg>").next().unwrap();
    let lanes = fig.matches("class=\"lane cpu\"").count();
    assert!(lanes <= 3, "{lanes} CPU lanes: the noise CPUs are left out");
    assert!(page.contains(
        "entries of other CPUs that touch neither this socket nor its frames are not shown"
    ));
    assert!(!fig.contains("sched_switch"));
}

#[test]
fn history_of_one_descriptor_gets_a_lifeline() {
    let p = super::fixtures_dir().join("seed-fifo.txt");
    let bytes = std::fs::read(&p).unwrap();
    let opts = xskdbg_analyzer::Options {
        history: Some(0x16ce900),
        ..Default::default()
    };
    let report = xskdbg_analyzer::analyze_reader(&bytes[..], &opts).expect("analyze");
    let h = report.history.as_ref().expect("history asked for");
    assert!(!h.events.is_empty());
    let out = out_dir("html").join("history.html");
    html::write(&report, &out).expect("write");
    let page = std::fs::read_to_string(&out).unwrap();
    let sec = page
        .split("id=\"history\"")
        .nth(1)
        .expect("a history section");
    assert!(sec.contains("History of 0x16ce900"));
    assert!(sec.contains("<svg class=\"timeline\""));
    assert!(sec.contains("frame 0x16ce800</text>"));
    // The frame's cycle in the seed trace: RX ring, RX, TX, COMP, FILL.
    for state in ["s-rxq", "s-rx", "s-tx", "s-fill"] {
        assert!(
            sec.contains(&format!("class=\"seg {state}\"")),
            "{state} on the lifeline"
        );
    }
    assert_eq!(sec.matches("<tr id=").count(), h.events.len());
}
