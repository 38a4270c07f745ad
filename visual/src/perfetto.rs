//! The trace as Chrome trace-event JSON, for ui.perfetto.dev and `chrome://tracing`.
//!
//! Layout (see `docs/VISUAL.md`):
//! - process 1 "CPUs": one track per CPU; every entry is a complete slice
//!   (`ph:"X"`) named after what it does (`recv 0x1000900`, `flush`,
//!   `FILL→RX 0xff0900`), its arguments the line number, task and raw line.
//!   A slice lasts until the CPU's next entry, at most 1 µs.
//! - process 2 "sockets": one track per socket (kernel `xs` pointers joined to
//!   the application's socket names as the analyzer joined them), an instant
//!   (`ph:"i"`) per entry of that socket.
//! - process 3 "descriptors": one track per frame, a complete slice per state
//!   the frame was in (FILL, RX, TX, COMP, HELD, FREE).
//! - flow arrows (`ph:"s"` / `ph:"f"`, `bp:"e"`) from a frame's last entry on
//!   one CPU to its next entry on another CPU.
//! - one instant per finding on the CPU track of its moment, named
//!   `finding: KIND (VERDICT)`, with the rule, line and explanation.
//!
//! The file is written as the spool is replayed (memory: one pending slice
//! per CPU, the current state of each frame), atomically. [`Window`] limits
//! it to a line or time range, or to the events around each finding.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

use xskdbg_analyzer::parse::parse_timestamp;
use xskdbg_analyzer::{Event, Filter, Report, DEFAULT_POISON};

use crate::filter::{summary_json, Selector};
use crate::model::{classify, state_name, Mapping, SockId, Sockets};
use crate::{write_atomic, Error, Spool};

/// Which part of the trace to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    /// Everything.
    #[default]
    All,
    /// `N` entries before and after each finding's moment.
    Around(u64),
    /// Trace lines `A..=B`.
    Lines(u64, u64),
    /// Trace time `A..=B` in nanoseconds (trace clock).
    Time(u64, u64),
}

impl FromStr for Window {
    type Err = Error;

    /// `all`, `N`, `lines:A-B`, `time:START-END` (seconds as the trace prints them).
    fn from_str(s: &str) -> Result<Window, Error> {
        let bad = |why: &str| Error::Window {
            value: s.to_string(),
            why: why.to_string(),
        };
        let t = s.trim();
        if t == "all" {
            return Ok(Window::All);
        }
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Window::Around(n));
        }
        let range = |r: &str| -> Option<(String, String)> {
            let (a, b) = r.split_once('-').or_else(|| r.split_once(".."))?;
            Some((a.trim().to_string(), b.trim().to_string()))
        };
        if let Some(r) = t.strip_prefix("lines:") {
            let (a, b) = range(r).ok_or_else(|| bad("a line range is `lines:A-B`"))?;
            let a: u64 = a
                .parse()
                .map_err(|_| bad("the first line is not a number"))?;
            let b: u64 = b
                .parse()
                .map_err(|_| bad("the last line is not a number"))?;
            if a > b {
                return Err(bad("the range is empty (A > B)"));
            }
            return Ok(Window::Lines(a, b));
        }
        if let Some(r) = t.strip_prefix("time:") {
            let (a, b) = range(r).ok_or_else(|| bad("a time range is `time:START-END`"))?;
            let ns = |v: &str| parse_timestamp(v.as_bytes()).and_then(|t| t.ns.or(Some(t.order)));
            let a = ns(&a)
                .ok_or_else(|| bad("the start is not a trace timestamp (e.g. 609766.6985)"))?;
            let b =
                ns(&b).ok_or_else(|| bad("the end is not a trace timestamp (e.g. 609766.6990)"))?;
            if a > b {
                return Err(bad("the range is empty (START > END)"));
            }
            return Ok(Window::Time(a, b));
        }
        Err(bad("unknown form"))
    }
}

