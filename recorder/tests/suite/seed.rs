//! The seed story through the public API: its three invalid transitions
//! (Fill→Tx, Comp→Rx, Tx→Rx) and its FIFO violation, with the lines checked.

use xskdbg_recorder::{State, ViolationKind, XdpDesc};

use super::common::{one_sock, seed_umem, Rig};

/// The chunk (2048 bytes) holding a descriptor address.
fn chunk(a: u64) -> u64 {
    a & !0x7ff
}

#[test]
fn descriptor_26476800_transitioned_from_fill_to_tx() {
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(&rig, seed_umem());
    let a = 26_476_800u64;
    p.fill(&[chunk(a)]);
    s.tx(&[XdpDesc::new(a, 60)]);
    let v = rig.violations();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, ViolationKind::InvalidTransition);
    assert_eq!(
        v[0].to_string(),
        "ingress q:1 descriptor 0x1940100 (frame 0x1940000) transitioned from Fill to Tx (sk=1:5:1)"
    );
    let lines = rig.lines();
    assert_eq!(
        lines.last().unwrap(),
        "xskdbg:1 violation kind=invalid_transition sk=1:5:1 pool=1 a=1940100 frame=1940000 from=fill to=tx label=ingress q:1"
    );
    assert!(rig.rec.is_frozen());
}

#[test]
fn descriptor_18422016_transitioned_from_comp_to_rx() {
    let rig = Rig::new(true);
    let (u, p, s) = one_sock(&rig, seed_umem());
    let a = 18_422_016u64;
    s.tx(&[XdpDesc::new(a, 60)]);
    p.comp(&[a]);
    assert_eq!(u.state(a), Some(State::Comp));
    s.rx(&[XdpDesc::new(a, 60)]);
    let v = rig.violations();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].from, v[0].to), (State::Comp, State::Rx));
    assert_eq!(
        rig.lines().last().unwrap(),
        "xskdbg:1 violation kind=invalid_transition sk=1:5:1 pool=1 a=1191900 frame=1191800 from=comp to=rx label=ingress q:1"
    );
}

#[test]
fn descriptor_3154176_transitioned_from_tx_to_rx() {
    let rig = Rig::new(true);
    let (_u, _p, s) = one_sock(&rig, seed_umem());
    let a = 3_154_176u64;
    s.tx(&[XdpDesc::new(a, 60)]);
    s.rx(&[XdpDesc::new(a, 60)]);
    let v = rig.violations();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].from, v[0].to), (State::Tx, State::Rx));
    assert_eq!(
        rig.lines().last().unwrap(),
        "xskdbg:1 violation kind=invalid_transition sk=1:5:1 pool=1 a=302100 frame=302000 from=tx to=rx label=ingress q:1"
    );
}

/// The head of the seed's FILL order when 0x1229100 arrived unexpectedly.
pub const SEED_FIFO: [u64; 12] = [
    0x16ce900, 0x160a100, 0x13d3900, 0x1dba100, 0x1627100, 0x1272900, 0x1612100, 0x1100100,
    0x161e100, 0x110a100, 0x12e4900, 0x1229100,
];

/// Replays the seed's trace: forward 0x16ce900 (RX→TX→COMP→FILL), receive
/// 0x160a100, then 0x1229100 arrives while 0x13d3900 is expected.
pub fn replay_seed_fifo(rig: &Rig) {
    replay_seed_fifo_on(&rig.rec);
}

/// [`replay_seed_fifo`] on any recorder.
pub fn replay_seed_fifo_on(rec: &xskdbg_recorder::Recorder) {
    let u = rec.umem(seed_umem()).unwrap();
    let pool = u
        .pool(xskdbg_recorder::PoolConfig::new(super::common::SK))
        .unwrap();
    let ingress = pool
        .socket(xskdbg_recorder::SockConfig::new(super::common::SK).label("ingress q:1"))
        .unwrap();
    let egress = pool
        .socket(
            xskdbg_recorder::SockConfig::new(xskdbg_recorder::SockKey::new(1, 6, 1))
                .label("egress q:1"),
        )
        .unwrap();
    pool.fill(&SEED_FIFO.map(chunk));
    ingress.rx(&[XdpDesc::new(0x16ce900, 0x4e)]);
    egress.tx(&[XdpDesc::new(0x16ce900, 0x4e)]);
    pool.comp(&[0x16ce900]);
    pool.fill(&[chunk(0x16ce900)]);
    ingress.rx(&[XdpDesc::new(0x160a100, 0x4e)]);
    ingress.rx(&[XdpDesc::new(0x1229100, 0x4e)]);
}

