//! Filters of `xskdbg analyze`: ask the trace a narrower question.
//!
//! `--socket REGEX`, `--task REGEX`, `--cpus LIST`, `--since TS`,
//! `--until TS` and `--frame ADDR` restrict what is *reported*, never what
//! is reasoned over: the analyzer reads and judges the whole trace, then
//! [`Filter::apply`] keeps the findings that fall inside the filter.
//!
//! A finding is judged on two levels:
//! - as a whole, by its socket (name, key, label or `xs`) and its frames
//!   (its moment's, its `also` and `consequences`' and its highlighted
//!   timeline entries'): `--socket` and `--frame`;
//! - point by point, by task, CPU and time (`--task`, `--cpus`,
//!   `--since`/`--until`): its moment (the line it was detected at) and
//!   its evidence (the other highlighted timeline entries, `also`,
//!   `consequences`).
//!
//! When the moment is inside, the finding is reported, and evidence that
//! lies outside the filter is named in a note (the verdict still rests on
//! it). When only evidence is inside (a poisoned read inside `--since`
//! whose race happened before it), the finding is reported too, with a
//! note saying its moment lies outside. Otherwise it is left out and
//! counted ([`FilterSummary::findings_total`]).
//!
//! The same [`Filter`] decides, entry by entry, what the statistics tables
//! and the pictures show ([`Filter::entry_inside`]).

use std::collections::HashMap;
use std::fmt;

use regex::Regex;
use serde::Serialize;

use crate::parse::{parse_timestamp, AppOp};
use crate::report::{Finding, Related, Report, TimelineEntry};
use crate::{Event, Op};

/// A compiled `--socket` / `--task` pattern with the text it came from.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    re: Regex,
}

impl Pattern {
    /// Compile `text` (the `regex` crate's syntax, unanchored: `ingress`
    /// matches `ingress q:1`). The error is the regex crate's, which shows
    /// where the pattern went wrong.
    pub fn new(text: &str) -> Result<Pattern, String> {
        Regex::new(text)
            .map(|re| Pattern {
                text: text.to_string(),
                re,
            })
            .map_err(|e| e.to_string())
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern matches somewhere in `s`.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

/// A `--cpus` list: `0,2`, `0-3`, `1,4-7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList {
    text: String,
    /// Sorted, deduplicated.
    cpus: Vec<u32>,
}

/// Highest CPU number a list may name (the kernel's NR_CPUS limit).
const MAX_CPU: u32 = 8191;

impl CpuList {
    /// Parse `0,2-3`.
    pub fn new(text: &str) -> Result<CpuList, String> {
        let mut cpus = Vec::new();
        let num = |s: &str| -> Result<u32, String> {
            let s = s.trim();
            match s.parse::<u32>() {
                Ok(n) if n <= MAX_CPU => Ok(n),
                Ok(n) => Err(format!("CPU {n} is beyond the kernel's limit ({MAX_CPU})")),
                Err(_) => Err(format!(
                    "`{s}` is not a CPU number; write a list like 0,2-3"
                )),
            }
        };
        for part in text.split(',') {
            if part.trim().is_empty() {
                return Err("an empty item; write a list like 0,2-3".into());
            }
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(format!(
                            "the range {a}-{b} is empty (write the lower CPU first)"
                        ));
                    }
                    cpus.extend(a..=b);
                }
                None => cpus.push(num(part)?),
            }
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(CpuList {
            text: text.trim().to_string(),
            cpus,
        })
    }

    /// Whether `cpu` is in the list.
    pub fn contains(&self, cpu: u32) -> bool {
        self.cpus.binary_search(&cpu).is_ok()
    }

    /// The list as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A `--since` / `--until` bound: a trace timestamp as the trace prints it
/// (`609766.698523` on a time clock, a bare count on a counter clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsBound {
    text: String,
    /// Nanoseconds, for traces with a time clock (a bare integer is seconds).
    ns: u64,
    /// The raw value, for counter clocks (`None` when the text has a fraction).
    count: Option<u64>,
}

