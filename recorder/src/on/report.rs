//! Violations: what a check found ([`Pending`], collected under a lock and
//! reported after it is released), and reporting it: count it; on the first
//! one (the trigger) repeat the declarations, write the `violation` line and
//! the stack, freeze the buffer and dump the memory ring; then act by
//! [`Policy`].
//!
//! Only the first [`REPORTED_PER_KIND`] violations of each kind are
//! reported (line, stack, policy); later ones are only counted, and the
//! counts are printed once at the end ([`RecInner::summary`]). A program
//! whose FIFO head is stuck otherwise reports it on every batch: hundreds of
//! thousands of lines on stderr and a forwarder slowed a hundredfold.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::frames::w_state;
use super::lock;
use super::order::IndexFault;
use super::recorder::RecInner;
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
    /// For `ring_index`: the index given and why it does not fit.
    pub(super) index: Option<IndexFault>,
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
            index: None,
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
        } else if from == State::Unknown && matches!(to, State::Rx | State::Comp) {
            // Only the kernel moves a frame into RX/COMPLETION, and only
            // from FILL/TX: the recorder missed the app's FILL/TX of it.
            ViolationKind::NotRecorded
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
            self.sock_line(s, None, false);
            if let (true, Some(poison)) = (s.prepoisoned.load(Ordering::Relaxed), self.cfg.poison) {
                self.write_rx_poisoned(s, poison);
            }
        }
    }

    #[cold]
    fn report_one(&self, p: Pending) {
        let rec = &self.rec;
        rec.violations.fetch_add(1, Ordering::Relaxed);
        let of_kind = rec.by_kind[kind_index(p.kind)].fetch_add(1, Ordering::Relaxed) + 1;
        if of_kind > REPORTED_PER_KIND {
            return;
        }
        let line = self.violation_line(&p);
        let live = !rec.frozen.load(Ordering::Relaxed);
        let stack = if rec.stacks {
            crate::stacks::capture()
        } else {
            Vec::new()
        };
        if live {
            self.trigger(&line, &stack);
        }
        let v = p.into_violation(&line, stack);
        *lock(&rec.last_violation) = Some(v.clone());
        let last = if of_kind == REPORTED_PER_KIND {
            format!(" (further {} violations are only counted)", v.kind.as_str())
        } else {
            String::new()
        };
        match &rec.policy {
            Policy::Panic => panic!("xskdbg: {v}"),
            Policy::Log => eprintln!("xskdbg: {v}{last}"),
            Policy::Callback(f) => f(&v),
        }
    }

    /// A violation while the buffer is live (the first one, or any reported
    /// one without freezing): make the buffer self-contained (declarations
    /// once, the `violation` line, the stack), then freeze it if configured.
    #[cold]
    fn trigger(&self, line: &str, stack: &[String]) {
        if !self.rec.redeclared.swap(true, Ordering::Relaxed) {
            self.redeclare();
        }
        self.rec.write(line.as_bytes());
        self.write_stack(stack);
        if self.rec.freeze {
            self.rec.start_window();
        }
    }
}

impl RecInner {
    #[cold]
    pub(super) fn dump_ring(&self) {
        let rec = self;
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

/// Violations of one kind that are reported (line, stack, policy); later
/// ones are counted.
pub(crate) const REPORTED_PER_KIND: u64 = 5;

/// Every kind, in the order of [`kind_index`].
pub(super) const KINDS: [ViolationKind; 10] = [
    ViolationKind::InvalidTransition,
    ViolationKind::DuplicateInFlight,
    ViolationKind::FifoOrder,
    ViolationKind::PoisonedDescriptor,
    ViolationKind::WrongPool,
    ViolationKind::AddressOutOfRange,
    ViolationKind::MultibufferSplit,
    ViolationKind::NotRecorded,
    ViolationKind::RingIndex,
    ViolationKind::ReadOutsideRing,
];

/// A kind's slot in the per-kind counters (exhaustive: a new kind must be
/// given one).
pub(super) const fn kind_index(k: ViolationKind) -> usize {
    match k {
        ViolationKind::InvalidTransition => 0,
        ViolationKind::DuplicateInFlight => 1,
        ViolationKind::FifoOrder => 2,
        ViolationKind::PoisonedDescriptor => 3,
        ViolationKind::WrongPool => 4,
        ViolationKind::AddressOutOfRange => 5,
        ViolationKind::MultibufferSplit => 6,
        ViolationKind::NotRecorded => 7,
        ViolationKind::RingIndex => 8,
        ViolationKind::ReadOutsideRing => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_counter() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(kind_index(*k), i, "{k:?}");
        }
    }
}
