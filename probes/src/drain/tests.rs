use super::*;
use xskdbg_format::LineWriter;

fn line(r: &Rec) -> String {
    let mut v = Vec::new();
    assert!(render(&mut v, r));
    String::from_utf8(v).unwrap()
}

#[test]
fn stamps_read_like_the_trace_clock() {
    let mut v = Vec::new();
    stamp(&mut v, 14_705_034_123);
    assert_eq!(v, b"14.705034123");
    v.clear();
    stamp(&mut v, 7);
    assert_eq!(v, b"0.000000007");
    let mut b = [0u8; 64];
    let mut w = W { b: &mut b, n: 0 };
    w.hex(0);
    w.hex(0x1f);
    w.hex(u64::MAX);
    let n = w.n;
    assert_eq!(&b[..n], b"01fffffffffffffffff");
}

#[test]
fn records_round_trip_through_bytes() {
    let r = Rec {
        ts: 1,
        xs: 2,
        cookie: 3,
        pool: 4,
        addr: 5,
        ifindex: 6,
        queue: 7,
        len: 8,
        opt: 9,
        slot: 10,
        prod: 11,
        cprod: 12,
        fcons: 13,
        n: 14,
        aux: 15,
        cpu: 16,
        has: 0x7ff,
        op: 1,
        kind: 3,
    };
    assert_eq!(Rec::decode(&r.encode()), Some(r));
    assert_eq!(Rec::decode(&[0; 87]), None);
}

#[test]
fn every_kind_renders_the_printk_fields_after_its_own_cpu_and_stamp() {
    let sk = has::XS | has::SK;
    let base = Rec {
        ts: 13_352_313_000,
        xs: 0xff1afedac138f800,
        cookie: 0x1001,
        ifindex: 0x1267,
        queue: 0,
        cpu: 1,
        ..Rec::default()
    };
    let krx = Rec {
        op: 1,
        kind: 1,
        addr: 0xf6100,
        len: 0x80,
        slot: 0xec,
        pool: 0xff1afedac23c5300,
        prod: 0xed,
        fcons: 0xed,
        has: sk | has::A | has::LEN | has::SLOT | has::POOL | has::PROD | has::FCONS,
        ..base
    };
    assert_eq!(
        line(&krx),
        "xskdbg:1 krx cpu=1 t=13.352313000 xs=ff1afedac138f800 sk=1001:1267:0 a=f6100 len=80 slot=ec kpool=ff1afedac23c5300 prod=ed fcons=ed mode=drv"
    );
    let fentry_rx = Rec {
        kind: 0,
        opt: 0x1,
        has: krx.has | has::OPT,
        ..krx
    };
    assert!(
        line(&fentry_rx).ends_with("len=80 opt=1 slot=ec kpool=ff1afedac23c5300 prod=ed fcons=ed")
    );
    let flush = Rec {
        op: 3,
        kind: 2,
        prod: 5,
        cprod: 6,
        has: sk | has::PROD | has::CPROD,
        ..base
    };
    assert_eq!(
        line(&flush),
        "xskdbg:1 kflush cpu=1 t=13.352313000 xs=ff1afedac138f800 sk=1001:1267:0 prod=5 cprod=6 at=poll"
    );
    let poll = Rec {
        op: 4,
        xs: 0xabc,
        ifindex: 3,
        n: 1,
        aux: 0x40,
        ..base
    };
    assert_eq!(
        line(&poll),
        "xskdbg:1 kpoll cpu=1 t=13.352313000 napi=abc dev=3 work=1 budget=40"
    );
    let done = Rec {
        op: 2,
        slot: 4,
        has: has::XS | has::SLOT,
        ..base
    };
    assert!(line(&done).ends_with("krxdone cpu=1 t=13.352313000 xs=ff1afedac138f800 slot=4"));
    let redirect = Rec {
        op: 5,
        kind: 1,
        n: 0x1c,
        pool: 9,
        cprod: 1,
        prod: 2,
        fcons: 3,
        has: sk | has::ERRNO | has::POOL | has::CPROD | has::PROD | has::FCONS,
        ..base
    };
    assert!(line(&redirect).ends_with(
        "kxdperr cpu=1 t=13.352313000 why=redirect xs=ff1afedac138f800 sk=1001:1267:0 errno=1c kpool=9 cprod=1 prod=2 fcons=3"
    ));
    let exc = Rec {
        op: 5,
        kind: 2,
        aux: 1,
        ..base
    };
    assert!(line(&exc).ends_with("why=exception dev=1001:1267 act=1"));
    let rcv = Rec {
        op: 5,
        kind: 3,
        slot: 7,
        n: 0x69,
        has: has::XS | has::SLOT | has::ERRNO,
        ..base
    };
    assert!(line(&rcv).ends_with("why=rcv xs=ff1afedac138f800 slot=7 errno=69"));
    let tx = Rec {
        op: 6,
        kind: 2,
        pool: 9,
        addr: 0x800,
        len: 0x40,
        has: has::POOL | has::A | has::LEN,
        ..base
    };
    assert!(line(&tx).ends_with("ktx cpu=1 t=13.352313000 kpool=9 a=800 len=40 at=peek"));
    let comp = Rec {
        op: 7,
        pool: 9,
        n: 1,
        addr: 0x800,
        has: sk | has::POOL | has::A,
        ..base
    };
    assert!(line(&comp).ends_with(
        "kcomp cpu=1 t=13.352313000 xs=ff1afedac138f800 sk=1001:1267:0 kpool=9 n=1 a=800"
    ));
    let stack = Rec {
        op: 8,
        kind: 1,
        n: 0x2a,
        has: has::XS,
        ..base
    };
    assert!(line(&stack).ends_with("kstack cpu=1 t=13.352313000 at=krx xs=ff1afedac138f800 id=2a"));
    let mut v = Vec::new();
    assert!(!render(&mut v, &Rec { op: 99, ..base }));
    assert!(v.is_empty());
}

