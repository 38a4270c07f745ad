//! Lines of the project format (`docs/TRACE-FORMAT.md`) by the general
//! rule: the version, the operation word, then a walk over the `key=value`
//! fields ([`Fields`]) that keeps the first value of each key the operation
//! reads. This defines what a project line means; [`super::canonical`] is
//! the fast path for the shapes the writers print.

use xskdbg_format::key::bytes as key;
use xskdbg_format::lex::{next_token, parse_dec, parse_hex0x, Fields};
use xskdbg_format::op::bytes as op;
use xskdbg_format::swar::{not_graphic, not_graphic_bytes, scan};
use xskdbg_format::{
    word, AddrList, AppOp, FlushMode, KernelOp, Op, RxMode, SockKey, State, FORMAT_VERSION,
};

use super::canonical;
use crate::parse::BadReason;

/// `take_fields!(fields, var = key::KEY, ...)` declares `var: Option<&[u8]>`
/// for each key and fills it with the key's first value in one walk over the
/// fields.
macro_rules! take_fields {
    ($fields:expr, $($var:ident = $key:path),+ $(,)?) => {
        $(let mut $var: Option<&[u8]> = None;)+
        for (k, v) in Fields::new($fields) {
            match k {
                $($key if $var.is_none() => $var = Some(v),)+
                _ => {}
            }
        }
    };
}

/// Optional hex field; `Err` when present but malformed.
pub(super) fn opt_hex(v: Option<&[u8]>) -> Result<Option<u64>, BadReason> {
    match v {
        None => Ok(None),
        Some(v) => parse_hex0x(v).map(Some).ok_or(BadReason::BadField),
    }
}

/// Required hex field.
fn req_hex(v: Option<&[u8]>) -> Result<u64, BadReason> {
    opt_hex(v)?.ok_or(BadReason::BadField)
}

/// Optional socket key; `Err` when present but malformed.
fn opt_sk(v: Option<&[u8]>) -> Result<Option<SockKey>, BadReason> {
    match v {
        None => Ok(None),
        Some(v) => SockKey::parse(v).map(Some).ok_or(BadReason::BadField),
    }
}

/// Required socket key.
fn req_sk(v: Option<&[u8]>) -> Result<SockKey, BadReason> {
    opt_sk(v)?.ok_or(BadReason::BadField)
}

/// An optional list (empty when absent).
fn opt_list(v: Option<&[u8]>) -> AddrList<'_> {
    AddrList {
        text: v.unwrap_or(&[]),
    }
}

