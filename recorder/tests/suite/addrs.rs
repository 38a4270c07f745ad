//! Aligned and unaligned addressing, out-of-range addresses, and poison.

use xskdbg_recorder::{State, UmemConfig, ViolationKind, XdpDesc, DEFAULT_POISON};

use super::common::{one_sock, Rig};

#[test]
fn aligned_mode_compares_frames_by_chunk() {
    let rig = Rig::new(true);
    let (u, p, s) = one_sock(&rig, UmemConfig::aligned(64, 2048));
    // FILL may name any address inside the chunk; RX adds headroom.
    p.fill(&[0x1000, 0x1a00]);
    s.rx(&[XdpDesc::new(0x1100, 60), XdpDesc::new(0x1900, 60)]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    assert_eq!(u.frame_of(0x17ff), Some(0x1000));
    assert_eq!(u.state(0x1000), Some(State::Rx));
    assert_eq!(u.state(0x1800), Some(State::Rx));
    // The same chunk under another address is the same frame: a duplicate.
    s.tx(&[XdpDesc::new(0x1100, 60)]);
    s.tx(&[XdpDesc::new(0x1200, 60)]);
    let v = rig.violations();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, ViolationKind::DuplicateInFlight);
    assert_eq!(v[0].frame, 0x1000);
    assert_eq!(v[0].addr, 0x1200);
}

