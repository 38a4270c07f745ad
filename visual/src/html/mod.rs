//! The self-contained HTML report.
//!
//! One file, no network: CSS, the zoom/pan script and every SVG are inline.
//! The page has the summary, an index of findings and, per finding, its
//! verdict and explanation, an SVG timeline and the table of the events
//! drawn.
//!
//! The timeline of a finding has:
//! - one lane per CPU, time left to right (trace nanoseconds when the clock
//!   is a time, else event order; a button switches between the two), every
//!   entry a mark whose shape says what it is (kernel receive ▼, flush ▮,
//!   transmit ▲, completion ◆, application ring operation ●, violation ✖)
//!   and whose hover text is the raw trace line;
//! - the socket's producer sections (from a CPU's first receive to its flush
//!   or NAPI poll end) as bands in the CPU lanes, and where two CPUs produce
//!   for the same socket at once, a red band across the lanes;
//! - a lane for the finding's socket with its receive / flush / transmit
//!   events;
//! - one lifeline per implicated descriptor (frame), coloured by the state it
//!   is in (FILL, RX, TX, COMP, HELD, FREE), joined to the CPU lane of each
//!   event that moved it;
//! - the violating moment as a red line, the finding's events ringed in red.
//!
//! Events come from the finding's own timeline in the report and, when a
//! [`Spool`] is given, from the events around the finding in the trace
//! (`before` / `after` in [`Options`]), so that the picture also shows what
//! happened after the analyzer's detection point.
//!
//! Every piece of trace text is escaped: the trace is untrusted input.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use xskdbg_analyzer::parse::{parse_line, parse_timestamp, FlushMode, Line};
use xskdbg_analyzer::report::OverallVerdict;
use xskdbg_analyzer::{Event, Finding, Report, TimelineEntry, Verdict, DEFAULT_POISON};

use crate::model::{classify, parse_hex, state_name, Class, Mapping, Mark, SockId, Sockets, State};
use crate::{write_atomic, Error, Spool};

/// What the HTML report shows.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events drawn before each finding's moment, taken from the spool.
    pub before: usize,
    /// Events drawn after it.
    pub after: usize,
    /// Findings that get a timeline; later ones are listed without one.
    pub max_figures: usize,
    /// Name of the input shown in the title (`trace.txt`).
    pub input_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            before: 120,
            after: 60,
            max_figures: 200,
            input_name: String::new(),
        }
    }
}

/// Write the report of `report` to `out`, drawing each finding from the
/// events of its report timeline only.
pub fn write(report: &Report, out: &Path) -> Result<(), Error> {
    write_with(report, None, &Options::default(), out)
}

/// Write the report of `report` to `out` (atomically). With a spool, each
/// finding's picture also shows the trace's events around it.
pub fn write_with(
    report: &Report,
    spool: Option<&mut Spool>,
    opts: &Options,
    out: &Path,
) -> Result<(), Error> {
    let mut socks = Sockets::from_report(report);
    let windows = match spool {
        Some(s) => windows_from_spool(report, s, opts, &mut socks)?,
        None => Vec::new(),
    };
    let page = render(report, &windows, opts, socks);
    write_atomic(out, |w| w.write_all(page.as_bytes()))
}

/// What one figure is about: a finding, or the `--history` descriptor.
struct Subject {
    /// The line of the moment to mark, if any.
    moment: Option<u64>,
    /// The moment's tag (`concurrent_producer`).
    tag: String,
    /// CPUs that get a lane even without entries.
    cpus: Vec<u32>,
    /// Frames that get a lifeline.
    frames: Vec<u64>,
    /// The socket whose lane and producer sections are drawn.
    socket: Option<String>,
    /// For the SVG's accessible name.
    what: String,
}

