//! FIFO order FILL→RX per pool and TX→COMP per socket, with the kernel's
//! free-list recycling explained by XDP_STATISTICS or not.

use std::sync::Arc;

use xskdbg_recorder::{PoolConfig, SockConfig, SockKey, State, ViolationKind, XdpDesc};

use super::common::{seed_umem, HandStats, Rig, SK};

const F: [u64; 6] = [0x1000, 0x1800, 0x2000, 0x2800, 0x3000, 0x3800];

fn rxd(a: u64) -> XdpDesc {
    XdpDesc::new(a + 0x100, 0x4e)
}

/// FILL [A..F]; the kernel took A, dropped it (RX ring full), and the
/// driver's batch allocation had B, C already: RX gives B, C, then A from the
/// free list, then D.
fn recycled_order(rig: &Rig, stats: Option<Arc<HandStats>>, bump: u64) {
    let u = rig.rec.umem(seed_umem()).unwrap();
    let p = u.pool(PoolConfig::new(SK)).unwrap();
    let mut sc = SockConfig::new(SK).label("ingress q:1");
    if let Some(st) = &stats {
        sc = sc.stats(st.clone());
    }
    let s = p.socket(sc).unwrap();
    p.fill(&F);
    if let Some(st) = &stats {
        st.0.lock().unwrap().rx_ring_full += bump;
    }
    s.rx(&[rxd(F[1]), rxd(F[2])]);
    s.rx(&[rxd(F[0]), rxd(F[3])]);
    assert_eq!(u.state(F[0]), Some(State::Rx));
}

#[test]
fn recycling_explained_by_statistics_is_not_a_violation() {
    let rig = Rig::new(true);
    let st = Arc::new(HandStats::default());
    recycled_order(&rig, Some(st), 1);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    assert_eq!(rig.rec.recycled(), 1);
    let lines = rig.lines();
    assert!(
        lines
            .iter()
            .any(|l| l == "xskdbg:1 recycle pool=1 sk=1:5:1 n=1 a=1000"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("xskdbg:1 stats sk=1:5:1 rx_dropped=0 ")
                && l.contains(" rx_full=1 ")),
        "{lines:#?}"
    );
}

#[test]
fn recycling_without_statistics_is_a_violation() {
    let rig = Rig::new(true);
    recycled_order(&rig, None, 0);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::FifoOrder);
    assert_eq!(v[0].frame, F[1]);
    assert_eq!(v[0].expected, Some(F[0]));
    assert_eq!(v[0].remaining, [F[1], F[2], F[3], F[4], F[5]]);
    assert_eq!(rig.rec.recycled(), 0);
}

#[test]
fn statistics_that_did_not_move_explain_nothing() {
    let rig = Rig::new(true);
    recycled_order(&rig, Some(Arc::new(HandStats::default())), 0);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::FifoOrder);
}

#[test]
fn one_drop_does_not_explain_a_jump_of_three() {
    let rig = Rig::new(true);
    let st = Arc::new(HandStats::default());
    let u = rig.rec.umem(seed_umem()).unwrap();
    let p = u.pool(PoolConfig::new(SK)).unwrap();
    let s = p.socket(SockConfig::new(SK).stats(st.clone())).unwrap();
    p.fill(&F);
    st.0.lock().unwrap().rx_dropped += 1;
    s.rx(&[rxd(F[3])]);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].expected, Some(F[0]));
}

#[test]
fn sockets_of_one_pool_share_its_fill_order() {
    let rig = Rig::new(true);
    let u = rig.rec.umem(seed_umem()).unwrap();
    let p = u.pool(PoolConfig::new(SK)).unwrap();
    let s1 = p.socket(SockConfig::new(SK)).unwrap();
    let s2 = p.socket(SockConfig::new(SockKey::new(1, 6, 1))).unwrap();
    p.fill(&F[..4]);
    s1.rx(&[rxd(F[0])]);
    s2.rx(&[rxd(F[1]), rxd(F[2])]);
    s1.rx(&[rxd(F[3])]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
}

#[test]
fn a_frame_filled_on_one_pool_cannot_arrive_on_another() {
    let rig = Rig::new(true);
    let u = rig.rec.umem(seed_umem()).unwrap();
    let p1 = u.pool(PoolConfig::new(SK)).unwrap();
    // Same ifindex and queue, other namespace: a different pool.
    let k2 = SockKey::new(0x2001, 5, 1);
    let p2 = u.pool(PoolConfig::new(k2)).unwrap();
    let _s1 = p1.socket(SockConfig::new(SK)).unwrap();
    let s2 = p2.socket(SockConfig::new(k2)).unwrap();
    p1.fill(&[F[0]]);
    s2.rx(&[rxd(F[0])]);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::WrongPool);
    assert!(v[0].line.contains("sk=2001:5:1"), "{}", v[0].line);
}