impl TsBound {
    /// Parse `609766.698523`, `609766` or a counter value.
    pub fn new(text: &str) -> Result<TsBound, String> {
        let t = text.trim();
        let bad = || {
            format!(
                "`{t}` is not a trace timestamp; write it as the trace prints it, \
                 e.g. 609766.698523 (seconds) or a counter value"
            )
        };
        let ts = parse_timestamp(t.as_bytes()).ok_or_else(bad)?;
        if ts.text.len() != t.len() {
            return Err(bad());
        }
        let (ns, count) = match ts.ns {
            Some(ns) => (ns, None),
            None => (ts.order.saturating_mul(1_000_000_000), Some(ts.order)),
        };
        Ok(TsBound {
            text: t.to_string(),
            ns,
            count,
        })
    }

    /// The bound in the unit of an entry: nanoseconds when the entry's clock
    /// is a time, the raw count otherwise (`None`: a fractional bound on a
    /// counter clock, which cannot be compared).
    fn value(&self, entry_is_ns: bool) -> Option<u64> {
        if entry_is_ns {
            Some(self.ns)
        } else {
            self.count
        }
    }

    /// The bound as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The filters of one `xskdbg analyze` run. [`Filter::default`] is no filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `--socket`: the socket's name, key, label or `xs` pointer.
    pub socket: Option<Pattern>,
    /// `--task`: the task as printed with its pid (`flowtrackd-9chS-142014`).
    pub task: Option<Pattern>,
    /// `--cpus`.
    pub cpus: Option<CpuList>,
    /// `--since` (inclusive).
    pub since: Option<TsBound>,
    /// `--until` (inclusive).
    pub until: Option<TsBound>,
    /// `--frame`: a descriptor address; its frame (chunk) is what counts.
    pub frame: Option<u64>,
}

/// One moment of a finding, judged by task, CPU and time.
struct Point<'a> {
    line: u64,
    cpu: Option<u32>,
    cpus: &'a [u32],
    ts: &'a str,
    ts_ns: Option<u64>,
    task: Option<&'a str>,
    /// Whether its task matches `--task`, when the pass recorded it.
    task_in: Option<bool>,
}

/// A piece of a finding's evidence, as a [`Point`].
struct Evidence {
    line: u64,
    cpu: Option<u32>,
    cpus: Vec<u32>,
    ts: String,
    ts_ns: Option<u64>,
    task: Option<String>,
}

impl Evidence {
    fn point<'a>(&'a self, seen: &Seen) -> Point<'a> {
        Point {
            line: self.line,
            cpu: self.cpu,
            cpus: &self.cpus,
            ts: &self.ts,
            ts_ns: self.ts_ns,
            task: self.task.as_deref(),
            task_in: seen.task_at(self.line),
        }
    }
}

/// Where a finding stands with respect to the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Reported; `note` names what lies outside the filter, if anything.
    Reported {
        /// Evidence outside the filter, or why a finding whose moment lies
        /// outside is reported; `None` when all of it is inside.
        note: Option<String>,
    },
    /// Not reported: nothing of it is inside the filter.
    Hidden,
}

/// `summary.filters` of the JSON report: which filters applied and what
/// they left out.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FilterSummary {
    /// The filters, as given on the command line.
    pub applied: Applied,
    /// Findings of the whole trace (what was reasoned over).
    pub findings_total: u64,
    /// Findings reported (inside the filter).
    pub findings_reported: u64,
    /// The verdict over the reported findings: a verdict name, `mixed` or
    /// `clean` (`summary.verdict` stays the whole trace's).
    pub verdict_reported: String,
    /// Reported findings with evidence outside the filter, or reported
    /// although their moment lies outside it.
    pub notes: Vec<FindingNote>,
}

/// The filters given, by option name (`null` when not given).
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Applied {
    /// `--socket`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// `--task`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// `--cpus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// `--since`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `--until`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `--frame` (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
}

impl Applied {
    /// The filters as command-line arguments, shell-quoted where needed:
    /// `--socket 'ingress q:1' --cpus 0,2`.
    pub fn to_args(&self) -> String {
        let mut v: Vec<String> = Vec::new();
        for (opt, val) in [
            ("--socket", &self.socket),
            ("--task", &self.task),
            ("--cpus", &self.cpus),
            ("--since", &self.since),
            ("--until", &self.until),
            ("--frame", &self.frame),
        ] {
            if let Some(val) = val {
                v.push(format!("{opt} {}", shell_quote(val)));
            }
        }
        v.join(" ")
    }
}

