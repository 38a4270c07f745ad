//! The parser's fast paths must decode every line exactly as its general
//! path does ([`parse::parse_line`] against [`parse::parse_line_general`],
//! which runs the same code with every fast path off): same [`Line`]
//! (compared through its full `Debug` form), same descriptors out of every
//! list (the one-pass item decoder against [`list_item`], the general rule),
//! same timestamps. The fast paths (the entry's columns, the timestamp, the
//! operation word, the probes' per-packet lines and the recorder's batch
//! lines, plain list items, perf-probe events' fields, the seed story's
//! transitions) answer only when a line is in their exact shape
//! and fall back to the general code otherwise; these tests make sure they
//! cannot silently disagree with it. Inputs: canonical lines of every kind
//! and random mutations of them (field order, extra blanks, tabs, no-break
//! spaces, CRLF, unknown and duplicate keys, bad hex, `0x`, cuts), the
//! shipped fixtures, and arbitrary bytes.
//!
//! The general path itself is pinned by the unit tests of `parse` and of
//! `xskdbg-format` (numbers and socket keys against `std`, the field rules)
//! and by the fixtures' expected findings.

use proptest::prelude::*;
use xskdbg_analyzer::parse::{self, AddrList, AppOp, KernelOp, Line, Op, SeedOp};
use xskdbg_format::list_item;

/// Every list a decoded line carries.
fn lists<'a>(line: &Line<'a>) -> Vec<AddrList<'a>> {
    let Line::Event(e) = line else {
        return Vec::new();
    };
    match &e.op {
        Op::App(
            AppOp::Fill { addrs, .. }
            | AppOp::Comp { addrs, .. }
            | AppOp::Hold { addrs, .. }
            | AppOp::Free { addrs, .. },
        ) => vec![*addrs],
        Op::App(AppOp::Rx { descs, .. } | AppOp::Tx { descs, .. }) => vec![*descs],
        Op::App(AppOp::Violation { remaining, .. }) => vec![*remaining],
        Op::Kernel(KernelOp::Comp { addrs, .. }) => vec![*addrs],
        Op::Seed(SeedOp::Transition {
            remaining: Some(r), ..
        }) => vec![*r],
        _ => Vec::new(),
    }
}

/// Assert that the fast and the general path decode `raw` the same way.
fn agree(raw: &[u8]) {
    let fast = parse::parse_line(7, raw);
    let general = parse::parse_line_general(7, raw);
    let shown = String::from_utf8_lossy(raw);
    assert_eq!(
        format!("{fast:?}"),
        format!("{general:?}"),
        "line {shown:?}"
    );
    for list in lists(&fast) {
        assert_list(list.text);
    }
}

/// Assert that a list decodes by the general rule: items split at commas,
/// each read by [`list_item`].
fn assert_list(text: &[u8]) {
    let list = AddrList { text };
    let fast: Vec<_> = list.iter().collect();
    let general: Vec<_> = text.split(|&b| b == b',').filter_map(list_item).collect();
    assert_eq!(fast, general, "list {:?}", String::from_utf8_lossy(text));
    assert_eq!(list.count(), general.len());
}

/// Lower-case hex of `v`, as the probes and the recorder write it.
fn hex(v: u64) -> String {
    format!("{v:x}")
}

/// A hex-ish value: mostly well-formed, sometimes not.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => any_width().prop_map(hex),
        3 => (0u64..0x1_0000).prop_map(hex),
        1 => any::<u64>().prop_map(|v| format!("{v:X}")),
        1 => any::<u64>().prop_map(|v| format!("0x{v:x}")),
        1 => Just("0x".to_string()),
        1 => Just(String::new()),
        1 => Just("1ffffffffffffffff".to_string()),
        1 => Just("zz".to_string()),
        1 => Just("12g".to_string()),
        1 => Just("1:5:1".to_string()),
        1 => Just("1::1".to_string()),
        1 => Just("1:5:1:0".to_string()),
        1 => Just("unaligned".to_string()),
        1 => Just("exact".to_string()),
        1 => Just("fill".to_string()),
    ]
}

/// A list value: project lists, seed-style lists and broken ones.
fn list_value() -> impl Strategy<Value = String> {
    let item = prop_oneof![
        4 => any::<u64>().prop_map(hex),
        3 => (any::<u64>(), 0u64..0x10000).prop_map(|(a, l)| format!("{a:x}:{l:x}")),
        1 => (any::<u64>(), 0u64..0x10000, 0u64..4).prop_map(|(a, l, o)| format!("{a:x}:{l:x}:{o:x}")),
        1 => Just("1:2:3:4".to_string()),
        1 => Just("1::2".to_string()),
        1 => Just("1:".to_string()),
        1 => Just(":1".to_string()),
        1 => Just(String::new()),
        1 => Just(" 1dba100".to_string()),
        1 => Just("0x16ce900".to_string()),
        1 => Just("\u{2026}".to_string()),
        1 => Just("...".to_string()),
        1 => Just("11111111111111111".to_string()),
        1 => Just("AbC:De".to_string()),
        1 => Just("zz".to_string()),
        1 => Just("1\u{a0}".to_string()),
    ];
    prop::collection::vec(item, 0..8).prop_map(|v| v.join(","))
}