#[test]
fn unaligned_mode_compares_the_low_48_bits() {
    let rig = Rig::new(true);
    // 3000-byte chunks: not a power of two, only valid unaligned.
    let (u, p, s) = one_sock(&rig, UmemConfig::unaligned(64, 3000));
    let base = 0x1234u64;
    p.fill(&[base]);
    // The kernel hands back base | offset << 48.
    let rx = (0x100u64 << 48) | base;
    s.rx(&[XdpDesc::new(rx, 60)]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    assert_eq!(u.frame_of(rx), Some(base));
    assert_eq!(u.state(base), Some(State::Rx));
    // The raw descriptor (offset included) is what the line carries.
    assert!(
        rig.lines()
            .iter()
            .any(|l| l.ends_with(&format!("d={rx:x}:3c"))),
        "{:#?}",
        rig.lines()
    );
}

/// xskxceiver's SEND_RECEIVE_UNALIGNED fills 0x0, 0xfe0, 0x2000, 0x2fe0, ...
/// with 4 KiB chunks: in unaligned mode a buffer starts where its address
/// says, and two buffers of one chunk are two frames (the chunk-indexed
/// table reported 0xfe0 as 0x0 put on FILL twice).
#[test]
fn unaligned_buffers_of_one_chunk_are_distinct_frames() {
    let rig = Rig::new(true);
    let (u, p, s) = one_sock(&rig, UmemConfig::unaligned(64, 4096));
    p.fill(&[0x0, 0xfe0, 0x2000, 0x2fe0]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    assert_eq!(u.frame_of(0xfe0), Some(0xfe0));
    s.rx(&[XdpDesc::new(0x0, 60)]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    assert_eq!(u.state(0x0), Some(State::Rx));
    assert_eq!(u.state(0xfe0), Some(State::Fill));
    // A buffer never used starts unknown, like every frame.
    assert_eq!(u.state(0x3000), Some(State::Unknown));
    // The same buffer twice is still a duplicate, under its own address.
    p.fill(&[0x2fe0]);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::DuplicateInFlight);
    assert_eq!(v[0].frame, 0x2fe0);
}

#[test]
fn aligned_mode_needs_a_power_of_two_chunk() {
    let rig = Rig::new(true);
    let e = rig.rec.umem(UmemConfig::aligned(64, 3000)).unwrap_err();
    assert!(e.to_string().contains("power of two"), "{e}");
}

#[test]
fn addresses_outside_the_umem_are_reported() {
    let rig = Rig::new(false);
    let (_u, p, _s) = one_sock(&rig, UmemConfig::aligned(4, 2048));
    p.fill(&[4 * 2048]);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v.iter().all(|v| v.kind == ViolationKind::AddressOutOfRange));
}

#[test]
fn tx_descriptors_the_kernel_refuses_are_not_sends() {
    let rig = Rig::new(false);
    let (u, p, s) = one_sock(&rig, UmemConfig::aligned(4, 2048));
    // xskxceiver's INV_DESC batch, shortened: frame 0 sent once, next to
    // descriptors of it the kernel skips (too long, crossing its chunk,
    // an unknown option bit) and addresses past the UMEM.
    let mut bad_opt = XdpDesc::new(0x10, 0x40);
    bad_opt.options = 4;
    s.tx(&[
        XdpDesc::new(0, 0x40),
        XdpDesc::new(u64::MAX - 1, 0x40),
        XdpDesc::new(0, 9001),
        XdpDesc::new(4 * 2048, 0x40),
        XdpDesc::new(0x7e0, 0x40),
        bad_opt,
    ]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    assert_eq!(rig.rec.tx_rejected(), 5);
    assert_eq!(u.state(0), Some(State::Tx));
    // Its completion is the one send's: nothing waits for the others.
    p.comp(&[0]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    // Kernels whose copy mode completes a refused descriptor (Debian's
    // 6.12.118, 6.18) hand some back, in ring order: the frame was the
    // app's all along, even after the app freed it.
    u.free(&[0]);
    p.comp(&[u64::MAX - 1, 0, 4 * 2048]);
    assert!(rig.violations().is_empty(), "{:?}", rig.violations());
    assert_eq!(u.state(0), Some(State::Comp));
    // Each refused descriptor comes back once at most.
    u.free(&[0]);
    p.comp(&[0]);
    assert_eq!(rig.violations().len(), 1, "{:?}", rig.violations());
    rig.seen.lock().unwrap().clear();
    // Sent twice for real is still caught.
    s.tx(&[XdpDesc::new(0x800, 0x40), XdpDesc::new(0x810, 0x40)]);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::DuplicateInFlight);
}

#[test]
fn a_poisoned_rx_descriptor_is_caught_with_the_fifo_head() {
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(
        &rig,
        UmemConfig::aligned(16384, 2048).with_poison(DEFAULT_POISON),
    );
    p.fill(&[0xff0800, 0x1000800, 0xfe4000]);
    s.rx(&[
        XdpDesc::new(0xff0900, 0x42),
        XdpDesc::new(DEFAULT_POISON, 0x42),
    ]);
    let v = rig.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::PoisonedDescriptor);
    assert_eq!(v[0].expected, Some(0x1000800));
    assert!(
        v[0].line.starts_with(
            "xskdbg:1 violation kind=poisoned_descriptor sk=1:5:1 pool=1 a=deadbeefdeadbeef frame=deadbeefdeadbeef from=fill to=rx expected=1000800"
        ),
        "{}",
        v[0].line
    );
    // The umem line declares the poison so readers know the value.
    assert!(
        rig.lines()
            .iter()
            .any(|l| l.starts_with("xskdbg:1 umem umem=1 ")
                && l.ends_with(" poison=deadbeefdeadbeef"))
    );
}

#[test]
fn the_poison_writeback_helper_poisons_consumed_slots() {
    // A ring of 8 slots the "kernel" produced into; the app consumed 3 at 6..9.
    let mut ring = [XdpDesc::new(0x1000, 60); 8];
    // SAFETY: an 8-entry descriptor array and mask 7.
    unsafe { xskdbg_recorder::sys::poison_rx_slots(ring.as_mut_ptr(), 7, 6, 3, DEFAULT_POISON) };
    let poisoned: Vec<usize> = (0..8).filter(|&i| ring[i].addr == DEFAULT_POISON).collect();
    assert_eq!(poisoned, [0, 6, 7]);
    // A slot the kernel "exposes" without writing now reads as poison, and the
    // recorder catches it.
    let rig = Rig::new(true);
    let (_u, p, s) = one_sock(
        &rig,
        UmemConfig::aligned(64, 2048).with_poison(DEFAULT_POISON),
    );
    p.fill(&[0x1000]);
    s.rx(&[ring[7]]);
    assert_eq!(rig.violations()[0].kind, ViolationKind::PoisonedDescriptor);
}
