//! Property and fuzz-style tests that run on stable in the normal suite:
//! the parser and the analyzer never panic, whatever the bytes, and the
//! parser's decoding agrees with what was written.

use proptest::prelude::*;
use xskdbg_analyzer::parse::{parse_line, AppOp, KernelOp, Line, Op, SeedOp};
use xskdbg_analyzer::{analyze_reader, Analyzer, Options, TraceReader};

/// Lines that look like traces, to reach deep into the decoders.
fn tracey_line() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::collection::vec(
        prop_oneof![
            Just(b"  task-12 ".to_vec()),
            Just(b"[001] ".to_vec()),
            Just(b"[999999999999] ".to_vec()),
            Just(b"d.Z1. ".to_vec()),
            Just("\u{2026}.. ".as_bytes().to_vec()),
            Just(b"542812.657026: ".to_vec()),
            Just(b"18446744073709551615: ".to_vec()),
            Just(b"tracing_mark_write: ".to_vec()),
            Just(b"bpf_trace_printk: ".to_vec()),
            Just(b"__xsk_rcv_zc_L7: (x) addr=0x16ce900 len=0x4e xs=0xffff fq=0x1 ".to_vec()),
            Just(b"xsk_flush: (x) xs=0xffff ".to_vec()),
            Just(b"xskdbg:1 ".to_vec()),
            Just(b"krx xs=ffff sk=1:5:0 a=1100 len=40 slot=0 ".to_vec()),
            Just(b"rx sk=1:5:0 idx=0 n=2 d=1100:40,deadbeefdeadbeef:0 ".to_vec()),
            Just(b"fill pool=1 n=2 a=1000,1800 ".to_vec()),
            Just(b"kflush xs=ffff prod=2 ".to_vec()),
            Just(b"umem umem=3 size=400000 chunk=1000 ".to_vec()),
            Just(b"pool pool=2 umem=3 sk=1:6:0 ".to_vec()),
            Just(b"free umem=3 n=1 a=1000 ".to_vec()),
            Just(b"kcomp kpool=9 n=1 a=1000 ".to_vec()),
            Just(b"ingress q:1 0x16ce900 FILL -> RX".to_vec()),
            Just(b": expected 0x1000900remaining: [fe4100, \xe2\x80\xa6,]".to_vec()),
            Just(b"##### CPU 2 buffer started ####".to_vec()),
            Just(b"label=".to_vec()),
            Just(b"\xff\xfe\xc2\xa0\r".to_vec()),
            prop::collection::vec(any::<u8>(), 0..12),
        ],
        0..10,
    );
    pieces.prop_map(|p| p.concat().into_iter().filter(|&b| b != b'\n').collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn parse_line_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_line(1, &bytes);
    }

    #[test]
    fn parse_line_never_panics_on_tracey_lines(line in tracey_line()) {
        let _ = parse_line(7, &line);
    }

    /// A project `fill` line decodes to exactly the addresses written.
    #[test]
    fn fill_lines_round_trip(addrs in prop::collection::vec(0u64..(1 << 48), 1..40), cpu in 0u32..512, us in 0u64..1_000_000) {
        let list: Vec<String> = addrs.iter().map(|a| format!("{a:x}")).collect();
        let line = format!(" app-thr-1 [{cpu:03}] ..... 12.{us:06}: tracing_mark_write: xskdbg:1 fill pool=1 n={:x} a={}", addrs.len(), list.join(","));
        match parse_line(3, line.as_bytes()) {
            Line::Event(ev) => {
                prop_assert_eq!(ev.cpu, cpu);
                prop_assert_eq!(ev.ts.ns, Some(12_000_000_000 + us * 1000));
                prop_assert_eq!(ev.task, &b"app-thr"[..]);
                match ev.op {
                    Op::App(AppOp::Fill { addrs: l, .. }) => {
                        let got: Vec<u64> = l.iter().map(|d| d.addr).collect();
                        prop_assert_eq!(got, addrs);
                    }
                    other => prop_assert!(false, "not a fill: {:?}", other),
                }
            }
            other => prop_assert!(false, "not an event: {:?}", other),
        }
    }

    /// Seed transitions keep their label, address and states.
    #[test]
    fn seed_transitions_round_trip(q in 0u32..64, addr in 0u64..(1 << 40), label in "[a-z]{1,8}") {
        let line = format!("fwd-9chS-142014  [000] \u{2026}.. 609766.698540: tracing_mark_write: {label} q:{q} {addr:#x} COMP -> FILL");
        match parse_line(1, line.as_bytes()) {
            Line::Event(ev) => match ev.op {
                Op::Seed(SeedOp::Transition { label: l, addr: a, .. }) => {
                    let want = format!("{label} q:{q}");
                    prop_assert_eq!(l, Some(want.as_bytes()));
                    prop_assert_eq!(a, addr);
                }
                other => prop_assert!(false, "{:?}", other),
            },
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// Kernel receive lines of both styles decode the same frame and xs.
    #[test]
    fn kernel_rx_styles_agree(addr in 0u64..(1 << 48), xs in any::<u64>(), slot in 0u64..1_000_000) {
        let perf = format!("iperf2-1217 [002] d.Z1. 1.000001: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x9b/0x250) addr={addr:#x} len=0x42 xs={xs:#x} fq=0x1");
        let proj = format!("<idle>-0 [002] d.s.. 1.000001: bpf_trace_printk: xskdbg:1 krx xs={xs:x} sk=1:5:1 a={addr:x} len=42 slot={slot:x}");
        for l in [perf, proj] {
            match parse_line(1, l.as_bytes()) {
                Line::Event(ev) => match ev.op {
                    Op::Kernel(KernelOp::Rx { xs: x, addr: a, .. }) => {
                        prop_assert_eq!(x, xs);
                        prop_assert_eq!(a, addr);
                    }
                    other => prop_assert!(false, "{:?}", other),
                },
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}

proptest! {
    // Whole analyses are slower than single lines: fewer cases.
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn analyzer_never_panics(lines in prop::collection::vec(tracey_line(), 0..60)) {
        let data = lines.join(&b"\n"[..]);
        let _ = analyze_reader(&data[..], &Options::default());
        let _ = analyze_reader(&data[..], &Options { chunk_size: Some(0x1000), history: Some(0x1000), ..Options::default() });
    }

}

/// A bounded random-bytes loop with a fixed seed (a fuzzer on stable): the
/// reader, the parser and the analyzer survive arbitrary input, including
/// mutations of a real trace.
#[test]
fn random_bytes_and_mutated_traces_never_panic() {
    let seed_trace = include_bytes!("../../fixtures/traces/seed-fifo.txt");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..300 {
        let mut data = if round % 2 == 0 {
            seed_trace.to_vec()
        } else {
            (0..(next() % 4096)).map(|_| next() as u8).collect()
        };
        let flips = next() % 64;
        for _ in 0..flips {
            if data.is_empty() {
                break;
            }
            let i = (next() as usize) % data.len();
            match next() % 4 {
                0 => data[i] = next() as u8,
                1 => data[i] = b'\n',
                2 => {
                    data.remove(i);
                }
                _ => data.insert(
                    i,
                    [b' ', b'-', b':', b'[', b']', b'x', b'0'][(next() % 7) as usize],
                ),
            }
        }
        let _ = analyze_reader(&data[..], &Options::default());
        // Line by line through the incremental API too.
        let mut r = TraceReader::new(&data[..]);
        let mut a = Analyzer::new(Options::default());
        while let Ok(Some(line)) = r.next_line() {
            a.feed_line(&line);
        }
        let report = a.finish();
        let _ = report.to_json();
    }
}

/// Absurd sizes from a trace or the options must not overflow.
#[test]
fn huge_chunk_sizes_do_not_overflow() {
    let t = b"a-1 [000] ..... 1.000001: tracing_mark_write: xskdbg:1 umem umem=1 chunk=ffffffffffffffff\n\
a-1 [000] ..... 1.000002: tracing_mark_write: xskdbg:1 fill pool=1 n=1 a=1000\n";
    let r = analyze_reader(&t[..], &Options::default()).expect("entries");
    assert_eq!(r.summary.chunk.size.as_deref(), Some("0x100000000"));
    let opts = Options {
        chunk_size: Some(u64::MAX),
        ..Options::default()
    };
    assert!(analyze_reader(&t[..], &opts).is_ok());
}
