//! The report's summary: counts, CPUs, sockets, the chunk mapping, the
//! backend, and the notes that say what the trace could not show.

use super::raw::MAX_RAW;
use super::state::At;
use super::umems::shown;
use super::Analyzer;
use crate::chunk::Mapping;
use crate::parse::FlushMode;
use crate::report::{
    ChunkInfo, CpuSummary, History, OverallVerdict, ProbeInfo, SocketSummary, Summary,
};

impl Analyzer {
    /// The summary of a finished analysis.
    pub(super) fn summary(
        &self,
        verdict: OverallVerdict,
        findings: usize,
        complete: Option<At>,
        unjudged: u64,
    ) -> Summary {
        let notes = self.notes(unjudged);
        let mut cpus: Vec<CpuSummary> = self
            .cpus
            .iter()
            .filter(|(_, c)| c.events > 0)
            .map(|(n, c)| CpuSummary {
                cpu: *n,
                events: c.events,
                first: c.first.tsref(),
                last: c.last.tsref(),
                buffer_started: c.marker,
            })
            .collect();
        cpus.sort_by_key(|c| c.cpu);

        let mut sockets: Vec<SocketSummary> = self
            .asocks
            .iter()
            .map(|s| SocketSummary {
                socket: s.name.clone(),
                xs: s
                    .ks
                    .map(|k| vec![format!("{:#x}", self.ksocks[k].xs)])
                    .unwrap_or_default(),
                rx: s.rx,
                krx: s.ks.map_or(0, |k| self.ksocks[k].krx),
            })
            .collect();
        for k in self.ksocks.iter().filter(|k| k.asock.is_none()) {
            sockets.push(SocketSummary {
                socket: format!("xs={:#x}", k.xs),
                xs: vec![format!("{:#x}", k.xs)],
                rx: 0,
                krx: k.krx,
            });
        }

        let (mode, size) = match self.mapping {
            Some(Mapping::Unaligned) => ("unaligned", None),
            Some(Mapping::Aligned { chunk }) => ("aligned", Some(format!("{chunk:#x}"))),
            None => ("aligned", None),
        };
        Summary {
            verdict,
            findings: findings as u64,
            lines: self.lines,
            events: self.events,
            lines_skipped: self.skipped,
            skipped_lines: self.skipped_lines.clone(),
            complete_from: complete.map(|c| c.tsref()),
            unjudged_before_complete: unjudged,
            cpus,
            recycled_reorders: self.recycled,
            chunk: ChunkInfo {
                mode,
                size,
                source: self.chunk_source,
                samples: self.samples.len() as u64,
                note: self.chunk_note.clone(),
            },
            backend: self.probe.clone().or_else(|| {
                self.kernel_rx_seen.then(|| ProbeInfo {
                    backend: "perf-probe".into(),
                    kernel: None,
                    flush: if self.ksocks.iter().any(|k| k.flush_seen) {
                        FlushMode::Exact
                    } else {
                        FlushMode::None
                    },
                })
            }),
            sockets,
            frames: self.frames.len() as u64,
            entries_in_buffer: self.entries.map(|e| e.0),
            entries_written: self.entries.map(|e| e.1),
            lost_events: self.lost,
            notes,
            filters: None,
        }
    }

    /// What the trace could not show, and why.
    fn notes(&self, unjudged: u64) -> Vec<String> {
        let mut notes = Vec::new();
        if self.raw_overflow > 0 {
            notes.push(format!(
                "{} further anomalies were not recorded (limit {MAX_RAW})",
                self.raw_overflow
            ));
        }
        for k in &self.ksocks {
            if k.krx > 0 && !k.flush_seen {
                notes.push(format!(
                    "xs {:#x}: no flush or NAPI poll events, so producer overlap (concurrent_producer) cannot be checked",
                    k.xs
                ));
            }
        }
        if self.flush_mode == Some(FlushMode::Inferred) {
            notes.push("probe header says flush=inferred: producer sections end at an inferred point; an overlap is a finding only when evidence ties something to it (a proven poisoned read makes it kernel; a krx that finds its own slot already published is proof on its own)".into());
        }
        if self.inferred_untied > 0 {
            notes.push(format!(
                "{} producer overlap(s) whose end is only inferred (a NAPI poll end or flush=inferred) and that nothing \
                 bad followed: not findings (a correct driver shows such overlaps between napi_complete_done and that point)",
                self.inferred_untied
            ));
        }
        if self.flush_mode == Some(FlushMode::None) {
            notes.push("probe header says flush=none: without flush events producer overlap cannot be proven".into());
        }
        if !self.app_free_traced && self.app_taken > 0 {
            notes.push(
                "the application's own free list is not traced (no free/hold lines): frames it keeps cannot be told \
                 from leaked ones, so frame_leak only covers frames the rings passed by"
                    .into(),
            );
        }
        if !self.kernel_rx_seen {
            notes.push("no kernel receive events: RX positions cannot be compared with what the kernel wrote".into());
        }
        if let Some((inb, w)) = self.entries {
            if w > inb {
                notes.push(format!(
                    "the ring buffers wrapped: {} of {w} entries were overwritten",
                    w - inb
                ));
            }
        }
        if let Some((addr, len, why, at)) = self.tx_rejected_first {
            notes.push(format!(
                "{} TX descriptor(s) the kernel refuses to send (xp_validate_desc: it sends nothing and counts \
                 them in tx_invalid_descs), left out of their frames' histories: the frame stays the \
                 application's. {} came back on COMPLETION (the copy mode of recent kernels, Debian's 6.12.118 \
                 and 6.18, completes a refused descriptor; older kernels and zero-copy never do). The first: \
                 {addr:#x} len {len:#x} at {} ({why})",
                self.tx_rejected,
                self.refused_completed,
                at.cite()
            ));
        }
        if self.refused_recorder_lines > 0 {
            notes.push(format!(
                "{} recorder violation line(s) about refused TX descriptors (a second send of a frame beside a \
                 refused descriptor of it, or a refused descriptor handed back on COMPLETION) are not findings: \
                 the recorder that wrote them did not know which descriptors the kernel refuses (upgrade it)",
                self.refused_recorder_lines
            ));
        }
        self.rx_full_notes(&mut notes);
        if let Some(u) = self
            .undeclared_to
            .filter(|_| self.undeclared_cut().is_some())
        {
            notes.push(format!(
                "the trace names {} UMEMs, but its ring lines up to {} came before any line naming one (the \
                 recorder's declarations at its start were overwritten): frames of different UMEMs cannot be told \
                 apart there, so evidence up to that point is not judged (record with a larger --buffer-kb)",
                self.umems.len(),
                u.cite()
            ));
        }
        if unjudged > 0 {
            notes.push(format!(
                "{unjudged} anomalies reach back before every CPU's buffer had started (unknown past) and were not judged"
            ));
        }

        notes
    }

    /// `--history`: the descriptor's events.
    pub(super) fn history_report(&mut self) -> Option<History> {
        self.history.take().map(|(h, events, omitted)| History {
            addr: format!("{h:#x}"),
            frame: format!("{:#x}", shown(self.frame_of(h))),
            events,
            omitted,
        })
    }
}