const KEYS: &[&str] = &[
    "xs",
    "sk",
    "a",
    "len",
    "slot",
    "kpool",
    "prod",
    "n",
    "d",
    "pool",
    "idx",
    "umem",
    "size",
    "chunk",
    "mode",
    "headroom",
    "poison",
    "rx_dropped",
    "rx_full",
    "kind",
    "from",
    "to",
    "expected",
    "remaining",
    "backend",
    "kernel",
    "flush",
    "work",
    "budget",
    "napi",
    "dev",
    "fd",
    "at",
    "fcons",
    "x",
];

const OPS: &[&str] = &[
    "krx",
    "krxdone",
    "ktx",
    "kflush",
    "kcomp",
    "kpoll",
    "umem",
    "pool",
    "sock",
    "fill",
    "rx",
    "tx",
    "comp",
    "hold",
    "free",
    "stats",
    "violation",
    "probe",
    "stack",
    "KRX",
];

/// One `key=value` field (or a stray token).
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (prop::sample::select(KEYS), value()).prop_map(|(k, v)| format!("{k}={v}")),
        2 => (prop::sample::select(&["a", "d", "remaining"][..]), list_value())
            .prop_map(|(k, v)| format!("{k}={v}")),
        1 => Just("noequals".to_string()),
        1 => Just("=1".to_string()),
        1 => Just("a==1".to_string()),
        1 => Just("label=ingress q:1 ".to_string()),
        1 => Just("label=".to_string()),
    ]
}

/// A field separator: mostly one space.
fn sep() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        12 => Just(" "),
        1 => Just("  "),
        1 => Just("\t"),
        1 => Just("\u{a0}"),
        1 => Just(" \u{a0}"),
        1 => Just(" \t"),
    ]
}

/// Any project body: an op and fields in any order, separated variously.
fn project_body() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            8 => Just("1"),
            1 => Just("01"),
            1 => Just("2"),
            1 => Just("1x"),
        ],
        sep(),
        prop::sample::select(OPS),
        prop::collection::vec((sep(), field()), 0..20),
        prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\u{a0}"), 1 => Just("\t")],
    )
        .prop_map(|(ver, s, op, fields, tail)| {
            let mut b = format!("xskdbg:{ver}{s}{op}");
            for (s, f) in fields {
                b.push_str(s);
                b.push_str(&f);
            }
            b.push_str(tail);
            b
        })
}

/// A number of any width from 1 to 16 hex digits.
fn any_width() -> impl Strategy<Value = u64> {
    (any::<u64>(), 0u32..64).prop_map(|(v, shift)| v >> shift)
}

