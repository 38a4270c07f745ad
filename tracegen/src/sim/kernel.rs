//! What the kernel does: NAPI sections that receive into a socket's RX ring
//! (reserve a slot, write it, flush at the end), the pool's free list that
//! `xp_alloc` takes from before FILL, and the kernel bug that changes a
//! receive (a frame handed to RX twice).

use std::io::Write;

use super::{hex, Napi, RxOutcome, Sim, HEADROOM, RX_SIZE};
use crate::{ExpectedFinding, GenError, Scenario};

impl<W: Write> Sim<'_, W> {
    /// Starts a NAPI section on a socket that has none, on a CPU that runs
    /// no other section. Sections move between CPUs now and then (never
    /// overlapping for one socket: that is the kernel-race bug).
    pub(super) fn napi_start(&mut self) {
        let n = self.socks.len() as u64;
        let s = (self.rng.next() % n) as usize;
        if self.active.iter().any(|a| a.sock == s) {
            return;
        }
        // Mostly the queue's home CPU; now and then another one (the
        // scheduler moved the softirq), as in the seed story.
        let cpu = if self.rng.chance(1, 30) {
            self.rng.range(0, u64::from(self.cfg.cpus) - 1) as u16
        } else {
            self.socks[s].napi_cpu
        };
        if self.active.iter().any(|a| a.cpu == cpu) {
            return;
        }
        let left = self.rng.range(1, 24);
        let task = (self.rng.next() % 3) as usize;
        self.active.push(Napi {
            sock: s,
            cpu,
            task,
            left,
            work: 0,
        });
    }

    pub(super) fn napi_step(&mut self, i: usize) -> Result<(), GenError> {
        let (s, cpu, task) = (self.active[i].sock, self.active[i].cpu, self.active[i].task);
        if self.active[i].left == 0 {
            let work = self.active[i].work;
            self.active.swap_remove(i);
            if work > 0 {
                self.kflush(s, cpu, task)?;
            }
            return self.kpoll(s, cpu, task, work);
        }
        self.active[i].left -= 1;
        match self.kernel_rx(s, cpu, task, true)? {
            RxOutcome::Received => self.active[i].work += 1,
            RxOutcome::Dropped => {}
            RxOutcome::NoFrame => self.active[i].left = 0,
        }
        Ok(())
    }

    /// Takes a frame for a packet the way xp_alloc does: free list first.
    pub(super) fn take_frame(&mut self, p: usize) -> Option<(u64, bool)> {
        if self.pools[p].free_list.len() >= 2 {
            // Older outstanding frames sit below: this one overtakes them.
            self.recycled_reorders += 1;
        }
        if let Some(f) = self.pools[p].free_list.pop() {
            return Some((f, true));
        }
        self.pools[p].fill.pop_front().map(|f| (f, false))
    }

    /// One received packet: reserve an RX slot (`krx`) and, if `write`,
    /// write it (`krxdone`).
    pub(super) fn kernel_rx(
        &mut self,
        s: usize,
        cpu: u16,
        task: usize,
        write: bool,
    ) -> Result<RxOutcome, GenError> {
        let p = self.socks[s].pool;
        let sk = &self.socks[s];
        if sk.cached_prod - sk.cons >= RX_SIZE {
            // __xsk_rcv_zc: RX full. The packet's buffer was allocated from
            // FILL when the driver refilled its ring, before this; it goes
            // to the free list (LIFO) and later packets reuse it ahead of
            // FILL order.
            let Some(base) = self.pools[p]
                .fill
                .pop_front()
                .or_else(|| self.pools[p].free_list.pop())
            else {
                self.socks[s].stats.fill_empty += 1;
                return Ok(RxOutcome::NoFrame);
            };
            self.socks[s].stats.rx_full += 1;
            self.socks[s].stats.rx_dropped += 1;
            self.pools[p].free_list.push(base);
            return Ok(RxOutcome::Dropped);
        }
        let Some((base, from_free)) = self.take_frame(p) else {
            self.socks[s].stats.fill_empty += 1;
            return Ok(RxOutcome::NoFrame);
        };
        if from_free {
            self.free_list_reuses += 1;
        }
        let addr = base + HEADROOM;
        let len = self.rng.range(0x42, 0x5ea);
        let slot = self.socks[s].cached_prod;
        self.socks[s].cached_prod += 1;
        let flags = self.softirq_flags();
        let line = self.krx(s, cpu, task, flags, addr, len, slot)?;
        if self.armed && self.cfg.scenario == Scenario::KernelDup && self.dup_frame.is_none() {
            // The bug: the buffer is also released to the free list while
            // it sits on RX, so the next packet reuses it.
            self.pools[p].free_list.push(base);
            self.dup_frame = Some(base);
        } else if from_free && self.dup_frame == Some(base) && !self.fired {
            self.fired = true;
            self.armed = false;
            let ts = self.e.last_ts_text();
            let key = self.socks[s].key.to_string();
            self.findings.push(ExpectedFinding {
                kind: "duplicate_in_flight".into(),
                accept_kinds: vec!["invalid_transition".into(), "fifo_order".into()],
                verdict: "kernel".into(),
                addr: hex(addr),
                frame: Some(hex(base)),
                socket: Some(key),
                line,
                ts: Some(ts),
                cpus: vec![cpu],
                r#match: "finding".into(),
                note: "the kernel put a frame on RX a second time while the first copy was \
                       still on RX or in the application's hands; the application had put \
                       it on FILL once"
                    .into(),
            });
        }
        if write {
            self.socks[s].slots[(slot % RX_SIZE) as usize] = (addr, len);
            self.krxdone(s, cpu, task, flags, slot)?;
        }
        Ok(RxOutcome::Received)
    }
}