/// Export options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The part of the trace to export.
    pub window: Window,
    /// Stop adding CPU slices after this many (0: no limit); states, flows
    /// and findings already started are still closed.
    pub max_events: u64,
    /// Name of the input, recorded in `otherData`.
    pub input_name: String,
    /// Filters (`xskdbg analyze --socket ...`): only the entries inside
    /// them are exported (within the window), and `otherData.filters`
    /// records them.
    pub filter: Option<Filter>,
    /// With `--frame`: entries before and after each of the frame's
    /// entries that are exported too.
    pub neighbours: u64,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Trace entries inside the window.
    pub entries: u64,
    /// Trace-event objects written.
    pub trace_events: u64,
    /// Findings written as instants.
    pub findings: u64,
    /// Entries left out by `max_events`.
    pub dropped: u64,
}

/// Slices on a CPU track last until the CPU's next entry, at most this long.
const SLICE_NS: u64 = 1000;

const PID_CPU: u32 = 1;
const PID_SOCK: u32 = 2;
const PID_DESC: u32 = 3;

/// Write the Perfetto JSON of `report` and the spooled trace to `out`.
pub fn write(
    report: &Report,
    spool: &mut Spool,
    opts: &Options,
    out: &Path,
) -> Result<Stats, Error> {
    // Around findings: map each finding's line to its entry index first.
    let ranges: Vec<(u64, u64)> = match opts.window {
        Window::Around(n) => {
            let mut lines: Vec<u64> = report.findings.iter().map(|f| f.line).collect();
            lines.sort_unstable();
            lines.dedup();
            let mut idx = Vec::with_capacity(lines.len());
            let mut k = 0;
            let mut i = 0u64;
            spool.replay(|ev| {
                while k < lines.len() && lines[k] <= ev.line {
                    idx.push(i);
                    k += 1;
                }
                i += 1;
            })?;
            let mut r: Vec<(u64, u64)> = Vec::new();
            for c in idx {
                let (a, b) = (c.saturating_sub(n), c.saturating_add(n));
                match r.last_mut() {
                    Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                    _ => r.push((a, b)),
                }
            }
            r
        }
        _ => Vec::new(),
    };
    let filter = opts.filter.as_ref().filter(|f| !f.is_empty());
    let mut selector = match filter {
        Some(f) => Some(Selector::new(report, f, spool, opts.neighbours)?),
        None => None,
    };
    let mut stats = Stats::default();
    let mut replay_err = None;
    write_atomic(out, |w| {
        let mut x = Exporter::new(report, opts, w);
        x.header()?;
        let mut idx = 0u64;
        let mut ri = 0usize;
        let r = spool.replay(|ev| {
            if x.failed.is_some() {
                return;
            }
            let inside = match opts.window {
                Window::All => true,
                Window::Lines(a, b) => (a..=b).contains(&ev.line),
                Window::Time(a, b) => (a..=b).contains(&ev.ts.ns.unwrap_or(ev.ts.order)),
                Window::Around(_) => {
                    while ri < ranges.len() && ranges[ri].1 < idx {
                        ri += 1;
                    }
                    ri < ranges.len() && (ranges[ri].0..=ranges[ri].1).contains(&idx)
                }
            };
            idx += 1;
            // Every entry goes through the selector (it counts them).
            let inside = match selector.as_mut() {
                Some(sel) => sel.inside(ev) && inside,
                None => inside,
            };
            let res = x.entry(ev, inside);
            if let Err(e) = res {
                x.failed = Some(e);
            }
        });
        if let Err(e) = r {
            replay_err = Some(e);
            return Ok(());
        }
        if let Some(e) = x.failed.take() {
            return Err(e);
        }
        x.finish()?;
        stats = x.stats;
        Ok(())
    })?;
    match replay_err {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

/// A CPU slice waiting for the CPU's next entry to know its duration.
struct Pending {
    line: u64,
    ns: u64,
    name: String,
    cat: &'static str,
    args: String,
    /// Flow events bound to this slice: written right after it, so that a
    /// viewer reading in file order (for equal timestamps) finds the slice
    /// open when it binds them.
    after: Vec<String>,
}

struct FrameState {
    /// [`state_name`] of the state, `None` before any is known.
    state: Option<&'static str>,
    /// When the state began (trace ns).
    since: u64,
    /// The state slice is open in the current window segment.
    open: bool,
    /// Last entry touching the frame: (cpu, ns, segment, line).
    last: Option<(u32, u64, u64, u64)>,
}

struct Exporter<'a, W: Write> {
    w: W,
    report: &'a Report,
    opts: &'a Options,
    map: Mapping,
    socks: Sockets,
    first: bool,
    stats: Stats,
    failed: Option<io::Error>,
    /// Inside the window, and the number of the current window segment.
    inside: bool,
    segment: u64,
    seg_start: u64,
    last_ns: u64,
    cpus: HashMap<u32, Option<Pending>>,
    sock_tid: HashMap<String, u64>,
    frame_tid: HashMap<u64, u64>,
    frames: HashMap<u64, FrameState>,
    flow_id: u64,
    /// Findings by line, not yet written.
    findings: HashMap<u64, Vec<usize>>,
}

/// A string written as a JSON string literal, escaped on the fly (no
/// allocation on the hot path).
struct Js<'a>(&'a str);

