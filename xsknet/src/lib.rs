//! A real AF_XDP testbed on veth, for the recorder and probes tests and the soak.
//!
//! Everything here talks to the running kernel; nothing is simulated.
//!
//! - [`netns`]: uniquely named network namespaces, deleted on drop; run code
//!   or threads inside them.
//! - [`veth`]: veth pairs across namespaces with queue counts that let
//!   driver-mode XDP attach, optionally the same ifindex on both ends.
//! - [`xdp`]: the XDP program (`src/bpf/redirect.bpf.c`) that redirects each
//!   frame to the AF_XDP socket of its rx queue (XSKMAP), attached through a
//!   BPF link that detaches on drop.
//! - [`xsk`]: one UMEM shared by AF_XDP sockets on several queues, devices and
//!   namespaces (copy mode, via `xdpilone`), with the raw ring handles.
//! - [`packet`]: pure building and checking of UDP and TCP-shaped frames.
//! - [`traffic`]: an AF_PACKET generator that sends those frames from a peer
//!   namespace into the rx queue its sending CPU selects, and a receive loop.
//! - [`sys`]: the seam to iproute2/ethtool/tc and the raw system calls.
//! - [`testenv`]: what a real AF_XDP run needs from the machine (root, `ip`,
//!   BPF), asked before building anything.
//!
//! # Observed on Linux 6.18 (the test host)
//!
//! - veth takes driver-mode XDP when its rx queue count is at least the
//!   peer's tx queue count; otherwise BPF_LINK_CREATE fails with ENOSPC.
//!   Generic mode attaches regardless.
//! - Frames from an AF_PACKET socket reach the driver-mode program with the
//!   sender's TSO on or off.
//! - Copy mode only: binding with XDP_ZEROCOPY on veth fails with EOPNOTSUPP.
//!   In copy mode an RX descriptor's addr is chunk + 256
//!   (XDP_PACKET_HEADROOM) + the UMEM headroom.
//! - Sockets bound with XDP_SHARED_UMEM must pass no other bind flags (EINVAL);
//!   they inherit copy mode from the UMEM's socket. Sharing works across
//!   namespaces and across devices with the same ifindex; the socket keys
//!   then differ only by netns cookie.
//! - A frame that arrives while FILL is empty is dropped
//!   (rx_fill_ring_empty_descs); veth's per-queue ring holds 256 frames, so
//!   senders that must not lose frames keep a window below that.
//! - The kernel has no `act_skbedit`, so tc cannot steer a frame to a tx
//!   queue; with PACKET_QDISC_BYPASS the sending CPU picks it
//!   ([`traffic::queue_for_cpu`]).

pub mod error;
pub mod netns;
pub mod packet;
pub mod sys;
pub mod testenv;
pub mod traffic;
pub mod veth;
pub mod xdp;
pub mod xsk;

pub use error::{Error, Result};
pub use netns::NetNs;
pub use veth::{Veth, VethBuilder, VethEnd};
pub use xdp::{XdpMode, XdpProgram};
pub use xdpilone::xdp::XdpDesc;
pub use xsk::{PoolMate, SharedUmem, SocketKey, UmemArea, UmemConfig, XskSocket, XskStats};
