//! The page shell: head (title, CSS, the offline-only policy), the summary
//! with the index of findings, one section per finding, the script.

use std::fmt::Write as _;

use xskdbg_analyzer::parse::FlushMode;
use xskdbg_analyzer::report::OverallVerdict;
use xskdbg_analyzer::Report;

use super::events::Ev;
use super::finding::{finding, history};
use super::text::{esc, overall_name, verdict_class};
use super::{Ctx, Options};
use crate::model::{Mapping, Sockets};

const CSS: &str = include_str!("../report.css");
const JS: &str = include_str!("../report.js");

/// Render the whole page. `windows[i]`, when present and non-empty, are the
/// spooled events around finding `i`.
pub(super) fn render(
    report: &Report,
    windows: &[Vec<Ev>],
    opts: &Options,
    socks: Sockets,
) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let title = if opts.input_name.is_empty() {
        "xskdbg report".to_string()
    } else {
        format!("xskdbg report: {}", opts.input_name)
    };
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // Nothing may be fetched: the report must open offline.
    o.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n");
    let _ = writeln!(o, "<title>{}</title>", esc(&title));
    let _ = writeln!(o, "<style>{CSS}</style></head><body>");
    let _ = writeln!(o, "<header><h1>{}</h1>", esc(&title));
    summary(&mut o, report);
    o.push_str("</header>\n<main>\n");
    let map = Mapping::from_report(report);
    let ctx = Ctx {
        map,
        socks,
        // `flush=none`: the probes could not see where RX publication happens.
        flush_known: report
            .summary
            .backend
            .as_ref()
            .is_none_or(|b| b.flush != FlushMode::None),
    };
    for (i, f) in report.findings.iter().enumerate() {
        let win = windows.get(i).map(Vec::as_slice).unwrap_or(&[]);
        finding(&mut o, i, f, win, i < opts.max_figures, &ctx);
    }
    if let Some(h) = &report.history {
        history(&mut o, report.findings.len(), h, opts, &ctx);
    }
    o.push_str("</main>\n");
    let _ = writeln!(o, "<script>{JS}</script>\n</body></html>");
    o
}

fn summary(o: &mut String, r: &Report) {
    let s = &r.summary;
    let (vname, vclass) = overall_name(s.verdict);
    let _ = write!(
        o,
        "<section class=\"summary\"><div class=\"verdict {vclass}\">verdict: <b>{vname}</b> · {} finding{}</div>",
        s.findings,
        if s.findings == 1 { "" } else { "s" }
    );
    if s.verdict == OverallVerdict::Instrumentation {
        o.push_str(
            "<p class=\"v-instr\">The recording is incomplete or wrong (see the instrumentation finding's fix): \
             fix it and record again before trusting the other findings.</p>",
        );
    }
    o.push_str("<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(o, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(&v));
    };
    fact(
        "lines",
        format!(
            "{} ({} entries, {} skipped)",
            s.lines, s.events, s.lines_skipped
        ),
    );
    if let Some(fs) = &s.filters {
        // The filters first: the page shows part of what was judged.
        fact(
            "filters",
            format!(
                "{} · {} of {} findings shown ({}) · the whole trace was judged",
                fs.applied.to_args(),
                fs.findings_reported,
                fs.findings_total,
                fs.verdict_reported
            ),
        );
        for n in &fs.notes {
            fact(&format!("finding {}", n.finding), n.note.clone());
        }
    }
    fact("frames", s.frames.to_string());
    fact(
        "CPUs",
        s.cpus
            .iter()
            .map(|c| {
                format!(
                    "{} ({} ev{})",
                    c.cpu,
                    c.events,
                    if c.buffer_started { ", wrapped" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    for sk in &s.sockets {
        fact(
            "socket",
            format!(
                "{} · xs {} · rx {} · krx {}",
                sk.socket,
                sk.xs.join(" "),
                sk.rx,
                sk.krx
            ),
        );
    }
    fact("chunk", s.chunk.note.clone());
    if let Some(b) = &s.backend {
        fact(
            "probes",
            format!(
                "{} · flush {:?}{}",
                b.backend,
                b.flush,
                b.kernel
                    .as_deref()
                    .map(|k| format!(" · kernel {k}"))
                    .unwrap_or_default()
            )
            .to_lowercase(),
        );
    }
    if let Some(c) = &s.complete_from {
        fact("judged from", format!("line {} ({})", c.line, c.ts));
    }
    if s.unjudged_before_complete > 0 {
        fact(
            "not judged",
            format!(
                "{} anomalies before every CPU's buffer had started",
                s.unjudged_before_complete
            ),
        );
    }
    if let (Some(a), Some(b)) = (s.entries_in_buffer, s.entries_written) {
        fact("entries", format!("{a} in buffer / {b} written"));
    }
    if s.lost_events > 0 {
        fact("lost events", s.lost_events.to_string());
    }
    if s.recycled_reorders > 0 {
        fact("recycled reorders", s.recycled_reorders.to_string());
    }
    o.push_str("</dl>");
    if !s.notes.is_empty() {
        o.push_str("<ul class=\"notes\">");
        for n in &s.notes {
            let _ = write!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul>");
    }
    if !r.findings.is_empty() {
        o.push_str("<ol class=\"index\">");
        for (i, f) in r.findings.iter().enumerate() {
            let _ = write!(
                o,
                "<li><a href=\"#finding-{i}\">{}</a> <span class=\"badge {}\">{}</span> line {} · {}</li>",
                f.kind.name(),
                verdict_class(f.verdict),
                f.verdict.name(),
                f.line,
                esc(&f.ts)
            );
        }
        o.push_str("</ol>");
    }
    o.push_str("</section>\n");
}
