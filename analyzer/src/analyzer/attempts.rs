//! Receive attempts: a kernel receive line is an attempt until something
//! says its RX slot was reserved.
//!
//! Every entry probe on `__xsk_rcv_zc` fires before
//! `xskq_prod_reserve_desc()` decides: the seed story's `__xsk_rcv_zc:7`, the
//! `tracefs` backend's `__xsk_rcv_zc_L7`, the fentry/kprobe `krx`. With the
//! RX ring full the reservation fails (`rx_queue_full++`), `xp_free()` puts
//! the buffer back at the head of the pool's free list, and the next packet
//! takes the same frame again: a slow consumer makes runs of "receives" of
//! one frame into one socket that are not receives.
//!
//! An attempt ends
//! - failed: `kxdperr why=rcv` (fentry, kprobe), a return probe's non-zero
//!   `$retval` (`__xsk_rcv_zc_ret`, tracefs), or, without an outcome line
//!   (the seed's vocabulary, older traces), a later attempt that supersedes
//!   it: on the same (`xs`, slot) whatever the frame; without a slot, of the
//!   same frame into the same socket with no application read of it between;
//! - confirmed: `krxdone`, a zero `$retval`, the application's read of it, or
//!   a flush that covers it (a `prod=` past its slot; without one, a flush
//!   of its socket on its CPU: `xsk_flush` runs only after a successful
//!   redirect). The tracepoint backend prints `krx` after the reservation
//!   (`mode=`): confirmed at once.
//!
//! A failed attempt is taken back from every checker it reached (the frame
//! is the kernel's again, on its free list; its RX position, its producer
//! section). A run of failed attempts on one socket is an RX-full episode:
//! the report's note counts them, never a finding.

use super::state::{ASockId, At, Attempt, KSockId};
use super::umems::shown;
use super::Analyzer;

/// Unconfirmed attempts kept per socket; the oldest then counts as
/// confirmed (a sane trace has one per CPU at a time).
const MAX_PENDING: usize = 64;

impl Analyzer {
    /// Before a receive reaches the checkers: the attempts it supersedes
    /// failed.
    pub(super) fn attempt_supersedes(&mut self, ks: KSockId, f: u64, slot: Option<u64>) {
        while let Some(i) = self.ksocks[ks]
            .attempts
            .iter()
            .rposition(|a| match (slot, a.slot) {
                (Some(s), Some(t)) => s == t,
                // Confirmed by a read otherwise: none came between.
                _ => a.frame == f,
            })
        {
            self.attempt_failed(ks, i, false);
        }
    }

    /// After a receive reached the checkers: an attempt until confirmed,
    /// unless its line was printed after the reservation.
    pub(super) fn attempt_begin(
        &mut self,
        ks: KSockId,
        f: u64,
        slot: Option<u64>,
        at: At,
        reserved: bool,
    ) {
        if let Some(c) = self.cpus.get_mut(&at.cpu) {
            c.attempt = Some((ks, at.line));
        }
        if reserved {
            self.run_ended(ks);
            return;
        }
        let k = &mut self.ksocks[ks];
        if k.attempts.len() >= MAX_PENDING {
            k.attempts.remove(0);
        }
        k.attempts.push(Attempt { frame: f, slot, at });
    }

    /// An outcome line: `kxdperr why=rcv` (socket and slot) or a return
    /// probe (this CPU's latest attempt). `ret` 0: reserved.
    pub(super) fn attempt_outcome(
        &mut self,
        ks: Option<KSockId>,
        slot: Option<u64>,
        ret: i64,
        at: At,
    ) {
        let latest = self.cpus.get(&at.cpu).and_then(|c| c.attempt);
        let found = match ks {
            Some(ks) => self.ksocks[ks]
                .attempts
                .iter()
                .rposition(|a| a.at.cpu == at.cpu && (slot.is_none() || a.slot == slot))
                .map(|i| (ks, i)),
            None => latest.and_then(|(ks, line)| {
                let i = self.ksocks[ks]
                    .attempts
                    .iter()
                    .rposition(|a| a.at.line == line)?;
                Some((ks, i))
            }),
        };
        let Some((ks, i)) = found else { return };
        if ret == 0 {
            self.ksocks[ks].attempts.remove(i);
            self.run_ended(ks);
        } else {
            self.attempt_failed(ks, i, true);
        }
    }

    /// `krxdone`: the attempt on that slot reserved it and wrote it.
    pub(super) fn attempt_written(&mut self, ks: KSockId, slot: u64, at: At) {
        let k = &mut self.ksocks[ks];
        let i = k
            .attempts
            .iter()
            .rposition(|a| a.slot == Some(slot) && a.at.cpu == at.cpu)
            .or_else(|| k.attempts.iter().rposition(|a| a.slot == Some(slot)));
        if let Some(i) = i {
            k.attempts.remove(i);
            self.run_ended(ks);
        }
    }

    /// A flush of `ks` (producer `prod`, when printed) confirms the attempts
    /// it publishes.
    pub(super) fn attempts_flushed(&mut self, ks: KSockId, prod: Option<u64>, at: At) {
        let k = &mut self.ksocks[ks];
        let before = k.attempts.len();
        k.attempts.retain(|a| match (a.slot, prod) {
            (Some(s), Some(p)) => s >= p,
            _ => a.at.cpu != at.cpu,
        });
        if k.attempts.len() < before {
            self.run_ended(ks);
        }
    }

