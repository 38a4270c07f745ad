//! Unit tests of the parser on lines of every vocabulary. The agreement of
//! the fast paths with the general path is `tests/parse_agree.rs`.

use super::*;

fn ev(s: &str) -> Event<'_> {
    match parse_line(1, s.as_bytes()) {
        Line::Event(e) => e,
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn seed_kernel_rx_line_with_nbsp() {
    let s = "\u{a0}\u{a0} iperf2-127018\u{a0}  [002] d.Z1. 542812.657090: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x9b/0x250) addr=0x13d3900 len=0x4e xs=0xffffa0c6e26ab400 fq=0xffffa0c72db94c40";
    let e = ev(s);
    assert_eq!(e.task, b"iperf2");
    assert_eq!(e.pid, Some(127018));
    assert_eq!(e.cpu, 2);
    assert_eq!(e.flags, b"d.Z1.");
    assert_eq!(e.ts.ns, Some(542_812_657_090_000));
    match e.op {
        Op::Kernel(KernelOp::Rx {
            xs,
            addr,
            len,
            kpool,
            ..
        }) => {
            assert_eq!(xs, 0xffffa0c6e26ab400);
            assert_eq!(addr, 0x13d3900);
            assert_eq!(len, Some(0x4e));
            assert_eq!(kpool, Some(0xffffa0c72db94c40));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn seed_transition_with_glued_remaining_and_ellipsis() {
    let s = "flowtrackd-9chS-142014  [000] \u{2026}.. 609766.698617: tracing_mark_write: ingress q:1 0xdeadbeefdeadbeef FILL -> RX: expected 0x1000900remaining: [fe4100, f9c100, \u{2026},]";
    let e = ev(s);
    assert_eq!(e.task, b"flowtrackd-9chS");
    assert_eq!(e.pid, Some(142014));
    match e.op {
        Op::Seed(SeedOp::Transition {
            label,
            addr,
            from,
            to,
            expected,
            remaining,
        }) => {
            assert_eq!(label, Some(&b"ingress q:1"[..]));
            assert_eq!(addr, 0xdeadbeefdeadbeef);
            assert_eq!((from, to), (RingState::Fill, RingState::Rx));
            assert_eq!(expected, Some(0x1000900));
            let r = remaining.unwrap();
            assert_eq!(
                r.iter().map(|d| d.addr).collect::<Vec<_>>(),
                vec![0xfe4100, 0xf9c100]
            );
            assert!(r.truncated());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn project_lines() {
    let e = ev(" fwd-1234  [001] ..... 1234.567890: tracing_mark_write: xskdbg:1 rx sk=1:5:1 pool=1 idx=3c n=2 d=16ce900:4e,160a100:4e");
    match e.op {
        Op::App(AppOp::Rx { sk, idx, descs, .. }) => {
            assert_eq!(sk, SockKey::new(1, 5, 1));
            assert_eq!(idx, Some(0x3c));
            let d: Vec<_> = descs.iter().collect();
            assert_eq!(d.len(), 2);
            assert_eq!(d[1].addr, 0x160a100);
            assert_eq!(d[1].len, Some(0x4e));
        }
        other => panic!("{other:?}"),
    }
    let e = ev(" <idle>-0  [002] d.s.. 1234.567901: bpf_trace_printk: xskdbg:1 krx xs=ffff9b2c4a1e8000 sk=1:5:1 a=13d3900 len=4e slot=3e");
    assert!(matches!(
        e.op,
        Op::Kernel(KernelOp::Rx {
            slot: Some(0x3e),
            ..
        })
    ));
    let e = ev("a-1 [000] .... 5.000000001: tracing_mark_write: xskdbg:1 sock sk=1:5:1 pool=1 umem=1 label=ingress q:1");
    assert!(matches!(
        e.op,
        Op::App(AppOp::Sock {
            label: Some(b"ingress q:1"),
            ..
        })
    ));
    let bad = parse_line(
        7,
        b"a-1 [000] .... 5.0: tracing_mark_write: xskdbg:1 fill pool=1 n=2 a=12,zz;",
    );
    assert!(matches!(
        bad,
        Line::Bad {
            reason: BadReason::BadField,
            line: 7,
            ..
        }
    ));
}

#[test]
fn headers_and_meta() {
    assert!(matches!(
        parse_line(1, b"##### CPU 2 buffer started ####"),
        Line::Meta {
            meta: Meta::CpuBufferStarted(2),
            ..
        }
    ));
    assert!(matches!(
        parse_line(
            1,
            b"# entries-in-buffer/entries-written: 918959/953688441   #P:4"
        ),
        Line::Meta {
            meta: Meta::Entries {
                in_buffer: 918959,
                written: 953688441,
                cpus: Some(4)
            },
            ..
        }
    ));
    assert!(matches!(
        parse_line(1, b"CPU:1 [LOST 12 EVENTS]"),
        Line::Meta {
            meta: Meta::Lost { cpu: 1, count: 12 },
            ..
        }
    ));
    assert!(matches!(parse_line(1, b"garbage here"), Line::Bad { .. }));
    assert!(matches!(parse_line(1, b"\r"), Line::Blank { .. }));
}

#[test]
fn counter_clock_and_trace_cmd() {
    let e = ev("  task-with-dash-77 [003] 123456789: print: tracing_mark_write: 0x1000 egress_tx_queue forward");
    assert_eq!(e.ts.ns, None);
    assert_eq!(e.ts.order, 123456789);
    assert_eq!(e.task, b"task-with-dash");
    assert!(matches!(e.op, Op::Seed(SeedOp::Note { addr: 0x1000 })));
}

/// `TASK-PID` split at the last `-` when only a `u32` follows: the rule
/// written plainly, against the one-pass version.
#[test]
fn task_pid_split_matches_the_plain_rule() {
    use proptest::prelude::*;
    fn plain(s: &[u8]) -> (&[u8], Option<u32>) {
        if let Some(d) = s.iter().rposition(|&b| b == b'-') {
            let digits = &s[d + 1..];
            if !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) {
                let v: u64 = std::str::from_utf8(digits).unwrap().parse().unwrap();
                if let Ok(pid) = u32::try_from(v) {
                    return (&s[..d], Some(pid));
                }
            }
        }
        (s, None)
    }
    proptest!(ProptestConfig { cases: 2000, ..ProptestConfig::default() },
    |(s in "[a-z0-9/ -]{0,6}-?[0-9]{0,21}")| {
        prop_assert_eq!(super::entry::split_task_pid(s.as_bytes()), plain(s.as_bytes()));
    });
}

#[test]
fn tracefs_rx_line_of_a_6_12_kernel_gets_its_addr_from_the_parts() {
    // Aligned: addr = data - umem (xp_get_handle of 6.9+).
    let s = "          <idle>-0       [000] ..s1.    41.251932: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x4/0x1a0) data=0xffffc90000e45100 hard=0xffffc90000e45000 umem=0xffffc90000400000 hr=0x0 unal=0x0 len=0x40 xs=0xffff888004b8a000 fq=0xffff888004b8c000 slot=0x3";
    match ev(s).op {
        Op::Kernel(KernelOp::Rx { addr, len, .. }) => {
            assert_eq!(addr, 0xa45100);
            assert_eq!(len, Some(0x40));
        }
        other => panic!("{other:?}"),
    }
    // Unaligned: the data's offset (+ headroom) moves into the upper 16 bits.
    let s = "          <idle>-0       [000] ..s1.    41.251932: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x4/0x1a0) data=0xffffc90000e45180 hard=0xffffc90000e45080 umem=0xffffc90000400000 hr=0x80 unal=0x1 len=0x40 xs=0xffff888004b8a000";
    match ev(s).op {
        Op::Kernel(KernelOp::Rx { addr, .. }) => {
            assert_eq!(addr, (0x180 << 48) | 0xa45000);
        }
        other => panic!("{other:?}"),
    }
    // Without addr= and without the parts there is no frame: not a receive.
    let s = "          <idle>-0       [000] ..s1.    41.251932: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x4/0x1a0) len=0x40 xs=0xffff888004b8a000";
    assert!(matches!(ev(s).op, Op::Unknown));
}

#[test]
fn receive_outcomes_kxdperr_rcv_and_the_return_probe() {
    let s = "xskdbg-203 [000] ..s21 62.931237: bpf_trace_printk: xskdbg:1 kxdperr why=rcv xs=ff1e87bf5e5ad000 slot=21 errno=69";
    match ev(s).op {
        Op::Kernel(KernelOp::RxOutcome { xs, slot, ret }) => {
            assert_eq!(xs, Some(0xff1e87bf5e5ad000));
            assert_eq!(slot, Some(0x21));
            assert_eq!(ret, -105);
        }
        other => panic!("{other:?}"),
    }
    // Other reasons stay context.
    let s = "xskdbg-203 [000] ..s3. 62.931287: bpf_trace_printk: xskdbg:1 kxdperr why=redirect xs=ff1e87bf5e5ad000 sk=6:1267:0 errno=69";
    assert!(matches!(ev(s).op, Op::App(AppOp::Other { .. })));
    for (body, want) in [
        ("(__xsk_rcv+0x9c/0x110 <- __xsk_rcv_zc) ret=-105", -105),
        ("(__xsk_rcv+0x9c/0x110 <- __xsk_rcv_zc) ret=0", 0),
        ("(xsk_rcv+0x40/0x90 <- __xsk_rcv_zc) arg1=0xffffff97", -105),
    ] {
        for name in ["__xsk_rcv_zc_ret", "__xsk_rcv_zc__return"] {
            let s = format!("xskdbg-202 [000] ..s1. 65.826480: {name}: {body}");
            match ev(&s).op {
                Op::Kernel(KernelOp::RxOutcome { xs, ret, .. }) => {
                    assert_eq!(xs, None);
                    assert_eq!(ret, want, "{s}");
                }
                other => panic!("{s}: {other:?}"),
            }
        }
    }
    // The entry line's slot= is the slot it is about to reserve.
    let s = "xskdbg-202 [000] ..s1. 65.826480: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x0/0xd0) addr=0x15800 len=0x5ea xs=0xff1e8fdd827d8800 fq=0xff1e8fddde906180 slot=0x2b";
    assert!(matches!(
        ev(s).op,
        Op::Kernel(KernelOp::Rx {
            slot: Some(0x2b),
            ..
        })
    ));
}