/// After `xskdbg:`: `1 op k=v ...`.
#[inline(always)]
pub(super) fn line<const FAST: bool>(rest: &[u8]) -> Result<Op<'_>, BadReason> {
    let sp = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    if parse_dec(&rest[..sp]) != Some(u64::from(FORMAT_VERSION)) {
        // A newer (or garbled) version: context only, never judged.
        return Ok(Op::Unknown);
    }
    // `1 op ...` with a plain op word: the token [`next_token`] would give,
    // found eight bytes at a time.
    let plain_op = if FAST && sp == 1 && rest.get(2).is_some_and(|&b| !not_graphic(b)) {
        let end = scan(rest, 2, not_graphic_bytes, not_graphic);
        (end == rest.len() || rest[end] == b' ').then(|| (&rest[2..end], &rest[end..]))
    } else {
        None
    };
    let (op, f) = match plain_op {
        Some(x) => x,
        None => match next_token(&rest[sp..]) {
            Some(x) => x,
            None => return Err(BadReason::BadField),
        },
    };
    // The recorder's `seq=` comes first; the analyzer reads it from the
    // line's head when it orders lines ([`seq_of`]).
    let f = skip_seq(f);
    // Two tries rather than `or_else`, which moved the large `Op` through a
    // call (a memmove per line in the profile).
    if FAST {
        if let Some(op) = canonical::kernel_op(op, f) {
            return Ok(op);
        }
        if let Some(op) = canonical::batch_op(op, f) {
            return Ok(op);
        }
    }
    // Hottest first: the probes' per-packet lines.
    Ok(match op {
        op::KRX => {
            take_fields!(
                f,
                xs = key::XS,
                sk = key::SK,
                a = key::A,
                len = key::LEN,
                slot = key::SLOT,
                kpool = key::KPOOL,
                prod = key::PROD,
                mode = key::MODE
            );
            Op::Kernel(KernelOp::Rx {
                xs: req_hex(xs)?,
                sk: opt_sk(sk)?,
                addr: req_hex(a)?,
                len: opt_hex(len)?,
                slot: opt_hex(slot)?,
                kpool: opt_hex(kpool)?,
                prod: opt_hex(prod)?,
                mode: mode.and_then(RxMode::parse),
            })
        }
        op::KRXDONE => {
            take_fields!(f, xs = key::XS, slot = key::SLOT);
            Op::Kernel(KernelOp::RxDone {
                xs: req_hex(xs)?,
                slot: req_hex(slot)?,
            })
        }
        op::KTX => {
            take_fields!(f, xs = key::XS, sk = key::SK, a = key::A);
            Op::Kernel(KernelOp::Tx {
                xs: opt_hex(xs)?,
                sk: opt_sk(sk)?,
                addr: req_hex(a)?,
            })
        }
        op::KFLUSH => {
            take_fields!(f, xs = key::XS, sk = key::SK, prod = key::PROD);
            Op::Kernel(KernelOp::Flush {
                xs: req_hex(xs)?,
                sk: opt_sk(sk)?,
                prod: opt_hex(prod)?,
                exact: false,
            })
        }
        op::KCOMP => {
            take_fields!(
                f,
                xs = key::XS,
                sk = key::SK,
                kpool = key::KPOOL,
                n = key::N,
                a = key::A
            );
            Op::Kernel(KernelOp::Comp {
                xs: opt_hex(xs)?,
                sk: opt_sk(sk)?,
                kpool: opt_hex(kpool)?,
                n: opt_hex(n)?,
                addrs: opt_list(a),
            })
        }
        op::KPOLL => {
            take_fields!(f, work = key::WORK, budget = key::BUDGET);
            Op::Kernel(KernelOp::Poll {
                work: opt_hex(work)?,
                budget: opt_hex(budget)?,
            })
        }
        // `kxdperr why=rcv`: the receive attempt whose `krx` this CPU just
        // printed failed (RX ring full). The other reasons stay context.
        word @ op::KXDPERR => {
            take_fields!(
                f,
                why = key::WHY,
                xs = key::XS,
                slot = key::SLOT,
                errno = key::ERRNO
            );
            match why {
                Some(b"rcv") => Op::Kernel(KernelOp::RxOutcome {
                    xs: Some(req_hex(xs)?),
                    slot: opt_hex(slot)?,
                    ret: -opt_hex(errno)?
                        .and_then(|e| i64::try_from(e).ok())
                        .unwrap_or(1)
                        .max(1),
                }),
                _ => Op::App(AppOp::Other { op: word }),
            }
        }
        op::UMEM => {
            take_fields!(
                f,
                umem = key::UMEM,
                size = key::SIZE,
                chunk = key::CHUNK,
                mode = key::MODE,
                headroom = key::HEADROOM,
                poison = key::POISON,
            );
            Op::App(AppOp::Umem {
                umem: opt_hex(umem)?.unwrap_or(0),
                size: opt_hex(size)?,
                chunk: opt_hex(chunk)?,
                unaligned: mode == Some(word::UNALIGNED.as_bytes()),
                headroom: opt_hex(headroom)?,
                poison: opt_hex(poison)?,
            })
        }
        op::POOL => {
            take_fields!(f, pool = key::POOL, umem = key::UMEM, sk = key::SK);
            Op::App(AppOp::Pool {
                pool: req_hex(pool)?,
                umem: opt_hex(umem)?,
                sk: opt_sk(sk)?,
            })
        }
        op::SOCK => {
            take_fields!(
                f,
                sk = key::SK,
                sid = key::SID,
                fd = key::FD,
                pool = key::POOL,
                umem = key::UMEM,
                gone = key::GONE,
                label = key::LABEL
            );
            Op::App(AppOp::Sock {
                sk: req_sk(sk)?,
                sid: opt_hex(sid)?,
                fd: opt_hex(fd)?,
                pool: opt_hex(pool)?,
                umem: opt_hex(umem)?,
                gone: gone == Some(b"1"),
                label: label.filter(|l| !l.is_empty()),
            })
        }
        op::FILL => {
            take_fields!(f, pool = key::POOL, sk = key::SK, a = key::A);
            Op::App(AppOp::Fill {
                pool: opt_hex(pool)?,
                sk: opt_sk(sk)?,
                addrs: req_list(a)?,
            })
        }
        op::RX => {
            take_fields!(
                f,
                sk = key::SK,
                sid = key::SID,
                pool = key::POOL,
                idx = key::IDX,
                d = key::D,
                prod = key::PROD
            );
            Op::App(AppOp::Rx {
                sk: req_sk(sk)?,
                sid: opt_hex(sid)?,
                pool: opt_hex(pool)?,
                idx: opt_hex(idx)?,
                descs: req_list(d)?,
                prod: opt_hex(prod)?,
            })
        }
        op::TX => {
            take_fields!(f, sk = key::SK, sid = key::SID, idx = key::IDX, d = key::D);
            Op::App(AppOp::Tx {
                sk: req_sk(sk)?,
                sid: opt_hex(sid)?,
                idx: opt_hex(idx)?,
                descs: req_list(d)?,
            })
        }
        op::COMP => {
            take_fields!(f, pool = key::POOL, sk = key::SK, a = key::A);
            Op::App(AppOp::Comp {
                pool: opt_hex(pool)?,
                sk: opt_sk(sk)?,
                addrs: req_list(a)?,
            })
        }
        op::HOLD => {
            take_fields!(f, umem = key::UMEM, a = key::A);
            Op::App(AppOp::Hold {
                umem: opt_hex(umem)?,
                addrs: req_list(a)?,
            })
        }
        op::FREE => {
            take_fields!(f, umem = key::UMEM, a = key::A);
            Op::App(AppOp::Free {
                umem: opt_hex(umem)?,
                addrs: req_list(a)?,
            })
        }
        op::STATS => {
            take_fields!(
                f,
                sk = key::SK,
                sid = key::SID,
                rx_dropped = key::RX_DROPPED,
                rx_full = key::RX_FULL
            );
            Op::App(AppOp::Stats {
                sk: opt_sk(sk)?,
                sid: opt_hex(sid)?,
                rx_dropped: opt_hex(rx_dropped)?,
                rx_full: opt_hex(rx_full)?,
            })
        }
        op::AUDIT => {
            take_fields!(
                f,
                umem = key::UMEM,
                held = key::HELD,
                taken = key::TAKEN,
                hold_max = key::HOLD_MAX,
                freelist = key::FREELIST,
                a = key::A,
                since = key::SINCE,
                age_ms = key::AGE_MS,
            );
            Op::App(AppOp::Audit {
                umem: opt_hex(umem)?,
                held: opt_hex(held)?,
                taken: opt_hex(taken)?,
                hold_max: opt_hex(hold_max)?,
                freelist: freelist == Some(b"1"),
                frames: opt_list(a),
                since: opt_list(since),
                age_ms: opt_list(age_ms),
            })
        }
        op::VIOLATION => {
            take_fields!(
                f,
                kind = key::KIND,
                sk = key::SK,
                sid = key::SID,
                pool = key::POOL,
                a = key::A,
                from = key::FROM,
                to = key::TO,
                expected = key::EXPECTED,
                remaining = key::REMAINING,
            );
            Op::App(AppOp::Violation {
                kind: kind.ok_or(BadReason::BadField)?,
                sk: opt_sk(sk)?,
                sid: opt_hex(sid)?,
                pool: opt_hex(pool)?,
                addr: req_hex(a)?,
                from: from.and_then(State::parse),
                to: to.and_then(State::parse),
                expected: opt_hex(expected)?,
                remaining: opt_list(remaining),
            })
        }
        op::PROBE => {
            take_fields!(
                f,
                backend = key::BACKEND,
                kernel = key::KERNEL,
                flush = key::FLUSH
            );
            Op::Kernel(KernelOp::Probe {
                backend: backend.unwrap_or(b""),
                kernel: kernel.unwrap_or(b""),
                flush: FlushMode::parse(flush),
            })
        }
        other => Op::App(AppOp::Other { op: other }),
    })
}

