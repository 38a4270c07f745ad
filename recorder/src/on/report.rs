//! Violations: what a check found ([`Pending`], collected under a lock and
//! reported after it is released), and reporting it: count it; on the first
//! one (the trigger) repeat the declarations, write the `violation` line and
//! the stack, freeze the buffer and dump the memory ring; then act by
//! [`Policy`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::frames::w_state;
use super::lock;
use super::register::{SockInner, UmemInner};
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

impl Pending {
    /// A violation of `kind` by the frame of `addr` on its way `from` → `to`.
    #[cold]
    pub(super) fn new(
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

    /// The frame `key` of `addr` cannot move to `to` from the state in its
    /// word `cur`.
    #[cold]
    pub(super) fn transition(
        cur: u64,
        addr: u64,
        key: u64,
        to: State,
        sock: Option<&Arc<SockInner>>,
        pool: Option<u32>,
    ) -> Pending {
        let from = w_state(cur);
        let kind = if from == to {
            ViolationKind::DuplicateInFlight
        } else {
            ViolationKind::InvalidTransition
        };
        Pending::new(kind, addr, key, from, to, sock, pool)
    }

    /// What the app is told, with the `violation` line and the stack.
    fn into_violation(self, line: &str, stack: Vec<String>) -> Violation {
        Violation {
            kind: self.kind,
            addr: self.addr,
            frame: self.frame,
            from: self.from,
            to: self.to,
            sk: self.sock.as_ref().map(|s| s.key),
            pool: self.pool,
            expected: self.expected,
            remaining: self.remaining,
            more: self.more,
            label: self.sock.as_ref().and_then(|s| s.label.clone()),
            line: line.trim_end().to_string(),
            stack,
        }
    }
}

impl UmemInner {
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
            self.trigger(&line, &stack);
        }
        let v = p.into_violation(&line, stack);
        *lock(&rec.last_violation) = Some(v.clone());
        match &rec.policy {
            Policy::Panic => panic!("xskdbg: {v}"),
            Policy::Log => eprintln!("xskdbg: {v}"),
            Policy::Callback(f) => f(&v),
        }
    }

    /// The first violation while the buffer is live: make the buffer
    /// self-contained (declarations, the `violation` line, the stack), then
    /// freeze it if configured.
    #[cold]
    fn trigger(&self, line: &str, stack: &[String]) {
        self.redeclare();
        self.rec.write(line.as_bytes());
        self.write_stack(stack);
        if self.rec.freeze {
            self.freeze();
        }
    }

    /// Stop the buffer so it keeps what led up to the violation, and dump
    /// the memory ring.
    #[cold]
    fn freeze(&self) {
        let rec = &self.rec;
        rec.frozen.store(true, Ordering::Relaxed);
        if let Err(e) = rec.sink.freeze() {
            rec.sink_error(format!("could not freeze the trace buffer: {e}"));
        }
        self.dump_ring();
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
