//! Producer sections: per CPU, from its first receive for the subject's
//! socket to the flush or NAPI poll end that publishes it, drawn as a band in
//! the CPU's lane; where two CPUs' sections overlap, a hatched band across
//! the CPU lanes (an RX ring has a single producer).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::figure::Fig;
use super::lanes::{AXIS_H, CPU_H};
use super::scale::span_attrs;
use super::text::esc;
use crate::model::Mark;

/// One CPU's producer section: entry indices of its first receive and of
/// what published it (`None`: not published within the window).
struct Section {
    cpu: u32,
    start: usize,
    end: Option<usize>,
}

/// Draw the sections and their overlaps. Only when the window shows where
/// sections end (a flush or a NAPI poll end, and `flush_known`): without
/// them every receive would look like an unfinished section, and overlaps
/// would be claimed that the trace cannot show.
pub(super) fn draw(o: &mut String, fig: &Fig, flush_known: bool) {
    let Some(sname) = &fig.sock else {
        return;
    };
    let publishes = |i: usize| {
        fig.classes[i].mark == Mark::Poll || (fig.classes[i].mark == Mark::Flush && fig.ours(i))
    };
    if !(flush_known && (0..fig.evs.len()).any(publishes)) {
        return;
    }
    let sections = find(fig);
    bands(o, fig, sname, &sections);
    overlaps(o, fig, sname, &sections);
}

/// The sections in the order they are published, then the unpublished ones
/// by CPU.
fn find(fig: &Fig) -> Vec<Section> {
    let mut open: BTreeMap<u32, usize> = BTreeMap::new();
    let mut sections = Vec::new();
    for (i, e) in fig.evs.iter().enumerate() {
        let mine = fig.ours(i);
        match fig.classes[i].mark {
            Mark::Receive if mine => {
                open.entry(e.cpu).or_insert(i);
            }
            Mark::Flush if mine => {
                if let Some(start) = open.remove(&e.cpu) {
                    sections.push(Section {
                        cpu: e.cpu,
                        start,
                        end: Some(i),
                    });
                }
            }
            Mark::Poll => {
                if let Some(start) = open.remove(&e.cpu) {
                    sections.push(Section {
                        cpu: e.cpu,
                        start,
                        end: Some(i),
                    });
                }
            }
            _ => {}
        }
    }
    sections.extend(open.into_iter().map(|(cpu, start)| Section {
        cpu,
        start,
        end: None,
    }));
    sections
}

/// One band per section in its CPU's lane.
fn bands(o: &mut String, fig: &Fig, sname: &str, sections: &[Section]) {
    let (xs, sc, evs) = (&fig.x.xs, &fig.x, fig.evs);
    for sec in sections {
        let (a, b) = (xs[sec.start], sec.end.map_or(sc.end, |e| xs[e]));
        let Some(cy) = fig.lanes.cpu_y.get(&sec.cpu) else {
            continue;
        };
        let _ = write!(
            o,
            "<rect class=\"sect{}\" {} x=\"{:.1}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\" rx=\"3\"><title>{}</title></rect>",
            if sec.end.is_none() { " open" } else { "" },
            span_attrs(a, b),
            sc.cur(a),
            cy + 6.0,
            (sc.cur(b) - sc.cur(a)).max(0.0),
            CPU_H - 12.0,
            esc(&format!(
                "producer section of CPU {} for {}: first receive at line {}, {}",
                sec.cpu,
                sname,
                evs[sec.start].line,
                match sec.end {
                    Some(e) => format!("published (flush / poll end) at line {}", evs[e].line),
                    None => "not published within this window".to_string(),
                }
            ))
        );
    }
}

/// Overlaps between sections of different CPUs, in event order, as a band
/// across every CPU lane.
fn overlaps(o: &mut String, fig: &Fig, sname: &str, sections: &[Section]) {
    let (xs, sc, evs, fi) = (&fig.x.xs, &fig.x, fig.evs, fig.fi);
    let n = evs.len();
    let cpu_y = &fig.lanes.cpu_y;
    let cpu_top = cpu_y.values().next().copied().unwrap_or(AXIS_H);
    let cpu_bot = cpu_top + CPU_H * cpu_y.len() as f64;
    for (k, s1) in sections.iter().enumerate() {
        for s2 in &sections[k + 1..] {
            if s1.cpu == s2.cpu {
                continue;
            }
            let e1 = s1.end.unwrap_or(n);
            let e2 = s2.end.unwrap_or(n);
            let lo = s1.start.max(s2.start);
            let hi = e1.min(e2);
            if lo >= hi {
                continue;
            }
            let a = xs[lo];
            let b = if hi >= n { sc.end } else { xs[hi] };
            let _ = write!(
                o,
                "<rect class=\"overlap\" fill=\"url(#hatch-{fi})\" {} x=\"{:.1}\" y=\"{cpu_top:.0}\" width=\"{:.1}\" height=\"{:.0}\"><title>{}</title></rect>",
                span_attrs(a, b),
                sc.cur(a),
                (sc.cur(b) - sc.cur(a)).max(0.0),
                cpu_bot - cpu_top,
                esc(&format!(
                    "CPU {} and CPU {} are both producing for the RX ring of {} (lines {}..{}): a ring has a single producer",
                    s1.cpu, s2.cpu, sname, evs[lo].line, if hi >= n { evs[n - 1].line } else { evs[hi].line }
                ))
            );
        }
    }
}