impl Subject {
    fn of_finding(i: usize, f: &Finding, ctx: &Ctx) -> Subject {
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

/// What every figure of a report shares.
struct Ctx {
    map: Mapping,
    socks: Sockets,
    /// The trace can show where producer sections end.
    flush_known: bool,
}

/// One entry, owned.
#[derive(Debug, Clone)]
struct Ev {
    line: u64,
    cpu: u32,
    ts: String,
    ns: Option<u64>,
    task: String,
    name: String,
    body: String,
    raw: String,
    hl: bool,
    /// The finding's own moment (its `line`).
    moment: bool,
}

impl Ev {
    fn from_entry(e: &TimelineEntry) -> Ev {
        Ev {
            line: e.line,
            cpu: e.cpu,
            ts: e.ts.clone(),
            ns: e
                .ts_ns
                .or_else(|| parse_timestamp(e.ts.as_bytes()).and_then(|t| t.ns)),
            task: e.task.clone(),
            name: e.event.clone(),
            body: e.body.clone(),
            raw: e.raw.clone(),
            hl: e.highlighted,
            moment: false,
        }
    }

    fn from_event(ev: &Event<'_>) -> Ev {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let task = match ev.pid {
            Some(p) => format!("{}-{p}", s(ev.task)),
            None => s(ev.task),
        };
        Ev {
            line: ev.line,
            cpu: ev.cpu,
            ts: s(ev.ts.text),
            ns: ev.ts.ns,
            task,
            name: s(ev.name),
            body: s(ev.body),
            raw: s(ev.raw),
            hl: false,
            moment: false,
        }
    }
}

/// Per drawn finding: the spool's events around its moment.
fn windows_from_spool(
    report: &Report,
    spool: &mut Spool,
    opts: &Options,
    socks: &mut Sockets,
) -> Result<Vec<Vec<Ev>>, Error> {
    let n = report.findings.len().min(opts.max_figures);
    // Findings by anchor line; each is captured once its anchor is reached.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| report.findings[i].line);
    let mut out: Vec<Vec<Ev>> = vec![Vec::new(); n];
    let mut remaining_after = vec![0usize; n];
    let mut next = 0;
    let mut active: Vec<usize> = Vec::new();
    let mut ring: VecDeque<Ev> = VecDeque::with_capacity(opts.before + 1);
    spool.replay(|ev| {
        socks.learn(&ev.op);
        let e = Ev::from_event(ev);
        active.retain(|&i| {
            if remaining_after[i] == 0 {
                return false;
            }
            out[i].push(e.clone());
            remaining_after[i] -= 1;
            true
        });
        while next < order.len() && report.findings[order[next]].line <= e.line {
            let i = order[next];
            out[i].extend(ring.iter().cloned());
            out[i].push(e.clone());
            remaining_after[i] = opts.after;
            active.push(i);
            next += 1;
        }
        if opts.before > 0 {
            if ring.len() == opts.before {
                ring.pop_front();
            }
            ring.push_back(e);
        }
    })?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// text helpers

/// Escape text for HTML text and attribute values; control characters
/// (other than tab) become U+FFFD.
fn esc_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    esc_into(&mut o, s);
    o
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Kernel => "v-kernel",
        Verdict::Application => "v-app",
        Verdict::Inconclusive => "v-inc",
    }
}

fn overall_name(v: OverallVerdict) -> (&'static str, &'static str) {
    match v {
        OverallVerdict::Clean => ("clean", "v-clean"),
        OverallVerdict::Kernel => ("kernel", "v-kernel"),
        OverallVerdict::Application => ("application", "v-app"),
        OverallVerdict::Inconclusive => ("inconclusive", "v-inc"),
        OverallVerdict::Mixed => ("mixed", "v-mixed"),
    }
}

fn state_class(s: State) -> &'static str {
    match s {
        State::Fill => "s-fill",
        State::Rx => "s-rx",
        State::Tx => "s-tx",
        State::Comp => "s-comp",
        State::Held => "s-held",
        State::Free => "s-free",
        State::Unknown => "s-unk",
    }
}

fn seg_class(name: &str, st: State) -> &'static str {
    match name {
        "RX ring" => "s-rxq",
        "COMP ring" => "s-compq",
        _ => state_class(st),
    }
}

/// Rough text width in px at the label font size (monospace-ish estimate).
fn text_w(s: &str, px: f64) -> f64 {
    s.chars().count() as f64 * px * 0.6
}

