//! Every line the recorder writes (docs/TRACE-FORMAT.md): the declarations
//! of UMEMs, pools and sockets, `stats`, the per-batch `fill`/`comp`/`hold`/
//! `free` and `rx`/`tx` lines (split to fit [`LINE_MAX`]), `recycle`, and
//! the `violation` line with its `stack` lines.

use super::register::{PoolInner, SockInner, UmemInner};
use super::report::Pending;
use super::thread::with_line;
use crate::line::{addr_width, desc_width, fitting, LineBuf, ADDRS_PER_LINE, LINE_MAX};
use crate::types::{AddrMode, SockKey, XdpDesc, XdpStats};

/// A socket's key and, when known, its identity: `sk= [sid=]`.
#[inline]
fn field_sock(l: &mut LineBuf, s: &SockInner) {
    l.field_sk(&s.key);
    if let Some(sid) = s.sid {
        l.field_hex(b"sid", sid);
    }
}

/// Whose frames an address line moves: a pool's rings (`pool=`) or the
/// UMEM's own free list (`umem=`).
#[derive(Clone, Copy)]
pub(super) enum Owner {
    Pool(u32),
    Umem,
}

impl UmemInner {
    pub(super) fn declare_umem(&self) {
        if !self.rec.writing() {
            return;
        }
        with_line(|l| {
            l.start(b"umem");
            l.field_hex(b"umem", u64::from(self.id));
            l.field_hex(b"size", self.cfg.size);
            l.field_hex(b"chunk", u64::from(self.cfg.chunk_size));
            l.field(
                b"mode",
                match self.cfg.mode {
                    AddrMode::Aligned => b"aligned",
                    AddrMode::Unaligned => b"unaligned",
                },
            );
            l.field_hex(b"headroom", u64::from(self.cfg.headroom));
            if let Some(p) = self.cfg.poison {
                l.field_hex(b"poison", p);
            }
            l.finish();
            self.rec.write(l.as_bytes());
        });
    }

    pub(super) fn declare_pool(&self, p: &PoolInner) {
        if !self.rec.writing() {
            return;
        }
        with_line(|l| {
            l.start(b"pool");
            l.field_hex(b"pool", u64::from(p.id));
            l.field_hex(b"umem", u64::from(self.id));
            l.field_sk(&p.key);
            l.finish();
            self.rec.write(l.as_bytes());
        });
    }

    /// A `sock` line: the socket's declaration, or with `gone` its end
    /// (the application let go of its last handle, so its key may name a
    /// new socket from here on).
    pub(super) fn sock_line(&self, s: &SockInner, fd: Option<i32>, gone: bool) {
        if !self.rec.writing() {
            return;
        }
        with_line(|l| {
            l.start(b"sock");
            field_sock(l, s);
            l.field_hex(b"pool", u64::from(s.pool.id));
            l.field_hex(b"umem", u64::from(self.id));
            if let Some(fd) = fd {
                l.field_hex(b"fd", fd as u64);
            }
            if gone {
                l.field(b"gone", b"1");
            } else if let Some(lb) = &s.label {
                l.label(lb);
            }
            l.finish();
            self.rec.write(l.as_bytes());
        });
    }

    pub(super) fn write_stats(&self, s: &SockInner, st: &XdpStats) {
        if !self.rec.writing() {
            return;
        }
        with_line(|l| {
            l.start(b"stats");
            field_sock(l, s);
            l.field_hex(b"rx_dropped", st.rx_dropped);
            l.field_hex(b"rx_invalid", st.rx_invalid_descs);
            l.field_hex(b"tx_invalid", st.tx_invalid_descs);
            l.field_hex(b"rx_full", st.rx_ring_full);
            l.field_hex(b"fill_empty", st.rx_fill_ring_empty_descs);
            l.field_hex(b"tx_empty", st.tx_ring_empty_descs);
            l.finish();
            self.rec.write(l.as_bytes());
        });
    }

