//! The SVG timeline of one finding (or of the `--history` descriptor).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use xskdbg_analyzer::parse::{parse_line, Line};
use xskdbg_analyzer::Finding;

use super::events::{finding_socket, implicated_frames, Ev};
use super::legend::legend;
use super::text::{ellipsize, esc, seg_class, text_w};
use super::Ctx;
use crate::model::{classify, state_name, Class, Mark, State};

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

const W: f64 = 1200.0;
/// Left gutter for lane names.
const L: f64 = 178.0;
const R: f64 = 16.0;
const PW: f64 = W - L - R;
/// Inner padding of the plot so marks at the ends stay whole.
const PAD: f64 = 64.0;
const AXIS_H: f64 = 34.0;
const CPU_H: f64 = 62.0;
const SOCK_H: f64 = 50.0;
const LIFE_H: f64 = 42.0;
/// Both x positions of a moment: on the time scale and on the order scale.
#[derive(Clone, Copy)]
struct X {
    t: f64,
    o: f64,
}

fn xattrs(x: X) -> String {
    format!("data-x=\"{:.1}\" data-o=\"{:.1}\"", x.t, x.o)
}

fn span_attrs(a: X, b: X) -> String {
    format!(
        "data-x=\"{:.1}\" data-x2=\"{:.1}\" data-o=\"{:.1}\" data-o2=\"{:.1}\"",
        a.t, b.t, a.o, b.o
    )
}

struct Geo {
    mode_time: bool,
    cpu_y: BTreeMap<u32, f64>,
}

impl Geo {
    fn cur(&self, x: X) -> f64 {
        if self.mode_time {
            x.t
        } else {
            x.o
        }
    }
}

/// A descriptor lifeline point.
struct LifePt {
    idx: usize,
    state: Option<State>,
}

