//! Mistakes in the recording name themselves: a frame whose FILL was not
//! recorded (`not_recorded`), a ring index that does not continue
//! (`ring_index`: masked, repeated, skipped, past the producer), an all-zero
//! descriptor from a ring poisoned up front (`read_outside_ring`). Also:
//! one mistake is not reported forever (the FIFO resynchronises, and only
//! the first few of a kind are reported), and a buffer found frozen is said.

use std::sync::Arc;

use xskdbg_recorder::tracefs::fake::FakeSys;
use xskdbg_recorder::tracefs::TraceFs;
use xskdbg_recorder::{
    Policy, Recorder, RecorderConfig, SinkConfig, State, UmemConfig, ViolationKind, XdpDesc,
    DEFAULT_POISON,
};

use super::common::{one_sock, seed_umem, Rig};

fn rxd(a: u64) -> XdpDesc {
    XdpDesc::new(a + 0x100, 0x4e)
}

fn kinds(rig: &Rig) -> Vec<ViolationKind> {
    rig.violations().iter().map(|v| v.kind).collect()
}

#[test]
fn a_frame_first_seen_on_rx_is_a_missing_fill_record_not_a_kernel_move() {
    let rig = Rig::new(true);
    let (_u, _p, s) = one_sock(&rig, seed_umem());
    // The initial FILL was not recorded.
    s.rx_at_prod(0, 1, &[rxd(0x1000)]);
    let v = &rig.violations()[0];
    assert_eq!(v.kind, ViolationKind::NotRecorded);
    assert_eq!((v.from, v.to), (State::Unknown, State::Rx));
    assert!(v.kind.is_instrumentation());
    assert_eq!(
        v.line,
        "xskdbg:1 violation kind=not_recorded sk=1:5:1 pool=1 a=1100 frame=1000 from=unknown to=rx label=ingress q:1"
    );
    let text = v.to_string();
    assert!(
        text.contains("never recorded") && text.contains("first FILL"),
        "{text}"
    );
}

