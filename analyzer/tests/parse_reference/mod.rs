//! The analyzer's line parser as it was before the speed work (commit
//! 3e49d18), kept verbatim as the oracle that `tests/parse_agree.rs` compares
//! the optimized `xskdbg_analyzer::parse` against: every fast path must give
//! exactly what this slow, obviously-written code gives.
//!
//! Only the function bodies live here; the types are the library's own.

#![allow(dead_code, clippy::all)]

use memchr::memmem;
use xskdbg_analyzer::parse::{
    AddrList, AppOp, BadReason, Desc, Event, FlushMode, KernelOp, Line, Meta, Op, RingState,
    RxMode, SeedOp, SockKey, Timestamp, FORMAT_VERSION, MAX_LINE,
};

/// `AddrList::iter` as it was.
pub fn addr_iter(text: &[u8]) -> impl Iterator<Item = Desc> + '_ {
    text.split(|&b| b == b',').filter_map(|item| {
        let item = trim(item);
        let mut parts = item.split(|&b| b == b':');
        let addr = parse_hex(strip_0x(parts.next()?))?;
        let len = match parts.next() {
            Some(p) => Some(parse_hex(p)?),
            None => None,
        };
        let options = match parts.next() {
            Some(p) => parse_hex(p)?,
            None => 0,
        };
        Some(Desc { addr, len, options })
    })
}

// ---------------------------------------------------------------------------
// byte helpers

const NBSP: &[u8] = b"\xc2\xa0";

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trim ASCII blanks and UTF-8 no-break spaces (blog copies have them).
pub fn trim(mut s: &[u8]) -> &[u8] {
    loop {
        if let Some((&f, rest)) = s.split_first() {
            if is_ws(f) || f == b'\r' {
                s = rest;
                continue;
            }
        }
        if s.starts_with(NBSP) {
            s = &s[2..];
            continue;
        }
        break;
    }
    loop {
        if let Some((&l, rest)) = s.split_last() {
            if is_ws(l) || l == b'\r' {
                s = rest;
                continue;
            }
        }
        if s.ends_with(NBSP) {
            s = &s[..s.len() - 2];
            continue;
        }
        break;
    }
    s
}

fn strip_0x(s: &[u8]) -> &[u8] {
    if s.len() > 2 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') {
        &s[2..]
    } else {
        s
    }
}

/// Parse lower/upper-case hex without `0x`; `None` when empty, not hex or
/// wider than 64 bits.
pub fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// Parse hex with an optional `0x` prefix.
pub fn parse_hex0x(s: &[u8]) -> Option<u64> {
    parse_hex(strip_0x(s))
}

fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

/// Parse a timestamp token (without the trailing `:`).
pub fn parse_timestamp(text: &[u8]) -> Option<Timestamp<'_>> {
    match memchr::memchr(b'.', text) {
        Some(dot) => {
            let secs = parse_dec(&text[..dot])?;
            let frac = &text[dot + 1..];
            if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let used = &frac[..frac.len().min(9)];
            let mut f = parse_dec(used)?;
            for _ in used.len()..9 {
                f *= 10;
            }
            let ns = secs.checked_mul(1_000_000_000)?.checked_add(f)?;
            Some(Timestamp {
                text,
                ns: Some(ns),
                order: ns,
            })
        }
        None => {
            let v = parse_dec(text)?;
            Some(Timestamp {
                text,
                ns: None,
                order: v,
            })
        }
    }
}

/// Split off the next whitespace-separated token (NBSP counts as space).
fn next_token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = trim_start(s);
    if s.is_empty() {
        return None;
    }
    // memchr for the separators; 0xc2 only ends a token when it starts NBSP.
    let mut from = 0;
    let end = loop {
        match memchr::memchr3(b' ', b'\t', 0xc2, &s[from..]) {
            None => break s.len(),
            Some(i) => {
                let at = from + i;
                if s[at] != 0xc2 || s.get(at + 1) == Some(&0xa0) {
                    break at;
                }
                from = at + 1;
            }
        }
    };
    Some((&s[..end], &s[end..]))
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    loop {
        if let Some((&f, rest)) = s.split_first() {
            if is_ws(f) {
                s = rest;
                continue;
            }
        }
        if s.starts_with(NBSP) {
            s = &s[2..];
            continue;
        }
        return s;
    }
}