/// A note about one reported finding.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FindingNote {
    /// The finding's number in the (filtered) report, from 1.
    pub finding: u64,
    /// Its line.
    pub line: u64,
    /// What lies outside the filter.
    pub note: String,
}

/// Quote `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,:/=+@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What the filters learn from the analyzer's pass ([`Seen::observe`] on
/// every entry), where a report alone does not tell:
/// - socket keys and the labels their `sock` lines declared, so that
///   `--socket` matches a socket by either name;
/// - with `--task`, which lines are of a matching task (one bit per line),
///   so that a finding's moment and evidence are judged by their task even
///   when its timeline does not show them (`--context 0`).
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Each name to the other names of the same socket.
    alias: HashMap<String, Vec<String>>,
    task: Option<TaskLines>,
}

/// The lines whose task matches `--task`.
#[derive(Debug, Clone)]
struct TaskLines {
    pattern: Pattern,
    /// Bit `n` is line `n`.
    bits: Vec<u64>,
    /// Printed task (`name-pid`) to whether it matches: few distinct tasks,
    /// so the regex runs once per task.
    cache: HashMap<Vec<u8>, bool>,
    scratch: Vec<u8>,
}

/// Lines beyond this are not recorded (64 MiB of bits); their task counts
/// as unknown.
const MAX_TASK_LINE: u64 = 1 << 29;

impl Seen {
    /// Ready to learn what `filter` needs.
    pub fn new(filter: &Filter) -> Seen {
        Seen {
            alias: HashMap::new(),
            task: filter.task.clone().map(|pattern| TaskLines {
                pattern,
                bits: Vec::new(),
                cache: HashMap::new(),
                scratch: Vec::new(),
            }),
        }
    }

    /// Whether `filter` needs the pass observed at all.
    pub fn needed(filter: &Filter) -> bool {
        filter.socket.is_some() || filter.task.is_some()
    }

    /// Learn from one entry.
    pub fn observe(&mut self, ev: &Event<'_>) {
        if let Some(t) = self.task.as_mut() {
            t.observe(ev);
        }
        if let Op::App(AppOp::Sock {
            sk, label: Some(l), ..
        }) = &ev.op
        {
            let key = sk.to_string();
            let label = String::from_utf8_lossy(l).trim().to_string();
            if label.is_empty() {
                return;
            }
            for (a, b) in [(&key, &label), (&label, &key)] {
                let v = self.alias.entry(a.clone()).or_default();
                if !v.contains(b) {
                    v.push(b.clone());
                }
            }
        }
    }

    /// The other names of the socket named `name`.
    pub fn aliases(&self, name: &str) -> &[String] {
        self.alias.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether line `line`'s task matches `--task`, when recorded.
    fn task_at(&self, line: u64) -> Option<bool> {
        let t = self.task.as_ref()?;
        if line >= MAX_TASK_LINE {
            return None;
        }
        let w = t.bits.get((line / 64) as usize).copied().unwrap_or(0);
        Some(w >> (line % 64) & 1 == 1)
    }
}

impl TaskLines {
    fn observe(&mut self, ev: &Event<'_>) {
        if ev.line >= MAX_TASK_LINE {
            return;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(ev.task);
        if let Some(p) = ev.pid {
            self.scratch.push(b'-');
            self.scratch.extend_from_slice(p.to_string().as_bytes());
        }
        let hit = match self.cache.get(self.scratch.as_slice()) {
            Some(&h) => h,
            None => {
                let h = self
                    .pattern
                    .is_match(&String::from_utf8_lossy(&self.scratch));
                self.cache.insert(self.scratch.clone(), h);
                h
            }
        };
        if hit {
            let i = (ev.line / 64) as usize;
            if self.bits.len() <= i {
                self.bits.resize(i + 1, 0);
            }
            self.bits[i] |= 1 << (ev.line % 64);
        }
    }
}

impl Filter {
    /// No filter given.
    pub fn is_empty(&self) -> bool {
        self.socket.is_none()
            && self.task.is_none()
            && self.cpus.is_none()
            && self.since.is_none()
            && self.until.is_none()
            && self.frame.is_none()
    }