    /// `fill`, `comp`, `hold`, `free` lines, split so each stays within [`LINE_MAX`].
    #[inline]
    pub(super) fn write_addrs(&self, op: &[u8], owner: Owner, sk: Option<&SockKey>, addrs: &[u64]) {
        if addrs.is_empty() || !self.rec.writing() {
            return;
        }
        with_line(|l| {
            let mut rest = addrs;
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(fitting(rest, addr_width));
                rest = tail;
                l.start(op);
                // A free list's frames are the UMEM's: with several UMEMs
                // one address names a frame in each, so the line says whose.
                if let Owner::Umem = owner {
                    l.field_hex(b"umem", u64::from(self.id));
                }
                if let Owner::Pool(p) = owner {
                    l.field_hex(b"pool", u64::from(p));
                }
                if let Some(sk) = sk {
                    l.field_sk(sk);
                }
                l.field_hex(b"n", chunk.len() as u64);
                l.push(b" a=");
                for (i, a) in chunk.iter().enumerate() {
                    if i > 0 {
                        l.byte(b',');
                    }
                    l.hex(*a);
                }
                l.finish();
                self.rec.write(l.as_bytes());
            }
        });
    }

    /// `rx`/`tx` lines, split so each stays within [`LINE_MAX`], each with
    /// its own `idx`; `prod` (RX: the producer the app saw) goes last, after
    /// the list, so readers that match the line's head stay on their fast
    /// path.
    #[inline]
    pub(super) fn write_descs(
        &self,
        op: &[u8],
        s: &SockInner,
        idx: u32,
        prod: Option<u32>,
        descs: &[XdpDesc],
    ) {
        if descs.is_empty() || !self.rec.writing() {
            return;
        }
        with_line(|l| {
            let mut idx = idx;
            let mut rest = descs;
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(fitting(rest, desc_width));
                rest = tail;
                l.start(op);
                field_sock(l, s);
                l.field_hex(b"pool", u64::from(s.pool.id));
                l.field_hex(b"idx", u64::from(idx));
                l.field_hex(b"n", chunk.len() as u64);
                l.push(b" d=");
                for (i, d) in chunk.iter().enumerate() {
                    if i > 0 {
                        l.byte(b',');
                    }
                    l.desc(d);
                }
                if let Some(p) = prod {
                    l.field_hex(b"prod", u64::from(p));
                }
                l.finish();
                self.rec.write(l.as_bytes());
                idx = idx.wrapping_add(chunk.len() as u32);
            }
        });
    }

    /// `rxpoison`: every slot of the socket's RX ring holds `poison` and no
    /// frame was on FILL yet ([`super::rings::Sock::declare_rx_poisoned`]).
    #[cold]
    pub(super) fn write_rx_poisoned(&self, s: &SockInner, poison: u64) {
        if !self.rec.writing() {
            return;
        }
        with_line(|l| {
            l.start(b"rxpoison");
            field_sock(l, s);
            l.field_hex(b"size", u64::from(s.rx_size));
            l.field_hex(b"poison", poison);
            l.finish();
            self.rec.write(l.as_bytes());
        });
    }

    #[cold]
    pub(super) fn violation_line(&self, p: &Pending) -> String {
        let mut l = LineBuf::new();
        l.start(b"violation");
        l.field(b"kind", p.kind.as_str().as_bytes());
        // The post-trigger window: tracing goes on for this many lines or
        // microseconds (hex) before the freeze.
        if self.rec.freeze && !self.rec.window.is_none() {
            let w = self.rec.window;
            l.field(
                b"window",
                format!("{:x}:{:x}", w.batches, w.micros).as_bytes(),
            );
        }
        if let Some(s) = &p.sock {
            field_sock(&mut l, s);
        }
        if let Some(pool) = p.pool {
            l.field_hex(b"pool", u64::from(pool));
        }
        l.field_hex(b"a", p.addr);
        l.field_hex(b"frame", p.frame);
        l.field(b"from", p.from.as_str().as_bytes());
        l.field(b"to", p.to.as_str().as_bytes());
        if let Some(e) = p.expected {
            l.field_hex(b"expected", e);
        }
        if let Some(f) = &p.index {
            l.field(b"why", f.why.as_str().as_bytes());
            l.field_hex(b"idx", u64::from(f.idx));
            if let Some(e) = f.expected {
                l.field_hex(b"next", u64::from(e));
            }
            if let Some(pr) = f.prod {
                l.field_hex(b"prod", u64::from(pr));
            }
            l.field_hex(b"n", u64::from(f.n));
        }
        let label = p.sock.as_ref().and_then(|s| s.label.as_deref());
        // Keep room for `more=`, the label and the newline.
        let reserve = 32 + label.map_or(0, |s| s.len() + 8);
        let mut shown = 0usize;
        if !p.remaining.is_empty() {
            l.push(b" remaining=");
            for (i, r) in p.remaining.iter().enumerate() {
                if l.room() < reserve + 18 {
                    break;
                }
                if i > 0 {
                    l.byte(b',');
                }
                l.hex(*r);
                shown += 1;
            }
        }
        let more = p.more + (p.remaining.len() - shown);
        if more > 0 {
            l.field_hex(b"more", more as u64);
        }
        if let Some(lb) = label {
            l.label(lb);
        }
        l.finish();
        debug_assert!(l.len() <= LINE_MAX);
        String::from_utf8_lossy(l.as_bytes()).into_owned()
    }

    /// The offending thread's stack, one `stack` line per frame.
    #[cold]
    pub(super) fn write_stack(&self, stack: &[String]) {
        for (i, fr) in stack.iter().enumerate() {
            let mut l = LineBuf::new();
            l.start(b"stack");
            l.field_hex(b"i", i as u64);
            l.push(b" sym=");
            l.push(fr.as_bytes());
            l.finish();
            self.rec.write(l.as_bytes());
        }
    }

    /// `recycle` lines for the `k` `frames` a FIFO mismatch skipped over,
    /// explained by the kernel's free-list recycling.
    #[cold]
    pub(super) fn write_recycle(
        &self,
        p: &PoolInner,
        s: &SockInner,
        frames: impl Iterator<Item = u64>,
        k: usize,
    ) {
        if !self.rec.writing() {
            return;
        }
        with_line(|l| {
            let mut in_line = 0usize;
            for (moved, f) in frames.take(k).enumerate() {
                if in_line == 0 {
                    l.start(b"recycle");
                    l.field_hex(b"pool", u64::from(p.id));
                    field_sock(l, s);
                    l.field_hex(b"n", (k - moved).min(ADDRS_PER_LINE) as u64);
                    l.push(b" a=");
                } else {
                    l.byte(b',');
                }
                l.hex(f);
                in_line += 1;
                if in_line == ADDRS_PER_LINE {
                    l.finish();
                    self.rec.write(l.as_bytes());
                    in_line = 0;
                }
            }
            if in_line > 0 {
                l.finish();
                self.rec.write(l.as_bytes());
            }
        });
    }
}