#[test]
fn completions_must_come_in_tx_order_per_socket() {
    let rig = Rig::new(true);
    let u = rig.rec.umem(seed_umem()).unwrap();
    let p = u.pool(PoolConfig::new(SK)).unwrap();
    let s1 = p.socket(SockConfig::new(SK)).unwrap();
    let s2 = p.socket(SockConfig::new(SockKey::new(1, 6, 1))).unwrap();
    s1.tx(&[XdpDesc::new(F[0], 60), XdpDesc::new(F[1], 60)]);
    s2.tx(&[XdpDesc::new(F[2], 60)]);
    // Interleaving sockets on one completion ring is fine; per socket order holds.
    p.comp(&[F[2], F[0], F[1]]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    s1.tx(&[
        XdpDesc::new(F[3], 60),
        XdpDesc::new(F[4], 60),
        XdpDesc::new(F[5], 60),
    ]);
    p.comp(&[F[4]]);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::FifoOrder);
    assert_eq!((v[0].from, v[0].to), (State::Tx, State::Comp));
    assert_eq!(v[0].expected, Some(F[3]));
    assert_eq!(v[0].remaining, [F[4], F[5]]);
}

#[test]
fn remaining_list_is_bounded_and_counts_the_rest() {
    let rig = Rig::new(true);
    let u = rig.rec.umem(seed_umem()).unwrap();
    let p = u.pool(PoolConfig::new(SK)).unwrap();
    let s = p.socket(SockConfig::new(SK).label("ingress q:1")).unwrap();
    let frames: Vec<u64> = (0..3000u64).map(|i| 0x100_0000 + i * 2048).collect();
    p.fill(&frames);
    s.rx(&[rxd(frames[2999])]);
    let v = rig.violations();
    assert_eq!(v.len(), 1);
    let line = &v[0].line;
    assert!(line.len() < 4000, "{}", line.len());
    assert!(line.ends_with(" label=ingress q:1"), "{line}");
    let shown = line
        .split(' ')
        .find_map(|f| f.strip_prefix("remaining="))
        .unwrap()
        .split(',')
        .count();
    let more: usize = line
        .split(' ')
        .find_map(|f| f.strip_prefix("more="))
        .map(|m| usize::from_str_radix(m, 16).unwrap())
        .unwrap();
    // The FIFO held 3000 entries: the expected head plus 2999 behind it.
    assert_eq!(shown + more, 2999, "{line}");
    assert!(shown > 100);
}

/// Two sockets of one queue sharing the pool's FILL ring (XDP_SHARED_UMEM,
/// as 6.12's xskxceiver tests it): the kernel hands FILL's frames out in
/// order, alternating between the sockets, and the app drains one socket's
/// RX, then the other's. Each socket's reads skip the other's frames.
#[test]
fn sockets_sharing_a_fill_ring_split_its_order_without_a_violation() {
    let rig = Rig::new(true);
    let u = rig.rec.umem(seed_umem()).unwrap();
    let p = u.pool(PoolConfig::new(SK)).unwrap();
    let a = p.socket(SockConfig::new(SK).label("even")).unwrap();
    let b = p.socket(SockConfig::new(SK).label("odd")).unwrap();
    p.fill(&F);
    a.rx(&[rxd(F[0]), rxd(F[2]), rxd(F[4])]);
    b.rx(&[rxd(F[1]), rxd(F[3]), rxd(F[5])]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    for f in F {
        assert_eq!(u.state(f), Some(State::Rx));
    }
    // The split does not excuse a frame read twice.
    p.fill(&[F[0]]);
    a.rx(&[rxd(F[0])]);
    b.rx(&[rxd(F[0])]);
    assert!(
        rig.violations()
            .iter()
            .any(|v| v.kind != ViolationKind::FifoOrder && v.frame == F[0]),
        "{:?}",
        rig.violations()
    );
}

/// Dropping a socket's last handle lets go of its fd: the recorder's
/// duplicate (for `XDP_STATISTICS`) must not keep a socket the app closed
/// alive, or its queue stays bound and the app's next bind there fails
/// with EBUSY (6.12's xskxceiver TEARDOWN did, recorded). A closed socket
/// no longer shares its pool's FILL order either.
#[test]
fn the_last_handle_of_a_socket_releases_its_fd_and_its_share_of_fill() {
    let rig = Rig::new(true);
    let u = rig.rec.umem(seed_umem()).unwrap();
    let p = u.pool(PoolConfig::new(SK)).unwrap();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let a = p.socket(SockConfig::new(SK).fd(fds[0])).unwrap();
    // SAFETY: closing the read end this test opened; the recorder holds a
    // duplicate of it.
    unsafe { libc::close(fds[0]) };
    let write = || {
        // SAFETY: one byte from a live buffer to the write end.
        unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) }
    };
    let a2 = a.clone();
    drop(a);
    assert_eq!(write(), 1, "a handle is left: the duplicate still reads");
    assert!(
        !rig.lines().iter().any(|l| l.contains(" gone=1")),
        "a handle is left: the socket is not gone"
    );
    drop(a2);
    // The analyzer learns the socket's end: its key may name a new one.
    let lines = rig.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("xskdbg:1 sock sk=1:5:1 ") && l.ends_with(" gone=1")),
        "{lines:#?}"
    );
    // No reader left: EPIPE (the test binary ignores SIGPIPE, as Rust's do).
    assert_eq!(write(), -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EPIPE)
    );
    // SAFETY: closing the write end this test opened.
    unsafe { libc::close(fds[1]) };
    // A new socket on the queue is its only reader now: FIFO order holds.
    let b = p.socket(SockConfig::new(SK)).unwrap();
    p.fill(&F[..2]);
    b.rx(&[rxd(F[1])]);
    let v = rig.violations();
    assert!(
        v.iter().any(|v| v.kind == ViolationKind::FifoOrder),
        "{v:?}"
    );
}