/// The probes' and the recorder's lines exactly as they write them.
fn canonical_body() -> impl Strategy<Value = String> {
    let sk = (0u64..4, 0u64..0x100, 0u64..0x40).prop_map(|(a, b, c)| format!("{a:x}:{b:x}:{c:x}"));
    (
        0usize..27,
        any_width(),
        sk,
        any_width(),
        0u64..0x10000,
        any_width(),
        prop::option::of(any_width()),
        list_value(),
    )
        .prop_map(|(which, xs, sk, a, len, slot, kpool, list)| {
            let xs = hex(xs);
            let a = hex(a);
            let (len, slot) = (hex(len), hex(slot));
            let kpool = kpool.map(|k| format!(" kpool={k:x}")).unwrap_or_default();
            match which {
                0 => format!("xskdbg:1 krx xs={xs} sk={sk} a={a} len={len} slot={slot}{kpool}"),
                1 => format!("xskdbg:1 krxdone xs={xs} slot={slot}"),
                2 => format!("xskdbg:1 ktx xs={xs} sk={sk} a={a} len={len}"),
                3 => format!("xskdbg:1 ktx xs={xs} sk={sk} a={a}"),
                4 => format!("xskdbg:1 kflush xs={xs} sk={sk} prod={slot}"),
                5 => format!("xskdbg:1 rx sk={sk} pool=1 idx={slot} n=2 d={list}"),
                6 => format!("xskdbg:1 fill pool=1 sk={sk} n=10 a={list}"),
                // What the probes really print (probes/src/bpf/).
                8 => format!(
                    "xskdbg:1 krx xs={xs} sk={sk} a={a} len={len} slot={slot}{kpool} prod={len} fcons={slot}"
                ),
                9 => format!(
                    "xskdbg:1 krx xs={xs} sk={sk} a={a} len={len} opt=0 slot={slot}{kpool} prod=1 fcons=2 mode=drv"
                ),
                10 => format!("xskdbg:1 krx xs={xs} sk={sk} a={a} len={len} slot={slot} prod=1{kpool}"),
                11 => format!("xskdbg:1 kflush xs={xs} sk={sk} prod={slot} cprod={len} at=flush"),
                12 => format!("xskdbg:1 ktx kpool={xs} a={a} len={len} at=peek"),
                13 => format!("xskdbg:1 tx sk={sk} idx={slot} n=2 d={list}"),
                19 => format!("xskdbg:1 tx sk={sk} pool={len} idx={slot} n=2 d={list}"),
                20 => format!("xskdbg:1 fill pool={len} n=2 a={list}"),
                21 => format!("xskdbg:1 comp pool={len} n=2 a={list} sk={sk}"),
                22 => format!("xskdbg:1 ktx kpool={xs} a={a} at=raw"),
                23 => format!("xskdbg:1 ktx kpool={xs} a={a} len={len} at=peek sk={sk}"),
                24 => format!(
                    "xskdbg:1 krx xs={xs} sk={sk} a={a} len={len} opt=1 slot={slot}{kpool} prod=1 fcons=2 mode=zc"
                ),
                14 => format!("xskdbg:1 comp pool={len} sk={sk} n=2 a={list}"),
                15 => format!("xskdbg:1 free n={len} a={list}"),
                16 => format!("xskdbg:1 hold n={len} a={list}"),
                25 => format!("xskdbg:1 free umem={len} n=2 a={list}"),
                26 => format!("xskdbg:1 hold umem={slot} n=2 a={list} umem=1"),
                17 => format!("xskdbg:1 kpoll napi={xs} dev=veth-in work={len} budget=40"),
                18 => format!(
                    "xskdbg:1 stats sk={sk} rx_dropped={a} rx_invalid=0 tx_invalid=0 rx_full={len} fill_empty=0 tx_empty=0"
                ),
                _ => format!("xskdbg:1 kcomp xs={xs} sk={sk}{kpool} n=2 a={list}"),
            }
        })
}

/// Bodies of the other vocabularies: seed lines and perf-probe events.
fn other_body() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ingress q:1 0x16ce900 FILL -> RX".to_string()),
        Just(
            "ingress q:1 0xdeadbeefdeadbeef FILL -> RX: expected 0x1000900remaining: [fe4100, f9c100, \u{2026},]"
                .to_string()
        ),
        Just("0x16ce900 egress_tx_queue forward".to_string()),
        Just("descriptor 26476800 transitioned from Fill to Tx".to_string()),
        Just("(__xsk_rcv_zc+0x9b/0x250) addr=0x13d3900 len=0x4e xs=0xffffa0c6e26ab400 fq=0xffff".to_string()),
        Just("(xp_raw_get_data+0x0/0x50) addr=0x16ce900".to_string()),
        Just("(__xsk_map_flush+0x4e/0x180) xs=0xffffa0c6e26ab400".to_string()),
        Just("napi poll on napi struct 000000001 for device eth0 work 1 budget 64".to_string()),
        Just("tracing_mark_write: xskdbg:1 krx xs=1 sk=1:5:1 a=1100 len=40 slot=0".to_string()),
        Just("0xffffffff81000000: xskdbg:1 krxdone xs=1 slot=0".to_string()),
        Just("hello".to_string()),
        Just(String::new()),
    ]
}

/// Leading blanks of a line.
fn lead() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => (0usize..14).prop_map(|n| " ".repeat(n)),
        1 => Just("\t".to_string()),
        1 => Just("\u{a0}\u{a0} ".to_string()),
        1 => Just("\r ".to_string()),
    ]
}

/// A task's command: common ones, and ones that look like the other
/// columns (brackets, dashes and digits, `CPU`, `#`, non-ASCII, blanks, 16
/// and 17 bytes, none).
fn comm() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        10 => Just("<idle>"),
        10 => Just("xskfwd-tugn"),
        10 => Just("iperf3"),
        3 => Just("ksoftirqd/1"),
        1 => Just("kworker/u8:2"),
        1 => Just("Web Content"),
        1 => Just("task[3]x"),
        1 => Just("a[b"),
        1 => Just("[kthread]"),
        1 => Just("abc-12"),
        1 => Just("a-"),
        1 => Just("CPU 0/KVM"),
        1 => Just("CPUx"),
        1 => Just("#hash"),
        1 => Just("t\u{e9}l\u{e9}"),
        1 => Just("\u{e9}t\u{e9}"),
        1 => Just("0123456789abcdef"),
        1 => Just("0123456789abcdefg"),
        1 => Just(" x"),
        1 => Just(""),
    ]
}

