//! Judging, at the end: findings whose evidence reaches back before every
//! CPU's buffer had started are dropped (unknown past); rules firing at the
//! same moment fold into one finding (`also`); a later anomaly of a frame or
//! socket that already has a finding goes under it (`consequences`), and so
//! does a raw tied to it by evidence: one finding per root cause.

use rustc_hash::{FxHashMap, FxHashSet};

use super::raw::{Link, Raw};
use super::rules::Rule;
use super::state::{At, CpuState, KSockId, RawId};
use super::umems::shown;
use super::Analyzer;
use crate::report::{Finding, Kind, OverallVerdict, Related, Report, Verdict, SCHEMA_VERSION};
use crate::timeline::Snap;
use crate::Error;

/// At most this many consequences under one finding; the rest are counted.
const MAX_CONSEQUENCES: usize = 50;

/// A finding to be: its primary raw and what fired at the same moment.
struct Group {
    primary: Raw,
    also: Vec<Raw>,
}

impl Analyzer {
    /// Like [`Analyzer::finish`], but an input without any entry is an error.
    pub fn finish_checked(self) -> Result<Report, Error> {
        if self.events == 0 {
            return Err(Error::NoEntries {
                lines: self.lines,
                skipped: self.skipped,
                first: self
                    .skipped_lines
                    .first()
                    .map(|l| format!(", first at line {l}"))
                    .unwrap_or_default(),
            });
        }
        Ok(self.finish())
    }

    /// Finish the analysis and build the report.
    pub fn finish(mut self) -> Report {
        if self.mapping.is_none() {
            self.decide();
        }
        self.leaks();
        self.audit_leaks();
        self.settle_overlaps();
        self.drop_after_freeze();
        let complete = self.complete_from();
        let judged_from = match (complete.map(|c| c.order), self.undeclared_cut()) {
            (Some(c), Some(u)) => Some(c.max(u)),
            (c, u) => c.or(u),
        };
        let (kept, linked, unjudged) = self.judgeable(judged_from);
        let (groups, consequence_links) = group(kept, linked);
        let findings = self.file(groups, consequence_links);
        let verdict = overall(&findings);
        let summary = self.summary(verdict, findings.len(), complete, unjudged);
        let history = self.history_report();
        Report {
            schema_version: SCHEMA_VERSION,
            findings,
            summary,
            history,
        }
    }

    /// In a trace of several UMEMs whose first ring lines came before any
    /// UMEM was named (the recorder declares them once, at the start, and
    /// the start was overwritten), the frames of those lines were keyed as
    /// if of one UMEM: evidence before the last of them is not judged.
    pub(super) fn undeclared_cut(&self) -> Option<u64> {
        if self.umems.len() < 2 {
            return None;
        }
        self.undeclared_to.map(|a| a.order + 1)
    }

    /// When every CPU's buffer had started: the first event of the CPU
    /// that started last (among those with a buffer-start marker, when any
    /// has one), or of the CPU that started first when nothing was lost.
    fn complete_from(&self) -> Option<At> {
        let marked: Vec<&CpuState> = self
            .cpus
            .values()
            .filter(|c| c.marker && c.events > 0)
            .collect();
        let nothing_lost = self.entries.is_some_and(|(inb, w)| inb >= w) && self.lost == 0;
        if !marked.is_empty() {
            marked
                .iter()
                .map(|c| c.first)
                .max_by_key(|a| (a.order, a.line))
        } else if nothing_lost {
            self.cpus
                .values()
                .filter(|c| c.events > 0)
                .map(|c| c.first)
                .min_by_key(|a| (a.order, a.line))
        } else {
            self.cpus
                .values()
                .filter(|c| c.events > 0)
                .map(|c| c.first)
                .max_by_key(|a| (a.order, a.line))
        }
    }

    /// The raw findings that can be judged (their evidence is all after
    /// `cf`), in trace order, and apart those tied to another by evidence;
    /// how many could not be judged.
    fn judgeable(&mut self, cf: Option<u64>) -> (Vec<Raw>, Vec<Raw>, u64) {
        let raws = std::mem::take(&mut self.raws);
        let mut unjudged = 0u64;
        let mut kept: Vec<Raw> = Vec::with_capacity(raws.len());
        for r in raws {
            if self.dropped.contains(&r.id) {
                continue;
            }
            if cf.is_some_and(|c| r.evidence_from < c) {
                unjudged += 1;
            } else {
                kept.push(r);
            }
        }
        // Raws tied to another by evidence go where their target went; a
        // tie to a raw that was not judged is dropped (judged on its own).
        let kept_ids: FxHashSet<RawId> = kept.iter().map(|r| r.id).collect();
        let (linked, mut kept): (Vec<Raw>, Vec<Raw>) =
            kept.into_iter().partition(|r| match r.link {
                Link::Also(t) | Link::Consequence(t) => kept_ids.contains(&t),
                Link::None => false,
            });
        kept.sort_by_key(|r| (r.at.line, r.kind.rank(), r.recorder));
        (kept, linked, unjudged)
    }

