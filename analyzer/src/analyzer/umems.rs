//! Several UMEMs: one address names a frame in each, so a frame is a
//! (UMEM, address) pair. The key stays one `u64`: the UMEM's ordinal (0 for
//! the first UMEM the trace names, and for traces that name none) sits in
//! bits 48..63, above every frame base ([`Mapping::frame`] keeps the low 48
//! bits only). With one UMEM every key is what it always was, so a
//! single-UMEM trace is judged and reported exactly as before; printed
//! frames drop the ordinal ([`shown`]).
//!
//! An event's UMEM is the one of what it names: a pool (`pool=` → its
//! `umem=`), a socket (`sk=`/`sid=` → its `sock` line's `umem=`, or its
//! pool's), a kernel socket joined to an app socket, a `kpool=` seen next to
//! such a socket, or `umem=` itself (`free`, `hold`, `audit`). An event that
//! names none of these in a trace of several UMEMs goes, address by
//! address, to the UMEM where the frame is in the place the event takes it
//! from ([`Want`]); failing that, to the first UMEM (the old behaviour).
//!
//! [`Mapping::frame`]: crate::chunk::Mapping::frame

use super::state::{ASockId, AppHold, Frame, KSockId};
use super::Analyzer;
use crate::chunk::Mapping;
use crate::parse::{AppOp, KernelOp, Op};

pub(crate) use crate::chunk::shown;

/// Where the UMEM's ordinal sits in a frame key: right above the bits
/// [`Mapping::frame`] keeps.
///
/// [`Mapping::frame`]: crate::chunk::Mapping::frame
const ORD_SHIFT: u32 = 48;
/// The UMEM ordinal of a frame key, as an index.
#[inline]
pub(super) fn umem_index(f: u64) -> usize {
    (f >> ORD_SHIFT) as usize
}

/// Ordinals past this share the last one (65536 UMEMs in one trace).
const ORD_MAX: u16 = u16::MAX;
/// A guess looks at this many UMEMs at most: it runs per address, and a
/// trace that names thousands of UMEMs must not make each address cost
/// thousands of lookups.
const GUESS_MAX: usize = 64;

/// Where an event with no UMEM of its own takes a frame from: the UMEM in
/// which the frame is there is the event's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Want {
    /// The app holds it (it frees, takes, fills or sends it).
    App,
    /// On FILL (a kernel receive, an app read).
    Fill,
    /// On TX (a kernel transmit or completion, an app completion).
    Tx,
    /// Anywhere known.
    Any,
}

impl Want {
    fn fits(self, fs: &Frame) -> bool {
        match self {
            Want::App => fs.app != AppHold::No,
            Want::Fill => fs.fill > 0 || fs.krx > 0,
            Want::Tx => fs.tx > 0 || fs.kcomp > 0,
            Want::Any => true,
        }
    }
}

/// The current event's UMEM, as `frame_of` applies it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum UmemOf {
    /// Known: the ordinal already shifted into place.
    Tag(u64),
    /// Not named by the event: chosen per frame.
    Guess(Want),
}

impl Default for UmemOf {
    fn default() -> Self {
        UmemOf::Tag(0)
    }
}

impl Analyzer {
    /// The ordinal of a UMEM id, numbered on first sight.
    pub(super) fn umem_ord(&mut self, id: u64) -> u16 {
        let n = self.umems.len();
        *self
            .umems
            .entry(id)
            .or_insert_with(|| u16::try_from(n).unwrap_or(ORD_MAX))
    }

    /// What an event says about UMEMs: a `umem`, `pool` or `sock`
    /// declaration ties its id, pool and socket together. Before the
    /// event's own UMEM is resolved, so a declaration counts at once.
    pub(super) fn learn_umems(&mut self, op: &Op<'_>, a: Option<ASockId>) {
        let Op::App(app) = op else { return };
        match app {
            AppOp::Umem {
                umem,
                size,
                chunk,
                unaligned,
                ..
            } => {
                let o = self.umem_ord(*umem);
                self.learn_umem_map(o, *chunk, *unaligned);
                self.learn_umem_geom(o, *size, *chunk, *unaligned);
            }
            AppOp::Pool {
                pool,
                umem: Some(u),
                ..
            } => {
                let o = self.umem_ord(*u);
                let p = self.pool_id(*pool);
                self.pools[p].umem = Some(o);
            }
            AppOp::Sock {
                pool,
                umem: Some(u),
                ..
            } => {
                let o = self.umem_ord(*u);
                if let Some(a) = a {
                    self.asocks[a].umem = Some(o);
                }
                if let Some(p) = pool {
                    let p = self.pool_id(*p);
                    self.pools[p].umem.get_or_insert(o);
                }
            }
            AppOp::Audit { umem: Some(u), .. }
            | AppOp::Hold { umem: Some(u), .. }
            | AppOp::Free { umem: Some(u), .. } => {
                self.umem_ord(*u);
            }
            _ => {}
        }
    }