/// The `TASK-PID` column.
fn task() -> impl Strategy<Value = String> {
    let name = comm();
    let pid = prop_oneof![
        20 => (0u32..4_000_000).prop_map(|p| format!("-{p}")),
        1 => Just("-99999999999".to_string()),
        1 => Just("-".to_string()),
        1 => Just(String::new()),
        1 => Just("-12a".to_string()),
        1 => Just("777".to_string()),
        1 => Just("-00000000000000000012".to_string()),
        1 => Just("-0000000000000000012".to_string()),
        1 => Just("-4294967296".to_string()),
        1 => Just("-4294967295".to_string()),
    ];
    (name, pid).prop_map(|(n, p)| format!("{n}{p}"))
}

/// Blanks before `[`.
fn gap() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        30 => Just("  "),
        15 => Just("       "),
        1 => Just(""),
        1 => Just("\t"),
        1 => Just("\u{a0}"),
        1 => Just(" \r "),
    ]
}

/// The `[CPU]` column.
fn cpu() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => (0u32..1000).prop_map(|c| format!("[{c:03}]")),
        1 => (0u32..64).prop_map(|c| format!("[{c}]")),
        1 => Just("[99999999999]".to_string()),
        1 => Just("[123456789]".to_string()),
        1 => Just("[]".to_string()),
        1 => Just("[a]".to_string()),
        1 => Just("[1".to_string()),
    ]
}

/// Zero or more flag tokens, each followed by its separator.
fn flags() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => Just(" d.s1.".to_string()),
        10 => Just(" .....".to_string()),
        1 => Just(String::new()),
        1 => Just(" d.Z1. X".to_string()),
        1 => Just(" a b c d".to_string()),
        1 => Just(" \u{2026}..".to_string()),
        1 => Just("\td.s1.".to_string()),
        1 => Just(" d.s1.\r".to_string()),
        1 => Just(" 5:".to_string()),
    ]
}

/// The `TIMESTAMP:` column with its leading separator.
fn timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => (0u64..10_000_000, 0u64..1_000_000).prop_map(|(s, us)| format!(" {s}.{us:06}:")),
        1 => any::<u32>().prop_map(|v| format!(" {v}:")),
        1 => Just(" 1.1234567891:".to_string()),
        1 => Just(" 99999999999999999999.1:".to_string()),
        1 => Just(" 18446744073.709551616:".to_string()),
        1 => Just(" 5.:".to_string()),
        1 => Just(" .5:".to_string()),
        1 => Just(" 1e5:".to_string()),
        1 => Just(" 542812.657026".to_string()),
        1 => Just("\u{a0}542812.657026:".to_string()),
        1 => Just("  542812.657026:".to_string()),
    ]
}

/// The event name column with what follows it.
fn name() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        30 => Just(" bpf_trace_printk: "),
        20 => Just(" tracing_mark_write: "),
        1 => Just(" print: "),
        1 => Just(" bputs:"),
        1 => Just(" __xsk_rcv_zc_L7: "),
        1 => Just(" xp_raw_get_data: "),
        1 => Just(" xsk_flush: "),
        1 => Just(" napi_poll: "),
        1 => Just(" na me: "),
        1 => Just(" : "),
        1 => Just(" noname"),
        1 => Just("\tbpf_trace_printk: "),
        1 => Just(" na\u{a0}me: "),
        1 => Just(" a:b: "),
    ]
}

/// A whole entry line, before mutation: most of them in the exact layouts
/// the fast paths take, the others with any mix of columns.
fn entry() -> impl Strategy<Value = Vec<u8>> {
    // Boxed: unboxed, the five alternatives' value trees overflowed a test
    // thread's stack in a debug build.
    prop_oneof![
        canonical_entry().boxed(),
        ftrace_entry().boxed(),
        any_entry().boxed(),
        kprobe_entry().boxed(),
        seed_entry().boxed()
    ]
}

/// A value of a perf-probe field: mostly as `:x64` prints it, sometimes not.
fn kprobe_value() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => any_width().prop_map(|v| format!("0x{v:x}")),
        1 => any_width().prop_map(hex),
        1 => any::<u64>().prop_map(|v| format!("0X{v:X}")),
        1 => (0u32..200).prop_map(|v| format!("-{v}")),
        1 => (0u32..200).prop_map(|v| v.to_string()),
        1 => Just("0x".to_string()),
        1 => Just(String::new()),
        1 => Just("0x1ffffffffffffffff".to_string()),
        1 => Just("0x12g".to_string()),
        1 => Just("0x0x12".to_string()),
        1 => Just("=1".to_string()),
    ]
}