impl std::fmt::Display for Js<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"")?;
        let mut rest = self.0;
        while let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
            f.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or(' ');
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                c => write!(f, "\\u{:04x}", u32::from(c))?,
            }
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)?;
        f.write_str("\"")
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The CPU track's thread id (CPU numbers start at 0; tid 0 is avoided).
fn cpu_tid(cpu: u32) -> u64 {
    u64::from(cpu) + 1
}

/// Microseconds with nanosecond precision, as the format wants.
fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

impl<'a, W: Write> Exporter<'a, W> {
    fn new(report: &'a Report, opts: &'a Options, w: W) -> Self {
        let mut findings: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, f) in report.findings.iter().enumerate() {
            findings.entry(f.line).or_default().push(i);
        }
        Exporter {
            w,
            report,
            opts,
            map: Mapping::from_report(report),
            socks: Sockets::from_report(report),
            first: true,
            stats: Stats::default(),
            failed: None,
            inside: false,
            segment: 0,
            seg_start: 0,
            last_ns: 0,
            cpus: HashMap::new(),
            sock_tid: HashMap::new(),
            frame_tid: HashMap::new(),
            frames: HashMap::new(),
            flow_id: 0,
            findings,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        let s = &self.report.summary;
        write!(
            self.w,
            "{{\"displayTimeUnit\":\"ns\",\"otherData\":{{\"generator\":\"xskdbg\",\"input\":{},\"verdict\":{},\"findings\":{}{}}},\"traceEvents\":[",
            Js(&self.opts.input_name),
            serde_json::to_string(&s.verdict).unwrap_or_else(|_| "null".into()),
            s.findings,
            if s.filters.is_some() {
                format!(",\"filters\":{}", summary_json(self.report))
            } else {
                String::new()
            }
        )?;
        for (pid, name) in [
            (PID_CPU, "CPUs"),
            (PID_SOCK, "sockets"),
            (PID_DESC, "descriptors"),
        ] {
            self.obj(format_args!(
                "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"{name}\"}}}}"
            ))?;
            self.obj(format_args!(
                "{{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":{pid},\"tid\":0,\"args\":{{\"sort_index\":{pid}}}}}"
            ))?;
        }
        Ok(())
    }

    fn obj(&mut self, event: std::fmt::Arguments<'_>) -> io::Result<()> {
        // One event per line keeps the file greppable.
        self.w.write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        self.stats.trace_events += 1;
        self.w.write_fmt(event)
    }

    fn thread_meta(&mut self, pid: u32, tid: u64, name: &str, sort: u64) -> io::Result<()> {
        self.obj(format_args!(
            "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
            Js(name)
        ))?;
        self.obj(format_args!(
            "{{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"sort_index\":{sort}}}}}"
        ))
    }

    fn cpu_tid(&mut self, cpu: u32) -> io::Result<u64> {
        if let std::collections::hash_map::Entry::Vacant(v) = self.cpus.entry(cpu) {
            v.insert(None);
            self.thread_meta(PID_CPU, cpu_tid(cpu), &format!("CPU {cpu}"), u64::from(cpu))?;
        }
        Ok(cpu_tid(cpu))
    }

