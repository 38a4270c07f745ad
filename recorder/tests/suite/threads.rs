//! Shared UMEM across threads: frames handed between threads are tracked
//! without false alarms; two threads misusing one frame are caught.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};

use xskdbg_recorder::{PoolConfig, SockConfig, SockKey, State, ViolationKind, XdpDesc};

use super::common::Rig;

const THREADS: usize = 4;
const BATCH: usize = 16;
const ROUNDS: usize = 2000;

#[test]
fn frames_handed_between_threads_cause_no_violation() {
    let rig = Rig::new(true);
    let u = rig
        .rec
        .umem(xskdbg_recorder::UmemConfig::aligned(
            (THREADS * BATCH * 4) as u32,
            2048,
        ))
        .unwrap();
    // One device queue per thread, all on one UMEM (XDP_SHARED_UMEM).
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel::<Vec<u64>>()).unzip();
    let mut rxs: Vec<Option<mpsc::Receiver<Vec<u64>>>> = rxs.into_iter().map(Some).collect();
    // Seed every thread's inbox with frames from the app's free list.
    for (t, inbox) in txs.iter().enumerate() {
        for b in 0..4 {
            let frames: Vec<u64> = (0..BATCH)
                .map(|i| (((t * 4 + b) * BATCH + i) * 2048) as u64)
                .collect();
            u.free(&frames);
            inbox.send(frames).unwrap();
        }
    }
    std::thread::scope(|sc| {
        for t in 0..THREADS {
            let u = u.clone();
            let inbox = rxs[t].take().unwrap();
            let next = txs[(t + 1) % THREADS].clone();
            sc.spawn(move || {
                let key = SockKey::new(1, 10 + t as u32, t as u32);
                let p = u.pool(PoolConfig::new(key)).unwrap();
                let s = p.socket(SockConfig::new(key)).unwrap();
                for _ in 0..ROUNDS / 4 {
                    let frames = inbox.recv().unwrap();
                    u.hold(&frames);
                    p.fill(&frames);
                    let d: Vec<XdpDesc> =
                        frames.iter().map(|&a| XdpDesc::new(a + 256, 60)).collect();
                    s.rx(&d);
                    s.tx(&d);
                    p.comp(&frames);
                    u.free(&frames);
                    // Hand them to the next thread, which takes them from the free list.
                    // The next thread may have finished its rounds already.
                    let _ = next.send(frames);
                }
            });
        }
    });
    assert_eq!(rig.rec.violations(), 0, "{:?}", rig.violations());
}

#[test]
fn two_threads_filling_one_frame_are_caught_every_time() {
    let rig = Rig::new(false);
    let u = rig
        .rec
        .umem(xskdbg_recorder::UmemConfig::aligned(1024, 2048))
        .unwrap();
    let p1 = u.pool(PoolConfig::new(SockKey::new(1, 5, 0))).unwrap();
    let p2 = u.pool(PoolConfig::new(SockKey::new(1, 5, 1))).unwrap();
    const N: usize = 500;
    let barrier = Arc::new(Barrier::new(2));
    std::thread::scope(|sc| {
        for p in [&p1, &p2] {
            let b = barrier.clone();
            sc.spawn(move || {
                for i in 0..N {
                    b.wait();
                    // Both threads put frame i on their FILL ring at once.
                    p.fill(&[(i * 2048) as u64]);
                }
            });
        }
    });
    // One violation per contested frame; the first few of the kind are
    // reported, the rest counted.
    assert_eq!(
        rig.rec.violations_of(ViolationKind::DuplicateInFlight),
        N as u64
    );
    assert_eq!(rig.rec.violations(), N as u64);
    let v = rig.violations();
    assert_eq!(v.len(), 5);
    for x in &v {
        assert_eq!(x.kind, ViolationKind::DuplicateInFlight);
        assert_eq!((x.from, x.to), (State::Fill, State::Fill));
    }
    let mut frames: Vec<u64> = v.iter().map(|x| x.frame).collect();
    frames.sort_unstable();
    frames.dedup();
    assert_eq!(frames.len(), v.len());
    let summary = rig.rec.summary().unwrap();
    assert!(
        summary.contains(&format!("duplicate_in_flight {N} (first 5 reported)")),
        "{summary}"
    );
}

#[test]
fn a_frame_sent_and_refilled_by_two_threads_is_caught() {
    let rig = Rig::new(false);
    let u = rig
        .rec
        .umem(xskdbg_recorder::UmemConfig::aligned(1024, 2048))
        .unwrap();
    let key = SockKey::new(1, 5, 0);
    let p = u.pool(PoolConfig::new(key)).unwrap();
    let s = p.socket(SockConfig::new(key)).unwrap();
    const N: usize = 500;
    let frames: Vec<u64> = (0..N as u64).map(|i| i * 2048).collect();
    u.hold(&frames);
    let barrier = Arc::new(Barrier::new(2));
    std::thread::scope(|sc| {
        let (b1, b2) = (barrier.clone(), barrier.clone());
        let (p, s, fr) = (&p, &s, &frames);
        // The seed's Fill→Tx bug as a race: one thread recycles a held frame
        // to FILL while another sends the same frame.
        sc.spawn(move || {
            for &a in fr {
                b1.wait();
                p.fill(&[a]);
            }
        });
        sc.spawn(move || {
            for &a in fr {
                b2.wait();
                s.tx(&[XdpDesc::new(a, 60)]);
            }
        });
    });
    assert_eq!(
        rig.rec.violations_of(ViolationKind::InvalidTransition),
        N as u64
    );
    let v = rig.violations();
    assert_eq!(v.len(), 5, "{v:?}");
    for x in &v {
        assert_eq!(x.kind, ViolationKind::InvalidTransition);
        assert!(
            matches!(
                (x.from, x.to),
                (State::Fill, State::Tx) | (State::Tx, State::Fill)
            ),
            "{x:?}"
        );
    }
}