/// A perf-probe event's body: what the seed's `perf probe` and the `tracefs`
/// backend print (`(func+off/size) key=0x.. ...`), and the same fields in
/// any order, duplicated, with other keys, blanks and values.
fn kprobe_body() -> impl Strategy<Value = String> {
    let x = || any_width().prop_map(|v| format!("0x{v:x}"));
    let printed = (0usize..8, x(), x(), x(), x(), x(), x()).prop_map(|(which, a, l, xs, fq, s, p)| {
        match which {
            0 => format!("(__xsk_rcv_zc+0x9b/0x250) addr={a} len={l} xs={xs} fq={fq}"),
            1 => format!("(__xsk_rcv_zc+0x9b/0x250) addr={a} len={l} xs={xs} fq={fq} slot={s}"),
            2 => format!(
                "(__xsk_rcv_zc+0x0/0x250) data={a} hard={l} umem={p} hr={s} unal=0x1 len={l} xs={xs} fq={fq} slot={s}"
            ),
            3 => format!("(__xsk_rcv_zc+0x0/0x250) data={a} hard={l} umem={p} hr=0x100 unal=0x0 len={l} xs={xs} fq={fq}"),
            4 => format!("(xp_raw_get_data+0x0/0x60) addr={a}"),
            5 => format!("(xp_raw_get_data+0x0/0x60) addr={a} pool={p}"),
            6 => format!("(__xsk_map_flush+0x4e/0x180) xs={xs}"),
            _ => format!("(sock_def_readable+0x0/0x100) xs={xs} prod={s} family=44"),
        }
    });
    let key = prop::sample::select(
        &[
            "addr", "len", "xs", "fq", "slot", "pool", "data", "hard", "umem", "hr", "unal", "ret",
            "arg1", "prod", "family", "addrx", "x", "ADDR",
        ][..],
    );
    let field = prop_oneof![
        10 => (key, kprobe_value()).prop_map(|(k, v)| format!("{k}={v}")),
        1 => Just("(x addr=0x5)".to_string()),
        1 => Just("noequals".to_string()),
        1 => Just("=0x1".to_string()),
    ];
    let head = prop_oneof![
        6 => Just("(__xsk_rcv_zc+0x9b/0x250)"),
        1 => Just("(__xsk_rcv+0x9c/0x110 <- __xsk_rcv_zc)"),
        1 => Just("(a\taddr=0x7)"),
        1 => Just("xs=0x9"),
        1 => Just(""),
    ];
    let any = (head, prop::collection::vec((sep(), field), 0..10)).prop_map(|(h, fields)| {
        let mut b = h.to_string();
        for (s, f) in fields {
            b.push_str(s);
            b.push_str(&f);
        }
        b
    });
    prop_oneof![printed, any]
}

/// An entry of a perf-probe event.
fn kprobe_entry() -> impl Strategy<Value = Vec<u8>> {
    let name = prop::sample::select(
        &[
            "__xsk_rcv_zc_L7",
            "__xsk_rcv_zc",
            "__xsk_rcv_zc_ret",
            "__xsk_rcv_zc__return",
            "xp_raw_get_data",
            "xsk_flush",
            "__xsk_map_flush",
        ][..],
    );
    (
        prop::sample::select(&["iperf3-1217", "<idle>-0", "ksoftirqd/1-23"][..]),
        0u32..4,
        (0u64..10_000_000, 0u64..1_000_000),
        name,
        kprobe_body(),
    )
        .prop_map(|(task, cpu, (s, us), name, body)| {
            format!("{task:>16}  [{cpu:03}] ..s2. {s}.{us:06}: {name}: {body}").into_bytes()
        })
}

/// A marker line of the seed story: transitions (`LABEL 0xADDR FROM -> TO`,
/// with the FIFO a panic printed), notes, the panic text, and lines that
/// only look like them.
fn seed_body() -> impl Strategy<Value = String> {
    let label = prop::sample::select(
        &[
            "ingress q:1",
            "egress q:0",
            "",
            "a  b",
            "x\ty",
            "\u{a0}lbl",
            "q:1 0x5",
            "lbl ->",
            "\r",
        ][..],
    );
    let addr = prop_oneof![
        8 => any_width().prop_map(|v| format!("0x{v:x}")),
        1 => any_width().prop_map(|v| format!("0X{v:X}")),
        1 => any_width().prop_map(hex),
        1 => Just("0x".to_string()),
        1 => Just("0x1ffffffffffffffff".to_string()),
        1 => Just("10x5".to_string()),
        1 => Just("0xfg".to_string()),
    ];
    let state = || {
        prop::sample::select(
            &[
                "FILL",
                "RX",
                "TX",
                "COMP",
                "Fill",
                "rx",
                "completion",
                "cq",
                "hold",
                "FREE",
                "bogus",
                "RX2",
                "",
                "F\u{e9}",
            ][..],
        )
    };
    let gap = || prop_oneof![8 => Just(" "), 1 => Just("  "), 1 => Just("\t"), 1 => Just("\u{a0}")];
    let arrow = prop_oneof![8 => Just(" -> "), 1 => Just(" ->  "), 1 => Just("  -> "), 1 => Just("->"), 1 => Just(" -> -> ")];
    let tail = prop_oneof![
        8 => Just(String::new()),
        1 => Just(": expected 0x1000900 remaining: [fe4100, f9c100]".to_string()),
        1 => Just(": expected 0x1000900remaining: [fe4100, \u{2026},]".to_string()),
        1 => Just(" ".to_string()),
        1 => Just("\r".to_string()),
        1 => Just(":".to_string()),
        1 => Just("x".to_string()),
        1 => Just("\u{a0}".to_string()),
    ];
    let transition = (label, gap(), addr, gap(), state(), arrow, state(), tail).prop_map(
        |(l, g1, a, g2, from, arrow, to, tail)| format!("{l}{g1}{a}{g2}{from}{arrow}{to}{tail}"),
    );
    prop_oneof![
        8 => transition,
        1 => any_width().prop_map(|v| format!("0x{v:x} egress_tx_queue forward")),
        1 => Just("descriptor 26476800 transitioned from Fill to Tx".to_string()),
    ]
}

