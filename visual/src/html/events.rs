//! Which entries a figure draws: the trace's entries owned ([`Ev`]), the
//! spooled window around each finding, the frames and socket a finding
//! implicates, and the focus that keeps a many-CPU window readable.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use xskdbg_analyzer::parse::{parse_line, parse_timestamp, Line};
use xskdbg_analyzer::{Event, Finding, Report, TimelineEntry, DEFAULT_POISON};

use super::{Ctx, Options};
use crate::model::{classify, parse_hex, Mapping, SockId, Sockets};
use crate::{Error, Spool};

/// Frames that get a lifeline, at most.
const MAX_LIFELINES: usize = 6;
/// More CPUs than this in a window: only the finding's entries are drawn.
const MAX_CPU_LANES: usize = 8;

/// One entry, owned.
#[derive(Debug, Clone)]
pub(super) struct Ev {
    pub(super) line: u64,
    pub(super) cpu: u32,
    pub(super) ts: String,
    pub(super) ns: Option<u64>,
    pub(super) task: String,
    pub(super) name: String,
    pub(super) body: String,
    /// The whole trace line (hover text).
    pub(super) raw: String,
    /// Ringed in red: the analyzer highlighted it, or it is the moment of the
    /// finding or of a related one.
    pub(super) hl: bool,
    /// The finding's own moment (its `line`).
    pub(super) moment: bool,
}

impl Ev {
    pub(super) fn from_entry(e: &TimelineEntry) -> Ev {
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

    pub(super) fn from_event(ev: &Event<'_>) -> Ev {
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
pub(super) fn windows_from_spool(
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

/// The entries drawn for `f`: its report timeline merged with the spooled
/// window `win`, by line; its own entries and those of the findings at the
/// same moment highlighted, its moment marked.
pub(super) fn entries(f: &Finding, win: &[Ev]) -> Vec<Ev> {
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
    by_line.into_values().collect()
}

/// The frames a finding implicates, strongest evidence first (at most
/// [`MAX_LIFELINES`]; never the poison value).
pub(super) fn implicated_frames(f: &Finding, map: Mapping) -> Vec<u64> {
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
pub(super) fn finding_socket(f: &Finding, socks: &Sockets) -> Option<String> {
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
pub(super) fn focus(evs: Vec<Ev>, f: &Finding, ctx: &Ctx) -> (Vec<Ev>, usize) {
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
