//! Violations: what a check found ([`Pending`], collected under a lock and
//! reported after it is released), and reporting it: count it, on the first
//! one repeat the declarations, write the `violation` line and the stack,
//! freeze the buffer and dump the memory ring; then act by [`Policy`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::frames::w_state;
use super::lock;
use super::register::{SockInner, UmemInner};
use crate::line::LineBuf;
use crate::sink::Sink;
use crate::types::{DumpTarget, Policy, State, Violation, ViolationKind};

/// A violation found under a lock, reported after it is released.
pub(super) struct Pending {
    pub(super) kind: ViolationKind,
    pub(super) addr: u64,
    pub(super) frame: u64,
    pub(super) from: State,
    pub(super) to: State,
    pub(super) sock: Option<Arc<SockInner>>,
    pub(super) pool: Option<u32>,
    pub(super) expected: Option<u64>,
    pub(super) remaining: Vec<u64>,
    pub(super) more: usize,
}

impl UmemInner {
    #[cold]
    pub(super) fn transition_violation(
        &self,
        cur: u64,
        addr: u64,
        key: u64,
        to: State,
        sock: Option<&Arc<SockInner>>,
        pool: Option<u32>,
    ) -> Pending {
        let from = w_state(cur);
        Pending {
            kind: if from == to {
                ViolationKind::DuplicateInFlight
            } else {
                ViolationKind::InvalidTransition
            },
            addr,
            frame: key,
            from,
            to,
            sock: sock.cloned(),
            pool,
            expected: None,
            remaining: Vec::new(),
            more: 0,
        }
    }

    #[cold]
    pub(super) fn simple(
        kind: ViolationKind,
        addr: u64,
        frame: u64,
        from: State,
        to: State,
        sock: Option<&Arc<SockInner>>,
        pool: Option<u32>,
    ) -> Pending {
        Pending {
            kind,
            addr,
            frame,
            from,
            to,
            sock: sock.cloned(),
            pool,
            expected: None,
            remaining: Vec::new(),
            more: 0,
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn report(&self, pending: Vec<Pending>) {
        for p in pending {
            self.report_one(p);
        }
    }

    /// Repeat the declarations so a wrapped, frozen buffer still holds them.
    #[cold]
    fn redeclare(&self) {
        self.declare_umem();
        for p in self.pools.read().unwrap_or_else(|e| e.into_inner()).iter() {
            self.declare_pool(p);
        }
        for s in self.socks.read().unwrap_or_else(|e| e.into_inner()).iter() {
            self.declare_sock(s, None);
        }
    }

    #[cold]
    fn report_one(&self, p: Pending) {
        let rec = &self.rec;
        rec.violations.fetch_add(1, Ordering::Relaxed);
        let line = self.violation_line(&p);
        let first = !rec.frozen.load(Ordering::Relaxed);
        let stack = if rec.stacks {
            crate::stacks::capture()
        } else {
            Vec::new()
        };
        if first {
            self.redeclare();
            rec.write(line.as_bytes());
            for (i, fr) in stack.iter().enumerate() {
                let mut l = LineBuf::new();
                l.start(b"stack");
                l.field_hex(b"i", i as u64);
                l.push(b" sym=");
                l.push(fr.as_bytes());
                l.finish();
                rec.write(l.as_bytes());
            }
            if rec.freeze {
                rec.frozen.store(true, Ordering::Relaxed);
                if let Err(e) = rec.sink.freeze() {
                    rec.sink_error(format!("could not freeze the trace buffer: {e}"));
                }
                self.dump_ring();
            }
        }
        let v = Violation {
            kind: p.kind,
            addr: p.addr,
            frame: p.frame,
            from: p.from,
            to: p.to,
            sk: p.sock.as_ref().map(|s| s.key),
            pool: p.pool,
            expected: p.expected,
            remaining: p.remaining,
            more: p.more,
            label: p.sock.as_ref().and_then(|s| s.label.clone()),
            line: line.trim_end().to_string(),
            stack,
        };
        *lock(&rec.last_violation) = Some(v.clone());
        match &rec.policy {
            Policy::Panic => panic!("xskdbg: {v}"),
            Policy::Log => eprintln!("xskdbg: {v}"),
            Policy::Callback(f) => f(&v),
        }
    }

    #[cold]
    fn dump_ring(&self) {
        let rec = &self.rec;
        if !matches!(rec.sink, Sink::Memory { .. }) {
            return;
        }
        match &rec.dump {
            DumpTarget::None => {}
            DumpTarget::Stderr => {
                use std::io::Write;
                let _ = std::io::stderr().write_all(&rec.sink.dump());
            }
            DumpTarget::File(path) => {
                let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
                let r = std::fs::write(&tmp, rec.sink.dump())
                    .and_then(|()| std::fs::rename(&tmp, path));
                if let Err(e) = r {
                    let _ = std::fs::remove_file(&tmp);
                    rec.sink_error(format!(
                        "could not dump the flight recorder to {}: {e}",
                        path.display()
                    ));
                }
            }
        }
    }
}
