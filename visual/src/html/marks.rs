//! The marks: every entry on its CPU's lane (and the socket's entries again
//! on the socket's lane), shaped by what it is, with the raw trace line as
//! hover text; and the finding's moment as a red line across the figure.

use std::fmt::Write as _;

use super::figure::{Fig, Subject};
use super::lanes::AXIS_H;
use super::scale::xattrs;
use super::text::{ellipsize, esc, text_w};
use crate::model::Mark;

/// The subject's moment, when it is among the entries drawn.
pub(super) fn moment(o: &mut String, fig: &Fig, f: &Subject) {
    let evs = fig.evs;
    let Some(mi) = f.moment.and_then(|m| evs.iter().position(|e| e.line == m)) else {
        return;
    };
    let x = fig.x.xs[mi];
    let _ = write!(
        o,
        "<g class=\"pt moment\" {} transform=\"translate({:.1},0)\"><line x1=\"0\" y1=\"{:.0}\" x2=\"0\" y2=\"{:.0}\"/><text class=\"mtag\" x=\"4\" y=\"{:.0}\">{}</text><title>{}</title></g>",
        xattrs(x),
        fig.x.cur(x),
        AXIS_H - 4.0,
        fig.lanes.height - 4.0,
        AXIS_H - 5.0,
        esc(&format!("⚠ {} · line {}", f.tag, evs[mi].line)),
        esc(&format!("the finding's moment: line {} ({})", evs[mi].line, f.tag))
    );
}

/// Every entry's mark on its CPU lane; the socket's entries also on the
/// socket lane. Entries of other sockets are faded.
pub(super) fn draw(o: &mut String, fig: &Fig) {
    for (i, e) in fig.evs.iter().enumerate() {
        let Some(&cy) = fig.lanes.cpu_y.get(&e.cpu) else {
            continue;
        };
        let ours = fig.ours(i);
        let faded = fig.sock.is_some() && fig.classes[i].sock.is_some() && !ours;
        mark(o, fig, i, cy + 22.0, &format!("c{}", e.cpu), faded, true);
        if let (Some(sy), true) = (fig.lanes.sock_y, ours) {
            mark(o, fig, i, sy + 18.0, "s", false, false);
        }
    }
}

/// Entry `i`'s mark centred at height `cy`, with its label in label row
/// `row` (the script hides labels of one row that would overlap).
fn mark(o: &mut String, fig: &Fig, i: usize, cy: f64, row: &str, faded: bool, cpu_lane: bool) {
    let (fi, e, c, x) = (fig.fi, &fig.evs[i], &fig.classes[i], fig.x.xs[i]);
    let m = c.mark;
    let mut cls = format!("pt ev m-{}", m.name());
    if e.hl {
        cls.push_str(" hl");
    }
    if faded {
        cls.push_str(" faded");
    }
    let _ = write!(
        o,
        "<g class=\"{cls}\" {} transform=\"translate({:.1},0)\" data-line=\"{}\" data-row=\"{fi}\">",
        xattrs(x),
        fig.x.cur(x),
        e.line
    );
    let _ = write!(
        o,
        "<title>{}</title>",
        esc(&format!(
            "line {} · CPU {} · {} · {}\n{}",
            e.line, e.cpu, e.ts, c.label, e.raw
        ))
    );
    if e.moment {
        let _ = write!(
            o,
            "<circle class=\"halo\" cx=\"0\" cy=\"{cy:.1}\" r=\"15\"/>"
        );
    }
    if e.hl {
        let _ = write!(
            o,
            "<circle class=\"ring\" cx=\"0\" cy=\"{cy:.1}\" r=\"11\"/>"
        );
    }
    o.push_str(&glyph(m, cy));
    // Labels: CPU lanes alternate two rows below the mark; the script hides
    // labels that would overlap at the current zoom.
    let (text, ly, lrow) = if cpu_lane {
        let r = i % 2;
        (
            c.label.clone(),
            cy + 20.0 + 11.0 * r as f64,
            format!("{row}-{r}"),
        )
    } else {
        (
            format!("{} · cpu{}", c.label.split(' ').next().unwrap_or(""), e.cpu),
            cy + 22.0,
            row.to_string(),
        )
    };
    let text = ellipsize(&text, if e.hl { 48 } else { 34 });
    let _ = write!(
        o,
        "<text class=\"lbl\" x=\"0\" y=\"{ly:.1}\" data-w=\"{:.0}\" data-r=\"{fi}-{lrow}\">{}</text>",
        text_w(&text, 10.0),
        esc(&text)
    );
    o.push_str("</g>");
}

/// The shape of a mark centred at height `cy` (the legend draws the same
/// shapes at 0).
fn glyph(m: Mark, cy: f64) -> String {
    match m {
        Mark::Receive => format!(
            "<path d=\"M-6.5,{:.1} L6.5,{:.1} L0,{:.1} Z\"/>",
            cy - 6.0,
            cy - 6.0,
            cy + 6.0
        ),
        Mark::Flush => format!(
            "<rect x=\"-2.5\" y=\"{:.1}\" width=\"5\" height=\"20\" rx=\"1\"/>",
            cy - 10.0
        ),
        Mark::Transmit => format!(
            "<path d=\"M-6.5,{:.1} L6.5,{:.1} L0,{:.1} Z\"/>",
            cy + 6.0,
            cy + 6.0,
            cy - 6.0
        ),
        Mark::Complete => format!(
            "<path d=\"M0,{:.1} L6.5,{cy:.1} L0,{:.1} L-6.5,{cy:.1} Z\"/>",
            cy - 6.5,
            cy + 6.5
        ),
        Mark::RxDone => format!(
            "<rect x=\"-3.5\" y=\"{:.1}\" width=\"7\" height=\"7\"/>",
            cy - 3.5
        ),
        Mark::Poll => format!(
            "<rect x=\"-1\" y=\"{:.1}\" width=\"2\" height=\"16\"/>",
            cy - 8.0
        ),
        Mark::App => format!("<circle cx=\"0\" cy=\"{cy:.1}\" r=\"5.5\"/>"),
        Mark::Violation => format!(
            "<path d=\"M-6,{:.1} L6,{:.1} M6,{:.1} L-6,{:.1}\" class=\"x\"/>",
            cy - 6.0,
            cy + 6.0,
            cy - 6.0,
            cy + 6.0
        ),
        Mark::Other => format!("<circle cx=\"0\" cy=\"{cy:.1}\" r=\"3\"/>"),
    }
}
