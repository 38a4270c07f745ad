//! What the forwarder does: one loop iteration per socket (statistics, RX,
//! forwarding to the peer's TX, COMPLETION, FILL), with the application
//! bugs that change a move (a leak, FILL -> TX, a double FILL, a double
//! COMPLETION, a refill before completion).

use std::io::Write;

use super::{
    Sim, BATCH, CHUNK, CQ_OVERRUN, CQ_SIZE, FILL_TARGET, FRAMES_PER_LINE, FROM_RX, HEADROOM,
    POISON, RX_SIZE,
};
use crate::{GenError, Scenario};

impl<W: Write> Sim<'_, W> {
    /// One application loop iteration for socket `s` of thread `t`:
    /// statistics, RX, forward to the peer's TX, completions, refill.
    pub(super) fn app_cycle(&mut self, t: usize, s: usize) -> Result<(), GenError> {
        self.report_stats(t, s)?;
        if self.socks[s].stall > 0 {
            self.socks[s].stall -= 1;
        } else if self.rng.chance(1, 100) {
            // A slow iteration (page fault, preemption): RX backs up.
            self.socks[s].stall = self.rng.range(20, 120) as u32;
        } else {
            let mut descs = std::mem::take(&mut self.scratch);
            descs.clear();
            let rx_line = self.app_rx(t, s, &mut descs)?;
            let mut leaked = None;
            if self.armed && self.cfg.scenario == Scenario::AppLeak && !descs.is_empty() {
                leaked = Some(descs[0]);
            }
            let mut fwd = Vec::new();
            let mut freed = Vec::new();
            for &(a, len) in &descs {
                if Some((a, len)) == leaked {
                    continue;
                }
                if self.rng.chance(7, 10) {
                    fwd.push((a, len));
                } else {
                    self.threads[t].free.push_back((a & !(CHUNK - 1)) | FROM_RX);
                    freed.push(a);
                }
            }
            if let Some((a, _)) = leaked {
                self.fire(
                    "frame_leak",
                    &[],
                    "application",
                    a,
                    Some(a & !(CHUNK - 1)),
                    Some(s),
                    rx_line,
                    vec![self.threads[t].cpu],
                    "the application received this frame and never put it on FILL or TX nor \
                     freed it; every other frame keeps cycling",
                );
            }
            self.free_line(t, &freed)?;
            self.scratch = descs;
            if !fwd.is_empty() {
                self.app_tx(t, self.socks[s].peer, fwd)?;
            }
        }
        for side in 0..2 {
            let ps = self.threads[t].socks[side];
            self.app_comp(t, ps)?;
            self.fill(t, ps)?;
        }
        Ok(())
    }

    /// A `stats` line when socket `s`'s statistics changed since the last.
    pub(super) fn report_stats(&mut self, t: usize, s: usize) -> Result<(), GenError> {
        let sk = &self.socks[s];
        if sk.stats == sk.reported || !self.project() {
            return Ok(());
        }
        let st = sk.stats;
        self.socks[s].reported = st;
        self.stats_line(t, s, st)
    }

    /// Consumes what the kernel published on RX; returns the `rx` line.
    pub(super) fn app_rx(
        &mut self,
        t: usize,
        s: usize,
        descs: &mut Vec<(u64, u64)>,
    ) -> Result<Option<u64>, GenError> {
        let sk = &mut self.socks[s];
        let n = (sk.prod - sk.cons).min(BATCH as u64);
        if n == 0 {
            return Ok(None);
        }
        let idx = sk.cons;
        for i in 0..n {
            let slot = &mut sk.slots[((idx + i) % RX_SIZE) as usize];
            descs.push(*slot);
            if self.poison {
                slot.0 = POISON;
            }
        }
        sk.cons += n;
        self.rx_line(t, s, idx, descs)
    }

    /// Puts frames on socket `s`'s TX; the kernel sends and completes them
    /// in the same `sendto` (copy mode).
    fn app_tx(&mut self, t: usize, s: usize, mut descs: Vec<(u64, u64)>) -> Result<(), GenError> {
        let cpu = self.threads[t].cpu;
        let p = self.socks[s].pool;
        let mut bug = None;
        if self.armed && self.cfg.scenario == Scenario::AppFillTx {
            // A frame the application already gave to the kernel on FILL.
            let own = self.socks[self.threads[t].socks[0]].pool;
            if let Some(&f) = self.pools[own].fill.back() {
                let d = (f + HEADROOM, 0x42);
                descs.push(d);
                bug = Some(d);
            }
        }
        let idx = self.socks[s].tx_idx;
        self.socks[s].tx_idx += descs.len() as u64;
        let line = self.tx_line(t, s, idx, &descs, bug.map(|d| d.0))?;
        if let Some((a, _)) = bug {
            self.fire(
                "invalid_transition",
                &["duplicate_in_flight"],
                "application",
                a,
                Some(a & !(CHUNK - 1)),
                Some(s),
                line,
                vec![cpu],
                "the application put on TX a frame it had given to the kernel on FILL and \
                 that the kernel had not received into yet (FILL -> TX)",
            );
        }
        // The kernel transmits (xp_raw_get_data in the sendto path).
        for &(a, len) in &descs {
            self.ktx(t, s, a, len)?;
        }
        if self.armed && self.cfg.scenario == Scenario::AppReuseBeforeComplete {
            // The bug: refill a transmitted frame before its completion.
            let (a, _) = descs[0];
            let own = self.threads[t].socks[0];
            let op = self.socks[own].pool;
            let line = self.fill_line(t, own, &[a & !(CHUNK - 1)])?;
            self.pools[op].fill.push_back(a & !(CHUNK - 1));
            self.fire(
                "invalid_transition",
                &["duplicate_in_flight"],
                "application",
                a & !(CHUNK - 1),
                Some(a & !(CHUNK - 1)),
                Some(own),
                line,
                vec![cpu],
                "the application put on FILL a frame it had just put on TX, before the \
                 kernel completed it (TX -> FILL while still on TX)",
            );
        }
        self.kcomp(t, s, &descs)?;
        self.pools[p].comp.extend(descs.iter().map(|d| d.0));
        Ok(())
    }

    /// Consumes socket `s`'s pool's COMPLETION ring.
    fn app_comp(&mut self, t: usize, s: usize) -> Result<(), GenError> {
        let p = self.socks[s].pool;
        if self.armed && self.cfg.scenario == Scenario::KernelCompOverrun {
            if self.overrun_pool.is_none() && !self.pools[p].comp.is_empty() {
                self.overrun_pool = Some(p);
            }
            if self.overrun_pool == Some(p) {
                if self.pools[p].comp.len() < CQ_SIZE + CQ_OVERRUN {
                    // A slow application: its COMPLETION ring fills up.
                    return Ok(());
                }
                return self.comp_overrun(t, s);
            }
        }
        while !self.pools[p].comp.is_empty() {
            let n = self.pools[p].comp.len().min(FRAMES_PER_LINE);
            let batch: Vec<u64> = self.pools[p].comp.drain(..n).collect();
            let line = self.comp_line(t, s, &batch)?;
            for &a in &batch {
                self.threads[t].free.push_back(a & !(CHUNK - 1));
            }
            self.free_line(t, &batch)?;
            if self.armed && self.cfg.scenario == Scenario::AppDoubleComplete {
                // Refill these frames now, then read the same completion
                // entries again (consumer index not advanced).
                for &a in batch.iter().rev() {
                    let f = a & !(CHUNK - 1);
                    if let Some(pos) = self.threads[t].free.iter().rposition(|&x| x == f) {
                        self.threads[t].free.remove(pos);
                    }
                    self.threads[t].free.push_front(f);
                }
                let own = self.threads[t].socks[0];
                let need = batch
                    .len()
                    .max(FILL_TARGET.saturating_sub(self.pools[self.socks[own].pool].fill.len()));
                self.fill_n(t, own, need)?;
                let again = self.comp_line(t, s, &batch)?;
                for &a in &batch {
                    self.threads[t].free.push_back(a & !(CHUNK - 1));
                }
                let _ = line;
                let a = batch[0];
                self.fire(
                    "invalid_transition",
                    &["duplicate_in_flight"],
                    "application",
                    a,
                    Some(a & !(CHUNK - 1)),
                    Some(s),
                    again,
                    vec![self.threads[t].cpu],
                    "the application consumed the same completion entries twice; the frames \
                     were already back on FILL and the kernel had not completed them again \
                     (FILL -> COMP)",
                );
                self.free_line(t, &batch)?;
            }
        }
        Ok(())
    }

    /// The kernel, ignoring the full COMPLETION ring of socket `s`'s pool,
    /// has written [`CQ_OVERRUN`] completions over entries the application
    /// had not read. The application reads the ring as the producer says:
    /// a lap and a bit, so the overwriting entries twice and the
    /// overwritten ones never; it trusts every entry and refills them all.
    fn comp_overrun(&mut self, t: usize, s: usize) -> Result<(), GenError> {
        let p = self.socks[s].pool;
        let written: Vec<u64> = self.pools[p].comp.drain(..CQ_SIZE + CQ_OVERRUN).collect();
        let read: Vec<u64> = (0..written.len())
            .map(|pos| {
                let slot = pos % CQ_SIZE;
                if slot < CQ_OVERRUN {
                    written[slot + CQ_SIZE]
                } else {
                    written[slot]
                }
            })
            .collect();
        let (mut dup_line, mut dup_ts) = (None, None);
        for (i, chunk) in read.chunks(FRAMES_PER_LINE).enumerate() {
            let line = self.comp_line(t, s, chunk)?;
            if i * FRAMES_PER_LINE <= CQ_SIZE && CQ_SIZE < (i + 1) * FRAMES_PER_LINE {
                dup_line = line;
                dup_ts = Some(self.e.last_ts_text());
            }
            self.free_line(t, chunk)?;
        }
        // Hot frames first: the ones just completed go back on FILL now,
        // the twice-read ones twice.
        for &a in read.iter().rev() {
            self.threads[t].free.push_front(a & !(CHUNK - 1));
        }
        self.fill_n(t, s, read.len())?;
        let a = written[CQ_SIZE];
        let proven = self.cfg.probes;
        self.fire(
            "duplicate_in_flight",
            &[],
            if proven { "kernel" } else { "inconclusive" },
            a,
            Some(a & !(CHUNK - 1)),
            Some(s),
            dup_line,
            vec![self.threads[t].cpu],
            "the kernel wrote completions over COMPLETION entries the application had not read; \
             the application read the overwriting ones twice, the overwritten ones never, and \
             put the frames it was handed twice on FILL twice (kernel with the kernel's \
             completions traced, inconclusive from the recorder's lines alone)",
        );
        // The finding is the duplicate's line, not the FILL lines written
        // since, whose stamp `fire` took.
        if let (Some(f), Some(ts)) = (self.findings.last_mut(), dup_ts) {
            f.ts = Some(ts);
        }
        self.overrun_pool = None;
        Ok(())
    }

    /// Tops socket `s`'s pool's FILL ring up to [`FILL_TARGET`].
    pub(super) fn fill(&mut self, t: usize, s: usize) -> Result<(), GenError> {
        let p = self.socks[s].pool;
        // Refill in batches, like a real loop, not one frame at a time.
        let have = self.pools[p].fill.len();
        if have + BATCH / 2 > FILL_TARGET {
            return Ok(());
        }
        self.fill_n(t, s, FILL_TARGET - have)
    }

    pub(super) fn fill_n(&mut self, t: usize, s: usize, mut need: usize) -> Result<(), GenError> {
        let p = self.socks[s].pool;
        while need > 0 && !self.threads[t].free.is_empty() {
            let n = need.min(FRAMES_PER_LINE).min(self.threads[t].free.len());
            need -= n;
            let mut batch: Vec<u64> = self.threads[t].free.drain(..n).collect();
            let mut bug = None;
            if self.armed && self.cfg.scenario == Scenario::AppDoubleFill {
                if let Some(&f) = self.pools[p].fill.get(self.pools[p].fill.len() / 2) {
                    batch.push(f);
                    bug = Some(f);
                }
            }
            let line = self.fill_line(t, s, &batch)?;
            self.pools[p]
                .fill
                .extend(batch.iter().map(|&f| f & !FROM_RX));
            if let Some(f) = bug {
                self.fire(
                    "duplicate_in_flight",
                    &["invalid_transition"],
                    "application",
                    f,
                    Some(f),
                    Some(s),
                    line,
                    vec![self.threads[t].cpu],
                    "the application put on FILL a frame that was already on FILL (the kernel \
                     had not received into it yet)",
                );
            }
        }
        Ok(())
    }
}
