//! The sockets of both sides and the pools, found or made from what a line
//! names, and joined when one line names both an `xs` and an `sk`.

use super::state::{ASock, ASockId, KSock, KSockId, Pool, PoolId, RingId};
use super::Analyzer;
use crate::parse::{AppOp, KernelOp, Op, SeedOp, SockKey};
use crate::timeline::Ring;

impl Analyzer {
    /// A new app socket.
    fn asock_named(&mut self, name: String) -> ASockId {
        self.asocks.push(ASock::new(name))
    }

    /// The app socket of an `sk=` key.
    pub(super) fn asock_sk(&mut self, sk: SockKey) -> ASockId {
        // Consecutive events mostly name the same socket: one compare
        // instead of hashing a 24-byte key.
        if let Some((last, i)) = self.last_sk {
            if last == sk {
                return i;
            }
        }
        if let Some(&i) = self.by_sk.get(&sk) {
            self.last_sk = Some((sk, i));
            return i;
        }
        let i = self.asock_named(sk.to_string());
        self.by_sk.insert(sk, i);
        i
    }

    /// The app socket of a seed trace's label.
    fn asock_label(&mut self, label: &[u8]) -> ASockId {
        if let Some(&i) = self.by_label.get(label) {
            return i;
        }
        let i = self.asock_named(String::from_utf8_lossy(label).into_owned());
        self.by_label.insert(label.to_vec(), i);
        i
    }

    /// The kernel socket of an `xs=` value.
    #[inline]
    fn ksock(&mut self, xs: u64) -> KSockId {
        if let Some((last, i)) = self.last_xs {
            if last == xs {
                return i;
            }
        }
        if let Some(&i) = self.by_xs.get(&xs) {
            self.last_xs = Some((xs, i));
            return i;
        }
        self.new_ksock(xs)
    }

    /// A kernel socket named for the first time: apart, so that the
    /// lookup made on every kernel event stays small enough to inline.
    #[cold]
    fn new_ksock(&mut self, xs: u64) -> KSockId {
        let i = self.ksocks.push(KSock::new(xs));
        self.by_xs.insert(xs, i);
        i
    }

    /// Join an app socket to its kernel socket (each to one only).
    #[inline]
    pub(super) fn link(&mut self, a: ASockId, k: KSockId) {
        if self.asocks[a].ks.is_none() && self.ksocks[k].asock.is_none() {
            self.asocks[a].ks = Some(k);
            self.ksocks[k].asock = Some(a);
        }
    }

    /// The pool of a `pool=` id.
    pub(super) fn pool_id(&mut self, id: u64) -> PoolId {
        if let Some(&i) = self.by_pool.get(&id) {
            return i;
        }
        let i = self.new_pool();
        self.by_pool.insert(id, i);
        i
    }

    /// A new pool.
    fn new_pool(&mut self) -> PoolId {
        self.pools.push(Pool::default())
    }

    /// The pool of an app socket (created on first use when nothing declared one).
    pub(super) fn asock_pool(&mut self, a: ASockId) -> PoolId {
        if let Some(p) = self.asocks[a].pool {
            return p;
        }
        let p = self.new_pool();
        self.asocks[a].pool = Some(p);
        p
    }

    /// The name of the app socket, given either side.
    pub(super) fn sock_name(&self, ks: Option<KSockId>, a: Option<ASockId>) -> Option<String> {
        let a = a.or_else(|| self.ksocks[ks?].asock)?;
        Some(self.asocks[a].name.clone())
    }

    /// The kernel and app sockets an operation names (made on first sight,
    /// joined when it names both).
    #[inline]
    pub(super) fn route(&mut self, op: &Op<'_>) -> (Option<KSockId>, Option<ASockId>) {
        match op {
            Op::Kernel(k) => {
                let (xs, sk) = match k {
                    KernelOp::Rx { xs, sk, .. } | KernelOp::Flush { xs, sk, .. } => {
                        (Some(*xs), *sk)
                    }
                    KernelOp::RxDone { xs, .. } => (Some(*xs), None),
                    KernelOp::RxOutcome { xs, .. } => (*xs, None),
                    KernelOp::Tx { xs, sk, .. } | KernelOp::Comp { xs, sk, .. } => (*xs, *sk),
                    KernelOp::Probe { .. } | KernelOp::Poll { .. } => (None, None),
                };
                let ks = xs.map(|x| self.ksock(x));
                let a = sk.map(|s| self.asock_sk(s));
                if let (Some(ks), Some(a)) = (ks, a) {
                    self.link(a, ks);
                }
                (ks, a)
            }
            Op::App(app) => {
                let a = match app {
                    AppOp::Sock { sk, .. } | AppOp::Rx { sk, .. } | AppOp::Tx { sk, .. } => {
                        Some(self.asock_sk(*sk))
                    }
                    AppOp::Fill { sk, pool, .. } | AppOp::Comp { sk, pool, .. } => match (sk, pool)
                    {
                        (Some(s), _) => Some(self.asock_sk(*s)),
                        (None, Some(p)) => {
                            let p = self.pool_id(*p);
                            self.asocks
                                .ids()
                                .find(|(_, s)| s.pool == Some(p))
                                .map(|(i, _)| i)
                        }
                        _ => None,
                    },
                    AppOp::Violation { sk: Some(s), .. } | AppOp::Stats { sk: Some(s), .. } => {
                        Some(self.asock_sk(*s))
                    }
                    _ => None,
                };
                (None, a)
            }
            Op::Seed(SeedOp::Transition { label: Some(l), .. }) => {
                (None, Some(self.asock_label(l)))
            }
            _ => (None, None),
        }
    }

    /// The ring of recent events `rid` names.
    #[inline]
    pub(super) fn ring_mut(&mut self, rid: RingId) -> Option<&mut Ring> {
        match rid {
            RingId::K(k) => Some(&mut self.ksocks[k].ring),
            RingId::A(x) => Some(&mut self.asocks[x].ring),
            RingId::Cpu(c) => self.cpus.get_mut(&c).map(|s| &mut s.ring),
        }
    }
}