    /// Each group's finding, or a consequence filed under an earlier one.
    fn file(&self, groups: Vec<Group>, consequence_links: Vec<Raw>) -> Vec<Finding> {
        let mut findings: Vec<Finding> = Vec::new();
        let mut placed: FxHashMap<RawId, usize> = FxHashMap::default();
        let mut root_frames: FxHashMap<u64, usize> = FxHashMap::default();
        let mut root_xs: FxHashMap<KSockId, usize> = FxHashMap::default();
        for g in groups {
            let p = &g.primary;
            let by_frame = p
                .frames
                .iter()
                .chain(g.also.iter().flat_map(|r| r.frames.iter()))
                .find_map(|f| root_frames.get(f).copied());
            let by_sock =
                p.ks.filter(|_| {
                    matches!(
                        p.kind,
                        Kind::ConcurrentProducer | Kind::PoisonedDescriptor | Kind::RxMismatch
                    )
                })
                .and_then(|ks| root_xs.get(&ks).copied());
            // Proof of a second producer is not a mere consequence of an
            // earlier overlap that could not be proven.
            let root = [by_frame, by_sock].into_iter().flatten().find(|&r| {
                !(p.kind == Kind::ConcurrentProducer
                    && p.verdict == Verdict::Kernel
                    && findings[r].verdict != Verdict::Kernel)
            });
            if let Some(root) = root {
                let f = &mut findings[root];
                for e in f.timeline.iter_mut().filter(|e| e.line == p.at.line) {
                    e.highlighted = true;
                }
                add_consequence(f, related(p));
                placed.insert(p.id, root);
                for r in &g.also {
                    placed.insert(r.id, root);
                }
                continue;
            }
            let idx = findings.len();
            for f in p
                .frames
                .iter()
                .chain(g.also.iter().flat_map(|r| r.frames.iter()))
            {
                root_frames.entry(*f).or_insert(idx);
            }
            if let Some(ks) = p.ks.filter(|_| p.kind == Kind::ConcurrentProducer) {
                if p.verdict == Verdict::Kernel {
                    // Later anomalies of the socket belong to the proven race.
                    let e = root_xs.entry(ks).or_insert(idx);
                    if *e != idx && findings[*e].verdict != Verdict::Kernel {
                        *e = idx;
                    }
                } else {
                    root_xs.entry(ks).or_insert(idx);
                }
            }
            placed.insert(p.id, idx);
            for r in &g.also {
                placed.insert(r.id, idx);
            }
            let Group { primary, also } = g;
            findings.push(self.finding_of(primary, also));
        }
        // Consequences tied by evidence (a read before the receive that
        // proves its slot was published early).
        let mut late: Vec<Finding> = Vec::new();
        for r in consequence_links {
            let Link::Consequence(t) = r.link else {
                continue;
            };
            match placed.get(&t) {
                Some(&root) => {
                    let f = &mut findings[root];
                    for e in f.timeline.iter_mut().filter(|e| e.line == r.at.line) {
                        e.highlighted = true;
                    }
                    add_consequence(f, related(&r));
                }
                None => late.push(self.finding_of(r, Vec::new())),
            }
        }
        if !late.is_empty() {
            findings.extend(late);
            findings.sort_by_key(|f| f.line);
        }
        for f in &mut findings {
            f.consequences.sort_by_key(|c| c.line);
        }

        findings
    }

    /// The finding a group's primary raw becomes.
    fn finding_of(&self, mut primary: Raw, also: Vec<Raw>) -> Finding {
        if primary.socket.is_none() {
            // The socket may have been joined to its xs after the finding.
            primary.socket = self.sock_name(primary.ks, None);
        }
        Finding {
            kind: primary.kind,
            verdict: primary.verdict,
            rule: primary.rule.as_str().to_string(),
            addr: primary.addr.map(|a| format!("{a:#x}")),
            frame: primary.frame.map(|f| format!("{:#x}", shown(f))),
            ts: primary.at.ts_text(),
            ts_ns: primary.at.ns(),
            cpus: primary.cpus,
            xs: primary.xs.map(|x| format!("{x:#x}")),
            socket: primary.socket,
            slot: primary.slot,
            line: primary.at.line,
            explanation: primary.explanation.into_text(),
            also: also.iter().map(related).collect(),
            consequences: Vec::new(),
            consequences_omitted: 0,
            timeline: primary.timeline.iter().map(Snap::to_public).collect(),
        }
    }
}