    /// Checks what each option cannot see alone: `--since` after `--until`.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(a), Some(b)) = (&self.since, &self.until) {
            let empty = a.ns > b.ns || matches!((a.count, b.count), (Some(x), Some(y)) if x > y);
            if empty {
                return Err(format!(
                    "--since {} is after --until {}: the window is empty (swap them)",
                    a.text, b.text
                ));
            }
        }
        Ok(())
    }

    /// Whether a timeline entry (of a finding or `--history`) is inside the
    /// task, CPU and time filters.
    pub fn timeline_entry_inside(&self, e: &TimelineEntry) -> bool {
        self.point_inside(&Point {
            line: e.line,
            cpu: Some(e.cpu),
            cpus: &[],
            ts: &e.ts,
            ts_ns: e.ts_ns,
            task: Some(&e.task),
            task_in: None,
        })
    }

    /// The filters as given.
    pub fn applied(&self) -> Applied {
        Applied {
            socket: self.socket.as_ref().map(|p| p.as_str().to_string()),
            task: self.task.as_ref().map(|p| p.as_str().to_string()),
            cpus: self.cpus.as_ref().map(|c| c.as_str().to_string()),
            since: self.since.as_ref().map(|t| t.as_str().to_string()),
            until: self.until.as_ref().map(|t| t.as_str().to_string()),
            frame: self.frame.map(|f| format!("{f:#x}")),
        }
    }

    /// Whether any of the socket's names matches `--socket` (true without it).
    pub fn socket_matches<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> bool {
        match &self.socket {
            None => true,
            Some(p) => names.into_iter().any(|n| p.is_match(n)),
        }
    }

    /// Whether a timestamp is inside `--since`/`--until` (`ns`: the entry's
    /// nanoseconds when its clock is a time; `order`: its ordering value).
    pub fn time_inside(&self, ns: Option<u64>, order: u64) -> bool {
        let (v, is_ns) = match ns {
            Some(n) => (n, true),
            None => (order, false),
        };
        let since = self.since.as_ref().and_then(|b| b.value(is_ns));
        let until = self.until.as_ref().and_then(|b| b.value(is_ns));
        since.is_none_or(|s| v >= s) && until.is_none_or(|u| v <= u)
    }

    /// Whether one trace entry is inside the task, CPU and time filters.
    /// The socket and frame are the caller's (they need the report's
    /// socket names and chunk mapping): see [`Filter::socket_matches`] and
    /// [`Filter::frame`].
    pub fn entry_inside(&self, ev: &Event<'_>) -> bool {
        if let Some(c) = &self.cpus {
            if !c.contains(ev.cpu) {
                return false;
            }
        }
        if !self.time_inside(ev.ts.ns, ev.ts.order) {
            return false;
        }
        if let Some(t) = &self.task {
            let task = String::from_utf8_lossy(ev.task);
            let printed = match ev.pid {
                Some(p) => format!("{task}-{p}"),
                None => task.into_owned(),
            };
            if !t.is_match(&printed) {
                return false;
            }
        }
        true
    }

