//! perf-probe style kprobe events, as the `tracefs` backend (and the seed
//! story's `perf probe`) creates them: `NAME: (func+0x9b/0x250) key=0x..`.

use memchr::memmem;
use xskdbg_format::lex::{is_ws, parse_dec, parse_hex0x};
use xskdbg_format::{KernelOp, Op};

/// `__xsk_rcv_zc_L7: (__xsk_rcv_zc+0x9b/0x250) addr=0x16ce900 len=0x4e
/// xs=0x.. fq=0x..`: a receive into a socket.
pub(super) fn rx(body: &[u8]) -> Op<'_> {
    let rx = || {
        Some(KernelOp::Rx {
            xs: kv_hex(body, b"xs")?,
            sk: None,
            addr: kv_hex(body, b"addr").or_else(|| handle_from_parts(body))?,
            len: kv_hex(body, b"len"),
            // The `tracefs` backend's `rx->cached_prod` at entry: the slot
            // the attempt is about to reserve (the seed's probe has none).
            slot: kv_hex(body, b"slot"),
            kpool: kv_hex(body, b"fq").or_else(|| kv_hex(body, b"pool")),
            prod: None,
            mode: None,
        })
    };
    rx().map(Op::Kernel).unwrap_or(Op::Unknown)
}

/// `__xsk_rcv_zc_ret: (__xsk_rcv+0x9c/0x110 <- __xsk_rcv_zc) ret=-105` (the
/// `tracefs` backend's return probe; `perf probe`'s `__xsk_rcv_zc__return`
/// prints `arg1=`): how this CPU's latest receive attempt ended.
pub(super) fn rx_return(body: &[u8]) -> Op<'_> {
    let Some(v) = kv(body, b"ret").or_else(|| kv(body, b"arg1")) else {
        return Op::Unknown;
    };
    let ret = match v.strip_prefix(b"-") {
        Some(d) => parse_dec(d).and_then(|d| i64::try_from(d).ok()).map(|d| -d),
        // Printed as hex (`:x32`, perf's default): a 32-bit int.
        None if v.starts_with(b"0x") => parse_hex0x(v).map(|x| i64::from(x as u32 as i32)),
        None => parse_dec(v).and_then(|d| i64::try_from(d).ok()),
    };
    match ret {
        Some(ret) => Op::Kernel(KernelOp::RxOutcome {
            xs: None,
            slot: None,
            ret,
        }),
        None => Op::Unknown,
    }
}

/// The descriptor `xp_get_handle()` (6.9+) makes from the parts the `tracefs`
/// backend's event carries where `xdp_buff_xsk` has no `orig_addr`:
/// `data=` (`xskb->xdp.data`), `umem=` (`pool->addrs`), and for unaligned pools
/// (`unal=` not 0) `hard=` (`data_hard_start`) and `hr=` (`pool->headroom`).
fn handle_from_parts(body: &[u8]) -> Option<u64> {
    let data = kv_hex(body, b"data")?;
    let umem = kv_hex(body, b"umem")?;
    let orig = data.checked_sub(umem)?;
    if kv_hex(body, b"unal").unwrap_or(0) == 0 {
        return Some(orig);
    }
    let offset = data
        .checked_sub(kv_hex(body, b"hard")?)?
        .checked_add(kv_hex(body, b"hr")?)?;
    Some(orig.checked_sub(offset)? + (offset << 48))
}

/// `xp_raw_get_data: (...) addr=0x..`: the kernel took a frame from TX.
pub(super) fn tx(body: &[u8]) -> Op<'_> {
    match kv_hex(body, b"addr") {
        Some(addr) => Op::Kernel(KernelOp::Tx {
            xs: kv_hex(body, b"xs"),
            sk: None,
            addr,
        }),
        None => Op::Unknown,
    }
}

/// `xsk_flush: (...) xs=0x..` (or `__xsk_map_flush`): the RX producer
/// published, seen at the flush itself.
pub(super) fn flush(body: &[u8]) -> Op<'_> {
    match kv_hex(body, b"xs") {
        Some(xs) => Op::Kernel(KernelOp::Flush {
            xs,
            sk: None,
            prod: None,
            exact: true,
        }),
        None => Op::Unknown,
    }
}

/// Find `key=VALUE` (space separated) in a perf-probe body; value hex with
/// optional `0x`.
fn kv_hex(body: &[u8], key: &[u8]) -> Option<u64> {
    kv(body, key).and_then(parse_hex0x)
}

fn kv<'a>(body: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0;
    while let Some(p) = memmem::find(&body[from..], key) {
        let at = from + p;
        let start_ok = at == 0 || is_ws(body[at - 1]);
        let eq = at + key.len();
        if start_ok && body.get(eq) == Some(&b'=') {
            let v = &body[eq + 1..];
            let end = v.iter().position(|&b| is_ws(b)).unwrap_or(v.len());
            return Some(&v[..end]);
        }
        from = at + 1;
    }
    None
}
