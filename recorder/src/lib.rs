//! xskdbg-recorder: shadow every AF_XDP UMEM frame inside the application
//! and freeze the ftrace flight recorder on the first violation.
//!
//! An app calls the recorder next to each ring operation, a batch at a time:
//! [`Pool::fill`] and [`Pool::comp`] for the FILL and COMPLETION rings,
//! [`Sock::rx`] and [`Sock::tx`] for RX and TX, [`Umem::hold`] and
//! [`Umem::free`] for its own free list. Each call checks
//!
//! - the ownership state machine of every frame ([`State::valid_from`]),
//!   in one table per UMEM shared by all sockets and threads, updated by
//!   compare-exchange so two threads racing on one frame are caught;
//! - FIFO order FILL→RX per pool and TX→COMP per socket; a FILL→RX mismatch
//!   that the kernel's free-list recycling explains (`XDP_STATISTICS`
//!   `rx_dropped`/`rx_ring_full` rose) is counted ([`Recorder::recycled`]),
//!   not reported;
//! - RX descriptors equal to the UMEM's poison value ([`sys::RxRingMap`]
//!   writes the poison back into consumed slots);
//! - multi-buffer packets (`XDP_PKT_CONTD`) staying with one thread.
//!
//! Every batch becomes one line of `docs/TRACE-FORMAT.md` in the sink
//! ([`SinkConfig`]: trace_marker of the top-level buffer or an instance, an
//! in-memory ring, or nothing). On a violation the recorder writes a
//! `violation` line, writes 0 to the buffer's `tracing_on` so ftrace keeps
//! what led up to it, and acts by [`Policy`].
//!
//! Modules: `types` (configuration, [`Violation`]), `on` (the checker),
//! `off` (the same API compiled to nothing without feature `enabled`),
//! `line` (allocation-free line formatting), `sink`, `fifo`, [`sys`] (the
//! few system calls), [`capi`] (the C API of `include/xskdbg.h`), and
//! `xdpilone` (ring wrappers, feature `xdpilone`).

mod line;
mod stacks;
pub mod sys;
mod types;

#[cfg(xskdbg_on)]
mod fifo;
#[cfg(xskdbg_on)]
mod on;
#[cfg(xskdbg_on)]
mod sink;

#[cfg(any(not(xskdbg_on), test))]
#[cfg_attr(
    xskdbg_on,
    allow(
        dead_code,
        reason = "compiled in tests only to check the off build holds no state"
    )
)]
mod off;

pub mod capi;
#[cfg(feature = "xdpilone")]
pub mod xdpilone;

pub use line::LINE_MAX;
#[cfg(not(xskdbg_on))]
pub use off::{Pool, Recorder, Sock, Umem};
#[cfg(xskdbg_on)]
pub use on::{Pool, Recorder, Sock, Umem};
pub use types::*;
/// The tracefs seam, re-exported for [`SinkConfig::Buffer`].
pub use xskdbg_tracefs as tracefs;