    /// The application read frame `f` (at position `pos`) from RX of `ks`:
    /// the attempts it shows reserved are confirmed.
    pub(super) fn attempts_read(&mut self, ks: KSockId, f: u64, pos: Option<u64>) {
        let k = &mut self.ksocks[ks];
        if k.attempts.is_empty() {
            return;
        }
        let before = k.attempts.len();
        k.attempts.retain(|a| match (a.slot, pos) {
            (Some(s), Some(p)) => s > p,
            _ => a.frame != f,
        });
        if k.attempts.len() < before {
            self.run_ended(ks);
        }
    }

    /// The recorder's `stats ... rx_full=` of a socket.
    pub(super) fn stats_rx_full(&mut self, a: Option<ASockId>, rx_full: Option<u64>) {
        if let (Some(a), Some(v)) = (a, rx_full) {
            let s = &mut self.asocks[a];
            s.rx_full = Some(s.rx_full.map_or((v, v), |(first, _)| (first, v)));
        }
    }

    /// Attempt `i` of `ks` failed (`proven`: an outcome line says so): take
    /// it back from every checker it reached.
    fn attempt_failed(&mut self, ks: KSockId, i: usize, proven: bool) {
        let a = self.ksocks[ks].attempts.remove(i);
        let line = a.at.line;
        let k = &mut self.ksocks[ks];
        k.krx = k.krx.saturating_sub(1);
        // Its RX position: the kernel wrote nothing there.
        if let Some(j) = k.q.iter().rposition(|e| e.at.line == line) {
            k.q.remove(j);
        }
        if let Some(s) = a.slot {
            if let Some(j) = k.unwritten.iter().rposition(|&x| x == s) {
                k.unwritten.remove(j);
            }
        }
        // Its producer section: it produced nothing.
        for s in &mut k.sections {
            s.intruders.retain(|x| x.0.line != line);
        }
        if let Some(si) = k.sections.iter().position(|s| s.cpu == a.at.cpu) {
            let s = &mut k.sections[si];
            if let Some(j) = s.frames.iter().rposition(|&x| x == a.frame) {
                s.frames.remove(j);
            }
            if s.frames.is_empty() && s.start.line == line {
                k.sections.remove(si);
                if let Some(c) = self.cpus.get_mut(&a.at.cpu) {
                    c.open.retain(|&x| x != ks);
                }
            }
        }
        // The frame: back on the pool's free list, the kernel's still, and
        // the next receive takes it from there (counted as a FILL copy: the
        // place a receive takes frames from).
        if let Some(fs) = self.frames.get_mut(a.frame) {
            if fs.krx > 0 {
                fs.krx -= 1;
                fs.fill += 1;
            }
        }
        let full = &mut self.ksocks[ks].full;
        full.run += 1;
        full.attempts += 1;
        full.proven += u64::from(proven);
        full.first.get_or_insert((a.at, a.frame));
        full.last = a.at;
    }

    /// A receive of `ks` reserved its slot: a run of failed attempts before
    /// it was one RX-full episode.
    fn run_ended(&mut self, ks: KSockId) {
        let full = &mut self.ksocks[ks].full;
        if full.run > 0 {
            full.episodes += 1;
            full.longest = full.longest.max(full.run);
            full.run = 0;
        }
    }

    /// The report's note on each socket's failed attempts.
    pub(super) fn rx_full_notes(&self, notes: &mut Vec<String>) {
        for k in &self.ksocks {
            let full = k.full;
            let Some((first, frame)) = full.first else {
                continue;
            };
            let episodes = full.episodes + u64::from(full.run > 0);
            let longest = full.longest.max(full.run);
            let name = k
                .asock
                .map(|a| format!(" ({})", self.asocks[a].name))
                .unwrap_or_default();
            let how = if full.proven == full.attempts {
                "each said so by its outcome line (kxdperr why=rcv or the return probe's $retval)"
                    .to_string()
            } else if full.proven == 0 {
                "each superseded by a later attempt on the same slot or of the same frame before any read or \
                 flush of it"
                    .to_string()
            } else {
                format!(
                    "{} said so by their outcome line, the others superseded by a later attempt",
                    full.proven
                )
            };
            let stats = k
                .asock
                .and_then(|a| self.asocks[a].rx_full)
                .filter(|(first, last)| last > first)
                .map(|(first, last)| {
                    format!(
                        "; the recorder's stats count rx_full +{} over the trace",
                        last - first
                    )
                })
                .unwrap_or_default();
            notes.push(format!(
                "rx_full: xs {:#x}{name}: {} receive attempt(s) failed to reserve an RX slot in {episodes} RX-full \
                 episode(s) (longest {longest}; first at line {}, frame {frame:#x}; last at line {}), {how}: the RX \
                 ring was full, each failed frame went back to the pool's free list and the next packet took it \
                 again; not receives, not findings{stats}",
                k.xs, full.attempts, first.line, full.last.line, frame = shown(frame)));
        }
    }
}
