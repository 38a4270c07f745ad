//! The entries the simulated recorder and probes write: every line of the
//! trace, in the project vocabulary (`xskdbg:1 ...`, spelled by
//! `xskdbg_format`'s [`LineWriter`]) or in the seed story's free-form one
//! (`ingress q:1 0x16ce900 FILL -> RX`, perf-probe and tracepoint events).
//! Each function returns the line number of the entry that shows the move
//! (`None` when the CPU's buffer had not started).

use std::io::Write;

use xskdbg_format::{key, op, word, FlushMode, LineWriter, State};

use super::{
    Sim, SockStats, TaskRef, APP_FLAGS, CHUNK, HEADROOM, MARK, NAPI_BUDGET, NFRAMES, POISON,
    PRINTK, SYSCALL_FLAGS,
};
use crate::{GenError, Op};

/// The free-form recorder's transition: `LABEL 0xADDR FROM -> TO`.
fn transition(b: &mut Vec<u8>, label: &str, addr: u64, from: State, to: State) {
    b.put(label.as_bytes());
    b.put(b" 0x");
    b.hex(addr);
    b.byte(b' ');
    b.put(from.name().as_bytes());
    b.put(b" -> ");
    b.put(to.name().as_bytes());
}

impl<W: Write> Sim<'_, W> {
    /// Declarations the recorder writes at start-up and the probes' header.
    pub(super) fn declare(&mut self) -> Result<(), GenError> {
        if !self.project() {
            return Ok(());
        }
        let poison = self.poison;
        self.put(0, TaskRef::Main, APP_FLAGS, MARK, Op::Umem, None, 0, |b| {
            b.start(op::UMEM);
            b.field_hex(key::UMEM, 1);
            b.field_hex(key::SIZE, NFRAMES * CHUNK);
            b.field_hex(key::CHUNK, CHUNK);
            b.field(key::MODE, word::ALIGNED);
            b.field_hex(key::HEADROOM, 0);
            if poison {
                b.field_hex(key::POISON, POISON);
            }
        })?;
        for i in 0..self.socks.len() {
            let (sk, label, pid) = (
                self.socks[i].key,
                self.socks[i].label.clone(),
                self.pools[i].id,
            );
            self.put(
                0,
                TaskRef::Main,
                APP_FLAGS,
                MARK,
                Op::Pool,
                Some(i),
                0,
                |b| {
                    b.start(op::POOL);
                    b.field_hex(key::POOL, pid);
                    b.field_hex(key::UMEM, 1);
                    b.field_sk(&sk);
                },
            )?;
            self.put(
                0,
                TaskRef::Main,
                APP_FLAGS,
                MARK,
                Op::Sock,
                Some(i),
                0,
                |b| {
                    b.start(op::SOCK);
                    b.field_sk(&sk);
                    b.field_hex(key::POOL, pid);
                    b.field_hex(key::UMEM, 1);
                    b.field_hex(key::FD, 5 + i as u64);
                    b.label(&*label);
                },
            )?;
        }
        self.put(
            0,
            TaskRef::Main,
            SYSCALL_FLAGS,
            PRINTK,
            Op::Probe,
            None,
            0,
            |b| {
                b.start(op::PROBE);
                b.field(key::BACKEND, "kprobe");
                b.field(key::KERNEL, "6.18.0");
                b.field(key::FLUSH, FlushMode::Exact.name());
                b.field_hex(key::RXSLOT, 1);
                b.field_hex(key::TX, 1);
                b.field_hex(key::COMP, 1);
            },
        )?;
        Ok(())
    }

    /// The kernel reserved RX slot `slot` of socket `s` for `addr`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn krx(
        &mut self,
        s: usize,
        cpu: u16,
        task: usize,
        flags: &'static [u8; 5],
        addr: u64,
        len: u64,
        slot: u64,
    ) -> Result<Option<u64>, GenError> {
        let xs = self.socks[s].xs;
        let kpool = self.pools[self.socks[s].pool].kpool;
        let tr = TaskRef::Kernel(cpu, task);
        if self.project() {
            let sk = self.socks[s].key;
            self.put(cpu, tr, flags, PRINTK, Op::Krx, Some(s), 1, |b| {
                b.start(op::KRX);
                b.field_hex(key::XS, xs);
                b.field_sk(&sk);
                b.field_hex(key::A, addr);
                b.field_hex(key::LEN, len);
                b.field_hex(key::SLOT, slot);
            })
        } else {
            self.put(
                cpu,
                tr,
                flags,
                "__xsk_rcv_zc_L7",
                Op::Krx,
                Some(s),
                1,
                |b| {
                    b.put(b"(__xsk_rcv_zc+0x9b/0x250) addr=0x");
                    b.hex(addr);
                    b.put(b" len=0x");
                    b.hex(len);
                    b.put(b" xs=0x");
                    b.hex(xs);
                    b.put(b" fq=0x");
                    b.hex(kpool + 0x380);
                },
            )
        }
    }

    /// The kernel wrote RX slot `slot` (project vocabulary only).
    pub(super) fn krxdone(
        &mut self,
        s: usize,
        cpu: u16,
        task: usize,
        flags: &'static [u8; 5],
        slot: u64,
    ) -> Result<(), GenError> {
        if !self.project() {
            return Ok(());
        }
        let xs = self.socks[s].xs;
        let tr = TaskRef::Kernel(cpu, task);
        self.put(cpu, tr, flags, PRINTK, Op::Krxdone, Some(s), 0, |b| {
            b.start(op::KRXDONE);
            b.field_hex(key::XS, xs);
            b.field_hex(key::SLOT, slot);
        })?;
        Ok(())
    }

    /// xsk_flush: publish `cached_prod`.
    pub(super) fn kflush(
        &mut self,
        s: usize,
        cpu: u16,
        task: usize,
    ) -> Result<Option<u64>, GenError> {
        let sock = &mut self.socks[s];
        sock.prod = sock.cached_prod;
        let (xs, prod, sk) = (sock.xs, sock.prod, sock.key);
        let flags = self.softirq_flags();
        let tr = TaskRef::Kernel(cpu, task);
        if self.project() {
            self.put(cpu, tr, flags, PRINTK, Op::Kflush, Some(s), 0, |b| {
                b.start(op::KFLUSH);
                b.field_hex(key::XS, xs);
                b.field_sk(&sk);
                b.field_hex(key::PROD, prod);
            })
        } else {
            self.put(cpu, tr, flags, "xsk_flush", Op::Kflush, Some(s), 0, |b| {
                b.put(b"(__xsk_map_flush+0x4e/0x180) xs=0x");
                b.hex(xs);
            })
        }
    }

    /// A NAPI poll on socket `s`'s queue ended after `work` packets.
    pub(super) fn kpoll(
        &mut self,
        s: usize,
        cpu: u16,
        task: usize,
        work: u64,
    ) -> Result<(), GenError> {
        let (napi, dev) = (self.socks[s].napi_id, self.socks[s].dev);
        let flags = self.softirq_flags();
        let tr = TaskRef::Kernel(cpu, task);
        if self.project() {
            self.put(cpu, tr, flags, PRINTK, Op::Kpoll, None, 0, |b| {
                b.start(op::KPOLL);
                b.field_hex(key::NAPI, napi);
                b.field(key::DEV, dev);
                b.field_hex(key::WORK, work);
                b.field_hex(key::BUDGET, NAPI_BUDGET);
            })?;
        } else {
            // The native napi:napi_poll tracepoint (hashed pointer, decimal
            // numbers).
            let hashed = 0x9d3a_b5e1 ^ napi.wrapping_mul(0x2545_f491);
            self.put(cpu, tr, flags, "napi_poll", Op::Kpoll, None, 0, |b| {
                b.put(b"napi poll on napi struct ");
                let mut h = Vec::new();
                h.hex(hashed & 0xffff_ffff_ffff);
                for _ in h.len()..16 {
                    b.byte(b'0');
                }
                b.put(&h);
                b.put(b" for device ");
                b.put(dev.as_bytes());
                b.put(b" work ");
                crate::emit::put_dec(b, work);
                b.put(b" budget ");
                crate::emit::put_dec(b, NAPI_BUDGET);
            })?;
        }
        Ok(())
    }

    /// An `XDP_STATISTICS` snapshot of socket `s` (project vocabulary).
    pub(super) fn stats_line(&mut self, t: usize, s: usize, st: SockStats) -> Result<(), GenError> {
        let (sk, cpu) = (self.socks[s].key, self.threads[t].cpu);
        let tr = TaskRef::Thread(t);
        self.put(cpu, tr, APP_FLAGS, MARK, Op::Stats, Some(s), 0, |b| {
            b.start(op::STATS);
            b.field_sk(&sk);
            b.field_hex(key::RX_DROPPED, st.rx_dropped);
            b.field_hex(key::RX_INVALID, 0);
            b.field_hex(key::TX_INVALID, 0);
            b.field_hex(key::RX_FULL, st.rx_full);
            b.field_hex(key::FILL_EMPTY, st.fill_empty);
            b.field_hex(key::TX_EMPTY, 0);
        })?;
        Ok(())
    }

    /// The application read `descs` from socket `s`'s RX, the first at
    /// consumer index `idx`.
    pub(super) fn rx_line(
        &mut self,
        t: usize,
        s: usize,
        idx: u64,
        descs: &[(u64, u64)],
    ) -> Result<Option<u64>, GenError> {
        let cpu = self.threads[t].cpu;
        let (sk, label, pool) = (
            self.socks[s].key,
            self.socks[s].label.clone(),
            self.pools[self.socks[s].pool].id,
        );
        let tr = TaskRef::Thread(t);
        if self.project() {
            let n = descs.len() as u64;
            self.put(cpu, tr, APP_FLAGS, MARK, Op::Rx, Some(s), n, |b| {
                b.start(op::RX);
                b.field_sk(&sk);
                b.field_hex(key::POOL, pool);
                b.field_hex(key::IDX, idx);
                b.field_hex(key::N, n);
                b.field_descs(key::D, descs.iter().map(|&(a, len)| (a, len, 0)));
            })
        } else {
            let mut first = None;
            for &(a, _) in descs {
                let l = self.put(cpu, tr, APP_FLAGS, MARK, Op::Rx, Some(s), 1, |b| {
                    transition(b, &label, a, State::Fill, State::Rx);
                })?;
                first = first.or(l);
            }
            Ok(first)
        }
    }

    /// The application put `descs` on socket `s`'s TX, the first at
    /// producer index `idx`; returns the line of the descriptor `watch`
    /// (free-form) or of the batch (project).
    pub(super) fn tx_line(
        &mut self,
        t: usize,
        s: usize,
        idx: u64,
        descs: &[(u64, u64)],
        watch: Option<u64>,
    ) -> Result<Option<u64>, GenError> {
        let cpu = self.threads[t].cpu;
        let (sk, label) = (self.socks[s].key, self.socks[s].label.clone());
        let tr = TaskRef::Thread(t);
        if self.project() {
            let n = descs.len() as u64;
            return self.put(cpu, tr, APP_FLAGS, MARK, Op::Tx, Some(s), n, |b| {
                b.start(op::TX);
                b.field_sk(&sk);
                b.field_hex(key::IDX, idx);
                b.field_hex(key::N, n);
                b.field_descs(key::D, descs.iter().map(|&(a, len)| (a, len, 0)));
            });
        }
        let mut line = None;
        for &(a, _) in descs {
            self.put(cpu, tr, APP_FLAGS, MARK, Op::Context, None, 0, |b| {
                b.put(b"0x");
                b.hex(a);
                b.put(b" egress_tx_queue forward");
            })?;
            let l = self.put(cpu, tr, APP_FLAGS, MARK, Op::Tx, Some(s), 1, |b| {
                transition(b, &label, a, State::Rx, State::Tx);
            })?;
            if Some(a) == watch {
                line = l;
            }
        }
        Ok(line)
    }

    /// The kernel took `addr` from socket `s`'s TX (in the `sendto` path).
    pub(super) fn ktx(&mut self, t: usize, s: usize, addr: u64, len: u64) -> Result<(), GenError> {
        let cpu = self.threads[t].cpu;
        let (sk, xs) = (self.socks[s].key, self.socks[s].xs);
        let tr = TaskRef::Thread(t);
        if self.project() {
            self.put(cpu, tr, SYSCALL_FLAGS, PRINTK, Op::Ktx, Some(s), 1, |b| {
                b.start(op::KTX);
                b.field_hex(key::XS, xs);
                b.field_sk(&sk);
                b.field_hex(key::A, addr);
                b.field_hex(key::LEN, len);
            })?;
        } else {
            let ev = "xp_raw_get_data";
            self.put(cpu, tr, SYSCALL_FLAGS, ev, Op::Ktx, Some(s), 1, |b| {
                b.put(b"(xp_raw_get_data+0x0/0x60) addr=0x");
                b.hex(addr);
            })?;
        }
        Ok(())
    }

    /// The kernel completed `descs` of socket `s` (project vocabulary only:
    /// the free-form one has no completion events).
    pub(super) fn kcomp(
        &mut self,
        t: usize,
        s: usize,
        descs: &[(u64, u64)],
    ) -> Result<(), GenError> {
        if !self.project() {
            return Ok(());
        }
        let cpu = self.threads[t].cpu;
        let (sk, xs) = (self.socks[s].key, self.socks[s].xs);
        let kpool = self.pools[self.socks[s].pool].kpool;
        let n = descs.len() as u64;
        let tr = TaskRef::Thread(t);
        self.put(cpu, tr, SYSCALL_FLAGS, PRINTK, Op::Kcomp, Some(s), n, |b| {
            b.start(op::KCOMP);
            b.field_hex(key::XS, xs);
            b.field_sk(&sk);
            b.field_hex(key::KPOOL, kpool);
            b.field_hex(key::N, n);
            b.field_addrs(key::A, descs.iter().map(|d| d.0));
        })?;
        Ok(())
    }

    /// The recorder traces the application's own free list (`free`), so a
    /// frame the application holds and never returns is visible.
    pub(super) fn free_line(&mut self, t: usize, addrs: &[u64]) -> Result<(), GenError> {
        if addrs.is_empty() || !self.project() {
            return Ok(());
        }
        let cpu = self.threads[t].cpu;
        let n = addrs.len() as u64;
        let tr = TaskRef::Thread(t);
        self.put(cpu, tr, APP_FLAGS, MARK, Op::Free, None, n, |b| {
            b.start(op::FREE);
            b.field_hex(key::N, n);
            b.field_addrs(key::A, addrs.iter().copied());
        })?;
        Ok(())
    }

    /// The application read `addrs` from socket `s`'s pool's COMPLETION.
    pub(super) fn comp_line(
        &mut self,
        t: usize,
        s: usize,
        addrs: &[u64],
    ) -> Result<Option<u64>, GenError> {
        let cpu = self.threads[t].cpu;
        let (sk, label, pool) = (
            self.socks[s].key,
            self.socks[s].label.clone(),
            self.pools[self.socks[s].pool].id,
        );
        let tr = TaskRef::Thread(t);
        if self.project() {
            let n = addrs.len() as u64;
            self.put(cpu, tr, APP_FLAGS, MARK, Op::Comp, Some(s), n, |b| {
                b.start(op::COMP);
                b.field_hex(key::POOL, pool);
                b.field_sk(&sk);
                b.field_hex(key::N, n);
                b.field_addrs(key::A, addrs.iter().copied());
            })
        } else {
            let mut first = None;
            for &a in addrs {
                let l = self.put(cpu, tr, APP_FLAGS, MARK, Op::Comp, Some(s), 1, |b| {
                    transition(b, &label, a, State::Tx, State::Comp);
                })?;
                first = first.or(l);
            }
            Ok(first)
        }
    }

    /// The application put `frames` on socket `s`'s pool's FILL (each
    /// marked [`super::FROM_RX`] when it came from RX, for the free-form
    /// wording).
    pub(super) fn fill_line(
        &mut self,
        t: usize,
        s: usize,
        frames: &[u64],
    ) -> Result<Option<u64>, GenError> {
        let cpu = self.threads[t].cpu;
        let (sk, label, pool) = (
            self.socks[s].key,
            self.socks[s].label.clone(),
            self.pools[self.socks[s].pool].id,
        );
        let tr = TaskRef::Thread(t);
        if self.project() {
            let n = frames.len() as u64;
            self.put(cpu, tr, APP_FLAGS, MARK, Op::Fill, Some(s), n, |b| {
                b.start(op::FILL);
                b.field_hex(key::POOL, pool);
                b.field_sk(&sk);
                b.field_hex(key::N, n);
                b.field_addrs(key::A, frames.iter().map(|&f| f & !super::FROM_RX));
            })
        } else {
            let mut first = None;
            for &f in frames {
                if self.step == 0 {
                    // The start-up fill is not a transition the free-form
                    // recorder logs.
                    break;
                }
                let from = if f & super::FROM_RX != 0 {
                    State::Rx
                } else {
                    State::Comp
                };
                let addr = (f & !super::FROM_RX) + HEADROOM;
                let l = self.put(cpu, tr, APP_FLAGS, MARK, Op::Fill, Some(s), 1, |b| {
                    transition(b, &label, addr, from, State::Fill);
                })?;
                first = first.or(l);
            }
            Ok(first)
        }
    }

    /// The recorder's in-process violation line; returns its line number.
    pub(super) fn violation(
        &mut self,
        t: usize,
        s: usize,
        bad: u64,
        expected: u64,
    ) -> Result<Option<u64>, GenError> {
        let cpu = self.threads[t].cpu;
        let p = self.socks[s].pool;
        let (sk, label, pool) = (
            self.socks[s].key,
            self.socks[s].label.clone(),
            self.pools[p].id,
        );
        let remaining: Vec<u64> = self.pools[p].fill.iter().copied().collect();
        let shown = remaining.len().min(40);
        let poison = bad == POISON;
        let tr = TaskRef::Thread(t);
        if self.project() {
            let kind = if poison {
                "poisoned_descriptor"
            } else {
                "fifo_order"
            };
            self.put(cpu, tr, APP_FLAGS, MARK, Op::Violation, Some(s), 1, |b| {
                b.start(op::VIOLATION);
                b.field(key::KIND, kind);
                b.field_sk(&sk);
                b.field_hex(key::POOL, pool);
                b.field_hex(key::A, bad);
                b.field_hex(key::FRAME, bad & !(CHUNK - 1));
                b.field(key::FROM, State::Fill.as_str());
                b.field(key::TO, State::Rx.as_str());
                b.field_hex(key::EXPECTED, expected);
                if shown > 0 {
                    b.field_addrs(key::REMAINING, remaining[..shown].iter().copied());
                }
                if remaining.len() > shown {
                    b.field_hex(key::MORE, (remaining.len() - shown) as u64);
                }
            })
        } else {
            self.put(cpu, tr, APP_FLAGS, MARK, Op::Violation, Some(s), 1, |b| {
                transition(b, &label, bad, State::Fill, State::Rx);
                b.put(b": expected 0x");
                b.hex(expected + HEADROOM);
                // Both spellings occur in the seed traces.
                b.put(if poison {
                    b"remaining: ["
                } else {
                    b" remaining: ["
                });
                for &f in &remaining[..shown] {
                    b.hex(f + HEADROOM);
                    b.put(b", ");
                }
                b.put("…,".as_bytes());
                b.byte(b']');
            })
        }
    }
}
