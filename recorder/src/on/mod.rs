//! The recorder when it is compiled in: frame table, FIFO checkers, sinks.
//!
//! Concurrency: one frame table per UMEM, a `u64` word per frame changed only
//! by compare-exchange, so two threads racing on one frame are caught (the
//! loser sees a state it may not leave). FIFO checkers need a lock: one per
//! pool (FILL→RX) and one per socket (TX→COMP), taken once per batch. Their
//! deques are allocated at setup; the hot path does not allocate (lines are
//! formatted in a per-thread buffer), only the violation path does.
//!
//! Modules, in the order a ring operation meets them:
//! - `rings`: the handles, one call per ring operation (`Pool::fill`/`comp`,
//!   `Sock::rx`/`tx`, `Umem::hold`/`free`): checks the batch, writes its
//!   line, reports what it found;
//! - `frames`: the frame shadow (frame word, address → frame, transitions);
//! - `order`: the FIFO checkers (FILL→RX with recycling, TX→COMP);
//! - `report`: violations: collected as `Pending`, reported, the buffer frozen;
//! - `lines`: every line the recorder writes;
//! - `register`: the handles' shared state, set up off the hot path;
//! - `recorder`: the sink, policy and counters every handle shares;
//! - `thread`: per-thread ids and line buffer;
//! - `audit`: the `audit` line (frames the application holds, since when).

mod audit;
mod frames;
mod lines;
mod order;
mod recorder;
mod register;
mod report;
mod rings;
mod thread;

use std::sync::{Mutex, MutexGuard};

pub use recorder::Recorder;
pub use rings::{Pool, Sock, Umem};
pub(crate) use thread::os_tid;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic policy may unwind while a lock is held elsewhere; the data
    // stays consistent (every update is complete before a violation is raised).
    m.lock().unwrap_or_else(|p| p.into_inner())
}