#[test]
fn fill_to_rx_expected_0x13d3900() {
    let rig = Rig::new(true);
    replay_seed_fifo(&rig);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::FifoOrder);
    assert_eq!(
        v[0].to_string(),
        "ingress q:1 descriptor 0x1229100 Fill -> Rx: expected 0x13d3800 remaining: \
         [1dba000, 1627000, 1272800, 1612000, 1100000, 161e000, 110a000, 12e4800, 1229000, 16ce800] (sk=1:5:1)"
    );
    let lines = rig.lines();
    let want = [
        "xskdbg:1 fill pool=1 n=c a=16ce800,160a000,13d3800,1dba000,1627000,1272800,1612000,1100000,161e000,110a000,12e4800,1229000",
        "xskdbg:1 rx sk=1:5:1 pool=1 idx=0 n=1 d=16ce900:4e",
        "xskdbg:1 tx sk=1:6:1 pool=1 idx=0 n=1 d=16ce900:4e",
        "xskdbg:1 comp pool=1 n=1 a=16ce900",
        "xskdbg:1 fill pool=1 n=1 a=16ce800",
        "xskdbg:1 rx sk=1:5:1 pool=1 idx=1 n=1 d=160a100:4e",
        "xskdbg:1 rx sk=1:5:1 pool=1 idx=2 n=1 d=1229100:4e",
        "xskdbg:1 violation kind=fifo_order sk=1:5:1 pool=1 a=1229100 frame=1229000 from=fill to=rx expected=13d3800 \
         remaining=1dba000,1627000,1272800,1612000,1100000,161e000,110a000,12e4800,1229000,16ce800 label=ingress q:1",
    ];
    // The declarations come first (and again right before the violation).
    let body: Vec<&String> = lines
        .iter()
        .filter(|l| {
            !["umem", "pool", "sock"]
                .iter()
                .any(|op| l.starts_with(&format!("xskdbg:1 {op} ")))
        })
        .collect();
    assert_eq!(body, want.iter().collect::<Vec<_>>());
    assert!(lines[0].starts_with("xskdbg:1 umem umem=1 size=2000000 chunk=800 mode=aligned"));
    assert!(lines.contains(&"xskdbg:1 sock sk=1:5:1 pool=1 umem=1 label=ingress q:1".to_string()));
    assert!(lines.contains(&"xskdbg:1 sock sk=1:6:1 pool=1 umem=1 label=egress q:1".to_string()));
    assert!(rig.rec.is_frozen());
}

#[test]
fn nothing_is_recorded_after_the_freeze() {
    let rig = Rig::new(true);
    replay_seed_fifo(&rig);
    let n = rig.lines().len();
    let u = rig.rec.umem(seed_umem()).unwrap();
    u.hold(&[0]);
    assert_eq!(rig.lines().len(), n);
}

#[test]
fn the_default_policy_panics_with_the_seed_message() {
    let rec = xskdbg_recorder::Recorder::new(xskdbg_recorder::RecorderConfig::new(
        xskdbg_recorder::SinkConfig::Memory { events: 64 },
    ))
    .unwrap();
    let u = rec.umem(seed_umem()).unwrap();
    let p = u
        .pool(xskdbg_recorder::PoolConfig::new(super::common::SK))
        .unwrap();
    let s = p
        .socket(xskdbg_recorder::SockConfig::new(super::common::SK))
        .unwrap();
    p.fill(&[0x1940000]);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.tx(&[XdpDesc::new(26_476_800, 60)]);
    }));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("transitioned from Fill to Tx"), "{msg}");
    assert_eq!(rec.violations(), 1);
}