/// A kpoll and its poll's first kflush share a record in the ring and come
/// out as the two lines the probe used to make, with the record's stamp.
#[test]
fn a_poll_record_is_its_kpoll_and_its_kflush() {
    let r = Rec {
        ts: 13_352_313_000,
        cpu: 1,
        op: Op::PollFlush as u8,
        kind: 2,
        xs: 0xff1afedac138f800,
        cookie: 0x1001,
        ifindex: 0x1267,
        queue: 0,
        prod: 5,
        cprod: 6,
        has: has::XS | has::SK | has::PROD | has::CPROD,
        addr: 0xabc,
        len: 3,
        n: 1,
        aux: 0x40,
        ..Rec::default()
    };
    let lines: Vec<String> = r.lines().iter().flatten().map(line).collect();
    assert_eq!(
        lines,
        [
            "xskdbg:1 kpoll cpu=1 t=13.352313000 napi=abc dev=3 work=1 budget=40",
            "xskdbg:1 kflush cpu=1 t=13.352313000 xs=ff1afedac138f800 sk=1001:1267:0 prod=5 cprod=6 at=poll",
        ]
    );
    // Not split, it renders nothing.
    assert!(!render(&mut Vec::new(), &r));
    let one = Rec { op: 1, ..r };
    assert_eq!(one.lines(), [Some(one), None]);
}

/// Every kind with every field at its widest fits the room a line is
/// rendered in (a wider one would panic).
#[test]
fn every_kind_fits_its_room() {
    for op in 1..=9u8 {
        for kind in 0..=3u8 {
            let wide = Rec {
                ts: u64::MAX,
                xs: u64::MAX,
                cookie: u64::MAX,
                pool: u64::MAX,
                addr: u64::MAX,
                ifindex: u32::MAX,
                queue: u32::MAX,
                len: u32::MAX,
                opt: u32::MAX,
                slot: u32::MAX,
                prod: u32::MAX,
                cprod: u32::MAX,
                fcons: u32::MAX,
                n: u32::MAX,
                aux: u32::MAX,
                cpu: u32::MAX,
                has: u16::MAX,
                op,
                kind,
            };
            for r in wide.lines().iter().flatten() {
                let mut v = vec![b'x'];
                assert!(render(&mut v, r));
                assert!(
                    v.len() - 1 <= 256,
                    "op {op} kind {kind}: {} bytes",
                    v.len() - 1
                );
            }
        }
    }
    let mut v = Vec::new();
    drain_line(
        &mut v,
        u32::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u32::MAX,
        true,
    );
    assert!(v.len() <= ROOM);
}