/// A required list: present, and starting and ending with a hex digit.
pub(super) fn req_list(text: Option<&[u8]>) -> Result<AddrList<'_>, BadReason> {
    let text = text.ok_or(BadReason::BadField)?;
    // A cheap shape check only: the values are decoded once, later, by
    // whoever iterates the list, and items that do not parse are skipped.
    let shaped = text.first().is_some_and(u8::is_ascii_hexdigit)
        && text.last().is_some_and(u8::is_ascii_hexdigit);
    if !shaped {
        return Err(BadReason::BadField);
    }
    Ok(AddrList { text })
}

/// The fields after a leading ` seq=<hex>` (the recorder writes it right
/// after the operation word).
#[inline(always)]
fn skip_seq(f: &[u8]) -> &[u8] {
    match f.strip_prefix(b" seq=") {
        Some(r) => &r[memchr::memchr(b' ', r).unwrap_or(r.len())..],
        None => f,
    }
}

/// The recorder's sequence number of a project line's body (`xskdbg:1 op
/// seq=2a ...`), read from its head only.
pub fn seq_of(body: &[u8]) -> Option<u64> {
    let rest = body.strip_prefix(xskdbg_format::PREFIX)?;
    let sp = memchr::memchr(b' ', rest)?;
    let r = rest[sp..].strip_prefix(b" seq=")?;
    let end = memchr::memchr(b' ', r).unwrap_or(r.len());
    xskdbg_format::lex::parse_hex0x(&r[..end])
}
