//! The human report: per finding the verdict, a one-paragraph explanation and
//! the interleaved timeline around it; then a summary. ANSI colors only when
//! asked (the command enables them on a TTY without `NO_COLOR`).

use std::io::{self, Write};

use crate::report::{History, OverallVerdict, Report, TimelineEntry, Verdict};

/// Rendering options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Emit ANSI color escapes.
    pub color: bool,
}

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn verdict(&self, v: Verdict) -> String {
        let code = match v {
            Verdict::Kernel => "1;31",
            Verdict::Application => "1;33",
            Verdict::Inconclusive => "1;36",
            Verdict::Instrumentation => "1;34",
        };
        self.wrap(code, &v.name().to_uppercase())
    }
}

/// Wrap a paragraph at `width` columns with an indent.
fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut col = 0;
    for word in text.split_whitespace() {
        if col > 0 && col + 1 + word.len() > width {
            out.push('\n');
            col = 0;
        }
        if col == 0 {
            out.push_str(indent);
            col = indent.len();
        } else {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out
}

fn timeline_line(p: &Paint, e: &TimelineEntry) -> String {
    let mark = if e.highlighted { ">" } else { " " };
    let mut body = e.body.clone();
    if body.chars().count() > 150 {
        body = body.chars().take(147).collect::<String>() + "...";
    }
    let text = format!(
        "{mark} {:>7} [{:03}] {} {:<24} {}: {}",
        e.line, e.cpu, e.ts, e.task, e.event, body
    );
    if e.highlighted {
        p.bold(&text)
    } else {
        text
    }
}

/// Write the human report.
pub fn human(report: &Report, name: &str, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let p = Paint { on: style.color };
    let s = &report.summary;
    for (i, f) in report.findings.iter().enumerate() {
        writeln!(
            w,
            "{} {} — verdict {} ({})",
            p.bold(&format!("finding {}:", i + 1)),
            p.bold(f.kind.name()),
            p.verdict(f.verdict),
            f.rule
        )?;
        let mut facts = Vec::new();
        if let Some(a) = &f.addr {
            facts.push(format!("addr {a}"));
        }
        if let Some(fr) = &f.frame {
            facts.push(format!("frame {fr}"));
        }
        if let Some(sk) = &f.socket {
            facts.push(format!("socket {sk}"));
        }
        if let Some(xs) = &f.xs {
            facts.push(format!("xs {xs}"));
        }
        if let Some(slot) = f.slot {
            facts.push(format!("slot {slot:#x}"));
        }
        let cpus: Vec<String> = f.cpus.iter().map(u32::to_string).collect();
        facts.push(format!("CPUs {}", cpus.join(",")));
        facts.push(format!("line {} at {}", f.line, f.ts));
        writeln!(w, "  {}", facts.join("  "))?;
        writeln!(w, "{}", wrap(&f.explanation, "  ", 100))?;
        if let Some(fs) = &s.filters {
            for n in fs.notes.iter().filter(|n| n.finding == i as u64 + 1) {
                writeln!(w, "{}", wrap(&format!("filter: {}", n.note), "  ", 100))?;
            }
        }
        for a in &f.also {
            writeln!(
                w,
                "  also: {} ({}, {}) — {}",
                a.kind.name(),
                a.rule,
                a.verdict.name(),
                a.explanation
            )?;
        }
        if !f.consequences.is_empty() {
            writeln!(w, "  consequences (same frame or socket, later):")?;
            for c in &f.consequences {
                writeln!(
                    w,
                    "    line {} {}: {} {}",
                    c.line,
                    c.ts,
                    c.kind.name(),
                    c.addr.as_deref().unwrap_or("")
                )?;
            }
            if f.consequences_omitted > 0 {
                writeln!(w, "    ... and {} more", f.consequences_omitted)?;
            }
        }
        if !f.timeline.is_empty() {
            writeln!(w, "  {}", p.dim("timeline (> = involved):"))?;
            for e in &f.timeline {
                writeln!(w, "  {}", timeline_line(&p, e))?;
            }
        }
        writeln!(w)?;
    }
    if let Some(h) = &report.history {
        history(h, &p, w)?;
    }
    writeln!(w, "{}", p.bold(&format!("summary of {name}:")))?;
    writeln!(
        w,
        "  {} lines, {} events, {} skipped{}",
        s.lines,
        s.events,
        s.lines_skipped,
        if s.skipped_lines.is_empty() {
            String::new()
        } else {
            let l: Vec<String> = s.skipped_lines.iter().map(u64::to_string).collect();
            format!(" (first at lines {})", l.join(", "))
        }
    )?;
    writeln!(w, "  {}", s.chunk.note)?;
    if let Some(b) = &s.backend {
        writeln!(
            w,
            "  kernel events from {} (flush: {}){}",
            b.backend,
            serde_json::to_value(b.flush)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            b.kernel
                .as_ref()
                .map(|k| format!(", kernel {k}"))
                .unwrap_or_default()
        )?;
    }
    if let Some(c) = &s.complete_from {
        writeln!(w, "  complete from {} (line {}): every CPU's buffer had started; nothing earlier is judged", c.ts, c.line)?;
    }
    for c in &s.cpus {
        writeln!(
            w,
            "  CPU {:>3}: {:>9} events  {} .. {}{}",
            c.cpu,
            c.events,
            c.first.ts,
            c.last.ts,
            if c.buffer_started {
                "  (buffer wrapped)"
            } else {
                ""
            }
        )?;
    }
    if s.recycled_reorders > 0 {
        writeln!(
            w,
            "  {} out-of-order receives explained by free-list recycling (not findings)",
            s.recycled_reorders
        )?;
    }
    for n in &s.notes {
        writeln!(w, "{}", wrap(&format!("note: {n}"), "  ", 100))?;
    }
    if let Some(fs) = &s.filters {
        writeln!(
            w,
            "{}",
            wrap(
                &format!(
                    "filters: {} — {} of {} findings reported ({}); the whole trace was judged",
                    fs.applied.to_args(),
                    fs.findings_reported,
                    fs.findings_total,
                    fs.verdict_reported
                ),
                "  ",
                100
            )
        )?;
    }
    let verdict = match s.verdict {
        OverallVerdict::Clean => p.wrap("1;32", "clean: no finding"),
        OverallVerdict::Kernel => p.wrap("1;31", "verdict: KERNEL"),
        OverallVerdict::Application => p.wrap("1;33", "verdict: APPLICATION"),
        OverallVerdict::Inconclusive => p.wrap("1;36", "verdict: INCONCLUSIVE"),
        OverallVerdict::Mixed => p.wrap("1;35", "verdict: MIXED (see each finding)"),
        OverallVerdict::Instrumentation => p.wrap(
            "1;34",
            "verdict: INSTRUMENTATION (the recording is wrong: fix it and record again before trusting the other findings)",
        ),
    };
    // With filters, the last line still speaks for the whole trace.
    let whole = if s.filters.is_some() {
        "whole trace: "
    } else {
        ""
    };
    if s.findings > 0 {
        writeln!(
            w,
            "  {whole}{} finding{}; {}",
            s.findings,
            if s.findings == 1 { "" } else { "s" },
            verdict
        )?;
    } else {
        writeln!(w, "  {whole}{verdict}")?;
    }
    Ok(())
}

/// One descriptor's life with a lane per CPU.
fn history(h: &History, p: &Paint, w: &mut dyn Write) -> io::Result<()> {
    let mut cpus: Vec<u32> = h.events.iter().map(|e| e.cpu).collect();
    cpus.sort_unstable();
    cpus.dedup();
    writeln!(
        w,
        "{}",
        p.bold(&format!(
            "history of {} (frame {}): {} events",
            h.addr,
            h.frame,
            h.events.len() as u64 + h.omitted
        ))
    )?;
    let lanes: Vec<String> = cpus
        .iter()
        .map(|c| format!("{:<6}", format!("CPU{c}")))
        .collect();
    writeln!(w, "  {}", lanes.join(""))?;
    for e in &h.events {
        let lane: String = cpus
            .iter()
            .map(|c| if *c == e.cpu { "*     " } else { "|     " })
            .collect();
        let mut body = e.body.clone();
        if body.chars().count() > 110 {
            body = body.chars().take(107).collect::<String>() + "...";
        }
        writeln!(
            w,
            "  {lane}{:>7} {} {} {}: {}",
            e.line, e.ts, e.task, e.event, body
        )?;
    }
    if h.omitted > 0 {
        writeln!(w, "  ... {} more events not kept", h.omitted)?;
    }
    writeln!(w)
}