/// A `tracing_mark_write` entry with a seed story's marker body.
fn seed_entry() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(&["xskfwd-tugn-209120", "flowtrackd-9chS-142014"][..]),
        0u32..4,
        (0u64..10_000_000, 0u64..1_000_000),
        seed_body(),
    )
        .prop_map(|(task, cpu, (s, us), body)| {
            format!("{task:>16}  [{cpu:03}] ..... {s}.{us:06}: tracing_mark_write: {body}")
                .into_bytes()
        })
}

/// An entry in ftrace's own column layout (`%16s-%-7d [%03d] `, what
/// `entry_fixed` reads in place), with commands that look like the other
/// columns and PIDs and CPUs of every width.
fn ftrace_entry() -> impl Strategy<Value = Vec<u8>> {
    let comm = comm();
    let pid = prop_oneof![
        20 => (0u32..4_000_000).prop_map(|p| format!("{p:<7}")),
        1 => (0u32..u32::MAX).prop_map(|p| format!("{p:<7}")),
        1 => Just("12 4   ".to_string()),
        1 => Just("       ".to_string()),
        1 => Just("0000001".to_string()),
        1 => Just("12a    ".to_string()),
    ];
    let cpu = prop_oneof![
        20 => (0u32..1000).prop_map(|c| format!("{c:03}")),
        1 => (1000u32..100_000).prop_map(|c| format!("{c}")),
        1 => Just("0a1".to_string()),
    ];
    (
        comm,
        pid,
        cpu,
        flags(),
        timestamp(),
        name(),
        prop_oneof![3 => canonical_body(), 1 => project_body(), 1 => other_body()],
    )
        .prop_map(|(c, p, cpu, f, ts, n, b)| {
            format!("{c:>16}-{p} [{cpu}]{f}{ts}{n}{b}").into_bytes()
        })
}

/// An entry as ftrace prints it, with a probe's or the recorder's body.
fn canonical_entry() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(&["<idle>-0", "xskfwd-tugn-209120", "iperf3-1217", "a-1"][..]),
        (0u32..1000),
        prop::sample::select(&["d.s1.", "....."][..]),
        (0u64..10_000_000, 0u64..1_000_000),
        prop::sample::select(&["bpf_trace_printk", "tracing_mark_write"][..]),
        canonical_body(),
    )
        .prop_map(|(task, cpu, flags, (s, us), name, body)| {
            format!("{task:>16}  [{cpu:03}] {flags} {s}.{us:06}: {name}: {body}").into_bytes()
        })
}

/// An entry of any shape, from columns chosen independently.
fn any_entry() -> impl Strategy<Value = Vec<u8>> {
    let body = prop_oneof![
        4 => canonical_body(),
        3 => project_body(),
        1 => other_body(),
    ];
    (
        lead(),
        task(),
        gap(),
        cpu(),
        flags(),
        timestamp(),
        name(),
        body,
        prop_oneof![
            8 => Just(""),
            1 => Just("\r"),
            1 => Just("\r\r"),
            1 => Just(" "),
        ],
    )
        .prop_map(|(l, t, g, c, f, ts, n, b, end)| {
            format!("{l}{t}{g}{c}{f}{ts}{n}{b}{end}").into_bytes()
        })
}

/// Bytes worth inserting to push a line off its canonical shape.
const PIECES: &[&[u8]] = &[
    b" ",
    b"  ",
    b"\t",
    b"\xc2\xa0",
    b"\xc2",
    b"\xa0",
    b"\r",
    b"0x",
    b"=",
    b":",
    b",",
    b"[",
    b"]",
    b"-",
    b"1",
    b"f",
    b"F",
    b"g",
    b"#",
    b"label=x y",
    b"xs=1",
    b"a=2",
    b"\xe2\x80\xa6",
    b"\xff",
    b"\n",
];

