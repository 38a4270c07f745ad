//! One finding's section: its verdict and facts, its timeline figure, the
//! related findings and the table of the entries drawn; and the
//! `--history` section, built the same way.

use std::fmt::Write as _;

use xskdbg_analyzer::Finding;

use super::events::{entries, focus, Ev};
use super::figure::{figure, Subject};
use super::text::{esc, verdict_class};
use super::{Ctx, Options};
use crate::model::parse_hex;

/// The section of finding `i`; `win` are the spooled entries around it, and
/// `draw` whether it gets a figure.
pub(super) fn finding(o: &mut String, i: usize, f: &Finding, win: &[Ev], draw: bool, ctx: &Ctx) {
    let _ = write!(
        o,
        "<section class=\"finding\" id=\"finding-{i}\"><h2>#{} {} <span class=\"badge {}\">{}</span></h2>",
        i + 1,
        f.kind.name(),
        verdict_class(f.verdict),
        f.verdict.name()
    );
    let _ = write!(o, "<p class=\"meta\">{}</p>", esc(&facts(f)));
    let _ = write!(o, "<p class=\"explanation\">{}</p>", esc(&f.explanation));

    let (evs, left_out) = focus(entries(f, win), f, ctx);
    if left_out > 0 {
        let _ = write!(
            o,
            "<p class=\"meta\">{left_out} entries of other CPUs that touch neither this socket nor its frames are not shown.</p>"
        );
    }
    if draw {
        if evs.is_empty() {
            o.push_str("<p class=\"empty\">No trace events were recorded around this finding.</p>");
        } else {
            figure(o, i, &Subject::of_finding(i, f, ctx), &evs, ctx);
        }
    }
    related(o, "Also at this moment", &f.also, 0);
    related(o, "Consequences", &f.consequences, f.consequences_omitted);
    table(o, i, &evs);
    o.push_str("</section>\n");
}

/// The finding's facts line: rule, line, time, CPUs, socket, address...
fn facts(f: &Finding) -> String {
    let mut meta = vec![
        format!("rule {}", f.rule),
        format!("line {}", f.line),
        format!("ts {}", f.ts),
    ];
    if !f.cpus.is_empty() {
        meta.push(format!(
            "CPUs {}",
            f.cpus
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(s) = &f.socket {
        meta.push(format!("socket {s}"));
    }
    if let Some(x) = &f.xs {
        meta.push(format!("xs {x}"));
    }
    if let Some(a) = &f.addr {
        meta.push(format!("addr {a}"));
    }
    if let Some(fr) = &f.frame {
        meta.push(format!("frame {fr}"));
    }
    if let Some(s) = f.slot {
        meta.push(format!("slot {s:#x}"));
    }
    meta.join(" · ")
}

/// `--history ADDR`: the descriptor's life as one lifeline (the last
/// `before + after` events of it; the table lists them all).
pub(super) fn history(
    o: &mut String,
    fi: usize,
    h: &xskdbg_analyzer::report::History,
    opts: &Options,
    ctx: &Ctx,
) {
    let _ = write!(
        o,
        "<section class=\"finding history\" id=\"history\"><h2>History of {} (frame {})</h2>",
        esc(&h.addr),
        esc(&h.frame)
    );
    let shown = opts.before + opts.after;
    let skip = h.events.len().saturating_sub(shown.max(1));
    let _ = write!(
        o,
        "<p class=\"meta\">{} events touch this frame{}{}.</p>",
        h.events.len() as u64 + h.omitted,
        if h.omitted > 0 {
            format!(" ({} past the analyzer's cap not listed)", h.omitted)
        } else {
            String::new()
        },
        if skip > 0 {
            format!("; the timeline shows the last {}", h.events.len() - skip)
        } else {
            String::new()
        }
    );
    let evs: Vec<Ev> = h.events.iter().map(Ev::from_entry).collect();
    let frame = parse_hex(&h.frame).map(|f| ctx.map.frame(f));
    let subject = Subject {
        moment: None,
        tag: String::new(),
        cpus: Vec::new(),
        frames: frame.into_iter().collect(),
        socket: None,
        what: format!("the history of {}", h.addr),
    };
    if !evs.is_empty() {
        figure(o, fi, &subject, &evs[skip..], ctx);
    }
    table(o, fi, &evs);
    o.push_str("</section>\n");
}

fn related(o: &mut String, title: &str, list: &[xskdbg_analyzer::report::Related], omitted: u64) {
    if list.is_empty() {
        return;
    }
    let _ = write!(o, "<h3>{}</h3><ul class=\"related\">", esc(title));
    for r in list {
        let _ = write!(
            o,
            "<li><b>{}</b> <span class=\"badge {}\">{}</span> line {} · {}{}<br>{}</li>",
            r.kind.name(),
            verdict_class(r.verdict),
            r.verdict.name(),
            r.line,
            esc(&r.ts),
            r.addr
                .as_deref()
                .map(|a| format!(" · addr {}", esc(a)))
                .unwrap_or_default(),
            esc(&r.explanation)
        );
    }
    if omitted > 0 {
        let _ = write!(o, "<li>… and {omitted} more</li>");
    }
    o.push_str("</ul>");
}

fn table(o: &mut String, i: usize, evs: &[Ev]) {
    if evs.is_empty() {
        return;
    }
    let t0 = evs.iter().filter_map(|e| e.ns).min();
    let open = if evs.len() <= 40 { " open" } else { "" };
    let _ = write!(
        o,
        "<details class=\"events\"{open}><summary>{} trace events</summary><table><thead><tr><th>line</th><th>CPU</th><th>ts</th><th>Δ µs</th><th>task</th><th>event</th><th>body</th></tr></thead><tbody>",
        evs.len()
    );
    for e in evs {
        let d = match (t0, e.ns) {
            (Some(a), Some(b)) => format!("{:.3}", (b.saturating_sub(a)) as f64 / 1000.0),
            _ => String::new(),
        };
        let _ = write!(
            o,
            "<tr id=\"f{i}-l{}\"{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"body\">{}</td></tr>",
            e.line,
            if e.hl { " class=\"hl\"" } else { "" },
            e.line,
            e.cpu,
            esc(&e.ts),
            d,
            esc(&e.task),
            esc(&e.name),
            esc(&e.body)
        );
    }
    o.push_str("</tbody></table></details>");
}