    /// Whether an application ring operation's UMEM is declared: its
    /// pool's (FILL, COMPLETION) or its socket's (RX, TX).
    pub(super) fn ring_umem_known(&self, op: &Op<'_>, a: Option<ASockId>) -> bool {
        // The socket first: loads only, and `route` found it for most
        // FILL and COMPLETION lines too; the pool's id costs a hash lookup.
        if a.is_some_and(|x| self.asock_umem(x).is_some()) {
            return true;
        }
        let pool = match op {
            Op::App(AppOp::Fill { pool, .. } | AppOp::Comp { pool, .. }) => *pool,
            _ => None,
        };
        pool.and_then(|p| self.by_pool.get(&p))
            .is_some_and(|&p| self.pools[p].umem.is_some())
    }

    /// The UMEM ordinal of an app socket: its own declaration's, else its
    /// pool's.
    pub(super) fn asock_umem(&self, a: ASockId) -> Option<u16> {
        let s = &self.asocks[a];
        s.umem
            .or_else(|| s.pool.and_then(|p| self.pools.get(p)?.umem))
    }

    /// The UMEM ordinal of a kernel socket, through the app socket it is
    /// joined to.
    fn ksock_umem(&self, ks: KSockId) -> Option<u16> {
        self.asock_umem(self.ksocks[ks].asock?)
    }

    /// The current event's UMEM, from what it names (see the module's
    /// doc). Only called with two or more UMEMs named.
    pub(super) fn resolve_umem(
        &mut self,
        op: &Op<'_>,
        ks: Option<KSockId>,
        a: Option<ASockId>,
    ) -> UmemOf {
        let by_sock = |s: &Self| {
            ks.and_then(|k| s.ksock_umem(k))
                .or_else(|| a.and_then(|x| s.asock_umem(x)))
        };
        let (known, want) = match op {
            Op::App(app) => match app {
                AppOp::Fill { pool, .. } | AppOp::Comp { pool, .. } => {
                    let by_pool = pool.and_then(|p| {
                        let id = *self.by_pool.get(&p)?;
                        self.pools[id].umem
                    });
                    let want = if matches!(app, AppOp::Fill { .. }) {
                        Want::App
                    } else {
                        Want::Tx
                    };
                    (by_pool.or_else(|| by_sock(self)), want)
                }
                AppOp::Rx { .. } => (by_sock(self), Want::Fill),
                AppOp::Tx { .. } => (by_sock(self), Want::App),
                AppOp::Hold { umem, .. } | AppOp::Free { umem, .. } => {
                    (umem.map(|u| self.umem_ord(u)), Want::App)
                }
                AppOp::Audit { umem, .. } => (umem.map(|u| self.umem_ord(u)), Want::App),
                AppOp::Violation { pool, .. } => {
                    let by_pool = pool.and_then(|p| {
                        let id = *self.by_pool.get(&p)?;
                        self.pools[id].umem
                    });
                    (by_sock(self).or(by_pool), Want::Any)
                }
                _ => (by_sock(self), Want::Any),
            },
            Op::Kernel(k) => {
                let kpool = match k {
                    KernelOp::Rx { kpool, .. } | KernelOp::Comp { kpool, .. } => *kpool,
                    _ => None,
                };
                let known = by_sock(self);
                if let (Some(o), Some(kp)) = (known, kpool) {
                    // A pool pointer seen with its socket: lines that name
                    // only the pool (a completion) find their UMEM by it.
                    // The latest wins: the kernel reuses a freed pool's
                    // memory for the next socket's.
                    self.kpools.insert(kp, o);
                }
                let known = known.or_else(|| kpool.and_then(|kp| self.kpools.get(&kp).copied()));
                let want = match k {
                    KernelOp::Rx { .. } => Want::Fill,
                    KernelOp::Tx { .. } | KernelOp::Comp { .. } => Want::Tx,
                    _ => Want::Any,
                };
                (known, want)
            }
            Op::Seed(_) | Op::Unknown => (by_sock(self), Want::Any),
        };
        match known {
            Some(o) => UmemOf::Tag(u64::from(o) << ORD_SHIFT),
            None => UmemOf::Guess(want),
        }
    }