    fn sock_tid(&mut self, name: &str) -> io::Result<u64> {
        if let Some(t) = self.sock_tid.get(name) {
            return Ok(*t);
        }
        let tid = self.sock_tid.len() as u64 + 1;
        self.sock_tid.insert(name.to_string(), tid);
        let xs = self.socks.xs_of(name);
        let label = if xs.is_empty() {
            format!("socket {name}")
        } else {
            format!(
                "socket {name} (xs {})",
                xs.iter()
                    .map(|x| format!("{x:#x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        self.thread_meta(PID_SOCK, tid, &label, tid)?;
        Ok(tid)
    }

    fn frame_tid(&mut self, frame: u64) -> io::Result<u64> {
        if let Some(t) = self.frame_tid.get(&frame) {
            return Ok(*t);
        }
        let tid = self.frame_tid.len() as u64 + 1;
        self.frame_tid.insert(frame, tid);
        self.thread_meta(PID_DESC, tid, &format!("frame {frame:#x}"), tid)?;
        Ok(tid)
    }

    fn flush_cpu(&mut self, cpu: u32, until: Option<u64>) -> io::Result<()> {
        let Some(p) = self.cpus.get_mut(&cpu).and_then(Option::take) else {
            return Ok(());
        };
        let dur = match until {
            Some(u) => u.saturating_sub(p.ns).min(SLICE_NS),
            None => SLICE_NS,
        };
        self.obj(format_args!(
            "{{\"ph\":\"X\",\"name\":{},\"cat\":\"{}\",\"ts\":{},\"dur\":{},\"pid\":{PID_CPU},\"tid\":{},\"args\":{}}}",
            Js(&p.name),
            p.cat,
            us(p.ns),
            us(dur),
            cpu_tid(cpu),
            p.args
        ))?;
        for a in &p.after {
            self.obj(format_args!("{a}"))?;
        }
        Ok(())
    }

    fn state_slice(&mut self, frame: u64, state: &str, from: u64, to: u64) -> io::Result<()> {
        let tid = self.frame_tid(frame)?;
        self.obj(format_args!(
            "{{\"ph\":\"X\",\"name\":\"{}\",\"cat\":\"state\",\"ts\":{},\"dur\":{},\"pid\":{PID_DESC},\"tid\":{tid},\"args\":{{\"frame\":\"{frame:#x}\"}}}}",
            state,
            us(from),
            us(to.saturating_sub(from))
        ))
    }

    /// Leave the current window segment: close every open slice at the
    /// segment's last moment.
    fn leave(&mut self) -> io::Result<()> {
        // Hash maps iterate in a random order: sorted, so that two exports
        // of one trace are the same bytes.
        let mut cpus: Vec<u32> = self.cpus.keys().copied().collect();
        cpus.sort_unstable();
        for c in cpus {
            self.flush_cpu(c, None)?;
        }
        let end = self.last_ns;
        let mut open: Vec<(u64, &'static str, u64)> = self
            .frames
            .iter()
            .filter(|(_, s)| s.open)
            .filter_map(|(f, s)| Some((*f, s.state?, s.since)))
            .collect();
        open.sort_unstable_by_key(|o| o.0);
        for (f, st, since) in open {
            self.state_slice(f, st, since, end)?;
            if let Some(s) = self.frames.get_mut(&f) {
                s.open = false;
            }
        }
        self.inside = false;
        Ok(())
    }

    fn entry(&mut self, ev: &Event<'_>, inside: bool) -> io::Result<()> {
        let ns = ev.ts.ns.unwrap_or(ev.ts.order);
        self.socks.learn(&ev.op);
        let c = classify(&ev.op, ev.name);
        if !inside {
            if self.inside {
                self.leave()?;
            }
            // Keep each frame's state so the next window starts from it.
            for &(a, st) in &c.moves {
                if let Some(st) = st {
                    let fr = self.map.frame(a);
                    let name = state_name(c.mark, st);
                    let e = self.frames.entry(fr).or_insert(FrameState {
                        state: None,
                        since: ns,
                        open: false,
                        last: None,
                    });
                    e.state = Some(name);
                    e.since = ns;
                }
            }
            return Ok(());
        }
        if !self.inside {
            self.inside = true;
            self.segment += 1;
            self.seg_start = ns;
        }
        self.last_ns = self.last_ns.max(ns);
        self.stats.entries += 1;
        let tid = self.cpu_tid(ev.cpu)?;
        self.flush_cpu(ev.cpu, Some(ns))?;
        let raw = String::from_utf8_lossy(ev.raw);
        let task = String::from_utf8_lossy(ev.task);
        let args = format!(
            "{{\"line\":{},\"task\":{},\"pid\":{},\"raw\":{}}}",
            ev.line,
            Js(&task),
            ev.pid.map_or("null".to_string(), |p| p.to_string()),
            Js(&raw)
        );
        let cap = self.opts.max_events;
        let emitting = cap == 0 || self.stats.entries <= cap;
        if emitting {
            if let Some(p) = self.cpus.get_mut(&ev.cpu) {
                *p = Some(Pending {
                    line: ev.line,
                    after: Vec::new(),
                    ns,
                    name: c.label.clone(),
                    cat: c.mark.name(),
                    args: args.clone(),
                });
            }
        } else {
            self.stats.dropped += 1;
        }
        // The socket's track.
        if let Some(sock) = &c.sock {
            let name = self.socks.name(sock);
            let stid = self.sock_tid(&name)?;
            let kind = match sock {
                SockId::Xs(_) => "kernel",
                _ => "app",
            };
            self.obj(format_args!(
                "{{\"ph\":\"i\",\"s\":\"t\",\"name\":{},\"cat\":\"{}\",\"ts\":{},\"pid\":{PID_SOCK},\"tid\":{stid},\"args\":{{\"line\":{},\"cpu\":{},\"side\":\"{kind}\"}}}}",
                Js(&c.label),
                c.mark.name(),
                us(ns),
                ev.line,
                ev.cpu
            ))?;
        }
        // Descriptor states and flows.
        let mut seen: Vec<u64> = Vec::new();
        for &(a, st) in &c.moves {
            // The poison value is not a frame.
            if a == DEFAULT_POISON {
                continue;
            }
            let fr = self.map.frame(a);
            if seen.contains(&fr) {
                continue;
            }
            seen.push(fr);
            let seg = self.segment;
            let (seg_start, tid_cpu) = (self.seg_start, tid);
            let prev = self
                .frames
                .get(&fr)
                .map(|s| (s.state, s.since, s.open, s.last));
            if let Some(st) = st {
                match prev {
                    Some((Some(old), since, open, _)) => {
                        // A state known from before this window starts at the window's start.
                        let from = if open {
                            since
                        } else {
                            seg_start.max(since.min(ns))
                        };
                        self.state_slice(fr, old, from.min(ns), ns)?;
                    }
                    _ => {
                        self.frame_tid(fr)?;
                    }
                }
                let e = self.frames.entry(fr).or_insert(FrameState {
                    state: None,
                    since: ns,
                    open: true,
                    last: None,
                });
                e.state = Some(state_name(c.mark, st));
                e.since = ns;
                e.open = true;
            }
            // Flow from the frame's previous entry when it was on another CPU.
            let last = self.frames.get(&fr).and_then(|s| s.last);
            if let Some((lcpu, lns, lseg, lline)) = last {
                // Only between emitted slices, so that both ends can bind,
                // and forward in time: an arrow cannot point into the past.
                if emitting && lseg == seg && lcpu != ev.cpu && ns >= lns {
                    self.flow_id += 1;
                    let id = self.flow_id;
                    let name = json_str(&format!("frame {fr:#x}"));
                    let start = format!(
                        "{{\"ph\":\"s\",\"name\":{name},\"cat\":\"flow\",\"id\":{id},\"ts\":{},\"pid\":{PID_CPU},\"tid\":{}}}",
                        us(lns),
                        cpu_tid(lcpu)
                    );
                    let finish = format!(
                        "{{\"ph\":\"f\",\"bp\":\"e\",\"name\":{name},\"cat\":\"flow\",\"id\":{id},\"ts\":{},\"pid\":{PID_CPU},\"tid\":{tid_cpu}}}",
                        us(ns)
                    );
                    // Each end goes after its slice: the start's slice may
                    // still be pending on its CPU; this entry's slice is.
                    match self.cpus.get_mut(&lcpu).and_then(Option::as_mut) {
                        Some(p) if p.line == lline => p.after.push(start),
                        _ => self.obj(format_args!("{start}"))?,
                    }
                    if let Some(p) = self.cpus.get_mut(&ev.cpu).and_then(Option::as_mut) {
                        p.after.push(finish);
                    }
                }
            }
            match self.frames.get_mut(&fr) {
                Some(s) => s.last = Some((ev.cpu, ns, seg, ev.line)),
                None => {
                    // Mentioned before any state is known: remember where.
                    self.frames.insert(
                        fr,
                        FrameState {
                            state: None,
                            since: ns,
                            open: false,
                            last: Some((ev.cpu, ns, seg, ev.line)),
                        },
                    );
                }
            }
        }
        // Findings whose moment is this line.
        if let Some(list) = self.findings.remove(&ev.line) {
            for i in list {
                self.finding(i, ns, ev.cpu)?;
            }
        }
        Ok(())
    }

    fn finding(&mut self, i: usize, ns: u64, cpu: u32) -> io::Result<()> {
        let f = &self.report.findings[i];
        let mut args = String::new();
        let _ = write!(
            args,
            "{{\"finding\":{},\"kind\":\"{}\",\"verdict\":\"{}\",\"rule\":{},\"line\":{},\"ts\":{},\"addr\":{},\"frame\":{},\"socket\":{},\"explanation\":{}}}",
            i + 1,
            f.kind.name(),
            f.verdict.name(),
            Js(&f.rule),
            f.line,
            Js(&f.ts),
            f.addr.as_deref().map_or("null".into(), json_str),
            f.frame.as_deref().map_or("null".into(), json_str),
            f.socket.as_deref().map_or("null".into(), json_str),
            Js(&f.explanation)
        );
        let name = json_str(&format!(
            "finding: {} ({})",
            f.kind.name(),
            f.verdict.name()
        ));
        let tid = self.cpu_tid(cpu)?;
        self.stats.findings += 1;
        self.obj(format_args!(
            "{{\"ph\":\"i\",\"s\":\"t\",\"name\":{name},\"cat\":\"finding\",\"ts\":{},\"pid\":{PID_CPU},\"tid\":{tid},\"args\":{args}}}",
            us(ns)
        ))
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.inside {
            self.leave()?;
        }
        // Findings whose moment was not an entry in the window but whose
        // line lies in it (none expected; kept so no finding is lost).
        let mut rest: Vec<usize> = self.findings.drain().flat_map(|(_, v)| v).collect();
        rest.sort_unstable();
        for i in rest {
            let f = &self.report.findings[i];
            let in_window = match self.opts.window {
                Window::All => true,
                Window::Lines(a, b) => (a..=b).contains(&f.line),
                Window::Time(a, b) => f.ts_ns.is_some_and(|t| (a..=b).contains(&t)),
                Window::Around(_) => false,
            };
            if in_window {
                let ns = f
                    .ts_ns
                    .or_else(|| parse_timestamp(f.ts.as_bytes()).map(|t| t.order))
                    .unwrap_or(self.last_ns);
                let cpu = f.cpus.first().copied().unwrap_or(0);
                self.finding(i, ns, cpu)?;
            }
        }
        self.w.write_all(b"\n]}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forms() {
        assert_eq!("all".parse::<Window>().unwrap(), Window::All);
        assert_eq!("200".parse::<Window>().unwrap(), Window::Around(200));
        assert_eq!(
            "lines:10-20".parse::<Window>().unwrap(),
            Window::Lines(10, 20)
        );
        assert_eq!(
            "time:609766.6985-609766.699".parse::<Window>().unwrap(),
            Window::Time(609_766_698_500_000, 609_766_699_000_000)
        );
        for bad in ["", "lines:20-10", "time:x-y", "lines:1", "sometimes"] {
            let e = bad.parse::<Window>().unwrap_err().to_string();
            assert!(e.contains("--window"), "{e}");
        }
    }

    #[test]
    fn json_strings_escape_like_serde() {
        for t in [
            "plain",
            "q\"uo\\te",
            "ctl\u{1}\n\t\r",
            "ünï €",
            "",
            "\u{7f}",
        ] {
            assert_eq!(
                Js(t).to_string(),
                serde_json::to_string(t).unwrap(),
                "{t:?}"
            );
        }
    }

    #[test]
    fn microseconds() {
        assert_eq!(us(609_766_698_512_345), "609766698512.345");
        assert_eq!(us(1), "0.001");
    }
}
