//! perf-probe style kprobe events, as the `tracefs` backend (and the seed
//! story's `perf probe`) creates them: `NAME: (func+0x9b/0x250) key=0x..`.
//!
//! A key's value is the one of its first `key=` token ([`kv`], one search
//! per key). The fast path ([`walk`]) finds every key an event reads in one
//! walk over the body's tokens, and reads plain hex eight digits at a time: a
//! search per key was most of a kprobe line's cost (each built a substring
//! searcher and went over the body again). Both give the values to the same
//! decoding, so they can differ only in what they find, which
//! `tests/parse_agree.rs` checks.

use memchr::memmem;
use xskdbg_format::lex::{is_ws, parse_dec, parse_hex0x, strip_0x};
use xskdbg_format::swar::{eq_bytes, scan, word};
use xskdbg_format::Cursor;
use xskdbg_format::{KernelOp, Op};

/// A key an event reads: its name, and `name=` as the low bytes of a word
/// with the mask of those bytes (compared with a token's first eight bytes
/// at once).
struct Key {
    name: &'static [u8],
    pat: u64,
    mask: u64,
}

const fn key(name: &'static [u8]) -> Key {
    let mut b = [0u8; 8];
    let mut i = 0;
    while i < name.len() {
        b[i] = name[i];
        i += 1;
    }
    b[name.len()] = b'=';
    Key {
        name,
        pat: u64::from_le_bytes(b),
        mask: u64::MAX >> (8 * (7 - name.len())),
    }
}

/// What an `__xsk_rcv_zc` event reads, in the order the probes print it.
const RX_KEYS: [Key; 11] = [
    key(b"addr"),
    key(b"len"),
    key(b"xs"),
    key(b"fq"),
    key(b"slot"),
    key(b"pool"),
    key(b"data"),
    key(b"hard"),
    key(b"umem"),
    key(b"hr"),
    key(b"unal"),
];
const ADDR: usize = 0;
const LEN: usize = 1;
const XS: usize = 2;
const FQ: usize = 3;
const SLOT: usize = 4;
const POOL: usize = 5;
const DATA: usize = 6;
const HARD: usize = 7;
const UMEM: usize = 8;
const HR: usize = 9;
const UNAL: usize = 10;

/// The values of `keys` in `body`: by [`walk`] (`FAST`) or by [`kv`].
#[inline(always)]
fn values<'a, const FAST: bool, const N: usize>(
    body: &'a [u8],
    keys: &[Key; N],
) -> [Option<&'a [u8]>; N] {
    if FAST {
        walk(body, keys)
    } else {
        keys.each_ref().map(|k| kv(body, k.name))
    }
}

/// `__xsk_rcv_zc_L7: (__xsk_rcv_zc+0x9b/0x250) addr=0x16ce900 len=0x4e
/// xs=0x.. fq=0x..`: a receive into a socket.
pub(super) fn rx<const FAST: bool>(body: &[u8]) -> Op<'_> {
    let v = values::<FAST, 11>(body, &RX_KEYS);
    let hex = |k: usize| v[k].and_then(hex0x::<FAST>);
    let rx = || {
        Some(KernelOp::Rx {
            xs: hex(XS)?,
            sk: None,
            addr: hex(ADDR).or_else(|| handle_from_parts(hex))?,
            len: hex(LEN),
            // The `tracefs` backend's `rx->cached_prod` at entry: the slot
            // the attempt is about to reserve (the seed's probe has none).
            slot: hex(SLOT),
            kpool: hex(FQ).or_else(|| hex(POOL)),
            prod: None,
            mode: None,
        })
    };
    rx().map(Op::Kernel).unwrap_or(Op::Unknown)
}

