//! The SVG timeline of one finding (or of the `--history` descriptor): its
//! layout, computed once ([`Fig`]), then each part drawn by its module in
//! paint order: the lanes (`lanes`), producer sections (`sections`),
//! lifelines (`lifelines`), the moment and the marks (`marks`), the legend.

use std::fmt::Write as _;

use xskdbg_analyzer::parse::{parse_line, Line};
use xskdbg_analyzer::Finding;

use super::events::{finding_socket, implicated_frames, Ev};
use super::lanes::Lanes;
use super::legend::legend;
use super::lifelines::{lives, Life};
use super::scale::{Scale, L, PAD, PW, W};
use super::text::esc;
use super::{lanes, lifelines, marks, sections, Ctx};
use crate::model::{classify, Class, Mark};

/// What one figure is about: a finding, or the `--history` descriptor.
pub(super) struct Subject {
    /// The line of the moment to mark, if any.
    pub(super) moment: Option<u64>,
    /// The moment's tag (`concurrent_producer`).
    pub(super) tag: String,
    /// CPUs that get a lane even without entries.
    pub(super) cpus: Vec<u32>,
    /// Frames that get a lifeline.
    pub(super) frames: Vec<u64>,
    /// The socket whose lane and producer sections are drawn.
    pub(super) socket: Option<String>,
    /// For the SVG's accessible name.
    pub(super) what: String,
}

impl Subject {
    pub(super) fn of_finding(i: usize, f: &Finding, ctx: &Ctx) -> Subject {
        Subject {
            moment: Some(f.line),
            tag: f.kind.name().to_string(),
            cpus: f.cpus.clone(),
            frames: implicated_frames(f, ctx.map),
            socket: finding_socket(f, &ctx.socks),
            what: format!("finding {}", i + 1),
        }
    }
}

/// One figure, laid out: what every part of the drawing reads.
pub(super) struct Fig<'a> {
    /// The figure's number, for element ids and label rows.
    pub(super) fi: usize,
    /// The entries drawn, in trace order.
    pub(super) evs: &'a [Ev],
    /// How each entry is drawn.
    pub(super) classes: Vec<Class>,
    /// Each entry's socket, as the lanes name it.
    ev_sock: Vec<Option<String>>,
    /// The subject's socket: its lane and producer sections.
    pub(super) sock: Option<String>,
    /// The x axis.
    pub(super) x: Scale,
    /// Where each lane is.
    pub(super) lanes: Lanes,
    /// One lifeline per frame of the subject.
    pub(super) lives: Vec<Life>,
}

impl Fig<'_> {
    fn new<'a>(fi: usize, f: &Subject, evs: &'a [Ev], ctx: &Ctx) -> Fig<'a> {
        let classes: Vec<Class> = evs
            .iter()
            .map(|e| match parse_line(e.line, e.raw.as_bytes()) {
                Line::Event(ev) => classify(&ev.op, ev.name),
                _ => Class {
                    mark: Mark::Other,
                    label: e.name.clone(),
                    sock: None,
                    moves: Vec::new(),
                },
            })
            .collect();
        let ev_sock: Vec<Option<String>> = classes
            .iter()
            .map(|c| c.sock.as_ref().map(|s| ctx.socks.name(s)))
            .collect();
        let sock = f.socket.clone();
        // The socket gets a lane when it has entries here.
        let sock_lane = sock.is_some() && ev_sock.contains(&sock);
        let lives = lives(&f.frames, &classes, ctx.map);
        Fig {
            fi,
            evs,
            lanes: Lanes::new(evs, &f.cpus, sock_lane, lives.len()),
            x: Scale::new(evs),
            classes,
            ev_sock,
            sock,
            lives,
        }
    }

    /// Entry `i` belongs to the subject's socket.
    pub(super) fn ours(&self, i: usize) -> bool {
        self.sock.is_some() && self.ev_sock[i] == self.sock
    }
}

/// Draw the figure of `f` from `evs`.
pub(super) fn figure(o: &mut String, fi: usize, f: &Subject, evs: &[Ev], ctx: &Ctx) {
    let fig = Fig::new(fi, f, evs, ctx);
    open(o, &fig, f);
    // Lane backgrounds and names (outside the clip).
    lanes::draw(o, &fig);
    let _ = write!(o, "<g class=\"axis\" transform=\"translate(0,0)\"></g>");
    let _ = write!(o, "<g class=\"plot\" clip-path=\"url(#clip-{fi})\">");
    sections::draw(o, &fig, ctx.flush_known);
    lifelines::draw(o, &fig);
    marks::moment(o, &fig, f);
    marks::draw(o, &fig);
    o.push_str("</g>"); // plot
    o.push_str("</svg>");
    legend(o);
    o.push_str("</div>");
}

/// The zoom/pan tools, the SVG element with what the script needs to
/// rescale it, and the clip and hatch pattern the plot uses.
fn open(o: &mut String, fig: &Fig, f: &Subject) {
    let (fi, n, sc, height) = (fig.fi, fig.evs.len(), &fig.x, fig.lanes.height);
    let lines_attr: Vec<String> = fig.evs.iter().map(|e| e.line.to_string()).collect();
    let _ = write!(
        o,
        "<div class=\"fig\" id=\"fig-{fi}\"><div class=\"tools\"><button data-act=\"in\" title=\"zoom in\">+</button><button data-act=\"out\" title=\"zoom out\">−</button><button data-act=\"reset\" title=\"show everything\">reset</button><button data-act=\"mode\" title=\"switch between trace time and event order\">{}</button><span class=\"hint\">drag or shift+wheel to pan · Ctrl+wheel to zoom · double-click to reset · hover a mark for its trace line</span></div>",
        if sc.mode_time { "scale: time" } else { "scale: order" }
    );
    let _ = write!(
        o,
        "<svg class=\"timeline\" viewBox=\"0 0 {W} {height:.0}\" data-mode=\"{}\" data-l=\"{L}\" data-pw=\"{PW}\" data-pad=\"{PAD}\" data-n=\"{n}\" data-span=\"{}\" data-timeok=\"{}\" data-lines=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"timeline of {}\">",
        if sc.mode_time { "x" } else { "o" },
        if sc.time_ok { sc.span } else { 0.0 },
        u8::from(sc.time_ok),
        lines_attr.join(","),
        esc(&f.what)
    );
    let _ = write!(
        o,
        "<defs><clipPath id=\"clip-{fi}\"><rect x=\"{L}\" y=\"0\" width=\"{PW}\" height=\"{height:.0}\"/></clipPath><pattern id=\"hatch-{fi}\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#ffe3e3\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#fa5252\" stroke-width=\"2\"/></pattern></defs>"
    );
}