    fn point_inside(&self, p: &Point<'_>) -> bool {
        if let Some(c) = &self.cpus {
            let inside = match p.cpu {
                Some(cpu) => c.contains(cpu),
                None => p.cpus.iter().any(|&cpu| c.contains(cpu)),
            };
            if !inside {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let (ns, order) = match p.ts_ns {
                Some(n) => (Some(n), n),
                None => match parse_timestamp(p.ts.as_bytes()) {
                    Some(t) => (t.ns, t.order),
                    // No time to judge: not inside a time window.
                    None => return false,
                },
            };
            if !self.time_inside(ns, order) {
                return false;
            }
        }
        if let Some(t) = &self.task {
            // Without the pass' record, the task is the timeline's; a
            // moment the timeline does not show has no known task.
            let inside = p
                .task_in
                .unwrap_or_else(|| p.task.is_some_and(|task| t.is_match(task)));
            if !inside {
                return false;
            }
        }
        true
    }

    /// The frame of `--frame` under the report's chunk mapping.
    fn wanted_frame(&self, report: &Report) -> Option<u64> {
        let a = self.frame?;
        let c = &report.summary.chunk;
        Some(if c.mode == "unaligned" {
            a & ((1 << 48) - 1)
        } else {
            match c.size.as_deref().and_then(parse_hex) {
                Some(size) if size.is_power_of_two() => a & !(size - 1),
                _ => a,
            }
        })
    }

    /// Where one finding of `report` stands.
    pub fn place(&self, report: &Report, f: &Finding, seen: &Seen) -> Placement {
        // As a whole: socket and frame.
        if self.socket.is_some() {
            let mut all: Vec<&str> = Vec::new();
            if let Some(s) = &f.socket {
                all.push(s);
                all.extend(seen.aliases(s).iter().map(String::as_str));
            }
            if let Some(x) = &f.xs {
                all.push(x);
                // The socket the analyzer joined this xs to.
                for s in &report.summary.sockets {
                    if s.xs.iter().any(|v| v == x) {
                        all.push(&s.socket);
                        all.extend(seen.aliases(&s.socket).iter().map(String::as_str));
                    }
                }
            }
            if !self.socket_matches(all) {
                return Placement::Hidden;
            }
        }
        if let Some(fr) = self.wanted_frame(report) {
            let is = |v: &Option<String>| v.as_deref().and_then(parse_hex) == Some(fr);
            let touches = is(&f.frame)
                || f.also.iter().chain(&f.consequences).any(|r| is(&r.frame))
                || f.timeline.iter().any(|e| e.highlighted && is(&e.frame));
            if !touches {
                return Placement::Hidden;
            }
        }
        if self.task.is_none()
            && self.cpus.is_none()
            && self.since.is_none()
            && self.until.is_none()
        {
            return Placement::Reported { note: None };
        }
        // Point by point: the moment, then the evidence.
        let entry_at = |line: u64| -> Option<&TimelineEntry> {
            f.timeline
                .iter()
                .find(|e| e.line == line && e.highlighted)
                .or_else(|| f.timeline.iter().find(|e| e.line == line))
        };
        let moment_entry = entry_at(f.line);
        let moment = Point {
            line: f.line,
            cpu: moment_entry.map(|e| e.cpu),
            cpus: &f.cpus,
            ts: &f.ts,
            ts_ns: f.ts_ns,
            task: moment_entry.map(|e| e.task.as_str()),
            task_in: seen.task_at(f.line),
        };
        let related = |r: &Related| {
            let e = entry_at(r.line);
            Evidence {
                line: r.line,
                cpu: e
                    .map(|e| e.cpu)
                    .or_else(|| (r.cpus.len() == 1).then(|| r.cpus[0])),
                cpus: r.cpus.clone(),
                ts: r.ts.clone(),
                ts_ns: r.ts_ns,
                task: e.map(|e| e.task.clone()),
            }
        };
        let mut evidence: Vec<Evidence> = Vec::new();
        for e in f
            .timeline
            .iter()
            .filter(|e| e.highlighted && e.line != f.line)
        {
            evidence.push(Evidence {
                line: e.line,
                cpu: Some(e.cpu),
                cpus: vec![e.cpu],
                ts: e.ts.clone(),
                ts_ns: e.ts_ns,
                task: Some(e.task.clone()),
            });
        }
        for r in f.also.iter().chain(&f.consequences) {
            if r.line != f.line && !evidence.iter().any(|e| e.line == r.line) {
                evidence.push(related(r));
            }
        }
        evidence.sort_by_key(|e| e.line);
        let (mut inside, mut outside) = (Vec::new(), Vec::new());
        for e in &evidence {
            let p = e.point(seen);
            let desc = describe(&p, self.task.is_some());
            if self.point_inside(&p) {
                inside.push(desc);
            } else {
                outside.push(desc);
            }
        }
        if self.point_inside(&moment) {
            let note = (!outside.is_empty()).then(|| {
                format!(
                    "evidence outside the filter, still part of the verdict: {}",
                    list(&outside)
                )
            });
            return Placement::Reported { note };
        }
        if inside.is_empty() {
            return Placement::Hidden;
        }
        Placement::Reported {
            note: Some(format!(
                "reported for its evidence inside the filter ({}); its moment, {}, lies outside{}",
                list(&inside),
                describe(&moment, self.task.is_some()),
                if outside.is_empty() {
                    String::new()
                } else {
                    format!(", as does {}", list(&outside))
                }
            )),
        }
    }

    /// Keep the findings of `report` that are inside the filter and record
    /// which filters applied in `summary.filters`. The analysis itself (and
    /// `summary.verdict`, `summary.findings`) stays the whole trace's. A
    /// no-op without filters: the report stays byte for byte what it was.
    pub fn apply(&self, report: &mut Report, seen: &Seen) {
        if self.is_empty() {
            return;
        }
        let total = report.findings.len() as u64;
        let findings = std::mem::take(&mut report.findings);
        let mut kept = Vec::with_capacity(findings.len());
        let mut notes = Vec::new();
        for f in findings {
            match self.place(report, &f, seen) {
                Placement::Hidden => {}
                Placement::Reported { note } => {
                    if let Some(note) = note {
                        notes.push(FindingNote {
                            finding: kept.len() as u64 + 1,
                            line: f.line,
                            note,
                        });
                    }
                    kept.push(f);
                }
            }
        }
        let mut verdicts: Vec<&'static str> = kept.iter().map(|f| f.verdict.name()).collect();
        verdicts.sort_unstable();
        verdicts.dedup();
        let verdict_reported = match verdicts.as_slice() {
            [] => "clean".to_string(),
            [one] => (*one).to_string(),
            _ => "mixed".to_string(),
        };
        report.summary.filters = Some(FilterSummary {
            applied: self.applied(),
            findings_total: total,
            findings_reported: kept.len() as u64,
            verdict_reported,
            notes,
        });
        report.findings = kept;
        // `--history`/`--frame`: the frame's life inside the task, CPU and
        // time filters.
        if let Some(h) = report.history.as_mut() {
            h.events.retain(|e| self.timeline_entry_inside(e));
        }
    }
}

fn describe(p: &Point<'_>, with_task: bool) -> String {
    let mut s = format!("line {}", p.line);
    let cpus: Vec<String> = match p.cpu {
        Some(c) => vec![c.to_string()],
        None => p.cpus.iter().map(u32::to_string).collect(),
    };
    let mut facts = Vec::new();
    if !cpus.is_empty() {
        facts.push(format!("CPU {}", cpus.join(",")));
    }
    if !p.ts.is_empty() {
        facts.push(p.ts.to_string());
    }
    if let Some(t) = p.task.filter(|_| with_task) {
        facts.push(t.to_string());
    }
    if !facts.is_empty() {
        s += &format!(" ({})", facts.join(", "));
    }
    s
}

fn list(items: &[String]) -> String {
    const MAX: usize = 6;
    if items.len() <= MAX {
        items.join("; ")
    } else {
        format!(
            "{}; and {} more",
            items[..MAX].join("; "),
            items.len() - MAX
        )
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u64::from_str_radix(h, 16).ok()
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_args())
    }
}