/// A line and 0..4 mutations of it: insert a piece (anywhere, at the end of
/// a token, after a `=`), delete a range, swap two blank-separated tokens.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    mutate(entry(), 0u8..5, 0..4)
}

/// A canonical entry with one value grown or spoiled: the edges of the fast
/// paths.
fn value_mutated() -> impl Strategy<Value = Vec<u8>> {
    mutate(
        prop_oneof![
            canonical_entry(),
            ftrace_entry(),
            kprobe_entry(),
            seed_entry()
        ],
        3u8..5,
        1..2,
    )
}

/// `lines` with `count` mutations of the kinds in `kinds` (see [`mutated`]).
fn mutate(
    lines: impl Strategy<Value = Vec<u8>>,
    kinds: std::ops::Range<u8>,
    count: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<u8>> {
    let op = (
        kinds,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::sample::select(PIECES),
    );
    (lines, prop::collection::vec(op, count)).prop_map(|(mut line, ops)| {
        for (kind, i, j, piece) in ops {
            let len = line.len();
            match kind {
                0 => {
                    let at = i.index(len + 1);
                    line.splice(at..at, piece.iter().copied());
                }
                3 | 4 => {
                    // At the end of a token or right after a `=`: grows or
                    // spoils a value.
                    let at_byte = if kind == 3 { b' ' } else { b'=' };
                    let spots: Vec<usize> = (0..len)
                        .filter(|&k| line[k] == at_byte)
                        .map(|k| if kind == 3 { k } else { k + 1 })
                        .collect();
                    if !spots.is_empty() {
                        let at = spots[i.index(spots.len())];
                        line.splice(at..at, piece.iter().copied());
                    }
                }
                1 if len > 0 => {
                    let a = i.index(len);
                    let b = (a + 1 + j.index(4)).min(len);
                    line.drain(a..b);
                }
                _ => {
                    let toks: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
                    if toks.len() > 2 {
                        let a = i.index(toks.len());
                        let b = j.index(toks.len());
                        let mut toks: Vec<Vec<u8>> = toks.iter().map(|t| t.to_vec()).collect();
                        toks.swap(a, b);
                        line = toks.join(&b' ');
                    }
                }
            }
        }
        line
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn entries_decode_like_the_general_path(line in entry()) {
        agree(&line);
    }

    #[test]
    fn mutated_entries_decode_like_the_general_path(line in mutated()) {
        agree(&line);
    }

    #[test]
    fn canonical_entries_with_a_spoiled_value_decode_like_the_general_path(line in value_mutated()) {
        agree(&line);
    }

    #[test]
    fn kprobe_and_seed_entries_decode_like_the_general_path(
        line in prop_oneof![kprobe_entry(), seed_entry()]
    ) {
        agree(&line);
    }

    #[test]
    fn mutated_kprobe_and_seed_entries_decode_like_the_general_path(
        line in mutate(prop_oneof![kprobe_entry(), seed_entry()], 0u8..5, 1..4)
    ) {
        agree(&line);
    }

    #[test]
    fn lists_decode_by_the_general_rule(text in list_value()) {
        assert_list(text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_decode_like_the_general_path(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        agree(&bytes);
        assert_list(&bytes);
    }

    #[test]
    fn timestamps_agree(text in "[0-9]{0,21}[.]?[0-9x]{0,12}[.]?[0-9]{0,2}") {
        let b = text.as_bytes();
        prop_assert_eq!(parse::parse_timestamp(b), parse::parse_timestamp_general(b));
    }

    #[test]
    fn timestamps_of_any_bytes_agree(bytes in prop::collection::vec(
        prop_oneof![8 => prop::sample::select(&b"0123456789.:x "[..]), 1 => any::<u8>()],
        0..24,
    )) {
        let b = &bytes[..];
        prop_assert_eq!(parse::parse_timestamp(b), parse::parse_timestamp_general(b));
    }
}

/// Lines the probes (fentry and tracepoint backends) and the recorder wrote
/// in a real soak (`docs/nightly/veth-race-2026-11-22`).
#[test]
fn real_probe_and_recorder_lines_decode_like_the_general_path() {
    let lines = [
        "          xskdbg-131     [000] .Ns21    14.580486: bpf_trace_printk: xskdbg:1 krx xs=ff30a09d5f83dc00 sk=1001:1267:0 a=100 len=46 slot=0 kpool=ff30a09d5f8cbd00 prod=0 fcons=1",
        "          xskdbg-131     [000] .Ns3.    13.638760: bpf_trace_printk: xskdbg:1 krx xs=ff34f6ea1f82c000 sk=2:1267:0 a=100 len=46 slot=0 kpool=ff34f6ea1f8b0800 prod=0 fcons=1 mode=drv",
        "          xskdbg-131     [000] .Ns21    14.581250: bpf_trace_printk: xskdbg:1 krxdone xs=ff30a09d5f83dc00 slot=0",
        "          xskdbg-130     [002] ...11    14.665756: bpf_trace_printk: xskdbg:1 ktx kpool=ff30a09d5f8cbd00 a=3900 at=raw",
        "          xskdbg-131     [000] .Ns21    14.648934: bpf_trace_printk: xskdbg:1 kflush xs=ff30a09d5f83dc00 sk=1001:1267:0 prod=20 cprod=29 at=flush",
        "          xskdbg-131     [000] .Ns3.    13.653654: bpf_trace_printk: xskdbg:1 kflush xs=ff34f6ea1f82c000 sk=2:1267:0 prod=2 cprod=2 at=poll",
        "          xskdbg-130     [002] ..s21    14.668652: bpf_trace_printk: xskdbg:1 kcomp xs=ff30a09d5f83dc00 sk=1001:1267:0 kpool=ff30a09d5f8cbd00 n=1 a=3900",
        "          xskdbg-131     [000] .Ns3.    13.653353: bpf_trace_printk: xskdbg:1 kpoll napi=ff34f6e9c1893000 dev=1267 work=2 budget=40",
        "          xskdbg-107     [002] .....    14.471557: tracing_mark_write: xskdbg:1 probe backend=fentry kernel=6.1.192 flush=exact rxslot=1 tx=1 comp=1",
        "          xskdbg-130     [002] .....    14.656944: tracing_mark_write: xskdbg:1 rx sk=1001:1267:0 pool=1 idx=0 n=20 d=100:46,900:46,1100:80,1900:14d,2100:3e8",
        "          xskdbg-130     [002] .....    14.664895: tracing_mark_write: xskdbg:1 tx sk=1001:1267:0 pool=1 idx=0 n=2 d=3900:80,b900:14d",
        "          xskdbg-130     [002] .....    14.560211: tracing_mark_write: xskdbg:1 fill pool=1 n=40 a=0,800,1000,1800,2000,2800,3000,3800",
        "          xskdbg-130     [002] .....    14.687394: tracing_mark_write: xskdbg:1 comp pool=2 n=1c a=100,900,1100,1900,2100",
        "          xskdbg-107     [001] .....    12.275520: tracing_mark_write: xskdbg:1 stats sk=1001:1267:0 rx_dropped=0 rx_invalid=0 tx_invalid=0 rx_full=0 fill_empty=0 tx_empty=0",
        "          xskdbg-130     [002] .....    13.665879: tracing_mark_write: xskdbg:1 comp pool=2 n=2 a=100,900 sk=1:2:3",
    ];
    for line in lines {
        agree(line.as_bytes());
        assert!(
            matches!(parse::parse_line(1, line.as_bytes()), Line::Event(_)),
            "{line}"
        );
    }
}

/// The traces of `dir` (`.txt`, `.txt.gz`), decompressed, with their paths.
fn traces(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    use std::io::Read;
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let data = if name.ends_with(".txt") {
            std::fs::read(&path).expect("trace")
        } else if name.ends_with(".txt.gz") {
            let mut d = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("trace"))
                .read_to_end(&mut d)
                .expect("gzip");
            d
        } else {
            continue;
        };
        out.push((path, data));
    }
    out
}

/// Every line of every shipped trace: the fixtures, the real recordings
/// (`fixtures/traces/real`) and the nightly runs' traces (`docs/nightly`).
#[test]
fn fixtures_decode_like_the_general_path() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs = vec![
        root.join("fixtures/traces"),
        root.join("fixtures/traces/real"),
    ];
    for d in std::fs::read_dir(root.join("docs/nightly"))
        .into_iter()
        .flatten()
    {
        dirs.push(d.expect("dir entry").path());
    }
    let mut lines = 0;
    let mut files = 0;
    for dir in &dirs {
        for (_, data) in traces(dir) {
            files += 1;
            for line in data.split(|&b| b == b'\n') {
                agree(line);
                lines += 1;
            }
        }
    }
    assert!(
        files > 10 && lines > 10_000,
        "only {lines} lines in {files} traces under {}",
        root.display()
    );
}

/// Every line of a large trace named by `XSKDBG_AGREE_TRACE` (e.g. a
/// generated benchmark trace): `XSKDBG_AGREE_TRACE=/var/tmp/xskdbg-bench/w100.trace
/// cargo test --release -p xskdbg-analyzer --test parse_agree -- --ignored`.
#[test]
#[ignore = "needs a trace file named by XSKDBG_AGREE_TRACE"]
fn large_trace_decodes_like_the_general_path() {
    let path =
        std::env::var_os("XSKDBG_AGREE_TRACE").expect("set XSKDBG_AGREE_TRACE to a trace file");
    let data = std::fs::read(&path).expect("trace");
    let mut n = 0u64;
    for line in data.split(|&b| b == b'\n') {
        agree(line);
        n += 1;
    }
    eprintln!("{n} lines agree");
}
