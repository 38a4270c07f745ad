//! Injected bugs that need more than a changed move: the veth race of the
//! seed story (two CPUs producing into one socket's RX ring) and the
//! expected finding every bug records.

use std::io::Write;

use super::{hex, Sim, CHUNK, HEADROOM, POISON, RX_SIZE};
use crate::{ExpectedFinding, GenError};

impl<W: Write> Sim<'_, W> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fire(
        &mut self,
        kind: &str,
        accept: &[&str],
        verdict: &str,
        addr: u64,
        frame: Option<u64>,
        sock: Option<usize>,
        line: Option<u64>,
        cpus: Vec<u16>,
        note: &str,
    ) {
        self.armed = false;
        self.fired = true;
        let ts = self.e.last_ts_text();
        self.findings.push(ExpectedFinding {
            kind: kind.into(),
            accept_kinds: accept.iter().map(|s| s.to_string()).collect(),
            verdict: verdict.into(),
            addr: hex(addr),
            frame: frame.map(hex),
            socket: sock.map(|s| self.socks[s].key.to_string()),
            line,
            ts: Some(ts),
            cpus,
            r#match: "finding".into(),
            note: note.into(),
        });
    }

    /// The veth race of the seed story, on socket 0: CPU A receives and,
    /// after napi_complete_done, flushes; meanwhile CPU B's NAPI reserved a
    /// slot it has not written yet. The application reads that slot (the
    /// poison value, or the stale descriptor) and the recorder freezes
    /// tracing.
    pub(super) fn race(&mut self) -> Result<(), GenError> {
        let s = 0;
        // Let any section on this socket finish first.
        while let Some(i) = self.active.iter().position(|a| a.sock == s) {
            self.napi_step(i)?;
        }
        // The application catches up so the race slot is the next it reads.
        let t = self.socks[s].thread;
        let mut descs = Vec::new();
        while self.socks[s].prod > self.socks[s].cons {
            descs.clear();
            self.app_rx(t, s, &mut descs)?;
            for &(a, _) in &descs {
                self.threads[t].free.push_back(a & !(CHUNK - 1));
            }
        }
        let p = self.socks[s].pool;
        if self.pools[p].fill.len() < 4 {
            self.fill(t, s)?;
        }
        self.pools[p].free_list.clear();
        let cpus = u64::from(self.cfg.cpus);
        let a_cpu = self.socks[s].napi_cpu;
        let b_cpu = ((u64::from(a_cpu) + 1 + self.rng.next() % (cpus - 1)) % cpus) as u16;
        let first_idx = self.socks[s].cons;
        for _ in 0..2 {
            self.kernel_rx(s, a_cpu, 0, true)?;
        }
        // CPU B: reserve only (cached_prod++), the write comes later.
        let Some((base, _)) = self.take_frame(p) else {
            return Err(GenError::Config("no frame on FILL for the race".into()));
        };
        let b_addr = base + HEADROOM;
        let slot = self.socks[s].cached_prod;
        self.socks[s].cached_prod += 1;
        let flags = self.softirq_flags();
        let b_line = self.krx(s, b_cpu, 2, flags, b_addr, 0x42, slot)?;
        let b_ts = self.e.last_ts_text();
        // CPU A: flush after napi_complete_done: publishes B's slot too.
        self.kflush(s, a_cpu, 0)?;
        // The application reads the three published slots.
        descs.clear();
        let sk = &mut self.socks[s];
        for i in first_idx..sk.prod {
            descs.push(sk.slots[(i % RX_SIZE) as usize]);
        }
        sk.cons = sk.prod;
        let bad = *descs.last().unwrap_or(&(POISON, 0));
        let key = self.socks[s].key.to_string();
        let app_cpu = self.threads[t].cpu;
        // The entry where the application got the bad descriptor: its `rx`
        // line, or in the free-form vocabulary the recorder's violation line.
        let (bad_line, rx_ts) = if self.project() {
            let rx = self.rx_line(t, s, first_idx, &descs)?;
            let ts = self.e.last_ts_text();
            self.violation(t, s, bad.0, base)?;
            (rx, ts)
        } else {
            let good = &descs[..descs.len().saturating_sub(1)];
            self.rx_line(t, s, first_idx, good)?;
            let v = self.violation(t, s, bad.0, base)?;
            (v, self.e.last_ts_text())
        };
        self.findings.push(ExpectedFinding {
            kind: "concurrent_producer".into(),
            accept_kinds: vec![],
            verdict: "kernel".into(),
            addr: hex(b_addr),
            frame: Some(hex(base)),
            socket: Some(key.clone()),
            line: b_line,
            ts: Some(b_ts),
            cpus: vec![a_cpu.min(b_cpu), a_cpu.max(b_cpu)],
            r#match: "finding".into(),
            note: format!(
                "CPU {b_cpu} reserved RX slot {slot:#x} inside CPU {a_cpu}'s producer section; \
                 CPU {a_cpu}'s flush then published the slot before it was written"
            ),
        });
        let (kind, accept, note) = if self.poison {
            (
                "poisoned_descriptor",
                vec![],
                "the application read the poison value from the slot the flush exposed",
            )
        } else {
            (
                "rx_mismatch",
                vec!["fifo_order".to_string(), "duplicate_in_flight".to_string()],
                "the application read the slot's previous descriptor, not the frame the \
                 kernel reserved it for",
            )
        };
        let line = bad_line;
        self.findings.push(ExpectedFinding {
            kind: kind.into(),
            accept_kinds: accept,
            verdict: "kernel".into(),
            addr: hex(bad.0),
            frame: if self.poison {
                None
            } else {
                Some(hex(bad.0 & !(CHUNK - 1)))
            },
            socket: Some(key),
            line,
            ts: Some(rx_ts),
            cpus: vec![app_cpu],
            r#match: "finding_or_also".into(),
            note: note.into(),
        });
        self.fired = true;
        self.armed = false;
        // The recorder stopped tracing right after its violation line.
        self.frozen = true;
        Ok(())
    }
}
