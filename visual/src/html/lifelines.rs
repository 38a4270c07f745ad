//! Descriptor lifelines: per implicated frame, the states it goes through
//! (FILL, RX ring, RX, TX, COMP ring, COMP, HELD, FREE) as coloured segments,
//! and each entry that moves or mentions it as a point joined to the CPU lane
//! of that entry.

use std::fmt::Write as _;

use super::figure::Fig;
use super::lanes::LIFE_H;
use super::scale::{span_attrs, xattrs};
use super::text::{esc, seg_class, text_w};
use crate::model::{state_name, Class, Mapping, Mark, State};

/// A descriptor lifeline point.
struct LifePt {
    /// The entry's index.
    idx: usize,
    /// The state the entry moves the frame to; `None`: it only mentions it.
    state: Option<State>,
}

/// One frame's lifeline.
pub(super) struct Life {
    pub(super) frame: u64,
    pts: Vec<LifePt>,
}

/// The lifeline of each of `frames` through the entries classified as
/// `classes`.
pub(super) fn lives(frames: &[u64], classes: &[Class], map: Mapping) -> Vec<Life> {
    frames
        .iter()
        .map(|&fr| {
            let mut pts = Vec::new();
            for (i, c) in classes.iter().enumerate() {
                // One point per event: a state change wins over a mention.
                let mut hit: Option<Option<State>> = None;
                for &(a, st) in &c.moves {
                    if map.frame(a) == fr {
                        hit = Some(match (hit.flatten(), st) {
                            (_, Some(s)) => Some(s),
                            (prev, None) => prev,
                        });
                    }
                }
                if let Some(state) = hit {
                    pts.push(LifePt { idx: i, state });
                }
            }
            Life { frame: fr, pts }
        })
        .collect()
}

/// Every lifeline: its state segments, then its points.
pub(super) fn draw(o: &mut String, fig: &Fig) {
    for (k, life) in fig.lives.iter().enumerate() {
        let ly = fig.lanes.life_y(k) + LIFE_H / 2.0 + 4.0;
        segments(o, fig, life, ly);
        points(o, fig, life, ly);
    }
}

/// The frame's state from the plot's start to its end: unknown until the
/// first state change in the window, then one labelled segment per state.
fn segments(o: &mut String, fig: &Fig, life: &Life, ly: f64) {
    let (xs, sc) = (&fig.x.xs, &fig.x);
    let fr = life.frame;
    let changes: Vec<(usize, State)> = life
        .pts
        .iter()
        .filter_map(|p| p.state.map(|s| (p.idx, s)))
        .collect();
    // Before the first state change, the state is unknown in this window.
    let first = changes.first().map_or(sc.end, |&(i, _)| xs[i]);
    let _ = write!(
        o,
        "<rect class=\"seg s-unk\" {} x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"3\"><title>frame {fr:#x}: state not known in this window</title></rect>",
        span_attrs(sc.start, first),
        sc.cur(sc.start),
        ly - 1.5,
        (sc.cur(first) - sc.cur(sc.start)).max(0.0)
    );
    for (j, &(i, st)) in changes.iter().enumerate() {
        let a = xs[i];
        let b = changes.get(j + 1).map_or(sc.end, |&(i2, _)| xs[i2]);
        let label = state_name(fig.classes[i].mark, st);
        let _ = write!(
            o,
            "<rect class=\"seg {}\" {} x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" rx=\"2\"><title>{}</title></rect>",
            seg_class(label, st),
            span_attrs(a, b),
            sc.cur(a),
            ly - 5.0,
            (sc.cur(b) - sc.cur(a)).max(0.0),
            esc(&format!("frame {fr:#x} in state {label} from line {}", fig.evs[i].line))
        );
        let _ = write!(
            o,
            "<g class=\"pt sl\" {} data-x2=\"{:.1}\" data-o2=\"{:.1}\" data-w=\"{:.0}\" transform=\"translate({:.1},0)\"><text x=\"3\" y=\"{:.1}\">{label}</text></g>",
            xattrs(a),
            b.t,
            b.o,
            text_w(label, 10.0),
            sc.cur(a),
            ly - 8.0
        );
    }
}

/// A point per entry that moves or mentions the frame, joined to the entry's
/// CPU lane.
fn points(o: &mut String, fig: &Fig, life: &Life, ly: f64) {
    let (xs, sc, classes) = (&fig.x.xs, &fig.x, &fig.classes);
    let fr = life.frame;
    for p in &life.pts {
        let e = &fig.evs[p.idx];
        let Some(cy) = fig.lanes.cpu_y.get(&e.cpu) else {
            continue;
        };
        let cls = p.state.map_or("s-mention", |st| {
            seg_class(state_name(classes[p.idx].mark, st), st)
        });
        let _ = write!(
            o,
            "<g class=\"pt lp {cls}\" {} transform=\"translate({:.1},0)\" data-line=\"{}\"><line class=\"conn\" x1=\"0\" y1=\"{:.1}\" x2=\"0\" y2=\"{:.1}\"/><circle cx=\"0\" cy=\"{ly:.1}\" r=\"{}\"/>{}<title>{}</title></g>",
            xattrs(xs[p.idx]),
            sc.cur(xs[p.idx]),
            e.line,
            cy + 30.0,
            ly - 5.0,
            if p.state.is_some() { 5 } else { 4 },
            if p.state.is_none() && classes[p.idx].mark == Mark::Violation {
                format!("<text class=\"mention\" x=\"-7\" y=\"{:.1}\">expected here</text>", ly + 4.0)
            } else {
                String::new()
            },
            esc(&format!(
                "frame {fr:#x} {} by CPU {} at line {}\n{}",
                match p.state {
                    Some(s) => format!("→ {}", state_name(classes[p.idx].mark, s)),
                    None => "mentioned".to_string(),
                },
                e.cpu,
                e.line,
                e.raw
            ))
        );
    }
}