// ---------------------------------------------------------------------------
// page

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Render the whole page. `windows[i]`, when present and non-empty, are the
/// spooled events around finding `i`.
fn render(report: &Report, windows: &[Vec<Ev>], opts: &Options, socks: Sockets) -> String {
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

fn finding(o: &mut String, i: usize, f: &Finding, win: &[Ev], draw: bool, ctx: &Ctx) {
    let _ = write!(
        o,
        "<section class=\"finding\" id=\"finding-{i}\"><h2>#{} {} <span class=\"badge {}\">{}</span></h2>",
        i + 1,
        f.kind.name(),
        verdict_class(f.verdict),
        f.verdict.name()
    );
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
    let _ = write!(o, "<p class=\"meta\">{}</p>", esc(&meta.join(" · ")));
    let _ = write!(o, "<p class=\"explanation\">{}</p>", esc(&f.explanation));

    // The finding's own timeline, plus the spooled window, by line.
    let mut by_line: BTreeMap<u64, Ev> = BTreeMap::new();
    for e in win {
        by_line.insert(e.line, e.clone());
    }
    for e in &f.timeline {
        let ev = Ev::from_entry(e);
        by_line
            .entry(e.line)
            .and_modify(|x| x.hl |= ev.hl)
            .or_insert(ev);
    }
    let mut moment_lines: BTreeSet<u64> = BTreeSet::new();
    moment_lines.insert(f.line);
    moment_lines.extend(f.also.iter().map(|a| a.line));
    moment_lines.extend(f.consequences.iter().map(|c| c.line));
    for l in &moment_lines {
        if let Some(e) = by_line.get_mut(l) {
            e.hl = true;
        }
    }
    if let Some(e) = by_line.get_mut(&f.line) {
        e.moment = true;
    }
    let (evs, left_out) = focus(by_line.into_values().collect(), f, ctx);
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

/// `--history ADDR`: the descriptor's life as one lifeline (the last
/// `before + after` events of it; the table lists them all).
fn history(
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

// ---------------------------------------------------------------------------
// the SVG timeline

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
const MAX_LIFELINES: usize = 6;
/// More CPUs than this in a window: only the finding's entries are drawn.
const MAX_CPU_LANES: usize = 8;

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

/// The frames a finding implicates, strongest evidence first (at most
/// [`MAX_LIFELINES`]; never the poison value).
fn implicated_frames(f: &Finding, map: Mapping) -> Vec<u64> {
    let poison_frame = map.frame(DEFAULT_POISON);
    let mut frames: Vec<u64> = Vec::new();
    let mut add = |fr: u64| {
        if fr != poison_frame && !frames.contains(&fr) {
            frames.push(fr);
        }
    };
    if let Some(a) = f.addr.as_deref().and_then(parse_hex) {
        add(map.frame(a));
    }
    if let Some(fr) = f.frame.as_deref().and_then(parse_hex) {
        add(map.frame(fr));
    }
    for c in f.also.iter().chain(&f.consequences) {
        if let Some(fr) = c.frame.as_deref().and_then(parse_hex) {
            add(map.frame(fr));
        }
    }
    for e in f.timeline.iter().filter(|e| e.highlighted) {
        if let Some(fr) = e.frame.as_deref().and_then(parse_hex) {
            add(map.frame(fr));
        }
    }
    frames.truncate(MAX_LIFELINES);
    frames
}

/// The finding's socket as the lanes name it.
fn finding_socket(f: &Finding, socks: &Sockets) -> Option<String> {
    f.socket.clone().or_else(|| {
        f.xs.as_deref()
            .and_then(parse_hex)
            .map(|x| socks.name(&SockId::Xs(x)))
    })
}

/// On machines with many CPUs a window holds entries of unrelated CPUs;
/// beyond [`MAX_CPU_LANES`] lanes keep only the entries on the finding's
/// CPUs, of its socket, of its frames, or highlighted. Returns the entries
/// kept and how many were left out.
fn focus(evs: Vec<Ev>, f: &Finding, ctx: &Ctx) -> (Vec<Ev>, usize) {
    let cpus: BTreeSet<u32> = evs
        .iter()
        .map(|e| e.cpu)
        .chain(f.cpus.iter().copied())
        .collect();
    if cpus.len() <= MAX_CPU_LANES {
        return (evs, 0);
    }
    let frames = implicated_frames(f, ctx.map);
    let sock = finding_socket(f, &ctx.socks);
    let before = evs.len();
    let kept: Vec<Ev> = evs
        .into_iter()
        .filter(|e| {
            if e.hl || f.cpus.contains(&e.cpu) {
                return true;
            }
            let Line::Event(ev) = parse_line(e.line, e.raw.as_bytes()) else {
                return false;
            };
            let c = classify(&ev.op, ev.name);
            c.sock
                .as_ref()
                .is_some_and(|s| Some(ctx.socks.name(s)) == sock)
                || c.moves
                    .iter()
                    .any(|&(a, _)| frames.contains(&ctx.map.frame(a)))
        })
        .collect();
    let left = before - kept.len();
    (kept, left)
}

/// A descriptor lifeline point.
struct LifePt {
    idx: usize,
    state: Option<State>,
}

fn figure(o: &mut String, fi: usize, f: &Subject, evs: &[Ev], ctx: &Ctx) {
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

fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
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

fn legend(o: &mut String) {
    o.push_str("<div class=\"legend\">");
    let item = |o: &mut String, svg: &str, text: &str| {
        let _ = write!(o, "<span><svg viewBox=\"-8 -8 16 16\" width=\"16\" height=\"16\">{svg}</svg>{text}</span>");
    };
    item(
        o,
        "<path class=\"lg m-recv\" d=\"M-6.5,-6 L6.5,-6 L0,6 Z\"/>",
        "kernel receive",
    );
    item(
        o,
        "<rect class=\"lg m-flush\" x=\"-2.5\" y=\"-7\" width=\"5\" height=\"14\"/>",
        "flush (RX producer published)",
    );
    item(
        o,
        "<path class=\"lg m-xmit\" d=\"M-6.5,6 L6.5,6 L0,-6 Z\"/>",
        "kernel transmit",
    );
    item(
        o,
        "<path class=\"lg m-kcomp\" d=\"M0,-6.5 L6.5,0 L0,6.5 L-6.5,0 Z\"/>",
        "kernel completion",
    );
    item(
        o,
        "<circle class=\"lg m-app\" r=\"5.5\"/>",
        "application ring op",
    );
    item(
        o,
        "<path class=\"lg m-viol x\" d=\"M-6,-6 L6,6 M6,-6 L-6,6\"/>",
        "violation seen by the app",
    );
    item(o, "<circle class=\"lg ring\" r=\"6\"/>", "finding's events");
    item(o, "<circle class=\"lg halo\" r=\"7\"/><line x1=\"0\" y1=\"-8\" x2=\"0\" y2=\"8\" class=\"lg mline\"/>", "the finding's moment");
    item(
        o,
        "<rect class=\"lg sect\" x=\"-7\" y=\"-5\" width=\"14\" height=\"10\"/>",
        "producer section",
    );
    item(
        o,
        "<rect class=\"lg overlap2\" x=\"-7\" y=\"-5\" width=\"14\" height=\"10\"/>",
        "two CPUs producing at once",
    );
    for (cls, name) in [
        ("s-fill", "FILL"),
        ("s-rxq", "RX ring (kernel wrote, app has not read)"),
        ("s-rx", "RX (app read it)"),
        ("s-tx", "TX"),
        ("s-comp", "COMP"),
        ("s-held", "HELD"),
        ("s-free", "FREE"),
    ] {
        let svg =
            format!("<rect class=\"lg seg {cls}\" x=\"-7\" y=\"-3\" width=\"14\" height=\"6\"/>");
        item(o, &svg, name);
    }
    o.push_str("</div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            esc("<script>&\"'\u{1}"),
            "&lt;script&gt;&amp;&quot;&#39;\u{fffd}"
        );
    }

    #[test]
    fn ellipsis() {
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abc", 4), "abc");
    }
}