#[test]
fn a_masked_rx_index_is_caught_at_the_wrap_and_behind_the_producer() {
    // A ring of 4: the masked index equals the counter for one lap.
    let rig = Rig::new(false);
    let u = rig.rec.umem(seed_umem()).unwrap();
    let key = super::common::SK;
    let p = u.pool(xskdbg_recorder::PoolConfig::new(key)).unwrap();
    let mut sc = xskdbg_recorder::SockConfig::new(key);
    sc.rx_size = 4;
    let s = p.socket(sc).unwrap();
    let frames: Vec<u64> = (1..=8).map(|i| i * 0x800).collect();
    p.fill(&frames);
    s.rx_at_prod(0, 2, &[rxd(frames[0]), rxd(frames[1])]);
    s.rx_at_prod(2, 4, &[rxd(frames[2]), rxd(frames[3])]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    // Counter 4 passed as 4 & 3 = 0.
    s.rx_at_prod(0, 6, &[rxd(frames[4]), rxd(frames[5])]);
    let v = rig.violations();
    assert_eq!(kinds(&rig), [ViolationKind::RingIndex]);
    assert!(
        v[0].line.contains(" why=back idx=0 next=4 prod=6 n=2"),
        "{}",
        v[0].line
    );
    assert!(v[0].to_string().contains("never `idx & mask`"), "{}", v[0]);

    // Even the first batch gives it away when the producer is a lap ahead.
    let rig = Rig::new(false);
    let u = rig.rec.umem(seed_umem()).unwrap();
    let p = u.pool(xskdbg_recorder::PoolConfig::new(key)).unwrap();
    let mut sc = xskdbg_recorder::SockConfig::new(key);
    sc.rx_size = 4;
    let s = p.socket(sc).unwrap();
    p.fill(&frames[..1]);
    s.rx_at_prod(1, 10, &[rxd(frames[0])]);
    assert!(
        rig.violations()[0]
            .line
            .contains(" why=behind-producer idx=1 prod=a n=1"),
        "{}",
        rig.violations()[0].line
    );
}

#[test]
fn indexes_that_repeat_skip_or_pass_the_producer_are_caught_on_every_ring() {
    let rig = Rig::new(false);
    let (_u, p, s) = one_sock(&rig, seed_umem());
    let f: Vec<u64> = (1..=6).map(|i| i * 0x800).collect();
    p.fill_at(0, &f[..3]);
    p.fill_at(3, &f[3..]);
    s.rx_at_prod(0, 3, &[rxd(f[0]), rxd(f[1]), rxd(f[2])]);
    // Read past the producer it saw.
    s.rx_at_prod(3, 4, &[rxd(f[3]), rxd(f[4])]);
    s.tx_at(0, &[rxd(f[0])]);
    // The same TX batch recorded twice, then one skipped.
    s.tx_at(0, &[rxd(f[1])]);
    s.tx_at(5, &[rxd(f[2])]);
    p.comp_at(7, &[f[0]]);
    let lines: Vec<String> = rig.violations().iter().map(|v| v.line.clone()).collect();
    assert!(
        lines[0].contains("to=rx why=past-producer idx=3 next=3 prod=4 n=2"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains("to=tx why=back idx=0 next=1 n=1"),
        "{lines:#?}"
    );
    assert!(
        lines[2].contains("to=tx why=jump idx=5 next=1 n=1"),
        "{lines:#?}"
    );
    // The first COMPLETION batch sets the chain: no fault at 7.
    assert_eq!(lines.len(), 3, "{lines:#?}");
    p.comp_at(9, &[f[1]]);
    assert!(
        rig.violations()[3]
            .line
            .contains("to=comp why=jump idx=9 next=8 n=1"),
        "{:?}",
        rig.violations()[3]
    );
}

#[test]
fn rx_lines_carry_the_producer_the_app_saw_after_the_list() {
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(&rig, seed_umem());
    p.fill(&[0x1000, 0x1800]);
    s.rx_at_prod(0, 7, &[rxd(0x1000), rxd(0x1800)]);
    assert!(rig
        .lines()
        .contains(&"xskdbg:1 rx sk=1:5:1 pool=1 idx=0 n=2 d=1100:4e,1900:4e prod=7".to_string()));
}

#[test]
fn a_zero_descriptor_from_a_ring_poisoned_up_front_was_read_outside_it() {
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(&rig, seed_umem().with_poison(DEFAULT_POISON));
    s.declare_rx_poisoned().unwrap();
    p.fill(&[0x1000, 0x1800]);
    let e = s.declare_rx_poisoned().unwrap_err();
    assert!(e.to_string().contains("before the first FILL"), "{e}");
    s.rx_at_prod(0, 2, &[rxd(0x1000), XdpDesc::default()]);
    let v = rig.violations();
    assert_eq!(kinds(&rig), [ViolationKind::ReadOutsideRing]);
    assert!(v[0].to_string().contains("past the ring's end"), "{}", v[0]);
    let lines = rig.lines();
    assert!(
        lines.contains(&"xskdbg:1 rxpoison sk=1:5:1 size=800 poison=deadbeefdeadbeef".to_string()),
        "{lines:#?}"
    );

    // Without the declaration an all-zero read is not judged so: the
    // kernel may have exposed a slot it never wrote.
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(&rig, seed_umem().with_poison(DEFAULT_POISON));
    p.fill(&[0x0]);
    s.rx_at_prod(0, 1, &[XdpDesc::default()]);
    assert!(!kinds(&rig).contains(&ViolationKind::ReadOutsideRing));

    // Nor without a poison value to declare.
    let rig = Rig::new(true);
    let (_u, _p, s) = one_sock(&rig, seed_umem());
    assert!(s.declare_rx_poisoned().is_err());
}

#[test]
fn a_frame_on_fill_and_tx_does_not_leave_the_completion_order_stuck() {
    // The flood: a frame recycled to FILL while on TX; its
    // completion is refused by the state machine and used to stay at the
    // head of the TX FIFO, failing every later completion.
    let rig = Rig::new(false);
    let (_u, p, s) = one_sock(&rig, seed_umem());
    let f: Vec<u64> = (1..=40).map(|i| i * 0x800).collect();
    p.fill(&f);
    let d: Vec<XdpDesc> = f.iter().map(|&a| rxd(a)).collect();
    s.rx(&d);
    s.tx(&d);
    p.fill(&[f[0]]);
    for &a in &f {
        p.comp(&[a]);
    }
    let k = kinds(&rig);
    assert_eq!(
        k,
        [
            ViolationKind::InvalidTransition,
            ViolationKind::InvalidTransition
        ],
        "{:#?}",
        rig.violations()
    );
    assert_eq!(rig.rec.violations_of(ViolationKind::FifoOrder), 0);
}

#[test]
fn after_a_few_of_a_kind_violations_are_only_counted() {
    let rig = Rig::new(false);
    let (u, _p, _s) = one_sock(&rig, seed_umem());
    for i in 0..1000u64 {
        u.hold(&[i * 0x800]);
        u.hold(&[i * 0x800]);
    }
    assert_eq!(rig.violations().len(), 5);
    assert_eq!(rig.rec.violations(), 1000);
    // Five violation lines in the trace (no freeze), not a thousand.
    let written = rig
        .lines()
        .iter()
        .filter(|l| l.starts_with("xskdbg:1 violation "))
        .count();
    assert_eq!(written, 5);
    assert_eq!(
        rig.rec.summary().as_deref(),
        Some("1000 violations in all: duplicate_in_flight 1000 (first 5 reported)")
    );
    assert_eq!(rig.rec.summary(), None, "given once");
}

#[test]
fn the_log_policy_says_when_it_stops_logging_a_kind() {
    let rec =
        Recorder::new(RecorderConfig::new(SinkConfig::Memory { events: 64 }).policy(Policy::Log))
            .unwrap();
    let u = rec.umem(UmemConfig::aligned(64, 2048)).unwrap();
    for _ in 0..20 {
        u.hold(&[0x800]);
    }
    assert_eq!(rec.violations(), 19);
    assert_eq!(
        rec.last_violation().unwrap().kind,
        ViolationKind::DuplicateInFlight
    );
}

#[test]
fn a_buffer_left_frozen_by_an_earlier_run_is_said_and_rearmed_on_request() {
    let sys = Arc::new(FakeSys::new("/t"));
    let fs = TraceFs::at_with(sys, "/t").unwrap();
    let b = fs.top();
    b.set_tracing_on(false).unwrap();
    let rec = Recorder::new(RecorderConfig::new(SinkConfig::Buffer(b.clone()))).unwrap();
    assert!(rec.is_frozen(), "nothing will be written: say so");
    assert!(
        rec.notes().iter().any(|n| n.contains("is frozen")),
        "{:?}",
        rec.notes()
    );
    drop(rec);
    let rec =
        Recorder::new(RecorderConfig::new(SinkConfig::Buffer(b.clone())).rearm(true)).unwrap();
    assert!(!rec.is_frozen());
    assert!(b.tracing_on().unwrap());
    let u = rec.umem(UmemConfig::aligned(64, 2048)).unwrap();
    u.hold(&[0x800]);
    let t = String::from_utf8(b.read_trace().unwrap()).unwrap();
    assert!(t.contains("xskdbg:1 hold seq="), "{t}");
    assert!(t.contains(" n=1 a=800"), "{t}");
}