/// The filters that fit one finding, for the "re-analyze with" line of
/// `xskdbg record` and `soak`: its socket (anchored, escaped) and a window
/// around it: from its earliest evidence (highlighted timeline entries,
/// consequences) to its first consequence after its moment, `pad_ns`
/// wider either side. `None` for a finding with neither socket nor time.
pub fn around_finding(f: &Finding, pad_ns: u64) -> Option<Applied> {
    let evidence = f
        .timeline
        .iter()
        .filter(|e| e.highlighted)
        .filter_map(|e| e.ts_ns)
        .chain(f.consequences.iter().filter_map(|c| c.ts_ns));
    around(f.socket.as_deref(), f.ts_ns, evidence, pad_ns)
}

/// [`around_finding`] from the parts of a finding (as a `--json` report
/// gives them): its socket, its moment and its evidence's moments
/// (nanoseconds).
pub fn around(
    socket: Option<&str>,
    moment_ns: Option<u64>,
    evidence_ns: impl IntoIterator<Item = u64>,
    pad_ns: u64,
) -> Option<Applied> {
    let mut a = Applied {
        socket: socket.map(|s| format!("^{}$", regex::escape(s))),
        ..Applied::default()
    };
    if let Some(t) = moment_ns {
        let (mut from, mut to) = (t, t);
        let mut next_after: Option<u64> = None;
        for e in evidence_ns {
            from = from.min(e);
            if e <= t {
                continue;
            }
            next_after = Some(next_after.map_or(e, |n| n.min(e)));
        }
        if let Some(n) = next_after {
            to = n;
        }
        a.since = Some(secs(from.saturating_sub(pad_ns)));
        // Rounded up, so that the window's last microsecond is inside.
        a.until = Some(secs(to.saturating_add(pad_ns).saturating_add(999)));
    }
    (a.socket.is_some() || a.since.is_some()).then_some(a)
}

