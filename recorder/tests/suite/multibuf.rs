//! Multi-buffer packets: fragments tracked frame by frame, kept together.

use xskdbg_recorder::{State, ViolationKind, XdpDesc, XDP_PKT_CONTD};

use super::common::{one_sock, seed_umem, Rig};

fn frag(a: u64, more: bool) -> XdpDesc {
    XdpDesc {
        addr: a,
        len: 2048,
        options: if more { XDP_PKT_CONTD } else { 0 },
    }
}

#[test]
fn a_packet_across_batches_is_tracked_frame_by_frame() {
    let rig = Rig::new(true);
    let (u, p, s) = one_sock(&rig, seed_umem());
    p.fill(&[0x1000, 0x1800, 0x2000]);
    s.rx(&[frag(0x1000, true), frag(0x1800, true)]);
    s.rx(&[frag(0x2000, false)]);
    for a in [0x1000, 0x1800, 0x2000] {
        assert_eq!(u.state(a), Some(State::Rx));
    }
    s.tx(&[frag(0x1000, true), frag(0x1800, true), frag(0x2000, false)]);
    p.comp(&[0x1000, 0x1800, 0x2000]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    // Options are kept in the descriptor list.
    assert!(
        rig.lines()
            .iter()
            .any(|l| l.starts_with("xskdbg:1 rx ") && l.ends_with("d=1000:800:1,1800:800:1")),
        "{:#?}",
        rig.lines()
    );
}

#[test]
fn fragments_out_of_fill_order_are_caught() {
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(&rig, seed_umem());
    p.fill(&[0x1000, 0x1800, 0x2000]);
    s.rx(&[frag(0x1000, true), frag(0x2000, true), frag(0x1800, false)]);
    let v = rig.violations();
    assert_eq!(v[0].kind, ViolationKind::FifoOrder);
    assert_eq!(v[0].frame, 0x2000);
    assert_eq!(v[0].expected, Some(0x1800));
}

#[test]
fn a_packet_continued_by_another_thread_is_split() {
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(&rig, seed_umem());
    p.fill(&[0x1000, 0x1800]);
    s.rx(&[frag(0x1000, true)]);
    std::thread::scope(|sc| {
        sc.spawn(|| s.rx(&[frag(0x1800, false)]));
    });
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::MultibufferSplit);
    assert_eq!(v[0].frame, 0x1800);
}

#[test]
fn a_tx_packet_interleaved_by_another_thread_is_split() {
    let rig = Rig::new(true);
    let (_u, _p, s) = one_sock(&rig, seed_umem());
    s.tx(&[frag(0x1000, true)]);
    std::thread::scope(|sc| {
        sc.spawn(|| s.tx(&[frag(0x4000, false)]));
    });
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::MultibufferSplit);
}