// ---------------------------------------------------------------------------
// line parsing

/// Decode one line (without its `\n`; a trailing `\r` is ignored).
pub fn parse_line(line: u64, raw: &[u8]) -> Line<'_> {
    let raw = match raw.last() {
        Some(b'\r') => &raw[..raw.len() - 1],
        _ => raw,
    };
    if raw.len() > MAX_LINE {
        return Line::Bad {
            line,
            raw: &raw[..256],
            reason: BadReason::TooLong,
        };
    }
    let t = trim(raw);
    if t.is_empty() {
        return Line::Blank { line };
    }
    if t[0] == b'#' {
        return parse_hash_line(line, t);
    }
    if let Some(meta) = parse_lost(t) {
        return Line::Meta { line, meta };
    }
    match parse_entry(line, raw) {
        Some(Ok(ev)) => Line::Event(ev),
        Some(Err(reason)) => Line::Bad { line, raw, reason },
        None => {
            if is_trace_cmd_preamble(t) {
                Line::Blank { line }
            } else {
                Line::Bad {
                    line,
                    raw,
                    reason: BadReason::NotAnEntry,
                }
            }
        }
    }
}

fn is_trace_cmd_preamble(t: &[u8]) -> bool {
    t.starts_with(b"cpus=")
        || t.starts_with(b"version = ")
        || (t.starts_with(b"CPU ") && t.ends_with(b" is empty"))
        || t.starts_with(b"CPU:") && memmem::find(t, b"LOST").is_none()
}

fn parse_hash_line(line: u64, t: &[u8]) -> Line<'_> {
    if memmem::find(t, b"buffer started").is_some() {
        if let Some(p) = memmem::find(t, b"CPU") {
            let rest = trim_start(&t[p + 3..]);
            let end = rest
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(rest.len());
            if let Some(cpu) = parse_dec(&rest[..end]) {
                if let Ok(cpu) = u32::try_from(cpu) {
                    return Line::Meta {
                        line,
                        meta: Meta::CpuBufferStarted(cpu),
                    };
                }
            }
        }
    }
    const ENTRIES: &[u8] = b"entries-in-buffer/entries-written:";
    if let Some(p) = memmem::find(t, ENTRIES) {
        let rest = &t[p + ENTRIES.len()..];
        if let Some((tok, rest)) = next_token(rest) {
            if let Some(slash) = memchr::memchr(b'/', tok) {
                if let (Some(a), Some(b)) = (parse_dec(&tok[..slash]), parse_dec(&tok[slash + 1..]))
                {
                    let cpus = memmem::find(rest, b"#P:").and_then(|q| {
                        let r = &rest[q + 3..];
                        let end = r
                            .iter()
                            .position(|b| !b.is_ascii_digit())
                            .unwrap_or(r.len());
                        parse_dec(&r[..end]).and_then(|v| u32::try_from(v).ok())
                    });
                    return Line::Meta {
                        line,
                        meta: Meta::Entries {
                            in_buffer: a,
                            written: b,
                            cpus,
                        },
                    };
                }
            }
        }
    }
    Line::Blank { line }
}

/// `CPU:2 [LOST 123 EVENTS]` (trace_pipe / trace-cmd).
fn parse_lost(t: &[u8]) -> Option<Meta> {
    let rest = t
        .strip_prefix(b"CPU:")
        .or_else(|| t.strip_prefix(b"CPU "))?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    let cpu = u32::try_from(parse_dec(&rest[..end])?).ok()?;
    let p = memmem::find(rest, b"[LOST ")?;
    let r = &rest[p + 6..];
    let e = r.iter().position(|b| !b.is_ascii_digit())?;
    let count = parse_dec(&r[..e])?;
    Some(Meta::Lost { cpu, count })
}