    /// The frame key of a frame base under an event that names no UMEM:
    /// the UMEM where the frame is where the event takes it from, else
    /// the one where it is known at all, else the first.
    #[cold]
    pub(super) fn guess_frame(&self, base: impl Fn(u64) -> u64, want: Want) -> u64 {
        let n = self.umems.len().min(GUESS_MAX) as u64;
        let key = |o: u64| base(o) | (o << ORD_SHIFT);
        let known = |o: &u64| self.frames.get(key(*o));
        (0..n)
            .find(|o| known(o).is_some_and(|fs| want.fits(fs)))
            .or_else(|| (0..n).find(|o| known(o).is_some()))
            .map_or_else(|| base(0), key)
    }

    /// UMEM `ord`'s mapping: its own `umem` line's, else the trace's.
    fn map_of(&self, ord: u64) -> Mapping {
        self.umem_maps
            .get(ord as usize)
            .copied()
            .flatten()
            .or(self.mapping)
            .unwrap_or(Mapping::Aligned {
                chunk: crate::chunk::MIN_CHUNK,
            })
    }

    /// [`Analyzer::frame_of`] when the UMEMs' chunk sizes differ: the
    /// address's frame under the mapping of the UMEM it is taken to be in.
    #[cold]
    #[inline(never)]
    pub(super) fn frame_of_mixed(&self, addr: u64) -> u64 {
        match self.umem_of {
            UmemOf::Tag(t) => self.map_of(t >> ORD_SHIFT).frame(addr) | t,
            UmemOf::Guess(w) => self.guess_frame(|o| self.map_of(o).frame(addr), w),
        }
    }

    /// A UMEM's layout, for the TX descriptors the kernel refuses. Not
    /// with `--chunk` (the user does not trust the lines' chunk sizes) nor
    /// from a line without size and chunk: then nothing counts as refused.
    fn learn_umem_geom(
        &mut self,
        ord: u16,
        size: Option<u64>,
        chunk: Option<u64>,
        unaligned: bool,
    ) {
        let o = ord as usize;
        if self.umem_geoms.len() <= o {
            self.umem_geoms.resize(o + 1, None);
        }
        self.umem_geoms[o] = match (size, chunk) {
            (Some(size), Some(chunk)) if self.chunk_source != "option" => {
                Some(xskdbg_format::Geometry {
                    size,
                    chunk,
                    unaligned,
                })
            }
            _ => None,
        };
    }

    /// The layout of an app socket's UMEM, when its `umem` line gave it;
    /// with no socket or no UMEM of its own, the trace's only UMEM's.
    pub(super) fn tx_geometry(&self, a: Option<ASockId>) -> Option<xskdbg_format::Geometry> {
        let o = match a.and_then(|a| self.asock_umem(a)) {
            Some(o) => o as usize,
            None if self.umems.len() == 1 => 0,
            None => return None,
        };
        self.umem_geoms.get(o).copied().flatten()
    }

    /// A `umem` line's chunk size or mode, for its UMEM (ordinal `ord`).
    /// `--chunk-size`/`--unaligned` given by the user hold for every UMEM.
    fn learn_umem_map(&mut self, ord: u16, chunk: Option<u64>, unaligned: bool) {
        if self.chunk_source == "option" {
            return;
        }
        let m = if unaligned {
            Mapping::Unaligned
        } else if let Some(c) = chunk {
            Mapping::Aligned {
                chunk: c
                    .clamp(crate::chunk::MIN_CHUNK, 1 << 32)
                    .next_power_of_two(),
            }
        } else {
            return;
        };
        let o = ord as usize;
        if self.umem_maps.len() <= o {
            self.umem_maps.resize(o + 1, None);
        }
        self.umem_maps[o] = Some(m);
        if self.mapping.is_some_and(|g| g != m) && !self.mixed_maps {
            self.mixed_maps = true;
            self.chunk_note.push_str(
                "; the UMEMs' chunk sizes differ: each UMEM's frames follow its own umem line",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_drops_the_ordinal_only() {
        assert_eq!(shown(0x1000), 0x1000);
        assert_eq!(shown((2 << ORD_SHIFT) | 0x1000), 0x1000);
        assert_eq!(shown(0xffff_ffff_f800), 0xffff_ffff_f800);
    }
}