/// Same moment, one group; a raw tied to another's group by `Link::Also`
/// joins it. The raws tied as consequences, in trace order.
fn group(kept: Vec<Raw>, linked: Vec<Raw>) -> (Vec<Group>, Vec<Raw>) {
    // Same moment → one group (recorder reports join the analyzer's
    // finding on the same frame within a few lines).
    let mut groups: Vec<Group> = Vec::new();
    for r in kept {
        if let Some(g) = groups.last_mut() {
            let same_line = g.primary.at.line == r.at.line;
            let near_recorder = r.recorder
                && r.at.line.saturating_sub(g.primary.at.line) <= 16
                && (r.frames.iter().any(|f| g.primary.frames.contains(f))
                    || (r.addr.is_some() && r.addr == g.primary.addr));
            if same_line || near_recorder {
                g.also.push(r);
                continue;
            }
        }
        groups.push(Group {
            primary: r,
            also: Vec::new(),
        });
    }
    let mut consequence_links: Vec<Raw> = Vec::new();
    {
        let mut group_of: FxHashMap<RawId, usize> = FxHashMap::default();
        for (i, g) in groups.iter().enumerate() {
            group_of.insert(g.primary.id, i);
            for r in &g.also {
                group_of.insert(r.id, i);
            }
        }
        for r in linked {
            match r.link {
                Link::Also(t) => {
                    // Its target is itself tied elsewhere: folded into
                    // the target's explanation, nothing more to show.
                    if let Some(&i) = group_of.get(&t) {
                        groups[i].also.push(r);
                    }
                }
                Link::Consequence(_) => consequence_links.push(r),
                Link::None => {}
            }
        }
    }
    consequence_links.sort_by_key(|r| r.at.line);
    (groups, consequence_links)
}

/// The report's verdict: `instrumentation` when any finding says the
/// recording is wrong (the others may be its artefacts), else the findings'
/// one verdict, or mixed.
fn overall(findings: &[Finding]) -> OverallVerdict {
    if findings.is_empty() {
        OverallVerdict::Clean
    } else if findings
        .iter()
        .any(|f| f.verdict == Verdict::Instrumentation)
    {
        OverallVerdict::Instrumentation
    } else {
        let first = findings[0].verdict;
        if findings.iter().all(|f| f.verdict == first) {
            match first {
                Verdict::Kernel => OverallVerdict::Kernel,
                Verdict::Application => OverallVerdict::Application,
                Verdict::Inconclusive => OverallVerdict::Inconclusive,
                Verdict::Instrumentation => OverallVerdict::Instrumentation,
            }
        } else {
            OverallVerdict::Mixed
        }
    }
}

/// File `r` under `f`, at most [`MAX_CONSEQUENCES`] of them. A consequence
/// of another kind than the finding's own (the poisoned or mismatched read
/// after hundreds of overlaps) takes the place of the latest repeat of the
/// finding's own kind; a poisoned or mismatched read is never dropped.
/// Under a COMPLETION ring's overrun, whose consequences are mostly
/// completions out of TX order, the more telling ones push those out (see
/// [`overrun_rank`]).
fn add_consequence(f: &mut Finding, r: Related) {
    if f.consequences.len() < MAX_CONSEQUENCES {
        f.consequences.push(r);
        return;
    }
    if f.rule.starts_with(Rule::CompTwice.as_str()) {
        let rank = overrun_rank(&r);
        if let Some(i) = f.consequences.iter().rposition(|c| overrun_rank(c) < rank) {
            f.consequences.remove(i);
            f.consequences.push(r);
        }
        f.consequences_omitted += 1;
        return;
    }
    if r.kind != f.kind {
        if let Some(i) = f.consequences.iter().rposition(|c| c.kind == f.kind) {
            f.consequences.remove(i);
            f.consequences.push(r);
            f.consequences_omitted += 1;
            return;
        }
        if matches!(r.kind, Kind::PoisonedDescriptor | Kind::RxMismatch) {
            f.consequences.push(r);
            return;
        }
    }
    f.consequences_omitted += 1;
}

/// What a consequence of a COMPLETION ring's overrun shows: what the
/// application did with a frame it was handed twice first, then the other
/// frames handed twice, the lost ones, and last the completions out of TX
/// order (hundreds of them once the ring lost an entry).
fn overrun_rank(c: &Related) -> u8 {
    if c.rule.starts_with(Rule::CompTwice.as_str()) {
        return 2;
    }
    match (c.verdict, c.kind) {
        (Verdict::Application | Verdict::Kernel, _) => 3,
        (_, Kind::FifoOrder) => 0,
        _ => 1,
    }
}

/// How a raw reads under another finding (`also`, `consequences`).
fn related(r: &Raw) -> Related {
    Related {
        kind: r.kind,
        rule: r.rule.as_str().to_string(),
        verdict: r.verdict,
        addr: r.addr.map(|a| format!("{a:#x}")),
        frame: r.frame.map(|f| format!("{:#x}", shown(f))),
        ts: r.at.ts_text(),
        ts_ns: r.at.ns(),
        line: r.at.line,
        cpus: r.cpus.clone(),
        explanation: r.explanation.render(),
    }
}