/// `None` if the line is not shaped like an entry; `Some(Err)` if it is an
/// entry whose project body is malformed.
fn parse_entry(line: u64, raw: &[u8]) -> Option<Result<Event<'_>, BadReason>> {
    let s = trim_start(raw);
    // The CPU column is the first `[digits]` (task names rarely hold one; if
    // they do, the timestamp check below rejects the wrong split).
    let mut from = 0;
    let (open, close, cpu) = loop {
        let open = from + memchr::memchr(b'[', &s[from..])?;
        let close_rel = memchr::memchr(b']', &s[open..])?;
        let close = open + close_rel;
        if let Some(cpu) = parse_dec(&s[open + 1..close]).and_then(|c| u32::try_from(c).ok()) {
            if open > 0 {
                break (open, close, cpu);
            }
        }
        from = open + 1;
    };
    let task_pid = trim(&s[..open]);
    if task_pid.is_empty() {
        return None;
    }
    let (task, pid) = match memchr::memrchr(b'-', task_pid) {
        Some(d) => match parse_dec(&task_pid[d + 1..]).and_then(|p| u32::try_from(p).ok()) {
            Some(pid) => (&task_pid[..d], Some(pid)),
            None => (task_pid, None),
        },
        None => (task_pid, None),
    };
    // Flags (zero or more tokens), then `TIMESTAMP:`.
    let after = &s[close + 1..];
    let mut rest = after;
    let mut ts = None;
    for _ in 0..4 {
        let (tok, r) = next_token(rest)?;
        if let Some(text) = tok.strip_suffix(b":") {
            if let Some(t) = parse_timestamp(text) {
                ts = Some((t, tok));
                rest = r;
                break;
            }
        }
        rest = r;
    }
    let (ts, ts_tok) = ts?;
    let flags_end = ts_tok.as_ptr() as usize - after.as_ptr() as usize;
    let flags = trim(&after[..flags_end]);
    let r = trim_start(rest);
    let colon = memchr::memchr(b':', r)?;
    let name = &r[..colon];
    if name.is_empty() || name.iter().any(|&b| is_ws(b)) {
        return None;
    }
    let mut body = &r[colon + 1..];
    if let Some(b) = body.strip_prefix(b" ") {
        body = b;
    }
    let op = match decode_body(name, body) {
        Ok(op) => op,
        Err(reason) => return Some(Err(reason)),
    };
    Some(Ok(Event {
        line,
        raw,
        task,
        pid,
        cpu,
        flags,
        ts,
        name,
        body,
        op,
    }))
}

fn decode_body<'a>(name: &[u8], body: &'a [u8]) -> Result<Op<'a>, BadReason> {
    if name.starts_with(b"__xsk_rcv_zc") {
        return Ok(perf_rx(body).map(Op::Kernel).unwrap_or(Op::Unknown));
    }
    if name.starts_with(b"xp_raw_get_data") {
        return Ok(match kv_hex(body, b"addr") {
            Some(addr) => Op::Kernel(KernelOp::Tx {
                xs: kv_hex(body, b"xs"),
                sk: None,
                addr,
            }),
            None => Op::Unknown,
        });
    }
    if name.starts_with(b"xsk_flush") || name.starts_with(b"__xsk_map_flush") {
        return Ok(match kv_hex(body, b"xs") {
            Some(xs) => Op::Kernel(KernelOp::Flush {
                xs,
                sk: None,
                prod: None,
                exact: true,
            }),
            None => Op::Unknown,
        });
    }
    if name == b"napi_poll" {
        return Ok(Op::Kernel(napi_poll(body)));
    }
    let mut msg = trim_start(body);
    // trace-cmd prints `print: tracing_mark_write: msg` or `print: ip: msg`.
    if name == b"print" {
        if let Some(m) = msg.strip_prefix(b"tracing_mark_write: ") {
            msg = m;
        } else if let Some((tok, r)) = next_token(msg) {
            if tok.ends_with(b":") && (tok.starts_with(b"0x") || tok.starts_with(b"(")) {
                msg = trim_start(r);
            }
        }
    }
    if let Some(rest) = msg.strip_prefix(b"xskdbg:") {
        return project_line(rest);
    }
    let marker = matches!(
        name,
        b"tracing_mark_write" | b"print" | b"bpf_trace_printk" | b"bputs" | b"bprint"
    );
    if marker {
        if let Some(op) = seed_line(msg) {
            return Ok(Op::Seed(op));
        }
    }
    Ok(Op::Unknown)
}

