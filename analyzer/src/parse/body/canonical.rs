//! The fast path for project lines: the shapes the probes and the recorder
//! print (keys in their order, single spaces, plain lower-case hex), read in
//! one pass with a [`Cursor`] that matches each ` key=` in place. Every
//! answer must be the one the general field walk ([`super::project`])
//! gives; `None` hands the line to it.

use xskdbg_format::key::{bytes as key, field};
use xskdbg_format::op::bytes as op;
use xskdbg_format::{AddrList, AppOp, Cursor, Fields, KernelOp, Op, RxMode};

use super::project::{opt_hex, req_list};

/// A required list value: to the next space or the end, starting and
/// ending with a hex digit (the check of [`req_list`]).
#[inline(always)]
fn list<'a>(c: &mut Cursor<'a>) -> Option<AddrList<'a>> {
    req_list(Some(c.value())).ok()
}

/// The rest of the line once every key the operation reads has been taken:
/// it cannot change the result (the first value of a key wins) as long as
/// the last value ended at a field boundary (a space or the end; the
/// general walk cuts tokens only at spaces).
#[inline(always)]
fn rest_ignored(c: &Cursor<'_>) -> Option<()> {
    c.at_boundary().then_some(())
}

/// The rest of the line when some key the operation reads is still missing:
/// accepted only if none of `keys` appears among its fields.
#[inline(always)]
fn rest_lacks(c: &Cursor<'_>, keys: &[&[u8]]) -> Option<()> {
    rest_ignored(c)?;
    Fields::new(c.rest())
        .all(|(k, _)| !keys.contains(&k))
        .then_some(())
}

/// An optional ` key=hex` at the cursor: `Some(None)` when the key is not
/// there (the cursor stays), `None` when it is but its value is not hex.
#[inline(always)]
fn opt_field(c: &mut Cursor<'_>, f: &[u8]) -> Option<Option<u64>> {
    match c.lit(f) {
        Some(()) => Some(Some(c.hex()?)),
        None => Some(None),
    }
}

/// The per-packet kernel lines (`krx`, `krxdone`, `ktx`, `kflush`: four in
/// five lines of a probed trace) in the shape the probes print them, keys in
/// their order and values plain hex, decoded in one pass that matches the
/// keys in place; fields the operation does not read may follow. `None` for
/// any other shape (another order, `0x`, extra blanks, ...): the general
/// field walk then decodes the line, and gives the same result for every
/// line this accepts (each key read has its first value here, and nothing
/// after can change it), which `tests/parse_agree.rs` checks.
#[inline(always)]
pub(super) fn kernel_op<'a>(op: &[u8], f: &[u8]) -> Option<Op<'a>> {
    let mut c = Cursor::new(f);
    match op {
        op::KRX => {
            // `xs sk a len slot [kpool]`, then anything (`prod= fcons=`).
            c.lit(field::XS)?;
            let xs = c.hex()?;
            c.lit(field::SK)?;
            let sk = c.sk()?;
            c.lit(field::A)?;
            let addr = c.hex()?;
            c.lit(field::LEN)?;
            let len = c.hex()?;
            // The tracepoint backend prints a multi-buffer packet's options.
            let opt = c.lit(field::OPT).is_some();
            if opt {
                c.skip();
            }
            c.lit(field::SLOT)?;
            let slot = c.hex()?;
            let mut taken = 5 + usize::from(opt);
            let mut kpool = None;
            if c.lit(field::KPOOL).is_some() {
                kpool = Some(c.hex()?);
                taken += 1;
            }
            rest_ignored(&c)?;
            // What follows (`prod= fcons= mode=` from the probes) by the
            // general rule: a key's first value, malformed values of the
            // keys read sending the line to the general walk (which rejects
            // it).
            let mut rest_kpool = None;
            let mut prod = None;
            let mut mode = None;
            for (k, v) in Fields::after(c.rest(), taken) {
                match k {
                    key::KPOOL if rest_kpool.is_none() => rest_kpool = Some(v),
                    key::PROD if prod.is_none() => prod = Some(v),
                    key::MODE if mode.is_none() => mode = Some(v),
                    _ => {}
                }
            }
            if kpool.is_none() {
                kpool = opt_hex(rest_kpool).ok()?;
            }
            Some(Op::Kernel(KernelOp::Rx {
                xs,
                sk: Some(sk),
                addr,
                len: Some(len),
                slot: Some(slot),
                kpool,
                prod: opt_hex(prod).ok()?,
                mode: mode.and_then(RxMode::parse),
            }))
        }
        op::KRXDONE => {
            c.lit(field::XS)?;
            let xs = c.hex()?;
            c.lit(field::SLOT)?;
            let slot = c.hex()?;
            rest_ignored(&c)?;
            Some(Op::Kernel(KernelOp::RxDone { xs, slot }))
        }
        op::KTX if f.starts_with(field::KPOOL) => {
            // The transmit probes see the pool, not the socket:
            // `kpool a`, then anything but `xs=`/`sk=` (`len= at=`).
            c.lit(field::KPOOL)?;
            c.skip();
            c.lit(field::A)?;
            let addr = c.hex()?;
            rest_lacks(&c, &[key::XS, key::SK])?;
            Some(Op::Kernel(KernelOp::Tx {
                xs: None,
                sk: None,
                addr,
            }))
        }
        op::KTX => {
            // `xs sk a`, then anything (`len=`).
            c.lit(field::XS)?;
            let xs = c.hex()?;
            c.lit(field::SK)?;
            let sk = c.sk()?;
            c.lit(field::A)?;
            let addr = c.hex()?;
            rest_ignored(&c)?;
            Some(Op::Kernel(KernelOp::Tx {
                xs: Some(xs),
                sk: Some(sk),
                addr,
            }))
        }
        op::KFLUSH => {
            // `xs sk prod`, then anything (`cprod= at=`).
            c.lit(field::XS)?;
            let xs = c.hex()?;
            c.lit(field::SK)?;
            let sk = c.sk()?;
            c.lit(field::PROD)?;
            let prod = c.hex()?;
            rest_ignored(&c)?;
            Some(Op::Kernel(KernelOp::Flush {
                xs,
                sk: Some(sk),
                prod: Some(prod),
                exact: false,
            }))
        }
        _ => None,
    }
}

