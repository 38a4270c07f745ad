//! Every transition between the six states, valid and invalid, checked
//! against the table written out from the issue (not from the code).

use xskdbg_recorder::{State, ViolationKind, XdpDesc};

use super::common::{one_sock, Rig};

const STATES: [State; 6] = [
    State::Fill,
    State::Rx,
    State::Tx,
    State::Comp,
    State::Held,
    State::Free,
];

/// Valid moves: FILL→RX, RX→FILL, RX→TX, TX→COMP, COMP→FILL, COMP→TX, and
/// through the app's own held/free states.
const VALID: [(State, State); 16] = [
    (State::Fill, State::Rx),
    (State::Rx, State::Fill),
    (State::Rx, State::Tx),
    (State::Tx, State::Comp),
    (State::Comp, State::Fill),
    (State::Comp, State::Tx),
    (State::Rx, State::Held),
    (State::Comp, State::Held),
    (State::Rx, State::Free),
    (State::Comp, State::Free),
    (State::Held, State::Fill),
    (State::Held, State::Tx),
    (State::Held, State::Free),
    (State::Free, State::Held),
    (State::Free, State::Fill),
    (State::Free, State::Tx),
];

const A: u64 = 0x4000;

fn apply(
    to: State,
    u: &xskdbg_recorder::Umem,
    p: &xskdbg_recorder::Pool,
    s: &xskdbg_recorder::Sock,
) {
    match to {
        State::Fill => p.fill(&[A]),
        State::Rx => s.rx(&[XdpDesc::new(A + 0x100, 60)]),
        State::Tx => s.tx(&[XdpDesc::new(A, 60)]),
        State::Comp => p.comp(&[A]),
        State::Held => u.hold(&[A]),
        State::Free => u.free(&[A]),
        State::Unknown => unreachable!(),
    }
}

/// Drive frame A into `st` through valid moves only.
fn reach(
    st: State,
    u: &xskdbg_recorder::Umem,
    p: &xskdbg_recorder::Pool,
    s: &xskdbg_recorder::Sock,
) {
    let path: &[State] = match st {
        State::Fill => &[State::Fill],
        State::Rx => &[State::Fill, State::Rx],
        State::Tx => &[State::Tx],
        State::Comp => &[State::Tx, State::Comp],
        State::Held => &[State::Held],
        State::Free => &[State::Free],
        State::Unknown => &[],
    };
    for &t in path {
        apply(t, u, p, s);
    }
}

#[test]
fn every_pair_of_states() {
    let mut checked = 0;
    for from in STATES {
        for to in STATES {
            let rig = Rig::new(false);
            let (u, p, s) = one_sock(&rig, super::common::seed_umem());
            reach(from, &u, &p, &s);
            assert!(
                rig.violations().is_empty(),
                "{from:?}: reaching it was flagged"
            );
            assert_eq!(u.state(A), Some(from));
            apply(to, &u, &p, &s);
            let v = rig.violations();
            let valid = VALID.contains(&(from, to));
            assert_eq!(State::valid_from(to, from), valid, "{from:?} -> {to:?}");
            if valid {
                assert!(v.is_empty(), "{from:?} -> {to:?} flagged: {v:?}");
            } else {
                assert_eq!(v.len(), 1, "{from:?} -> {to:?}: {v:?}");
                let want = if from == to {
                    ViolationKind::DuplicateInFlight
                } else {
                    ViolationKind::InvalidTransition
                };
                assert_eq!(v[0].kind, want, "{from:?} -> {to:?}");
                assert_eq!((v[0].from, v[0].to), (from, to));
                assert_eq!(v[0].frame, A);
                let line = &v[0].line;
                assert!(
                    line.contains(&format!("from={} to={}", from.as_str(), to.as_str())),
                    "{line}"
                );
            }
            // Whatever happened, the frame is now where it was put.
            assert_eq!(u.state(A), Some(to));
            checked += 1;
        }
    }
    assert_eq!(checked, 36);
}

#[test]
fn first_sighting_may_only_be_the_apps() {
    for (to, ok) in [
        (State::Fill, true),
        (State::Tx, true),
        (State::Held, true),
        (State::Free, true),
        (State::Rx, false),
        (State::Comp, false),
    ] {
        let rig = Rig::new(false);
        let (u, p, s) = one_sock(&rig, super::common::seed_umem());
        apply(to, &u, &p, &s);
        assert_eq!(rig.violations().is_empty(), ok, "unknown -> {to:?}");
        if !ok {
            assert_eq!(rig.violations()[0].from, State::Unknown);
        }
    }
}

#[test]
fn a_full_cycle_through_every_ring_is_clean() {
    let rig = Rig::new(true);
    let (u, p, s) = one_sock(&rig, super::common::seed_umem());
    let frames: Vec<u64> = (0..64u64).map(|i| i * 2048).collect();
    u.free(&frames);
    for _ in 0..10 {
        u.hold(&frames);
        p.fill(&frames);
        let rx: Vec<XdpDesc> = frames.iter().map(|&a| XdpDesc::new(a + 256, 60)).collect();
        s.rx(&rx);
        s.tx(&rx);
        p.comp(&frames);
        u.free(&frames);
    }
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    assert_eq!(rig.rec.violations(), 0);
    assert!(!rig.rec.is_frozen());
}