/// `(__xsk_rcv_zc+0x9b/0x250) addr=0x16ce900 len=0x4e xs=0x.. fq=0x..`
fn perf_rx(body: &[u8]) -> Option<KernelOp<'_>> {
    Some(KernelOp::Rx {
        xs: kv_hex(body, b"xs")?,
        sk: None,
        addr: kv_hex(body, b"addr")?,
        len: kv_hex(body, b"len"),
        slot: None,
        kpool: kv_hex(body, b"fq").or_else(|| kv_hex(body, b"pool")),
        prod: None,
        mode: None,
    })
}

/// `napi poll on napi struct 0000.. for device eth0 work 1 budget 64`
fn napi_poll(body: &[u8]) -> KernelOp<'_> {
    let word_after = |w: &[u8]| -> Option<u64> {
        let p = memmem::find(body, w)?;
        let (tok, _) = next_token(&body[p + w.len()..])?;
        parse_dec(tok)
    };
    KernelOp::Poll {
        work: word_after(b" work "),
        budget: word_after(b" budget "),
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

// ---------------------------------------------------------------------------
// project lines

/// Fields of a project line: up to 32 `key=value` pairs.
struct Fields<'a> {
    kv: [(&'a [u8], &'a [u8]); 16],
    n: usize,
}

impl<'a> Fields<'a> {
    fn parse(mut s: &'a [u8]) -> Fields<'a> {
        let mut f = Fields {
            kv: [(&[][..], &[][..]); 16],
            n: 0,
        };
        while f.n < f.kv.len() {
            s = trim_start(s);
            if s.is_empty() {
                break;
            }
            if s.starts_with(b"label=") {
                f.kv[f.n] = (b"label", trim(&s[6..]));
                f.n += 1;
                break;
            }
            let end = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
            let tok = &s[..end];
            if let Some(eq) = memchr::memchr(b'=', tok) {
                f.kv[f.n] = (&tok[..eq], &tok[eq + 1..]);
                f.n += 1;
            }
            s = &s[end..];
        }
        f
    }

    fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.kv[..self.n]
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// Optional hex field; `Err` when present but malformed.
    fn hex(&self, key: &[u8]) -> Result<Option<u64>, BadReason> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse_hex0x(v).map(Some).ok_or(BadReason::BadField),
        }
    }

    fn req_hex(&self, key: &[u8]) -> Result<u64, BadReason> {
        self.hex(key)?.ok_or(BadReason::BadField)
    }

    fn sk(&self) -> Result<Option<SockKey>, BadReason> {
        match self.get(b"sk") {
            None => Ok(None),
            Some(v) => parse_sk(v).map(Some).ok_or(BadReason::BadField),
        }
    }

    fn req_sk(&self) -> Result<SockKey, BadReason> {
        self.sk()?.ok_or(BadReason::BadField)
    }

    fn list(&self, key: &[u8]) -> AddrList<'a> {
        AddrList {
            text: self.get(key).unwrap_or(&[]),
        }
    }

    fn state(&self, key: &[u8]) -> Option<RingState> {
        self.get(key).and_then(RingState::parse)
    }
}

/// Parse `netns:ifindex:queue` (hex).
pub fn parse_sk(v: &[u8]) -> Option<SockKey> {
    let mut it = v.split(|&b| b == b':');
    let k = SockKey {
        netns: parse_hex(it.next()?)?,
        ifindex: parse_hex(it.next()?)?,
        queue: parse_hex(it.next()?)?,
    };
    if it.next().is_some() {
        return None;
    }
    Some(k)
}