/// `__xsk_rcv_zc_ret: (__xsk_rcv+0x9c/0x110 <- __xsk_rcv_zc) ret=-105` (the
/// `tracefs` backend's return probe; `perf probe`'s `__xsk_rcv_zc__return`
/// prints `arg1=`): how this CPU's latest receive attempt ended.
pub(super) fn rx_return<const FAST: bool>(body: &[u8]) -> Op<'_> {
    const KEYS: [Key; 2] = [key(b"ret"), key(b"arg1")];
    let [ret, arg1] = values::<FAST, 2>(body, &KEYS);
    let Some(v) = ret.or(arg1) else {
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
fn handle_from_parts(hex: impl Fn(usize) -> Option<u64>) -> Option<u64> {
    let data = hex(DATA)?;
    let umem = hex(UMEM)?;
    let orig = data.checked_sub(umem)?;
    if hex(UNAL).unwrap_or(0) == 0 {
        return Some(orig);
    }
    let offset = data.checked_sub(hex(HARD)?)?.checked_add(hex(HR)?)?;
    Some(orig.checked_sub(offset)? + (offset << 48))
}

/// `xp_raw_get_data: (...) addr=0x..`: the kernel took a frame from TX.
pub(super) fn tx<const FAST: bool>(body: &[u8]) -> Op<'_> {
    const KEYS: [Key; 2] = [key(b"addr"), key(b"xs")];
    let [addr, xs] = values::<FAST, 2>(body, &KEYS);
    match addr.and_then(hex0x::<FAST>) {
        Some(addr) => Op::Kernel(KernelOp::Tx {
            xs: xs.and_then(hex0x::<FAST>),
            sk: None,
            addr,
        }),
        None => Op::Unknown,
    }
}

/// `xsk_flush: (...) xs=0x..` (or `__xsk_map_flush`): the RX producer
/// published, seen at the flush itself.
pub(super) fn flush<const FAST: bool>(body: &[u8]) -> Op<'_> {
    const KEYS: [Key; 1] = [key(b"xs")];
    let [xs] = values::<FAST, 1>(body, &KEYS);
    match xs.and_then(hex0x::<FAST>) {
        Some(xs) => Op::Kernel(KernelOp::Flush {
            xs,
            sk: None,
            prod: None,
            exact: true,
        }),
        None => Op::Unknown,
    }
}

/// Find `key=VALUE` (space separated) in a perf-probe body: the first
/// `key=` at the body's start or after a blank; the value runs to the next
/// blank.
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

/// What [`kv`] finds for each of `keys`, in one walk over the body's
/// blank-separated tokens: a `key=` that [`kv`] accepts starts a token (it
/// follows a blank or is at the start, and a key holds no blank) and its
/// value is the rest of that token, so the first token that starts with
/// `key=` holds the key's value.
#[inline(always)]
fn walk<'a, const N: usize>(body: &'a [u8], keys: &[Key; N]) -> [Option<&'a [u8]>; N] {
    let mut values = [None; N];
    let mut missing = N;
    let mut i = 0;
    while i < body.len() && missing > 0 {
        let hit = match word(body, i) {
            Some(w) => (0..N).find(|&k| values[k].is_none() && w & keys[k].mask == keys[k].pat),
            None => (0..N).find(|&k| {
                let (r, name) = (&body[i..], keys[k].name);
                values[k].is_none() && r.starts_with(name) && r.get(name.len()) == Some(&b'=')
            }),
        };
        let from = hit.map_or(i, |k| i + keys[k].name.len() + 1);
        // Tokens are a few bytes long: a word at a time beats a memchr
        // call's setup.
        let end = scan(
            body,
            from,
            |w| eq_bytes(w, b' ') | eq_bytes(w, b'\t'),
            is_ws,
        );
        if let Some(k) = hit {
            values[k] = Some(&body[from..end]);
            missing -= 1;
        }
        i = end + 1;
    }
    values
}

/// [`parse_hex0x`], eight digits at a time when the value is only digits
/// after its `0x` (what the probes print).
#[inline(always)]
fn hex0x<const FAST: bool>(v: &[u8]) -> Option<u64> {
    if FAST {
        let mut c = Cursor::new(strip_0x(v));
        if let Some(x) = c.hex().filter(|_| c.end()) {
            return Some(x);
        }
    }
    parse_hex0x(v)
}