pub(super) fn figure(o: &mut String, fi: usize, f: &Subject, evs: &[Ev], ctx: &Ctx) {
    let (map, socks, flush_known) = (ctx.map, &ctx.socks, ctx.flush_known);
    let n = evs.len();
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

    // Scales.
    let inner = PW - 2.0 * PAD;
    let ns: Vec<Option<u64>> = evs.iter().map(|e| e.ns).collect();
    let t0 = ns.iter().flatten().min().copied();
    let t1 = ns.iter().flatten().max().copied();
    let time_ok = ns.iter().all(Option::is_some) && t0 < t1;
    let span = match (t0, t1) {
        (Some(a), Some(b)) if b > a => (b - a) as f64,
        _ => 1.0,
    };
    let xo = |i: usize| {
        if n <= 1 {
            L + PW / 2.0
        } else {
            L + PAD + inner * i as f64 / (n - 1) as f64
        }
    };
    let xs: Vec<X> = (0..n)
        .map(|i| {
            let t = match (time_ok, ns[i], t0) {
                (true, Some(v), Some(a)) => L + PAD + inner * (v - a) as f64 / span,
                _ => xo(i),
            };
            X { t, o: xo(i) }
        })
        .collect();
    // Time scale by default, unless most marks would sit on top of each other.
    let crowded = {
        let mut t: Vec<f64> = xs.iter().map(|x| x.t).collect();
        t.sort_by(f64::total_cmp);
        t.windows(2).filter(|w| w[1] - w[0] < 2.5).count()
    };
    let mode_time = time_ok && crowded * 2 <= n;
    let start = X {
        t: L + 6.0,
        o: L + 6.0,
    };
    let end = X {
        t: L + PW - 6.0,
        o: L + PW - 6.0,
    };

    // Lanes.
    let mut cpus: BTreeSet<u32> = evs.iter().map(|e| e.cpu).collect();
    cpus.extend(f.cpus.iter().copied());
    let mut y = AXIS_H;
    let mut cpu_y = BTreeMap::new();
    for c in &cpus {
        cpu_y.insert(*c, y);
        y += CPU_H;
    }
    let geo = Geo { mode_time, cpu_y };
    let sock_name = f.socket.clone();
    let ev_sock: Vec<Option<String>> = classes
        .iter()
        .map(|c| c.sock.as_ref().map(|s| socks.name(s)))
        .collect();
    let sock_events: Vec<usize> = match &sock_name {
        Some(s) => (0..n)
            .filter(|&i| ev_sock[i].as_deref() == Some(s.as_str()))
            .collect(),
        None => Vec::new(),
    };
    let sock_y = if sock_events.is_empty() {
        None
    } else {
        let v = y;
        y += SOCK_H;
        Some(v)
    };

    let frames = &f.frames;
    // Lifeline points per frame.
    let lives: Vec<(u64, Vec<LifePt>)> = frames
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
            (fr, pts)
        })
        .collect();
    let life_y0 = y;
    y += LIFE_H * lives.len() as f64;
    let height = y + 8.0;

    let lines_attr: Vec<String> = evs.iter().map(|e| e.line.to_string()).collect();
    let _ = write!(
        o,
        "<div class=\"fig\" id=\"fig-{fi}\"><div class=\"tools\"><button data-act=\"in\" title=\"zoom in\">+</button><button data-act=\"out\" title=\"zoom out\">−</button><button data-act=\"reset\" title=\"show everything\">reset</button><button data-act=\"mode\" title=\"switch between trace time and event order\">{}</button><span class=\"hint\">drag or shift+wheel to pan · Ctrl+wheel to zoom · double-click to reset · hover a mark for its trace line</span></div>",
        if mode_time { "scale: time" } else { "scale: order" }
    );
    let _ = write!(
        o,
        "<svg class=\"timeline\" viewBox=\"0 0 {W} {height:.0}\" data-mode=\"{}\" data-l=\"{L}\" data-pw=\"{PW}\" data-pad=\"{PAD}\" data-n=\"{n}\" data-span=\"{}\" data-timeok=\"{}\" data-lines=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"timeline of {}\">",
        if mode_time { "x" } else { "o" },
        if time_ok { span } else { 0.0 },
        u8::from(time_ok),
        lines_attr.join(","),
        esc(&f.what)
    );
    let _ = write!(
        o,
        "<defs><clipPath id=\"clip-{fi}\"><rect x=\"{L}\" y=\"0\" width=\"{PW}\" height=\"{height:.0}\"/></clipPath><pattern id=\"hatch-{fi}\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#ffe3e3\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#fa5252\" stroke-width=\"2\"/></pattern></defs>"
    );

    // Lane backgrounds and names (outside the clip).
    let t0_text = evs
        .iter()
        .find(|e| e.ns == t0 && t0.is_some())
        .map(|e| e.ts.clone());
    let _ = write!(
        o,
        "<text class=\"t0\" x=\"8\" y=\"20\">{}</text>",
        esc(&match t0_text {
            Some(t) => format!("t0 = {t} s"),
            None => "event order".to_string(),
        })
    );
    for (k, (c, cy)) in geo.cpu_y.iter().enumerate() {
        let _ = write!(
            o,
            "<g class=\"lane cpu\" data-cpu=\"{c}\"><rect class=\"lanebg {}\" x=\"0\" y=\"{cy:.0}\" width=\"{W}\" height=\"{CPU_H}\"/><text class=\"lname\" x=\"8\" y=\"{:.0}\">CPU {c}</text></g>",
            if k % 2 == 0 { "even" } else { "odd" },
            cy + 24.0
        );
    }
    if let (Some(sy), Some(sname)) = (sock_y, &sock_name) {
        let _ = write!(
            o,
            "<g class=\"lane sock\"><rect class=\"lanebg sockbg\" x=\"0\" y=\"{sy:.0}\" width=\"{W}\" height=\"{SOCK_H}\"/><text class=\"lname\" x=\"8\" y=\"{:.0}\">socket</text><text class=\"lsub\" x=\"8\" y=\"{:.0}\">{}</text></g>",
            sy + 20.0,
            sy + 35.0,
            esc(&ellipsize(sname, 26))
        );
    }
    for (k, (fr, _)) in lives.iter().enumerate() {
        let ly = life_y0 + LIFE_H * k as f64;
        let _ = write!(
            o,
            "<g class=\"lane life\"><rect class=\"lanebg lifebg\" x=\"0\" y=\"{ly:.0}\" width=\"{W}\" height=\"{LIFE_H}\"/><text class=\"lname\" x=\"8\" y=\"{:.0}\">frame {fr:#x}</text><text class=\"lsub\" x=\"8\" y=\"{:.0}\">descriptor lifeline</text></g>",
            ly + 18.0,
            ly + 32.0
        );
    }
    let _ = write!(o, "<g class=\"axis\" transform=\"translate(0,0)\"></g>");
    let _ = write!(o, "<g class=\"plot\" clip-path=\"url(#clip-{fi})\">");

    // Producer sections per CPU for the finding's socket, and their overlaps.
    // Only when the window shows where sections end (a flush or a NAPI poll
    // end): without them every receive would look like an unfinished
    // section, and overlaps would be claimed that the trace cannot show.
    let publishes = |i: usize| {
        classes[i].mark == Mark::Poll
            || (classes[i].mark == Mark::Flush && sock_name.is_some() && ev_sock[i] == sock_name)
    };
    let sections_known = flush_known && (0..n).any(publishes);
    if let (Some(sname), true) = (&sock_name, sections_known) {
        let mut open: BTreeMap<u32, usize> = BTreeMap::new();
        let mut sections: Vec<(u32, usize, Option<usize>)> = Vec::new();
        for i in 0..n {
            let mine = ev_sock[i].as_deref() == Some(sname.as_str());
            match classes[i].mark {
                Mark::Receive if mine => {
                    open.entry(evs[i].cpu).or_insert(i);
                }
                Mark::Flush if mine => {
                    if let Some(s) = open.remove(&evs[i].cpu) {
                        sections.push((evs[i].cpu, s, Some(i)));
                    }
                }
                Mark::Poll => {
                    if let Some(s) = open.remove(&evs[i].cpu) {
                        sections.push((evs[i].cpu, s, Some(i)));
                    }
                }
                _ => {}
            }
        }
        sections.extend(open.into_iter().map(|(c, s)| (c, s, None)));
        let ends = |&(_, s, e): &(u32, usize, Option<usize>)| (xs[s], e.map_or(end, |e| xs[e]));
        for sec in &sections {
            let (a, b) = ends(sec);
            let Some(cy) = geo.cpu_y.get(&sec.0) else {
                continue;
            };
            let _ = write!(
                o,
                "<rect class=\"sect{}\" {} x=\"{:.1}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\" rx=\"3\"><title>{}</title></rect>",
                if sec.2.is_none() { " open" } else { "" },
                span_attrs(a, b),
                geo.cur(a),
                cy + 6.0,
                (geo.cur(b) - geo.cur(a)).max(0.0),
                CPU_H - 12.0,
                esc(&format!(
                    "producer section of CPU {} for {}: first receive at line {}, {}",
                    sec.0,
                    sname,
                    evs[sec.1].line,
                    match sec.2 {
                        Some(e) => format!("published (flush / poll end) at line {}", evs[e].line),
                        None => "not published within this window".to_string(),
                    }
                ))
            );
        }
        // Overlaps between sections of different CPUs, in event order.
        let cpu_top = geo.cpu_y.values().next().copied().unwrap_or(AXIS_H);
        let cpu_bot = cpu_top + CPU_H * geo.cpu_y.len() as f64;
        for (k, s1) in sections.iter().enumerate() {
            for s2 in &sections[k + 1..] {
                if s1.0 == s2.0 {
                    continue;
                }
                let e1 = s1.2.unwrap_or(n);
                let e2 = s2.2.unwrap_or(n);
                let lo = s1.1.max(s2.1);
                let hi = e1.min(e2);
                if lo >= hi {
                    continue;
                }
                let a = xs[lo];
                let b = if hi >= n { end } else { xs[hi] };
                let _ = write!(
                    o,
                    "<rect class=\"overlap\" fill=\"url(#hatch-{fi})\" {} x=\"{:.1}\" y=\"{cpu_top:.0}\" width=\"{:.1}\" height=\"{:.0}\"><title>{}</title></rect>",
                    span_attrs(a, b),
                    geo.cur(a),
                    (geo.cur(b) - geo.cur(a)).max(0.0),
                    cpu_bot - cpu_top,
                    esc(&format!(
                        "CPU {} and CPU {} are both producing for the RX ring of {} (lines {}..{}): a ring has a single producer",
                        s1.0, s2.0, sname, evs[lo].line, if hi >= n { evs[n - 1].line } else { evs[hi].line }
                    ))
                );
            }
        }
    }

    // Lifelines: state segments, then points joined to their CPU lane.
    for (k, (fr, pts)) in lives.iter().enumerate() {
        let ly = life_y0 + LIFE_H * k as f64 + LIFE_H / 2.0 + 4.0;
        let changes: Vec<(usize, State)> = pts
            .iter()
            .filter_map(|p| p.state.map(|s| (p.idx, s)))
            .collect();
        // Before the first state change, the state is unknown in this window.
        let first = changes.first().map_or(end, |&(i, _)| xs[i]);
        let _ = write!(
            o,
            "<rect class=\"seg s-unk\" {} x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"3\"><title>frame {fr:#x}: state not known in this window</title></rect>",
            span_attrs(start, first),
            geo.cur(start),
            ly - 1.5,
            (geo.cur(first) - geo.cur(start)).max(0.0)
        );
        for (j, &(i, st)) in changes.iter().enumerate() {
            let a = xs[i];
            let b = changes.get(j + 1).map_or(end, |&(i2, _)| xs[i2]);
            let label = state_name(classes[i].mark, st);
            let _ = write!(
                o,
                "<rect class=\"seg {}\" {} x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" rx=\"2\"><title>{}</title></rect>",
                seg_class(label, st),
                span_attrs(a, b),
                geo.cur(a),
                ly - 5.0,
                (geo.cur(b) - geo.cur(a)).max(0.0),
                esc(&format!("frame {fr:#x} in state {label} from line {}", evs[i].line))
            );
            let _ = write!(
                o,
                "<g class=\"pt sl\" {} data-x2=\"{:.1}\" data-o2=\"{:.1}\" data-w=\"{:.0}\" transform=\"translate({:.1},0)\"><text x=\"3\" y=\"{:.1}\">{label}</text></g>",
                xattrs(a),
                b.t,
                b.o,
                text_w(label, 10.0),
                geo.cur(a),
                ly - 8.0
            );
        }
        for p in pts {
            let e = &evs[p.idx];
            let Some(cy) = geo.cpu_y.get(&e.cpu) else {
                continue;
            };
            let cls = p.state.map_or("s-mention", |st| {
                seg_class(state_name(classes[p.idx].mark, st), st)
            });
            let _ = write!(
                o,
                "<g class=\"pt lp {cls}\" {} transform=\"translate({:.1},0)\" data-line=\"{}\"><line class=\"conn\" x1=\"0\" y1=\"{:.1}\" x2=\"0\" y2=\"{:.1}\"/><circle cx=\"0\" cy=\"{ly:.1}\" r=\"{}\"/>{}<title>{}</title></g>",
                xattrs(xs[p.idx]),
                geo.cur(xs[p.idx]),
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

    // The violating moment.
    if let Some(mi) = f.moment.and_then(|m| evs.iter().position(|e| e.line == m)) {
        let x = xs[mi];
        let _ = write!(
            o,
            "<g class=\"pt moment\" {} transform=\"translate({:.1},0)\"><line x1=\"0\" y1=\"{:.0}\" x2=\"0\" y2=\"{:.0}\"/><text class=\"mtag\" x=\"4\" y=\"{:.0}\">{}</text><title>{}</title></g>",
            xattrs(x),
            geo.cur(x),
            AXIS_H - 4.0,
            height - 4.0,
            AXIS_H - 5.0,
            esc(&format!("⚠ {} · line {}", f.tag, evs[mi].line)),
            esc(&format!("the finding's moment: line {} ({})", evs[mi].line, f.tag))
        );
    }

    // Event marks on the CPU lanes and the socket lane.
    for (i, (e, c)) in evs.iter().zip(&classes).enumerate() {
        let Some(&cy) = geo.cpu_y.get(&e.cpu) else {
            continue;
        };
        let ours = sock_name.is_some() && ev_sock[i] == sock_name;
        let faded = sock_name.is_some() && c.sock.is_some() && !ours;
        mark(
            o,
            fi,
            i,
            e,
            c,
            xs[i],
            &geo,
            cy + 22.0,
            &format!("c{}", e.cpu),
            faded,
            true,
        );
        if let Some(sy) = sock_y {
            if ours && sock_events.contains(&i) {
                mark(o, fi, i, e, c, xs[i], &geo, sy + 18.0, "s", false, false);
            }
        }
    }
    o.push_str("</g>"); // plot
    o.push_str("</svg>");
    legend(o);
    o.push_str("</div>");
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site per lane kind; a struct would only rename the arguments"
)]
fn mark(
    o: &mut String,
    fi: usize,
    i: usize,
    e: &Ev,
    c: &Class,
    x: X,
    geo: &Geo,
    cy: f64,
    row: &str,
    faded: bool,
    cpu_lane: bool,
) {
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
        geo.cur(x),
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
    let g = match m {
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
    };
    o.push_str(&g);
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