/// The recorder's batch lines and the other frequent project lines in the
/// shape their writers print them (`rx sk= pool= idx= n= d=`, `fill pool=
/// sk= n= a=`, `kpoll napi= dev= work= budget=`, ...), under the same rules
/// as [`kernel_op`]: `None` sends the line to the general walk.
#[inline(always)]
pub(super) fn batch_op<'a>(op: &[u8], f: &'a [u8]) -> Option<Op<'a>> {
    let mut c = Cursor::new(f);
    let op = match op {
        op::RX => {
            c.lit(field::SK)?;
            let sk = c.sk()?;
            let sid = opt_field(&mut c, field::SID)?;
            c.lit(field::POOL)?;
            let pool = c.hex()?;
            c.lit(field::IDX)?;
            let idx = c.hex()?;
            c.lit(field::N)?;
            c.skip();
            c.lit(field::D)?;
            let descs = list(&mut c)?;
            // The producer the app saw, after the list (the recorder's
            // `rx_at_prod`).
            let prod = match c.lit(field::PROD) {
                Some(()) => Some(c.hex()?),
                None => {
                    rest_lacks(&c, &[key::PROD])?;
                    None
                }
            };
            Op::App(AppOp::Rx {
                sk,
                sid,
                pool: Some(pool),
                idx: Some(idx),
                descs,
                prod,
            })
        }
        op::TX => {
            c.lit(field::SK)?;
            let sk = c.sk()?;
            let sid = opt_field(&mut c, field::SID)?;
            // The recorder names the pool too; `tx` does not read it.
            if c.lit(field::POOL).is_some() {
                c.skip();
            }
            c.lit(field::IDX)?;
            let idx = c.hex()?;
            c.lit(field::N)?;
            c.skip();
            c.lit(field::D)?;
            let descs = list(&mut c)?;
            Op::App(AppOp::Tx {
                sk,
                sid,
                idx: Some(idx),
                descs,
            })
        }
        op::FILL | op::COMP => {
            c.lit(field::POOL)?;
            let pool = Some(c.hex()?);
            let sk = match c.lit(field::SK) {
                Some(()) => Some(c.sk()?),
                None => None,
            };
            c.lit(field::N)?;
            c.skip();
            c.lit(field::A)?;
            let addrs = list(&mut c)?;
            if sk.is_none() {
                rest_lacks(&c, &[key::SK])?;
            }
            if op == op::FILL {
                Op::App(AppOp::Fill { pool, sk, addrs })
            } else {
                Op::App(AppOp::Comp { pool, sk, addrs })
            }
        }
        op::FREE | op::HOLD => {
            let umem = opt_field(&mut c, field::UMEM)?;
            c.lit(field::N)?;
            c.skip();
            c.lit(field::A)?;
            let addrs = list(&mut c)?;
            if umem.is_none() {
                rest_lacks(&c, &[key::UMEM])?;
            }
            if op == op::FREE {
                Op::App(AppOp::Free { umem, addrs })
            } else {
                Op::App(AppOp::Hold { umem, addrs })
            }
        }
        op::KCOMP => {
            c.lit(field::XS)?;
            let xs = c.hex()?;
            c.lit(field::SK)?;
            let sk = c.sk()?;
            c.lit(field::KPOOL)?;
            let kpool = c.hex()?;
            c.lit(field::N)?;
            let n = c.hex()?;
            c.lit(field::A)?;
            let addrs = list(&mut c)?;
            Op::Kernel(KernelOp::Comp {
                xs: Some(xs),
                sk: Some(sk),
                kpool: Some(kpool),
                n: Some(n),
                addrs,
            })
        }
        op::KPOLL => {
            c.lit(field::NAPI)?;
            c.skip();
            c.lit(field::DEV)?;
            c.skip();
            c.lit(field::WORK)?;
            let work = c.hex()?;
            c.lit(field::BUDGET)?;
            let budget = c.hex()?;
            Op::Kernel(KernelOp::Poll {
                work: Some(work),
                budget: Some(budget),
            })
        }
        op::STATS => {
            c.lit(field::SK)?;
            let sk = c.sk()?;
            let sid = opt_field(&mut c, field::SID)?;
            c.lit(field::RX_DROPPED)?;
            let rx_dropped = c.hex()?;
            c.lit(field::RX_INVALID)?;
            c.skip();
            c.lit(field::TX_INVALID)?;
            c.skip();
            c.lit(field::RX_FULL)?;
            let rx_full = c.hex()?;
            Op::App(AppOp::Stats {
                sk: Some(sk),
                sid,
                rx_dropped: Some(rx_dropped),
                rx_full: Some(rx_full),
            })
        }
        _ => return None,
    };
    // Every key the operation reads is taken, but `sid=` when it was not
    // in its place (a writer may put it anywhere).
    let sid_missing = matches!(
        op,
        Op::App(
            AppOp::Rx { sid: None, .. }
                | AppOp::Tx { sid: None, .. }
                | AppOp::Stats { sid: None, .. }
        )
    );
    if sid_missing {
        rest_lacks(&c, &[key::SID])?;
    } else {
        rest_ignored(&c)?;
    }
    Some(op)
}