#[test]
fn drained_lines_parse_with_their_fields() {
    let mut v = Vec::new();
    drain_line(&mut v, 3, 1_500_000_000, 12, 0, 2, true);
    assert_eq!(
        String::from_utf8(v).unwrap(),
        "xskdbg:1 kdrain cpu=3 t=1.500000000 n=c lost=0 of=2 final=1"
    );
}

#[test]
fn lines_are_dropped_by_count() {
    let mut p = Pending::default();
    for l in ["a", "bb", "ccc"] {
        p.bytes.extend_from_slice(l.as_bytes());
        p.end_line();
    }
    drop_lines(&mut p, 2);
    assert_eq!(p.bytes, b"ccc\n");
    assert_eq!(p.ends, [4]);
    drop_lines(&mut p, 5);
    assert!(p.ends.is_empty() && p.bytes.is_empty());
}

#[test]
fn entries_carry_whole_lines_up_to_the_limit() {
    let mut p = Pending::default();
    for l in ["aaaa", "bbbb", "cc", "dddddddddddd", "e"] {
        p.bytes.extend_from_slice(l.as_bytes());
        p.end_line();
    }
    // Lines of 5, 5, 3, 13 and 2 bytes with their newlines.
    assert_eq!(entry_end(&p, 0, 10), 2);
    assert_eq!(entry_end(&p, 0, 13), 3);
    // A line longer than the limit is an entry of its own.
    assert_eq!(entry_end(&p, 3, 10), 4);
    assert_eq!(entry_end(&p, 4, 10), 5);
    assert_eq!(entry_end(&p, 0, 1000), 5);
    assert_eq!(entry_bytes("6.1.0-27-cloud-amd64"), ENTRY_BYTES_OLD);
    assert_eq!(entry_bytes("6.18.44-fc"), ENTRY_BYTES_NEW);
    assert_eq!(entry_bytes("6.10.0"), ENTRY_BYTES_NEW);
    assert_eq!(entry_bytes("unknown"), ENTRY_BYTES_OLD);
}

/// Packed entries read back as every line, each whole, in order, the
/// lines after an entry's first without an ftrace header.
#[test]
fn packed_entries_read_back_line_for_line() {
    use std::io::Read;
    let mut p = Pending::default();
    let mut want = Vec::new();
    for i in 0..40u64 {
        let r = Rec {
            ts: 1_000_000_000 + i,
            cpu: 1,
            op: Op::Poll as u8,
            xs: i,
            ..Rec::default()
        };
        render(&mut p.bytes, &r);
        want.push(
            String::from_utf8(p.bytes[p.ends.last().copied().unwrap_or(0)..].to_vec()).unwrap(),
        );
        p.end_line();
    }
    let path = std::env::temp_dir().join(format!("xskdbg-drain-{}", std::process::id()));
    let f = File::create(&path).unwrap();
    let (done, err) = write_lines(&f, &p, 200);
    assert_eq!(done, 40);
    assert!(err.is_none());
    let mut got = String::new();
    File::open(&path).unwrap().read_to_string(&mut got).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
}

#[test]
fn cpu_lists() {
    assert_eq!(parse_cpu_list("0-3,6"), [0, 1, 2, 3, 6]);
    assert_eq!(parse_cpu_list("0"), [0]);
    assert_eq!(parse_cpu_list(""), Vec::<u32>::new());
}