/// After `xskdbg:`: `1 op k=v ...`.
fn project_line(rest: &[u8]) -> Result<Op<'_>, BadReason> {
    let sp = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    if parse_dec(&rest[..sp]) != Some(u64::from(FORMAT_VERSION)) {
        // A newer (or garbled) version: context only, never judged.
        return Ok(Op::Unknown);
    }
    let (op, fields) = match next_token(&rest[sp..]) {
        Some(x) => x,
        None => return Err(BadReason::BadField),
    };
    let f = Fields::parse(fields);
    Ok(match op {
        b"umem" => Op::App(AppOp::Umem {
            umem: f.hex(b"umem")?.unwrap_or(0),
            size: f.hex(b"size")?,
            chunk: f.hex(b"chunk")?,
            unaligned: f.get(b"mode") == Some(b"unaligned"),
            headroom: f.hex(b"headroom")?,
            poison: f.hex(b"poison")?,
        }),
        b"pool" => Op::App(AppOp::Pool {
            pool: f.req_hex(b"pool")?,
            umem: f.hex(b"umem")?,
            sk: f.sk()?,
        }),
        b"sock" => Op::App(AppOp::Sock {
            sk: f.req_sk()?,
            pool: f.hex(b"pool")?,
            umem: f.hex(b"umem")?,
            label: f.get(b"label").filter(|l| !l.is_empty()),
        }),
        b"fill" => Op::App(AppOp::Fill {
            pool: f.hex(b"pool")?,
            sk: f.sk()?,
            addrs: req_list(&f, b"a")?,
        }),
        b"rx" => Op::App(AppOp::Rx {
            sk: f.req_sk()?,
            pool: f.hex(b"pool")?,
            idx: f.hex(b"idx")?,
            descs: req_list(&f, b"d")?,
        }),
        b"tx" => Op::App(AppOp::Tx {
            sk: f.req_sk()?,
            idx: f.hex(b"idx")?,
            descs: req_list(&f, b"d")?,
        }),
        b"comp" => Op::App(AppOp::Comp {
            pool: f.hex(b"pool")?,
            sk: f.sk()?,
            addrs: req_list(&f, b"a")?,
        }),
        b"hold" => Op::App(AppOp::Hold {
            addrs: req_list(&f, b"a")?,
        }),
        b"free" => Op::App(AppOp::Free {
            addrs: req_list(&f, b"a")?,
        }),
        b"stats" => Op::App(AppOp::Stats {
            sk: f.sk()?,
            rx_dropped: f.hex(b"rx_dropped")?,
            rx_full: f.hex(b"rx_full")?,
        }),
        b"violation" => Op::App(AppOp::Violation {
            kind: f.get(b"kind").ok_or(BadReason::BadField)?,
            sk: f.sk()?,
            pool: f.hex(b"pool")?,
            addr: f.req_hex(b"a")?,
            from: f.state(b"from"),
            to: f.state(b"to"),
            expected: f.hex(b"expected")?,
            remaining: f.list(b"remaining"),
        }),
        b"probe" => Op::Kernel(KernelOp::Probe {
            backend: f.get(b"backend").unwrap_or(b""),
            kernel: f.get(b"kernel").unwrap_or(b""),
            flush: match f.get(b"flush") {
                Some(b"exact") => FlushMode::Exact,
                Some(b"inferred") => FlushMode::Inferred,
                _ => FlushMode::None,
            },
        }),
        b"krx" => Op::Kernel(KernelOp::Rx {
            xs: f.req_hex(b"xs")?,
            sk: f.sk()?,
            addr: f.req_hex(b"a")?,
            len: f.hex(b"len")?,
            slot: f.hex(b"slot")?,
            kpool: f.hex(b"kpool")?,
            // Added after the speed work, with the library's `prod`/`mode`.
            prod: f.hex(b"prod")?,
            mode: f.get(b"mode").and_then(RxMode::parse),
        }),
        b"krxdone" => Op::Kernel(KernelOp::RxDone {
            xs: f.req_hex(b"xs")?,
            slot: f.req_hex(b"slot")?,
        }),
        b"kflush" => Op::Kernel(KernelOp::Flush {
            xs: f.req_hex(b"xs")?,
            sk: f.sk()?,
            prod: f.hex(b"prod")?,
            exact: false,
        }),
        b"ktx" => Op::Kernel(KernelOp::Tx {
            xs: f.hex(b"xs")?,
            sk: f.sk()?,
            addr: f.req_hex(b"a")?,
        }),
        b"kcomp" => Op::Kernel(KernelOp::Comp {
            xs: f.hex(b"xs")?,
            sk: f.sk()?,
            kpool: f.hex(b"kpool")?,
            n: f.hex(b"n")?,
            addrs: f.list(b"a"),
        }),
        b"kpoll" => Op::Kernel(KernelOp::Poll {
            work: f.hex(b"work")?,
            budget: f.hex(b"budget")?,
        }),
        other => Op::App(AppOp::Other { op: other }),
    })
}