/// The `xskdbg analyze` command that shows `f` alone in `trace`, filtered
/// to its socket and a window of 1 ms around its evidence.
pub fn reanalyze_command(f: &Finding, trace: &str) -> Option<String> {
    around_finding(f, REANALYZE_PAD_NS).map(|a| reanalyze_with(&a, trace))
}

/// `xskdbg analyze FILTERS TRACE`, shell-quoted.
pub fn reanalyze_with(a: &Applied, trace: &str) -> String {
    format!("xskdbg analyze {} {}", a.to_args(), shell_quote(trace))
}

/// How much wider than a finding's evidence the window of
/// [`reanalyze_command`] is, either side.
pub const REANALYZE_PAD_NS: u64 = 1_000_000;

/// Nanoseconds as trace seconds with microseconds (`609766.698523`),
/// rounded outwards by the caller's padding.
fn secs(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, ns % 1_000_000_000 / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let c = CpuList::new("0,2-3, 7").unwrap();
        assert!(c.contains(0) && c.contains(2) && c.contains(3) && c.contains(7));
        assert!(!c.contains(1) && !c.contains(4));
        for bad in ["", "a", "3-1", "1,,2", "0-", "99999"] {
            assert!(CpuList::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_compare_in_the_entry_clock() {
        let b = TsBound::new("609766.698523").unwrap();
        assert_eq!(b.value(true), Some(609_766_698_523_000));
        assert_eq!(b.value(false), None);
        let c = TsBound::new("1234").unwrap();
        assert_eq!(c.value(true), Some(1_234_000_000_000));
        assert_eq!(c.value(false), Some(1234));
        for bad in ["", "x", "12:30", "1.2.3", "-5"] {
            assert!(TsBound::new(bad).is_err(), "{bad:?}");
        }
        let f = Filter {
            since: Some(TsBound::new("10").unwrap()),
            until: Some(TsBound::new("10.5").unwrap()),
            ..Filter::default()
        };
        assert!(f.time_inside(Some(10_000_000_000), 0));
        assert!(f.time_inside(Some(10_500_000_000), 0));
        assert!(!f.time_inside(Some(10_500_000_001), 0));
        assert!(!f.time_inside(Some(9_999_999_999), 0));
        // A counter clock: a fractional bound cannot be compared, so only
        // --since 10 applies.
        assert!(f.time_inside(None, 11) && !f.time_inside(None, 9));
    }

    #[test]
    fn bad_patterns_carry_the_regex_error() {
        let e = Pattern::new("ingress(").unwrap_err();
        assert!(e.contains("unclosed group"), "{e}");
        assert!(Pattern::new("q:1$").unwrap().is_match("ingress q:1"));
    }

    #[test]
    fn args_are_shell_quoted() {
        let a = Applied {
            socket: Some("^ingress q:1$".into()),
            cpus: Some("0,2".into()),
            since: Some("5.000001".into()),
            ..Applied::default()
        };
        assert_eq!(
            a.to_args(),
            "--socket '^ingress q:1$' --cpus 0,2 --since 5.000001"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_window_around_a_finding() {
        let a = around(
            Some("inner q:0"),
            Some(14_705_034_000),
            [14_711_038_000, 14_693_039_000, 14_720_000_000],
            REANALYZE_PAD_NS,
        )
        .unwrap();
        assert_eq!(
            reanalyze_with(&a, "out/trace.txt"),
            "xskdbg analyze --socket '^inner q:0$' --since 14.692039 --until 14.712038 out/trace.txt"
        );
        assert!(around(None, None, [], 0).is_none());
    }

    #[test]
    fn seconds_with_microseconds() {
        assert_eq!(secs(609_766_698_523_999), "609766.698523");
        assert_eq!(secs(5_000_001_000), "5.000001");
    }
}