/// The rings hand the probes' records to the drainer in the order they
/// were committed, across the end of the array, once each, and say how
/// many the probes could not write (root: it creates the maps; the probes'
/// side is played through the map syscalls).
#[test]
fn rings_hand_records_over_in_order_across_the_end() {
    use libbpf_rs::{MapCore, MapFlags};
    use xskdbg_testenv::{require, Cap};
    if !require(
        "rings_hand_records_over_in_order_across_the_end",
        &[Cap::Root, Cap::Bpf],
    ) {
        return;
    }
    let rings = Rings::create().unwrap();
    let cpu = rings.len() - 1;
    let put = |seq: u64, ts: u64| {
        let idx = (cpu as u64 * SLOTS + seq % SLOTS) as u32;
        let r = Rec {
            ts,
            cpu: cpu as u32,
            op: Op::Poll as u8,
            ..Rec::default()
        };
        rings
            .recs
            .update(&idx.to_ne_bytes(), &r.encode(), MapFlags::ANY)
            .unwrap();
    };
    let pos = |head: u64, lost: u64, tail: u64| {
        let mut v = [0u8; POS_BYTES];
        v[HEAD_AT..HEAD_AT + 8].copy_from_slice(&head.to_ne_bytes());
        v[LOST_AT..LOST_AT + 8].copy_from_slice(&lost.to_ne_bytes());
        v[TAIL_AT..TAIL_AT + 8].copy_from_slice(&tail.to_ne_bytes());
        rings
            .pos
            .update(&(cpu as u32).to_ne_bytes(), &v, MapFlags::ANY)
            .unwrap();
    };
    let stamps = || {
        let mut v = Vec::new();
        let n = rings.consume(cpu, |b| v.push(Rec::decode(b).unwrap().ts));
        assert_eq!(n as usize, v.len());
        v
    };
    for s in 0..3 {
        put(s, 100 + s);
    }
    pos(3, 5, 0);
    assert_eq!(stamps(), [100, 101, 102]);
    assert_eq!(rings.lost(cpu), 5);
    assert!(stamps().is_empty(), "each record once");
    // Four records around the end of the array.
    for s in SLOTS - 2..SLOTS + 2 {
        put(s, s);
    }
    pos(SLOTS + 2, 5, SLOTS - 2);
    assert_eq!(stamps(), [SLOTS - 2, SLOTS - 1, SLOTS, SLOTS + 1]);
    assert_eq!(rings.word(cpu, TAIL_AT).load(Ordering::Relaxed), SLOTS + 2);
}

/// A drainer's memorised parts (clock seconds, socket, pool, NAPI) give the
/// bytes a fresh rendering gives, whatever changes from one record to the
/// next.
#[test]
fn memorised_parts_read_as_rendered() {
    let mut m = Memo::default();
    let mut n = 0;
    for i in 0..400u64 {
        let r = Rec {
            ts: 999_999_000 + i * 7_000_000,
            cpu: (i / 150) as u32,
            xs: 0xff1a_0000 + (i % 3),
            cookie: 0x1001 + (i / 50) % 2,
            ifindex: 0x1267,
            queue: (i % 5 == 0) as u32,
            pool: 0xff1b_0000 + (i % 4),
            addr: i * 0x800,
            len: 0x40,
            slot: i as u32,
            prod: i as u32,
            fcons: i as u32,
            n: 1,
            aux: 0x40,
            op: [1, 9, 3, 4, 5, 7][(i % 6) as usize],
            kind: (i % 4) as u8,
            has: if i % 7 == 0 {
                has::XS
            } else {
                has::XS | has::SK | has::A | has::LEN | has::SLOT | has::POOL | has::PROD
            },
            ..Rec::default()
        };
        for l in r.lines().iter().flatten() {
            let mut kept = Vec::new();
            let mut fresh = Vec::new();
            assert_eq!(render_with(&mut kept, &mut m, l), render(&mut fresh, l));
            assert_eq!(
                String::from_utf8(kept).unwrap(),
                String::from_utf8(fresh).unwrap(),
                "record {i}"
            );
            n += 1;
        }
    }
    assert!(n > 400);
}