fn req_list<'a>(f: &Fields<'a>, key: &[u8]) -> Result<AddrList<'a>, BadReason> {
    let text = f.get(key).ok_or(BadReason::BadField)?;
    // A cheap shape check only: the values are decoded once, later, by
    // whoever iterates the list, and items that do not parse are skipped.
    let shaped = text.first().is_some_and(u8::is_ascii_hexdigit)
        && text.last().is_some_and(u8::is_ascii_hexdigit);
    if !shaped {
        return Err(BadReason::BadField);
    }
    Ok(AddrList { text })
}

// ---------------------------------------------------------------------------
// seed vocabulary

/// `LABEL 0xADDR FROM -> TO[: expected 0x.. remaining: [..]]`, `0xADDR note`,
/// `descriptor DEC transitioned from X to Y`.
fn seed_line(msg: &[u8]) -> Option<SeedOp<'_>> {
    if let Some(p) = memmem::find(msg, b" -> ") {
        let left = trim(&msg[..p]);
        let right = trim_start(&msg[p + 4..]);
        let from_start = left.iter().rposition(|&b| is_ws(b)).map_or(0, |i| i + 1);
        let from = RingState::parse(&left[from_start..])?;
        let left2 = trim(&left[..from_start]);
        let addr_start = left2.iter().rposition(|&b| is_ws(b)).map_or(0, |i| i + 1);
        let addr = parse_hex0x(&left2[addr_start..])?;
        let label = trim(&left2[..addr_start]);
        let to_end = right
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(right.len());
        let to = RingState::parse(&right[..to_end])?;
        let tail = &right[to_end..];
        let expected = memmem::find(tail, b"expected").and_then(|q| {
            let r = trim_start(&tail[q + 8..]);
            let end = r
                .iter()
                .position(|b| !b.is_ascii_hexdigit() && *b != b'x')
                .unwrap_or(r.len());
            // `expected 0x1000900remaining:` has no space: stop at the first non-hex.
            let tok = &r[..end];
            let tok = strip_0x(tok);
            let hex_end = tok
                .iter()
                .position(|b| !b.is_ascii_hexdigit())
                .unwrap_or(tok.len());
            parse_hex(&tok[..hex_end])
        });
        let remaining = memmem::find(tail, b"remaining").map(|q| {
            let r = &tail[q..];
            let r = match memchr::memchr(b'[', r) {
                Some(o) => &r[o + 1..],
                None => &r[r.len()..],
            };
            let end = memchr::memchr(b']', r).unwrap_or(r.len());
            AddrList { text: &r[..end] }
        });
        return Some(SeedOp::Transition {
            label: if label.is_empty() { None } else { Some(label) },
            addr,
            from,
            to,
            expected,
            remaining,
        });
    }
    if let Some(rest) = msg.strip_prefix(b"descriptor ") {
        // flowtrackd's panic text: `descriptor 26476800 transitioned from Fill to Tx`
        let (num, r) = next_token(rest)?;
        let addr = parse_dec(num)?;
        let r = trim_start(r).strip_prefix(b"transitioned from ")?;
        let (from, r) = next_token(r)?;
        let r = trim_start(r).strip_prefix(b"to ")?;
        let (to, _) = next_token(r)?;
        let to = to.strip_suffix(b"'").unwrap_or(to);
        return Some(SeedOp::Transition {
            label: None,
            addr,
            from: RingState::parse(from)?,
            to: RingState::parse(to)?,
            expected: None,
            remaining: None,
        });
    }
    let (tok, _) = next_token(msg)?;
    if tok.starts_with(b"0x") {
        return Some(SeedOp::Note {
            addr: parse_hex0x(tok)?,
        });
    }
    None
}
