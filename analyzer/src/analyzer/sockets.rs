//! The sockets of both sides and the pools, found or made from what a line
//! names, and joined when one line names both an `xs` and an `sk`.

use super::state::{ASock, ASockId, KSock, KSockId, Pool, PoolId, RingId};
use super::Analyzer;
use crate::parse::{AddrList, AppOp, KernelOp, Op, SeedOp, SockKey};
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

    /// The name of the app socket, given either side: its label, with its
    /// `sid` when other sockets share its key.
    pub(super) fn sock_name(&self, ks: Option<KSockId>, a: Option<ASockId>) -> Option<String> {
        let a = a.or_else(|| self.ksocks[ks?].asock)?;
        let s = &self.asocks[a];
        if let Some(alias) = &s.alias {
            return Some(alias.clone());
        }
        Some(match s.sid {
            Some(sid) if s.shared => format!("{} sid {sid:x}", s.name),
            _ => s.name.clone(),
        })
    }

    /// A `sock` declaration: the socket it names. With `sid=` that is the
    /// socket of that identity. Without (format 1 as first written), a
    /// declaration names the socket of the same key declared with the same
    /// `fd=` (or, when either has none, the same label: the recorder
    /// repeats its declarations without `fd=` before a violation); any
    /// other is a second socket on the key (`XDP_SHARED_UMEM` on one queue),
    /// which the old lines did not tell apart by their `sk`.
    fn declare_sock(
        &mut self,
        sk: SockKey,
        sid: Option<u64>,
        fd: Option<u64>,
        label: Option<&[u8]>,
    ) -> ASockId {
        if let Some(&a) = sid.and_then(|id| self.by_sid.get(&id)) {
            return a;
        }
        let group = self.sk_groups.get(&sk).cloned().unwrap_or_default();
        if sid.is_none() {
            let same = group.iter().copied().find(|&g| {
                let s = &self.asocks[g];
                s.sid.is_none()
                    && match (fd, s.fd) {
                        (Some(x), Some(y)) => x == y,
                        _ => label == s.label.as_deref(),
                    }
            });
            if let Some(g) = same {
                return g;
            }
        }
        let a = if group.is_empty() {
            // The key's first socket: the one kernel lines and lines
            // without `sid=` name while it is the only one.
            let a = self.asock_sk(sk);
            // Never declared (a declared socket is in the key's group), it
            // may have been joined to a kernel socket by the key alone:
            // this socket's own (received before the declaration), or the
            // previous socket's on the key, whose declaration a wrapped
            // buffer overwrote (xskxceiver's TEARDOWN). Kept, the second
            // left the new socket's kernel socket unjoined and its receives
            // in a stale UMEM (false `kernel`); dropped, the key's next
            // kernel line joins its own.
            if let Some(k) = self.asocks[a].ks.take() {
                self.ksocks[k].asock = None;
            }
            a
        } else {
            let a = self.asock_named(sk.to_string());
            if let Some(p) = self.asocks[group[0]].pool {
                self.asocks[a].pool = Some(p);
            }
            for g in group.iter().copied().chain([a]) {
                self.asocks[g].shared = true;
            }
            a
        };
        let s = &mut self.asocks[a];
        s.sid = sid;
        s.fd = fd;
        s.label = label.map(<[u8]>::to_vec);
        if let Some(id) = sid {
            self.by_sid.insert(id, a);
        }
        self.sk_groups.entry(sk).or_default().push(a);
        a
    }

    /// A socket declared on a key whose sockets have another UMEM (or none
    /// known): those are gone, even without their `gone=1` (a recording
    /// from before it, or one that lost it). A device queue binds one UMEM
    /// at a time; sockets sharing a queue share its UMEM and are declared
    /// with it.
    fn gone_by_umem(&mut self, sk: SockKey, sid: Option<u64>, umem: Option<u64>) {
        let Some(u) = umem else { return };
        if sid.is_some_and(|id| self.by_sid.contains_key(&id)) {
            return; // a declaration repeated (before a violation)
        }
        let new = self.umems.get(&u).copied();
        let stale: Vec<ASockId> = self
            .sk_groups
            .get(&sk)
            .into_iter()
            .flatten()
            .copied()
            // Unknown: a socket whose own declaration was overwritten (a
            // wrapped buffer), known only from its ring lines.
            .filter(|&g| self.asock_umem(g).is_none_or(|o| Some(o) != new))
            .collect();
        for a in stale {
            self.end_sock(sk, a);
        }
    }

    /// `sock ... gone=1`: the socket's end. Its key, and its kernel
    /// socket's `xs`, are free for the next socket: a program that closes
    /// and opens sockets on one queue (xskxceiver's TEARDOWN binds ten in a
    /// row, each with a UMEM of its own, and the kernel may reuse the `xs`)
    /// must not have the next socket's receives joined to the old one, or
    /// to its UMEM. Its state stays for the report.
    fn sock_gone(&mut self, sk: SockKey, sid: Option<u64>) -> Option<ASockId> {
        let a = match sid.and_then(|id| self.by_sid.get(&id).copied()) {
            Some(a) => a,
            None => *self.by_sk.get(&sk)?,
        };
        self.end_sock(sk, a);
        Some(a)
    }

    /// Socket `a` of key `sk` is gone (see [`Analyzer::sock_gone`]).
    fn end_sock(&mut self, sk: SockKey, a: ASockId) {
        if let Some(k) = self.asocks[a].ks.take() {
            self.ksocks[k].asock = None;
            let xs = self.ksocks[k].xs;
            if self.by_xs.get(&xs) == Some(&k) {
                self.by_xs.remove(&xs);
            }
            self.last_xs = None;
        }
        if self.by_sk.get(&sk) == Some(&a) {
            self.by_sk.remove(&sk);
        }
        self.last_sk = None;
        if let Some(id) = self.asocks[a].sid {
            self.by_sid.remove(&id);
        }
        if let Some(g) = self.sk_groups.get_mut(&sk) {
            g.retain(|&x| x != a);
            match g.as_slice() {
                [] => {
                    self.sk_groups.remove(&sk);
                }
                // The one left has the key to itself again.
                &[only] => {
                    self.asocks[only].shared = false;
                    self.by_sk.insert(sk, only);
                }
                _ => {}
            }
        }
    }

    /// The socket of an `rx`/`tx` line: its `sid=`'s, else the key's; of
    /// several sockets declared on the key, the one whose ring index the
    /// line continues (each socket counts its own RX consumer and TX
    /// producer). When that cannot decide, its TX order is not judged
    /// (`order_blind`): merging two sockets' sends would blame the kernel's
    /// per-socket completion order.
    fn ring_sock(
        &mut self,
        sk: SockKey,
        sid: Option<u64>,
        idx: Option<u64>,
        n: Option<AddrList<'_>>,
        tx: bool,
        pid: Option<u32>,
    ) -> ASockId {
        if let Some(id) = sid {
            return self.declare_sock(sk, Some(id), None, None);
        }
        let first = self.asock_sk(sk);
        if !self.asocks[first].shared {
            return first;
        }
        let group = self.sk_groups.get(&sk).cloned().unwrap_or_default();
        let next = |s: &ASock| if tx { s.tx_next } else { s.rx_next };
        let affine = |s: &ASock| pid.is_some() && s.last_pid == pid;
        let pick = |cands: &[ASockId], asocks: &crate::analyzer::state::IdVec<ASockId, ASock>| {
            cands
                .iter()
                .copied()
                .find(|&g| affine(&asocks[g]))
                .unwrap_or(cands[0])
        };
        let exact: Vec<ASockId> = group
            .iter()
            .copied()
            .filter(|&g| idx.is_some() && next(&self.asocks[g]) == idx)
            .collect();
        let fresh: Vec<ASockId> = group
            .iter()
            .copied()
            .filter(|&g| next(&self.asocks[g]).is_none())
            .collect();
        let a = match (exact.len(), fresh.len()) {
            (1, _) => exact[0],
            (0, 1) => fresh[0],
            (0, f) if f > 1 => {
                // A first line that any of these sockets could have written:
                // the order stays per socket whichever it was, the name not.
                let names: Vec<&str> = fresh
                    .iter()
                    .map(|&g| self.asocks[g].name.as_str())
                    .collect();
                let alias = names.join(" or ");
                let a = pick(&fresh, &self.asocks);
                for &g in &fresh {
                    if self.asocks[g].alias.is_none() {
                        self.asocks[g].alias = Some(alias.clone());
                    }
                }
                a
            }
            (e, _) if e > 1 => {
                self.order_blind = true;
                pick(&exact, &self.asocks)
            }
            _ => {
                self.order_blind = true;
                pick(&group, &self.asocks)
            }
        };
        let count = n.map_or(0, |l| l.iter().count() as u64);
        let s = &mut self.asocks[a];
        let after = idx.map(|i| i.wrapping_add(count));
        if tx {
            s.tx_next = after;
        } else {
            s.rx_next = after;
        }
        s.last_pid = pid;
        a
    }

    /// The kernel and app sockets an operation names (made on first sight,
    /// joined when it names both).
    #[inline]
    pub(super) fn route(
        &mut self,
        op: &Op<'_>,
        pid: Option<u32>,
    ) -> (Option<KSockId>, Option<ASockId>) {
        self.order_blind = false;
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
                // A key several sockets share does not say which one.
                let a = sk
                    .map(|s| self.asock_sk(s))
                    .filter(|&a| !self.asocks[a].shared);
                if let (Some(ks), Some(a)) = (ks, a) {
                    self.link(a, ks);
                }
                (ks, a)
            }
            Op::App(app) => {
                let a = match app {
                    AppOp::Sock {
                        sk,
                        sid,
                        gone: true,
                        ..
                    } => self.sock_gone(*sk, *sid),
                    AppOp::Sock {
                        sk,
                        sid,
                        fd,
                        umem,
                        label,
                        ..
                    } => {
                        self.gone_by_umem(*sk, *sid, *umem);
                        Some(self.declare_sock(*sk, *sid, *fd, *label))
                    }
                    AppOp::Rx {
                        sk,
                        sid,
                        idx,
                        descs,
                        ..
                    } => Some(self.ring_sock(*sk, *sid, *idx, Some(*descs), false, pid)),
                    AppOp::Tx {
                        sk,
                        sid,
                        idx,
                        descs,
                        ..
                    } => Some(self.ring_sock(*sk, *sid, *idx, Some(*descs), true, pid)),
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
                    AppOp::Violation {
                        sk: Some(s), sid, ..
                    }
                    | AppOp::Stats {
                        sk: Some(s), sid, ..
                    } => Some(match sid {
                        Some(id) => self.declare_sock(*s, Some(*id), None, None),
                        None => self.asock_sk(*s),
                    }),
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
